"""Durable card log and feedback store (SQLite in WAL mode).

Every card the service returns is logged once per uuid (with its rule and fingerprint, and how many
times it was shown); the EHR's feedback (HL7 CDS Hooks 2.0 "Feedback",
https://cds-hooks.hl7.org/2.0/#feedback: ``accepted`` with the accepted suggestions, or ``overridden``
with an optional reason and comment) is stored against the card. :func:`feedback_stats` gives the
override rate per rule: the alert-fatigue signal a pharmacy committee reviews.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cards (
    uuid TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    category TEXT NOT NULL,
    severity TEXT NOT NULL,
    service TEXT NOT NULL,
    first_shown TEXT NOT NULL,
    last_shown TEXT NOT NULL,
    times_shown INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    card TEXT NOT NULL,
    rule TEXT,
    fingerprint TEXT,
    service TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('accepted', 'overridden')),
    accepted_suggestions TEXT,
    reason_system TEXT,
    reason_code TEXT,
    reason_display TEXT,
    user_comment TEXT,
    outcome_timestamp TEXT NOT NULL,
    received TEXT NOT NULL,
    issuer TEXT
);
CREATE INDEX IF NOT EXISTS feedback_rule ON feedback(rule);
"""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def connect(path: str | Path) -> sqlite3.Connection:
    """Open (creating if needed) a feedback database in WAL mode."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=10.0)
    if str(path) != ":memory:":
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_SCHEMA)
    conn.commit()
    return conn


class FeedbackStore:
    """Thread-safe access to the card log and the feedback table."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._db: sqlite3.Connection | None = connect(path)
        self._lock = threading.Lock()

    @property
    def _conn(self) -> sqlite3.Connection:
        """The open connection (reopened after :meth:`close`, e.g. across app lifespans); call under lock."""
        if self._db is None:
            self._db = connect(self.path)
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def log_cards(self, service: str, cards: Iterable[tuple[str, str, str, str, str]]) -> None:
        """Record shown cards: (uuid, rule, fingerprint, category, severity)."""
        rows = [(u, r, fp, c, s, service, _now(), _now()) for u, r, fp, c, s in cards]
        if not rows:
            return
        with self._lock:
            self._conn.executemany(
                "INSERT INTO cards (uuid, rule, fingerprint, category, severity, service, first_shown, last_shown)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(uuid) DO UPDATE SET times_shown = times_shown + 1, last_shown = excluded.last_shown,"
                " severity = excluded.severity",
                rows,
            )
            self._conn.commit()

    def record(self, service: str, items: Iterable[Mapping[str, Any]], issuer: str | None = None) -> int:
        """Store validated feedback items; returns how many were stored."""
        with self._lock:
            n = 0
            for item in items:
                row = self._conn.execute("SELECT rule, fingerprint FROM cards WHERE uuid = ?", (item["card"],)).fetchone()
                rule, fp = row if row else (None, None)
                reason = (item.get("overrideReason") or {}).get("reason") or {}
                self._conn.execute(
                    "INSERT INTO feedback (card, rule, fingerprint, service, outcome, accepted_suggestions,"
                    " reason_system, reason_code, reason_display, user_comment, outcome_timestamp, received, issuer)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        item["card"], rule, fp, service, item["outcome"],
                        json.dumps([s.get("id") for s in item.get("acceptedSuggestions") or []]),
                        reason.get("system"), reason.get("code"), reason.get("display"),
                        (item.get("overrideReason") or {}).get("userComment"),
                        item["outcomeTimestamp"], _now(), issuer,
                    ),
                )
                n += 1
            self._conn.commit()
            return n


def feedback_stats(db: str | Path | sqlite3.Connection) -> list[dict[str, Any]]:
    """Per rule: cards shown, feedback received, accepted, overridden, override rate, top reasons.

    ``override_rate`` is overridden / (accepted + overridden), ``None`` without feedback. Feedback
    about cards the log does not know is reported under rule ``None``.
    """
    conn = db if isinstance(db, sqlite3.Connection) else connect(db)
    try:
        shown = dict(conn.execute("SELECT rule, SUM(times_shown) FROM cards GROUP BY rule").fetchall())
        counts: dict[Any, dict[str, int]] = {}
        for rule, outcome, n in conn.execute("SELECT rule, outcome, COUNT(*) FROM feedback GROUP BY rule, outcome"):
            counts.setdefault(rule, {})[outcome] = n
        reasons: dict[Any, list[dict[str, Any]]] = {}
        for rule, code, display, n in conn.execute(
            "SELECT rule, reason_code, MAX(reason_display), COUNT(*) FROM feedback"
            " WHERE outcome = 'overridden' GROUP BY rule, reason_code ORDER BY COUNT(*) DESC, reason_code"
        ):
            reasons.setdefault(rule, []).append({"code": code, "display": display, "count": n})
    finally:
        if not isinstance(db, sqlite3.Connection):
            conn.close()
    out = []
    for rule in sorted(set(shown) | set(counts), key=lambda r: (r is None, r or "")):
        c = counts.get(rule, {})
        acc, ovr = c.get("accepted", 0), c.get("overridden", 0)
        out.append({
            "rule": rule,
            "cards_shown": int(shown.get(rule) or 0),
            "feedback": acc + ovr,
            "accepted": acc,
            "overridden": ovr,
            "override_rate": round(ovr / (acc + ovr), 3) if acc + ovr else None,
            "override_reasons": reasons.get(rule, [])[:5],
        })
    return out
