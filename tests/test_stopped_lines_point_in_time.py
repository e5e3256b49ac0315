"""A stopped line was halted on a day the record does not give, on or before ``--as-of``: that unknown
stop is an open end, which ``--as-of`` closes (the day before it). So a drug stopped today does not
meet the drug that replaces it today (a switch, the commonest CDS case), a later ``--as-of`` can only
lengthen the line up to its written end, and a completed line runs to its written end whatever
``--as-of``."""

from __future__ import annotations

from checker import check
from tests.test_facts_point_in_time import bundle, med


def _rules(data: dict, as_of: str, rules: list[str]) -> list[tuple[str, str]]:
    report = check(data, as_of=as_of, select=rules)
    assert not report.errors
    return sorted((f.rule, f.severity.value) for f in report.findings)


def test_a_same_day_switch_is_no_interaction() -> None:
    """Ibuprofen written for 30 days on 1 Jan, stopped; ketoprofen written on 15 Jan (as_of)."""
    data = bundle(med("ibu", "Ibuprofène 400 mg comprimé", "2026-01-01", freq=3, days=30, status="stopped"),
                  med("keto", "Kétoprofène 100 mg gélule", "2026-01-15", freq=2, days=10))
    assert _rules(data, "2026-01-15", ["IX001"]) == []


def test_a_same_day_dose_change_is_no_duplicate() -> None:
    """Paracetamol 1 g four times a day, stopped; 500 mg two tablets four times a day written the same day."""
    data = bundle(med("p1", "Doliprane 1000 mg comprimé", "2026-01-01", freq=4, days=30, status="stopped"),
                  med("p2", "Doliprane 500 mg comprimé", "2026-01-15", dose=2, freq=4, days=30))
    assert _rules(data, "2026-01-15", ["DU001", "PR005"]) == []


def test_a_completed_line_runs_to_its_written_end() -> None:
    """Completed (all dispensed): the warfarin of 1 Dec for 90 days meets the aspirin of 15 Jan."""
    data = bundle(med("war", "Warfarine 5 mg comprimé", "2025-12-01", days=90, status="completed"),
                  med("asp", "Acide acétylsalicylique 75 mg sachet", "2026-01-15", dose=75, unit="mg", days=30))
    assert _rules(data, "2026-01-15", ["IX001"]) == _rules(data, "2026-06-01", ["IX001"]) != []


def test_a_stopped_line_ended_before_as_of_never_moves() -> None:
    """A stopped line whose written end is before ``--as-of`` is the same at any later ``--as-of``."""
    data = bundle(med("war", "Warfarine 5 mg comprimé", "2025-10-01", days=30, status="stopped"),
                  med("asp", "Acide acétylsalicylique 75 mg sachet", "2025-10-20", dose=75, unit="mg", days=30))
    assert _rules(data, "2026-01-15", ["IX001"]) == _rules(data, "2027-01-15", ["IX001"]) != []
