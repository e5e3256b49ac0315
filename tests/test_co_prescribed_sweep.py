"""The protocols' co-prescribed test (``medication`` criterion): the sweep used above
``CO_PRESCRIBED_SCAN`` lines of a class finds, for every order, the line a scan finds (seeded records)."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest
from tests.test_iatro_support import line
from tests.test_security_bounded_cost import _repeated, _with_past_nsaid_courses

from checker import check, periods
from checker.model import Concept, PatientRecord, ServiceOrder
from checker.protocols import engine

AS_OF = date(2026, 1, 15)
STATUSES = ["active"] * 4 + ["completed", "stopped", "cancelled", "entered-in-error", "on-hold"]


def _scan(lines: list[tuple[Any, str]], order: Any, day: date) -> int:
    """What the co-prescribed test's scan finds (position in ``lines``, -1 for none)."""
    for p, (other, _) in enumerate(lines):
        if other is order:
            continue
        if isinstance(order, ServiceOrder):
            lo, hi = periods.effective_interval(other, AS_OF)
            if lo <= day <= hi:
                return p
        elif periods.overlaps(order, other, AS_OF):
            return p
    return -1


@pytest.mark.parametrize("seed", range(40))
def test_sweep_finds_the_line_the_scan_finds(seed: int) -> None:
    rng = random.Random(seed)
    orders = []
    for i in range(rng.randrange(1, 60)):
        authored = None if rng.random() < 0.1 else date(2025, 1, 1) + timedelta(days=rng.randrange(0, 400))
        o = line(f"m{i}", "ibuprofene", status=rng.choice(STATUSES), authored=authored,
                 supply_days=rng.choice([None, 1, 5, 30, 90]))
        orders.append(o)
        if rng.random() < 0.1:
            orders.append(o)  # the same line read twice
    services = [ServiceOrder(ref=f"ServiceRequest/s{i}", status="active", intent="order", code=Concept(text="x"),
                             authored_on=date(2025, 1, 1) + timedelta(days=rng.randrange(0, 420)))
                for i in range(rng.randrange(0, 10))]
    record = PatientRecord(patient=None, medication_orders=orders, service_orders=services)  # type: ignore[arg-type]
    lines = [(o, "M01AE01") for o in orders if periods.counts(o) and rng.random() < 0.7]
    if not lines:
        return
    for is_line in (True, False):
        queries, not_taken = engine._co_prescribed_queries(record, is_line, AS_OF)
        first = engine._first_overlapping(lines, queries, AS_OF)
        for o in not_taken:
            assert _scan(lines, o, AS_OF) == -1
        for o, lo, _ in queries:
            assert first[id(o)] == _scan(lines, o, lo), (seed, o.ref)


def test_protocol_findings_are_the_same_by_sweep_and_by_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    sample = "OP002/fail-omeprazole-renouvellements-mensuels.json"
    bundle = _with_past_nsaid_courses(_repeated(sample, 40, 30), 30)
    # NSAID courses during the PPI treatment too: some lines are co-prescribed
    for e in bundle["entry"][-10:]:
        e["resource"]["authoredOn"] = (date(2025, 12, 20) - timedelta(days=7 * int(e["resource"]["id"][6:]) % 600)
                                       ).isoformat()
    found: list[int] = []
    real = engine._first_overlapping

    def sweep(*args: Any) -> dict[int, int]:
        out = real(*args)
        found.extend(out.values())
        return out

    monkeypatch.setattr(engine, "_first_overlapping", sweep)
    swept = [f.to_dict() for f in check(bundle, as_of="2026-01-15", select=["OP002"]).findings]
    assert any(p >= 0 for p in found) and any(p < 0 for p in found)  # the sweep ran, and found lines
    monkeypatch.setattr(engine, "CO_PRESCRIBED_SCAN", 10**9)
    scanned = [f.to_dict() for f in check(bundle, as_of="2026-01-15", select=["OP002"]).findings]
    assert swept == scanned and swept
