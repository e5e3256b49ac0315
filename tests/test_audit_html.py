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

    errors = [InputError(f"in/{EVIL}.ndjson:3", f"NDJSON line is not valid JSON {EVIL}"),
              InputError("in/b.json /entry/2", "no medication named", "MedicationRequest")]
    for lang, heading in (("fr", "Erreurs de lecture (2)"), ("en", "Input errors (2)")):
        report = _report(lang)
        report.errors = errors
        text = render_records(report, [])
        assert 'id="input-errors"' in text and heading in text
        assert EVIL not in text and "in/&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;.ndjson:3" in text
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


def _row(ind: str, better: str, ref: float | None) -> dict:
    return {"indicator": ind, "scope": "overall", "requester": "", "numerator": 1, "denominator": 2,
            "value_percent": 50.0, "reference_percent": ref, "better": better, "title": ind,
            "numerator_definition": "", "denominator_definition": "", "source": "Assurance Maladie (ROSP 2016)",
            "source_url": "https://www.ameli.fr/"}


def test_indicators_show_direction_and_reference_where_one_exists() -> None:
    text = render_audit({"as_of": "2026-01-15"}, [_row("A", "higher", 80.0), _row("B", "lower", None)], [], lang="fr")
    table = text[text.index('class="indicators"'):]
    assert "↑ plus haut = mieux" in table and "↓ plus bas = mieux" in table
    assert "80,0\u00a0%" in table and "pas de référence publiée" in table


def test_input_errors_grouped_by_message_with_first_locations_in_numeric_order() -> None:
    errors = [{"location": f"in/x.ndjson:{n}", "message": "NDJSON line is not valid JSON", "resourceType": None}
              for n in (10, 9, 100, 2, 33, 7, 8)]
    errors.append({"location": "in/b.json", "message": "unknown FHIR resource type", "resourceType": "Foo"})
    text = render_audit({"as_of": "2026-01-15"}, [], [], lang="fr", errors=errors)
    section = text[text.index('id="input-errors"'):]
    assert section.count("NDJSON line is not valid JSON") == 1  # one row per message
    first = section.index("not valid JSON")
    row = section[first: section.index("</tr>", first)]
    assert "<td>7</td>" in row  # the count
    locs = re.findall(r"in/x\.ndjson:(\d+)", row)
    assert locs == ["2", "7", "8", "9", "10"]  # the first five, in numeric order
    assert section.index("not valid JSON") < section.index("unknown FHIR resource type")  # most frequent first


def test_patients_ranked_by_worst_finding_and_quiet_patients_listed() -> None:
    def digest(patient: str, *sevs: str) -> dict:
        return {"patient": patient, "findings": [
            {"severity": s, "summary": f"{patient} {s}", "rule": "R", "category": "interaction",
             "implicated": [], "source": {}} for s in sevs]}

    patients = [digest("Patient/many-info", "info", "info", "info", "info"), digest("Patient/one-crit", "critical"),
                digest("Patient/two-warn", "warning", "warning")]
    summary = {"as_of": "2026-01-15", "patients": 6, "findings": {"by_severity": {"critical": 1}}}
    text = render_audit(summary, [], patients, lang="fr", quiet=["Patient/q10", "Patient/q9", "Patient/q1"])
    body = text[text.index('id="patients"'):]
    order = [body.index(f"<h3>Patient/{p}") for p in ("one-crit", "two-warn", "many-info")]
    assert order == sorted(order)
    quiet = text[text.index('id="quiet"'):]
    assert "(3)" in quiet and "Patient/q1 · Patient/q9 · Patient/q10" in quiet
    first_screen = text[: text.index('id="patients"')]
    assert 'id="card-patients"' in first_screen and 'id="critical"' in first_screen


def test_findings_fold_their_reasoning() -> None:
    text = render(_report())
    assert text.count('<details class="finding') >= 2 and "<summary>" in text
    crit = text[text.index('<details class="finding critical"'):]
    summary_part = crit[: crit.index("</summary>")]
    assert "Risque hémorragique" not in summary_part  # the detail is folded under the one-line summary
