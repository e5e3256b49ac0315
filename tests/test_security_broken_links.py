"""A file that cannot be read inside an input folder (a dangling link) is an input error, never
skipped in silence: the counts say a file could not be read."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from checker import check
from cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "fhir_samples" / "demo"


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    shutil.copytree(SAMPLE, folder)
    (folder / "broken.json").symlink_to(tmp_path / "gone.json")
    return folder


def test_check_names_a_dangling_link(tmp_path: Path) -> None:
    report = check([str(_folder(tmp_path))], as_of="2026-01-15")
    assert any("broken.json" in e.location and e.code is not None and e.code.code == "not-regular-file"
               and "pas un fichier ordinaire" in e.message for e in report.errors)  # worded in the run's language
    assert report.findings  # the readable files are still checked


def test_audit_names_a_dangling_link(tmp_path: Path) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["audit", str(_folder(tmp_path)), "--out", str(out), "--as-of", "2026-01-15",
                                    "--jobs", "1", "--no-progress", "--fail-on", "info"])
    assert res.exit_code == 1, res.output
    errors = (out / "errors.ndjson").read_text(encoding="utf-8") if (out / "errors.ndjson").exists() else ""
    summary = (out / "summary.json").read_text(encoding="utf-8")
    assert "broken.json" in errors + summary
