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


# --- typed decoding of shard lines, and work shared across the chunks of one run -----------------


def _partitioned(tmp_path: Path, inputs: list[str], shards: int) -> tuple[list[Path], dict[str, Any]]:
    """The shard files (and the lent Medications) the sharded ``check`` would partition ``inputs`` into."""
    from checker.audit.pipeline import MEDICATIONS, expand_inputs, partition_local
    from checker.audit.worker import load_medications

    work = tmp_path / "work"
    (work / "shards").mkdir(parents=True)
    partition_local(expand_inputs(inputs), shards, work, sharded._Quiet())
    meds_path = work / "shards" / f"{MEDICATIONS}.ndjson"
    medications: dict[str, Any] = {}
    if meds_path.is_file():
        with meds_path.open("rb") as f:
            medications = load_medications(f)
    return sorted(p for p in (work / "shards").glob("*.ndjson") if p != meds_path), medications


def _chunks_read(paths: list[Path], medications: dict[str, Any], *, typed: bool, shared: Any = None,
                 max_bytes: int = 20_000) -> list[tuple[list[Any], Any]]:
    """(items, ingestion) of every chunk of every shard, small chunks so that there are many."""
    from datetime import date

    from checker.audit.worker import shard_chunks
    from checker.fhir_input import assemble

    out = []
    for path in paths:
        with path.open("rb") as f:
            for items, borrowed in shard_chunks(f, medications, max_bytes, 40, typed=typed):
                out.append((items, assemble(items + borrowed, as_of=date(2026, 1, 15), shared=shared)))
    return out


def _tricky_export(tmp_path: Path) -> Path:
    """A generated export plus a file of the lines written to trip the typed path up (each several times)."""
    from tests.test_ingest_typed import TRICKY

    folder = tmp_path / "export"
    export_generator().generate(folder, patients=80, per_patient=10, seed=13, practitioners=10, file_lines=300)
    lines = [line for line in TRICKY.values() if b"\n" not in line]
    (folder / "MedicationRequest.tricky.ndjson").write_bytes(b"\n".join(lines * 3) + b"\n")
    return folder


def test_shard_lines_are_decoded_typed_as_the_dict_path_reads_them(tmp_path: Path) -> None:
    """The sharded path decodes its MedicationRequest lines typed (as ``read`` does NDJSON lines) and
    gets, chunk by chunk, exactly what the dict path gets: records, errors, counts, URLs."""
    from checker.fhir_input.raw import RawResource, TypedLines, TypedResource
    from tests.test_ingest_typed import _assert_same

    paths, medications = _partitioned(tmp_path, [str(_tricky_export(tmp_path)), str(SAMPLES)], 3)
    typed = _chunks_read(paths, medications, typed=True)
    plain = _chunks_read(paths, medications, typed=False)
    assert len(typed) == len(plain) > 10
    for (_, a), (_, b) in zip(typed, plain):
        _assert_same(a, b)
    generated = [i for items, _ in typed for i in items  # the generated lines
                 if "MedicationRequest.0" in (i.file if type(i) is TypedLines else str(getattr(i, "location", "")))]
    as_dicts = sum(type(i) is RawResource and i.resource_type == "MedicationRequest" for i in generated)
    as_typed = sum(1 if type(i) is TypedResource else len(i.lines) if type(i) is TypedLines else 0 for i in generated)
    assert as_typed >= 0.99 * (as_typed + as_dicts) > 500  # the typed path is taken
    assert sum(type(i) is TypedLines for i in generated) < as_typed / 2  # a run at a time
    assert not any(type(i) in (TypedResource, TypedLines) for items, _ in plain for i in items)
    assert sum(len(ing.errors) for _, ing in plain) > 10  # the tricky lines' errors are compared too


def test_shard_lines_of_the_shared_corpus_are_decoded_typed_as_the_dict_path(tmp_path: Path, shared_dir: Path) -> None:
    from tests.test_ingest_typed import _assert_same

    paths, medications = _partitioned(tmp_path, [str(shared_dir / "fhir")], 4)
    for (_, a), (_, b) in zip(_chunks_read(paths, medications, typed=True, max_bytes=1 << 20),
                              _chunks_read(paths, medications, typed=False, max_bytes=1 << 20), strict=True):
        _assert_same(a, b)


def test_sharded_report_with_tricky_lines_is_byte_identical(tmp_path: Path, monkeypatch: Any) -> None:
    """Through the command's path (typed shard lines, small chunks sharing their work), the json
    report equals the in-memory one, tricky lines and their errors included."""
    import io

    from checker.audit.sharded import write_sharded_json

    folder = _tricky_export(tmp_path)
    whole = render(check([str(folder)], as_of=AS_OF), "json")
    monkeypatch.setattr(sharded, "CHUNK_BYTES", 30_000)
    for shards in (1, 3):
        assert render(check_sharded([str(folder)], as_of=AS_OF, shards=shards), "json") == whole, shards
        out = io.BytesIO()
        write_sharded_json([str(folder)], out, as_of=AS_OF, shards=shards)
        assert out.getvalue().decode() == whole, shards


def test_chunks_of_one_run_share_extractions_within_a_bound(tmp_path: Path) -> None:
    """Chunks read with one :class:`SharedReading` get the same records as chunks read afresh, share
    one extracted medication across chunks, and never hold more entries than the bound."""
    from checker.fhir_input import SharedReading
    from tests.test_ingest_typed import _assert_same

    paths, medications = _partitioned(tmp_path, [str(_tricky_export(tmp_path)), str(SAMPLES)], 2)
    fresh = _chunks_read(paths, medications, typed=True)
    shared = SharedReading()
    once = _chunks_read(paths, medications, typed=True, shared=shared)
    for (_, a), (_, b) in zip(once, fresh, strict=True):
        _assert_same(a, b)
    by_text: dict[Any, set[int]] = {}
    for _, ing in once:
        for record in ing.records:
            for order in record.medication_orders:
                if "MedicationRequest.0" in order.location.file:  # the generated lines (typed)
                    by_text.setdefault(order.medication, set()).add(id(order.medication))
    assert 10 < len(by_text) < 200 and all(len(ids) == 1 for ids in by_text.values())  # one object each
    small = SharedReading(limit=3)
    bounded = _chunks_read(paths, medications, typed=True, shared=small)
    for (_, a), (_, b) in zip(bounded, fresh, strict=True):
        _assert_same(a, b)
    assert 0 < max(len(table) for table in small.tables()) <= 3


def test_a_medication_is_identified_once_per_sharded_run(tmp_path: Path, monkeypatch: Any) -> None:
    """Identification is shared across the chunks of one run (bounded), not redone in every chunk."""
    import checker.api as api

    folder = tmp_path / "export"
    export_generator().generate(folder, patients=120, per_patient=10, seed=17, practitioners=10)
    whole = render(check([str(folder)], as_of=AS_OF), "json")
    calls: list[Any] = []
    real = api.identify
    monkeypatch.setattr(api, "identify", lambda order, refs=None: calls.append(order.medication) or real(order, refs))
    monkeypatch.setattr(sharded, "CHUNK_BYTES", 40_000)
    assert render(check_sharded([str(folder)], as_of=AS_OF, shards=2), "json") == whole
    distinct = len(set(calls))
    assert len(calls) == distinct, (len(calls), distinct)  # each medication identified once in the run
    calls.clear()
    monkeypatch.setattr(api, "IDENTITIES_LIMIT", 5)
    assert render(check_sharded([str(folder)], as_of=AS_OF, shards=2), "json") == whole  # bounded: same report
    assert len(calls) > distinct
