"""Indicator tallies with each line's ATC scopes remembered (:class:`AtcScopes`), against the plain
test (``_atc_match`` below, per indicator and scope): over every ATC code the referentials ship (BDPM
CIS_MITM, substances/atc.tsv, the level-4 table) and each of their prefixes, alone and in seeded
sets, and over seeded patient records, with a memory small enough to be emptied on the way."""

from __future__ import annotations

import gzip
import random
from datetime import date, timedelta
from collections.abc import Sequence
from typing import Any

import pytest

from checker.audit import indicators
from checker.audit.indicators import (OVERALL, _add, _requester, _usable, _written_at_age,
                                      longest_coverage, most_substances_together, order_interval, tally_records)
from checker.model import (Concept, Dosage, MedicationIdentity, MedicationOrder, Patient, PatientRecord,
                           SubstanceMatch)
from checker.referentials import Referentials
from checker.referentials.indicators import REF_ID
from tests.conftest import REPO

SEED = 1817
AS_OF = date(2026, 1, 15)


def _atc_match(order: MedicationOrder, prefixes: Sequence[str]) -> bool:
    """Whether the order's drug has an ATC code under one of ``prefixes``, a component's or a
    combination's own: the plain test :class:`AtcScopes` remembers."""
    ident = order.identity
    if not prefixes or ident is None:
        return False
    prefixes = tuple(prefixes)  # (already a tuple from the referential: no copy) one call tests them all
    return any(a.startswith(prefixes) for a in ident.any_atc)


def _atc_table() -> list[str]:
    codes: set[str] = set()
    with gzip.open(REPO / "referentials" / "bdpm" / "CIS_MITM.tsv.gz", "rt", encoding="utf-8", errors="replace") as f:
        codes.update(line.split("\t")[1].strip() for line in f if line.count("\t") >= 1)
    for path, col in (("substances/atc.tsv", 1), ("iatrogenic/atc-level4.tsv", 0)):
        for line in (REPO / "referentials" / path).read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) > col and not line.startswith("#") and parts[col].strip() not in ("", "code", "ATC code"):
                codes.add(parts[col].strip())
    codes.discard("")
    return sorted(codes | {c[:n] for c in codes for n in range(1, len(c))})


@pytest.fixture(scope="module")
def defs() -> Any:
    return Referentials().get(REF_ID)


@pytest.fixture(scope="module")
def table() -> list[str]:
    codes = _atc_table()
    assert len(codes) > 2000 and {"C10AA05", "N05BA08", "J01CR02", "B01AC06", "A10AE04"} <= set(codes)
    return codes


def _order(ref: str, atc: tuple[str, ...] | None, **kw: Any) -> MedicationOrder:
    confidence, product, group = kw.pop("confidence", 1.0), kw.pop("product", ""), kw.pop("group", None)
    ident = None if atc is None else MedicationIdentity(
        substances=tuple(SubstanceMatch(f"s{i}-{a.lower()}", a.lower(), atc=(a,)) for i, a in enumerate(atc)) or (
            SubstanceMatch("none", "none"),), method="cip13", confidence=confidence, product=product,
        generic_group=group)
    return MedicationOrder(ref=ref, status=kw.pop("status", "active"), intent="order", medication=Concept(text=ref),
                           identity=ident, **kw)


