"""Past treatment still counts: a line marked ``completed``, ``stopped`` or ``ended`` was taken.

An export audited months later holds the orders of last year with the status they have *now*
(completed, stopped). Judged on the record as it stood on their own dates, their interactions,
duplicates, doses and patient risks are the same as when they were written. Generated over every
medication-rule sample of ``fhir_samples/rules`` (fail and pass): each sample's active lines are
rewritten as ended, and the findings compared with the active lines' at the same date.
"""

from __future__ import annotations

import copy
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from checker import check
from checker.fhir_input import read
from checker.periods import treatment_period
from tests.conftest import SAMPLES

MEDICATION_RULES = ("IX001", "DU001", "DU002", "PR001", "PR002", "PR003", "PR004", "PR005", "PR006", "OP002")
"""Rules that judge medication lines by their periods. The EQ rules (cheaper equivalents) and the
service-order protocols are left out: they judge one line's product or act, not its period."""

ENDED = ("completed", "stopped", "ended")
DEFAULT_AS_OF = "2026-01-15"


def _samples() -> list[Any]:
    out = []
    for rule in MEDICATION_RULES:
        for path in sorted((SAMPLES / "rules" / rule).glob("*.json")):
            out.append(pytest.param(rule, path, id=f"{rule}/{path.stem}"))
    return out


def _as_of(path: Path) -> date:
    exp = path.with_name(path.stem + ".expect")
    text = orjson.loads(exp.read_bytes()).get("as_of", DEFAULT_AS_OF) if exp.is_file() else DEFAULT_AS_OF
    return date.fromisoformat(text)


def _requests(data: Any) -> list[dict[str, Any]]:
    entries = data.get("entry", []) if isinstance(data, dict) else []
    return [e["resource"] for e in entries
            if isinstance(e, dict) and e.get("resource", {}).get("resourceType") == "MedicationRequest"]


def _ended(data: Any, status: str) -> tuple[Any, int]:
    """The sample with every taken MedicationRequest (active, on-hold) given ``status``."""
    out = copy.deepcopy(data)
    n = 0
    for r in _requests(out):
        if r.get("status") in ("active", "on-hold"):
            r["status"] = status
            n += 1
    return out, n


def _keys(data: Any, as_of: date, rule: str) -> list[tuple[str, str, tuple[str, ...], str]]:
    report = check(data, as_of=as_of.isoformat(), select=[rule])
    assert not report.errors, report.errors
    return sorted((f.rule, f.severity, tuple(sorted(f.implicated)), f.summary)
                  for f in report.findings if f.rule == rule)


def _all_written_ends(path: Path, later: date) -> bool:
    """True when every prescription line of the sample has a written end (a duration, a supply, a
    period end) that falls before ``later``."""
    records = read(str(path)).records
    orders = [o for r in records for o in r.medication_orders if o.kind == "request"]
    ends = [treatment_period(o, later)[1] for o in orders]
    return bool(orders) and all(e is not None and e < later - timedelta(days=1) for e in ends)


@pytest.mark.parametrize("rule, path", _samples())
def test_ended_lines_are_judged_as_they_were_taken(rule: str, path: Path) -> None:
    data = orjson.loads(path.read_bytes())
    later = _as_of(path) + timedelta(days=365)  # the export audited a year later
    taken = _keys(data, later, rule)
    written_ends = _all_written_ends(path, later)
    for status in ENDED:
        ended, n = _ended(data, status)
        if not n:
            pytest.skip("no taken prescription line to rewrite")
        got = _keys(ended, later, rule)
        if written_ends:
            # same periods, same days of judgement: the same findings
            assert got == taken, f"{status}: {got} != {taken}"
        else:
            # an ended line without a written end is proven taken on its first day only
            assert set(got) <= set(taken), f"{status}: {sorted(set(got) - set(taken))} not found on the active lines"
        # moving the audit date later does not change a finding about the past
        assert _keys(ended, later + timedelta(days=400), rule) == got


def test_the_generator_is_not_vacuous() -> None:
    """Enough fail samples have written ends for the equality above to bite, and they fire."""
    firing = 0
    for rule in MEDICATION_RULES:
        for path in sorted((SAMPLES / "rules" / rule).glob("fail-*.json")):
            later = _as_of(path) + timedelta(days=365)
            if not _all_written_ends(path, later):
                continue
            ended, n = _ended(orjson.loads(path.read_bytes()), "completed")
            if n and _keys(ended, later, rule):
                firing += 1
    assert firing >= 20, firing


def test_completed_co_prescription_found_a_year_later() -> None:
    """The observed case: amiodarone + moxifloxacin written together, both completed by the export."""
    path = SAMPLES / "rules" / "IX001" / "fail-amiodarone-moxifloxacine.json"
    data, n = _ended(orjson.loads(path.read_bytes()), "completed")
    assert n == 2
    found = _keys(data, date(2026, 12, 1), "IX001")
    assert [(k[0], k[1]) for k in found] == [("IX001", "critical")]
