"""Treatment periods (checker.periods): conventions for start, end, open-ended lines, statuses."""

from __future__ import annotations

from datetime import date

import pytest

from checker.model import Concept, Dispense, Dosage, MedicationOrder
from checker.periods import counts, duration_days, effective_interval, is_current, overlaps, treatment_period

AS_OF = date(2026, 1, 15)


def order(ref: str = "MedicationRequest/a", status: str = "active", authored: date | None = date(2026, 1, 1),
          dosages: tuple[Dosage, ...] = (), dispense: Dispense | None = None, draft: bool = False) -> MedicationOrder:
    return MedicationOrder(ref=ref, status=status, intent="order", medication=Concept(text="x"),
                           authored_on=authored, dosages=dosages, dispense=dispense, draft=draft)


def test_open_ended_runs_to_as_of() -> None:
    o = order()
    assert treatment_period(o, AS_OF) == (date(2026, 1, 1), None)
    assert effective_interval(o, AS_OF) == (date(2026, 1, 1), AS_OF)
    assert is_current(o, AS_OF)
    assert duration_days(o, AS_OF) == 15


def test_bounds_period_wins() -> None:
    o = order(dosages=(Dosage(bounds_start=date(2026, 1, 3), bounds_end=date(2026, 1, 9)),))
    assert treatment_period(o, AS_OF) == (date(2026, 1, 3), date(2026, 1, 9))
    assert not is_current(o, AS_OF)


def test_bounds_duration_counts_from_start() -> None:
    o = order(dosages=(Dosage(bounds_days=10),))
    assert treatment_period(o, AS_OF) == (date(2026, 1, 1), date(2026, 1, 10))


def test_supply_times_repeats() -> None:
    o = order(dispense=Dispense(supply_days=30, repeats=2))
    assert treatment_period(o, AS_OF) == (date(2026, 1, 1), date(2026, 3, 31))


def test_validity_period_start_and_end() -> None:
    o = order(authored=date(2025, 12, 1),
              dispense=Dispense(validity_start=date(2025, 12, 5), validity_end=date(2025, 12, 20)))
    assert treatment_period(o, AS_OF) == (date(2025, 12, 5), date(2025, 12, 20))


def test_draft_without_date_starts_at_as_of() -> None:
    o = order(authored=None, draft=True, dispense=Dispense(supply_days=7))
    assert treatment_period(o, AS_OF) == (AS_OF, date(2026, 1, 21))


def test_unknown_start_open_end_overlaps_everything_current() -> None:
    a = order(authored=None)
    b = order("MedicationRequest/b", authored=date(2020, 1, 1), dispense=Dispense(supply_days=30))
    assert overlaps(a, b, AS_OF)


def test_non_overlapping_periods() -> None:
    a = order(dispense=Dispense(supply_days=10))  # 1–10 Jan
    b = order("MedicationRequest/b", authored=date(2026, 1, 11))
    assert not overlaps(a, b, AS_OF)
    c = order("MedicationRequest/c", authored=date(2026, 1, 10))
    assert overlaps(a, c, AS_OF) and overlaps(c, a, AS_OF)


def test_future_line_is_not_extended_backwards() -> None:
    a = order(authored=date(2026, 2, 1))
    b = order("MedicationRequest/b", authored=date(2026, 1, 1), dispense=Dispense(supply_days=20))
    assert effective_interval(a, AS_OF) == (date(2026, 2, 1), date(2026, 2, 1))
    assert not overlaps(a, b, AS_OF)


@pytest.mark.parametrize("status", ["cancelled", "entered-in-error", "revoked", "not-taken", "not-done",
                                    "declined", "not-taking"])
def test_statuses_that_do_not_count(status: str) -> None:
    a = order(status=status)
    b = order("MedicationRequest/b")
    assert not counts(a)
    assert not overlaps(a, b, AS_OF)
    assert not is_current(a, AS_OF)


@pytest.mark.parametrize("status", ["completed", "stopped", "ended"])
def test_ended_line_counts_over_its_written_period(status: str) -> None:
    """A past course (a 10-day supply from 1 Jan) was taken: it overlaps a line of 5 Jan, not one of 12 Jan."""
    a = order(status=status, dispense=Dispense(supply_days=10))
    assert counts(a)
    assert effective_interval(a, AS_OF) == (date(2026, 1, 1), date(2026, 1, 10))
    assert overlaps(a, order("MedicationRequest/b", authored=date(2026, 1, 5)), AS_OF)
    assert not overlaps(a, order("MedicationRequest/c", authored=date(2026, 1, 12)), AS_OF)
    assert not is_current(a, AS_OF)
    # a later as_of changes nothing about it
    assert effective_interval(a, date(2027, 6, 1)) == effective_interval(a, AS_OF)


@pytest.mark.parametrize("status", ["completed", "stopped", "ended"])
def test_ended_line_without_written_end_is_its_first_day(status: str) -> None:
    """Proven taken on its first day only: it overlaps a line written that day, not a later one."""
    a = order(status=status)
    assert effective_interval(a, AS_OF) == (date(2026, 1, 1), date(2026, 1, 1))
    assert overlaps(a, order("MedicationRequest/b"), AS_OF)
    assert not overlaps(a, order("MedicationRequest/c", authored=date(2026, 1, 2)), AS_OF)
    assert duration_days(a, AS_OF) == 1


def test_as_of_closes_only_the_unknown_stop() -> None:
    """A 30-day line: completed runs to its written end whatever ``as_of``; stopped or ended was halted
    on an unknown day, closed the day before ``as_of`` when that falls within the written period."""
    for as_of in (date(2026, 1, 2), AS_OF, date(2027, 1, 1)):
        done = order(status="completed", dispense=Dispense(supply_days=30))
        assert effective_interval(done, as_of) == (date(2026, 1, 1), date(2026, 1, 30))
    for status in ("stopped", "ended"):
        line = order(status=status, dispense=Dispense(supply_days=30))
        assert effective_interval(line, AS_OF) == (date(2026, 1, 1), date(2026, 1, 14))
        assert effective_interval(line, date(2027, 1, 1)) == (date(2026, 1, 1), date(2026, 1, 30))
    same_day = order(status="stopped", authored=AS_OF)
    assert effective_interval(same_day, AS_OF) == (AS_OF, AS_OF)


@pytest.mark.parametrize("status", ["active", "on-hold", "draft", "unknown"])
def test_statuses_that_count(status: str) -> None:
    assert overlaps(order(status=status), order("MedicationRequest/b"), AS_OF)


def test_far_future_date_and_huge_durations_are_clamped() -> None:
    """authoredOn 9999-12-31 or absurd durations give date.max, never an OverflowError."""
    far = order(authored=date(9999, 12, 31), dosages=(Dosage(bounds_days=30),))
    assert treatment_period(far, AS_OF) == (date(9999, 12, 31), date.max)
    huge = order(dosages=(Dosage(bounds_days=1e12),))
    assert treatment_period(huge, AS_OF) == (date(2026, 1, 1), date.max)
    supply = order(authored=date(9999, 12, 1), dispense=Dispense(supply_days=30, repeats=10**9))
    assert treatment_period(supply, AS_OF)[1] == date.max
    assert overlaps(far, huge, AS_OF)
    assert duration_days(huge, AS_OF) == (date.max - date(2026, 1, 1)).days + 1
