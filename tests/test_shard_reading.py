"""Reading a shard back: chunks of whole patients whose NDJSON lines are read a run at a time (typed
runs that carry their own line numbers), each shard line split once and each patient key parsed once
per patient. The chunks must give what the former reading gave (one line at a time, every key
parsed, every payload decoded on its own): same chunks, same records, errors, counts and URLs.

Seeded inputs: generated exports, lines of every resource type with odd references, Bundles and
lists on one line, contained resources, escapes, repeated keys and malformed lines (the generator
of ``tests/test_fast_routing.py``), the lines written to trip the typed path up, blank lines, and
shard lines in any order (the Dask engine's shuffle does not keep them in input order).
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import checker.audit.sharded as sharded
from checker.audit import codec
from checker.audit.worker import group_key, shard_chunks
from checker.fhir_input import RawResource, TypedLines, TypedResource, assemble
from tests.conftest import export_generator
from tests.test_check_sharded import _partitioned
from tests.test_fast_routing import _assert_same_routing, _line
from tests.test_ingest_typed import TRICKY, _assert_same

DAY = date(2026, 1, 15)


def _former_chunks(groups: dict[str, list[tuple[Any, int, bytes]]], max_bytes: int,
                   max_patients: int) -> Iterator[list[tuple[Any, int, bytes]]]:
    chunk: list[tuple[Any, int, bytes]] = []
    size = patients = 0
    for key in sorted(groups):
        lines = groups[key]
        chunk.extend(lines)
        size += sum(n for _, n, _ in lines)
        patients += 1
        if size >= max_bytes or patients >= max_patients:
            yield chunk
            chunk, size, patients = [], 0, 0
    if chunk:
        yield chunk


def _former_shard_chunks(lines: Iterable[bytes], medications: dict[str, Any], max_bytes: int, max_patients: int,
                         typed: bool) -> Iterator[tuple[list[Any], list[Any]]]:
    """The reading of 9f571bf, kept as the plain reference: every line split and its key parsed,
    every payload decoded on its own (:func:`codec.decode_items`)."""
    groups: dict[str, list[tuple[Any, int, bytes]]] = {}
    for raw_line in lines:
        if not raw_line.strip():
            continue
        key, seq, payload = codec.split(raw_line)
        groups.setdefault(group_key(key, payload), []).append((seq, len(payload), payload))
    for chunk in _former_chunks(groups, max_bytes, max_patients):
        chunk.sort(key=lambda t: t[0])
        items = [item for _, _, p in chunk for item in codec.decode_items(p, typed)]
        wanted: dict[str, None] = {}
        for it in items:
            if isinstance(it, RawResource) and it.resource_type == "MedicationRequest":
                for ref in codec.medication_refs(it):
                    if ref in medications:
                        wanted[ref] = None
        lent = sorted({entry for r in wanted for entry in medications[r]})
        yield items, [codec.decode(p) for _, p in lent]


def _export(tmp_path: Path, seed: int) -> Path:
    """A generated export, a file of seeded odd lines with blank and CRLF lines among them, and the
    tricky lines, in files of several kinds."""
    rng = random.Random(seed)
    folder = tmp_path / f"export{seed}"
    export_generator().generate(folder, patients=60, per_patient=rng.choice([3, 10]), seed=seed, practitioners=5,
                                file_lines=rng.choice([50, 400]))
    odd = [_line(rng) for _ in range(400)]
    for k in sorted(rng.sample(range(len(odd)), 30), reverse=True):
        odd.insert(k, rng.choice([b"", b"   ", b"\r"]))
    (folder / "Mixed.ndjson").write_bytes(b"\n".join(odd) + b"\n")
    tricky = [line for line in TRICKY.values() if b"\n" not in line]
    rng.shuffle(tricky)
    (folder / "MedicationRequest.tricky.ndjson").write_bytes(b"\n".join(tricky * 2))  # no final newline
    return folder


def _read(paths: list[Path], medications: dict[str, Any], reader: Any, *, typed: bool = True,
          shuffle: random.Random | None = None, max_bytes: int = 20_000) -> list[tuple[list[Any], Any]]:
    out = []
    for path in paths:
        lines = path.read_bytes().splitlines(keepends=True)
        if shuffle is not None:
            shuffle.shuffle(lines)
        for items, borrowed in reader(lines, medications, max_bytes, 30, typed=typed):
            out.append((items, assemble(items + borrowed, as_of=DAY)))
    return out


def _former(lines: Iterable[bytes], medications: dict[str, Any], max_bytes: int, max_patients: int, *,
            typed: bool = True) -> Iterator[tuple[list[Any], list[Any]]]:
    return _former_shard_chunks(lines, medications, max_bytes, max_patients, typed)


@pytest.mark.parametrize("seed", range(4))
def test_shard_chunks_read_as_the_former_reading(tmp_path: Path, seed: int) -> None:
    folder = _export(tmp_path, seed)
    paths, medications = _partitioned(tmp_path, [str(folder)], 1 + seed)
    new = _read(paths, medications, shard_chunks)
    former = _read(paths, medications, _former)
    plain = _read(paths, medications, shard_chunks, typed=False)
    assert len(new) == len(former) == len(plain) > 3
    for (_, a), (_, b), (_, c) in zip(new, former, plain):
        _assert_same(a, b)
        _assert_same(c, b)
    assert sum(len(ing.errors) for _, ing in former) > 20  # malformed lines are compared too
    runs = [i for items, _ in new for i in items if type(i) is TypedLines]
    assert sum(len(r.lines) for r in runs) > 2 * len(runs) > 10  # read a run at a time
    assert any(r.numbers != list(range(r.first, r.first + len(r.lines))) for r in runs)  # other patients' lines between
    assert any(type(r.typed[0]).__name__ == "PatientLine" for r in runs)


@pytest.mark.parametrize("seed", range(2))
def test_shard_lines_in_any_order_give_the_same_chunks(tmp_path: Path, seed: int) -> None:
    """The Dask engine's shuffle hands a worker its shard's lines in any order: each chunk is put
    back in input order."""
    folder = _export(tmp_path, seed)
    paths, medications = _partitioned(tmp_path, [str(folder)], 2)
    rng = random.Random(seed)
    for (_, a), (_, b) in zip(_read(paths, medications, shard_chunks, shuffle=rng),
                              _read(paths, medications, _former), strict=True):
        _assert_same(a, b)


def test_a_refused_line_of_a_run_keeps_its_own_number() -> None:
    """A line of a typed run that extraction refuses (an unreadable date) is read as a dict at its
    own line number, taken from the run's numbers."""
    good = (b'{"resourceType":"MedicationRequest","id":"m%d","status":"active","intent":"order",'
            b'"subject":{"reference":"Patient/p1"},"authoredOn":"%b","medicationCodeableConcept":'
            b'{"text":"Warfarine 5 mg"}}')
    lines = [good % (k, b"2025-13-45" if k == 2 else b"2025-11-02") for k in range(4)]
    numbers = [3, 17, 40, 41]
    from checker.fhir_input import numbered_lines

    items = list(numbered_lines(lines, "f.ndjson", numbers))
    assert [type(i) for i in items] == [TypedLines]
    ing = assemble(items, as_of=DAY)
    plain = assemble([i for line, n in zip(lines, numbers) for i in codec.decode_items(
        codec.encode_line(n, b'"f.ndjson"', line))], as_of=DAY)
    _assert_same(ing, plain)
    assert [e.location for e in ing.errors] == ["f.ndjson:40 /authoredOn"]
    assert [o.location.line for r in ing.records for o in r.medication_orders] == [3, 17, 41]


