"""Allergies on a day: read once with their dates and statuses, answered by the facts layer with the
point-in-time semantics of conditions, and PR001 judged through it."""

from __future__ import annotations

import random
import re
from datetime import date
from typing import Any

import pytest

from checker import facts
from checker.fhir_input import read
from checker.model import Allergy, Concept, PatientRecord
from checker.referentials import default_referentials
from tests.test_facts_point_in_time import bundle, findings, med

TABLES = default_referentials().get("clinical-facts")
ABATEMENT = "http://hl7.org/fhir/StructureDefinition/allergyintolerance-abatement"


def allergy(rid: str, text: str, *, onset: str | None = None, recorded: str | None = None,
            last: str | None = None, clinical: str | None = "active", verification: str | None = None,
            abatement: str | None = None, codings: list[dict[str, str]] | None = None) -> dict[str, Any]:
    r: dict[str, Any] = {"resourceType": "AllergyIntolerance", "id": rid, "code": {"text": text},
                         "patient": {"reference": "Patient/pit"}}
    if codings:
        r["code"]["coding"] = codings
    if clinical:
        r["clinicalStatus"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                           "code": clinical}]}
    if verification:
        r["verificationStatus"] = {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification", "code": verification}]}
    if onset:
        r["onsetDateTime"] = onset
    if recorded:
        r["recordedDate"] = recorded
    if last:
        r["lastOccurrence"] = last
    if abatement:
        r["extension"] = [{"url": ABATEMENT, "valueDateTime": abatement}]
    return r


def _allergies(data: dict[str, Any]) -> list[Allergy]:
    ingestion = read(data)
    return [a for rec in ingestion.records for a in rec.allergies]


def _record(*allergies: Allergy) -> PatientRecord:
    return PatientRecord(None, allergies=list(allergies))


# --- the one reader ---------------------------------------------------------------------------------

def test_the_reader_keeps_the_dates_of_an_allergy() -> None:
    [a] = _allergies(bundle(allergy("a1", "Pénicilline", onset="2019-05", recorded="2020-02-03",
                                    last="2024-07-01T10:00:00Z", clinical="inactive", abatement="2025-01-10")))
    assert (a.onset, a.recorded, a.last_occurrence, a.abatement) == (
        date(2019, 5, 1), date(2020, 2, 3), date(2024, 7, 1), date(2025, 1, 10))
    assert a.clinical_status == "inactive"


def test_the_reader_takes_stu3_dates_and_plain_statuses() -> None:
    res = {"resourceType": "AllergyIntolerance", "id": "a3", "clinicalStatus": "resolved",
           "verificationStatus": "refuted", "assertedDate": "2017-03-04", "onsetPeriod": {"start": "2016-01-02"},
           "code": {"text": "Pénicilline"}, "patient": {"reference": "Patient/pit"}}
    [a] = _allergies(bundle(res))
    assert (a.clinical_status, a.verification_status, a.recorded, a.onset) == (
        "resolved", "refuted", date(2017, 3, 4), date(2016, 1, 2))


# --- allergies on a day -------------------------------------------------------------------------------

def _on(a: Allergy, day: date) -> bool:
    return a in facts.allergies_on(_record(a), day, TABLES)


def test_an_allergy_counts_from_its_onset_else_from_when_it_was_recorded() -> None:
    by_onset = Allergy("AllergyIntolerance/a", Concept(text="Pénicilline"), "active", onset=date(2025, 3, 1),
                       recorded=date(2025, 6, 1))
    assert not _on(by_onset, date(2025, 2, 28)) and _on(by_onset, date(2025, 3, 1))
    by_record = Allergy("AllergyIntolerance/b", Concept(text="Pénicilline"), "active", recorded=date(2025, 6, 1))
    assert not _on(by_record, date(2025, 5, 31)) and _on(by_record, date(2025, 6, 1))
    seen = Allergy("AllergyIntolerance/c", Concept(text="Pénicilline"), "active", recorded=date(2025, 6, 1),
                   last_occurrence=date(2025, 4, 1))
    assert not _on(seen, date(2025, 3, 31)) and _on(seen, date(2025, 4, 1))  # a reaction seen before it was recorded
    undated = Allergy("AllergyIntolerance/d", Concept(text="Pénicilline"), "active")
    assert _on(undated, date(1990, 1, 1))


@pytest.mark.parametrize("clinical, verification, abatement, on", [
    ("active", "refuted", None, False),
    ("active", "entered-in-error", None, False),
    ("", "entered-in-error", None, False),
    ("resolved", "confirmed", None, False),
    ("inactive", "", None, False),
    ("resolved", "confirmed", date(2025, 6, 1), True),  # resolved later: it stood on the day
    ("resolved", "confirmed", date(2025, 1, 1), False),
    ("active", "unconfirmed", None, True),  # a suspected allergy still warns
    ("", "", None, True),
])
def test_statuses_and_abatement(clinical: str, verification: str, abatement: date | None, on: bool) -> None:
    a = Allergy("AllergyIntolerance/x", Concept(text="Pénicilline"), clinical, verification,
                onset=date(2020, 1, 1), abatement=abatement)
    assert _on(a, date(2025, 3, 1)) is on


@pytest.mark.parametrize("text, codings", [
    ("Pas d'allergie connue", []),
    ("No known allergies", []),
    ("NKA", []),
    ("NKDA", []),
    ("Allergies : aucune", []),
    ("Aucune allergie médicamenteuse connue", []),
    ("", [{"system": "http://snomed.info/sct", "code": "716186003", "display": "No known allergy"}]),
    ("", [{"system": "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips", "code": "no-known-allergies"}]),
    ("", [{"system": "http://hl7.org/fhir/uv/ips/CodeSystem/absent-unknown-uv-ips",
           "code": "no-known-medication-allergies"}]),
])
def test_a_statement_of_no_allergy_is_not_an_allergy(text: str, codings: list[dict[str, str]]) -> None:
    [a] = _allergies(bundle(allergy("n1", text, codings=codings)))
    assert facts.allergies_on(_record(a), date(2026, 1, 1), TABLES) == []


@pytest.mark.parametrize("text, word, expected", [
    ("Allergie à la pénicilline", r"penicill", True),
    ("Pas d'allergie à la pénicilline", r"penicill", False),
    ("No known allergy to penicillin", r"penicill", False),
    ("Allergie à la pénicilline : non", r"penicill", False),
    ("Allergie pénicilline écartée", r"penicill", False),
    ("Urticaire sous amoxicilline, pas de réaction aux céphalosporines", r"amoxicilline", True),
    ("Urticaire sous amoxicilline, pas de réaction aux céphalosporines", r"cephalosporine", False),
    ("Allergie aux pollens", r"penicill", None),
    ("Suspicion d'allergie à la pénicilline", r"penicill", True),  # a suspicion calls for the same caution
    ("Allergie à la pénicilline chez sa mère", r"penicill", None),
])
def test_the_allergen_is_read_with_negation(text: str, word: str, expected: bool | None) -> None:
    a = Allergy("AllergyIntolerance/t", Concept(text=text), "active")
    assert facts.allergen_polarity(a, re.compile(word)) is expected


# --- PR001 judged at the order's date -----------------------------------------------------------------

AMOX = "Amoxicilline 1 g comprimé dispersible"


def test_an_allergy_recorded_after_a_finished_course_does_not_flag_it() -> None:
    data = bundle(allergy("a1", "Allergie à la pénicilline", onset="2025-06-10", recorded="2025-06-10"),
                  med("m1", AMOX, "2025-03-01", freq=3, days=7))
    assert findings(data, "2026-01-15", "PR001") == []
    assert findings(data, "2025-03-05", "PR001") == []


def test_an_allergy_recorded_while_the_line_is_still_taken_flags_it_on_that_day() -> None:
    data = bundle(allergy("a1", "Allergie à la pénicilline", recorded="2026-01-10"),
                  med("m1", AMOX, "2026-01-05", freq=3, days=30))
    [f] = findings(data, "2026-01-15", "PR001")
    assert f["evidence"]["judged_on"] == "2026-01-15"
    assert findings(data, "2026-01-08", "PR001") == []  # the day before it was recorded: nothing known yet


def test_an_allergy_known_before_the_order_flags_it_whenever_checked() -> None:
    data = bundle(allergy("a1", "Allergie à la pénicilline", onset="2015-01-01", recorded="2015-01-01"),
                  med("m1", AMOX, "2025-03-01", freq=3, days=7))
    at_the_time, later = findings(data, "2025-03-02", "PR001"), findings(data, "2026-01-15", "PR001")
    assert len(at_the_time) == len(later) == 1
    assert later[0]["evidence"]["judged_on"] == "2025-03-01"
    assert at_the_time[0]["fingerprint"] == later[0]["fingerprint"]


@pytest.mark.parametrize("extra", [{"verification": "refuted"}, {"verification": "entered-in-error"},
                                   {"clinical": "resolved"}, {"clinical": "inactive"}])
def test_refuted_wrong_or_resolved_allergies_never_count(extra: dict[str, Any]) -> None:
    data = bundle(allergy("a1", "Allergie à la pénicilline", onset="2015-01-01", **extra),
                  med("m1", AMOX, "2026-01-12", freq=3, days=7))
    assert findings(data, "2026-01-15", "PR001") == []


@pytest.mark.parametrize("text", ["Pas d'allergie à la pénicilline", "No known allergy to penicillin",
                                  "Allergie à la pénicilline : non", "Allergie pénicilline écartée", "NKDA"])
def test_a_denied_allergy_does_not_flag_the_drug(text: str) -> None:
    data = bundle(allergy("a1", text), med("m1", AMOX, "2026-01-12", freq=3, days=7))
    assert findings(data, "2026-01-15", "PR001") == []


# --- every allergen of the allergy-class table, in generated wording -------------------------------

AFFIRMED = ["Allergie à {w}", "Allergie aux {w} (urticaire)", "{w} : œdème de Quincke", "Allergy to {w}",
            "Intolérance aux {w}", "Réaction allergique grave sous {w} en 2019", "Suspicion d'allergie aux {w}",
            "Possible allergy to {w}"]
DENIED = ["Pas d'allergie à {w}", "Absence d'allergie aux {w}", "No allergy to {w}", "Allergie à {w} : non",
          "Allergie aux {w} écartée", "Allergy to {w} ruled out", "Denies allergy to {w}",
          "Aucune allergie connue aux {w}", "Allergie aux {w} : test négatif"]
OTHERS = ["Antécédents familiaux d'allergie aux {w}", "Allergie aux {w} chez sa mère", "Family history of {w} allergy"]


def _allergen_cases() -> list[Any]:
    rows = default_referentials().get("iatrogenic-rules").kind("allergy-class")
    tokens = sorted({t for row in rows for t in row.allergens if not t.startswith("sct ")})
    assert len(tokens) > 20, tokens
    rng = random.Random(14)
    cases = []
    for token in tokens:  # every allergen of the table, each in a few seeded wordings
        word = token if len(token) <= 4 or " " in token else token + "ines"
        for group, expected in ((AFFIRMED, True), (DENIED, False), (OTHERS, None)):
            for template in rng.sample(group, 2):
                cases.append(pytest.param(token, template.format(w=word), expected, id=f"{token}-{template[:18]}"))
    return cases


@pytest.mark.parametrize("token, text, expected", _allergen_cases())
def test_every_class_allergen_reads_the_same_way(token: str, text: str, expected: bool | None) -> None:
    """Suspected allergies count (caution, as verificationStatus ``unconfirmed``); denied ones and a
    relative's do not."""
    from checker.rules.patient_risks import _named

    a = Allergy("AllergyIntolerance/g", Concept(text=text), "active")
    assert _named(a, token) is (expected is True)
    whole = r"(?![a-z0-9])" if len(token) <= 4 else ""
    assert facts.allergen_polarity(a, re.compile(rf"(?<![a-z0-9]){re.escape(token)}{whole}")) is expected


def test_the_reader_takes_dstu2_status_and_dates() -> None:
    """DSTU2 has one ``status`` (active … refuted, entered-in-error), ``onset`` and ``lastOccurence``."""
    base = {"resourceType": "AllergyIntolerance", "substance": {"text": "Pénicilline"},
            "patient": {"reference": "Patient/pit"}, "onset": "2015-06-01", "lastOccurence": "2016-02-03"}
    got = {}
    for rid, status in (("s1", "confirmed"), ("s2", "refuted"), ("s3", "resolved"), ("s4", "entered-in-error")):
        [a] = _allergies(bundle({**base, "id": rid, "status": status}))
        got[status] = (a.clinical_status, a.verification_status)
        assert (a.onset, a.last_occurrence) == (date(2015, 6, 1), date(2016, 2, 3))
        assert a.code.label() == "Pénicilline"  # DSTU2 names the allergen in substance
    assert got == {"confirmed": ("active", ""), "refuted": ("", "refuted"), "resolved": ("resolved", ""),
                   "entered-in-error": ("", "entered-in-error")}


def test_an_allergy_begun_before_but_recorded_after_the_order_counts_and_says_when_it_was_recorded() -> None:
    """The patient was allergic on the order's day (onset before it): the line is flagged, and the
    evidence gives the recording date, so an auditor sees the prescriber could not have read it."""
    data = bundle(allergy("a1", "Allergie à la pénicilline", onset="2010-01-01", recorded="2025-10-01"),
                  med("m1", AMOX, "2025-03-01", freq=3, days=7))
    [f] = findings(data, "2026-01-15", "PR001")
    assert f["evidence"]["judged_on"] == "2025-03-01"
    assert f["evidence"]["allergy_onset"] == "2010-01-01" and f["evidence"]["allergy_recorded"] == "2025-10-01"


# --- the cheaper-strategy gates read the facts of the order's day --------------------------------------

def _sartan_record(*extra: dict[str, Any]) -> dict[str, Any]:
    import json
    from tests.conftest import SAMPLES

    data = json.loads((SAMPLES / "rules" / "EQ005" / "fail-sartan-initiation-hta.json").read_text(encoding="utf-8"))
    for e in data["entry"]:
        if e["resource"]["resourceType"] == "MedicationRequest":
            e["resource"]["authoredOn"] = "2025-03-01"
    pid = data["entry"][0]["resource"]["id"]
    for r in extra:
        data["entry"].append({"fullUrl": f"urn:uuid:{r['id']}", "resource": {**r, "subject": {"reference": f"Patient/{pid}"},
                                                                            "patient": {"reference": f"Patient/{pid}"}}})
    return data


def _hf(**dates: str) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": "c-hf", "code": {"coding": [
        {"system": "http://hl7.org/fhir/sid/icd-10", "code": "I50.9", "display": "Insuffisance cardiaque"}]},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": "active"}]}, **dates}


