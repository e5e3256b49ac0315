"""Kidney function on a day: a recorded clearance or eGFR, else a Cockcroft–Gault estimate.

Which estimate is used (documented in docs/facts.md):

1. the most recent creatinine clearance or eGFR taken on or before the day within the validity
   window (:func:`checker.facts.renal_on`), a clearance winning over an eGFR of the same day;
2. when none is recorded, the creatinine clearance computed with the Cockcroft–Gault formula from
   the latest serum creatinine and weight within their windows, the age on that day and the sex:

       CrCl (mL/min) = (140 − age) × weight (kg) / (72 × creatinine (mg/dL)), × 0.85 for a woman

   as the paper states it (Cockcroft DW, Gault MH. Prediction of creatinine clearance from serum
   creatinine. Nephron 1976;16(1):31–41, doi 10.1159/000180580: "(140 − age)(wt kg) / 72 × Scr
   (mg/100 ml)", "15 % less in females"; abstract read 2026-12-05 in a copy of the paper). The
   figures are data (``cockcroft_gault`` in ``referentials/facts/clinical-facts.json``, with that
   citation), read through :class:`checker.facts.tables.CockcroftGault`. The weight is the body
   weight recorded (the paper's "wt kg"), never an ideal or adjusted weight, which the paper does not
   use and which would need a height. The result is a clearance in mL/min, not a GFR per 1.73 m²
   (HAS, "Diagnostic de l'insuffisance rénale chronique", July 2012, which also recalls that SmPC
   dose adjustments are stated against it). A creatinine in µmol/L is converted to mg/dL by dividing
   by 88.4 (molar mass of creatinine 113.12 g/mol: 1 mg/dL = 10 mg/L ÷ 113.12 g/mol = 88.4 µmol/L);
3. otherwise no estimate, and :attr:`KidneyFunction.missing` names every datum that was lacking
   (``creatinine``, ``weight``, ``age``, ``sex``): silence is never an all-clear.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from checker.facts.record import latest_observation, renal_on, weight_on
from checker.facts.tables import CockcroftGault, FactTables
from checker.model import PatientRecord
from checker.referentials import default_referentials

UMOL_PER_MG_DL = 88.4
"""µmol/L in 1 mg/dL of creatinine (molar mass 113.12 g/mol)."""

_TO_MG_DL = {"mg/dl": 1.0, "mg/l": 0.1, "umol/l": 1 / UMOL_PER_MG_DL, "µmol/l": 1 / UMOL_PER_MG_DL,
             "μmol/l": 1 / UMOL_PER_MG_DL, "mmol/l": 1000 / UMOL_PER_MG_DL}


@dataclass(frozen=True, slots=True)
class KidneyFunction:
    """``value`` in mL/min (per 1.73 m² for an eGFR), ``kind`` ``clcr`` | ``egfr`` | ``cockcroft-gault``,
    the record elements used (``refs``) and the ``inputs`` of a computed estimate; or ``value`` None and
    ``missing`` listing what was lacking."""

    value: float | None
    kind: str | None = None
    refs: tuple[str, ...] = ()
    measured_on: date | None = None
    inputs: dict[str, float | str] | None = None
    missing: tuple[str, ...] = ()
    comparator: str = ""
    """``<``, ``<=``, ``>=``, ``>`` when the recorded value is a bound (« DFG < 15 »): see :func:`renal_below`."""


def renal_below(value: float, comparator: str, below: float, *, inclusive: bool = False,
                normal_from: float | None = None) -> bool | None:
    """Is a renal function of ``value`` below ``below`` (at or below it with ``inclusive``)? ``True``;
    ``False`` from ``normal_from`` (``below`` when None); ``None`` when it cannot tell: in between, or
    a bound on both sides of the threshold. With ``comparator`` the value is a bound (HL7 FHIR
    quantity-comparator: "<" the actual value is less than the given value, "<=" less or equal, ">="
    greater or equal, ">" greater): « < 30 » is below 30, « < 60 » may be either side of 30."""
    normal = below if normal_from is None else normal_from
    if comparator == "<":
        return True if value <= below else None
    if comparator == "<=":
        return True if value < below or (inclusive and value == below) else None
    if comparator == ">":
        return False if value >= normal else None
    if comparator == ">=":
        return False if value > normal or (value == normal and not inclusive) else None
    if value < below or (inclusive and value == below):
        return True
    return False if value >= normal else None


def creatinine_mg_dl(value: float, unit: str) -> float | None:
    """A serum creatinine in mg/dL (``None`` for a unit that cannot be read)."""
    factor = _TO_MG_DL.get(unit.strip().lower().replace(" ", ""))
    return None if factor is None else value * factor


def cockcroft_gault(age: float, weight_kg: float, creatinine_mg_per_dl: float, female: bool,
                    formula: CockcroftGault | None = None) -> float:
    """Creatinine clearance in mL/min (Cockcroft & Gault, Nephron 1976), with the figures of
    ``formula`` (by default those of the shipped facts tables)."""
    if formula is None:
        formula = default_referentials().get("clinical-facts").cockcroft_gault
        assert formula is not None
    clcr = (formula.age_from - age) * weight_kg / (formula.divisor * creatinine_mg_per_dl)
    return clcr * formula.female_factor if female else clcr


def kidney_function_on(record: PatientRecord, day: date, tables: FactTables) -> KidneyFunction:
    """The kidney function that stands on ``day`` (see the module docstring for the order)."""
    measured = renal_on(record, day, tables)
    if measured is not None:
        kind, value, obs = measured
        return KidneyFunction(value, kind, (obs.ref,), obs.effective, comparator=obs.comparator)
    missing: list[str] = []
    spec = tables.observations.get("creatinine")
    creat = latest_observation(record, spec.uri, spec.codes, day, tables.observation_window("creatinine"),
                               with_value=True) \
        if spec is not None else None
    scr = creatinine_mg_dl(creat.value, creat.unit) if creat is not None and creat.value is not None else None
    if scr is None or scr <= 0:
        missing.append("creatinine")
    weight = weight_on(record, day, tables)
    kg = float(weight.what.split()[0]) if weight.value and weight.what else None
    if kg is None:
        missing.append("weight")
    age = record.age_on(day)
    if age is None:
        missing.append("age")
    sex = record.patient.sex if record.patient is not None else ""
    if sex not in ("male", "female"):
        missing.append("sex")
    if missing:
        return KidneyFunction(None, missing=tuple(missing))
    assert creat is not None and scr is not None and kg is not None and age is not None
    assert tables.cockcroft_gault is not None, "clinical-facts: no cockcroft_gault table"
    value = cockcroft_gault(age, kg, scr, sex == "female", tables.cockcroft_gault)
    refs = tuple(r for r in (creat.ref, weight.ref) if r)
    written = f"{creat.comparator} {creat.value:g} {creat.unit}" if creat.comparator else f"{creat.value:g} {creat.unit}"
    return KidneyFunction(round(value, 1), "cockcroft-gault", refs, creat.effective,
                          {"age": age, "weight_kg": round(kg, 1), "creatinine_mg_dl": round(scr, 3),
                           "creatinine": written, "sex": sex},
                          comparator=_INVERSE.get(creat.comparator, ""))


_INVERSE = {">": "<", ">=": "<=", "<": ">", "<=": ">="}
"""A creatinine given as a bound makes the clearance a bound the other way (it divides by the
creatinine): « créatinine > 1,35 mg/dL » is a clearance below what 1,35 gives."""