def test_partition_routes_blocks_with_blank_lines_as_the_plain_routing(tmp_path: Path) -> None:
    """The partition takes a block of lines at a time (blank lines counted, not routed)."""
    rng = random.Random(5)
    lines = [_line(rng) for _ in range(300)]
    for k in sorted(rng.sample(range(300), 40), reverse=True):
        lines.insert(k, rng.choice([b"", b" ", b"\t", b"\r"]))
    path = tmp_path / "mixed.ndjson"
    path.write_bytes(b"\n".join(lines))
    copied, errors = _assert_same_routing(path, 3)
    assert copied > 150 and errors > 5


def test_sharded_check_of_seeded_exports_writes_the_former_reading_s_report(tmp_path: Path, monkeypatch: Any) -> None:
    """The command's path (small chunks, 3 shards) writes the same json report with the former
    reading; without the seeded odd lines, the same as the in-memory check too. (With them the
    sharded report differs from the in-memory one with either reading, 9f571bf's too: lines without a
    patient are grouped per file, so two files' such lines in different chunks make two records where
    the in-memory check makes one; left for a fix of its own.)"""
    import io

    from checker import check
    from checker.formats import render

    def written(folder: Path) -> str:
        out = io.BytesIO()
        sharded.write_sharded_json([str(folder)], out, as_of="2026-01-15", shards=3)
        return out.getvalue().decode()

    monkeypatch.setattr(sharded, "CHUNK_BYTES", 20_000)
    for seed in (1, 2):
        folder = _export(tmp_path, seed)
        new = written(folder)
        with monkeypatch.context() as m:
            m.setattr(sharded, "shard_chunks", _former)
            assert written(folder) == new
        (folder / "Mixed.ndjson").unlink()
        assert written(folder) == render(check([str(folder)], as_of="2026-01-15"), "json")


def test_the_typed_path_is_taken_by_shard_reading(tmp_path: Path) -> None:
    """Without this the comparisons above could hold with every line read as a dict."""
    folder = tmp_path / "export"
    export_generator().generate(folder, patients=40, per_patient=10, seed=4, practitioners=5)
    paths, medications = _partitioned(tmp_path, [str(folder)], 2)
    items = [i for items, _ in _read(paths, medications, shard_chunks) for i in items]
    typed = sum(len(i.lines) if type(i) is TypedLines else 1 for i in items if type(i) in (TypedLines, TypedResource))
    as_dicts = sum(type(i) is RawResource and i.resource_type == "MedicationRequest" for i in items)
    assert typed >= 0.99 * (typed + as_dicts) > 300


