"""A renewal is not a second treatment: the same medication written again a few days before the
previous line runs out (the patient collects the next box early) does not double the dose (PR005)
nor make a duplicate (DU001). The tolerance is data (``renewal_overlap_days`` in
``referentials/facts/clinical-facts.json``, a project convention); beyond it, two lines of the same
medication running together are still reported."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from checker import check
from checker.referentials import default_referentials
from tests.test_facts_point_in_time import bundle, med

TOLERANCE = default_referentials().get("clinical-facts").renewal_overlap_days


def _two(status: str, overlap: int, second_text: str = "Doliprane 1000 mg comprimé") -> dict:
    """Paracetamol 1 g four times a day (4 g, the daily maximum) for 30 days from 1 Jan 2025, and the
    same again starting ``overlap`` days before the first ends."""
    second = date(2025, 1, 1) + timedelta(days=30 - overlap)
    return bundle(med("p1", "Doliprane 1000 mg comprimé", "2025-01-01", freq=4, days=30, status=status),
                  med("p2", second_text, second.isoformat(), freq=4, days=30, status=status))


def _rules(data: dict) -> list[str]:
    report = check(data, as_of="2026-01-15", select=["PR005", "DU001"])
    assert not report.errors
    return sorted(f.rule for f in report.findings)


def test_the_tolerance_is_a_stated_convention() -> None:
    assert 0 < TOLERANCE <= 10


@pytest.mark.parametrize("status", ["active", "completed"])
@pytest.mark.parametrize("overlap", [1, 3, TOLERANCE])
def test_a_renewal_within_the_tolerance_is_one_treatment(status: str, overlap: int) -> None:
    assert _rules(_two(status, overlap)) == []


@pytest.mark.parametrize("status", ["active", "completed"])
def test_a_renewal_by_another_brand_of_the_same_medication_is_one_treatment(status: str) -> None:
    assert _rules(_two(status, 2, "Dafalgan 1 g comprimé")) == []


@pytest.mark.parametrize("status", ["active", "completed"])
def test_beyond_the_tolerance_the_lines_run_together(status: str) -> None:
    assert _rules(_two(status, TOLERANCE + 1)) == ["DU001", "PR005"]


def test_the_same_day_is_no_renewal() -> None:
    data = bundle(med("p1", "Doliprane 1000 mg comprimé", "2025-01-01", freq=4, days=30),
                  med("p2", "Doliprane 1000 mg comprimé", "2025-01-01", freq=4, days=30))
    assert _rules(data) == ["DU001", "PR005"]


def test_another_medication_with_the_same_substance_is_no_renewal() -> None:
    """Ixprim (tramadol + paracetamol) begun near the end of a Doliprane course is a second product."""
    data = bundle(med("p1", "Doliprane 1000 mg comprimé", "2025-01-01", freq=3, days=30),
                  med("p2", "Ixprim 37,5 mg/325 mg comprimé pelliculé", "2025-01-29", freq=3, days=10))
    assert "DU001" in _rules(data)
