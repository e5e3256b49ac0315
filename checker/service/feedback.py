"""Durable card log and feedback store (SQLite in WAL mode).

Every card the service returns is logged once per uuid (with its rule and fingerprint, and how many
times it was shown); the EHR's feedback (HL7 CDS Hooks 2.0 "Feedback",
https://cds-hooks.hl7.org/2.0/#feedback: ``accepted`` with the accepted suggestions, or ``overridden``
with an optional reason and comment) is stored against the card. :func:`feedback_stats` gives the
override rate per rule: the alert-fatigue signal a pharmacy committee reviews.

Bounds (:class:`FeedbackLimits`): feedback is accepted only for cards this service issued, from the
same CDS service, within ``accept_window_hours``; accepted suggestion ids must be suggestions of that
card; a request holds at most ``max_batch`` items and a caller (JWT issuer, else client address) may
send ``max_items_per_minute`` (counted in the database, so the worker processes of one service share
it); cards are kept ``card_retention_days`` (at most ``max_card_rows``) and feedback rows
``feedback_retention_days``, at most ``max_feedback_rows`` (oldest dropped first). Text that came from
the EHR (reason codes and displays, comments) is stored as received but escaped whenever it is shown or
exported (:func:`safe_text`).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
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
CREATE TABLE IF NOT EXISTS rates (
    caller TEXT PRIMARY KEY,
    window_start REAL NOT NULL,
    items REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_rule ON feedback(rule);
CREATE INDEX IF NOT EXISTS cards_first_shown ON cards(first_shown);
"""


@dataclass(frozen=True, slots=True)
class FeedbackLimits:
    """Bounds of the feedback endpoint and of the card log (see the module docstring)."""

    accept_window_hours: float = 72.0
    max_batch: int = 100
    max_items_per_minute: int = 600
    card_retention_days: int = 30
    max_card_rows: int = 2_000_000
    feedback_retention_days: int = 730
    max_feedback_rows: int = 1_000_000
    max_text_chars: int = 1_000


class FeedbackRefused(ValueError):
    """Feedback items the store will not record, with one problem per refused item."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def safe_text(value: str | None, limit: int = 200) -> str | None:
    """Text received from an EHR made safe to show or export: control characters (terminal escapes,
    bidi overrides) written as ``\\uXXXX``, ``<``/``>`` as entities, a leading ``= + - @`` (spreadsheet
    formula) quoted with ``'``, cut to ``limit`` characters."""
    if value is None:
        return None
    text = _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", str(value))
    text = text.replace("<", "&lt;").replace(">", "&gt;")
    if text[:1] in ("=", "+", "-", "@"):
        text = "'" + text
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    columns = {row[1] for row in conn.execute("PRAGMA table_info(cards)")}
    if "suggestions" not in columns:  # databases written before suggestion ids were logged
        conn.execute("ALTER TABLE cards ADD COLUMN suggestions TEXT")
    conn.commit()
    return conn