def test_a_sartan_started_before_heart_failure_was_diagnosed_is_judged_on_its_day() -> None:
    """The strategy excludes heart failure: one diagnosed months after the order does not excuse it
    (audit a year later); one diagnosed before it does."""
    assert len(findings(_sartan_record(_hf(onsetDateTime="2025-10-01")), "2026-01-15", "EQ005")) == 1
    assert findings(_sartan_record(_hf(onsetDateTime="2024-10-01")), "2026-01-15", "EQ005") == []


def test_an_ace_inhibitor_intolerance_recorded_after_the_sartan_does_not_excuse_it() -> None:
    late = allergy("a-iec", "Intolérance aux IEC (toux)", recorded="2025-11-02")
    early = allergy("a-iec", "Intolérance aux IEC (toux)", recorded="2024-11-02")
    assert len(findings(_sartan_record(late), "2026-01-15", "EQ005")) == 1
    assert findings(_sartan_record(early), "2026-01-15", "EQ005") == []


# --- over every PR001 failing sample: the allergy's date decides ----------------------------------------

def _pr001_fail_samples() -> list[Any]:
    from tests.conftest import SAMPLES

    return [pytest.param(p, id=p.stem) for p in sorted((SAMPLES / "rules" / "PR001").glob("fail-*.json"))]


