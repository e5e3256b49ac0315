"""A sinusitis the prescriber calls viral is not the bacterial sinusitis for which amoxicillin is first
line: an antibiotic for it is judged by the viral-infection protocol (no antibiotic), whatever the
antibiotic class. A sinusitis written without that qualifier keeps its verdicts. The wordings are
generated (French and English, coded and text-only, with and without the SNOMED "(disorder)" tag, in
seeded random letter case) and all the patients are judged in one run."""

from __future__ import annotations

import random
from typing import Any

import pytest

from checker import check

AS_OF = "2026-01-15"
AMOX_FIRST = "HAS-AMOXICILLINE-PREMIERE-INTENTION"
VIRAL = "ANSM-ATB-RHINOPHARYNGITE-BRONCHITE"
SNOMED = "http://snomed.info/sct"

# every antibiotic class the two protocols name: amoxicillin alone, amoxicillin-clavulanate and the
# three cephalosporin generations of the amoxicillin-first protocol
ANTIBIOTICS = {
    "J01CA04": "Amoxicilline 1 g",
    "J01CR02": "Amoxicilline 1 g / acide clavulanique 125 mg",
    "J01DB01": "Céfalexine 500 mg",
    "J01DC02": "Céfuroxime 250 mg",
    "J01DD13": "Cefpodoxime 100 mg",
}
BROAD = {"J01CR02", "J01DB01", "J01DC02", "J01DD13"}

VIRAL_WORDINGS = ["Viral sinusitis", "Acute viral sinusitis", "Viral maxillary sinusitis",
                  "Sinusite virale", "Sinusite aiguë virale", "Sinusite maxillaire aiguë virale",
                  "Rhinosinusite virale", "Rhinosinusite aiguë virale", "Viral rhinosinusitis"]
PLAIN_WORDINGS = ["Sinusite aiguë maxillaire", "Sinusite maxillaire", "Acute sinusitis",
                  "Acute maxillary sinusitis", "Sinusitis", "Acute bacterial sinusitis", "Sinusite bactérienne"]


def _case(rng: random.Random, text: str) -> str:
    return rng.choice([text, text.lower(), text.upper(), text.title()])


def _reasons(wordings: list[str], viral_code: bool, seed: int) -> list[dict[str, Any]]:
    """Each wording as text only, and with and without "(disorder)"; the viral ones also coded."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for w in wordings:
        out.append({"text": _case(rng, w)})
        out.append({"text": _case(rng, f"{w} (disorder)")})
    if viral_code:
        for display in ("Viral sinusitis (disorder)", "Viral sinusitis", "Sinusite virale"):
            out.append({"coding": [{"system": SNOMED, "code": "444814009", "display": _case(rng, display)}],
                        "text": _case(rng, display)})
            out.append({"coding": [{"system": SNOMED, "code": "444814009"}]})
    else:
        out.append({"coding": [{"system": SNOMED, "code": "15805002", "display": "Acute sinusitis (disorder)"}],
                    "text": "Acute sinusitis (disorder)"})
        out.append({"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "J01.0"}],
                    "text": _case(rng, "Sinusite maxillaire aiguë")})
    return out


def _run(reasons: list[dict[str, Any]]) -> tuple[dict[str, dict[str, set[str]]], dict[str, str]]:
    """All (reason, antibiotic) pairs as one patient each; findings by order id and protocol."""
    data: list[dict[str, Any]] = []
    labels: dict[str, str] = {}
    for i, reason in enumerate(reasons):
        for atc, label in ANTIBIOTICS.items():
            pid, mid = f"p{i}-{atc}", f"m{i}-{atc}"
            labels[mid] = f"{reason!r} / {atc}"
            data.append({"resourceType": "Patient", "id": pid, "birthDate": "1980-01-01", "gender": "female"})
            data.append({"resourceType": "MedicationRequest", "id": mid, "status": "active", "intent": "order",
                         "subject": {"reference": f"Patient/{pid}"},
                         "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": atc}],
                                                       "text": label},
                         "authoredOn": "2026-01-12", "reasonCode": [reason],
                         "dosageInstruction": [{"text": label, "timing": {"repeat": {
                             "boundsDuration": {"value": 7, "unit": "d", "system": "http://unitsofmeasure.org",
                                                "code": "d"}, "frequency": 2, "period": 1, "periodUnit": "d"}}}]})
    report = check(data, as_of=AS_OF, select=["OP002"])
    assert not report.errors
    found: dict[str, dict[str, set[str]]] = {mid: {} for mid in labels}
    for f in report.findings:
        d = f.to_dict()
        for ref in d["implicated"]:
            mid = ref.split("/", 1)[1]
            found.setdefault(mid, {}).setdefault(d["evidence"]["protocol"], set()).add(d["evidence"]["branch"])
    return found, labels


@pytest.mark.parametrize("seed", [1, 2])
def test_a_viral_sinusitis_is_no_amoxicillin_first_indication_and_its_antibiotic_is_flagged(seed: int) -> None:
    found, labels = _run(_reasons(VIRAL_WORDINGS, True, seed))
    amox_advised = [labels[m] for m, by in found.items() if AMOX_FIRST in by]
    unflagged = [labels[m] for m, by in found.items() if by.get(VIRAL) != {"not-indicated"}]
    assert not amox_advised, f"{len(amox_advised)} viral sinusitis read as an amoxicillin indication: {amox_advised[:3]}"
    assert not unflagged, f"{len(unflagged)} antibiotics for a viral sinusitis not flagged: {unflagged[:3]}"


@pytest.mark.parametrize("seed", [1, 2])
def test_a_sinusitis_not_called_viral_keeps_its_verdicts(seed: int) -> None:
    found, labels = _run(_reasons(PLAIN_WORDINGS, False, seed))
    wrong = []
    for mid, by in found.items():
        atc = mid.split("-", 1)[1]
        want = {AMOX_FIRST: {"prefer-amoxicillin"}} if atc in BROAD else {}
        if by != want:
            wrong.append((labels[mid], by))
    assert not wrong, f"{len(wrong)} changed verdicts: {wrong[:3]}"


def test_a_denied_viral_origin_is_no_viral_sinusitis() -> None:
    reason = {"text": "Sinusite maxillaire aiguë, pas d'origine virale"}
    found, _ = _run([reason])
    assert found["m0-J01CR02"] == {AMOX_FIRST: {"prefer-amoxicillin"}}
    assert found["m0-J01CA04"] == {}
