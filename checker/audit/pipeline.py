"""The batch audit: stream the inputs, partition by patient to shards on disk, check the shards
in parallel, merge the results into the output files.

Phases (each resumable): ``partition`` (one pass over the inputs; ``state.json`` +
``partition.done`` mark it complete), ``check`` (one result set per shard; a shard's summary
file, written last and atomically, marks it complete), ``merge`` (outputs written atomically).
"""

from __future__ import annotations

import os
import re
import shutil
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from checker.api import parse_day
from checker.audit import codec
from checker.audit.timeline import span
from checker.audit.worker import RunShared, Settings, check_lines, load_medications, write_result
from checker.fhir_input import (FILE_SUFFIXES, MAX_DECOMPRESSED, MAX_EXPANSION, NdjsonLines, RawResource,
                                display_name, iter_raw, ndjson_line_items)
from checker.findings import Message
from checker.outputs import write_atomic
from checker.referentials import default_referentials
from checker.referentials.indicators import REF_ID
from checker.registry import all_rules

WORK_DIR = ".pertinence-audit"
STATE_VERSION = 3  # 2: shard lines copied from NDJSON lines, findings kept with their CSV rows; 3: top digests apart, rows raw
COMMON = "common"
MEDICATIONS = "medications"
DEFAULT_MEMORY = "1G"
_NDJSON = (".ndjson", ".jsonl")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
GZIP_RATIO = 6  # expected expansion of gzip-compressed FHIR JSON
WORKER_BASE = 300 << 20  # interpreter, rules and referentials of one worker process
EXPANSION = 12  # memory of parsed + assembled + checked resources per byte of raw JSON


class AuditError(Exception):
    """A problem with the audit's inputs or options (message meant for the user); ``code``, when
    set, words it in the run's language (catalogue table ``input_error``)."""

    code: Message | None = None


