"""Point in time: every prescription is judged on the record as it stood on its own date; ``--as-of``
only closes open-ended periods, so a later ``--as-of`` never changes a finding about the past."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from checker import check
from tests.conftest import SAMPLES

PATIENT = "Patient/pit"


def bundle(*resources: dict[str, Any], birth: str = "1950-02-01", sex: str = "male") -> dict[str, Any]:
    entries = [{"fullUrl": "urn:uuid:pit", "resource": {"resourceType": "Patient", "id": "pit", "gender": sex,
                                                         "birthDate": birth}}]
    for r in resources:
        r = dict(r)
        r.setdefault("subject", {"reference": PATIENT})
        entries.append({"fullUrl": f"urn:uuid:{r['id']}", "resource": r})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def med(rid: str, text: str, authored: str, *, freq: int = 1, dose: float = 1, unit: str = "comprimé",
        days: int | None = 30, status: str = "active", period: float = 1) -> dict[str, Any]:
    r: dict[str, Any] = {
        "resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
        "medicationCodeableConcept": {"text": text}, "authoredOn": authored,
        "dosageInstruction": [{"text": f"{dose} {unit} {freq} fois par jour",
                               "timing": {"repeat": {"frequency": freq, "period": period, "periodUnit": "d"}},
                               "doseAndRate": [{"doseQuantity": {"value": dose, "unit": unit}}]}]}
    if days is not None:
        r["dispenseRequest"] = {"expectedSupplyDuration": {"value": days, "unit": "d",
                                                           "system": "http://unitsofmeasure.org", "code": "d"}}
    return r


def egfr(rid: str, value: float, day: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": rid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "62238-1"}]},
            "effectiveDateTime": day, "valueQuantity": {"value": value, "unit": "mL/min/{1.73_m2}"}}


def condition(rid: str, text: str, *, onset: str | None = None, abatement: str | None = None,
              clinical: str | None = "active", verification: str | None = None, recorded: str | None = None,
              codings: list[dict[str, str]] | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {"resourceType": "Condition", "id": rid, "code": {"text": text}}
    if codings:
        r["code"]["coding"] = codings
    if clinical:
        r["clinicalStatus"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": clinical}]}
    if verification:
        r["verificationStatus"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                               "code": verification}]}
    if onset:
        r["onsetDateTime"] = onset
    if abatement:
        r["abatementDateTime"] = abatement
    if recorded:
        r["recordedDate"] = recorded
    return r


def findings(data: Any, as_of: str, rule: str) -> list[dict[str, Any]]:
    report = check(data, as_of=as_of, select=[rule])
    assert not report.errors, report.errors
    return [f.to_dict() for f in report.findings if f.rule == rule]


# --- retrospective evaluation: the order is judged at its own date ------------------------------------

def test_metformin_with_egfr_25_is_flagged_months_after_the_course() -> None:
    data = bundle(egfr("e1", 25, "2025-03-01"), med("m1", "Metformine 1000 mg comprimé pelliculé", "2025-03-05", freq=2))
    at_the_time = findings(data, "2025-03-10", "PR003")
    later = findings(data, "2026-01-15", "PR003")
    assert at_the_time and at_the_time[0]["evidence"]["renal"]["value"] == 25
    assert later == at_the_time


def test_an_egfr_measured_after_the_order_does_not_judge_it() -> None:
    data = bundle(egfr("e1", 25, "2025-06-01"), egfr("e0", 70, "2025-02-20"),
                  med("m1", "Metformine 1000 mg comprimé pelliculé", "2025-03-05", freq=2))
    got = findings(data, "2026-01-15", "PR003")
    assert not [f for f in got if f["severity"] != "info"], "the eGFR of 25 came after the order"


def test_a_stale_egfr_is_no_answer_and_says_so() -> None:
    # eGFR older than the validity window before the order: renal function unknown on the order date
    data = bundle(egfr("e1", 25, "2020-03-01"), med("m1", "Metformine 1000 mg comprimé pelliculé", "2025-03-05", freq=2))
    got = findings(data, "2026-01-15", "PR003")
    assert len(got) == 1 and got[0]["severity"] == "info"
    assert got[0]["evidence"]["missing"] == "egfr"


def test_daily_oral_methotrexate_is_flagged_when_checked_later() -> None:
    data = bundle(med("mtx", "Méthotrexate 2,5 mg comprimé", "2025-03-05", freq=1, days=14))
    assert findings(data, "2025-03-10", "PR005")
    assert findings(data, "2026-01-15", "PR005") == findings(data, "2025-03-10", "PR005")


def test_age_is_taken_on_the_order_date() -> None:
    # 74 when prescribed (2025-06-01), 75 on --as-of 2026-01-15: the 75+ criterion does not apply
    data = bundle(med("bz", "Bromazépam 6 mg comprimé sécable", "2025-06-01", dose=0.5), birth="1951-01-01")
    got = findings(data, "2026-01-15", "PR002")
    assert len(got) == 1
    assert got[0]["evidence"]["age"] == 74
    assert not [c for c in got[0]["evidence"]["criteria"] if c["criterion"].startswith("Laroche")]


def test_pregnancy_is_judged_on_the_order_date() -> None:
    # pregnant when valproate was prescribed; the pregnancy ended before --as-of
    data = bundle(condition("g", "Grossesse", onset="2025-01-10", abatement="2025-09-20", clinical="resolved"),
                  med("v", "Valproate de sodium 500 mg comprimé gastro-résistant", "2025-03-05"), sex="female",
                  birth="1995-01-01")
    assert findings(data, "2026-01-15", "PR004")


def test_a_pregnancy_resolved_years_before_does_not_count() -> None:
    data = bundle(condition("g", "Grossesse", onset="2022-01-10", abatement="2022-09-20", clinical="resolved"),
                  med("v", "Valproate de sodium 500 mg comprimé gastro-résistant", "2025-03-05"), sex="female",
                  birth="1995-01-01")
    assert not findings(data, "2026-01-15", "PR004")


def test_a_past_interaction_stays_when_checked_later() -> None:
    data = bundle(med("w", "Warfarine 5 mg comprimé", "2025-03-05", days=20),
                  med("i", "Ibuprofène 400 mg comprimé", "2025-03-06", freq=3, days=5))
    assert findings(data, "2025-03-08", "IX001")
    assert findings(data, "2026-01-15", "IX001") == findings(data, "2025-03-08", "IX001")


# --- property: a later --as-of never changes a finding about a treatment ended before -----------------

def _ended_before(finding: dict[str, Any], ended: set[str]) -> bool:
    return bool(finding["implicated"]) and all(ref in ended for ref in finding["implicated"])


def _moving_as_of_keeps_the_past(inputs: Any, early: str, late: str) -> None:
    from checker import fhir_input, periods
    from checker.api import parse_day

    day = parse_day(early)
    ingestion = fhir_input.read(inputs, as_of=day)
    ended = set()
    for record in ingestion.records:
        for o in record.medication_orders:
            _, end = periods.treatment_period(o, day)
            if end is not None and end < day:
                ended.add(o.ref)
        for s in record.service_orders:
            when = s.occurrence or s.authored_on
            if when is not None and when < day:
                ended.add(s.ref)
    before = [f.to_dict() for f in check(inputs, as_of=early).findings]
    after = [f.to_dict() for f in check(inputs, as_of=late).findings]
    strip = lambda f: {k: v for k, v in f.items() if k not in ("id",)}  # noqa: E731
    past_before = [strip(f) for f in before if _ended_before(f, ended)]
    past_after = [strip(f) for f in after if _ended_before(f, ended)]
    missing = [f for f in past_before if f not in past_after]
    assert not missing, f"{len(missing)} finding(s) about past treatments changed: " + \
        "; ".join(f"{f['rule']} {f['summary']}" for f in missing[:5])


@pytest.mark.parametrize("early, late", [("2026-01-15", "2027-06-30"), ("2025-06-01", "2026-01-15")])
def test_moving_as_of_later_keeps_findings_about_the_past_on_samples(early: str, late: str) -> None:
    _moving_as_of_keeps_the_past([str(SAMPLES)], early, late)


@pytest.mark.parametrize("corpus", ["eprescription-fr", "hl7-r4-examples", "pddi-cds", "pharma-analysis-fr",
                                    "synthea", "cds-hooks", "pama-imaging"])
def test_moving_as_of_later_keeps_findings_about_the_past_on_shared_corpora(shared_dir: Path, corpus: str) -> None:
    path = shared_dir / "fhir" / corpus
    if not path.exists():
        pytest.skip(f"{corpus} not in the shared corpus")
    _moving_as_of_keeps_the_past([str(path)], "2026-01-15", "2027-06-30")


def test_an_egfr_that_fell_during_a_course_is_judged_even_when_checked_long_after() -> None:
    # metformin 2025-10-01 for 180 days; eGFR 25 on 2026-01-05, while it was taken
    data = bundle(egfr("e1", 25, "2026-01-05"),
                  med("m1", "Metformine 850 mg comprimé", "2025-10-01", freq=2, days=180))
    for as_of in ("2026-01-15", "2026-06-30", "2028-01-01"):
        got = findings(data, as_of, "PR003")
        assert len(got) == 1 and got[0]["severity"] == "warning", as_of
        assert got[0]["evidence"]["judged_on"] == min(as_of, "2026-03-29")


def test_the_readme_demo_gives_the_same_findings_whatever_the_later_as_of() -> None:
    """The demo's orders all ended by mid-2026: checking them in 2027 or 2030 says the same."""
    def keys(as_of: str) -> list[tuple[Any, ...]]:
        return sorted((f.rule, f.patient, f.implicated, f.severity.value, f.summary)
                      for f in check([str(SAMPLES / "demo")], as_of=as_of).findings)
    assert keys("2027-06-30") == keys("2030-01-01")
    assert keys("2027-06-30") == keys("2026-06-30")
