"""A statement that the patient was not taking a drug (R5 adherence not-taking) is no treatment time: it does not lengthen a treatment judged by a duration protocol."""

from __future__ import annotations

from checker import check
from tests.test_facts_point_in_time import bundle

def ppi_request(rid, day, days):
    return {"resourceType": "MedicationRequest", "id": rid, "status": "active", "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": "A02BC01"}],
                                          "text": "Oméprazole 20 mg"}, "authoredOn": day,
            "dosageInstruction": [{"text": "1/j", "timing": {"repeat": {"boundsDuration": {"value": days, "unit": "d",
              "system": "http://unitsofmeasure.org", "code": "d"}, "frequency": 1, "period": 1, "periodUnit": "d"}}}]}

def not_taking_statement():
    return {"resourceType": "MedicationStatement", "id": "s1", "status": "recorded",
            "medication": {"concept": {"coding": [{"system": "http://www.whocc.no/atc", "code": "A02BC01"}],
                                       "text": "Oméprazole 20 mg"}},
            "effectivePeriod": {"start": "2025-06-01", "end": "2025-11-30"},
            "adherence": {"code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/medication-statement-adherence",
                                               "code": "not-taking"}]}}}

def test_a_not_taking_statement_is_no_treatment_time():
    alone = bundle(ppi_request("r1", "2025-12-01", 28), birth="1960-01-01")
    with_st = bundle(not_taking_statement(), ppi_request("r1", "2025-12-01", 28), birth="1960-01-01")
    a = check(alone, as_of="2026-01-15", select=["OP002"]); b = check(with_st, as_of="2026-01-15", select=["OP002"])
    assert not a.errors and not b.errors, (a.errors, b.errors)
    fa = [(f.rule, f.evidence.get("protocol"), f.evidence.get("branch")) for f in a.findings]
    fb = [(f.rule, f.evidence.get("protocol"), f.evidence.get("branch")) for f in b.findings]
    assert fa == fb
