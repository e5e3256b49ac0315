"""``check`` of a large input through the audit's pipeline: the same report, in bounded memory.

Above :data:`SHARD_THRESHOLD` bytes of input, holding every patient record at once costs more
memory than the input is worth. The input is then partitioned by patient into shards spilled to a
temporary folder (the audit's partition phase), each shard is checked chunk by chunk of whole
patients (the audit's workers), and the findings, errors and counts are gathered into one
:class:`~checker.findings.Report`, the same as the in-memory path gives: only whole patients are
checked together and every rule works within one patient.
"""

from __future__ import annotations

import heapq
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from checker import fhir_input
from checker.api import check_records, identify_records, start_run
from checker.audit.pipeline import (MEDICATIONS, expand_inputs, input_bytes, partition_local, shard_count,
                                    parse_size, DEFAULT_MEMORY)
from checker.audit.worker import RunShared, finding_sort_key, load_medications, shard_chunks
from checker.findings import Finding, InputCounts, InputError, Report, Severity, add_savings, in_input_order, savings_dict
from checker.memo import relaxed_gc
from checker.referentials import Referentials

SHARD_THRESHOLD = 64 << 20
"""Bytes of (uncompressed) input above which ``check`` runs through the sharded pipeline."""
CHUNK_BYTES = 8 << 20
"""Raw bytes of whole patients checked at once. The chunks of one run share their extractions and
identifications (see :class:`~checker.audit.worker.RunShared`), so the size hardly changes the CPU
(dense 200,000-line export: 32.5 s with 4 MB, 34.6 s with 8 MB, 33.9 s with 16 MB) but bounds
memory (274, 333, 454 MB); each chunk with findings is also one spilled file, all open at the merge."""
CHUNK_PATIENTS = 50_000


class _Quiet:
    """Progress sink of the partition phase (``check`` shows no progress)."""

    def items(self, n: int) -> None:
        pass

    def bytes_done(self, n: int) -> None:
        pass


def wants_shards(paths: Sequence[str], threshold: int = SHARD_THRESHOLD) -> bool:
    """Whether ``check`` of ``paths`` (files or folders, not stdin) should run sharded."""
    if any(p == "-" for p in paths) or not all(Path(p).exists() for p in paths):
        return False
    return input_bytes(expand_inputs(paths)) > threshold


def _checked_chunks(paths: Sequence[str], day: date, refs: Referentials, shards: int | None,
                    max_decompressed: int | None, max_expansion: float | None, **options: Any
                    ) -> Iterator[tuple[Report, InputCounts, dict[str, str]]]:
    """Partition ``paths`` by patient into a temporary folder, then check it chunk by chunk of whole
    patients: each chunk's report, its input counts and its resource URLs."""
    files = expand_inputs(paths)
    n = shards or shard_count(input_bytes(files), parse_size(DEFAULT_MEMORY), 1)
    with tempfile.TemporaryDirectory(prefix="pertinence-check-") as tmp:
        work = Path(tmp)
        (work / "shards").mkdir()
        partition_local(files, n, work, _Quiet(), max_decompressed, max_expansion)
        meds_path = work / "shards" / f"{MEDICATIONS}.ndjson"
        medications: dict[str, Any] = {}
        if meds_path.is_file():
            with meds_path.open("rb") as f:
                medications = load_medications(f)
        names = sorted(p.name for p in (work / "shards").glob("*.ndjson") if p.name != meds_path.name)
        shared = RunShared()
        for name in names:  # decoding and assembling a chunk is bulk work too (see relaxed_gc)
            with (work / "shards" / name).open("rb") as f, relaxed_gc():
                for items, borrowed in shard_chunks(f, medications, CHUNK_BYTES, CHUNK_PATIENTS):
                    ing = fhir_input.assemble([*items, *borrowed], as_of=day, shared=shared.reading)
                    counts = ing.counts
                    if borrowed:  # stand-alone Medications lent to this chunk are counted in the common shard
                        lent = fhir_input.assemble(borrowed, as_of=day).counts
                        counts = InputCounts(counts.files - lent.files, counts.resources - lent.resources,
                                             counts.checked - lent.checked, counts.ignored - lent.ignored,
                                             counts.rejected - lent.rejected)
                    with relaxed_gc():
                        identify_records(ing.records, refs, shared.identities)
                        report = check_records(ing.records, counts=counts, errors=ing.errors, as_of=day,
                                               refs=refs, **options)
                    yield report, counts, ing.urls


def _options(select: Iterable[str] | None, ignore: Iterable[str] | None, **rest: Any) -> dict[str, Any]:
    return {"select": list(select) if select is not None else None,
            "ignore": list(ignore) if ignore is not None else None, **rest}


