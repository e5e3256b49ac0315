"""``fhir``: a FHIR R4 Bundle (collection) of DetectedIssue resources, built and validated with
fhir.resources (R4B models, structurally identical to R4 for DetectedIssue and Bundle)."""

from __future__ import annotations

from typing import Any

import orjson
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.detectedissue import DetectedIssue

from checker.findings import Finding, Report, Severity
from checker.model import ANONYMOUS_MARK

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CATEGORY_SYSTEM = "https://pertinence.dev/fhir/CodeSystem/finding-category"
RULE_SYSTEM = "https://pertinence.dev/fhir/CodeSystem/rule"
FINGERPRINT_SYSTEM = "https://pertinence.dev/fhir/NamingSystem/finding-fingerprint"

_SEVERITY = {Severity.CRITICAL: "high", Severity.WARNING: "moderate", Severity.INFO: "low"}
# v3 ActCode detected-issue codes (HL7 Terminology, ActCode: DRG drug interaction alert, DUPTHPY duplicate
# therapy alert, ALGY allergy alert, COND condition alert, DOSE dosage problem). Categories without a v3
# equivalent carry only Pertinence's own category code.
_ACT = {
    "interaction": ("DRG", "Drug Interaction Alert"),
    "duplicate": ("DUPTHPY", "Duplicate Therapy Alert"),
    "allergy": ("ALGY", "Allergy Alert"),
    "contraindication": ("COND", "Condition Alert"),
    "dosage": ("DOSE", "Dosage problem"),
}


def detected_issue(f: Finding, as_of: str) -> dict[str, Any]:
    """One finding as a DetectedIssue (JSON dict, validated by fhir.resources)."""
    codings = [{"system": CATEGORY_SYSTEM, "code": f.category}, {"system": RULE_SYSTEM, "code": f.rule}]
    if f.category in _ACT:
        code, display = _ACT[f.category]
        codings.insert(0, {"system": ACT_CODE, "code": code, "display": display})
    resource: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": f.fingerprint,
        "identifier": [{"system": FINGERPRINT_SYSTEM, "value": f.fingerprint}],
        "status": "final",
        "code": {"coding": codings, "text": f.summary},
        "severity": _SEVERITY[f.severity],
        "identifiedDateTime": as_of,
        "implicated": [_reference(ref) for ref in f.implicated],
        "detail": f.detail or f.summary,
    }
    if f.patient:
        resource["patient"] = _reference(f.patient)
    if f.source.url:
        resource["reference"] = f.source.url
    evidence_text = orjson.dumps(f.evidence, option=orjson.OPT_SORT_KEYS).decode() if f.evidence else ""
    evidence: dict[str, Any] = {"code": [{"text": f.source.cite()}]}
    if f.level:
        evidence["code"].append({"text": f"level: {f.level}"})
    if evidence_text:
        evidence["code"].append({"text": evidence_text})
    resource["evidence"] = [evidence]
    if f.suggestion:
        resource["mitigation"] = [{
            "action": {"text": orjson.dumps(f.suggestion, option=orjson.OPT_SORT_KEYS).decode()},
        }]
    return resource


def bundle(report: Report) -> dict[str, Any]:
    """The report as a validated Bundle (dict)."""
    entries = [
        {"fullUrl": f"urn:uuid:{_uuid(f.fingerprint)}", "resource": detected_issue(f, report.as_of)}
        for f in report.sorted_findings()
    ]
    data: dict[str, Any] = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    for e in entries:
        DetectedIssue.model_validate(e["resource"])
    Bundle.model_validate(data)
    return data


def render(report: Report) -> str:
    return orjson.dumps(bundle(report), option=orjson.OPT_INDENT_2).decode() + "\n"


def _uuid(fingerprint: str) -> str:
    import uuid

    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://pertinence.dev/finding/{fingerprint}"))


def _reference(ref: str) -> dict[str, str]:
    """A FHIR Reference: ``reference`` for a resource the input identified, ``display`` for one named by
    its content hash (it had neither id nor fullUrl: there is nothing to point at)."""
    return {"display": ref} if ANONYMOUS_MARK in ref else {"reference": ref}
