"""``--format fhir``: DetectedIssue says what the FHIR R4 definitions mean
(https://hl7.org/fhir/R4/detectedissue-definitions.html), not only what validates.

- ``mitigation`` is an action taken or committed: absent unless the record shows one; proposals go to
  the ``detail`` narrative and the proposed-action extension.
- ``evidence.detail`` references the resources that decided; ``evidence.code`` codings carry a system;
  the citation goes to ``reference``.
- ``implicated`` names the input's own identity (its fullUrl when it had one); ``author`` is a Device
  naming Pertinence and its version; the age alert is ActCode AGE.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from checker import __version__
from checker.api import check
from checker.findings import Finding, InputCounts, Report, Severity, Source
from checker.formats import codes, render

SAMPLES = Path(__file__).resolve().parents[1] / "fhir_samples"
ANSM = Source("ANSM, Thésaurus des interactions médicamenteuses", "https://ansm.sante.fr/x", "2023-09")


def _report(*findings: Finding, urls: dict[str, str] | None = None) -> Report:
    r = Report("pertinence", __version__, (), "2026-01-15", "fr", InputCounts(), list(findings), [], lang="fr")
    if urls:
        r.resource_urls.update(urls)
    return r


def _finding(**kw: Any) -> Finding:
    base: dict[str, Any] = dict(rule="IX001", category="interaction", severity=Severity.CRITICAL,
                                summary="Contre-indication : simvastatine + clarithromycine", detail="Risque majoré.",
                                source=ANSM, patient="Patient/p1",
                                implicated=("MedicationRequest/a", "MedicationRequest/b"), level="CI",
                                suggestion={"action": "stop-or-replace"},
                                evidence={"pair": ["simvastatine", "clarithromycine"]}, key="k")
    base.update(kw)
    return Finding(**base)


def _issues(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DetectedIssue"]


def _bundle(report: Report) -> dict[str, Any]:
    return orjson.loads(render(report, "fhir"))


def test_a_proposal_is_not_a_mitigation() -> None:
    [issue] = _issues(_bundle(_report(_finding())))
    assert "mitigation" not in issue
    [ext] = [e for e in issue.get("extension", []) if e["url"] == codes.PROPOSAL_EXTENSION]
    action = next(x for x in ext["extension"] if x["url"] == "action")
    assert action["valueCodeableConcept"]["coding"][0] == {"system": codes.ACTION_SYSTEM, "code": "stop-or-replace"}
    assert "stop-or-replace" not in issue["detail"]  # the narrative words it, it does not dump the code
    assert issue["detail"].startswith("Risque majoré.") and len(issue["detail"]) > len("Risque majoré.")


def test_a_recorded_action_is_a_mitigation() -> None:
    taken = {"action_taken": {"code": "monitoring", "display": "INR monitoring planned", "date": "2026-01-14"}}
    [issue] = _issues(_bundle(_report(_finding(evidence=taken))))
    [m] = issue["mitigation"]
    assert m["action"]["text"] == "INR monitoring planned" and m["date"] == "2026-01-14"


def test_switch_proposal_carries_the_replacement_and_saving() -> None:
    sugg = {"with": {"label": "ATORVASTATINE 20 mg", "cis": "61234567"}, "saving": {"amount": 4.2, "currency": "EUR",
                                                                                     "period": "year"}}
    f = _finding(rule="EQ001", category="cheaper-equivalent", severity=Severity.INFO, level=None, suggestion=sugg,
                 implicated=("MedicationRequest/a",), evidence={"substance": "atorvastatine"})
    [issue] = _issues(_bundle(_report(f)))
    assert "mitigation" not in issue
    [ext] = [e for e in issue["extension"] if e["url"] == codes.PROPOSAL_EXTENSION]
    parts = {x["url"]: x for x in ext["extension"]}
    assert parts["replacement"]["valueCodeableConcept"]["text"] == "ATORVASTATINE 20 mg"
    assert parts["saving"]["valueMoney"] == {"value": 4.2, "currency": "EUR"}
    assert "ATORVASTATINE 20 mg" in issue["detail"]


def test_evidence_is_coded_and_the_citation_is_the_reference() -> None:
    [issue] = _issues(_bundle(_report(_finding())))
    assert issue["reference"] == "https://ansm.sante.fr/x"
    for ev in issue["evidence"]:
        for concept in ev.get("code", []):
            assert concept.get("coding") and all(c.get("system") and c.get("code") for c in concept["coding"]), concept
            assert "ANSM" not in json.dumps(concept) and "{" not in concept.get("text", "")
    coded = {(c["system"], c["code"]) for ev in issue["evidence"] for cc in ev.get("code", []) for c in cc["coding"]}
    assert (codes.LEVEL_SYSTEM, "CI") in coded and (codes.SUBSTANCE_SYSTEM, "simvastatine") in coded


def test_implicated_uses_the_inputs_full_url() -> None:
    urls = {"MedicationRequest/a": "urn:uuid:3f1c7c7e-4d52-4a7e-9c51-3b0a9f0a0001"}
    [issue] = _issues(_bundle(_report(_finding(), urls=urls)))
    assert [r["reference"] for r in issue["implicated"]] == ["urn:uuid:3f1c7c7e-4d52-4a7e-9c51-3b0a9f0a0001",
                                                             "MedicationRequest/b"]


def test_author_is_a_device_naming_pertinence_and_its_version() -> None:
    bundle = _bundle(_report(_finding()))
    devices = {e["fullUrl"]: e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Device"}
    [issue] = _issues(bundle)
    device = devices[issue["author"]["reference"]]
    assert any(n["name"] == "Pertinence" for n in device["deviceName"])
    assert device["version"][0]["value"] == __version__


def test_age_alert_is_actcode_age() -> None:
    f = _finding(rule="PR002", category="contraindication", severity=Severity.WARNING, level=None,
                 implicated=("MedicationRequest/a",), evidence={"age": 82, "criteria": []},
                 summary="Médicament potentiellement inapproprié à 82 ans : bromazépam")
    [issue] = _issues(_bundle(_report(f)))
    act = [c for c in issue["code"]["coding"] if c["system"] == "http://terminology.hl7.org/CodeSystem/v3-ActCode"]
    assert [c["code"] for c in act] == ["AGE"]
    assert {"reference": "Patient/p1"} in [d for ev in issue["evidence"] for d in ev.get("detail", [])]


def test_cards_and_detected_issues_share_the_category_system() -> None:
    from checker.formats import cds_hooks

    report = _report(_finding())
    [card] = cds_hooks.cards(report)
    [issue] = _issues(_bundle(report))
    systems = {c["system"] for c in issue["code"]["coding"] if c["code"] == "interaction"}
    assert systems == {card["source"]["topic"]["system"]} == {codes.CATEGORY_SYSTEM}


def _input_identities(path: Path) -> set[str]:
    data = json.loads(path.read_text(encoding="utf-8"))
    out = set()
    for e in data.get("entry", []):
        r = e.get("resource", {})
        if e.get("fullUrl"):
            out.add(e["fullUrl"])
        if r.get("id"):
            out.add(f"{r['resourceType']}/{r['id']}")
    return out


@pytest.mark.parametrize("sample", sorted(str(p.relative_to(SAMPLES)) for p in
                                          (SAMPLES / "rules").glob("PR00[1-4]/fail-*.json")))
def test_fhir_output_of_samples_keeps_the_meaning_rules(sample: str) -> None:
    """Parse the ``fhir`` output of real sample inputs: no mitigation without an action, every reference
    (implicated, evidence.detail, patient) resolves to a resource of the input, author present."""
    from fhir.resources.R4B.bundle import Bundle

    path = SAMPLES / sample
    report = check([str(path)], as_of="2026-01-15")
    text = render(report, "fhir")
    Bundle.model_validate(orjson.loads(text))
    bundle = orjson.loads(text)
    known = _input_identities(path) | {e["fullUrl"] for e in bundle["entry"]}
    issues = _issues(bundle)
    assert issues
    details = 0
    for issue in issues:
        assert "mitigation" not in issue
        assert issue["author"]["reference"] in known
        for ref in [*issue["implicated"], issue.get("patient", {}),
                    *(d for ev in issue.get("evidence", []) for d in ev.get("detail", []))]:
            if "reference" in ref:
                assert ref["reference"] in known, (ref, sorted(known))
        details += sum(len(ev.get("detail", [])) for ev in issue.get("evidence", []))
    if "PR001" in sample or "PR003/fail-metformine-dfg" in sample or "PR002" in sample:
        assert details, "the resource that decided is referenced"
    full = {json.loads(path.read_text())["entry"][i]["fullUrl"] for i in range(len(json.loads(path.read_text())["entry"]))
            if "fullUrl" in json.loads(path.read_text())["entry"][i]}
    if full:  # the input named its resources by fullUrl: references use them
        assert all(r["reference"] in full for i in issues for r in i["implicated"] if "reference" in r)
