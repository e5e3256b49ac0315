"""``fhir``: a FHIR R4 Bundle (collection) of DetectedIssue resources, built and validated with
fhir.resources (R4B models, structurally identical to R4 for DetectedIssue, Device and Bundle).

What each element means (FHIR R4 DetectedIssue, https://hl7.org/fhir/R4/detectedissue-definitions.html):

- ``code``: v3 ActCode detected-issue code when one fits (DRG, DUPTHPY, ALGY, AGE, COND, DOSE), the
  finding category and the rule id in Pertinence's code systems (:mod:`checker.formats.codes`).
- ``implicated``: the orders concerned, by the identity the input gave them (its Bundle ``fullUrl``
  when it had one, else ``Type/id``; a resource with neither is named in ``display`` only).
- ``evidence``: ``detail`` references each Observation, Condition, AllergyIntolerance (and the Patient
  for an age alert) that decided; ``code`` the coded facts (interaction level, substances, ATC classes),
  every coding with a system.
- ``reference``: the citation (source URL); ``detail``: the explanation, the proposal in words and the
  source with its edition.
- ``mitigation`` ("an action that has been taken or is committed"): only when the finding's evidence
  records one (``evidence["action_taken"]``). What Pertinence *proposes* goes in the narrative and in the
  ``proposed-action`` extension (:data:`~checker.formats.codes.PROPOSAL_EXTENSION`), never in mitigation.
- ``author``: a Device (an entry of the Bundle) naming Pertinence and its version.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.detectedissue import DetectedIssue
from fhir.resources.R4B.device import Device

from checker.findings import Finding, Report, Severity
from checker.formats.catalogue import money, table
from checker.formats.cds_hooks import replacement
from checker.formats.codes import (ACTION_SYSTEM, ATC_SYSTEM, CATEGORY_SYSTEM, FINGERPRINT_SYSTEM, LEVEL_SYSTEM,
                                   PROPOSAL_EXTENSION, RULE_SYSTEM, SUBSTANCE_SYSTEM)
from checker.model import ANONYMOUS_MARK

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

_SEVERITY = {Severity.CRITICAL: "high", Severity.WARNING: "moderate", Severity.INFO: "low"}
# v3 ActCode detected-issue codes (HL7 Terminology, ActCode: DRG drug interaction alert, DUPTHPY duplicate
# therapy alert, ALGY allergy alert, AGE age alert, COND condition alert, DOSE dosage problem). Categories
# without a v3 equivalent carry only Pertinence's own category code.
_ACT = {
    "interaction": ("DRG", "Drug Interaction Alert"),
    "duplicate": ("DUPTHPY", "Duplicate Therapy Alert"),
    "allergy": ("ALGY", "Allergy Alert"),
    "contraindication": ("COND", "Condition Alert"),
    "dosage": ("DOSE", "Dosage problem"),
}
_AGE = ("AGE", "Age Alert")
_EVIDENCE_TYPES = ("Observation", "Condition", "AllergyIntolerance")
_EVIDENCE_REF = re.compile(r"^(?:%s)/[A-Za-z0-9\-.]{1,64}$" % "|".join(_EVIDENCE_TYPES))
_URL_REF = re.compile(r"^(?:urn:uuid:|urn:oid:|https?://)\S+$")
_REF_KEYS = frozenset({"allergy", "observation", "condition", "conditions", "pregnancy", "reason", "reasons"})


def device(version: str) -> dict[str, Any]:
    """The Device that authors every DetectedIssue: Pertinence at ``version``."""
    return {
        "resourceType": "Device",
        "id": "pertinence",
        "deviceName": [{"name": "Pertinence", "type": "manufacturer-name"}],
        "version": [{"value": version}],
    }


def device_url(version: str) -> str:
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'https://pertinence.dev/device/{version}')}"


def detected_issue(f: Finding, as_of: str, *, urls: Mapping[str, str] | None = None, author: str | None = None,
                   lang: str = "fr") -> dict[str, Any]:
    """One finding as a DetectedIssue (JSON dict). ``urls``: ``Type/id`` -> the input's fullUrl;
    ``author``: the reference of the authoring Device."""
    urls = urls or {}
    codings = [{"system": CATEGORY_SYSTEM, "code": f.category}, {"system": RULE_SYSTEM, "code": f.rule}]
    act = _AGE if "age" in f.evidence and f.category == "contraindication" else _ACT.get(f.category)
    if act is not None:
        codings.insert(0, {"system": ACT_CODE, "code": act[0], "display": act[1]})
    resource: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": f.fingerprint,
        "identifier": [{"system": FINGERPRINT_SYSTEM, "value": f.fingerprint}],
        "status": "final",
        "code": {"coding": codings, "text": f.summary},
        "severity": _SEVERITY[f.severity],
        "identifiedDateTime": as_of,
        "implicated": [_reference(ref, urls) for ref in f.implicated],
        "detail": _narrative(f, lang),
    }
    if f.patient:
        resource["patient"] = _reference(f.patient, urls)
    if author:
        resource["author"] = {"reference": author, "display": "Pertinence"}
    if f.source.url:
        resource["reference"] = f.source.url
    evidence = _evidence(f, urls)
    if evidence:
        resource["evidence"] = [evidence]
    proposal = _proposal_extension(f)
    if proposal is not None:
        resource["extension"] = [proposal]
    mitigation = _mitigation(f)
    if mitigation is not None:
        resource["mitigation"] = [mitigation]
    return resource


def bundle(report: Report) -> dict[str, Any]:
    """The report as a validated Bundle (dict): the authoring Device, then one DetectedIssue per finding."""
    author = device_url(report.checker_version)
    dev = device(report.checker_version)
    Device.model_validate(dev)
    entries: list[dict[str, Any]] = [{"fullUrl": author, "resource": dev}]
    for f in report.sorted_findings():
        issue = detected_issue(f, report.as_of, urls=report.resource_urls, author=author, lang=report.lang)
        DetectedIssue.model_validate(issue)
        entries.append({"fullUrl": f"urn:uuid:{_uuid(f.fingerprint)}", "resource": issue})
    data: dict[str, Any] = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    Bundle.model_validate(data)
    return data


def render(report: Report) -> str:
    return orjson.dumps(bundle(report), option=orjson.OPT_INDENT_2).decode() + "\n"


def _uuid(fingerprint: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://pertinence.dev/finding/{fingerprint}"))


def _reference(ref: str, urls: Mapping[str, str]) -> dict[str, str]:
    """A FHIR Reference to where the input put the resource: its fullUrl when it had one, else ``Type/id``;
    ``display`` only for one named by its content hash (it had neither id nor fullUrl)."""
    if ANONYMOUS_MARK in ref:
        return {"display": ref}
    return {"reference": urls.get(ref, ref)}


# --- evidence ----------------------------------------------------------------------------------------


def _evidence_refs(value: Any, key: str = "", depth: int = 0) -> Iterator[str]:
    """Resource references inside a finding's evidence: ``Observation/…``, ``Condition/…``,
    ``AllergyIntolerance/…`` anywhere, and fullUrls under the keys that hold references."""
    if depth > 6:
        return
    if isinstance(value, str):
        if _EVIDENCE_REF.match(value) or (key in _REF_KEYS and _URL_REF.match(value)):
            yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _evidence_refs(v, str(k), depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _evidence_refs(v, key, depth + 1)


def _evidence_codes(f: Finding) -> list[dict[str, Any]]:
    """Coded facts: the interaction level, the substances and the ATC classes the finding is about."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()

    def add(system: str, code: Any, display: str | None = None) -> None:
        if not isinstance(code, str) or not code.strip() or (system, code) in seen:
            return
        seen.add((system, code))
        coding = {"system": system, "code": code}
        if display:
            coding["display"] = display
        out.append({"coding": [coding]})

    for level in re.split(r"[^A-Z]+", (f.level or "").upper()):
        if level in ("CI", "AD", "PE", "APEC", "ASDEC"):
            add(LEVEL_SYSTEM, level)
    ev = f.evidence
    subs: list[Any] = []
    for k in ("pair", "substances"):
        if isinstance(ev.get(k), list):
            subs += ev[k]
    if isinstance(ev.get("substance"), str):
        subs.append(ev["substance"])
    for s in subs:
        add(SUBSTANCE_SYSTEM, s)
    for atc in ev.get("atc_prefixes") or ():
        add(ATC_SYSTEM, atc)
    return out


