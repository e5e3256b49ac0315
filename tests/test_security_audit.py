"""Security: audits that collide or fail (issue 16): two audits into one --out, a disk that fills
up, a file name that is not UTF-8. Each failure is clean (an AuditError, exit 2), leaves no half
outputs and can be resumed."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import checker.audit.merge as merge
import checker.audit.pipeline as pipeline
from checker.audit import AuditError, AuditOptions, run_audit
from tests.conftest import REPO, SAMPLES

INPUT = SAMPLES / "scenarios" / "iatrogenic"
AS_OF = "2026-01-15"
OUTPUTS = ("findings.ndjson", "findings.csv", "errors.ndjson", "summary.json", "indicators.csv")


def _audit(out: Path, inputs: Path = INPUT, **kw: Any) -> dict[str, Any]:
    kw.setdefault("jobs", 1)
    kw.setdefault("shards", 3)
    return run_audit([str(inputs)], AuditOptions(out=out, as_of=AS_OF, progress=False, **kw))


def _outputs(out: Path) -> dict[str, bytes]:
    return {n: (out / n).read_bytes() for n in OUTPUTS if (out / n).is_file()}


HOLDER = """
import fcntl, json, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, json.dumps({"pid": os.getpid(), "host": "ward-7", "started": "2026-01-15T08:00:00+00:00"}).encode())
print("locked", flush=True)
time.sleep(120)
"""


def test_second_audit_into_the_same_folder_is_refused_naming_the_holder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out / ".pertinence-audit.lock")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(AuditError) as err:
            _audit(out)
        assert f"pid {holder.pid}" in str(err.value) and "ward-7" in str(err.value)
        assert "2026-01-15T08:00:00" in str(err.value)
        env = dict(os.environ, PERTINENCE_CACHE=str(tmp_path / "cache"))
        done = subprocess.run([sys.executable, str(REPO / "cli.py"), "audit", str(INPUT), "--out", str(out),
                               "--jobs", "1", "--no-progress"], capture_output=True, text=True, env=env)
        assert done.returncode == 2 and f"pid {holder.pid}" in done.stderr and "Traceback" not in done.stderr
        assert not (out / "findings.ndjson").exists()
    finally:
        holder.kill()
        holder.wait()
    _audit(out)  # the holder is gone: the lock is free again
    assert (out / "findings.ndjson").is_file()


def test_killed_run_leaves_a_stale_lock_that_resume_takes_over(tmp_path: Path, caplog: Any, monkeypatch: Any) -> None:
    audit_log = logging.getLogger("pertinence.audit")  # another library's logging set-up may have muted it
    monkeypatch.setattr(audit_log, "disabled", False)
    monkeypatch.setattr(audit_log, "propagate", True)
    clean = tmp_path / "clean"
    _audit(clean)
    out = tmp_path / "out"

    def interrupt(name: str) -> None:
        raise KeyboardInterrupt  # as a killed run: stops after its first shard

    with pytest.raises(KeyboardInterrupt):
        _audit(out, on_shard_done=interrupt)
    note = json.loads((out / ".pertinence-audit.lock").read_text())
    assert note["pid"] == os.getpid()
    with caplog.at_level(logging.WARNING, logger="pertinence.audit"):
        _audit(out, resume=True)
    assert any("stale" in r.getMessage() for r in caplog.records)
    assert _outputs(out) == _outputs(clean)


class _FullDisk:
    """A file opened for writing whose writes fail with ENOSPC after ``room`` bytes."""

    def __init__(self, real: Any, room: int) -> None:
        self._real, self._room = real, room

    def write(self, data: bytes) -> int:
        self._room -= len(data)
        if self._room < 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self._real.name)
        return self._real.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._real.close()


@pytest.mark.parametrize("phase", ["partition", "merge"])
def test_disk_full_is_a_clean_error_with_no_half_outputs_and_resumable(tmp_path: Path, monkeypatch: Any,
                                                                        phase: str) -> None:
    clean = tmp_path / "clean"
    _audit(clean)
    out = tmp_path / "out"
    _audit(out, select=("IX001",))  # an earlier audit's outputs, which must stay whole
    before = _outputs(out)
    if phase == "partition":
        real_open = open
        monkeypatch.setattr(pipeline, "open", lambda *a, **k: _FullDisk(real_open(*a, **k), 2000), raising=False)
    else:
        calls = {"n": 0}
        real_lines = merge.outputs.atomic_lines

        def failing(path: Path, lines: Any) -> int:
            calls["n"] += 1
            if Path(path).name == "errors.ndjson":  # findings files written (staged), then the disk fills up
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            return real_lines(path, lines)

        monkeypatch.setattr(merge.outputs, "atomic_lines", failing)
    with pytest.raises(AuditError) as err:
        _audit(out)
    assert "No space left on device" in str(err.value) and "--resume" in str(err.value)
    assert _outputs(out) == before  # no output replaced by a half-written run
    monkeypatch.undo()
    _audit(out, resume=True)
    assert _outputs(out) == _outputs(clean)


def test_file_name_not_utf8_is_read_and_named_escaped(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    order = {"resourceType": "MedicationRequest", "id": "x", "status": "active", "intent": "order",
             "medicationCodeableConcept": {"text": "Doliprane 1000 mg comprimé"},
             "subject": {"reference": "Patient/p1"}}
    name = os.path.join(os.fsencode(folder), b"ordonnances-caf\xe9.ndjson")
    with open(name, "wb") as f:
        f.write(json.dumps(order).encode() + b"\n{not json\n")
    out = tmp_path / "out"
    summary = _audit(out, folder)
    assert summary["inputs"]["checked"] == 1 and summary["inputs"]["rejected"] == 1
    errors = [json.loads(line) for line in (out / "errors.ndjson").read_text().splitlines()]
    assert errors and "ordonnances-caf\\xe9.ndjson" in errors[0]["location"]
