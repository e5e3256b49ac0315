"""The ``cds-hooks`` output format: findings as CDS Hooks 2.0 cards.

One card per finding about a draft order (HL7 CDS Hooks 2.0, "CDS Service Response" and "Card
Attributes", https://cds-hooks.hl7.org/2.0/#cds-service-response): ``indicator`` from the severity,
a ``summary`` under 140 characters, a Markdown ``detail`` naming the source and its edition,
``source.label``/``url``, ``overrideReasons`` (Codings with a ``display``) and ``suggestions`` whose
``actions`` (``update``/``delete``) the EHR can apply. The card ``uuid`` is a UUIDv5 of the finding
fingerprint in the pure formatter (``render``: same input, same output); the CDS service asks for
fresh ids (``fresh_ids=True``): each card of each response gets its own uuid, so feedback is tied to
one answer. The stable finding fingerprint travels in the card ``extension`` under
:data:`~checker.formats.codes.CARD_EXTENSION` (``fingerprint``, ``rule``, ``category``, ``drafts``) for
de-duplication across calls.

Delete suggestions name draft orders only (never an active order, and nothing outside a hook call);
their labels name the drug.

:func:`render` is the pure formatter used by ``pertinence check --format cds-hooks``; the CDS
service calls :func:`cards` with the draft order references and the raw draft resources.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from checker.drugs.matcher import SYS_CIP13, SYS_CIS  # the systems identification reads back
from checker.findings import Finding, Report, Severity
from checker.formats import codes
from checker.formats.advice import advice, drugs_named, short_cite
from checker.formats.catalogue import LANGS, money, table, word

CARD_NAMESPACE = uuid.UUID("5b0f3f52-7c1e-5d2a-9a51-70657274696e")
"""UUIDv5 namespace of Pertinence cards: ``uuid5(CARD_NAMESPACE, fingerprint)`` is the card uuid."""

OVERRIDE_SYSTEM = codes.OVERRIDE_SYSTEM
TOPIC_SYSTEM = codes.CATEGORY_SYSTEM  # one system for finding categories, in cards and in DetectedIssue
SUMMARY_MAX = 139  # the specification asks for a summary of fewer than 140 characters

_OVERRIDE_REASONS: dict[str, tuple[tuple[str, str, str], ...]] = {
    # category -> (code, French display, English display); UI choices, not clinical statements
    "_default": (
        ("benefit-outweighs-risk", "Bénéfice attendu supérieur au risque pour ce patient",
         "Expected benefit outweighs the risk for this patient"),
        ("monitoring-in-place", "Surveillance adaptée prévue", "Appropriate monitoring planned"),
        ("record-inaccurate", "Données du dossier inexactes ou obsolètes", "Record data inaccurate or out of date"),
        ("specialist-advice", "Décision prise sur avis spécialisé", "Decision taken on specialist advice"),
    ),
    "cheaper-equivalent": (
        ("patient-preference", "Choix du patient (ou mention « non substituable » justifiée)",
         "Patient preference (or justified non-substitution)"),
        ("clinical-reason", "Raison clinique de garder ce produit", "Clinical reason to keep this product"),
        ("record-inaccurate", "Données du dossier inexactes ou obsolètes", "Record data inaccurate or out of date"),
    ),
    "off-protocol": (
        ("clinical-context", "Contexte clinique justifiant l'examen demandé",
         "Clinical context justifies the requested exam"),
        ("specialist-advice", "Décision prise sur avis spécialisé", "Decision taken on specialist advice"),
        ("record-inaccurate", "Données du dossier inexactes ou obsolètes", "Record data inaccurate or out of date"),
    ),
    "unidentified": (
        ("product-known", "Produit connu du prescripteur, codage à corriger plus tard",
         "Product known to the prescriber; coding to be fixed later"),
        ("record-inaccurate", "Données du dossier inexactes ou obsolètes", "Record data inaccurate or out of date"),
    ),
}

# Card wording: the ``cds`` table of the catalogue (checker/formats/messages/<lang>.toml).


def card_uuid(fingerprint: str) -> str:
    """The stable card id of a finding: UUIDv5 of its fingerprint."""
    return str(uuid.uuid5(CARD_NAMESPACE, fingerprint))


def render(report: Report) -> str:
    """The report as a CDS Hooks response body: ``{"cards": [...]}`` (every finding, sorted)."""
    return json.dumps({"cards": cards(report)}, ensure_ascii=False, indent=2) + "\n"


def cards(
    report: Report,
    *,
    draft_refs: set[str] | None = None,
    draft_resources: Mapping[str, Mapping[str, Any]] | None = None,
    findings: Iterable[Finding] | None = None,
    order_labels: Mapping[str, str] | None = None,
    fresh_ids: bool = False,
) -> list[dict[str, Any]]:
    """Cards for the report's findings, most severe first.

    ``draft_refs``: when given, only findings implicating at least one of these draft orders get a
    card (a problem between two already-signed orders is not the prescriber's concern now).
    ``draft_resources``: the raw draft resources by reference (``MedicationRequest/<id>``); needed to
    build ``update`` actions, which carry the whole updated resource. ``findings``: a filtered subset
    of the report's findings (alert-fatigue controls) instead of all of them. ``order_labels``:
    what each order reference prescribes, to name the lines in the detail and delete suggestions.
    ``fresh_ids``: random card and suggestion uuids (one per card per response) instead of stable ones.
    """
    lang = report.lang if report.lang in LANGS else "fr"
    chosen = list(findings) if findings is not None else report.sorted_findings()
    chosen.sort(key=lambda f: (-f.severity.rank, f.rule, f.implicated, f.fingerprint))
    out = []
    for f in chosen:
        if draft_refs is not None and not (set(f.implicated) & draft_refs):
            continue
        out.append(finding_card(f, lang=lang, draft_refs=draft_refs, draft_resources=draft_resources or {},
                                order_labels=order_labels, fresh_ids=fresh_ids))
    return out


def finding_card(
    f: Finding,
    *,
    lang: str = "fr",
    draft_refs: set[str] | None = None,
    draft_resources: Mapping[str, Mapping[str, Any]] | None = None,
    order_labels: Mapping[str, str] | None = None,
    fresh_ids: bool = False,
) -> dict[str, Any]:
    """One CDS Hooks card for one finding."""
    t = table(lang, "cds")
    summary = f.summary if len(f.summary) <= SUMMARY_MAX else f.summary[: SUMMARY_MAX - 1].rstrip() + "…"
    # A short title and year on the card; the full reference is behind the URL and in the detail.
    source: dict[str, Any] = {"label": short_cite(f.source.label, f.source.edition) or "Pertinence"}
    if f.source.url:
        source["url"] = f.source.url
    source["topic"] = {"system": TOPIC_SYSTEM, "code": f.category, "display": word(lang, "category", f.category)}
    card: dict[str, Any] = {
        "uuid": str(uuid.uuid4()) if fresh_ids else card_uuid(f.fingerprint),
        "summary": summary,
        "indicator": _indicator(f.severity),
        "detail": _detail(f, t, order_labels or {}, draft_refs, lang),
        "source": source,
    }
    suggestions = _suggestions(f, t, draft_refs, draft_resources or {}, order_labels or {}, fresh_ids)
    if suggestions:
        card["suggestions"] = suggestions
        card["selectionBehavior"] = "at-most-one"
    reasons = _OVERRIDE_REASONS.get(f.category, _OVERRIDE_REASONS["_default"])
    card["overrideReasons"] = [
        {"system": OVERRIDE_SYSTEM, "code": code, "display": en if lang == "en" else fr} for code, fr, en in reasons
    ]
    card["extension"] = {codes.CARD_EXTENSION: {
        "fingerprint": f.fingerprint, "rule": f.rule, "category": f.category,
        "drafts": [r for r in f.implicated if draft_refs is not None and r in draft_refs],
    }}
    return card


def override_display(code: str, lang: str) -> str | None:
    """The display of one of our override reason codes in ``lang`` (None for a code we never offer)."""
    for reasons in _OVERRIDE_REASONS.values():
        for c, fr, en in reasons:
            if c == code:
                return en if lang == "en" else fr
    return None


def _indicator(severity: Severity) -> str:
    return {Severity.CRITICAL: "critical", Severity.WARNING: "warning"}.get(severity, "info")


_MD_ESCAPES = str.maketrans({c: "\\" + c for c in "\\`*_[]<>"})


def _md_escape(text: str) -> str:
    return text.translate(_MD_ESCAPES)


def _detail(f: Finding, t: dict[str, str], labels: Mapping[str, str], drafts: set[str] | None,
            lang: str = "fr") -> str:
    lines = [f.detail.strip()] if f.detail.strip() else []
    saving = f.saving.to_dict() if f.saving is not None else {}
    if isinstance(saving.get("amount"), (int, float)):
        amount = money(float(saving["amount"]), str(saving.get("currency", "")), lang)
        period = t.get("period_" + str(saving.get("period", "")), "")
        lines.append(f"**{t['saving']}** : {amount}{(' ' + period) if period else ''}")
    alternative = _advice(f)
    if alternative:
        lines.append(f"**{t['alternative']}** : {_md_escape(alternative)}")
    else:
        todo = advice(f.to_dict(), lang, labels)
        if todo:
            lines.append(f"**{t['todo']}** : {_md_escape(todo)}")
    meta = [f"**{t['rule']}** : {f.rule}"]
    if f.level:
        meta.append(f"**{t['level']}** : {word(lang, 'level', f.level)}")
    lines.append(" · ".join(meta))
    if f.implicated:
        named = []
        for ref in f.implicated:
            label = _md_escape(labels.get(ref, ""))
            tag = f" ({t['draft']})" if drafts and ref in drafts else ""
            if label and _RELATIVE_REF.match(ref):
                named.append(f"{label}{tag} `{ref}`")
            else:
                named.append(f"{label}{tag}" if label else f"`{ref}`")
        lines.append(f"**{t['orders']}** : " + " ; ".join(named))
    label = _md_escape(f.source.label)
    cite = f"[{label}]({f.source.url})" if f.source.url else label
    if f.source.edition:
        cite += f", {t['edition']} {_md_escape(f.source.edition)}"
    lines.append(f"**{t['source']}** : {cite}")
    return "\n\n".join(lines)


# --- suggestions ---------------------------------------------------------------------------------


def _suggestion_uuid(f: Finding, kind: str, ref: str, fresh: bool = False) -> str:
    if fresh:
        return str(uuid.uuid4())
    return str(uuid.uuid5(CARD_NAMESPACE, f"{f.fingerprint}\x1f{kind}\x1f{ref}"))


def _drafts_of(f: Finding, draft_refs: set[str] | None, prefix: str) -> list[str]:
    refs = [r for r in f.implicated if r.startswith(prefix)]
    return [r for r in refs if draft_refs is None or r in draft_refs]


def replacement(suggestion: Mapping[str, Any], *keys: str) -> dict[str, Any] | None:
    """The proposed product or exam of a finding's suggestion as ``{label, codings}``, or None.

    Shapes read: the cheaper-equivalent rules' ``{"with": {"label", "cis", "cip13", ...}}``; a
    structured ``{"alternative": {"label", "coding": Coding | [Coding]}}``. A plain-text alternative
    (advice, not an orderable item) gives None: it is shown in the card detail instead.
    """
    item = next((suggestion[k] for k in keys if isinstance(suggestion.get(k), Mapping)), None)
    if item is None:
        return None
    codings: list[dict[str, str]] = []
    raw = item.get("coding") or item.get("codings")
    if isinstance(raw, Mapping):
        raw = [raw]
    if isinstance(raw, list):
        for c in raw:
            if isinstance(c, Mapping) and c.get("code") and c.get("system"):
                codings.append({k: str(c[k]) for k in ("system", "code", "display") if c.get(k)})
    if item.get("cip13") or item.get("cis"):
        if item.get("cip13"):
            codings.append({"system": SYS_CIP13, "code": str(item["cip13"])})
        if item.get("cis"):
            codings.append({"system": SYS_CIS, "code": str(item["cis"])})
    label = next((str(item[k]) for k in ("label", "name", "display", "text") if isinstance(item.get(k), str)
                  and item.get(k)), "")
    if not label and codings:
        label = codings[0].get("display", codings[0]["code"])
    if not label:
        return None
    return {"label": label, "codings": codings}


def _advice(f: Finding) -> str:
    """A plain-text alternative of the finding's suggestion (protocols), if any."""
    alt = (f.suggested() or {}).get("alternative")
    return alt.strip() if isinstance(alt, str) else ""


def _concept(rep: Mapping[str, Any]) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": rep["label"]}
    if rep["codings"]:
        concept["coding"] = rep["codings"]
    return concept


def _updated_medication(resource: Mapping[str, Any], rep: Mapping[str, Any]) -> dict[str, Any]:
    new = copy.deepcopy(dict(resource))
    concept = _concept(rep)
    if isinstance(new.get("medication"), dict):  # R5: medication is a CodeableReference
        new["medication"] = {"concept": concept}
    else:
        new.pop("medicationReference", None)
        new["medicationCodeableConcept"] = concept
    return new


def _suggestions(
    f: Finding,
    t: dict[str, str],
    draft_refs: set[str] | None,
    resources: Mapping[str, Mapping[str, Any]],
    labels: Mapping[str, str] | None = None,
    fresh: bool = False,
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    sugg = f.suggested() or {}
    delete_prefixes: tuple[str, ...] = ()
    if f.category == "cheaper-equivalent" and sugg:
        rep = replacement(sugg, "with", "replacement")
        for ref in _drafts_of(f, draft_refs, "MedicationRequest/"):
            res = resources.get(ref)
            if rep is None or not res or not res.get("id"):
                continue
            out.append({
                "label": _clip(t["switch"].format(label=rep["label"])),
                "uuid": _suggestion_uuid(f, "update", ref, fresh),
                "isRecommended": True,
                "actions": [{"type": "update", "description": t["switch_desc"].format(ref=ref, label=rep["label"]),
                             "resource": _updated_medication(res, rep)}],
            })
        if sugg.get("action") == "remove" and not sugg.get("with"):
            delete_prefixes = ("MedicationRequest/",)  # a line judged unnecessary: remove it
    elif f.category == "off-protocol" and (f.level or "off-protocol") == "off-protocol":
        rep = replacement(sugg, "alternative", "exam")
        for ref in _drafts_of(f, draft_refs, "ServiceRequest/"):
            res = resources.get(ref)
            if rep is None or not res or not res.get("id"):
                continue
            new = copy.deepcopy(dict(res))
            new["code"] = _concept(rep)
            out.append({
                "label": _clip(t["exam"].format(label=rep["label"])),
                "uuid": _suggestion_uuid(f, "update", ref, fresh),
                "isRecommended": True,
                "actions": [{"type": "update", "description": t["exam_desc"].format(ref=ref, label=rep["label"]),
                             "resource": new}],
            })
        if not out:  # no orderable alternative: withdrawing the request is the action the EHR can apply
            delete_prefixes = ("ServiceRequest/", "MedicationRequest/")
    if _contraindicated(f):
        delete_prefixes = ("MedicationRequest/",)
    if draft_refs is None:
        delete_prefixes = ()  # outside a hook call nothing is a draft: never propose deleting an order
    for prefix in delete_prefixes:
        for ref in _drafts_of(f, draft_refs, prefix):
            if not _RELATIVE_REF.match(ref):
                continue  # a draft without an id cannot be named in a delete action
            label = _label_of(resources.get(ref)) or (labels or {}).get(ref) or ", ".join(drugs_named(f.to_dict())) \
                or t["this_line"]
            out.append({
                "label": _clip(t["delete"].format(label=label)),
                "uuid": _suggestion_uuid(f, "delete", ref, fresh),
                "actions": [{"type": "delete", "description": t["delete_desc"].format(ref=ref), "resourceId": ref}],
            })
    return out


def _clip(text: str, limit: int = 140) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


_RELATIVE_REF = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


def _contraindicated(f: Finding) -> bool:
    """A contraindication (ANSM level CI, or a contraindication/allergy finding at critical level)."""
    if (f.level or "").upper().startswith("CI"):
        return True
    return f.category in ("contraindication", "allergy") and f.severity is Severity.CRITICAL


def _label_of(resource: Mapping[str, Any] | None) -> str:
    if not resource:
        return ""
    concept = (resource.get("medicationCodeableConcept") or (resource.get("medication") or {}).get("concept")
               or resource.get("code") or {})
    if not isinstance(concept, Mapping):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for c in concept.get("coding") or []:
        if isinstance(c, Mapping) and c.get("display"):
            return str(c["display"])
    return ""
