"""``check`` of a large input runs through patient shards on disk and gives the same report.

The threshold is lowered so that a small generated export takes the sharded path; its json report
must be byte for byte the one of the in-memory path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

import checker.audit.sharded as sharded
from checker import check
from checker.audit.sharded import check_sharded, wants_shards
from checker.formats import render
from tests.conftest import SAMPLES, export_generator

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-01-15"




def test_sharded_json_report_is_byte_identical_on_a_generated_export(tmp_path: Path) -> None:
    export_generator().generate(tmp_path / "export", patients=60, per_patient=10, seed=11)
    whole = render(check([str(tmp_path / "export")], as_of=AS_OF), "json")
    for shards in (1, 3, 8):
        split = render(check_sharded([str(tmp_path / "export")], as_of=AS_OF, shards=shards), "json")
        assert split == whole, shards
    assert json.loads(whole)["findings"]


def test_sharded_json_report_is_byte_identical_on_the_samples() -> None:
    whole = render(check([str(SAMPLES)], as_of=AS_OF, lang="en"), "json")
    split = render(check_sharded([str(SAMPLES)], as_of=AS_OF, lang="en", shards=5), "json")
    assert split == whole


def test_check_command_takes_the_sharded_path_above_the_threshold(tmp_path: Path, monkeypatch: Any) -> None:
    import cli

    export_generator().generate(tmp_path / "export", patients=20, per_patient=10, seed=3)
    args = ["check", str(tmp_path / "export"), "--as-of", AS_OF, "--format", "json"]
    before = CliRunner().invoke(cli.main, args)
    assert not wants_shards([str(tmp_path / "export")])
    used: list[int] = []
    real = sharded.partition_local
    monkeypatch.setattr(sharded, "partition_local", lambda *a, **k: used.append(1) or real(*a, **k))
    monkeypatch.setattr(sharded, "SHARD_THRESHOLD", 1000)
    monkeypatch.setattr(sharded.wants_shards, "__defaults__", (1000,))
    after = CliRunner().invoke(cli.main, args)
    assert used and after.exit_code == before.exit_code and after.output == before.output


def test_streamed_json_is_byte_identical_and_holds_no_report(tmp_path: Path) -> None:
    """The json report written chunk by chunk (findings spilled and merged) equals the json format."""
    import io

    from checker.audit.sharded import write_sharded_json

    export_generator().generate(tmp_path / "export", patients=60, per_patient=10, seed=5)
    whole = check([str(tmp_path / "export")], as_of=AS_OF)
    for shards in (1, 4):
        out = io.BytesIO()
        written = write_sharded_json([str(tmp_path / "export")], out, as_of=AS_OF, shards=shards)
        assert out.getvalue().decode() == render(whole, "json"), shards
        assert written.worst == whole.max_severity() and written.inputs == whole.inputs
    empty = tmp_path / "empty.ndjson"
    empty.write_text("")
    out = io.BytesIO()
    write_sharded_json([str(empty)], out, as_of=AS_OF)
    assert out.getvalue().decode() == render(check([str(empty)], as_of=AS_OF), "json")


def test_streamed_json_on_the_samples() -> None:
    import io

    from checker.audit.sharded import write_sharded_json

    out = io.BytesIO()
    write_sharded_json([str(SAMPLES)], out, as_of=AS_OF, lang="en", shards=3)
    assert out.getvalue().decode() == render(check([str(SAMPLES)], as_of=AS_OF, lang="en"), "json")


def test_sharded_input_errors_come_in_input_order(tmp_path: Path) -> None:
    """Errors of several patients and files are listed in input order (file, then line), as the
    in-memory path lists them, whatever shard each patient fell in."""
    folder = tmp_path / "export"
    folder.mkdir()
    for f in range(3):
        lines = []
        for p in range(12):
            pid = f"p{f}-{p}"
            lines.append(json.dumps({"resourceType": "Patient", "id": pid, "birthDate": "1950-01-01"}))
            bad = {"resourceType": "MedicationRequest", "id": f"m{f}-{p}", "status": "active", "intent": "order",
                   "subject": {"reference": f"Patient/{pid}"}, "authoredOn": "2025-01-05"}  # no medication
            lines.append(json.dumps(bad))
            if p % 4 == 0:
                lines.append("{not json")
        (folder / f"part{f}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    whole = check([str(folder)], as_of=AS_OF)
    assert len(whole.errors) >= 12
    for shards in (2, 5):
        split = check_sharded([str(folder)], as_of=AS_OF, shards=shards)
        assert [e.to_dict() for e in split.errors] == [e.to_dict() for e in whole.errors], shards
