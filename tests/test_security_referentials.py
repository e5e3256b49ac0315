"""Security: an altered referential stops every run before anything is checked (issue 16).

A rule left without its data must never read as an all-clear: one flipped byte in the thesaurus
used to drop IX001 silently (exit 0), and an altered BDPM file ended in a traceback (exit 1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, SAMPLES

SAMPLE = SAMPLES / "scenarios" / "iatrogenic" / "simvastatine-clarithromycine.json"


def _altered_copy(tmp_path: Path, rel: str) -> Path:
    root = tmp_path / "referentials"
    shutil.copytree(REPO / "referentials", root)
    target = root / rel
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit in the middle of the file
    target.write_bytes(bytes(data))
    return root


def _run(args: list[str], root: Path, tmp_path: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PERTINENCE_REFERENTIALS=str(root), PERTINENCE_CACHE=str(tmp_path / "cache"))
    return subprocess.run([sys.executable, str(REPO / "cli.py"), *args], cwd=tmp_path, env=env, text=True,
                          capture_output=True, timeout=timeout)


@pytest.mark.parametrize("rel", ["thesaurus/ansm-thesaurus-2023-09.json.gz", "bdpm/CIS_COMPO_bdpm.tsv.gz"])
def test_altered_referential_stops_check_report_and_audit(tmp_path: Path, rel: str) -> None:
    root = _altered_copy(tmp_path, rel)
    for args in (["check", str(SAMPLE), "--as-of", "2026-01-15"],
                 ["report", str(SAMPLE), "-o", str(tmp_path / "r.html")],
                 ["audit", str(SAMPLE), "--out", str(tmp_path / "audit"), "--jobs", "1", "--no-progress"]):
        done = _run(args, root, tmp_path)
        assert done.returncode == 2, (args[0], done.returncode, done.stdout[-500:], done.stderr[-2000:])
        assert "Traceback" not in done.stderr
        assert rel in done.stderr and "expected sha256" in done.stderr and "found" in done.stderr, done.stderr
        assert "critique" not in done.stdout  # nothing was checked, no report printed
    assert not (tmp_path / "r.html").exists()
    assert not (tmp_path / "audit" / "findings.ndjson").exists()


def test_altered_referential_service_refuses_to_start(tmp_path: Path) -> None:
    root = _altered_copy(tmp_path, "thesaurus/ansm-thesaurus-2023-09.json.gz")
    try:
        done = _run(["serve", "--insecure-dev", "--port", "0"], root, tmp_path, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the service started with an altered referential")
    assert done.returncode == 2
    assert "thesaurus/ansm-thesaurus-2023-09.json.gz" in done.stderr and "Traceback" not in done.stderr


def test_verification_hashes_each_file_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import checker.referentials as R

    calls: list[Path] = []
    real = R.sha256_file
    monkeypatch.setattr(R, "_VERIFIED", {})
    monkeypatch.setattr(R, "sha256_file", lambda p: calls.append(p) or real(p))
    refs = R.Referentials()
    refs.verify_all()
    first = len(calls)
    assert first == sum(len(e.files) for e in refs.manifest.values())
    refs.verify_all()
    R.Referentials().verify_all()
    assert len(calls) == first


def test_repeated_checks_verify_the_referentials_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A service request or an audit chunk does not re-verify every file: what a run uses was verified
    before it was loaded, and loaded data do not change when the file does."""
    import checker.referentials as R
    from checker.api import check_records

    calls: list[str] = []
    real = R.verify_entry
    monkeypatch.setattr(R, "verify_entry", lambda entry, root: calls.append(entry.id) or real(entry, root))
    refs = R.Referentials()
    for _ in range(3):
        check_records([], as_of="2026-01-15", refs=refs)
    assert sorted(calls) == sorted(refs.manifest)
