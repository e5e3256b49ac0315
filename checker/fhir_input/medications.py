"""What an order or a medication record names (inline, contained or referenced Medication), its
dosages and its dispense request; identical elements of bulk inputs share one extraction."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date
from typing import Any

import orjson

from checker.fhir_input.dates import _cql_date, _ext_cql, _read_date, _read_end_date
from checker.fhir_input.elements import _Bad, _concept, _list, _num, _quantity, _ref, _s, _ucum_time
from checker.fhir_input.raw import RawResource
from checker.fhir_input.references import _Index
from checker.findings import Message
from checker.model import Concept, Dispense, Dosage, Ingredient, period_days

Medicated = tuple[Concept, tuple[Ingredient, ...], Concept | None, str]
"""What an order names: (code concept, ingredients, form, note)."""


def _medication(res: dict[str, Any], raw: RawResource, index: _Index) -> Medicated:
    """The ordered medication: (code concept, ingredients, form, note) from any FHIR version."""
    concept_value: Any = res.get("medicationCodeableConcept")
    reference: Any = res.get("medicationReference")
    path = "/medicationCodeableConcept"
    if isinstance(res.get("medication"), dict):  # R5 CodeableReference
        concept_value = res["medication"].get("concept")
        reference = res["medication"].get("reference")
        path = "/medication/concept"
    if concept_value is not None:
        if not raw.json_native:  # a caller's dict: no sharing by JSON text (see RawResource)
            return _concept(concept_value, path), (), None, ""
        key: Any = orjson.dumps(concept_value)
        hit = index.shared.medications.get(key)
        if hit is None:
            hit = (_concept(concept_value, path), (), None, "")
            index.shared.keep(index.shared.medications, key, hit)
        return hit
    ref = _ref(reference)
    if not ref:
        display = _s(reference.get("display")) if isinstance(reference, dict) else ""
        return Concept(text=display), (), None, ""
    target: Any = _contained(res, ref[1:]) if ref.startswith("#") else None
    if target is None:
        target = index.resolve(ref, near=raw)
    med = target.resource if isinstance(target, RawResource) else target
    if not isinstance(med, dict) or med.get("resourceType") != "Medication":
        display = _s(reference.get("display")) or ref
        return Concept(text=display), (), None, f"medication reference {ref} not found in the input"
    shared = index.medication_resources.get(id(med))
    if shared is None:  # the entry holds the Medication dict, so its id is not reused meanwhile
        try:
            shared = index.medication_resources[id(med)] = (med, _medication_resource(med))
        except _Bad as bad:  # say where the bad element really is
            if isinstance(target, RawResource):
                raise _Bad(bad.path, Message(bad.message.code, bad.message.params,
                                             (*bad.message.extra, Message("in-medication", {"ref": ref}))),
                           where=target.location) from None
            position = next(i for i, c in enumerate(_list(res, "contained")) if c is med)
            raise _Bad(f"/contained/{position}{bad.path}", bad.message) from None
    return shared[1]


def _contained(res: dict[str, Any], local_id: str) -> dict[str, Any] | None:
    for c in _list(res, "contained"):
        if isinstance(c, dict) and c.get("id") == local_id:
            return c
    return None


def _medication_resource(med: dict[str, Any]) -> tuple[Concept, tuple[Ingredient, ...], Concept | None, str]:
    code = _concept(med.get("code"), "/code")
    ingredients = []
    for i, ing in enumerate(_list(med, "ingredient")):
        if not isinstance(ing, dict):
            continue
        item = ing.get("itemCodeableConcept")
        if item is None and isinstance(ing.get("item"), dict):  # R5 CodeableReference
            item = ing["item"].get("concept")
            if item is None:
                item = {"text": _s((ing["item"].get("reference") or {}).get("display"))}
        if item is None and isinstance(ing.get("itemReference"), dict):
            item = {"text": _s(ing["itemReference"].get("display"))}
        strength = ing.get("strength") or ing.get("strengthRatio")
        num = den = None
        if isinstance(strength, dict):
            num = _quantity(strength.get("numerator"), f"/ingredient/{i}/strength/numerator")
            den = _quantity(strength.get("denominator"), f"/ingredient/{i}/strength/denominator")
        elif isinstance(ing.get("strengthQuantity"), dict):
            num = _quantity(ing["strengthQuantity"])
        ingredients.append(Ingredient(_concept(item, f"/ingredient/{i}/item"), num, den))
    form = _concept(med.get("form") or med.get("doseForm"), "/form" if med.get("form") else "/doseForm") if (med.get("form") or med.get("doseForm")) else None
    return code, tuple(ingredients), form, ""


def _shared_element(index: _Index, raw: RawResource, names: tuple[str, ...],
                    extract: Callable[[dict[str, Any]], Any]) -> Any:
    """``extract(resource)``, which reads the elements ``names`` only, shared between resources
    that write these elements the same way (same JSON text, see :class:`~.references.SharedReading`).

    Bulk exports repeat the same dosage and dispense structures over and over; the extracted
    objects are immutable, so one extraction serves every identical element of the input. An
    element that fails extraction raises each time (never cached). The shared tables hold one
    "today" (CQL dates), so the JSON text is the whole key.
    """
    res = raw.resource
    if not raw.json_native:
        return extract(res)
    key = (names, *[orjson.dumps(res.get(name)) for name in names])
    hit = index.shared.elements.get(key, _MISSING)
    if hit is _MISSING:
        hit = extract(res)
        index.shared.keep(index.shared.elements, key, hit)
    return hit


_MISSING = object()


def _dosages(res: dict[str, Any], name: str) -> tuple[Dosage, ...]:
    return tuple(_dosage(d, f"/{name}/{i}") for i, d in enumerate(_list(res, name)))


_GTS_SYSTEMS = frozenset({"http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation",
                          "http://hl7.org/fhir/v3/GTSAbbreviation", ""})
_GTS_TIMING: dict[str, tuple[float, float, str]] = {
    "BID": (2, 1, "d"), "TID": (3, 1, "d"), "QID": (4, 1, "d"), "AM": (1, 1, "d"), "PM": (1, 1, "d"),
    "QD": (1, 1, "d"), "QOD": (1, 2, "d"), "Q1H": (1, 1, "h"), "Q2H": (1, 2, "h"), "Q3H": (1, 3, "h"),
    "Q4H": (1, 4, "h"), "Q6H": (1, 6, "h"),
}
"""Timing.code of a dosage (HL7 FHIR R4 ValueSet timing-abbreviation, codes of v3 GTSAbbreviation,
pages read 2026-12-05): intakes, period, unit. "BID" two times a day, "TID" three, "QID" four; "AM",
"PM", "QD" once a day; "QOD" every other day; "Q1H" … "Q6H" every 1 to 6 hours (institution-specified
times). Read only when ``timing.repeat`` gives no frequency and period; another code (or system) is
not guessed."""


def _coded_timing(timing: dict[str, Any]) -> tuple[float, float, str] | None:
    code = timing.get("code")
    if not isinstance(code, dict):
        return None
    for c in _list(code, "coding"):
        if isinstance(c, dict) and _s(c.get("system")) in _GTS_SYSTEMS and _s(c.get("code")) in _GTS_TIMING:
            return _GTS_TIMING[_s(c.get("code"))]
    return None


def _dosage(d: Any, path: str) -> Dosage:
    if not isinstance(d, dict):
        raise _Bad(path, Message("dosage-not-object"))
    dose = high = None
    dar = d.get("doseAndRate")
    if isinstance(dar, list) and dar and isinstance(dar[0], dict):
        first = dar[0]
        dose = _quantity(first.get("doseQuantity"), f"{path}/doseAndRate/0/doseQuantity")
        rng = first.get("doseRange")
        if dose is None and isinstance(rng, dict):
            dose = _quantity(rng.get("low"), f"{path}/doseAndRate/0/doseRange/low")
            high = _quantity(rng.get("high"), f"{path}/doseAndRate/0/doseRange/high")
    elif d.get("doseQuantity") is not None:  # STU3
        dose = _quantity(d.get("doseQuantity"), f"{path}/doseQuantity")
    timing: dict[str, Any] = t if isinstance(t := d.get("timing"), dict) else {}
    repeat: dict[str, Any] = r if isinstance(r := timing.get("repeat"), dict) else {}
    bounds_start = bounds_end = None
    bounds_days = None
    if isinstance(repeat.get("boundsPeriod"), dict):
        bounds_start = _read_date(repeat["boundsPeriod"].get("start"), f"{path}/timing/repeat/boundsPeriod/start")
        bounds_end = _read_end_date(repeat["boundsPeriod"].get("end"), f"{path}/timing/repeat/boundsPeriod/end")
    if isinstance(repeat.get("boundsDuration"), dict):
        q = _quantity(repeat["boundsDuration"], f"{path}/timing/repeat/boundsDuration")
        if q is not None:
            bounds_days = period_days(q.value, _ucum_time(q.unit))
    max_per = max_days = None
    mdp = d.get("maxDosePerPeriod")
    if isinstance(mdp, list):  # R5: list
        mdp = mdp[0] if mdp else None
    if isinstance(mdp, dict):
        max_per = _quantity(mdp.get("numerator"), f"{path}/maxDosePerPeriod/numerator")
        den = _quantity(mdp.get("denominator"), f"{path}/maxDosePerPeriod/denominator")
        if den is not None:
            max_days = period_days(den.value, _ucum_time(den.unit))
    as_needed = d.get("asNeededBoolean")
    if as_needed is None:
        as_needed = d.get("asNeeded")
    frequency, period, period_unit = _num(repeat.get("frequency")), _num(repeat.get("period")), _s(repeat.get("periodUnit"))
    if frequency is None and period is None and (coded := _coded_timing(timing)) is not None:
        frequency, period, period_unit = coded  # « QID »: four intakes a day
    return Dosage(
        text=_s(d.get("text")) or _s(d.get("patientInstruction")),
        dose=dose,
        dose_range_high=high,
        frequency=frequency,
        frequency_max=_num(repeat.get("frequencyMax")),
        period=period,
        period_unit=period_unit,
        as_needed=bool(as_needed) or "asNeededCodeableConcept" in d or "asNeededFor" in d,
        route=_concept(d["route"], f"{path}/route") if isinstance(d.get("route"), dict) else None,
        bounds_start=bounds_start,
        bounds_end=bounds_end,
        bounds_days=bounds_days,
        max_dose_per_period=max_per,
        max_dose_period_days=max_days,
    )


def _dispense(value: Any, today: date) -> Dispense | None:
    if not isinstance(value, dict):
        return None
    start = end = None
    vp = value.get("validityPeriod")
    if isinstance(vp, dict):
        start = _read_date(vp.get("start"), "/dispenseRequest/validityPeriod/start")
        end = _read_end_date(vp.get("end"), "/dispenseRequest/validityPeriod/end")
        for expr in _ext_cql(vp):  # "FHIR.Period { start: … Today() - 90 days …, end: … Today() … }"
            parts = re.split(r"\bend\s*:", expr, maxsplit=1)
            start = start or _cql_date(parts[0], today)
            if len(parts) > 1:
                end = end or _cql_date(parts[1], today)
    supply = value.get("expectedSupplyDuration")
    supply_days = None
    if isinstance(supply, dict):
        q = _quantity(supply, "/dispenseRequest/expectedSupplyDuration")
        if q is not None:
            supply_days = period_days(q.value, _ucum_time(q.unit))
    repeats = value.get("numberOfRepeatsAllowed")
    return Dispense(
        validity_start=start,
        validity_end=end,
        quantity=_quantity(value.get("quantity"), "/dispenseRequest/quantity"),
        supply_days=supply_days,
        repeats=repeats if isinstance(repeats, int) and not isinstance(repeats, bool) and repeats >= 0 else 0,
    )
