"""Security: one patient with thousands of lines must not explode (issue 16, bounded cost).

Per-patient work is n log n: concurrent lines are found by a sweep over time-sorted periods, and a
pair of products repeated over thousands of lines gives one finding naming every line, not one per
pair of lines. Counted, never timed (the timing lives in benchmarks/bounded_check.py).
"""

from __future__ import annotations

import copy
import json
import random
from datetime import date, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

import checker.rules.interactions as ix
from checker import check
from checker.model import Concept, MedicationOrder
from checker.rules import pairing
from tests.conftest import SAMPLES

SAMPLE = SAMPLES / "scenarios" / "iatrogenic" / "simvastatine-clarithromycine.json"


def _one_patient(copies: int) -> dict[str, Any]:
    """The simvastatin + clarithromycin sample with each order repeated ``copies`` times (renewals
    written one day apart, all running together on the day checked)."""
    bundle = json.loads(SAMPLE.read_text(encoding="utf-8"))
    entries = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "MedicationRequest"]
    orders = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationRequest"]
    for k in range(copies):
        for e in orders:
            dup = copy.deepcopy(e)
            dup["resource"]["id"] = f"{e['resource']['id']}-{k}"
            dup["fullUrl"] = f"{e['fullUrl']}-{k}"
            dup["resource"]["authoredOn"] = (date(2026, 1, 1) + timedelta(days=k % 10)).isoformat()
            entries.append(dup)
    return {**bundle, "entry": entries}


def test_repeated_products_give_one_finding_per_pair_of_products(monkeypatch: Any) -> None:
    settled: list[int] = []
    real = ix.settle
    monkeypatch.setattr(ix, "settle", lambda entry, ctx: settled.append(1) or real(entry, ctx))
    copies = 300  # 600 lines: tens of thousands of concurrent simvastatin-clarithromycin pairs of lines
    report = check(_one_patient(copies), as_of="2026-01-15", select=["IX001", "DU001"])
    ix001 = [f for f in report.findings if f.rule == "IX001"]
    assert len(ix001) == 1 and ix001[0].level == "CI"
    assert len(ix001[0].implicated) == 2 * copies  # every line named
    assert ix001[0].evidence["line_pairs"] > 10_000
    assert len(settled) <= 10  # settled once per pair of line wordings, not per pair of lines
    du001 = [f for f in report.findings if f.rule == "DU001"]
    assert len(du001) <= 2  # simvastatin twice, clarithromycin twice: once per product


def test_few_repeats_still_give_one_finding_per_pair_of_lines() -> None:
    report = check(_one_patient(2), as_of="2026-01-15", select=["IX001"])
    assert len([f for f in report.findings if f.rule == "IX001"]) == 4


def _order(i: int, lo: int | None, length: int | None, status: str = "active") -> MedicationOrder:
    from checker.model import Dosage

    start = date(2025, 1, 1) + timedelta(days=lo) if lo is not None else None
    end = start + timedelta(days=length) if start is not None and length is not None else None
    return MedicationOrder(ref=f"MedicationRequest/{i}", status=status, intent="order",
                           medication=Concept(text=f"x{i}"),
                           dosages=(Dosage(bounds_start=start, bounds_end=end),))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.one_of(st.none(), st.integers(0, 60)),
                          st.one_of(st.none(), st.integers(-3, 40)), st.sampled_from(["active", "active", "stopped"])),
                min_size=0, max_size=30))
def test_sweep_and_count_equal_all_pairs(spec: list[tuple[int, int | None, int | None, str]]) -> None:
    """The sweep finds exactly the pairs :func:`checker.periods.overlaps` finds comparing all pairs."""
    from checker.periods import overlaps

    as_of = date(2025, 2, 1)
    orders = [_order(i, lo, n, status) for i, (_, lo, n, status) in enumerate(spec)]
    product = {id(o): p for o, (p, _, _, _) in zip(orders, spec)}
    groups = pairing.group_lines(orders, as_of, key=lambda o: product[id(o)])
    got: set[tuple[int, int]] = set()
    for pp in pairing.product_pairs(groups, lambda a, b: True):
        pairs = pp.pairs()
        assert len(pairs) == pp.count == pairing.overlap_count(pp.a, pp.b)
        got |= {(x.index, y.index) for x, y in pairs}
    want = {(i, j) for i in range(len(orders)) for j in range(i + 1, len(orders))
            if overlaps(orders[i], orders[j], as_of)}
    assert got == want


