"""Inputs to raw resources: paths, folders, files, standard input, gzip (bounded), NDJSON lines, JSON text,
dicts and fhir.resources models."""

from __future__ import annotations

import gzip
import io
import sys
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, Literal, overload

import orjson

from checker.fhir_input.decoding import _without_duplicates, may_have_duplicate_keys, not_fhir_kind
from checker.fhir_input.errors import InputNotFound, _err
from checker.fhir_input.raw import FileMark, NdjsonLines, RawResource, TypedLines, TypedResource
from checker.fhir_input.typed import PATIENT_DECODER, decode_line, decode_run
from checker.fhir_input.walking import _from_xml, _walk
from checker.findings import InputError, Message, Word
from checker.findings import Quantity as Measure
from checker.model import SourceLocation

FILE_SUFFIXES = (".json", ".ndjson", ".jsonl", ".xml")


_BOM = b"\xef\xbb\xbf"


MAX_DECOMPRESSED = 2 << 30
"""Default limit of the bytes one compressed input may expand to (``--max-decompressed``)."""


MAX_EXPANSION = 500
"""Default limit of the expansion ratio of a compressed input (``--max-expansion``): FHIR JSON
compresses some 5 to 50 times; runs of one byte (a decompression bomb) about 1,000 times. Checked once
:data:`EXPANSION_FROM` bytes are out, so that small files are never refused for it."""


EXPANSION_FROM = 64 << 20


MAX_LINE = 64 << 20
"""Longest NDJSON line read (one resource per line; a longer line is refused and skipped)."""


CHUNK = 1 << 20  # bytes read at a time


RUN_LINES = 256
"""Most lines decoded typed in one run (see :func:`_typed_block`)."""


@overload
def iter_raw(inputs: Any, *, max_decompressed: int = MAX_DECOMPRESSED, max_expansion: float = MAX_EXPANSION,
             typed: Literal[False] = False, lines: Literal[False] = False) -> Iterator[RawResource | InputError | FileMark]: ...


@overload
def iter_raw(inputs: Any, *, max_decompressed: int = MAX_DECOMPRESSED, max_expansion: float = MAX_EXPANSION,
             typed: bool, lines: Literal[False] = False
             ) -> Iterator[RawResource | TypedLines | TypedResource | InputError | FileMark]: ...


@overload
def iter_raw(inputs: Any, *, max_decompressed: int = MAX_DECOMPRESSED, max_expansion: float = MAX_EXPANSION,
             typed: Literal[False] = False, lines: bool) -> Iterator[RawResource | NdjsonLines | InputError | FileMark]: ...


def iter_raw(inputs: Any, *, max_decompressed: int = MAX_DECOMPRESSED, max_expansion: float = MAX_EXPANSION,
             typed: bool = False, lines: bool = False
             ) -> Iterator[RawResource | TypedLines | TypedResource | NdjsonLines | InputError | FileMark]:
    """Stream raw resources, input errors and file marks from any accepted kind of input.

    ``typed``: NDJSON lines that :func:`~checker.fhir_input.typed.decode_line` decodes come as
    :class:`~checker.fhir_input.raw.TypedLines` (runs of them) and :class:`~checker.fhir_input.raw.TypedResource`
    items, which only :func:`~checker.fhir_input.assemble` reads (it extracts them without building
    their dicts, or reads them as the other lines).
    ``lines``: the NDJSON lines come unparsed, a block at a time, as :class:`~checker.fhir_input.raw.NdjsonLines`
    (the audit's partition routes most lines without parsing them; :func:`ndjson_line_items` reads
    one as the other lines are read); the limits and the errors of the file itself stand."""
    items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    limits = (max_decompressed, max_expansion, typed, lines)
    for item in items:
        yield from _iter_one(item, limits)


_Limits = tuple[int, float, bool, bool]
"""Bytes a compressed input may expand to, its expansion ratio, whether NDJSON lines are decoded
typed, and whether they come unparsed."""


