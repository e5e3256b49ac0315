"""A combination class (amoxicillin + clavulanic acid, ATC J01CR02) named by a protocol or an indicator
reaches the combination products identified by their BDPM code, whose components carry only their own
codes (amoxicillin J01CA04); a single substance of the same components does not. Run over every BDPM
specialty of these substances."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from checker import check
from checker.audit.indicators import OVERALL, tally_records
from checker.drugs import drug_index, identify
from checker.model import Coding, Concept, MedicationOrder, Patient, PatientRecord
from checker.referentials import Referentials
from checker.referentials.indicators import REF_ID

CIS_SYSTEM = "http://data.esante.gouv.fr/ansm/medicament/codeCIS"
PROTOCOL = "HAS-AMOXICILLINE-PREMIERE-INTENTION"


def _specialties(keys: set[str]) -> list[str]:
    idx = drug_index()
    return sorted(s.cis for s in idx.specialties.values() if s.substance_keys == frozenset(keys))


@pytest.fixture(scope="module")
def amox_clav() -> list[str]:
    found = _specialties({"amoxicilline", "acide clavulanique"})
    assert len(found) > 20
    return found


@pytest.fixture(scope="module")
def amox() -> list[str]:
    found = _specialties({"amoxicilline"})
    assert len(found) > 20
    return found


def _bundle(cis: str) -> dict[str, Any]:
    pid = f"p{cis}"
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": pid, "birthDate": "1985-01-01", "gender": "male"}},
        {"resource": {"resourceType": "MedicationRequest", "id": f"m{cis}", "status": "active", "intent": "order",
                      "subject": {"reference": f"Patient/{pid}"}, "authoredOn": "2026-01-12",
                      "medicationCodeableConcept": {"coding": [{"system": CIS_SYSTEM, "code": cis}]},
                      "reasonCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "H66.9"}]}]}},
    ]}


def _flagged(cis_list: list[str]) -> set[str]:
    report = check([_bundle(c) for c in cis_list], as_of="2026-01-15", select=["OP002"])
    return {(f.patient or "").removeprefix("Patient/p") for f in report.findings
            if f.evidence.get("protocol") == PROTOCOL and f.evidence.get("branch") == "prefer-amoxicillin"}


def test_every_amoxicillin_clavulanate_product_reaches_the_protocol(amox_clav: list[str]) -> None:
    missed = sorted(set(amox_clav) - _flagged(amox_clav))
    assert not missed, f"{len(missed)} amoxicillin-clavulanate products out of the protocol: {missed[:5]}"


def test_amoxicillin_alone_stays_out_of_the_protocol(amox: list[str]) -> None:
    assert not _flagged(amox)


def _order(cis: str) -> MedicationOrder:
    order = MedicationOrder(ref=f"MedicationRequest/{cis}", status="active", intent="order",
                            medication=Concept(codings=(Coding(CIS_SYSTEM, cis),)), authored_on=date(2026, 1, 12),
                            requester="Practitioner/a")
    return replace(order, identity=identify(order))


def test_the_resistance_indicator_counts_amoxicillin_clavulanate(amox_clav: list[str], amox: list[str]) -> None:
    defs = Referentials().get(REF_ID)
    records = [PatientRecord(patient=Patient(f"Patient/{c}", birth_date=date(1985, 1, 1)), medication_orders=[_order(c)])
               for c in amox_clav + amox]
    t = tally_records(records, defs, date(2026, 1, 15))
    assert t[("ATB-RESISTANCE", OVERALL)] == [len(amox_clav), len(amox_clav) + len(amox)]


def test_a_line_coded_with_a_combination_code_alone_is_identified() -> None:
    """A line whose only coding is a combination's ATC code (C09DA06, J01CR02) is identified as the
    substances every BDPM specialty of that code holds, with that code as its class; a code BDPM
    gives to several sets of substances stays unidentified rather than guessed."""
    idx = drug_index()
    sets: dict[str, set[frozenset[str]]] = {}
    for spec in idx.specialties.values():
        if len(spec.substance_keys) > 1:
            for code in spec.atc:
                sets.setdefault(code, set()).add(spec.substance_keys)
    single = {code: next(iter(s)) for code, s in sets.items() if len(s) == 1 and not idx.keys_for_atc(code)}
    assert len(single) > 100 and {"C09DA06", "J01CR02"} <= set(single)
    for code, keys in sorted(single.items()):
        order = MedicationOrder(ref="MedicationRequest/m", status="active", intent="order",
                                medication=Concept(codings=(Coding("http://www.whocc.no/atc", code),)))
        ident = identify(order)
        assert ident.substance_keys == keys and code in ident.class_atc, (code, sorted(keys), ident)
    several = sorted(code for code, s in sets.items() if len(s) > 1 and not idx.keys_for_atc(code))
    for code in several:
        order = MedicationOrder(ref="MedicationRequest/m", status="active", intent="order",
                                medication=Concept(codings=(Coding("http://www.whocc.no/atc", code),)))
        assert not identify(order).substances, code
