"""Checking one shard: group its lines by patient, check patients chunk by chunk, write results.

Used by both engines (local process pool and Dask): the same shard content gives the same
result files byte for byte.
"""

from __future__ import annotations

import heapq
from operator import itemgetter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson

from checker.audit import codec
from checker.audit.indicators import Tally, definitions, merge, tally_records, tally_to_json
from checker.findings import Finding, InputCounts, InputError, add_savings
from checker import fhir_input
from checker.api import Identities, check_records, identify_records, parse_day
from checker.fhir_input import SharedReading, TypedLines, TypedResource
from checker.model import PatientRecord
from checker.audit.outputs import atomic_lines, finding_value
from checker.formats.csv import finding_row
from checker.formats.html import patient_digest, records_by_patient
from checker.memo import relaxed_gc
from checker.outputs import write_atomic

CHUNK_BYTES = 4 << 20  # raw bytes of resources checked at once (bounds worker memory)
CHUNK_PATIENTS = 2000
QUIET_PATIENTS = 1000  # patients with nothing to report listed by name in the HTML report (the rest counted)
TOP_PATIENTS = 200  # patients kept per shard (and overall) for the HTML report's detail section


@dataclass(frozen=True, slots=True)
class Settings:
    """What every shard of one audit is checked with."""

    as_of: str
    jurisdiction: str = "fr"
    lang: str = "fr"
    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] | None = None
    top_patients: int = TOP_PATIENTS

    def to_dict(self) -> dict[str, Any]:
        return {"as_of": self.as_of, "jurisdiction": self.jurisdiction, "lang": self.lang,
                "select": list(self.select) if self.select else None,
                "ignore": list(self.ignore) if self.ignore else None, "top_patients": self.top_patients}


def finding_sort_key(f: Finding) -> bytes:
    """Global order of findings (same as :meth:`Report.sorted_findings`), as a :func:`sortable` key:
    written here part by part as :func:`sortable` writes them when the parts are of the usual types
    (texts, a tuple of texts), by :func:`sortable` otherwise."""
    patient, rank, rule, implicated, print_ = f.patient or "~", f.severity.rank, f.rule, f.implicated, f.fingerprint
    if type(patient) is not str or type(rank) is not int or type(rule) is not str or type(print_) is not str \
            or type(implicated) is not tuple or not _STRINGS.issuperset(map(type, implicated)):
        return sortable((patient, -rank, rule, implicated, print_))
    key = b"".join([_text_key(patient), (-rank + (1 << 63)).to_bytes(8, "big"), _text_key(rule),
                    *map(_text_key, implicated), b"\x00\x00", _text_key(print_)])
    return key.hex().encode("ascii")


_STRINGS = frozenset({str})


def _text_key(text: str) -> bytes:
    """A text's place in a key: its UTF-8 bytes (whose order is the order of the code points), a
    NUL byte written as 00 02, then 00 01 to end it (so that a text sorts before its extensions)."""
    return text.encode("utf-8", "surrogatepass").replace(b"\x00", b"\x00\x02") + b"\x00\x01"


def sortable(parts: Sequence[Any]) -> bytes:
    """A key whose byte order is the order of ``parts`` compared as a Python list, parts being texts,
    integers (|n| < 2**63) or sequences of texts and integers of 0 or more (a digit run of a file
    name may be long), written in hexadecimal (no tab or newline in it): sorted result files are
    merged by comparing keys as bytes, without parsing them. Equal keys only for equal parts. A
    sequence ends with 00 00, below any text or integer in it; two sequences compared hold the same
    kind at each place, as Python requires."""
    out = bytearray()
    for part in parts:
        if type(part) is str:
            out += _text_key(part)
        elif type(part) is int:
            out += (part + (1 << 63)).to_bytes(8, "big")
        else:
            for item in part:
                out += _text_key(item) if type(item) is str else _count_key(item)
            out += b"\x00\x00"
    return out.hex().encode("ascii")