def test_remembered_scopes_are_the_plain_atc_tests_over_the_whole_table(defs: Any, table: list[str],
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(indicators, "SCOPE_ENTRIES", 64)  # emptied many times over
    scopes = indicators.AtcScopes(defs)
    rng = random.Random(SEED)
    sets: list[tuple[str, ...] | None] = [None, ()] + [(c,) for c in table]
    sets += [tuple(rng.sample(table, rng.randrange(2, 5))) for _ in range(3000)]
    for _ in range(2):  # the second time from the memory, where it was kept
        for atc in sets:
            order = _order("o", atc)
            mask = scopes.mask(order)
            for ind, (den, num) in zip(defs, scopes.bits):
                assert bool(mask & den) == _atc_match(order, ind.denominator_atc), (atc, ind.id)
                assert bool(mask & num) == _atc_match(order, ind.numerator_atc), (atc, ind.id)
    assert len(scopes._memo) <= 64


def _plain_tally(records: list[PatientRecord], defs: Any, as_of: date) -> dict[tuple[str, str], list[int]]:
    """The tallies counted with :func:`_atc_match` for every test (the code before the memory)."""
    def level(ind: Any, orders: list[MedicationOrder], record: PatientRecord, all_orders: list[MedicationOrder]
              ) -> tuple[bool, bool]:
        if ind.kind == "patient_duration":
            spans = [iv for o in orders if _atc_match(o, ind.denominator_atc) for iv in [order_interval(o)] if iv]
            return (True, longest_coverage(spans) > (ind.max_days or 0)) if spans else (False, False)
        if ind.kind == "patient_share":
            orders = _written_at_age(orders, record, ind.min_age, as_of)
            den = any(_atc_match(o, ind.denominator_atc) for o in orders) if ind.denominator_atc else bool(orders)
            return den, den and any(_atc_match(o, ind.numerator_atc) for o in orders)
        if ind.kind == "patient_polypharmacy":
            if not _written_at_age(orders, record, ind.min_age or 0, as_of):
                return False, False
            return True, most_substances_together(all_orders, record, ind.min_age or 0, as_of) >= (ind.min_substances or 0)
        return False, False

    tally: dict[tuple[str, str], list[int]] = {}
    for record in records:
        orders = [o for o in record.medication_orders if _usable(o)]
        if not orders:
            continue
        by_requester: dict[str, list[MedicationOrder]] = {}
        for o in orders:
            by_requester.setdefault(_requester(o), []).append(o)
        for ind in defs:
            if ind.kind == "line_share":
                for o in orders:
                    if _atc_match(o, ind.denominator_atc):
                        ident = o.identity
                        num = (ind.in_repertoire and ident.generic_group is not None) or any(
                            p in (ident.product or "").upper() for p in ind.product_contains)
                        _add(tally, ind.id, OVERALL, num)
                        _add(tally, ind.id, _requester(o), num)
                continue
            den, num = level(ind, orders, record, orders)
            _add(tally, ind.id, OVERALL, num, den)
            for who, theirs in by_requester.items():
                d, n = (den, num) if ind.kind == "patient_polypharmacy" else level(ind, theirs, record, orders)
                _add(tally, ind.id, who, n, d)
    return tally


def _records(rng: random.Random, table: list[str], defs: Any, n: int) -> list[PatientRecord]:
    scoped = sorted({p for ind in defs for p in (*ind.denominator_atc, *ind.numerator_atc)})
    near = [c for c in table if any(c.startswith(p[:3]) for p in scoped)]  # codes in and around the scopes
    out = []
    for i in range(n):
        orders = []
        for k in range(rng.randrange(12)):
            pool = rng.choice([near, near, table, scoped])
            atc = None if rng.random() < 0.05 else tuple(rng.choice(pool) for _ in range(rng.choice([1, 1, 1, 2, 0])))
            start = AS_OF - timedelta(days=rng.randrange(400))
            orders.append(_order(
                f"MedicationRequest/{i}-{k}", atc, requester=rng.choice([None, "Practitioner/a", "Practitioner/b"]),
                authored_on=rng.choice([start, None]), status=rng.choice(["active", "active", "completed", "cancelled"]),
                dosages=(Dosage(bounds_days=rng.choice([7.0, 14.0, 30.0, 90.0])),) if rng.random() < 0.7 else (),
                confidence=rng.choice([1.0, 1.0, 0.3]), group=rng.choice([None, "g"]),
                product=rng.choice(["", "ABASAGLAR 100", "LANTUS"])))
        born = date(rng.randrange(1925, 2010), rng.randrange(1, 13), rng.randrange(1, 29))
        out.append(PatientRecord(patient=Patient(f"Patient/{i}", birth_date=rng.choice([born, None])),
                                 medication_orders=orders))
    return out


@pytest.mark.parametrize("seed", [SEED, SEED + 1])
def test_tallies_with_remembered_scopes_are_the_plain_tallies(defs: Any, table: list[str], seed: int,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(indicators, "SCOPE_ENTRIES", 40)
    rng = random.Random(seed)
    records = _records(rng, table, defs, 400)
    expected = _plain_tally(records, defs, AS_OF)
    assert tally_records(records, defs, AS_OF) == expected
    assert tally_records(records, defs, AS_OF) == expected  # the memory kept from the first count
    counted = {i for i, _ in expected}
    assert counted == {ind.id for ind in defs}  # every indicator counted something