def parse_size(text: str | int) -> int:
    """``"512M"``, ``"1G"``, ``"800MB"`` or a number of bytes."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise AuditError(f"not a memory size: {text!r} (examples: 512M, 2G)")
    factor = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[m.group(2).lower()]
    return int(float(m.group(1)) * factor)


@dataclass(slots=True)
class AuditOptions:
    """How to run an audit (see ``pertinence audit --help``)."""

    out: Path
    jobs: int = 2
    memory: int = field(default_factory=lambda: parse_size(DEFAULT_MEMORY))
    resume: bool = False
    engine: str = "local"
    scheduler: str | None = None
    as_of: str | None = None
    jurisdiction: str = "fr"
    lang: str = "fr"
    select: tuple[str, ...] | None = None
    ignore: tuple[str, ...] | None = None
    progress: bool | None = None  # None: a progress bar only on an interactive terminal outside CI
    top_patients: int = 200
    shards: int | None = None  # number of patient shards; default: from the input size and memory budget
    on_shard_done: Callable[[str], None] | None = None  # called after each completed shard
    max_decompressed: int | None = None  # bytes one compressed input may expand to (None: fhir_input's default)
    max_expansion: float | None = None  # expansion ratio of a compressed input (None: fhir_input's default)


def expand_inputs(inputs: Sequence[str | Path], exclude: Path | None = None) -> list[str]:
    """Every input file, in a stable order (directories searched recursively, like ``check``),
    leaving out anything under ``exclude`` (the audit's own output folder)."""
    skip = exclude.resolve() if exclude is not None else None

    out: list[str] = []
    for item in inputs:
        name = str(item)
        if name == "-":
            out.append(name)
            continue
        path = Path(name)
        if path.is_dir():
            for p in sorted(path.rglob("*")):
                low = p.name.lower().removesuffix(".gz")
                if not p.is_dir() and low.endswith(FILE_SUFFIXES) and not low.startswith(".") \
                        and WORK_DIR not in p.parts and not (skip and p.resolve().is_relative_to(skip)):
                    out.append(str(p))
        elif path.is_file():
            out.append(name)
        else:
            raise AuditError(f"no such file or directory: {name}")
    return out


def _stat(name: str) -> os.stat_result:
    """The file's status, or its link's when it is a dangling link (read later as an input error)."""
    try:
        return os.stat(name)
    except FileNotFoundError:
        return os.lstat(name)


def _size(name: str) -> int:
    return _stat(name).st_size if os.path.exists(name) else 0


def input_bytes(files: Sequence[str]) -> int:
    """Estimated uncompressed size of the inputs."""
    total = 0
    for f in files:
        if f == "-":
            continue
        size = _size(f)
        total += size * GZIP_RATIO if f.lower().endswith(".gz") else size
    return total


def shard_count(total_bytes: int, memory: int, jobs: int) -> int:
    """How many shards keep each worker's share of the input under its part of the budget."""
    per_worker = max(memory // (max(jobs, 1) + 1) - WORKER_BASE, 16 << 20)
    target = max(per_worker // 3, 4 << 20)  # raw bytes of one shard held by a worker
    return max(1, min(4096, -(-total_bytes // target)))


def shard_of(key: str, n: int) -> int:
    """Stable shard number of a patient key (same in every process and engine)."""
    return zlib.crc32(key.encode("utf-8")) % n


def shard_name(i: int) -> str:
    return f"{i:05d}"


def is_ndjson(name: str) -> bool:
    return name.lower().removesuffix(".gz").endswith(_NDJSON)


def route_file(index: int, name: str, n_shards: int, max_decompressed: int | None = None,
               max_expansion: float | None = None, *, fast: bool = True) -> Iterator[tuple[str, bytes, bool]]:
    """(shard name, shard line, is a stand-alone Medication) for every item of one input file.

    ``fast``: an NDJSON line whose patient :func:`codec.line_patient` tells is copied to its shard
    unparsed (the worker reads it: the partition does not parse it, the line is parsed once); any
    other line is read here and its items routed one by one, as every line is without ``fast``."""
    ndjson = is_ndjson(name)
    items: Iterable[codec.Item | NdjsonLines] = iter_raw(
        [name], max_decompressed=MAX_DECOMPRESSED if max_decompressed is None else max_decompressed,
        max_expansion=MAX_EXPANSION if max_expansion is None else max_expansion, lines=ndjson and fast)
    aliases: dict[str, str] = {}
    if not ndjson:  # a Bundle or single resource: resolve urn:uuid patients within the file
        items = list(items)
        aliases = codec.patient_aliases(items)  # type: ignore[arg-type]  # no NdjsonLines here
    j = 0
    where_json = b""
    routes: dict[str, tuple[str, bytes]] = {}  # patient key as written -> its shard and its key as JSON
    last: str | None = None
    route: tuple[str, bytes] | None = None
    line_patient = codec.line_patient
    for item in items:
        if type(item) is NdjsonLines:
            where = item.where
            if not where_json:  # one file: one name
                where_json = orjson.dumps(where)
            number = item.first - 1
            for line in item.lines:
                number += 1
                if not line or line.isspace():
                    continue
                written = line_patient(line, where)
                if written is None:  # read here
                    for found in ndjson_line_items(line, where, number):
                        yield _routed(found, (index, j), n_shards, aliases)
                        j += 1
                    continue
                if written != last:  # the same patient as the line before: the same route
                    route = routes.get(written)
                    last = written
                if route is None:
                    if len(routes) >= ROUTES:
                        routes.clear()
                    key = codec.normalise_patient_key(written, aliases)
                    route = routes[written] = shard_name(shard_of(key, n_shards)), orjson.dumps(key)  # type: ignore[arg-type]
                # codec.line with the payload of codec.encode_line, written at once
                yield route[0], b"%b\t%d.%d\tn%d\t%b\t%b\n" % (route[1], index, j, number, where_json, line), False
                j += 1
            continue
        yield _routed(item, (index, j), n_shards, aliases)  # type: ignore[arg-type]  # not NdjsonLines here
        j += 1


ROUTES = 100_000
"""Patient keys as written whose shard :func:`route_file` remembers within one file (emptied when full)."""


def _routed(item: codec.Item, seq: codec.Seq, n_shards: int, aliases: dict[str, str]) -> tuple[str, bytes, bool]:
    """An item read here: its shard, its shard line, and whether it is a stand-alone Medication."""
    key = codec.normalise_patient_key(item.patient_key(), aliases) if isinstance(item, RawResource) else None
    target = COMMON if key is None else shard_name(shard_of(key, n_shards))
    is_med = key is None and isinstance(item, RawResource) and item.resource_type == "Medication"
    return target, codec.line(key, seq, codec.encode(item)), is_med


# ------------------------------------------------------------------------------------------------
# state and resume
# ------------------------------------------------------------------------------------------------


def _fingerprint(files: Sequence[str]) -> list[list[Any]]:
    out: list[list[Any]] = []
    for f in files:
        if f == "-":
            out.append([f, None, None])
        else:
            st = _stat(f)
            out.append([display_name(os.path.abspath(f)), st.st_size, st.st_mtime_ns])
    return out


def _prepare_state(files: list[str], opts: AuditOptions, work: Path) -> dict[str, Any]:
    """Load a resumable state or start a new one (wiping the work folder)."""
    state_path = work / "state.json"
    fp = _fingerprint(files)
    if opts.resume and state_path.is_file():
        state = orjson.loads(state_path.read_bytes())
        same = state.get("version") == STATE_VERSION and state.get("inputs") == fp
        s = state.get("settings", {})
        asked = {"jurisdiction": opts.jurisdiction, "lang": opts.lang,
                 "select": list(opts.select) if opts.select else None,
                 "ignore": list(opts.ignore) if opts.ignore else None, "top_patients": opts.top_patients}
        same = same and all(s.get(k) == v for k, v in asked.items())
        same = same and (opts.as_of is None or s.get("as_of") == _as_of(opts.as_of))
        if same and "-" not in files:
            return state
    if work.exists():
        shutil.rmtree(work)
    (work / "shards").mkdir(parents=True)
    (work / "results").mkdir(parents=True)
    settings = Settings(_as_of(opts.as_of), opts.jurisdiction, opts.lang, opts.select, opts.ignore, opts.top_patients)
    state = {"version": STATE_VERSION, "inputs": fp, "settings": settings.to_dict(),
             "n_shards": opts.shards or shard_count(input_bytes(files), opts.memory, opts.jobs)}
    write_atomic(state_path, orjson.dumps(state))
    return state


def _as_of(value: str | None) -> str:
    return (parse_day(value) if value else date.today()).isoformat()


def settings_of(state: dict[str, Any]) -> Settings:
    s = state["settings"]
    return Settings(s["as_of"], s["jurisdiction"], s["lang"], tuple(s["select"]) if s["select"] else None,
                    tuple(s["ignore"]) if s["ignore"] else None, s["top_patients"])


# ------------------------------------------------------------------------------------------------
# local engine
# ------------------------------------------------------------------------------------------------


def partition_local(files: list[str], n_shards: int, work: Path, progress: Any,
                    max_decompressed: int | None = None, max_expansion: float | None = None) -> None:
    """Stream every input file once, appending each item to its patient's shard."""
    _route_into(work / "shards", list(enumerate(files)), n_shards, progress, max_decompressed, max_expansion)
    write_atomic(work / "partition.done", b"ok\n")


def _route_into(folder: Path, files: list[tuple[int, str]], n_shards: int, progress: Any,
                max_decompressed: int | None, max_expansion: float | None) -> None:
    """Route the items of ``files`` (each with its place among all inputs) into shard files of ``folder``."""
    handles: dict[str, BinaryIO] = {}
    try:
        for i, name in files:
            size = 0 if name == "-" else _size(name)
            count = 0
            for target, line, is_med in route_file(i, name, n_shards, max_decompressed, max_expansion):
                fh = handles.get(target)
                if fh is None:
                    fh = handles[target] = open(folder / f"{target}.ndjson", "wb", buffering=1 << 16)
                fh.write(line)
                if is_med:
                    mh = handles.get(MEDICATIONS)
                    if mh is None:
                        mh = handles[MEDICATIONS] = open(folder / f"{MEDICATIONS}.ndjson", "wb", buffering=1 << 16)
                    mh.write(line)
                count += 1
                if count % 2000 == 0:
                    progress.items(2000)
            progress.items(count % 2000)
            progress.bytes_done(size)
    finally:
        for fh in handles.values():
            fh.close()


class _Tally:
    """Progress of a partition part in a worker process: counted, reported when the part ends."""

    def __init__(self) -> None:
        self.count = self.size = 0

    def items(self, n: int) -> None:
        self.count += n

    def bytes_done(self, n: int) -> None:
        self.size += n


PART = "part"  # shards/partNNN/: the shard files written by one part of a parallel partition


def partition_part(work: str, part: int, files: list[tuple[int, str]], n_shards: int,
                   limits: tuple[int | None, float | None] = (None, None)) -> tuple[int, int]:
    """Route some input files into shard files of their own (``shards/partNNN/``), in a worker
    process; returns the items and bytes read. Every item carries its place in the input (file
    index, item number), by which a shard's lines are put back in order, so that the parts of a
    shard read one after the other give the same chunks as one shard file."""
    with span("partition-part", str(part)):
        folder = Path(work) / "shards" / f"{PART}{part:03d}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        tally = _Tally()
        _route_into(folder, files, n_shards, tally, *limits)
    return tally.count, tally.size


def file_groups(files: list[str], n: int) -> list[list[tuple[int, str]]]:
    """``files`` with their index, in ``n`` groups of about equal size (largest first to the
    smallest group), each in input order; empty groups left out."""
    groups: list[list[tuple[int, str]]] = [[] for _ in range(max(1, n))]
    sizes = [0] * len(groups)
    for i, name in sorted(enumerate(files), key=lambda t: (-_size(t[1]), t[0])):
        g = sizes.index(min(sizes))
        groups[g].append((i, name))
        sizes[g] += max(_size(name), 1)
    return [sorted(g) for g in groups if g]


def partition_parallel(files: list[str], n_shards: int, work: Path, pool: Any, jobs: int, progress: Any,
                       max_decompressed: int | None = None, max_expansion: float | None = None) -> None:
    """:func:`partition_local` by the worker processes of ``pool``, several input files at once
    (no standard input): each group of files goes to shard files of its own, read together by
    :func:`shard_files`."""
    from concurrent.futures import as_completed

    shards = work / "shards"
    for old in shards.iterdir():  # what an interrupted partition left
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    groups = file_groups(files, min(len(files), 2 * jobs))
    futures = [pool.submit(partition_part, str(work), g, group, n_shards, (max_decompressed, max_expansion))
               for g, group in enumerate(groups)]
    try:
        for fut in as_completed(futures):
            count, size = fut.result()
            progress.items(count)
            progress.bytes_done(size)
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise
    write_atomic(work / "partition.done", b"ok\n")


def shard_files(work: Path, name: str) -> list[Path]:
    """The files holding a shard's lines: ``shards/NAME.ndjson`` and the parts' (in a stable order)."""
    shards = work / "shards"
    found = [shards / f"{name}.ndjson"] + sorted(shards.glob(f"{PART}*/{name}.ndjson"))
    return [p for p in found if p.is_file()]


_WORKER_REFS: Any = None
_WORKER_SHARED: RunShared | None = None  # what the shards checked by this process share (bounded)
_WORKER_MEDS: dict[tuple[str, ...], dict[str, list[tuple[codec.Seq, bytes]]]] = {}


def init_worker() -> None:
    """Load the rules and every referential they use, once per worker process."""
    global _WORKER_REFS, _WORKER_SHARED
    with span("worker-init"):
        _init_worker()


def _init_worker() -> None:
    global _WORKER_REFS, _WORKER_SHARED
    _WORKER_SHARED = RunShared()
    refs = default_referentials()
    for ref_id in sorted({r for rule in all_rules() for r in rule.referentials} | {REF_ID}):
        try:
            if refs.has(ref_id):
                refs.get(ref_id)
        except Exception:  # noqa: BLE001 — reported with its real message when a shard uses it
            pass
    _WORKER_REFS = refs


def _medications(paths: list[Path]) -> dict[str, list[tuple[codec.Seq, bytes]]]:
    key = tuple(map(str, paths))
    if key not in _WORKER_MEDS:
        _WORKER_MEDS.clear()
        lines: list[bytes] = []
        for p in paths:
            with p.open("rb") as f:
                lines.extend(f)
        _WORKER_MEDS[key] = load_medications(lines)  # entries sorted by input place where lent
    return _WORKER_MEDS[key]


def _lines(paths: list[Path]) -> Iterator[bytes]:
    for p in paths:
        with p.open("rb") as f:
            yield from f


def run_shard(work: str, name: str, settings: Settings) -> tuple[str, int]:
    """Check one shard file and write its results (runs in a worker process)."""
    if _WORKER_REFS is None:
        init_worker()
    w = Path(work)
    with span("shard", name):
        meds = _medications(shard_files(w, MEDICATIONS))
        result = check_lines(_lines(shard_files(w, name)), meds, settings, _WORKER_REFS, _WORKER_SHARED)
        write_result(result, w / "results", name)
    return name, result.counts.resources


def pending_shards(work: Path) -> list[str]:
    """The shards not checked yet, largest first (the last ones to finish are then the small ones)."""
    sizes: dict[str, int] = {}
    for p in [*(work / "shards").glob("*.ndjson"), *(work / "shards").glob(f"{PART}*/*.ndjson")]:
        name = p.name[: -len(".ndjson")]
        if name != MEDICATIONS:
            sizes[name] = sizes.get(name, 0) + p.stat().st_size
    names = [n for n in sorted(sizes) if not (work / "results" / f"{n}.json").is_file()]
    return sorted(names, key=lambda n: -sizes[n])


def start_pool(jobs: int) -> Any:
    """The worker processes of a local audit (each loads the rules and referentials once)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("forkserver"),
                               initializer=init_worker)


def check_local(work: Path, settings: Settings, jobs: int, progress: Any,
                on_done: Callable[[str], None] | None, pool: Any = None) -> None:
    """Check every pending shard, in a pool of ``jobs`` worker processes (in-process for 1);
    ``pool``: the workers already started (for the partition), else a pool is made here."""
    todo = pending_shards(work)
    progress.start_check(len(todo))
    if pool is None and (jobs <= 1 or len(todo) <= 1):
        for name in todo:
            _, n = run_shard(str(work), name, settings)
            progress.shard_done(n)
            if on_done:
                on_done(name)
        return
    from concurrent.futures import as_completed

    if pool is None:
        with start_pool(jobs) as own:
            return check_local(work, settings, jobs, progress, on_done, own)
    futures = [pool.submit(run_shard, str(work), name, settings) for name in todo]
    try:
        for fut in as_completed(futures):
            name, n = fut.result()
            progress.shard_done(n)
            if on_done:
                on_done(name)
    except BaseException:
        for fut in futures:
            fut.cancel()
        raise
