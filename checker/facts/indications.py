"""The indications of an order: why it was written, as the record states it on the order's day.

In order of authority:

1. ``reason``: the order's ``reasonCode``; ``reference``: the Conditions its ``reasonReference``
   points at (refuted or entered-in-error ones excepted);
2. ``order-text``: the order's own words (a ServiceRequest's code text « Mammographie bilatérale
   de dépistage », a line's note or dosage text « pour cystite ») — read only when the order gives
   no reason, and matched with negation like any text;
3. ``inferred``: when the order gives no reason, each Condition present on the order's day that
   began or was recorded at most *N* days before it (*N* from the facts tables, a project
   convention) is its probable indication. Such an indication is marked ``inferred`` and cites the
   Condition, so a finding built on it says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal, cast

from checker.facts.record import conditions_on
from checker.facts.tables import FactTables
from checker.model import NOT_TRUE, Concept, Condition, MedicationOrder, PatientRecord, ServiceOrder

How = Literal["reason", "reference", "order-text", "inferred"]


@dataclass(frozen=True, slots=True)
class Indication:
    concept: Concept
    condition: Condition | None
    how: How

    @property
    def inferred(self) -> bool:
        return self.how == "inferred"


def ref_tail(ref: str) -> str:
    """The resource id a reference points at: ``Condition/x``, ``#x``, ``urn:uuid:x``, absolute URLs."""
    tail = ref.strip().lstrip("#").rsplit("/", 1)[-1]
    for prefix in ("urn:uuid:", "urn:oid:"):
        if tail.startswith(prefix):
            return tail[len(prefix):]
    return tail


def _own_text(order: MedicationOrder | ServiceOrder) -> list[Concept]:
    texts: list[str] = []
    if isinstance(order, ServiceOrder):
        texts.extend(order.code.all_texts())
    else:
        texts.extend(d.text for d in order.dosages if d.text)
    if order.note:
        texts.append(order.note)
    return [Concept(text=t) for t in dict.fromkeys(texts) if t]


def indications(record: PatientRecord, order: MedicationOrder | ServiceOrder, day: date,
                tables: FactTables | None = None) -> list[Indication]:
    """Every indication of ``order`` judged on ``day`` (see module docstring); ``tables`` gives the
    inferred-indication window (no inference without it)."""
    out: list[Indication] = [Indication(c, None, "reason") for c in order.reasons]
    if order.reason_refs:
        by_tail = _conditions_by_id(record)
        for ref in order.reason_refs:
            for cond in by_tail.get(ref_tail(ref), ()):
                out.append(Indication(cond.code, cond, "reference"))
    if order.reasons or order.reason_refs:
        return out
    out.extend(Indication(c, None, "order-text") for c in _own_text(order))
    if tables is not None and tables.inferred_indication_days >= 0:
        limit = tables.inferred_indication_days
        for cond in conditions_on(record, day):
            first = cond.recorded or cond.onset
            if cond.onset is not None and cond.recorded is not None:
                first = max(cond.onset, cond.recorded)
            if first is not None and 0 <= (day - first).days <= limit:
                out.append(Indication(cond.code, cond, "inferred"))
    return out


def _conditions_by_id(record: PatientRecord) -> dict[str, list[Condition]]:
    """The record's conditions that are not refuted nor entered in error, by the id a reference
    names (:func:`ref_tail`), in record order; built once per record, not rescanned per line."""
    key = ("conditions-by-id", len(record.conditions))
    found = cast("dict[str, list[Condition]] | None", record.memo.get(key))
    if found is None:
        found = {}
        for cond in record.conditions:
            if cond.verification_status not in NOT_TRUE:
                found.setdefault(ref_tail(cond.ref), []).append(cond)
        record.memo[key] = found
    return found
