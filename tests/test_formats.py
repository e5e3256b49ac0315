"""Output formats: golden outputs on a fixed report, FHIR validity, purity."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import orjson
import pytest

from checker.findings import Finding, InputCounts, InputError, Report, ReferentialInfo, Severity, Source
from checker.formats import FORMATS, render

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("PERTINENCE_UPDATE_GOLDEN") == "1"


def sample_report(lang: str = "fr") -> Report:
    thesaurus = Source("ANSM, Thésaurus des interactions médicamenteuses", "https://ansm.sante.fr/", "2023-09")
    findings = [
        Finding(rule="IX001", category="interaction", severity=Severity.CRITICAL,
                summary="Simvastatine + clarithromycine : association contre-indiquée",
                detail="Risque majoré de rhabdomyolyse.\nSuspendre la statine pendant le traitement antibiotique.",
                source=thesaurus, patient="Patient/dupont", level="CI",
                implicated=("MedicationRequest/b", "MedicationRequest/a"),
                evidence={"pair": ["simvastatine", "clarithromycine"]}, key="clarithromycine|simvastatine"),
        Finding(rule="EQ001", category="cheaper-equivalent", severity=Severity.INFO,
                summary="TAHOR 20 mg : un générique moins cher existe", detail="Même substance, même dosage.",
                source=Source("BDPM, répertoire des génériques", "https://base-donnees-publique.medicaments.gouv.fr/",
                              "2026-01"),
                patient="Patient/martin", implicated=("MedicationRequest/t",),
                suggestion={"replace": {"cis": "69902323"}, "with": {"label": "ATORVASTATINE 20 mg"},
                            "saving": {"amount": 4.2, "currency": "EUR", "period": "treatment", "per_year": 16.8}},
                evidence={"substance": "atorvastatine"}),
        Finding(rule="OP001", category="off-protocol", severity=Severity.WARNING,
                summary="Radiographie lombaire sans signe d'alerte avant 6 semaines", detail="<b>échappé</b> & sûr",
                source=Source("HAS", "https://www.has-sante.fr/", "2019"), patient=None,
                implicated=("ServiceRequest/x",)),
    ]
    return Report("pertinence", "0.1.0", (ReferentialInfo("bdpm", "BDPM", "2026-01", "ab" * 32),), "2026-01-15",
                  "fr", InputCounts(2, 9, 7, 1, 1), findings, [InputError("in/bad.json /entry/3", "not valid JSON")],
                  lang=lang)


@pytest.mark.parametrize("fmt", ["text", "json", "ndjson", "csv", "fhir"])
def test_golden(fmt: str) -> None:
    out = render(sample_report(), fmt)
    path = GOLDEN / f"report.{fmt}"
    if UPDATE or not path.exists():
        path.write_text(out, encoding="utf-8")
    assert out == path.read_text(encoding="utf-8"), f"{fmt} output changed (PERTINENCE_UPDATE_GOLDEN=1 to accept)"


def test_render_is_pure_and_deterministic() -> None:
    for fmt in FORMATS:
        if fmt in ("html", "cds-hooks") and not _available(fmt):
            continue
        assert render(sample_report(), fmt) == render(sample_report(), fmt)


def _available(fmt: str) -> bool:
    import importlib

    try:
        importlib.import_module(FORMATS[fmt])
    except ImportError:
        return False
    return True


def test_json_shape() -> None:
    data = orjson.loads(render(sample_report(), "json"))
    assert set(data) == {"checker", "as_of", "inputs", "findings", "errors", "savings"}
    assert data["inputs"] == {"files": 2, "resources": 9, "checked": 7, "ignored": 1, "rejected": 1}
    assert set(data["findings"][0]) == {"rule", "category", "severity", "level", "patient", "implicated", "summary",
                                         "detail", "source", "suggestion", "evidence", "fingerprint"}
    assert data["findings"][0]["implicated"] == ["MedicationRequest/a", "MedicationRequest/b"]


def test_csv_has_one_row_per_finding() -> None:
    rows = list(csv.DictReader(io.StringIO(render(sample_report(), "csv"))))
    assert [r["rule"] for r in rows] == ["IX001", "EQ001", "OP001"]
    assert rows[1]["saving_amount"] == "4.2"


def test_fhir_bundle_validates() -> None:
    from fhir.resources.R4B.bundle import Bundle

    bundle = Bundle.model_validate(orjson.loads(render(sample_report(), "fhir")))
    issues = [e.resource for e in bundle.entry if e.resource.get_resource_type() == "DetectedIssue"]
    assert [i.severity for i in issues] == ["high", "low", "moderate"]
    assert issues[0].code.coding[0].code == "DRG"
    assert issues[0].implicated[0].reference == "MedicationRequest/a"


def test_text_is_grouped_by_patient_and_english_available() -> None:
    fr = render(sample_report(), "text")
    assert fr.index("Patient/dupont") < fr.index("Patient/martin")
    assert "CRITIQUE" in fr and "Économies potentielles : 16,80\u00a0€ par an" in fr  # CLDR French money
    en = render(sample_report("en"), "text")
    assert "CRITICAL" in en and "Potential savings: €16.80 per year" in en
    assert "\x1b[" not in fr and "\x1b[" in render(sample_report(), "text", color=True)


def test_fingerprint_ignores_file_position() -> None:
    a = sample_report().findings[0]
    from dataclasses import replace

    b = replace(a, detail="other words", implicated=("MedicationRequest/a", "MedicationRequest/b"))
    assert a.fingerprint == b.fingerprint
    assert a.fingerprint != replace(a, key="other").fingerprint


def test_summary_over_140_chars_is_refused() -> None:
    with pytest.raises(ValueError, match="140"):
        Finding(rule="IX001", category="interaction", severity=Severity.INFO, summary="x" * 141, detail="",
                source=Source("s"), patient=None, implicated=())


# The Card object of CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/#card-attributes), as JSON Schema.
_CODING = {"type": "object", "required": ["code"], "properties": {
    "code": {"type": "string"}, "system": {"type": "string"}, "display": {"type": "string"}}}
CARD_SCHEMA = {
    "type": "object",
    "required": ["summary", "indicator", "source"],
    "properties": {
        "uuid": {"type": "string"},
        "summary": {"type": "string", "maxLength": 139},
        "detail": {"type": "string"},
        "indicator": {"enum": ["info", "warning", "critical"]},
        "source": {"type": "object", "required": ["label"], "properties": {
            "label": {"type": "string"}, "url": {"type": "string"}, "icon": {"type": "string"}, "topic": _CODING}},
        "suggestions": {"type": "array", "items": {"type": "object", "required": ["label"], "properties": {
            "label": {"type": "string"}, "uuid": {"type": "string"}, "isRecommended": {"type": "boolean"},
            "actions": {"type": "array", "items": {"type": "object", "required": ["type", "description"],
                                                   "properties": {"type": {"enum": ["create", "update", "delete"]},
                                                                  "description": {"type": "string"},
                                                                  "resource": {"type": "object"},
                                                                  "resourceId": {"type": "string"}}}}}}},
        "selectionBehavior": {"enum": ["at-most-one", "any"]},
        "overrideReasons": {"type": "array", "items": _CODING},
        "links": {"type": "array", "items": {"type": "object", "required": ["label", "url", "type"]}},
    },
    "dependentRequired": {"suggestions": ["selectionBehavior"]},
}


def test_cds_hooks_cards_match_the_card_schema() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    from checker import check

    report = check([str(Path(__file__).resolve().parents[1] / "fhir_samples" / "demo")], as_of="2026-01-15")
    cards = orjson.loads(render(report, "cds-hooks"))["cards"]
    assert cards, "the demo set must produce cards"
    for card in cards:
        jsonschema.validate(card, CARD_SCHEMA)
