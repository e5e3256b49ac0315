"""The command line: exit codes, formats, stdin, and the installed-package layout."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

import cli
from tests.conftest import REPO, SAMPLES

DEMO = str(SAMPLES / "demo")


def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli.main, list(args), input=input, catch_exceptions=False)


def test_check_demo_json_counts_add_up() -> None:
    res = run("check", DEMO, "--format", "json", "--as-of", "2026-01-15", "--fail-on", "critical")
    data = json.loads(res.output)
    c = data["inputs"]
    assert c["resources"] == c["checked"] + c["ignored"] + c["rejected"] and c["files"] == 4
    assert data["as_of"] == "2026-01-15" and data["checker"]["name"] == "pertinence"
    worst = {f["severity"] for f in data["findings"]}
    assert res.exit_code == (1 if "critical" in worst else 0)


def test_exit_codes() -> None:
    assert run("check", "/no/such/path").exit_code == 2
    assert run("check", DEMO, "--select", "ZZ999").exit_code == 2
    assert run("check", DEMO, "--as-of", "tomorrow").exit_code == 2
    everything = ",".join(sorted({line.split()[0][:2] for line in run("rules").output.splitlines()}))
    quiet = run("check", DEMO, "--ignore", everything, "--as-of", "2026-01-15")
    assert quiet.exit_code == 0, quiet.output
    loud = run("check", DEMO, "--fail-on", "info", "--as-of", "2026-01-15", "--format", "json")
    assert loud.exit_code == (1 if json.loads(loud.output)["findings"] else 0)


def test_only_unreadable_input_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    res = run("check", str(bad), "--format", "json")
    assert res.exit_code == 2 and "aucune ressource FHIR trouvée" in res.stderr and "JSON invalide" in res.stderr
    assert json.loads(res.stdout)["errors"][0]["location"].endswith("bad.json")


def test_stdin_and_output_file(tmp_path: Path) -> None:
    text = (SAMPLES / "demo" / "03-benali-fatima.json").read_text(encoding="utf-8")
    out = tmp_path / "r.ndjson"
    res = run("check", "-", "--format", "ndjson", "--output", str(out), "--as-of", "2026-01-15", input=text)
    assert res.exit_code in (0, 1)
    for line in out.read_text().splitlines():
        assert orjson.loads(line)["patient"] == "Patient/benali-fatima"


def test_every_format_renders_the_demo() -> None:
    for fmt in ("text", "json", "ndjson", "csv", "fhir", "cds-hooks"):
        res = run("check", DEMO, "--format", fmt, "--as-of", "2026-01-15", "--lang", "en")
        assert res.exit_code in (0, 1), (fmt, res.output)


def test_rules_and_explain() -> None:
    listing = run("rules").output.splitlines()
    assert listing
    rule_id = listing[0].split()[0]
    res = run("explain", rule_id)
    assert res.exit_code == 0 and "Source:" in res.output
    assert run("explain", "ZZ999").exit_code == 2


def test_referentials_ship_in_the_wheel_config() -> None:
    import tomllib

    conf = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert conf["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]["referentials"] == "checker/_referentials"
    assert conf["project"]["scripts"]["pertinence"] == "cli:main"


def test_wheel_contains_package_referentials_and_entry_point(tmp_path: Path) -> None:
    """`pip install .` (not editable) must carry the referentials inside the package."""
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(REPO)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("pertinence-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "cli.py" in names and "checker/fhir_input/__init__.py" in names
    assert "checker/_referentials/MANIFEST.json" in names
    manifest = json.loads((REPO / "referentials" / "MANIFEST.json").read_text())
    for entry in manifest["referentials"]:
        for f in entry["files"]:
            assert f"checker/_referentials/{f['path']}" in names, f["path"]


def test_check_whole_shared_corpus_as_json(shared_dir: Path) -> None:
    """Issue acceptance: `pertinence check ../shared/fhir --format json` runs, counts add up, and
    every broken upstream file is reported with its location."""
    res = run("check", str(shared_dir / "fhir"), "--format", "json", "--as-of", "2026-01-15")
    assert res.exit_code in (0, 1)
    data = json.loads(res.output)
    c = data["inputs"]
    assert c["resources"] == c["checked"] + c["ignored"] + c["rejected"]
    assert c["rejected"] == len(data["errors"])
    where = "\n".join(e["location"] for e in data["errors"])
    for broken in ("pddi-cds/artifacts/warfarin-nsaids/warfarin-nsaids-cds-request.json",
                   "pddi-cds/artifacts/digoxin-cyclosporine/digoxin-cyclosporine-cds-request.json",
                   "synthea/bulk-ndjson/10-patients/log.ndjson"):
        assert broken in where
    assert all(e["message"] for e in data["errors"])


def test_output_file_has_ordinary_permissions(tmp_path: Path) -> None:
    import os

    out = tmp_path / "r.json"
    run("check", DEMO, "--format", "json", "--output", str(out), "--as-of", "2026-01-15")
    mask = os.umask(0)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize(("rule_id", "kinds"), [("PR005", ("max-dose",)), ("PR003", ("renal",)), ("DU002", ("duplicate-class",))])
def test_explain_lists_every_data_row(rule_id: str, kinds: tuple[str, ...]) -> None:
    """``pertinence explain`` lists each data row the rule applies, with its source."""
    from checker.referentials import default_referentials

    out = run("explain", rule_id).output
    data = default_referentials().get("iatrogenic-rules")
    ids = [r.id for k in kinds for r in data.kind(k)]
    assert ids and all(f"  {i}: " in out for i in ids)
    if rule_id == "DU002":
        classes = default_referentials().get("therapeutic-classes")
        assert all(f"not reported: {e.id} " in out for e in classes.exceptions)