def _count_key(n: int) -> bytes:
    """An integer of 0 or more in a sequence: its length in bytes (one byte below 255, else FF and
    four bytes), then its bytes; a longer number is a larger one, so the bytes sort as the numbers."""
    if n < 0:
        raise ValueError(f"a sortable sequence holds integers of 0 or more, not {n}")
    size = max(1, (n.bit_length() + 7) // 8)
    head = bytes((size,)) if size < 255 else b"\xff" + size.to_bytes(4, "big")
    return head + n.to_bytes(size, "big")


def error_sort_key(e: InputError) -> bytes:
    """Input order of errors (:meth:`InputError.order_key`: file names and line numbers with their
    digit runs read as numbers, as ``pertinence check`` lists them), then the location as written
    (``part9`` and ``part009`` read alike), message and resource type, as a :func:`sortable` key."""
    return sortable((*e.order_key(), e.location, e.message, e.resource_type or ""))


@dataclass(slots=True)
class ShardResult:
    """Everything one shard contributes to the audit outputs."""

    counts: InputCounts = field(default_factory=InputCounts)
    patients: int = 0
    medication_requests: int = 0
    service_requests: int = 0
    patients_with_findings: int = 0
    by_rule: dict[str, dict[str, int]] = field(default_factory=dict)
    by_category: dict[str, dict[str, int]] = field(default_factory=dict)
    savings: dict[str, dict[str, dict[str, Fraction]]] = field(default_factory=dict)  # axis → key → currency
    tally: Tally = field(default_factory=dict)
    top: list[tuple[list[Any], dict[str, Any]]] = field(default_factory=list)  # (score key, digest)
    findings: list[tuple[bytes, bytes]] = field(default_factory=list)  # (sortable key, outputs.finding_value)
    errors: list[tuple[bytes, bytes]] = field(default_factory=list)  # (sortable key, error as JSON)
    quiet: list[str] = field(default_factory=list)  # first patients (sorted) with nothing to report
    undigested: list[tuple[dict[str, Any], PatientRecord | None, list[Finding], str]] = field(default_factory=list)
    """Patients of ``top`` whose digest (an empty dict there) is still to be made, with their record,
    findings and the language: made by :meth:`make_digests` for the patients still among the top
    once the shard is checked, not for every patient that enters it on the way."""

    def make_digests(self) -> None:
        """Fill in the digests of ``top`` still to be made (:func:`patient_digest`)."""
        for digest, record, fs, lang in self.undigested:
            digest.update(patient_digest(record, fs, lang))
        self.undigested.clear()

    def summary(self) -> dict[str, Any]:
        """What the merge reads of every shard; the digests of ``top`` are apart (:meth:`digest_lines`):
        the merge keeps the first patients of all shards and reads only their digests."""
        return {
            "counts": self.counts.to_dict(), "patients": self.patients,
            "medication_requests": self.medication_requests, "patients_with_findings": self.patients_with_findings,
            "by_rule": self.by_rule, "by_category": self.by_category,
            "savings": {a: {k: {c: f"{v.numerator}/{v.denominator}" for c, v in per.items()} for k, per in keys.items()}
                        for a, keys in self.savings.items()},
            "tally": tally_to_json(self.tally), "top": [k for k, _ in self.top],
            "service_requests": self.service_requests, "quiet": sorted(self.quiet)[:QUIET_PATIENTS],
        }


    def digest_lines(self) -> Iterator[bytes]:
        """One JSON line per patient of ``top``, in its order (the scores are in :meth:`summary`)."""
        self.make_digests()
        return (orjson.dumps(d) + b"\n" for _, d in self.top)


def _patient_score(findings: Sequence[Finding], patient: str) -> list[Any]:
    """Sort key putting the patients a doctor should see first at the front."""
    crit = sum(f.severity.value == "critical" for f in findings)
    warn = sum(f.severity.value == "warning" for f in findings)
    return [-crit, -warn, -len(findings), patient]


@dataclass(slots=True)
class RunShared:
    """What the chunks checked by one process share (see :class:`~checker.fhir_input.SharedReading`
    and :class:`~checker.api.Identities`): each medication, dosage and date text is extracted, and
    each medication identified, once per run instead of once per chunk. Bounded."""

    reading: SharedReading = field(default_factory=SharedReading)
    identities: Identities = field(default_factory=Identities)


def check_chunk(items: list[codec.Item | TypedResource | TypedLines], borrowed: list[codec.Item], settings: Settings, refs: Any,
                result: ShardResult, shared: RunShared | None = None) -> None:
    """Assemble and check one chunk of patients, adding its contribution to ``result``."""
    day = parse_day(settings.as_of)
    shared = shared or RunShared()
    ing = fhir_input.assemble([*items, *borrowed], as_of=day, shared=shared.reading)
    counts = ing.counts
    if borrowed:  # stand-alone Medications lent to this chunk are counted once, in the common shard
        lent = fhir_input.assemble(borrowed, as_of=day).counts
        counts = InputCounts(counts.files - lent.files, counts.resources - lent.resources,
                             counts.checked - lent.checked, counts.ignored - lent.ignored,
                             counts.rejected - lent.rejected)
    with relaxed_gc():  # a bulk job: see relaxed_gc
        identify_records(ing.records, refs, shared.identities)
        report = check_records(ing.records, counts=counts, errors=ing.errors, as_of=day,
                               jurisdiction=settings.jurisdiction, lang=settings.lang,
                               select=settings.select, ignore=settings.ignore, refs=refs)
    result.counts.add(counts)
    result.patients += sum(1 for r in ing.records if r.patient is not None)
    result.medication_requests += sum(len(r.medication_orders) for r in ing.records)
    result.service_requests += sum(len(r.service_orders) for r in ing.records)
    merge(result.tally, tally_records(ing.records, definitions(refs), day))
    by_patient: dict[str | None, list[Finding]] = {}
    counted: dict[tuple[str, str, str], int] = {}  # (rule, category, severity), in order of first sight
    for f in report.findings:
        by_patient.setdefault(f.patient, []).append(f)
        cell = (f.rule, f.category, f.severity.value)
        counted[cell] = counted.get(cell, 0) + 1
        result.findings.append((finding_sort_key(f), finding_value(f.to_json(), cells=finding_row(f))))
    for (rule, category, severity), n in counted.items():
        per_rule = result.by_rule.setdefault(rule, {})
        per_rule[severity] = per_rule.get(severity, 0) + n
        per_category = result.by_category.setdefault(category, {})
        per_category[severity] = per_category.get(severity, 0) + n
    for e in report.errors:
        result.errors.append((error_sort_key(e), orjson.dumps(e.to_dict())))
    records = records_by_patient(ing.records)
    quiet = sorted(r.ref for r in ing.records if r.patient is not None and r.ref and r.ref not in by_patient)
    result.quiet = sorted(result.quiet + quiet)[:QUIET_PATIENTS]
    for patient, fs in by_patient.items():
        result.patients_with_findings += 1
        add_savings(result.savings, fs)  # exact fractions: totals do not depend on the sharding
        score = _patient_score(fs, patient or "~")
        if len(result.top) < settings.top_patients or score < result.top[-1][0]:
            digest: dict[str, Any] = {}  # made by ShardResult.make_digests if the patient stays among the top
            result.undigested.append((digest, records.get(patient), fs, settings.lang))
            result.top.append((score, digest))
            result.top.sort(key=lambda t: t[0])
            del result.top[settings.top_patients:]
    kept = {id(d) for _, d in result.top}  # forget the patients who left the top (bounded memory)
    result.undigested[:] = [u for u in result.undigested if id(u[0]) in kept]


def _packed(sizes: dict[str, list[int]], max_bytes: int, max_patients: int) -> Iterator[list[str]]:
    """The patients of each chunk, in key order: whole patients (``sizes``: the payload bytes of
    each patient's groups of lines) until the chunk holds ``max_bytes`` or ``max_patients``."""
    names: list[str] = []
    size = 0
    for key in sorted(sizes):
        names.append(key)
        size += sum(sizes[key])
        if size >= max_bytes or len(names) >= max_patients:
            yield names
            names, size = [], 0
    if names:
        yield names


def group_key(key: str | None, payload: bytes) -> str:
    """Grouping inside a shard: the patient; items without one are grouped per source file."""
    if key is not None:
        return key
    item = codec.decode(payload)
    if isinstance(item, codec.RawResource):
        return f"— {item.location.file}"  # no patient: "—", as in an error's location (notation, no words)
    return f"(input) {item.location if isinstance(item, InputError) else item.name}"  # type: ignore[union-attr]


def _payload(parts: list[bytes]) -> bytes:
    """The payload of a shard line split at its first four tabs, without its newline."""
    payload = parts[2] if len(parts) == 3 else b"\t".join(parts[2:])
    return payload[:-1] if payload[-1:] == b"\n" else payload


def _position(line: bytes) -> codec.Seq:
    """The position in the input of a shard line (its second field)."""
    a, _, b = line.split(b"\t", 2)[1].partition(b".")
    return int(a), int(b)


def shard_chunks(lines: Iterable[bytes], medications: dict[str, list[tuple[codec.Seq, bytes]]],
                 max_bytes: int = CHUNK_BYTES, max_patients: int = CHUNK_PATIENTS, *, typed: bool = True
                 ) -> Iterator[tuple[list[codec.Item | TypedResource | TypedLines], list[codec.Item]]]:
    """The lines of one shard as chunks of whole patients, each item in input order, with the
    stand-alone Medications the chunk's orders cite (lent from the common shard). ``typed``:
    MedicationRequests come decoded typed where they can (they cite no stand-alone Medication),
    the NDJSON lines of one file that follow each other in a chunk a run at a time (see
    :func:`checker.fhir_input.numbered_lines`), as the reader reads a block of a file.

    A patient key is parsed once per patient, not per line. The partition writes a shard in input
    order, so a chunk's lines are taken in the order of the shard, without a sort; lines that come
    in another order (the Dask engine's shuffle) are sorted by their position in the input."""
    kept: list[bytes] = []  # the shard's lines
    of_line: list[int] = []  # the group of each kept line
    by_key: dict[bytes, int] = {}  # patient key as JSON -> its group
    orphans: dict[str, int] = {}  # lines without a patient: group_key -> its group
    sizes: list[int] = []  # payload bytes of each group
    last_a = last_b = -1
    in_order = True
    for raw_line in lines:
        if not raw_line or raw_line.isspace():
            continue
        tab = raw_line.find(b"\t")
        tab2 = raw_line.find(b"\t", tab + 1)
        key = raw_line[:tab]
        if in_order:
            a_text, _, b_text = raw_line[tab + 1:tab2].partition(b".")
            a, b = int(a_text), int(b_text)
            if a < last_a or a == last_a and b <= last_b:
                in_order = False
            last_a, last_b = a, b
        size = len(raw_line) - tab2 - 1 - (raw_line[-1:] == b"\n")
        if key == b"null":
            name = group_key(None, _payload(raw_line.split(b"\t", 2)))
            group = orphans.get(name)
            if group is None:
                group = orphans[name] = len(sizes)
                sizes.append(0)
        else:
            group = by_key.get(key)  # type: ignore[assignment]
            if group is None:
                group = by_key[key] = len(sizes)
                sizes.append(0)
        sizes[group] += size
        kept.append(raw_line)
        of_line.append(group)
    groups: dict[str, list[int]] = {}  # patient -> its groups (a key written another way is the same patient)
    for key_json, group in by_key.items():
        groups.setdefault(orjson.loads(key_json), []).append(group)
    for name, group in orphans.items():
        groups.setdefault(name, []).append(group)
    chunk_of = [0] * len(sizes)
    chunks: list[list[bytes]] = []
    for names in _packed({name: [sizes[g] for g in gs] for name, gs in groups.items()}, max_bytes, max_patients):
        for name in names:
            for g in groups[name]:
                chunk_of[g] = len(chunks)
        chunks.append([])
    del groups, by_key, orphans
    for raw_line, group in zip(kept, of_line):
        chunks[chunk_of[group]].append(raw_line)
    del kept, of_line
    chunks.reverse()  # handed out from the end: each chunk's lines are let go once checked
    while chunks:
        chunk = chunks.pop()
        if not in_order:
            chunk.sort(key=_position)
        items = _chunk_items(chunk, typed)
        del chunk
        wanted: dict[str, None] = {}
        if medications:
            for it in items:
                if isinstance(it, codec.RawResource) and it.resource_type == "MedicationRequest":
                    for ref in codec.medication_refs(it):
                        if ref in medications:
                            wanted[ref] = None
        lent = sorted({entry for r in wanted for entry in medications[r]})  # input order, like a single run
        yield items, [codec.decode(p) for _, p in lent]


def _chunk_items(chunk: list[bytes], typed: bool) -> list[codec.Item | TypedResource | TypedLines]:
    """The items of a chunk's shard lines (in input order): what :func:`codec.decode_items` makes of
    each line, the NDJSON lines of one file that follow each other read together."""
    items: list[codec.Item | TypedResource | TypedLines] = []
    run: list[bytes] = []
    numbers: list[int] = []
    run_file = b""

    def flush() -> None:
        where = codec.file_name(run_file)
        if typed:
            items.extend(fhir_input.numbered_lines(run, where, numbers))
        else:
            for line, number in zip(run, numbers):
                items.extend(fhir_input.ndjson_line_items(line, where, number))

    for raw_line in chunk:
        parts = raw_line.split(b"\t", 4)  # a payload written by codec.encode holds no tab (JSON text)
        if len(parts) == 5 and parts[2][:1] == b"n":  # an NDJSON line copied as it is
            if parts[3] != run_file:
                if run:
                    flush()
                    run, numbers = [], []
                run_file = parts[3]
            line = parts[4]
            run.append(line[:-1] if line[-1:] == b"\n" else line)
            numbers.append(int(parts[2][1:]))
            continue
        if run:
            flush()
            run, numbers = [], []
        items.extend(codec.decode_items(_payload(parts), typed))
    if run:
        flush()
    return items


def check_lines(lines: Iterable[bytes], medications: dict[str, list[tuple[codec.Seq, bytes]]], settings: Settings,
                refs: Any, shared: RunShared | None = None) -> ShardResult:
    """Check the lines of one shard (see :mod:`checker.audit.codec` for their form); ``shared``: what
    the chunks of several shards checked by one process share."""
    result = ShardResult()
    shared = shared or RunShared()
    with relaxed_gc():  # decoding and assembling the chunks is bulk work too
        for items, borrowed in shard_chunks(lines, medications):
            check_chunk(items, borrowed, settings, refs, result, shared)
    result.findings.sort(key=lambda t: t[0])
    result.errors.sort(key=lambda t: t[0])
    result.make_digests()
    return result


def load_medications(lines: Iterable[bytes]) -> dict[str, list[tuple[codec.Seq, bytes]]]:
    """Stand-alone Medication resources under every reference that can cite them (several files
    may use the same local id: all are kept, in input order)."""
    out: dict[str, list[tuple[codec.Seq, bytes]]] = {}
    for raw_line in lines:
        if not raw_line.strip():
            continue
        _, seq, payload = codec.split(raw_line)
        item = codec.decode(payload)
        if isinstance(item, codec.RawResource):
            for k in codec.medication_keys(item):
                out.setdefault(k, []).append((seq, payload))
    return out


def write_result(result: ShardResult, result_dir: Path, name: str) -> None:
    """Write a shard's result files; the summary file is written last and marks completion."""
    atomic_lines(result_dir / f"{name}.findings.ndjson", (k + b"\t" + v + b"\n" for k, v in result.findings))
    atomic_lines(result_dir / f"{name}.errors.ndjson", (k + b"\t" + v + b"\n" for k, v in result.errors))
    atomic_lines(result_dir / f"{name}.top.ndjson", result.digest_lines())
    write_atomic(result_dir / f"{name}.json", orjson.dumps(result.summary()))


def iter_sorted(path: Path, line_feed: bool = False) -> Iterator[tuple[bytes, bytes]]:
    """Read back a sorted result file written by :func:`write_result` (``key\\tvalue`` lines, the
    key :func:`sortable`): (key, value) pairs, nothing parsed; ``line_feed``: each value keeps its
    line's line feed (one copy less per line)."""
    with path.open("rb", buffering=1 << 20) as f:
        if line_feed:
            for raw_line in f:
                key, _, value = raw_line.partition(b"\t")
                yield key, value
            return
        for raw_line in f:
            key, _, value = raw_line.rstrip(b"\n").partition(b"\t")
            yield key, value


def merge_sorted(paths: Sequence[Path], line_feed: bool = False) -> Iterable[bytes]:
    """Values of several sorted result files in global order (streaming k-way merge by key bytes;
    equal keys in the order of ``paths``); ``line_feed``: see :func:`iter_sorted`."""
    streams = [iter_sorted(p, line_feed) for p in paths]
    for _, value in heapq.merge(*streams, key=itemgetter(0)):
        yield value