# --- the json report's findings: spilled per chunk in report order, merged a patient at a time -----


def _seeded_findings(rng: random.Random) -> list[Any]:
    """Findings of real checks, many copies given other patients (none, empty, ``~``, texts that are
    prefixes of one another): every patient has findings of several rules, lines and severities."""
    from dataclasses import replace

    from checker import check

    base = check([str(Path(__file__).resolve().parents[1] / "fhir_samples")], as_of="2026-01-15").findings
    patients = [None, "", "~", "Patient/1", "Patient/10", "Patient/2", "#p1", "é", "Patient/1\x00"]
    out = list(base)
    for f in rng.sample(base, min(len(base), 150)):
        out.append(replace(f, patient=rng.choice(patients)))
    return out


def _former_json_findings(chunks: list[list[Any]], tmp: Path) -> bytes:
    """The spill of 9f571bf: a byte key per finding, lines merged by key (equal keys in chunk order)."""
    from checker.audit.sharded import _JSON, sorted_by_key
    from checker.audit.worker import merge_sorted

    paths = []
    for n, findings in enumerate(chunks):
        path = tmp / f"former{n}.ndjson"
        path.write_bytes(b"".join(k + b"\t" + f.to_json(_JSON).replace(b"\n", b"\t") + b"\n"
                                  for k, f in sorted_by_key(findings)))
        paths.append(path)
    sep, out = b"\n    ", []
    for body in merge_sorted(paths):
        out.append(sep + body.replace(b"\t", b"\n    "))
        sep = b",\n    "
    return b"".join(out)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("whole", [True, False])
def test_spilled_findings_merge_in_report_order_as_the_former_keys(tmp_path: Path, seed: int, whole: bool,
                                                                  monkeypatch: Any) -> None:
    """Seeded findings dealt to chunks at random (so that one patient's findings, and equal findings,
    are often in several chunks): merged a patient's block at a time, the report's list is byte for
    byte the former keyed merge's, whatever the write block."""
    from checker.audit.sharded import Spill, merge_spilled, spill_findings

    rng = random.Random(seed)
    findings = _seeded_findings(rng)
    findings += rng.sample(findings, 30)  # the same finding twice: kept in chunk order
    chunks: list[list[Any]] = [[] for _ in range(rng.choice([3, 7]))]  # whole: each patient in one chunk
    for f in findings:
        who = (f.patient or "~").encode("utf-8")
        chunks[zlib.crc32(who) % len(chunks) if whole else rng.randrange(len(chunks))].append(f)
    chunks = [c for c in chunks if c]
    monkeypatch.setattr(sharded, "WRITE_BLOCK", rng.choice([1, 500, 1 << 20]))
    spills = []
    for n, c in enumerate(chunks):
        path = tmp_path / f"{n}.json"
        with path.open("wb") as f:
            spills.append(Spill(path, spill_findings(c, f)))
    merged = b"".join(merge_spilled(spills))
    assert b"\n    " + merged[len(b",\n    "):] == _former_json_findings(chunks, tmp_path)
    blocks, patients = sum(len(s.blocks) for s in spills), len({f.patient or "~" for f in findings})
    assert blocks == patients if whole or len(spills) == 1 else blocks > patients  # patients in several spills


@pytest.mark.parametrize("seed", range(2))
def test_patient_blocks_kept_in_files_merge_as_blocks_in_memory(tmp_path: Path, seed: int) -> None:
    """The sharded check keeps each spill's patient blocks in a file beside it (a run's patients are
    not held in memory): merged from those files, the report's list is the same bytes as from lists,
    patient names with quotes, tabs, line feeds and non-ASCII letters included."""
    from checker.audit.sharded import Spill, keep_blocks, merge_spilled, spill_findings

    rng = random.Random(seed)
    findings = _seeded_findings(rng)
    odd = ['Patient/a"b', "Patient/t\tab", "Patient/l\nf", "Patient/é", None]
    findings = [replace(f, patient=rng.choice(odd)) if rng.random() < 0.3 else f for f in findings]
    chunks: list[list[Any]] = [[] for _ in range(4)]
    for f in findings:
        chunks[rng.randrange(4)].append(f)
    in_memory, in_files = [], []
    for n, c in enumerate(x for x in chunks if x):
        path = tmp_path / f"{n}.json"
        with path.open("wb") as f:
            blocks = spill_findings(c, f)
        in_memory.append(Spill(path, blocks))
        in_files.append(Spill(path, keep_blocks(blocks, path.with_suffix(".blocks"))))
    assert all(isinstance(s.blocks, Path) for s in in_files)
    assert b"".join(merge_spilled(in_files)) == b"".join(merge_spilled(in_memory))