def check_sharded(paths: Sequence[str], *, as_of: date | str | None = None, jurisdiction: str = "fr",
                  select: Iterable[str] | None = None, ignore: Iterable[str] | None = None,
                  min_severity: str | None = None, lang: str = "fr", refs: Referentials | None = None,
                  severity_overrides: dict[str, str] | None = None, max_decompressed: int | None = None,
                  max_expansion: float | None = None, shards: int | None = None) -> Report:
    """:func:`checker.check` of ``paths`` through patient shards on disk (same report; the records
    are held a chunk at a time, the findings all at once: see :func:`write_sharded_json`)."""
    run = start_run(as_of, refs, max_decompressed, max_expansion)
    day, refs = run.day, run.refs
    options = _options(select, ignore, jurisdiction=jurisdiction, min_severity=min_severity, lang=lang,
                       severity_overrides=severity_overrides)
    findings: list[Finding] = []
    errors: list[InputError] = []
    counts = InputCounts()
    urls: dict[str, str] = {}
    report: Report | None = None
    for report, chunk_counts, chunk_urls in _checked_chunks(paths, day, refs, shards, run.max_decompressed,
                                                            run.max_expansion, **options):
        findings.extend(report.findings)
        errors.extend(report.errors)
        counts.add(chunk_counts)
        urls.update(chunk_urls)
    if report is None:  # no input item at all
        report = check_records([], counts=counts, as_of=day, refs=refs, **options)
    report.findings, report.errors, report.inputs, report.resource_urls = findings, in_input_order(errors), counts, urls
    return report


_JSON = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
_PLACE = "@@findings@@"
WRITE_BLOCK = 1 << 20
"""Bytes of findings gathered before one write (a write per finding cost more than its JSON)."""


class _Blocks:
    """Pieces of output gathered and written about :data:`WRITE_BLOCK` bytes at a time."""

    __slots__ = ("out", "parts", "size")

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, *parts: bytes) -> None:
        self.parts += parts
        self.size += sum(map(len, parts))
        if self.size >= WRITE_BLOCK:
            self.flush()

    def flush(self) -> None:
        if self.parts:
            self.out.write(b"".join(self.parts))
            self.parts, self.size = [], 0


def sorted_by_key(findings: Iterable[Finding]) -> list[tuple[bytes, Finding]]:
    """``findings`` in report order (:meth:`Report.sorted_findings`), each with its
    :func:`~checker.audit.worker.finding_sort_key`: the byte order of the keys is the order of the
    parts they encode, equal keys are equal parts and both sorts are stable. (The spill keyed each
    finding so until it merged whole patients' blocks instead, see :func:`spill_findings`; the tests
    compare with it.)"""
    return sorted([(finding_sort_key(f), f) for f in findings], key=itemgetter(0))


_SEP = b",\n    "
"""What comes before each finding in the report's list (the first finding drops the comma)."""


def _report_order(f: Finding) -> tuple[Any, ...]:
    """:meth:`Report.sorted_findings`'s key."""
    return (f.patient or "~", -f.severity.rank, f.rule, f.implicated, f.fingerprint)


@dataclass(slots=True)
class Spill:
    """One chunk's findings written in report order (:func:`spill_findings`) and its patients' blocks."""

    path: Path
    blocks: list[tuple[str, int]] | Path
    """(patient as the report sorts it, bytes of that patient's findings), in the file's order; or the
    file they were written to (:func:`keep_blocks`), read back a block at a time by the merge, so that
    a run's patients are never all held in memory (a 2,000,000-line check has 200,000 of them)."""

    def patient_blocks(self, i: int) -> Iterator[tuple[str, int, int]]:
        """(patient, ``i``, size) of each block, in the file's order."""
        if isinstance(self.blocks, Path):
            with self.blocks.open("rb") as f:
                for line in f:
                    who, size = orjson.loads(line)
                    yield who, i, size
        else:
            for who, size in self.blocks:
                yield who, i, size


def keep_blocks(blocks: list[tuple[str, int]], path: Path) -> Path:
    """Write ``blocks`` to ``path``, one JSON pair a line, for :meth:`Spill.patient_blocks`."""
    path.write_bytes(b"".join(orjson.dumps(b) + b"\n" for b in blocks))
    return path


def spill_findings(findings: Sequence[Finding], out: BinaryIO) -> list[tuple[str, int]]:
    """Write ``findings`` to ``out`` in report order as the report's list holds them (each finding
    as indented JSON after :data:`_SEP`) and return each patient's block of bytes: a chunk holds
    whole patients, so the report is the chunks' blocks in patient order (:func:`merge_spilled`),
    without a key per finding."""
    blocks: list[tuple[str, int]] = []
    pieces: list[bytes] = []
    patient: Any = None
    size = held = 0
    for f in sorted(findings, key=_report_order):
        piece = _SEP + f.to_json(_JSON).replace(b"\n", b"\n    ")
        who = f.patient or "~"
        if who != patient:
            if size:
                blocks.append((patient, size))
            patient, size = who, 0
        size += len(piece)
        pieces.append(piece)
        held += len(piece)
        if held >= WRITE_BLOCK:
            out.write(b"".join(pieces))
            pieces, held = [], 0
    blocks.append((patient, size))
    out.write(b"".join(pieces))
    return blocks


