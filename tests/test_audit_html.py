"""The self-contained HTML report: escaping, language, no network, charts, patient details."""

from __future__ import annotations

import re
from datetime import date

from checker.findings import Finding, InputCounts, Report, Severity, Source
from checker.formats.html import chart_indicators, render, render_audit, render_records
from checker.model import Concept, MedicationOrder, Patient, PatientRecord

EVIL = '<script>alert("x")</script>'


def _report(lang: str = "fr") -> Report:
    f1 = Finding(rule="IX001", category="interaction", severity=Severity.CRITICAL, summary=f"AVK + AINS {EVIL}",
                 detail="Risque hémorragique & <b>majoré</b>", source=Source("ANSM thésaurus", "https://ansm.sante.fr", "2023-09"),
                 patient="Patient/p1", implicated=("MedicationRequest/a", "MedicationRequest/b"), level="AD",
                 suggestion={"alternatives": ["paracétamol"], "text": "Préférer le paracétamol"})
    f2 = Finding(rule="EQ001", category="cheaper-equivalent", severity=Severity.INFO, summary="Générique moins cher",
                 detail="…", source=Source("BDPM", "javascript:alert(1)", "2026-01"), patient="Patient/p1",
                 implicated=("MedicationRequest/c",),
                 suggestion={"saving": {"amount": 1.5, "per_year": 18.25, "currency": "EUR"}},
                 evidence={"substance": "atorvastatine"})
    return Report("pertinence", "0.1.0", (), "2026-01-15", "fr", InputCounts(1, 4, 4, 0, 0), [f1, f2], [], lang)


def test_render_escapes_everything_and_loads_nothing() -> None:
    text = render(_report())
    assert EVIL not in text and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "<b>majoré</b>" not in text
    assert 'href="javascript:' not in text  # only http(s) sources become links
    assert not re.search(r"""<(script|img|link|iframe)[^>]+(src|href)=["']?https?:""", text)
    assert "default-src 'none'" in text  # the page forbids any network load
    assert text.count("<script>") == 1  # our one inline script
    assert '<html lang="fr">' in text and "Auto-évaluation des prescriptions" in text


def test_headline_charts_and_savings() -> None:
    text = render(_report())
    assert 'id="headline"' in text and 'id="chart-findings"' in text and 'id="chart-savings"' in text
    assert 'class="bar sev-critical"' in text and 'class="bar saving"' in text
    assert "18,25\u00a0€" in text  # CLDR French money, yearly saving
    assert "paracétamol" in text and "ANSM thésaurus (2023-09)" in text


def test_english_report() -> None:
    text = render(_report("en"))
    assert '<html lang="en">' in text and "Prescribing self-check" in text and "€18.25" in text


def test_patient_prescriptions_are_listed() -> None:
    order = MedicationOrder(ref="MedicationRequest/a", status="active", intent="order",
                            medication=Concept(text=f"PREVISCAN 20 mg {EVIL}"), authored_on=date(2026, 1, 10),
                            requester="Practitioner/dr1")
    rec = PatientRecord(patient=Patient("Patient/p1", birth_date=date(1940, 5, 1), sex="female"),
                        medication_orders=[order])
    text = render_records(_report(), [rec])
    assert "PREVISCAN 20 mg &lt;script&gt;" in text and "Practitioner/dr1" in text and "âge 85 ans" in text


def test_indicator_chart_shows_reference_and_empty_denominators() -> None:
    rows = [{"indicator": "A", "scope": "overall", "requester": "", "numerator": 3, "denominator": 4,
             "value_percent": 75.0, "reference_percent": 80.0, "better": "higher", "title": "Statines",
             "numerator_definition": "", "denominator_definition": "", "source": "s", "source_url": ""},
            {"indicator": "B", "scope": "overall", "requester": "", "numerator": 0, "denominator": 0,
             "value_percent": None, "reference_percent": None, "better": "lower", "title": "BZD",
             "numerator_definition": "", "denominator_definition": "", "source": "s", "source_url": ""}]
    svg = chart_indicators(rows, "fr")
    assert 'class="reference"' in svg and "75,0\u00a0%" in svg and "n/d (0/0)" in svg
    full = render_audit({"as_of": "2026-01-15"}, rows, [], lang="fr")
    assert "Aucune alerte" in full


def test_input_errors_are_listed_escaped_in_both_languages() -> None:
    from checker.findings import InputError

    errors = [InputError(f"in/{EVIL}.ndjson (line 3)", f"NDJSON line is not valid JSON {EVIL}"),
              InputError("in/b.json (entry 2)", "no medication named", "MedicationRequest")]
    for lang, heading in (("fr", "Erreurs de lecture (2)"), ("en", "Input errors (2)")):
        report = _report(lang)
        report.errors = errors
        text = render_records(report, [])
        assert 'id="input-errors"' in text and heading in text
        assert EVIL not in text and "in/&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;.ndjson (line 3)" in text
        assert "not valid JSON &lt;script&gt;" in text and "MedicationRequest" in text
    assert 'id="input-errors"' not in render(_report())  # no section without errors


def test_audit_lists_the_first_errors_and_points_to_errors_ndjson() -> None:
    first = [{"location": "a.ndjson:1", "message": "bad", "resourceType": None}]
    fr = render_audit({"as_of": "2026-01-15"}, [], [], lang="fr", errors=first, errors_total=250,
                      errors_file="errors.ndjson")
    assert "Erreurs de lecture (250)" in fr and "a.ndjson:1" in fr
    assert "1 erreurs affichées sur 250 ; la liste complète est dans errors.ndjson" in fr
    en = render_audit({"as_of": "2026-01-15"}, [], [], lang="en", errors=first, errors_total=250,
                      errors_file="errors.ndjson")
    assert "Input errors (250)" in en and "1 errors shown of 250; the full list is in errors.ndjson" in en
