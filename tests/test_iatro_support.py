"""Hand-built records for the iatrogenic tests (identity set by hand, no drug referential needed)."""

from __future__ import annotations

import random
from datetime import date

from checker.model import (Allergy, Concept, Coding, Condition, Dispense, Dosage, MedicationIdentity, MedicationOrder,
                           Observation, Patient, PatientRecord, Quantity, SubstanceMatch)

AS_OF = date(2026, 1, 15)


def line(ref: str, *keys: str, status: str = "active", authored: date | None = date(2026, 1, 1),
         supply_days: float | None = None, dosages: tuple[Dosage, ...] = (), atc: tuple[str, ...] = (),
         strength: Quantity | None = None, route: str = "", label: str = "") -> MedicationOrder:
    subs = tuple(SubstanceMatch(key=k, name=k, strength=strength, atc=atc) for k in keys)
    return MedicationOrder(
        ref=f"MedicationRequest/{ref}", status=status, intent="order", medication=Concept(text=label or " + ".join(keys)),
        authored_on=authored, dosages=dosages,
        dispense=Dispense(supply_days=supply_days) if supply_days else None,
        identity=MedicationIdentity(substances=subs, method="test", confidence=1.0, route=route),
    )


def record(*orders: MedicationOrder, birth: date | None = date(1960, 5, 1), conditions: tuple[Condition, ...] = (),
           allergies: tuple[Allergy, ...] = (), observations: tuple[Observation, ...] = (), sex: str = "female") -> PatientRecord:
    return PatientRecord(patient=Patient("Patient/p1", birth, sex), medication_orders=list(orders),
                         conditions=list(conditions), allergies=list(allergies), observations=list(observations))


def dose(value: float, unit: str, per_day: float, period_unit: str = "d", **kw: object) -> Dosage:
    return Dosage(dose=Quantity(value, unit), frequency=per_day, period=1, period_unit=period_unit, **kw)  # type: ignore[arg-type]


def condition(code: str, system: str = "http://hl7.org/fhir/sid/icd-10", text: str = "") -> Condition:
    return Condition(ref=f"Condition/{code}", code=Concept((Coding(system, code),), text))


def run(rule_id: str, rec: PatientRecord, as_of: date = AS_OF, lang: str = "fr") -> list:
    from checker.referentials import default_referentials
    from checker.registry import RunSettings, get_rule

    return get_rule(rule_id).run(rec, RunSettings(as_of=as_of, lang=lang), default_referentials())


def random_unlisted_pairs(th, n: int, seed: int = 20230915) -> list[tuple[str, str]]:
    """``n`` random pairs of single substances that the encoding does not link."""
    rng = random.Random(seed)
    nodes = [s for s in th.substance_nodes() if th.knows(s)]
    out: list[tuple[str, str]] = []
    while len(out) < n:
        a, b = rng.sample(nodes, 2)
        if not th.matches(a, b) and (a, b) not in out:
            out.append((a, b))
    return out
