"""Batch audit: outputs, counts, grouping across files, resume, local vs Dask equality."""

from __future__ import annotations

import csv

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.conftest import export_generator

from checker.audit import AuditOptions, run_audit
from checker.audit.merge import OUTPUT_FILES
from checker.audit.pipeline import WORK_DIR, parse_size, shard_count

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-01-15"
CIP13 = "http://data.esante.gouv.fr/ansm/medicament/codeCIP13"
PREVISCAN = ("3400933484132", "PREVISCAN 20 mg, comprimé quadrisécable")
IBUPROFENE = ("3400937656313", "IBUPROFENE BIOGARAN 400 mg, comprimé pelliculé")




def _mr(mid: str, subject: str, med: dict, requester: str = "Practitioner/pr1") -> dict:
    return {"resourceType": "MedicationRequest", "id": mid, "status": "active", "intent": "order",
            "subject": {"reference": subject}, "authoredOn": "2026-01-10", "requester": {"reference": requester},
            **med}


def _coded(code_name: tuple[str, str]) -> dict:
    return {"medicationCodeableConcept": {"coding": [{"system": CIP13, "code": code_name[0]}], "text": code_name[1]}}


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated export plus the awkward cases: gzip, Bundle with urn:uuid, a Medication in
    another file, a malformed line, a resource without patient."""
    root = tmp_path_factory.mktemp("export")
    export_generator().generate(root / "bulk", patients=60, per_patient=6, seed=11, practitioners=12, file_lines=150)
    extra = root / "extra"
    extra.mkdir()
    # 1. A Medication resource in its own file, cited by reference from a gzip NDJSON file.
    (extra / "Medication.000.ndjson").write_bytes(orjson.dumps(
        {"resourceType": "Medication", "id": "med-previscan",
         "code": {"coding": [{"system": CIP13, "code": PREVISCAN[0]}], "text": PREVISCAN[1]}}) + b"\n")
    lines = [
        _mr("x-avk", "Patient/px1", {"medicationReference": {"reference": "Medication/med-previscan"}}),
        _mr("x-nsaid", "Patient/px1", _coded(IBUPROFENE)),
    ]
    with gzip.open(extra / "MedicationRequest.x.ndjson.gz", "wb") as f:
        for r in lines:
            f.write(orjson.dumps(r) + b"\n")
        f.write(b'{"resourceType": "MedicationRequest", "id": "broken"\n')  # malformed JSON line
    (extra / "Patient.x.ndjson").write_bytes(orjson.dumps(
        {"resourceType": "Patient", "id": "px1", "birthDate": "1940-05-01", "gender": "female"}) + b"\n")
    # 2. A transaction Bundle whose orders cite the patient by urn:uuid.
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0b1c", "resource": {"resourceType": "Patient", "id": "pb1", "birthDate": "1950-02-02"}},
        {"fullUrl": "urn:uuid:m1", "resource": _mr("b-avk", "urn:uuid:0b1c", _coded(PREVISCAN))},
        {"fullUrl": "urn:uuid:m2", "resource": _mr("b-nsaid", "urn:uuid:0b1c", _coded(IBUPROFENE))},
    ]}
    (extra / "bundle-pb1.json").write_text(json.dumps(bundle), encoding="utf-8")
    return root


def _audit(inputs: list[Path], out: Path, **kw) -> dict:
    opts = AuditOptions(out=out, as_of=AS_OF, progress=False, **kw)
    return run_audit([str(p) for p in inputs], opts)


def _outputs(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in OUTPUT_FILES}


@pytest.fixture(scope="module")
def reference(export: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("ref")
    return out, _audit([export], out, jobs=1, shards=5)


def test_outputs_counts_add_up_and_match_single_run_check(export: Path, reference: tuple[Path, dict]) -> None:
    from checker import check

    out, summary = reference
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)  # work folder removed, nothing else
    inputs = summary["inputs"]
    assert inputs["balanced"] and inputs["resources"] == inputs["checked"] + inputs["ignored"] + inputs["rejected"]
    # Every resource of the input is accounted for: 60 patients, 12 practitioners, 360 orders, then extras.
    assert inputs["resources"] == 60 + 12 + 360 + 1 + 2 + 1 + 1 + 3
    assert inputs["rejected"] >= 1 and summary["errors"] >= 1
    errors = [orjson.loads(l) for l in (out / "errors.ndjson").read_bytes().splitlines()]
    assert any("MedicationRequest.x.ndjson.gz" in e["location"] for e in errors)
    # Same findings and counts as checking the whole input in one process.
    report = check([str(export)], as_of=AS_OF)
    assert {k: v for k, v in inputs.items() if k != "balanced"} == report.inputs.to_dict()
    lines = (out / "findings.ndjson").read_bytes().splitlines()
    audit_fps = [orjson.loads(l)["fingerprint"] for l in lines]
    assert sorted(audit_fps) == sorted(f.fingerprint for f in report.findings)
    assert audit_fps == [f.fingerprint for f in report.sorted_findings()]  # same global order
    assert summary["findings"]["total"] == len(lines) == sum(summary["findings"]["by_severity"].values())
    assert summary["savings"] == report.savings()
    csv_rows = (out / "findings.csv").read_text(encoding="utf-8").splitlines()
    from checker.formats.csv import COLUMNS

    assert csv_rows[0] == ",".join(COLUMNS)  # the columns of `check --format csv`
    assert len(list(csv.reader((out / "findings.csv").open(encoding="utf-8")))) == len(lines) + 1


def test_patient_spread_over_files_and_bundle_references_are_grouped(reference: tuple[Path, dict]) -> None:
    out, _ = reference
    findings = [orjson.loads(l) for l in (out / "findings.ndjson").read_bytes().splitlines()]
    ix = {(f["patient"], tuple(f["implicated"])) for f in findings if f["rule"].startswith("IX")}
    # The AVK cited through a Medication in another file meets the NSAID of a gzip file.
    assert ("Patient/px1", ("MedicationRequest/x-avk", "MedicationRequest/x-nsaid")) in ix
    # Orders citing their patient by urn:uuid are grouped with that Patient.
    assert ("Patient/pb1", ("MedicationRequest/b-avk", "MedicationRequest/b-nsaid")) in ix
    assert not any((f["patient"] or "").startswith("urn:uuid") for f in findings)


def test_output_does_not_depend_on_sharding_or_jobs(export: Path, reference: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = reference
    _audit([export], tmp_path, jobs=2, shards=3)
    assert _outputs(tmp_path) == _outputs(out)


def test_interrupted_audit_resumes_to_byte_identical_outputs(export: Path, reference: tuple[Path, dict],
                                                             tmp_path: Path) -> None:
    out, _ = reference
    seen: list[str] = []

    def stop_after_two(name: str) -> None:
        seen.append(name)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _audit([export], tmp_path, jobs=1, shards=5, on_shard_done=stop_after_two)
    assert not any((tmp_path / n).exists() for n in OUTPUT_FILES)  # nothing half-written
    assert len(list((tmp_path / WORK_DIR / "results").glob("*.json"))) == 2
    resumed: list[str] = []
    _audit([export], tmp_path, jobs=1, shards=5, resume=True, on_shard_done=resumed.append)
    assert not set(resumed) & set(seen)  # completed shards were not redone
    assert _outputs(tmp_path) == _outputs(out)


def test_killed_audit_resumes_to_byte_identical_outputs(export: Path, reference: tuple[Path, dict],
                                                        tmp_path: Path) -> None:
    """SIGKILL a real audit process once it has completed a shard, then ``--resume``."""
    out, _ = reference
    code = ("import sys; from checker.audit import AuditOptions, run_audit; "
            f"run_audit([{str(export)!r}], AuditOptions(out={str(tmp_path)!r}, as_of={AS_OF!r}, jobs=1, shards=40, "
            "progress=False))")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    results = tmp_path / WORK_DIR / "results"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if results.is_dir() and list(results.glob("*.json")):
            break
        time.sleep(0.01)
    if proc.poll() is not None:
        pytest.skip("the audit finished before it could be killed")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "summary.json").exists()
    cmd = [sys.executable, str(ROOT / "cli.py"), "audit", str(export), "--out", str(tmp_path), "--as-of", AS_OF,
           "--jobs", "1", "--resume", "--no-progress"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    critical = orjson.loads((out / "summary.json").read_bytes())["findings"]["by_severity"]["critical"]
    assert done.returncode == (1 if critical else 0), done.stderr  # --fail-on critical, as check
    assert _outputs(tmp_path) == _outputs(out)


def test_dask_engine_gives_identical_outputs(export: Path, reference: tuple[Path, dict], tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    out, _ = reference
    _audit([export], tmp_path, jobs=2, shards=4, engine="dask")
    assert _outputs(tmp_path) == _outputs(out)


def test_memory_budget_sets_shard_count() -> None:
    assert parse_size("512M") == 512 << 20 and parse_size("1.5G") == int(1.5 * (1 << 30)) and parse_size(1000) == 1000
    small = shard_count(10 << 20, parse_size("1G"), 2)
    big = shard_count(10 << 30, parse_size("1G"), 2)
    assert small == 1 and big > 100
    assert shard_count(10 << 30, parse_size("8G"), 2) < big


def test_cli_audit_and_report(export: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    import cli

    runner = CliRunner()
    res = runner.invoke(cli.main, ["audit", str(export / "extra"), "--out", str(tmp_path / "a"), "--as-of", AS_OF,
                                   "--jobs", "1", "--lang", "en", "--no-progress"])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in html and "Prescribing self-check" in html
    res = runner.invoke(cli.main, ["report", str(export / "extra"), "-o", str(tmp_path / "r.html"), "--as-of", AS_OF])
    assert res.exit_code == 0, res.output
    html = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert '<html lang="fr">' in html and "PREVISCAN" in html and "MedicationRequest/x-avk" in html
    res = runner.invoke(cli.main, ["audit", str(tmp_path / "missing"), "--out", str(tmp_path / "b")])
    assert res.exit_code == 2 and "no such file" in res.output


SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.mark.corpus
def test_audit_equals_single_run_check_on_third_party_exports(tmp_path: Path) -> None:
    """Real inputs nobody on the team wrote: Bulk Data NDJSON with Medications in their own file,
    and the same ePrescription Bundles in JSON and XML (same ids in different files)."""
    from checker import check

    inputs = [SHARED / "fhir" / "synthea" / "bulk-ndjson", SHARED / "fhir" / "eprescription-fr"]
    if not all(p.is_dir() for p in inputs):
        pytest.skip("../shared corpus not available")
    summary = _audit(inputs, tmp_path, jobs=2, shards=3)
    report = check([str(p) for p in inputs], as_of=AS_OF)
    assert {k: v for k, v in summary["inputs"].items() if k != "balanced"} == report.inputs.to_dict()
    audit_fps = [orjson.loads(l)["fingerprint"] for l in (tmp_path / "findings.ndjson").read_bytes().splitlines()]
    assert audit_fps == [f.fingerprint for f in report.sorted_findings()]
    errors = [orjson.loads(l)["location"] for l in (tmp_path / "errors.ndjson").read_bytes().splitlines()]
    assert sorted(errors) == sorted(e.location for e in report.errors)
    assert summary["savings"] == report.savings()


def test_output_folder_inside_the_input_is_not_read_back(export: Path, tmp_path: Path) -> None:
    import shutil

    src = tmp_path / "in"
    shutil.copytree(export / "extra", src)
    first = _audit([src], src / "audit", jobs=1)
    second = _audit([src], src / "audit", jobs=1)
    assert first["inputs"] == second["inputs"] and first["inputs"]["files"] == 4


@pytest.fixture()
def broken_inputs(tmp_path: Path) -> Path:
    """A folder whose every kind of broken input must be named: a truncated gzip, a .gz that is
    not gzip, a malformed NDJSON line, lines holding an array and a string; plus one good order."""
    root = tmp_path / "in"
    root.mkdir()
    whole = gzip.compress(b"".join(orjson.dumps(_mr(f"t{i}", "Patient/p", _coded(PREVISCAN))) + b"\n"
                                   for i in range(40)))
    (root / "trunc.ndjson.gz").write_bytes(whole[: len(whole) // 2])
    (root / "fake.ndjson.gz").write_bytes(orjson.dumps(_mr("f", "Patient/p", _coded(PREVISCAN))) + b"\n")
    (root / "lines.ndjson").write_bytes(b"\n".join([
        orjson.dumps({"resourceType": "Patient", "id": "p", "birthDate": "1950-01-01"}),
        b'{"resourceType": "MedicationRequest", "id": broken',
        b"[1, 2]",
        b'"<b>str</b>"',
        orjson.dumps(_mr("ok", "Patient/p", _coded(PREVISCAN))),
    ]) + b"\n")
    return root


BROKEN = ("trunc.ndjson.gz", "fake.ndjson.gz", "lines.ndjson:2", "lines.ndjson:3 /0",
          "lines.ndjson:3 /1", "lines.ndjson:4")


@pytest.mark.parametrize("lang, heading", [("fr", "Erreurs de lecture (6)"), ("en", "Input errors (6)")])
def test_report_lists_rejected_inputs_and_says_so_on_stderr(broken_inputs: Path, tmp_path: Path, lang: str,
                                                            heading: str) -> None:
    from click.testing import CliRunner

    import cli

    out = tmp_path / "r.html"
    res = CliRunner().invoke(cli.main, ["report", str(broken_inputs), "-o", str(out), "--as-of", AS_OF,
                                        "--lang", lang])
    assert res.exit_code == 0, res.output
    assert res.stdout == "" and res.stderr.count("\n") == 1
    said = {"fr": "6 erreur(s) de lecture (6 rejetée(s))", "en": "6 input error(s) (6 rejected)"}[lang]
    assert said in res.stderr and str(out) in res.stderr
    html = out.read_text(encoding="utf-8")
    section = html[html.index('id="input-errors"'):]
    section = section[: section.index("</section>")]
    assert heading in section
    for where in BROKEN:
        assert where in section, where
    assert {"fr": "JSON invalide", "en": "not valid JSON"}[lang] in section and "gzip" in section
    clean = CliRunner().invoke(cli.main, ["report", str(broken_inputs / "lines.ndjson"), "-o",
                                          str(tmp_path / "c.html"), "--as-of", AS_OF])
    assert clean.exit_code == 0 and clean.stderr.count("\n") == 1  # 3 errors in that file alone
    good = tmp_path / "good.ndjson"
    good.write_bytes(orjson.dumps(_mr("ok", "Patient/p", _coded(PREVISCAN))) + b"\n")
    quiet = CliRunner().invoke(cli.main, ["report", str(good), "-o", str(tmp_path / "g.html"), "--as-of", AS_OF])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    unreadable = tmp_path / "bad.ndjson"
    unreadable.write_bytes(b"{not json\n")
    nothing = CliRunner().invoke(cli.main, ["report", str(unreadable), "-o", str(tmp_path / "n.html"), "--as-of", AS_OF])
    assert nothing.exit_code == 2 and (tmp_path / "n.html").exists()  # as `check`: nothing readable at all
    assert 'id="input-errors"' not in (tmp_path / "g.html").read_text(encoding="utf-8")


def test_audit_report_lists_the_first_input_errors(broken_inputs: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from checker.audit import merge

    summary = _audit([broken_inputs], tmp_path / "a", jobs=1, lang="en")
    assert summary["errors"] == 6
    html = (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    assert "Input errors (6)" in html and "errors.ndjson" not in html  # all listed
    for where in BROKEN:
        assert where in html, where
    monkeypatch.setattr(merge, "HTML_ERRORS", 2)
    _audit([broken_inputs], tmp_path / "b", jobs=1)
    html = (tmp_path / "b" / "report.html").read_text(encoding="utf-8")
    listed = [orjson.loads(l)["location"] for l in (tmp_path / "b" / "errors.ndjson").read_bytes().splitlines()]
    assert len(listed) == 6
    assert "Erreurs de lecture (6)" in html and "2 erreurs affichées sur 6 ; la liste complète est dans errors.ndjson" in html
    assert listed[0] in html and listed[1] in html and listed[2] not in html