def _iter_one(item: Any, limits: _Limits = (MAX_DECOMPRESSED, MAX_EXPANSION, False, False)
              ) -> Iterator[RawResource | TypedLines | TypedResource | NdjsonLines | InputError | FileMark]:
    if isinstance(item, dict):
        for found in _walk(item, SourceLocation(file="<dict>"), depth=0):
            if isinstance(found, RawResource):
                found.json_native = False
            yield found
    elif isinstance(item, (bytes, bytearray)):
        yield from _from_bytes(bytes(item), "<bytes>")
    elif isinstance(item, str) and item.lstrip()[:1] in ("{", "["):
        yield from _from_bytes(item.encode("utf-8"), "<text>")
    elif isinstance(item, (str, Path)):
        if not str(item).strip():
            raise InputNotFound(Message("empty-path"))
        yield from _from_path(str(item), limits)
    elif hasattr(item, "model_dump") and hasattr(item, "get_resource_type"):
        data = item.model_dump(mode="json", by_alias=True, exclude_none=True)
        yield from _walk(data, SourceLocation(file=f"<{item.get_resource_type()} model>"), depth=0)
    else:
        yield _err("<input>", "unreadable-type", type=type(item).__name__)


def _from_path(name: str, limits: _Limits
               ) -> Iterator[RawResource | TypedLines | TypedResource | NdjsonLines | InputError | FileMark]:
    if name == "-":
        yield FileMark("<stdin>")
        yield from _from_stream(sys.stdin.buffer, "<stdin>", ndjson=False, limits=limits)
        return
    path = Path(name)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if _is_fhir_file(p) and not p.is_dir())
        for p in files:
            if not p.is_file():  # a dangling link, a socket…: named, never skipped in silence
                yield FileMark(display_name(str(p)))
                yield _err(display_name(str(p)), "not-regular-file")
                continue
            yield from _from_file(p, limits)
    elif path.is_file():
        yield from _from_file(path, limits)
    elif path.is_symlink() or path.exists():
        yield FileMark(display_name(name))
        yield _err(display_name(name), "not-regular-file")
    else:
        raise InputNotFound(Message("no-such-input", {"name": name}))


def _is_fhir_file(path: Path) -> bool:
    name = path.name.lower()
    name = name.removesuffix(".gz")
    return name.endswith(FILE_SUFFIXES) and not name.startswith(".")


def _from_file(path: Path, limits: _Limits
               ) -> Iterator[RawResource | TypedLines | TypedResource | NdjsonLines | InputError | FileMark]:
    where = display_name(str(path))  # a name that is not UTF-8 is shown (and serialised) escaped
    yield FileMark(where)
    lower = path.name.lower().removesuffix(".gz")
    try:
        f = path.open("rb")
    except OSError as exc:
        yield _err(where, "cannot-read", error=str(exc.strerror or exc))
        return
    with f:
        yield from _from_stream(f, where, ndjson=lower.endswith((".ndjson", ".jsonl")), limits=limits,
                                gzip_name=path.name.lower().endswith(".gz"))


class _TooBig(Exception):
    """A compressed input expands past the limit."""

    def __init__(self, message: Message) -> None:
        super().__init__(message.text("en", "input_error"))
        self.message = message


def _chunks(raw: BinaryIO, where: str, limits: _Limits, gzip_name: bool) -> Iterator[bytes]:
    """The input's bytes in blocks of at most :data:`CHUNK`, decompressed when gzip (told by its magic
    bytes or its name); raises :class:`_TooBig` past the limits (decompressed bytes, expansion ratio)
    and ``OSError``/``EOFError``/``zlib.error`` on a damaged stream."""
    max_decompressed, max_expansion = limits[0], limits[1]
    head = raw.read(2)
    if head == b"\x1f\x8b" or (gzip_name and head):
        counted = _Prefixed(head, raw)
        stream: BinaryIO = gzip.GzipFile(fileobj=counted, mode="rb")  # type: ignore[assignment]
        total = 0
        while block := stream.read(CHUNK):
            total += len(block)
            if total > max_decompressed:
                raise _TooBig(Message("too-big", {"limit": _size(max_decompressed)}))
            if total > EXPANSION_FROM and total > max_expansion * counted.consumed:
                raise _TooBig(Message("bomb", {"ratio": float(max_expansion), "total": _size(total),
                                               "consumed": _size(counted.consumed)}))
            yield block
        return
    if head:
        yield head + raw.read(CHUNK)
    while block := raw.read(CHUNK):
        yield block