def test_pairing_cost_is_not_quadratic() -> None:
    """Counting the overlaps of 20,000 lines of two products does not visit the 10⁸ pairs."""
    rng = random.Random(3)
    orders = [_order(i, rng.randrange(0, 3000), rng.randrange(0, 30)) for i in range(20_000)]
    groups = pairing.group_lines(orders, date(2033, 1, 1), key=lambda o: int(o.ref.rsplit("/", 1)[1]) % 2)
    visited = 0
    real = pairing.bisect_right

    def counting(*args: Any) -> int:
        nonlocal visited
        visited += 1
        return real(*args)

    pairing.bisect_right = counting  # type: ignore[assignment]
    try:
        pps = list(pairing.product_pairs(groups, lambda a, b: True))
    finally:
        pairing.bisect_right = real  # type: ignore[assignment]
    assert all(pp.collapsed for pp in pps)
    assert visited <= 3 * 20_000  # one binary search per line and pair of products
    pairs_seen = 0
    sweep = pairing._sweep

    def counting_sweep(a: Any, b: Any) -> Any:
        nonlocal pairs_seen
        for pair in sweep(a, b):
            pairs_seen += 1
            yield pair

    pairing._sweep = counting_sweep  # type: ignore[assignment]
    try:
        involved = [pp.lines() for pp in pps]
    finally:
        pairing._sweep = sweep  # type: ignore[assignment]
    assert pairs_seen == 0 and sum(map(len, involved)) > 0  # the lines concerned, found without the pairs


def _largest_concurrent_all_pairs(members: list[tuple[MedicationOrder, str]], as_of: date) -> list[Any]:
    """PR006's former quadratic search, kept as the reference."""
    from checker.periods import effective_interval

    spans = [(effective_interval(o, as_of), o, k) for o, k in members]
    best: list[tuple[MedicationOrder, str]] = []
    for (lo, _), _, _ in spans:
        group = [(o, k) for (a, b), o, k in spans if a <= lo <= b]
        if len({k for _, k in group}) > len({k for _, k in best}):
            best = group
    return best


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("abcd"), st.one_of(st.none(), st.integers(0, 40)),
                          st.one_of(st.none(), st.integers(-2, 20))), min_size=1, max_size=25))
def test_pr006_sweep_equals_all_pairs(spec: list[tuple[str, int | None, int | None]]) -> None:
    from checker.periods import largest_concurrent

    as_of = date(2025, 2, 1)
    members = [(_order(i, lo, n), key) for i, (key, lo, n) in enumerate(spec)]
    got = largest_concurrent(members, as_of)
    want = _largest_concurrent_all_pairs(members, as_of)
    assert [(o.ref, k) for o, k in got] == [(o.ref, k) for o, k in want]


def test_pr006_cost_is_not_quadratic(monkeypatch: Any) -> None:
    """2,000 lines of one risk class: day comparisons grow as n log n, not n² (4 million before)."""
    import checker.periods as pr

    compared = 0

    class Day(date):
        def _count(self) -> None:
            nonlocal compared
            compared += 1

        def __lt__(self, other: Any) -> bool:
            self._count()
            return date.__lt__(self, other)

        def __le__(self, other: Any) -> bool:
            self._count()
            return date.__le__(self, other)

        def __gt__(self, other: Any) -> bool:
            self._count()
            return date.__gt__(self, other)

        def __ge__(self, other: Any) -> bool:
            self._count()
            return date.__ge__(self, other)

    def day(d: date) -> Day:
        return Day(d.year, d.month, d.day)

    rng = random.Random(5)
    n = 2_000
    members = [(_order(i, rng.randrange(0, 3000), rng.randrange(0, 30)), "abc"[i % 3]) for i in range(n)]
    real = pr.effective_interval
    monkeypatch.setattr(pr, "effective_interval", lambda o, as_of: tuple(map(day, real(o, as_of))))
    group = pr.largest_concurrent(members, date(2033, 1, 1))
    assert len({k for _, k in group}) == 3
    assert compared < 60 * n, compared


def _repeated(sample: str, copies: int, step_days: int) -> dict[str, Any]:
    """A rule sample with each of its MedicationRequests repeated ``copies`` times, the copies
    written ``step_days`` apart (counting back from the original date)."""
    bundle = json.loads((SAMPLES / "rules" / sample).read_text(encoding="utf-8"))
    entries = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "MedicationRequest"]
    for e in bundle["entry"]:
        if e["resource"]["resourceType"] != "MedicationRequest":
            continue
        for k in range(copies):
            dup = copy.deepcopy(e)
            dup["resource"]["id"] = f"{e['resource']['id']}-{k}"
            dup["fullUrl"] = f"{e.get('fullUrl', e['resource']['id'])}-{k}"
            day = date.fromisoformat(e["resource"]["authoredOn"][:10]) - timedelta(days=step_days * k)
            dup["resource"]["authoredOn"] = day.isoformat()
            entries.append(dup)
    return {**bundle, "entry": entries}