def _evidence(f: Finding, urls: Mapping[str, str]) -> dict[str, Any]:
    evidence: dict[str, Any] = {}
    codes = _evidence_codes(f)
    if codes:
        evidence["code"] = codes
    refs = list(dict.fromkeys(_evidence_refs(f.evidence)))
    if "age" in f.evidence and f.patient:
        refs.append(f.patient)  # the birth date decided
    details = [_reference(r, urls) for r in refs]
    if details:
        evidence["detail"] = details
    return evidence


# --- proposal and mitigation ---------------------------------------------------------------------------


def _replacement(f: Finding) -> dict[str, Any] | None:
    return replacement(f.suggested() or {}, "with", "replacement", "alternative", "exam")


def _proposal_extension(f: Finding) -> dict[str, Any] | None:
    """The proposed-action extension: ``action`` (code), ``replacement`` (CodeableConcept), ``saving``
    (Money) with its ``savingPeriod`` (code), ``advice`` (string)."""
    sugg = f.suggested() or {}
    parts: list[dict[str, Any]] = []
    action = sugg.get("action")
    if isinstance(action, str) and action:
        parts.append({"url": "action", "valueCodeableConcept": {"coding": [{"system": ACTION_SYSTEM, "code": action}]}})
    rep = _replacement(f)
    if rep is not None:
        concept: dict[str, Any] = {"text": rep["label"]}
        if rep["codings"]:
            concept["coding"] = rep["codings"]
        parts.append({"url": "replacement", "valueCodeableConcept": concept})
    saving = f.saving.to_dict() if f.saving is not None else {}
    if isinstance(saving, Mapping) and isinstance(saving.get("amount"), (int, float)) and saving.get("currency"):
        parts.append({"url": "saving", "valueMoney": {"value": saving["amount"], "currency": str(saving["currency"])}})
        if saving.get("period"):
            parts.append({"url": "savingPeriod", "valueCode": str(saving["period"])})
    if isinstance(sugg.get("alternative"), str) and sugg["alternative"].strip():
        parts.append({"url": "advice", "valueString": sugg["alternative"].strip()})
    if not parts:
        return None
    return {"url": PROPOSAL_EXTENSION, "extension": parts}