class _Prefixed(io.RawIOBase):
    """A binary stream with bytes already read put back in front; counts the bytes it gives."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head, self._rest = head, rest
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n], self._head = self._head[:n], self._head[n:]
            self.consumed += n
            return n
        data = self._rest.read(len(b))
        b[: len(data)] = data
        self.consumed += len(data)
        return len(data)


def _size(n: int) -> Measure:
    """A size in bytes, KiB, MiB or GiB (four significant digits), the number worded CLDR."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= factor:
            text = f"{n / factor:.4g}"
            return Measure(float(text), unit, len(text.split(".")[1]) if "." in text else 0)
    return Measure(n, "B")


def _from_stream(raw: BinaryIO, where: str, *, ndjson: bool, limits: _Limits,
                 gzip_name: bool = False) -> Iterator[RawResource | TypedLines | TypedResource | NdjsonLines | InputError]:
    """Read one input in bounded memory: NDJSON line by line (blank lines skipped at C speed), other
    JSON held whole once its first byte says it can be JSON or XML (blank space before it dropped)."""
    chunks = _chunks(raw, where, limits, gzip_name)
    try:
        if ndjson:
            yield from _ndjson_chunks(chunks, where, typed=limits[2], unparsed=limits[3])
            return
        kept: list[bytes] = []
        for block in chunks:
            if not kept:
                block = block.lstrip() if not block.startswith(_BOM) else _BOM + block[len(_BOM):].lstrip()
                if not block or block == _BOM:
                    continue
                first = block[len(_BOM):][:1] if block.startswith(_BOM) else block[:1]
                if first < b" " or first >= b"\x7f":  # binary (e.g. NUL bytes): no JSON, XML or text
                    kind = not_fhir_kind(block[:4096])
                    yield _err(where, "not-fhir", kind=Word("input_kind", kind)) if kind else \
                        _err(where, "binary-start", byte=repr(first))
                    return
            kept.append(block)
    except _TooBig as exc:
        yield InputError.coded(where, exc.message)
        return
    except (OSError, EOFError, zlib.error) as exc:
        yield _err(where, "cannot-read", error=str(exc))
        return
    data = b"".join(kept)
    del kept
    yield from _from_bytes(data, where)


def _ndjson_chunks(chunks: Iterable[bytes], where: str, *, typed: bool = False, unparsed: bool = False
                   ) -> Iterator[RawResource | TypedLines | TypedResource | NdjsonLines | InputError]:
    """NDJSON lines from blocks of bytes: a line longer than :data:`MAX_LINE` is refused (and skipped
    to the next newline) without being held; runs of blank lines cost a count, not a parse each.
    ``typed``: runs of lines that decode typed are yielded as one :class:`~checker.fhir_input.raw.TypedLines`
    each (a line on its own as a :class:`~checker.fhir_input.raw.TypedResource`), any other line as usual;
    ``unparsed``: the lines of each block as one :class:`~checker.fhir_input.raw.NdjsonLines`."""
    number = 0  # lines completed so far
    parts: list[bytes] = []  # the line being read, in pieces
    held = 0
    skipping = False
    first = True
    for block in chunks:
        if first:
            first = False
            block = block.removeprefix(_BOM)
        if skipping:
            cut = block.find(b"\n")
            if cut < 0:
                continue
            number += 1
            block = block[cut + 1:]
            skipping = False
        if not parts and (not block or block.isspace()):  # blank lines only: counted at C speed
            number += block.count(b"\n")
            continue
        lines = block.split(b"\n")
        tail = lines.pop()
        if parts and lines:  # the line begun in an earlier block
            parts.append(lines[0])
            lines[0] = b"".join(parts)
            parts, held = [], 0
        if typed and b'"MedicationRequest"' in block:  # the hot path of bulk exports
            escaped = b"\\" in block or bool(lines) and b"\\" in lines[0]
            yield from (_lines if escaped else _typed_block)(lines, where, number)
            number += len(lines)
        elif typed and b'"Patient"' in block and b"\\" not in block and not (lines and b"\\" in lines[0]):
            yield from _typed_block(lines, where, number, b'"Patient"', PATIENT_DECODER)
            number += len(lines)
        elif unparsed:  # the audit's partition: lines as they are
            if lines:
                yield NdjsonLines(lines, where, number + 1)
                number += len(lines)
        else:  # no order or patient in the block: every line as a dict
            for line in lines:
                number += 1
                if line.strip():
                    yield from _ndjson_line(line, where, number)
        if tail:
            parts.append(tail)
            held += len(tail)
            if held > MAX_LINE:
                yield _err(f"{where}:{number + 1}", "line-too-long", limit=_size(MAX_LINE))
                parts, held, skipping = [], 0, True
    if parts:
        line = b"".join(parts)
        if line.strip():
            if unparsed and not typed:
                yield NdjsonLines([line], where, number + 1)
            else:
                yield from (_typed_line if typed else _ndjson_line)(line, where, number + 1)