def _work(monkeypatch: Any, module: Any, name: str, bundle: dict[str, Any], rule: str) -> tuple[int, list[Any]]:
    """Calls of ``module.name`` while checking ``bundle`` with ``rule`` alone, and the findings."""
    calls = 0
    real = getattr(module, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    try:
        findings = check(bundle, as_of="2026-01-15", select=[rule]).findings
    finally:
        monkeypatch.setattr(module, name, real)
    return calls, [f for f in findings if f.rule == rule]


def test_op002_treatment_duration_reads_each_line_once_per_patient(monkeypatch: Any) -> None:
    """OP002's treatment-duration criterion merges a patient's lines into blocks once, not once per
    line: the treatment periods computed grow linearly with the lines (quadratically before)."""
    from checker import periods

    sample = "OP002/fail-omeprazole-renouvellements-mensuels.json"
    small, found_small = _work(monkeypatch, periods, "treatment_period", _repeated(sample, 100, 30), "OP002")
    large, found_large = _work(monkeypatch, periods, "treatment_period", _repeated(sample, 200, 30), "OP002")
    assert found_small and found_large  # months of renewals: the protocol flags them
    assert large <= 2.5 * small, (small, large)  # doubling the lines doubles the work (×4 before)
    assert large <= 10 * 400, large


def test_eq005_cotherapy_reads_each_line_once_per_patient(monkeypatch: Any) -> None:
    """EQ005's drop-cotherapy strategy (a PPI with a short NSAID course) classes a patient's lines
    once, not once per PPI line: class tests grow linearly with the lines (quadratically before)."""
    import checker.rules.cheaper as cheaper

    sample = "EQ005/fail-ppi-short-nsaid-low-risk.json"
    small, found_small = _work(monkeypatch, cheaper, "_atc_in", _repeated(sample, 150, 0), "EQ005")
    large, found_large = _work(monkeypatch, cheaper, "_atc_in", _repeated(sample, 300, 0), "EQ005")
    assert found_small and found_large
    assert large <= 2.5 * small, (small, large)


def _with_past_nsaid_courses(bundle: dict[str, Any], courses: int) -> dict[str, Any]:
    """``bundle`` with ``courses`` week-long NSAID courses (ATC M01AE01) written years before its
    lines, overlapping none of them."""
    template = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicationRequest")
    entries = list(bundle["entry"])
    for k in range(courses):
        dup = copy.deepcopy(template)
        res = dup["resource"]
        res.update(id=f"nsaid-{k}", status="completed",
                   authoredOn=(date(2000, 1, 1) + timedelta(days=10 * k)).isoformat(),
                   medicationCodeableConcept={"coding": [{"system": "http://www.whocc.no/atc", "code": "M01AE01",
                                                          "display": "Ibuprofène 400 mg"}], "text": "Ibuprofène 400 mg"})
        res["dispenseRequest"] = {"expectedSupplyDuration": {"value": 7, "unit": "d", "system": "http://unitsofmeasure.org",
                                                             "code": "d"}}
        dup["fullUrl"] = f"urn:uuid:nsaid-{k}"
        entries.append(dup)
    return {**bundle, "entry": entries}


def test_op002_co_prescribed_class_is_a_sweep_not_a_scan_per_line(monkeypatch: Any) -> None:
    """OP002's co-prescribed test (a PPI line asks whether an NSAID was taken with it) finds the first
    line of the class over the line's period by a sweep, not by comparing each line with every line of
    the class: with n PPI lines and n past NSAID courses, the comparisons of two lines' periods grow
    linearly (quadratically before)."""
    from checker import periods

    sample = "OP002/fail-omeprazole-renouvellements-mensuels.json"
    small, found_small = _work(monkeypatch, periods, "overlaps",
                               _with_past_nsaid_courses(_repeated(sample, 100, 30), 200), "OP002")
    large, found_large = _work(monkeypatch, periods, "overlaps",
                               _with_past_nsaid_courses(_repeated(sample, 200, 30), 400), "OP002")
    assert found_small and found_large  # long PPI treatment without a stated indication
    assert large <= 2.5 * small + 100, (small, large)  # ×4 when each line scans the class
    assert large <= 10 * 600, large
