"""One CLI behaviour across check, report and audit: no FHIR is exit 2, a non-FHIR file says what
it looks like, audit follows --fail-on, the same CSV columns, plain-text explain, the feedback
database in the user data folder, progress and a steady ETA."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli
from tests.conftest import SAMPLES

DEMO = str(SAMPLES / "demo")
AS_OF = "2026-01-15"


def run(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


def _non_fhir(tmp_path: Path) -> Path:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "ordonnance.json").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n")
    (folder / "notes.txt").write_text("not an input", encoding="utf-8")
    return folder


@pytest.mark.parametrize("lang, none, pdf", [
    ("fr", "aucune ressource FHIR trouvée", "ni JSON ni XML FHIR : le fichier ressemble à un PDF"),
    ("en", "no FHIR resource found", "not FHIR JSON/XML: looks like a PDF")])
@pytest.mark.parametrize("kind", ["empty", "non-fhir"])
@pytest.mark.parametrize("command", ["check", "report", "audit"])
def test_no_fhir_is_exit_2_for_every_command(tmp_path: Path, kind: str, command: str, lang: str, none: str,
                                             pdf: str) -> None:
    if kind == "empty":
        folder = tmp_path / "empty"
        folder.mkdir()
    else:
        folder = _non_fhir(tmp_path)
    extra = {"check": [], "report": ["-o", str(tmp_path / "r.html")],
             "audit": ["--out", str(tmp_path / "out"), "--no-progress"]}[command]
    res = run(command, str(folder), "--as-of", AS_OF, "--lang", lang, *extra)
    assert res.exit_code == 2, res.output
    assert none in res.stderr  # the run's language throughout, input errors included
    if kind == "non-fhir":
        assert pdf in res.stderr


@pytest.mark.parametrize("data, kind", [(b"%PDF-1.4", "a PDF"), (b"PK\x03\x04rest", "a ZIP archive"),
                                        (b"\x89PNG\r\n", "a PNG image"), (b"nom;dose;date\n", "a CSV"),
                                        (b"Bonjour docteur", "plain text")])
def test_non_fhir_file_says_what_it_looks_like(tmp_path: Path, data: bytes, kind: str) -> None:
    f = tmp_path / "x.json"
    f.write_bytes(data)
    res = run("check", str(f), "--format", "json", "--lang", "en")
    assert res.exit_code == 2 and f"not FHIR JSON/XML: looks like {kind}" in res.stderr


def test_broken_json_keeps_the_parser_message(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_bytes(b'{"resourceType": "MedicationRequest", ')
    res = run("check", str(f), "--format", "json", "--lang", "en")
    assert res.exit_code == 2 and "not valid JSON" in res.stderr


def test_audit_follows_fail_on_like_check(tmp_path: Path) -> None:
    check = run("check", DEMO, "--as-of", AS_OF, "--format", "json")
    assert check.exit_code == 1  # the demo has a critical finding: exit 1 by design
    audit = run("audit", DEMO, "--out", str(tmp_path / "a"), "--as-of", AS_OF, "--no-progress")
    assert audit.exit_code == 1, audit.output
    ignore = run("audit", DEMO, "--out", str(tmp_path / "b"), "--as-of", AS_OF, "--no-progress",
                 "--ignore", "IX,DU,PR,OP,EQ,ID")
    assert ignore.exit_code == 0, ignore.output
    info = run("check", DEMO, "--as-of", AS_OF, "--select", "EQ001", "--fail-on", "info", "--format", "json")
    audit_info = run("audit", DEMO, "--out", str(tmp_path / "c"), "--as-of", AS_OF, "--no-progress",
                     "--select", "EQ001", "--fail-on", "info")
    assert info.exit_code == audit_info.exit_code == 1
    audit_crit = run("audit", DEMO, "--out", str(tmp_path / "d"), "--as-of", AS_OF, "--no-progress",
                     "--select", "EQ001", "--fail-on", "critical")
    assert audit_crit.exit_code == 0


def test_audit_last_line_in_the_chosen_language(tmp_path: Path) -> None:
    fr = run("audit", DEMO, "--out", str(tmp_path / "a"), "--as-of", AS_OF, "--no-progress")
    assert "ressources" in fr.stderr and "alertes" in fr.stderr and "critiques" in fr.stderr
    en = run("audit", DEMO, "--out", str(tmp_path / "b"), "--as-of", AS_OF, "--no-progress", "--lang", "en")
    assert "resources" in en.stderr and "findings" in en.stderr


def test_check_csv_and_audit_findings_csv_have_the_same_columns(tmp_path: Path) -> None:
    res = run("check", DEMO, "--as-of", AS_OF, "--format", "csv")
    check_rows = list(csv.reader(io.StringIO(res.output)))
    run("audit", DEMO, "--out", str(tmp_path / "a"), "--as-of", AS_OF, "--no-progress")
    audit_rows = list(csv.reader((tmp_path / "a" / "findings.csv").open(encoding="utf-8")))
    assert check_rows[0] == audit_rows[0]
    key = check_rows[0].index("fingerprint")
    assert sorted(r[key] for r in check_rows[1:]) == sorted(r[key] for r in audit_rows[1:])
    by_fp = {r[key]: r for r in check_rows[1:]}
    for row in audit_rows[1:]:
        assert row == by_fp[row[key]]


def test_explain_prints_plain_text() -> None:
    from checker.registry import all_rules

    for r in all_rules():
        out = run("explain", r.id).output
        assert "``" not in out and ":func:`" not in out and ":class:`" not in out, r.id


def test_plain_text_drops_rest_markup() -> None:
    from checker.formats.plain import plain_text

    assert plain_text("See ``evidence`` and :func:`checker.check`, `HAS <https://has.fr>`_, **bold**::") == \
        "See evidence and checker.check, HAS (https://has.fr), bold:"


def test_feedback_database_defaults_to_the_user_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from checker.service.config import ServiceConfig, default_feedback_db, load_config

    monkeypatch.delenv("PERTINENCE_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    default = default_feedback_db()
    assert default.is_absolute() and "pertinence" in default.parts and default.parent != tmp_path
    assert ServiceConfig().feedback_db == str(default) == load_config().feedback_db
    monkeypatch.setenv("PERTINENCE_DATA_DIR", str(tmp_path / "data"))
    assert default_feedback_db() == tmp_path / "data" / "pertinence-feedback.sqlite3"
    res = run("feedback", "stats")
    assert res.exit_code == 2 and str(tmp_path / "data") in res.stderr  # names where it looked
    assert not list(tmp_path.glob("*.sqlite3"))  # nothing written in the current folder


def test_smooth_eta_counts_down_between_updates() -> None:
    from checker.audit.progress import smooth_eta

    assert smooth_eta(10, 1, 7, 0) == pytest.approx(60)
    # no new shard for 5 s: the ETA keeps moving down instead of freezing
    assert smooth_eta(15, 1, 7, 5) == pytest.approx(55)
    assert smooth_eta(80, 1, 7, 70) == 0
    assert smooth_eta(5, 0, 7, 5) is None and smooth_eta(9, 7, 7, 0) == 0


def test_check_inputs_gives_the_same_findings_as_check(monkeypatch: pytest.MonkeyPatch) -> None:
    import checker.audit.report as report_module
    from checker import check

    monkeypatch.setattr(report_module, "CHUNK_RECORDS", 3)  # many chunks: the split must not change findings
    a = check(str(SAMPLES), as_of=AS_OF)
    b = report_module.check_inputs(str(SAMPLES), as_of=AS_OF, progress=False)
    assert len(b.records) > 3
    assert sorted(f.fingerprint for f in a.findings) == sorted(f.fingerprint for f in b.findings)
    assert a.inputs.to_dict() == b.inputs.to_dict() and len(a.errors) == len(b.errors)


def test_check_inputs_progress_bar_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from checker.audit.report import check_inputs

    report = check_inputs(DEMO, as_of=AS_OF, progress=True)
    assert report.findings


def test_audit_report_lists_quiet_patients_and_counts_lines(tmp_path: Path) -> None:
    import json

    run("audit", DEMO, "--out", str(tmp_path / "a"), "--as-of", AS_OF, "--no-progress")
    html = (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    summary = json.loads((tmp_path / "a" / "summary.json").read_text(encoding="utf-8"))
    quiet = html[html.index('id="quiet"'):]
    assert "Patient/benali-fatima" in quiet and "Patient/petit-lucas" in quiet
    assert summary["lines"] > summary["medication_requests"]  # the demo's imaging request is a line too
    head = html[html.index('id="headline"'): html.index("</section>", html.index('id="headline"'))]
    assert f'{summary["lines"]}</div><div class="l">lignes de prescription vérifiées' in head