def display_name(name: str) -> str:
    """A file name as shown in errors: bytes that are not UTF-8 written as ``\\xNN`` escapes."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _from_bytes(data: bytes, where: str) -> Iterator[RawResource | TypedLines | TypedResource | InputError]:
    data = data.removeprefix(_BOM)
    head = data.lstrip()[:1]
    if head == b"<":
        yield from _from_xml(data, where)
        return
    if not data.strip():
        yield _err(where, "empty")
        return
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        if _looks_like_ndjson(data):
            yield from _from_ndjson(data, where)
            return
        kind = "" if data.lstrip()[:4] == b"curl" else not_fhir_kind(data)
        if kind:
            yield _err(where, "not-fhir", kind=Word("input_kind", kind))
            return
        hint = (Message("shell-hint"),) if data.lstrip()[:4] == b"curl" else ()
        yield _err(where, "invalid-json", None, *hint, error=str(exc))
        return
    if may_have_duplicate_keys(data, parsed):
        parsed = _without_duplicates(data, parsed)
    yield from _walk(parsed, SourceLocation(file=where), depth=0)


def _looks_like_ndjson(data: bytes) -> bool:
    lines = [ln for ln in data.splitlines()[:3] if ln.strip()]
    if len(lines) < 2:
        return False
    try:
        return all(isinstance(orjson.loads(ln), dict) for ln in lines[:2])
    except orjson.JSONDecodeError:
        return False


def _from_ndjson(data: bytes, where: str) -> Iterator[RawResource | TypedLines | TypedResource | InputError]:
    data = data.removeprefix(_BOM)
    for item in _ndjson_chunks([data], where):
        assert not isinstance(item, NdjsonLines)  # lines come parsed here
        yield item


def _typed_block(lines: list[bytes], where: str, number: int, marker: bytes = b'"MedicationRequest"',
                 decoder: Any = None) -> Iterator[RawResource | TypedLines | TypedResource | InputError]:
    """Lines ``number + 1`` … of a block with no backslash: runs of lines that decode typed come as one
    :class:`~checker.fhir_input.raw.TypedLines` each (see :func:`~checker.fhir_input.typed.decode_run`),
    other lines one by one as :func:`_one_line` reads them."""
    start, count = 0, len(lines)
    while start < count:
        if start and lines[start].find(marker, 0, 80) < 0:  # after a line of another type, another
            if lines[start].strip():
                yield from _ndjson_line(lines[start], where, number + start + 1)
            start += 1
            continue
        end = min(start + RUN_LINES, count)
        stop, run = decode_run(lines, start, end) if decoder is None else decode_run(lines, start, end, decoder)
        if run:
            yield TypedLines(run, lines[start:stop], where, number + start + 1)
        elif stop > start:  # a run with a key written twice somewhere: each line on its own
            yield from (_lines if decoder is None else _dict_lines)(lines[start:stop], where, number + start)
        if stop < end:  # not a typed line: read as a dict
            if lines[stop].strip():
                yield from _ndjson_line(lines[stop], where, number + stop + 1)
            stop += 1
        start = stop


def numbered_lines(lines: list[bytes], where: str, numbers: list[int]
                   ) -> Iterator[RawResource | TypedLines | TypedResource | InputError]:
    """Non-blank NDJSON lines of ``where`` numbered ``numbers``, in input order but not necessarily
    consecutive (the lines of one chunk of an audit shard, which skip other patients' lines), read as
    :func:`iter_raw` with ``typed`` reads the lines of a block: runs of MedicationRequest or Patient
    lines that decode typed as one :class:`~checker.fhir_input.raw.TypedLines` each (with their
    ``numbers``), a line with an escape or of another type on its own (:func:`_one_line`)."""
    start, count = 0, len(lines)
    while start < count:
        line = lines[start]
        if b"\\" in line:
            yield from _one_line(line, where, numbers[start], True)
            start += 1
            continue
        if line.find(b'"MedicationRequest"', 0, 80) >= 0:
            marker, decoder = b'"MedicationRequest"', None
        elif line.find(b'"Patient"', 0, 80) >= 0:
            marker, decoder = b'"Patient"', PATIENT_DECODER
        else:  # another type: as a dict
            yield from _ndjson_line(line, where, numbers[start])
            start += 1
            continue
        end, limit = start + 1, min(start + RUN_LINES, count)
        while end < limit and (following := lines[end]).find(marker, 0, 80) >= 0 and b"\\" not in following:
            end += 1
        stop, run = decode_run(lines, start, end) if decoder is None else decode_run(lines, start, end, decoder)
        if run:
            yield TypedLines(run, lines[start:stop], where, numbers[start], numbers[start:stop])
        else:  # a run with a key written twice somewhere: each line on its own
            for k in range(start, stop):
                yield from (_one_line(lines[k], where, numbers[k], True) if decoder is None
                            else _ndjson_line(lines[k], where, numbers[k]))
        if stop < end:  # not a typed line: read as a dict
            yield from _ndjson_line(lines[stop], where, numbers[stop])
            stop += 1
        start = stop


def _dict_lines(lines: list[bytes], where: str, number: int) -> Iterator[RawResource | InputError]:
    """Lines ``number + 1`` … as dicts."""
    for line in lines:
        number += 1
        if line.strip():
            yield from _ndjson_line(line, where, number)


def _lines(lines: list[bytes], where: str, number: int) -> Iterator[RawResource | TypedResource | InputError]:
    """Lines ``number + 1`` … one by one (see :func:`_one_line`), typed where they can be."""
    for line in lines:
        number += 1
        yield from _one_line(line, where, number, True)


def _one_line(line: bytes, where: str, number: int, typed: bool
              ) -> Iterator[RawResource | TypedResource | InputError]:
    """One NDJSON line, typed if ``typed`` and :func:`~checker.fhir_input.typed.decode_line` decodes
    it, else as a dict; nothing for a blank line."""
    if typed and (decoded := decode_line(line)) is not None:
        yield TypedResource(decoded, line, SourceLocation(where, number))
    elif line.strip():
        yield from _ndjson_line(line, where, number)


def _typed_line(line: bytes, where: str, number: int) -> Iterator[RawResource | TypedResource | InputError]:
    typed = decode_line(line)
    if typed is None:
        yield from _ndjson_line(line, where, number)
    else:
        yield TypedResource(typed, line, SourceLocation(where, number))


def ndjson_line_items(line: bytes, where: str, number: int) -> Iterator[RawResource | InputError]:
    """The items of NDJSON line ``number`` of ``where``, as :func:`iter_raw` reads them (one
    resource, an error, or the items of a Bundle or list written on one line)."""
    return _ndjson_line(line, where, number)


def _ndjson_line(line: bytes, where: str, number: int) -> Iterator[RawResource | InputError]:
    try:
        parsed = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        yield _err(f"{where}:{number}", "invalid-ndjson-line", error=str(exc))
        return
    if may_have_duplicate_keys(line, parsed):
        parsed = _without_duplicates(line, parsed)
    if type(parsed) is dict and type(rt := parsed.get("resourceType")) is str and rt and rt != "Bundle":
        yield RawResource(parsed, SourceLocation(where, number))  # the hot path: one resource per line
    else:
        yield from _walk(parsed, SourceLocation(file=where, line=number), depth=0)
