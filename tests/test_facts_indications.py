"""Inferred and text-stated indications: an order with no stated reason is judged on the problem list
of its day (marked ``inferred``, the Condition cited) and on its own words."""

from __future__ import annotations

from typing import Any

import pytest

from checker import check

AS_OF = "2026-01-15"


def _bundle(pid: str, birth: str, sex: str, *resources: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"resourceType": "Patient", "id": pid, "birthDate": birth, "gender": sex}]
    for r in resources:
        out.append({**r, "subject": {"reference": f"Patient/{pid}"}})
    return out


def _condition(cid: str, text: str, recorded: str, code: str | None = None, *, status: str = "active") -> dict[str, Any]:
    concept: dict[str, Any] = {"text": text}
    if code:
        concept["coding"] = [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}]
    return {"resourceType": "Condition", "id": cid, "code": concept, "recordedDate": recorded, "onsetDateTime": recorded,
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": status}]}}


def _antibiotic(mid: str, atc: str, label: str, authored: str, days: int = 3) -> dict[str, Any]:
    return {"resourceType": "MedicationRequest", "id": mid, "status": "active", "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": atc}], "text": label},
            "authoredOn": authored,
            "dosageInstruction": [{"text": label, "timing": {"repeat": {
                "boundsDuration": {"value": days, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"},
                "frequency": 1, "period": 1, "periodUnit": "d"}}}]}


def _op(data: Any, rule: str) -> list[dict[str, Any]]:
    report = check(data, as_of=AS_OF, select=[rule])
    assert not report.errors
    return [f.to_dict() for f in report.findings if f.rule == rule]


def test_cystitis_on_the_problem_list_the_same_day_is_the_inferred_indication_of_a_fluoroquinolone() -> None:
    data = _bundle("ci1", "1990-01-01", "female", _condition("cy", "Cystite aiguë", "2026-01-12", "N30.0"),
                   _antibiotic("cip", "J01MA02", "Ciprofloxacine 500 mg", "2026-01-12"))
    got = _op(data, "OP002")
    assert len(got) == 1 and got[0]["evidence"]["branch"] == "not-first-line"
    assert got[0]["evidence"]["indications"] == [
        {"condition": "Condition/cy", "label": "Cystite aiguë", "recorded": "2026-01-12", "inferred": True}]


def test_a_condition_recorded_long_before_is_no_inferred_indication() -> None:
    data = _bundle("ci2", "1990-01-01", "female", _condition("cy", "Cystite aiguë", "2025-10-01", "N30.0"),
                   _antibiotic("cip", "J01MA02", "Ciprofloxacine 500 mg", "2026-01-12"))
    assert not _op(data, "OP002")


def test_a_condition_recorded_after_the_order_is_no_inferred_indication() -> None:
    data = _bundle("ci3", "1990-01-01", "female", _condition("cy", "Cystite aiguë", "2026-01-14", "N30.0"),
                   _antibiotic("cip", "J01MA02", "Ciprofloxacine 500 mg", "2026-01-12"))
    assert not _op(data, "OP002")


def test_a_denied_condition_is_no_inferred_indication() -> None:
    data = _bundle("ci4", "1990-01-01", "female", _condition("cy", "Pas de cystite", "2026-01-12"),
                   _antibiotic("cip", "J01MA02", "Ciprofloxacine 500 mg", "2026-01-12"))
    assert not _op(data, "OP002")


def test_otitis_on_the_problem_list_makes_amoxicillin_clavulanate_second_line() -> None:
    data = _bundle("ot1", "1985-01-01", "male", _condition("ot", "Otite moyenne aiguë purulente", "2026-01-12", "H66.9"),
                   _antibiotic("amc", "J01CR02", "Amoxicilline/acide clavulanique 1 g/125 mg", "2026-01-12", 5))
    got = _op(data, "OP002")
    assert len(got) == 1 and got[0]["evidence"]["protocol"] == "HAS-AMOXICILLINE-PREMIERE-INTENTION"
    assert got[0]["evidence"]["indications"][0]["inferred"] is True


@pytest.mark.parametrize("text, fires", [("Mammographie bilatérale de dépistage", True),
                                         ("Mammographie bilatérale", False)])
def test_the_order_s_own_words_state_a_screening_mammography(text: str, fires: bool) -> None:
    data = _bundle("mm1", "1983-06-06", "female",
                   {"resourceType": "ServiceRequest", "id": "mm", "status": "active", "intent": "order",
                    "code": {"text": text}, "authoredOn": "2026-01-10"})
    got = _op(data, "OP001")
    assert bool(got) is fires
    if fires:
        assert got[0]["evidence"]["protocol"] == "HAS-MAMMOGRAPHIE-DEPISTAGE"
        assert got[0]["evidence"]["indications"] == [{"order_text": text, "inferred": False}]


def test_a_measurement_taken_after_the_order_does_not_judge_it() -> None:
    """Lumbar spine X-ray on 2026-01-10 for common low back pain: a fever measured on 2026-01-10 is a red
    flag; one measured two days after the order was not known when it was written."""
    def data(day: str) -> list[dict[str, Any]]:
        return _bundle("lb1", "1980-03-02", "male",
                       {**_condition("c1", "Lombalgie commune", "2026-01-01", "M54.5")},
                       {"resourceType": "ServiceRequest", "id": "sr1", "status": "active", "intent": "order",
                        "code": {"coding": [{"system": "https://www.ameli.fr/ccam", "code": "LFQK002"}],
                                 "text": "Radiographie du rachis lombaire"},
                        "authoredOn": "2026-01-10", "reasonReference": [{"reference": "Condition/c1"}]},
                       {"resourceType": "Observation", "id": "t1", "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}], "text": "Température"},
                        "effectiveDateTime": day, "valueQuantity": {"value": 39.4, "unit": "Cel"}})
    assert not _op(data("2026-01-10"), "OP001")
    assert _op(data("2026-01-12"), "OP001")