@pytest.mark.parametrize("path", _pr001_fail_samples())
def test_the_allergy_date_decides_for_every_failing_sample(path: Any) -> None:
    """Dated after the last day the line was taken, the allergy flags nothing; dated before the order,
    it flags it, whatever the later check date."""
    import json
    from datetime import timedelta

    from checker import fhir_input, periods

    data = json.loads(path.read_text(encoding="utf-8"))
    [record] = fhir_input.read(data).records
    far = date(2030, 1, 1)
    ends = [periods.effective_interval(o, far)[1] for o in record.medication_orders]
    starts = [facts.order_day(o, far) for o in record.medication_orders]
    last, first = max(ends), min(starts)
    assert last < far, "the sample's lines have an end"
    for when, as_of, flagged in ((last + timedelta(days=1), last + timedelta(days=30), False),
                                 (first - timedelta(days=1), last + timedelta(days=30), True),
                                 (first - timedelta(days=1), far, True)):
        for e in data["entry"]:
            r = e["resource"]
            if r["resourceType"] == "AllergyIntolerance":
                r["onsetDateTime"] = r["recordedDate"] = when.isoformat()
        got = findings(data, as_of.isoformat(), "PR001")
        assert bool(got) is flagged, (when, as_of, [f["summary"] for f in got])