def merge_spilled(spills: Sequence[Spill]) -> Iterator[bytes]:
    """The findings of every spill in report order, a patient's block at a time: blocks in patient
    order (equal patients in the order of ``spills``). A patient whose findings are in several spills
    (two records shown alike: no patient, the same local ``#id`` in two files) has them merged by the
    report's key, read back from their JSON."""
    files = [s.path.open("rb") for s in spills]
    try:
        heads = heapq.merge(*[s.patient_blocks(i) for i, s in enumerate(spills)])
        pending: list[tuple[int, int]] = []
        current: Any = None
        for who, i, size in heads:
            if who != current and pending:
                yield from _blocks_of(files, pending)
                pending = []
            current = who
            pending.append((i, size))
        if pending:
            yield from _blocks_of(files, pending)
    finally:
        for f in files:
            f.close()


def _blocks_of(files: Sequence[BinaryIO], blocks: list[tuple[int, int]]) -> Iterator[bytes]:
    """One patient's findings from its blocks (file index, size), in report order."""
    if len(blocks) == 1:
        i, size = blocks[0]
        yield files[i].read(size)
        return
    head = _SEP + b"{"  # begins each finding, and nothing inside one (its lines are indented further)
    runs = [[head + p for p in files[i].read(size).split(head)[1:]] for i, size in blocks]
    yield from heapq.merge(*runs, key=_written_order)


def _written_order(piece: bytes) -> tuple[Any, ...]:
    """:func:`_report_order` of a finding written by :func:`spill_findings`."""
    d = orjson.loads(piece[len(_SEP):])
    return (d["patient"] or "~", -Severity(d["severity"]).rank, d["rule"], tuple(d["implicated"]), d["fingerprint"])


@dataclass(slots=True)
class Written:
    """What :func:`write_sharded_json` tells the command: the input counts, the input errors and the
    most severe finding (for the exit status)."""

    inputs: InputCounts
    errors: int
    worst: Severity | None


def write_sharded_json(paths: Sequence[str], out: BinaryIO, *, as_of: date | str | None = None,
                       jurisdiction: str = "fr", select: Iterable[str] | None = None,
                       ignore: Iterable[str] | None = None, min_severity: str | None = None, lang: str = "fr",
                       refs: Referentials | None = None, severity_overrides: dict[str, str] | None = None,
                       max_decompressed: int | None = None, max_expansion: float | None = None,
                       shards: int | None = None) -> Written:
    """Write the ``json`` report of ``paths`` to ``out`` in bounded memory: each chunk's findings are
    sorted and spilled to disk, then merged in report order (byte for byte the ``json`` format's
    output for :func:`checker.check` of the same input)."""
    run = start_run(as_of, refs, max_decompressed, max_expansion)
    day, refs = run.day, run.refs
    options = _options(select, ignore, jurisdiction=jurisdiction, min_severity=min_severity, lang=lang,
                       severity_overrides=severity_overrides)
    errors: list[InputError] = []
    counts = InputCounts()
    totals: dict[str, dict[str, dict[str, Fraction]]] = {}
    worst: Severity | None = None
    report: Report | None = None
    with tempfile.TemporaryDirectory(prefix="pertinence-findings-") as tmp:
        spilled: list[Spill] = []
        for report, chunk_counts, _urls in _checked_chunks(paths, day, refs, shards, run.max_decompressed,
                                                           run.max_expansion, **options):
            errors.extend(report.errors)
            counts.add(chunk_counts)
            add_savings(totals, report.findings)
            chunk_worst = report.max_severity()
            if chunk_worst is not None and (worst is None or chunk_worst.rank > worst.rank):
                worst = chunk_worst
            if report.findings:
                path = Path(tmp) / f"{len(spilled):06d}.json"
                with path.open("wb") as f:
                    patients = spill_findings(report.findings, f)
                spilled.append(Spill(path, keep_blocks(patients, path.with_suffix(".blocks"))))
        if report is None:
            report = check_records([], counts=counts, as_of=day, refs=refs, **options)
        report.findings, report.errors, report.inputs = [], in_input_order(errors), counts
        head = report.to_dict()
        head["savings"] = savings_dict(totals)
        if spilled:
            head["findings"] = [_PLACE]
        text = orjson.dumps(head, option=_JSON)
        marker = b"\n    " + orjson.dumps(_PLACE) + b"\n"
        before, _, after = text.partition(marker) if spilled else (text, b"", b"")
        out.write(before)
        if spilled:
            blocks = _Blocks(out)
            first = True
            for piece in merge_spilled(spilled):
                blocks.add(piece[1:] if first else piece)  # the first finding without its comma
                first = False
            blocks.add(b"\n", after)
            blocks.flush()
        out.write(b"\n")
    return Written(counts, len(errors), worst)
