"""Amounts of a substance taken per intake and per day, from structured dosage only.

Text-only dosages are never guessed: the functions return ``None`` and callers report that the
dose could not be evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass

from checker.model import Dosage, MedicationOrder, Quantity, SubstanceMatch
from checker.text import fold

MASS_TO_MG = {"mg": 1.0, "g": 1000.0, "ug": 0.001, "µg": 0.001, "mcg": 0.001, "microgram": 0.001, "ng": 1e-6,
              "milligram": 1.0, "gram": 1000.0}
COUNT_UNITS = {"", "1", "{tbl}", "{tablet}", "{capsule}", "{caps}", "{sachet}", "tab", "tablet", "tablets", "capsule",
               "capsules", "comprime", "comprimes", "cp", "gelule", "gelules", "sachet", "sachets", "unit", "unite",
               "dose", "doses", "{dose}", "ampoule", "suppositoire", "{suppository}", "suppository", "patch",
               "sachet dose", "comprime pellicule", "comprime effervescent", "comprime secable", "1 comprime",
               "lyophilisat", "lyophilisats", "lyophilisat oral", "comprime orodispersible", "comprimes orodispersibles"}


@dataclass(frozen=True, slots=True)
class DailyDose:
    """Amount of one substance in mg: largest single intake and total per day."""

    per_intake_mg: float
    per_day_mg: float
    as_needed: bool = False


def mg_of(q: Quantity | None) -> float | None:
    """A mass quantity in mg (``None`` when not a mass)."""
    if q is None:
        return None
    factor = MASS_TO_MG.get(q.unit.strip().lower()) if q.unit else None
    return None if factor is None else q.value * factor


def medication_key(order: MedicationOrder) -> tuple[tuple[str, float | None], ...]:
    """What makes two lines the same medication for renewals: their substances and the strength of
    each in mg (Doliprane 1000 mg and Dafalgan 1 g are the same medication; Ixprim is not)."""
    ident = order.identity
    if ident is None:
        return ()
    return tuple(sorted((s.key, None if (mg := mg_of(s.strength)) is None else round(mg, 3))
                        for s in ident.substances))


def _unit_strength_mg(subst: SubstanceMatch) -> float | None:
    return mg_of(subst.strength)


def intake_mg(dosage: Dosage, subst: SubstanceMatch, n_substances: int) -> float | None:
    """mg of ``subst`` in one intake: a mass dose (single-substance lines only) or a count of
    units × the unit strength of the substance."""
    if dosage.dose is None:
        return None
    unit = fold(dosage.dose.unit or "")
    raw = dosage.dose.unit.strip().lower() if dosage.dose.unit else ""
    if raw in MASS_TO_MG:
        # a mass dose on a combination product names the whole product: ambiguous
        return dosage.dose.value * MASS_TO_MG[raw] if n_substances == 1 else None
    if raw in COUNT_UNITS or unit in COUNT_UNITS:
        strength = _unit_strength_mg(subst)
        return None if strength is None else dosage.dose.value * strength
    return None


def daily_dose(order: MedicationOrder, substance_key: str) -> DailyDose | None:
    """Per-intake and per-day mg of ``substance_key`` on this line, from structured dosage;
    ``None`` when any dosage is text-only or the units do not allow the computation."""
    ident = order.identity
    if ident is None or not order.dosages:
        return None
    subst = next((s for s in ident.substances if s.key == substance_key), None)
    if subst is None:
        return None
    per_intake = 0.0
    per_day = 0.0
    as_needed = False
    for d in order.dosages:
        mg = intake_mg(d, subst, len(ident.substances))
        ceiling = ceiling_mg_per_day(d, subst, len(ident.substances))
        n = d.intakes_per_day()
        if d.frequency_max is not None and d.period:
            high = Dosage(frequency=d.frequency_max, period=d.period, period_unit=d.period_unit).intakes_per_day()
            n = high if high is not None else n
        if d.as_needed and d.frequency is None and d.frequency_max is None:
            n = None  # as needed, no frequency: only a ceiling per period bounds the day
        if mg is None or (n is None and ceiling is None):
            return None
        high_mg = mg
        if d.dose_range_high is not None:
            alt = intake_mg(Dosage(dose=d.dose_range_high), subst, len(ident.substances))
            high_mg = alt if alt is not None else mg
        per_intake = max(per_intake, high_mg)
        # the prescriber's ceiling (maxDosePerPeriod) is what the line allows in a day: as needed, it
        # caps how often an intake may come (« toutes les 4 h si douleur, maximum 4 g par 24 h »); on a
        # schedule, the higher of the two is what the line states
        regimen = high_mg * n if n is not None else None
        if regimen is None or ceiling is None:
            per_day += regimen if regimen is not None else ceiling or 0.0
        else:
            per_day += min(regimen, ceiling) if d.as_needed else max(regimen, ceiling)
        as_needed = as_needed or d.as_needed
    return DailyDose(per_intake, per_day, as_needed)


def ceiling_mg_per_day(dosage: Dosage, subst: SubstanceMatch, n_substances: int) -> float | None:
    """mg of ``subst`` a day at most by the dosage's own ceiling (FHIR ``maxDosePerPeriod``: « 6 g par
    24 h », « 8 comprimés par jour »); ``None`` when it has none or its units cannot be read."""
    q, days = dosage.max_dose_per_period, dosage.max_dose_period_days
    if q is None or not days:
        return None
    mg = intake_mg(Dosage(dose=q), subst, n_substances)
    return None if mg is None else mg / days


def largest_intake_mg(order: MedicationOrder, substance_key: str) -> float | None:
    """The largest single intake of ``substance_key`` in mg that the line's dosages state, whatever
    their frequency (« 2 g matin et soir » without a coded frequency); ``None`` when none states one."""
    ident = order.identity
    subst = next((s for s in ident.substances if s.key == substance_key), None) if ident is not None else None
    if ident is None or subst is None:
        return None
    found = [mg for d in order.dosages for q in (d.dose, d.dose_range_high) if q is not None
             and (mg := intake_mg(Dosage(dose=q), subst, len(ident.substances))) is not None]
    return max(found) if found else None