def _mitigation(f: Finding) -> dict[str, Any] | None:
    """A mitigation only when the record shows an action taken: ``evidence["action_taken"]`` =
    ``{"code"?, "display", "date"?}`` (filled by a rule that read it from the record)."""
    taken = f.evidence.get("action_taken")
    if not isinstance(taken, Mapping) or not (taken.get("display") or taken.get("code")):
        return None
    action: dict[str, Any] = {"text": str(taken.get("display") or taken.get("code"))}
    if taken.get("code") and taken.get("system"):
        action["coding"] = [{"system": str(taken["system"]), "code": str(taken["code"])}]
    out: dict[str, Any] = {"action": action}
    if isinstance(taken.get("date"), str):
        out["date"] = taken["date"]
    return out


def _narrative(f: Finding, lang: str) -> str:
    """The detail in words: explanation, what is proposed, the source with its edition."""
    t = table(lang, "fhir_text")
    actions = table(lang, "fhir_action")
    parts = [f.detail.strip() or f.summary]
    proposed: list[str] = []
    sugg = f.suggested() or {}
    action = sugg.get("action")
    if isinstance(action, str) and action in actions:
        proposed.append(actions[action])
    rep = _replacement(f)
    if rep is not None:
        proposed.append(t["replace"].format(label=rep["label"]))
    elif isinstance(sugg.get("alternative"), str) and sugg["alternative"].strip():
        proposed.append(sugg["alternative"].strip())
    saving = f.saving
    if saving is not None and saving.amount is not None:  # CLDR money: 16,91 € / €16.91
        proposed.append(t["saving"].format(amount=money(saving.amount, saving.currency, lang)))
    if proposed:
        parts.append(t["labelled"].format(label=t["proposal"], text=t["list_sep"].join(proposed)))
    cite = f.source.cite()
    if cite:
        parts.append(t["labelled"].format(label=t["source"], text=cite))
    return "\n\n".join(parts)
