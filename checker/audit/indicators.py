"""Prescriber indicators (ROSP 2016 spirit): tallies per requester and overall.

Definitions are data (``referentials/indicators/rosp2016.json``, loaded by
:mod:`checker.referentials.indicators`); this module only counts. A tally maps
``(indicator id, requester)`` to ``[numerator, denominator]``; requester ``"*"`` is the whole
input. Counts are integers, so tallies from any number of shards add up exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import Any

from checker import periods
from checker.facts.record import order_day
from checker.model import NOT_TAKEN, RULE_CONFIDENCE, MedicationOrder, PatientRecord
from checker.referentials.indicators import REF_ID, Indicator

OVERALL = "*"
UNKNOWN_REQUESTER = "(inconnu)"

Tally = dict[tuple[str, str], list[int]]


def definitions(refs: Any) -> tuple[Indicator, ...]:
    """The indicator definitions from the referentials (empty when the referential is absent)."""
    return refs.get(REF_ID) if refs.has(REF_ID) else ()


SCOPE_ENTRIES = 20_000
"""Bound on the ATC code sets whose scopes :class:`AtcScopes` remembers (emptied when full)."""


class AtcScopes:
    """Which ATC scopes (``denominator_atc``, ``numerator_atc``) of the indicator definitions a
    drug's ATC codes fall in, as a bit mask remembered by the set of codes: a line is tested once per
    distinct drug instead of once per indicator, scope and requester (the prefix tests
    made before, about 30 per line). ``bits[i]``: the (denominator, numerator) bits of ``defs[i]``, 0 for
    an empty scope (which matches nothing)."""

    def __init__(self, defs: Sequence[Indicator]) -> None:
        self.defs = defs
        scopes = list(dict.fromkeys(p for ind in defs for p in (ind.denominator_atc, ind.numerator_atc) if p))
        self._tests = [(tuple(p), 1 << i) for i, p in enumerate(scopes)]
        bit = {p: 1 << i for i, p in enumerate(scopes)}
        self.bits = [(bit.get(ind.denominator_atc, 0), bit.get(ind.numerator_atc, 0)) for ind in defs]
        self._memo: dict[frozenset[str], int] = {}

    def mask(self, order: MedicationOrder) -> int:
        ident = order.identity
        if ident is None:
            return 0
        codes = ident.any_atc  # a combination's own code too (J01CR02)
        found = self._memo.get(codes)
        if found is None:
            found = 0
            for prefixes, b in self._tests:
                if any(a.startswith(prefixes) for a in codes):
                    found |= b
            if len(self._memo) >= SCOPE_ENTRIES:
                self._memo.clear()
            self._memo[codes] = found
        return found


_SCOPES: list[AtcScopes] = []


def atc_scopes(defs: Sequence[Indicator]) -> AtcScopes:
    """The :class:`AtcScopes` of ``defs`` (the last one made is kept: the audit asks for the same
    definitions on every chunk)."""
    if not _SCOPES or _SCOPES[0].defs is not defs:
        _SCOPES[:] = [AtcScopes(defs)]
    return _SCOPES[0]


def _usable(order: MedicationOrder) -> bool:
    """An identified line that was prescribed: not cancelled, revoked or entered in error, and not a
    record of a drug not taken (:data:`~checker.model.NOT_TAKEN`)."""
    ident = order.identity
    return (order.status not in NOT_TAKEN and ident is not None and bool(ident.substances)
            and ident.confidence >= RULE_CONFIDENCE)


def _requester(order: MedicationOrder) -> str:
    return order.requester or UNKNOWN_REQUESTER


def order_interval(order: MedicationOrder) -> tuple[date, date] | None:
    """Days covered by an order: [start, end) from the dosage bounds or the dispensed supply."""
    start = order.authored_on or (order.dispense.validity_start if order.dispense else None)
    days: float | None = None
    for d in order.dosages:
        if d.bounds_days:
            days = max(days or 0.0, d.bounds_days)
        if start is None and d.bounds_start:
            start = d.bounds_start
    if days is None and order.dispense is not None and order.dispense.supply_days:
        days = order.dispense.supply_days * (1 + max(order.dispense.repeats, 0))
    if start is None or not days:
        return None
    return start, start + timedelta(days=round(days))


def longest_coverage(intervals: Iterable[tuple[date, date]]) -> int:
    """Longest run of days covered without interruption by the intervals."""
    best = 0
    cur: tuple[date, date] | None = None
    for s, e in sorted(intervals):
        if cur is not None and s <= cur[1]:
            cur = (cur[0], max(cur[1], e))
        else:
            cur = (s, e)
        best = max(best, (cur[1] - cur[0]).days)
    return best


def _add(tally: Tally, ind: str, who: str, num: bool, den: bool = True) -> None:
    if not den:
        return
    cell = tally.setdefault((ind, who), [0, 0])
    cell[1] += 1
    if num:
        cell[0] += 1


def _written_at_age(orders: list[MedicationOrder], record: PatientRecord, min_age: int | None, as_of: date
                    ) -> list[MedicationOrder]:
    """The orders written when the patient had reached ``min_age`` (age on each order's own day)."""
    if min_age is None:
        return orders
    out = []
    for o in orders:
        age = record.age_on(order_day(o, as_of))
        if age is not None and age >= min_age:
            out.append(o)
    return out


def most_substances_together(orders: Iterable[MedicationOrder], record: PatientRecord, min_age: int, as_of: date
                             ) -> int:
    """The largest number of distinct substances taken on one day when the patient was ``min_age`` or
    older (ended lines over the days they were taken, open ones up to ``as_of``; lines without a
    start left out): :func:`checker.periods.largest_concurrent` from the day the patient reached
    ``min_age``."""
    birth = record.patient.birth_date if record.patient is not None else None
    if birth is None:
        return 0
    try:
        since = birth.replace(year=birth.year + min_age)
    except ValueError:  # born on 29 February
        since = date(birth.year + min_age, 3, 1)
    members = [(o, k) for o in orders if periods.counts(o) and o.identity is not None
               and periods.treatment_start(o) is not None for k in o.identity.substance_keys]
    return len({k for _, k in periods.largest_concurrent(members, as_of, since=since)})


def _patient_level(ind: Indicator, bits: tuple[int, int], masks: dict[int, int], orders: list[MedicationOrder],
                   record: PatientRecord, as_of: date, all_orders: list[MedicationOrder]) -> tuple[bool, bool]:
    """(in denominator, in numerator) for one patient seen through ``orders``. Ages are the patient's
    age on each order's own day, never on the audit date: a later audit does not move a patient into
    an age band by ageing alone. ``bits``: the indicator's scope bits, ``masks``: each order's
    :meth:`AtcScopes.mask` by ``id``."""
    den_bit, num_bit = bits
    if ind.kind == "patient_duration":
        spans = [iv for o in orders if masks[id(o)] & den_bit for iv in [order_interval(o)] if iv]
        if not spans:
            return False, False
        return True, longest_coverage(spans) > (ind.max_days or 0)
    if ind.kind == "patient_share":
        orders = _written_at_age(orders, record, ind.min_age, as_of)
        den = any(masks[id(o)] & den_bit for o in orders) if ind.denominator_atc else bool(orders)
        return den, den and any(masks[id(o)] & num_bit for o in orders)
    if ind.kind == "patient_polypharmacy":
        if not _written_at_age(orders, record, ind.min_age or 0, as_of):
            return False, False
        together = most_substances_together(all_orders, record, ind.min_age or 0, as_of)
        return True, together >= (ind.min_substances or 0)
    return False, False


_DENOMINATOR_SCOPED = frozenset({"line_share", "patient_duration", "patient_share"})
"""Kinds whose denominator, when the indicator has a ``denominator_atc``, needs a line in that scope."""


def tally_records(records: Sequence[PatientRecord], defs: Sequence[Indicator], as_of: date) -> Tally:
    """Count every indicator for these (identified) patient records. ``as_of`` only closes the
    periods of lines still running (and dates an undated order)."""
    tally: Tally = {}
    scopes = atc_scopes(defs)
    for record in records:
        orders = [o for o in record.medication_orders if _usable(o)]
        if not orders:
            continue
        masks = {id(o): scopes.mask(o) for o in orders}
        anywhere = 0  # the scopes some line of the patient is in
        for m in masks.values():
            anywhere |= m
        by_requester: dict[str, list[MedicationOrder]] = {}
        for o in orders:
            by_requester.setdefault(_requester(o), []).append(o)
        for ind, bits in zip(defs, scopes.bits):
            if ind.denominator_atc and not anywhere & bits[0] and ind.kind in _DENOMINATOR_SCOPED:
                continue  # no line in the denominator's scope: nothing counted, for the patient or any requester
            if ind.kind == "line_share":
                den_bit = bits[0]
                for o in orders:
                    if not masks[id(o)] & den_bit:
                        continue
                    ident = o.identity
                    assert ident is not None
                    num = (ind.in_repertoire and ident.generic_group is not None) or any(
                        p in (ident.product or "").upper() for p in ind.product_contains)
                    _add(tally, ind.id, OVERALL, num)
                    _add(tally, ind.id, _requester(o), num)
                continue
            den, num = _patient_level(ind, bits, masks, orders, record, as_of, orders)
            _add(tally, ind.id, OVERALL, num, den)
            for who, theirs in by_requester.items():
                if ind.kind == "patient_polypharmacy":
                    _add(tally, ind.id, who, num, den)  # a patient property, shown to each prescriber
                else:
                    d, n = _patient_level(ind, bits, masks, theirs, record, as_of, orders)
                    _add(tally, ind.id, who, n, d)
    return tally


def merge(into: Tally, other: Tally) -> None:
    for key, (n, d) in other.items():
        cell = into.setdefault(key, [0, 0])
        cell[0] += n
        cell[1] += d


def to_rows(tally: Tally, defs: Sequence[Indicator], lang: str = "fr") -> list[dict[str, Any]]:
    """One row per indicator and scope (overall first, then requesters in order)."""
    rows: list[dict[str, Any]] = []
    counted: dict[str, list[str]] = {}  # indicator → its scopes in the tally (one pass over it)
    for i, who in tally:
        counted.setdefault(i, []).append(who)
    for ind in defs:
        scopes = sorted(counted.get(ind.id, ()), key=lambda w: (w != OVERALL, w))
        if OVERALL not in scopes:
            scopes.insert(0, OVERALL)
        for who in scopes:
            n, d = tally.get((ind.id, who), [0, 0])
            rows.append({
                "indicator": ind.id,
                "scope": "overall" if who == OVERALL else "requester",
                "requester": "" if who == OVERALL else who,
                "numerator": n,
                "denominator": d,
                "value_percent": round(100.0 * n / d, 1) if d else None,
                "reference_percent": ind.reference,
                "better": ind.direction,
                "title": ind.text("title", lang),
                "numerator_definition": ind.text("numerator", lang),
                "denominator_definition": ind.text("denominator", lang),
                "source": ind.source.cite(),
                "source_url": ind.source.url,
            })
    return rows


def tally_to_json(tally: Tally) -> list[list[Any]]:
    return [[i, w, n, d] for (i, w), (n, d) in sorted(tally.items())]


def tally_from_json(data: list[list[Any]]) -> Tally:
    return {(i, w): [n, d] for i, w, n, d in data}


def merge_json(into: Tally, data: list[list[Any]]) -> None:
    """``merge(into, tally_from_json(data))`` without building the shard's tally first (the merge
    adds a tally of every prescriber per shard)."""
    get = into.get
    for i, w, n, d in data:
        cell = get((i, w))
        if cell is None:
            into[i, w] = [n, d]
        else:
            cell[0] += n
            cell[1] += d
