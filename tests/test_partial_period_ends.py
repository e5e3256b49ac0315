"""A period end written to the month or the year covers the whole month or year (FHIR Period: "the end
value includes any matching date/time"): a line whose ``boundsPeriod.end`` is "2026-01" runs through
31 January, not to the 1st."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from checker import check
from checker.fhir_input import read

PATIENT = {"resourceType": "Patient", "id": "pe", "gender": "female", "birthDate": "1960-01-01"}


def _request(rid: str, text: str, start: str, *, bounds_end: str | None = None,
             validity_end: str | None = None) -> dict[str, Any]:
    dosage: dict[str, Any] = {"text": "1 comprimé par jour",
                              "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}
    r: dict[str, Any] = {"resourceType": "MedicationRequest", "id": rid, "status": "active", "intent": "order",
                         "subject": {"reference": "Patient/pe"}, "authoredOn": start,
                         "medicationCodeableConcept": {"text": text}, "dosageInstruction": [dosage]}
    if bounds_end:
        dosage["timing"]["repeat"]["boundsPeriod"] = {"start": start, "end": bounds_end}
    if validity_end:
        r["dispenseRequest"] = {"validityPeriod": {"start": start, "end": validity_end}}
    return r


def _bundle(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in (PATIENT, *resources)]}


@pytest.mark.parametrize("field", ["bounds_end", "validity_end"])
@pytest.mark.parametrize("written, last", [("2026-01", date(2026, 1, 31)), ("2025", date(2025, 12, 31)),
                                           ("2026-01-10", date(2026, 1, 10)),
                                           ("2026-01-10T08:00:00+01:00", date(2026, 1, 10))])
def test_a_period_end_covers_what_it_names(field: str, written: str, last: date) -> None:
    data = _bundle(_request("a", "Simvastatine 20 mg comprimé", "2025-01-01", **{field: written}))
    [record] = read(data).records
    [order] = record.medication_orders
    end = order.dosages[0].bounds_end if field == "bounds_end" else order.dispense.validity_end
    assert end == last


def test_a_line_ending_in_january_meets_a_line_of_the_20th() -> None:
    data = _bundle(_request("a", "Simvastatine 20 mg comprimé", "2025-12-01", bounds_end="2026-01"),
                   _request("b", "Clarithromycine 500 mg comprimé", "2026-01-20", bounds_end="2026-01-27"))
    report = check(data, as_of="2026-06-01", select=["IX001"])
    assert not report.errors
    assert [f.severity.value for f in report.findings] == ["critical"]


def test_an_unreadable_period_end_still_refuses_the_resource() -> None:
    data = _bundle(_request("a", "Simvastatine 20 mg comprimé", "2025-12-01", bounds_end="janvier 2026"))
    report = check(data, as_of="2026-06-01")
    assert report.errors and not report.findings
