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
