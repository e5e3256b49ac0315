"""What a long-running process keeps of the requests it has answered.

The rules and the wording remember answers by value (an order's reason matched against a concept
set, a message worded in a language) to serve bulk runs that repeat them. Such memos must not keep
the words of a request once it is answered: the CDS Hooks service and an EHR plugin calling the
library run for days, and an order's reason is a diagnosis in the prescriber's words. Each test
checks many requests, each with its reasons marked, then looks for the marks among live objects.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from checker import check
from checker.findings import Report
from checker.service.app import EXAMPLE_REQUEST, create_app
from tests.conftest import live_values
from tests.test_service import insecure_config

DEMO = Path(__file__).resolve().parents[1] / "fhir_samples" / "demo" / "01-dupont-marie.json"
MARK = "motif-de-la-requete-"


def _alive_marks() -> set[str]:
    """The requests whose marked text is still referenced by a live container or slotted object."""
    found: set[str] = set()
    for v in live_values():
        if isinstance(v, str) and MARK in v:
            rest = v.split(MARK, 1)[1]
            if rest:
                found.add(rest.split()[0] if rest.split() else rest)
    return found


def _demo_request(i: int, demo: dict[str, Any]) -> dict[str, Any]:
    bundle = copy.deepcopy(demo)
    for entry in bundle["entry"]:
        res = entry["resource"]
        if res["resourceType"] == "MedicationRequest":
            res["reasonCode"] = [{"text": f"{MARK}{i} lombalgie chronique, {res['id']}"}]
    return bundle


def test_the_library_keeps_no_reason_of_a_checked_and_worded_request() -> None:
    demo = json.loads(DEMO.read_text(encoding="utf-8"))
    check(demo, as_of="2026-02-01")  # referentials loaded before looking
    for i in range(20):
        report = check(_demo_request(i, demo), as_of="2026-02-01")
        assert report.findings
        assert all(f.summary and f.detail for f in report.findings)  # worded, as an output would
        del report
    check(demo, as_of="2026-02-01")  # the next call of the library clears what the last one remembered
    assert _alive_marks() == set(), "reason texts of past requests kept by the process"


def _service_request(i: int) -> dict[str, Any]:
    """The discovery example with an omeprazole draft whose reason is marked for request ``i``."""
    body = copy.deepcopy(EXAMPLE_REQUEST)
    draft = body["context"]["draftOrders"]["entry"][0]["resource"]
    draft["medicationCodeableConcept"] = {"text": "OMEPRAZOLE 20 mg gélule"}
    draft["reasonCode"] = [{"text": f"{MARK}{i} douleur épigastrique"}]
    return body


@pytest.mark.parametrize("n", [12])
def test_the_service_keeps_no_reason_of_an_answered_request(tmp_path: Path, n: int) -> None:
    client = TestClient(create_app(insecure_config(tmp_path)))
    for i in range(n):
        resp = client.post("/cds-services/order-sign", json=_service_request(i))
        assert resp.status_code == 200, resp.text
        del resp
    assert _alive_marks() == set(), "reason texts of answered requests kept by the service"


# --- the dates of a request's lines (a treatment's first and last day) ---------------------------------

DURATION_SAMPLE = Path(__file__).resolve().parents[1] / "fhir_samples" / "rules" / "OP002" / \
    "fail-alprazolam-quatre-mois.json"  # two alprazolam lines judged by a treatment-duration protocol


def _alive_dates(years: set[int]) -> set[date]:
    """Dates of ``years`` still referenced by a live container or slotted object, looked for also in
    the tuples they hold (a tuple of dates is not tracked by the collector, the dict keyed by it is)."""
    return {v for v in live_values() if type(v) is date and v.year in years}


def _dates_left_by_past_requests(sample_path: Path, seed: int, date_it: Callable[[dict[str, Any], int, random.Random], None],
                                  as_of: Callable[[int], str], judged: Callable[[Report], bool]) -> set[date]:
    """Check the sample redated by ``date_it`` to 8 seeded past years (none of which any referential
    names), each report ``judged`` to have used those dates and fully worded, then check the sample
    itself again: the dates of those years still alive in the process."""
    sample = json.loads(sample_path.read_text(encoding="utf-8"))
    check(sample, as_of="2026-02-01")  # referentials loaded before looking
    rng = random.Random(seed)
    years = set(rng.sample(range(1801, 1890), 8))
    for year in sorted(years):
        bundle = copy.deepcopy(sample)
        for entry in bundle["entry"]:
            date_it(entry["resource"], year, rng)
        report = check(bundle, as_of=as_of(year))
        assert judged(report)
        assert all(f.summary and f.detail for f in report.findings)
        del report, bundle
    check(sample, as_of="2026-02-01")
    return _alive_dates(years)


def test_the_library_keeps_no_treatment_dates_of_a_checked_request() -> None:
    """A treatment's days (when a patient took a benzodiazepine, from when to when) are the patient's
    data as much as the reason's words: seeded requests of past years, each judged by a
    treatment-duration protocol, leave none of their dates alive once checked."""

    def date_it(res: dict[str, Any], year: int, rng: random.Random) -> None:
        if res["resourceType"] == "Patient":
            res["birthDate"] = f"{year - 50}-01-01"
        elif res["resourceType"] == "MedicationRequest":
            res["authoredOn"] = f"{year}{res['authoredOn'][4:]}"

    left = _dates_left_by_past_requests(DURATION_SAMPLE, 1817, date_it, lambda year: f"{year + 1}-02-01",
                                        lambda report: any(f.rule == "OP002" for f in report.findings))  # the duration was judged
    assert left == set(), "treatment dates of past requests kept by the process"


PRICED_SAMPLE = Path(__file__).resolve().parents[1] / "fhir_samples" / "rules" / "EQ001" / "fail-tahor-20.json"


def test_the_library_keeps_no_dispense_dates_of_a_checked_request() -> None:
    """The days a prescription may be dispensed (``dispenseRequest.validityPeriod``) of seeded requests
    of past years, each priced by the cheaper-equivalent rules, leave none of their dates alive once
    the requests are checked."""

    def date_it(res: dict[str, Any], year: int, rng: random.Random) -> None:
        if res["resourceType"] == "MedicationRequest":
            res["dispenseRequest"] = {
                "validityPeriod": {"start": f"{year}-03-0{rng.randrange(1, 10)}", "end": f"{year}-06-1{rng.randrange(10)}"},
                "numberOfRepeatsAllowed": rng.randrange(4)}

    left = _dates_left_by_past_requests(PRICED_SAMPLE, 1818, date_it, lambda year: "2026-02-01",
                                        lambda report: any(f.rule.startswith("EQ") for f in report.findings))  # priced
    assert left == set(), "dispense dates of past requests kept by the process"
