"""A date the reader cannot read is said, never taken as absent: an order whose authoredOn is not a
FHIR date would otherwise be judged on the run's date (point in time lost), and an observation whose
date is unreadable would silently vanish from the record ("renal function not recorded")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from checker import check

AS_OF = "2026-01-15"


def _write(tmp_path: Path, resource: dict) -> Path:
    patient = {"resourceType": "Patient", "id": "a", "birthDate": "1950-01-01", "gender": "female"}
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(json.dumps(r) for r in (patient, resource)) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("field, value", [
    ("authoredOn", "2025-13-45"), ("authoredOn", "05/01/2025"), ("authoredOn", "2025-02-30T10:00:00Z"),
])
def test_an_unreadable_order_date_is_an_input_error(tmp_path: Path, field: str, value: str) -> None:
    order = {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
             "subject": {"reference": "Patient/a"}, field: value,
             "medicationCodeableConcept": {"text": "Metformine 850 mg comprimé"}}
    report = check([str(_write(tmp_path, order))], as_of=AS_OF, lang="en")
    assert any(field in e.location or field in e.message for e in report.errors), report.errors
    assert not any("MedicationRequest/m1" in f.implicated for f in report.findings)


@pytest.mark.parametrize("field", ["effectiveDateTime", "issued"])
def test_an_unreadable_observation_date_is_an_input_error(tmp_path: Path, field: str) -> None:
    obs = {"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/a"},
           "code": {"coding": [{"system": "http://loinc.org", "code": "62238-1"}]}, field: "2025-99-01",
           "valueQuantity": {"value": 25, "unit": "mL/min/1.73m2"}}
    report = check([str(_write(tmp_path, obs))], as_of=AS_OF, lang="en")
    assert any(field in e.location or field in e.message for e in report.errors), report.errors


def test_partial_fhir_dates_stay_readable(tmp_path: Path) -> None:
    order = {"resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
             "subject": {"reference": "Patient/a"}, "authoredOn": "2025-07",
             "medicationCodeableConcept": {"text": "Metformine 850 mg comprimé"}}
    report = check([str(_write(tmp_path, order))], as_of=AS_OF, lang="en")
    assert not report.errors


def test_an_observation_dated_by_effective_instant_or_period_is_dated_by_it(tmp_path: Path) -> None:
    """``effectiveInstant`` dates a result as ``effectiveDateTime`` does, and the clinically relevant
    time (``effective[x]``) wins over the time the result was issued."""
    from checker.fhir_input import read

    def observation(**when: Any) -> dict:
        return {"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/a"},
                "code": {"coding": [{"system": "http://loinc.org", "code": "62238-1"}]},
                "valueQuantity": {"value": 20, "unit": "mL/min/1.73m2"}, **when}

    for when, expected in (({"effectiveInstant": "2025-11-20T08:00:00+01:00"}, "2025-11-20"),
                           ({"effectivePeriod": {"start": "2025-11-18"}, "issued": "2025-11-21T10:00:00Z"}, "2025-11-18")):
        record = read(str(_write(tmp_path, observation(**when)))).records[0]
        assert [str(o.effective) for o in record.observations] == [expected], when