class FeedbackStore:
    """Thread-safe access to the card log and the feedback table."""

    def __init__(self, path: str | Path, limits: FeedbackLimits | None = None) -> None:
        self.path = str(path)
        self.limits = limits or FeedbackLimits()
        self._db: sqlite3.Connection | None = connect(path)
        self._lock = threading.Lock()
        self._last_purge = 0.0

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

    def log_cards(self, service: str, cards: Iterable[tuple[str, str, str, str, str]] | Iterable[tuple[
            str, str, str, str, str, list[str]]]) -> None:
        """Record issued cards: (uuid, rule, fingerprint, category, severity[, suggestion uuids])."""
        now = _now()
        rows = [(c[0], c[1], c[2], c[3], c[4], service, now, now, json.dumps(list(c[5]) if len(c) > 5 else []))
                for c in cards]
        if not rows:
            return
        with self._lock:
            self._conn.executemany(
                "INSERT INTO cards (uuid, rule, fingerprint, category, severity, service, first_shown, last_shown,"
                " suggestions) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(uuid) DO UPDATE SET times_shown = times_shown + 1, last_shown = excluded.last_shown,"
                " severity = excluded.severity",
                rows,
            )
            self._purge()
            self._conn.commit()

    def take(self, caller: str, n: int, now: float | None = None) -> float | None:
        """Count ``n`` feedback items against ``caller``'s per-minute allowance: None when allowed, else
        the seconds to wait. The count lives in the database: every worker process of the service
        draws on the same allowance."""
        now = time.time() if now is None else now
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")  # read and update as one step, whatever the other processes do
            try:
                row = conn.execute("SELECT window_start, items FROM rates WHERE caller = ?", (caller,)).fetchone()
                start, used = (row[0], row[1]) if row is not None and 0 <= now - row[0] < 60 else (now, 0.0)
                if used + n > self.limits.max_items_per_minute:
                    conn.rollback()
                    return max(1.0, 60 - (now - start))
                conn.execute("INSERT INTO rates (caller, window_start, items) VALUES (?, ?, ?) ON CONFLICT(caller)"
                             " DO UPDATE SET window_start = excluded.window_start, items = excluded.items",
                             (caller, start, used + n))
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            return None

    def check_items(self, service: str, items: Sequence[Mapping[str, Any]]) -> None:
        """Raise :class:`FeedbackRefused` unless every item names a card this service issued recently, and
        its accepted suggestions are that card's."""
        since = (datetime.now(timezone.utc) - timedelta(hours=self.limits.accept_window_hours)).isoformat(
            timespec="seconds")
        problems: list[str] = []
        with self._lock:
            for i, item in enumerate(items):
                row = self._conn.execute("SELECT service, first_shown, suggestions FROM cards WHERE uuid = ?",
                                         (item["card"],)).fetchone()
                if row is None or row[0] != service or row[1] < since:
                    problems.append(f"feedback[{i}].card: not issued by the {service} service in the last "
                                    f"{self.limits.accept_window_hours:g} h")
                    continue
                offered = set(json.loads(row[2] or "[]"))
                for j, s in enumerate(item.get("acceptedSuggestions") or []):
                    if s.get("id") not in offered:
                        problems.append(f"feedback[{i}].acceptedSuggestions[{j}].id: not a suggestion of this card")
        if problems:
            raise FeedbackRefused(problems)

    def _purge(self, force: bool = False) -> None:
        """Drop cards and feedback past their retention and feedback rows over the cap (under lock; at most
        once a minute unless forced)."""
        now = time.monotonic()
        if not force and now - self._last_purge < 60:
            return
        self._last_purge = now
        lim = self.limits
        cut_cards = (datetime.now(timezone.utc) - timedelta(days=lim.card_retention_days)).isoformat(timespec="seconds")
        cut_fb = (datetime.now(timezone.utc) - timedelta(days=lim.feedback_retention_days)).isoformat(timespec="seconds")
        self._conn.execute("DELETE FROM cards WHERE last_shown < ?", (cut_cards,))
        over = self._conn.execute("SELECT COUNT(*) FROM cards").fetchone()[0] - lim.max_card_rows
        if over > 0:  # the oldest issued cards go first
            self._conn.execute("DELETE FROM cards WHERE uuid IN (SELECT uuid FROM cards ORDER BY first_shown LIMIT ?)",
                               (over,))
        self._conn.execute("DELETE FROM feedback WHERE received < ?", (cut_fb,))
        self._conn.execute("DELETE FROM rates WHERE window_start < ?", (time.time() - 60,))
        self._conn.execute("DELETE FROM feedback WHERE id <= (SELECT MAX(id) FROM feedback) - ?",
                           (lim.max_feedback_rows,))

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
            self._purge(force=True)
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
            reasons.setdefault(rule, []).append({"code": safe_text(code, 64), "display": safe_text(display), "count": n})
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
