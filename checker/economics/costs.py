"""Cost arithmetic: units taken per day from a structured dosage, treatment length, savings.

Everything here is pure and works on :mod:`checker.model` objects, so the same numbers come out
in France (EUR) and Morocco (MAD): only the unit prices differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from checker.economics.packs import fold, normalise_strength
from checker.model import Dispense, Dosage, MedicationOrder, Quantity

DAYS_PER_YEAR = 365.0

# Dose units that already count dispensing units (UCUM annotations, EDQM/SNOMED displays, French words).
_COUNT_DOSE_UNITS = {
    "", "1", "{tbl}", "{tablet}", "{tab}", "tab", "tablet", "tablets", "{capsule}", "{cap}", "capsule", "capsules",
    "cp", "cpr", "comprime", "comprimes", "gelule", "gelules", "sachet", "sachets", "{sachet}", "dose", "doses",
    "{dose}", "unit", "{unit}", "suppositoire", "ampoule", "patch", "{patch}", "stylo", "seringue", "{puff}",
    "bouffee", "bouffees", "inhalation", "pulverisation",
}
# EDQM "unit of presentation" codes seen in the French ePrescription IG (tablet, capsule …).
_EDQM_COUNT = {"15054000", "15012000", "15059000", "15060000", "15030000", "15064000", "15058000"}


def _is_count_unit(unit: str) -> bool:
    u = fold(unit).strip()
    return u in _COUNT_DOSE_UNITS or u.rstrip("(s)") in _COUNT_DOSE_UNITS or u in _EDQM_COUNT


def units_per_day(dosages: tuple[Dosage, ...] | list[Dosage], pack_unit: str,
                  strength: Quantity | None) -> float | None:
    """Dispensing units (tablets, ml …) used per day according to the structured dosages.

    ``pack_unit`` is the unit the pack is counted in (``comprime``, ``ml`` …); ``strength`` is the
    amount of substance per dispensing unit (``20 mg`` per tablet, ``100 U/ml``). A dose given as a
    count of units is used as is; a dose given as an amount of substance is divided by the strength.
    Several dosage lines without their own bounds are taken together (morning + evening). ``None``
    when any line is not structured, is "as needed", or its unit cannot be converted.
    """
    if not dosages:
        return None
    total = 0.0
    for d in dosages:
        if d.as_needed or not d.structured or d.dose is None:
            return None
        per_day = d.intakes_per_day()
        if per_day is None:
            return None
        per_intake = dose_in_units(d.dose, pack_unit, strength)
        if per_intake is None or per_intake <= 0 or per_day <= 0:  # a zero or negative dose is not a dose
            return None
        total += per_intake * per_day
    return total


def dose_in_units(dose: Quantity, pack_unit: str, strength: Quantity | None) -> float | None:
    """One dose expressed in dispensing units (``None`` when the conversion is unknown)."""
    unit = fold(dose.unit).replace(" ", "")
    if pack_unit == "ml" and unit in {"ml", "millilitre", "millilitres"}:
        return dose.value
    if pack_unit == "g" and unit == "g":
        return dose.value
    if pack_unit not in {"ml", "g"} and _is_count_unit(dose.unit):
        return dose.value
    amount = normalise_strength(dose)
    per = normalise_strength(strength)
    if amount is None or per is None or per.value <= 0:
        return None
    base_amount = amount.unit.split("/", 1)[0]
    base_per, _, denom = per.unit.partition("/")
    if base_amount != base_per:
        return None
    if denom and pack_unit == "ml" and fold(denom) not in {"ml", "1ml"}:
        return None
    return amount.value / per.value


def treatment_days(order: MedicationOrder) -> float | None:
    """Prescribed treatment length in days: dosage bounds (duration, or period with both ends counted),
    else expected supply × (1 + renewals), else the dispense validity period; ``None`` when the order does not say."""
    return prescribed_days(order.dosages, order.dispense)


def prescribed_days(dosages: tuple[Dosage, ...] | list[Dosage], disp: Dispense | None) -> float | None:
    """:func:`treatment_days` of an order with these dosages and dispense."""
    bounds = [d.bounds_days for d in dosages if d.bounds_days and d.bounds_days > 0]
    bounds += [float((d.bounds_end - d.bounds_start).days + 1) for d in dosages
               if d.bounds_start and d.bounds_end and d.bounds_end >= d.bounds_start]
    if bounds:
        return max(bounds)
    if disp is not None:
        if disp.supply_days and disp.supply_days > 0:
            return disp.supply_days * (1 + max(disp.repeats, 0))
        if disp.validity_start and disp.validity_end and disp.validity_end > disp.validity_start:
            return float((disp.validity_end - disp.validity_start).days)
    return None


# A line counts as a long-term treatment, annualised over a full year in "per year" figures, when it
# is prescribed for at least this many days, has repeats, or states no duration (open-ended).
# 28 days is the usual one-month pack (4 weeks); it is a reporting convention, not a clinical fact.
LONG_TERM_MIN_DAYS = 28.0


@dataclass(frozen=True, slots=True)
class CostComparison:
    """Prescribed versus alternative unit prices and what the difference amounts to.

    "Per year" convention: a long-term line (prescribed for ≥ 28 days, with repeats, or open-ended)
    is annualised (saving per day × 365, basis ``"annualised"``): a 90-day statin line stands for a
    continuous treatment, not for 90 days a year. A short course (< 28 days, no repeats) keeps its
    treatment amount as its yearly figure (basis ``"treatment"``): nothing says it will recur. A past
    (ended: completed, stopped) prescription states what it would have saved over its written
    duration or quantity, and counts 0 in the yearly savings (basis ``"past"``): a running renewal
    already stands for the treatment's year, and past lines summed with it would count a year twice.
    """

    currency: str
    unit_price: float  # prescribed product, per dispensing unit
    alt_unit_price: float
    units_per_day: float | None
    days: float | None  # prescribed duration (None: not stated)
    dispensed_units: float | None = None  # quantity to dispense, when no dosage allows a daily figure
    repeats: int = 0  # dispensings allowed after the first (dispenseRequest.numberOfRepeatsAllowed)
    ended: bool = False  # a past prescription (completed, stopped): its saving is counted once, as written

    @property
    def unit_saving(self) -> float:
        return self.unit_price - self.alt_unit_price

    @property
    def cost_per_day(self) -> float | None:
        return None if self.units_per_day is None else self.unit_price * self.units_per_day

    @property
    def alt_cost_per_day(self) -> float | None:
        return None if self.units_per_day is None else self.alt_unit_price * self.units_per_day

    @property
    def saving_per_day(self) -> float | None:
        return None if self.units_per_day is None else self.unit_saving * self.units_per_day

    @property
    def saving_treatment(self) -> float | None:
        """Saving over the prescribed duration (or over the quantity to dispense, repeats included)."""
        if self.saving_per_day is not None and self.days is not None:
            return self.saving_per_day * self.days
        if self.dispensed_units is not None:
            return self.unit_saving * self.dispensed_units * (1 + max(self.repeats, 0))
        return None

    @property
    def long_term(self) -> bool:
        """Prescribed for ≥ 28 days, with repeats, or with no duration stated (open-ended); never a
        past (ended) prescription: what it would have saved is what it covered, not a year to come."""
        if self.ended:
            return False
        return self.days is None or self.days >= LONG_TERM_MIN_DAYS or self.repeats > 0

    @property
    def per_year_basis(self) -> str | None:
        """``"annualised"`` (saving per day × 365), ``"treatment"`` (the treatment amount as is),
        ``"past"`` (a past prescription, counted 0 per year) or ``None``."""
        if self.ended:
            return "past" if self.saving_treatment is not None else None
        if self.saving_per_day is not None and self.long_term:
            return "annualised"
        return "treatment" if self.saving_treatment is not None else None

    @property
    def saving_per_year(self) -> float | None:
        """Yearly figure used in run totals: annualised for a long-term line, the treatment amount
        for a short course (see the class docstring)."""
        basis = self.per_year_basis
        if basis == "annualised":
            assert self.saving_per_day is not None
            return self.saving_per_day * DAYS_PER_YEAR
        if basis == "past":
            return 0.0  # what it would have saved is stated, but the years to come are its renewals'
        return self.saving_treatment if basis == "treatment" else None

    def saving_dict(self) -> dict[str, Any]:
        """The ``saving`` member of a suggestion: amount (over the period), currency, period, per year
        and ``per_year_basis`` (how the per-year figure was obtained)."""
        treatment = self.saving_treatment
        if treatment is not None:
            amount, period = treatment, "treatment"
        elif self.saving_per_day is not None and not self.ended:
            amount, period = self.saving_per_day * DAYS_PER_YEAR, "year"
        else:  # no dosage nor quantity: only the unit difference is known, no amount is claimed
            amount, period = None, "unit"
        out: dict[str, Any] = {"amount": None if amount is None else round(amount, 2),
                               "currency": self.currency, "period": period,
                               "per_unit": round(self.unit_saving, 4)}
        if self.days is not None:
            out["days"] = self.days
        if self.repeats > 0:
            out["repeats"] = self.repeats
        per_year = self.saving_per_year
        if per_year is not None:
            out["per_year"] = round(per_year, 2)
            out["per_year_basis"] = self.per_year_basis
        if self.saving_per_day is not None:
            out["per_day"] = round(self.saving_per_day, 4)
        return out
