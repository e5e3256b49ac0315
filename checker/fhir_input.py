"""The FHIR boundary: the only module that reads FHIR.

Reads files (JSON resources and Bundles, NDJSON bulk exports, FHIR XML, gzip of any of these),
directories (recursively), standard input, dicts, JSON text, fhir.resources models and CDS Hooks
request bodies; resolves references; and assembles one :class:`~checker.model.PatientRecord` per
patient. Extraction works on parsed JSON with explicit type checks (fast); fhir.resources is used
only to parse XML, to explain a resource that extraction found malformed, and in ``strict`` mode.

Nothing is lost: every resource read is *checked* (a type the rules use), *ignored* (another
type) or *rejected* (with an :class:`~checker.findings.InputError` saying where and why).
"""

from __future__ import annotations

import calendar
import contextlib
import gzip
import hashlib
import io
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote

import orjson

from checker.fhir_types import KNOWN_RESOURCE_TYPES
from checker.findings import InputCounts, InputError, Message, Param, Word
from checker.findings import Quantity as Measure
from checker.memo import BULK_RESOURCES, relaxed_gc
from checker.model import (
    ANONYMOUS_MARK,
    NOT_TAKEN,
    NOT_TRUE,
    Allergy,
    Coding,
    Concept,
    Condition,
    Dispense,
    Dosage,
    FhirVersion,
    Ingredient,
    MedicationOrder,
    Observation,
    Patient,
    PatientRecord,
    Quantity,
    ServiceOrder,
    SourceLocation,
    period_days,
)

MEDICATION_USE_TYPES = frozenset({"MedicationDispense", "MedicationAdministration", "MedicationStatement"})
"""Records of a drug the patient takes: they join interaction/duplicate checks, not judged as orders."""

USED_TYPES = frozenset(
    {"MedicationRequest", "ServiceRequest", "Medication", "Patient", "Condition", "AllergyIntolerance", "Observation"}
) | MEDICATION_USE_TYPES
"""Resource types the checker uses; any other type is counted as ignored."""

FILE_SUFFIXES = (".json", ".ndjson", ".jsonl", ".xml")
_BOM = b"\xef\xbb\xbf"
_MAX_DEPTH = 8  # nested Bundles / CDS Hooks wrappers
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


LOCAL_REF = "\x1f"
"""Joins a file name and a local ``#id`` patient reference in a patient key (file, unit separator,
``#id``): the same ``#id`` in two files names two patients."""


@dataclass(slots=True)
class RawResource:
    """One parsed resource with where it came from and its Bundle ``fullUrl`` if any."""

    resource: dict[str, Any]
    location: SourceLocation
    full_url: str = ""
    draft: bool = False  # a CDS Hooks draft order
    default_patient: str = ""  # CDS Hooks context.patientId, for drafts without a subject
    resource_type: str = field(init=False)
    json_native: bool = True
    name: str = ""  # set by assembly for a resource with neither id nor fullUrl (see :func:`_resource_ref`)
    """Made of JSON types only (parsed from text, or dumped from a model): identical elements may
    then share one extraction (see :func:`_shared_element`). False for a caller's dict, which may
    hold tuples, dates or NaN that serialise like other values."""

    def __post_init__(self) -> None:
        rt = self.resource.get("resourceType")
        self.resource_type = rt if isinstance(rt, str) else ""

    def patient_key(self) -> str | None:
        """The patient reference this resource belongs to, as written (for sharding by patient).

        In a CDS Hooks request every resource concerns ``context.patientId`` (the spec's prefetch
        templates are all parameterised by it), whatever its own subject says.
        """
        if self.default_patient:
            return self.default_patient
        if self.resource_type == "Patient":
            rid = self.resource.get("id")
            return f"Patient/{rid}" if isinstance(rid, str) else (self.full_url or None)
        for name in ("subject", "patient"):
            ref = self.resource.get(name)
            if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
                written: str = ref["reference"]
                if written.startswith("#"):  # a local "#id": only means something inside its own file
                    return f"{self.location.file}{LOCAL_REF}{written}"
                return unquote(written) if "?" in written and "%" in written else written
        return self.default_patient or None


@dataclass(slots=True)
class FileMark:
    """Marks that a file (or stdin) was opened, for the ``files`` count."""

    name: str


MAX_URLS = 1_000_000
"""At most this many ``Type/id`` -> fullUrl pairs are kept per read (bounded memory on bulk inputs;
past it, outputs name the resources by ``Type/id``)."""


@dataclass(slots=True)
class Ingestion:
    """What reading the inputs produced."""

    records: list[PatientRecord] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    counts: InputCounts = field(default_factory=InputCounts)
    urls: dict[str, str] = field(default_factory=dict)
    """``Type/id`` -> Bundle ``fullUrl`` of the resources that had both (first wins)."""


def _err(where: str, code: str, resource_type: str | None = None, *extra: Message, **params: Param) -> InputError:
    """An input error as a code with parameters (catalogue table ``input_error``), worded in English
    until a report words it in its language."""
    return InputError.coded(where, Message(code, params, extra), resource_type)


class InputNotFound(FileNotFoundError):
    """An input path that names nothing; ``code`` says so as a message code (table ``input_error``)."""

    def __init__(self, code: Message) -> None:
        super().__init__(code.text("en", "input_error"))
        self.code = code


class _Bad(Exception):
    """Raised by extraction when an element has the wrong shape; carries the element path."""

    def __init__(self, path: str, message: Message, where: SourceLocation | None = None) -> None:
        super().__init__(f"{path}: {message.text('en', 'input_error')}")
        self.path = path
        self.message = message
        self.where = where  # another resource's location, when the bad element is in a resource referenced


# ------------------------------------------------------------------------------------------------
# Reading inputs into raw resources
# ------------------------------------------------------------------------------------------------


def read(inputs: Any, *, strict: bool = False, as_of: date | None = None,
         max_decompressed: int = MAX_DECOMPRESSED, max_expansion: float = MAX_EXPANSION) -> Ingestion:
    """Read ``inputs`` and assemble patient records (see module docstring).

    ``max_decompressed``: bytes a compressed input may expand to; past it the rest of the input is
    refused with an error (a decompression bomb costs neither memory nor time); ``max_expansion``:
    the same for a compressed input expanding more than this many times its compressed size.
    """
    return assemble(iter_raw(inputs, max_decompressed=max_decompressed, max_expansion=max_expansion),
                    strict=strict, as_of=as_of)


def iter_raw(inputs: Any, *, max_decompressed: int = MAX_DECOMPRESSED,
             max_expansion: float = MAX_EXPANSION) -> Iterator[RawResource | InputError | FileMark]:
    """Stream raw resources, input errors and file marks from any accepted kind of input."""
    items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    limits = (max_decompressed, max_expansion)
    for item in items:
        yield from _iter_one(item, limits)


_Limits = tuple[int, float]


def _iter_one(item: Any, limits: _Limits = (MAX_DECOMPRESSED, MAX_EXPANSION)
              ) -> Iterator[RawResource | InputError | FileMark]:
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


def _from_path(name: str, limits: _Limits) -> Iterator[RawResource | InputError | FileMark]:
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
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith(FILE_SUFFIXES) and not name.startswith(".")


def _from_file(path: Path, limits: _Limits) -> Iterator[RawResource | InputError | FileMark]:
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
    max_decompressed, max_expansion = limits
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
                 gzip_name: bool = False) -> Iterator[RawResource | InputError]:
    """Read one input in bounded memory: NDJSON line by line (blank lines skipped at C speed), other
    JSON held whole once its first byte says it can be JSON or XML (blank space before it dropped)."""
    chunks = _chunks(raw, where, limits, gzip_name)
    try:
        if ndjson:
            yield from _ndjson_chunks(chunks, where)
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


def _ndjson_chunks(chunks: Iterable[bytes], where: str) -> Iterator[RawResource | InputError]:
    """NDJSON lines from blocks of bytes: a line longer than :data:`MAX_LINE` is refused (and skipped
    to the next newline) without being held; runs of blank lines cost a count, not a parse each."""
    number = 0  # lines completed so far
    parts: list[bytes] = []  # the line being read, in pieces
    held = 0
    skipping = False
    first = True
    for block in chunks:
        if first:
            first = False
            if block.startswith(_BOM):
                block = block[len(_BOM):]
        if skipping:
            cut = block.find(b"\n")
            if cut < 0:
                continue
            number += 1
            block = block[cut + 1:]
            skipping = False
        if not parts and not block.strip():  # blank lines only: counted at C speed
            number += block.count(b"\n")
            continue
        lines = block.split(b"\n")
        tail = lines.pop()
        for line in lines:
            if parts:
                parts.append(line)
                line = b"".join(parts)
                parts, held = [], 0
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
            yield from _ndjson_line(line, where, number + 1)


def display_name(name: str) -> str:
    """A file name as shown in errors: bytes that are not UTF-8 written as ``\\xNN`` escapes."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _from_bytes(data: bytes, where: str) -> Iterator[RawResource | InputError]:
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
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


def _from_ndjson(data: bytes, where: str) -> Iterator[RawResource | InputError]:
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    yield from _ndjson_chunks([data], where)


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


# ------------------------------------------------------------------------------------------------
# Duplicate keys (RFC 8259 leaves them undefined; FHIR JSON forbids them)
# ------------------------------------------------------------------------------------------------


def may_have_duplicate_keys(raw: bytes, parsed: Any) -> bool:
    """False only when ``raw`` surely has no key twice in one object (then nothing else is done).

    Every member of an object has exactly one ``:`` outside strings; other colons of the text are
    inside strings, written as ``:`` or as a ``\\u003a`` escape. The parser keeps one value per
    key, so re-serialising the parsed value (orjson writes colons unescaped) gives exactly one colon
    per kept member plus the colons of the kept strings. Hence colons in ``raw`` (escapes counted,
    and over-counted when an escaped backslash precedes ``u003a``) are at least the colons of the
    re-serialised value, equal only when no member was dropped, that is when no key repeats. Cost:
    one serialisation and a few byte counts, at C speed.
    """
    written = raw.count(b":")
    if b"\\u" in raw:
        written += raw.count(b"\\u003a") + raw.count(b"\\u003A")
    return written != orjson.dumps(parsed).count(b":")


class _DuplicateKeys(dict):  # type: ignore[type-arg]
    """An object of the text that repeats keys (found by the exact pass)."""

    repeated: list[str]


class _Rejected(dict):  # type: ignore[type-arg]
    """A resource rejected for repeated keys: read as an input error where it stood."""

    resource_type: str | None
    message: Message


def duplicate_key_paths(raw: bytes) -> list[str]:
    """Paths (``a.b[0].c``) of every key repeated in one object of ``raw`` (exact, slow: used when
    :func:`may_have_duplicate_keys` says it may be so, and by the tests)."""
    found: list[str] = []
    _dup_paths(_exact(raw), "", found)
    return found


def _exact(raw: bytes) -> Any:
    import json

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        d = dict(pairs)
        if len(d) == len(pairs):
            return d
        seen: set[str] = set()
        out = _DuplicateKeys(d)
        out.repeated = list(dict.fromkeys(k for k, _ in pairs if k in seen or seen.add(k)))  # type: ignore[func-returns-value]
        return out

    return json.loads(raw, object_pairs_hook=hook)


def _dup_paths(obj: Any, path: str, found: list[str]) -> None:
    if isinstance(obj, dict):
        if isinstance(obj, _DuplicateKeys):
            found.extend(f"{path}.{k}" if path else k for k in obj.repeated)
        for k, v in obj.items():
            _dup_paths(v, f"{path}.{k}" if path else k, found)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _dup_paths(v, f"{path}[{i}]", found)


def _without_duplicates(raw: bytes, parsed: Any) -> Any:
    """``parsed`` with every resource that repeats a key replaced by a :class:`_Rejected` (read as an
    error naming the key), or a rejection of the whole text when the repeat is outside any resource."""
    exact = _exact(raw)
    tree, pending = _reject(exact)
    if pending:
        whole = _Rejected()
        whole.resource_type = None
        whole.message = _dup_message(pending)
        return whole
    return tree


def _dup_message(paths: list[str]) -> Message:
    return Message("duplicate-keys", {"paths": ", ".join(paths[:5]) + (" …" if len(paths) > 5 else "")})


def _reject(obj: Any) -> tuple[Any, list[str]]:
    """(tree with offending resources replaced, repeated-key paths not yet inside a resource)."""
    if isinstance(obj, list):
        out_list, pending = [], []
        for i, v in enumerate(obj):
            nv, p = _reject(v)
            out_list.append(nv)
            pending += [f"[{i}]{q if q.startswith('[') else '.' + q}" for q in p]
        return out_list, pending
    if not isinstance(obj, dict):
        return obj, []
    pending = list(obj.repeated) if isinstance(obj, _DuplicateKeys) else []
    out: dict[str, Any] = {}
    for k, v in obj.items():
        nv, p = _reject(v)
        out[k] = nv
        pending += [f"{k}{q if q.startswith('[') else '.' + q}" for q in p]
    rt = obj.get("resourceType")
    if pending and isinstance(rt, str) and rt:
        rejected = _Rejected()
        rejected.resource_type = rt
        rid = obj.get("id")
        rejected.message = _dup_message([f"{rt}{'/' + rid if isinstance(rid, str) else ''}.{q}" for q in pending])
        return rejected, []
    return out, pending


def _from_xml(data: bytes, where: str) -> Iterator[RawResource | InputError]:
    from lxml import etree

    if _DOCTYPE.search(data):
        yield _err(where, "xml-doctype")
        return
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        yield _err(where, "xml-malformed", error=str(exc))
        return
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        yield _err(where, "xml-doctype")
        return
    qname = etree.QName(root)
    if qname.namespace != "http://hl7.org/fhir":
        yield _err(where, "xml-root", root=str(qname.localname))
        return
    resource = _xml_to_json(data, qname.localname, where)
    if isinstance(resource, InputError) and qname.localname == "Bundle":
        yield from _xml_bundle_by_entry(root, where)  # one bad entry must not cost the others
    elif isinstance(resource, InputError):
        yield resource
    else:
        yield from _walk(resource, SourceLocation(file=where), depth=0)


def _xml_bundle_by_entry(bundle: Any, where: str) -> Iterator[RawResource | InputError]:
    """A FHIR XML Bundle that does not convert as a whole, converted entry by entry: each entry that
    converts is read as usual, each one that does not becomes an error at its entry index."""
    from lxml import etree

    ns = "{http://hl7.org/fhir}"
    for i, entry in enumerate(bundle.iterchildren(f"{ns}entry")):
        eloc = SourceLocation(file=where, entry=i, pointer=f"/entry/{i}")
        full_url_el = entry.find(f"{ns}fullUrl")
        full_url = full_url_el.get("value", "") if full_url_el is not None else ""
        wrapper = entry.find(f"{ns}resource")
        children = [c for c in wrapper.iterchildren() if isinstance(c.tag, str)] if wrapper is not None else []
        if not children:
            if entry.find(f"{ns}request") is None and entry.find(f"{ns}response") is None:
                yield _err(str(eloc), "entry-no-resource")
            continue
        child = children[0]
        resource = _xml_to_json(etree.tostring(child), etree.QName(child).localname, str(_at(eloc, "/resource")))
        if isinstance(resource, InputError):
            yield resource
        else:
            yield from _walk({"fullUrl": full_url, "resource": resource} if full_url else resource,
                             eloc if full_url else _at(eloc, "/resource"), depth=1)


_DOCTYPE = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)


def _xml_to_json(data: bytes, resource_type: str, where: str) -> dict[str, Any] | InputError:
    """Convert FHIR XML to FHIR JSON with fhir.resources (R4B models, then R5)."""
    import fhir.resources as r5
    from fhir.resources import R4B

    from lxml import etree

    # fhir.resources chokes on XML comments: remove them first (they carry no data).
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True)
    try:
        data = etree.tostring(etree.fromstring(data, parser))
    except etree.XMLSyntaxError as exc:  # e.g. an entry cut out of a Bundle that is not XML on its own
        return _err(where, "xml-malformed", resource_type, error=str(exc))
    first: Exception | None = None  # R4B's complaint: R4 is the common case, R5 only a retry
    for package in (R4B, r5):
        try:
            model = package.get_fhir_model_class(resource_type)
        except (KeyError, ValueError):  # fhir.resources 8 raises ValueError for an unknown type
            continue
        try:
            return model.model_validate_xml(data).model_dump(mode="json", by_alias=True, exclude_none=True)
        except Exception as exc:  # pydantic errors and fhir-core XML errors alike
            first = first or exc
    if first is None:
        return _err(where, "xml-unknown-type", resource_type, type=resource_type)
    return _err(where, "xml-unreadable", resource_type, error=_first_line(first))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(t.strip() for t in text[:3])[:300]


def _walk(obj: Any, loc: SourceLocation, depth: int, *, draft: bool = False,
          default_patient: str = "", full_url: str = "") -> Iterator[RawResource | InputError]:
    """Yield the resources in ``obj``: a resource, a Bundle, a list, or a CDS Hooks request."""
    if type(obj) is dict:
        rt = obj.get("resourceType")
        if type(rt) is str and rt and rt != "Bundle":  # the hot path: a plain resource
            yield RawResource(obj, loc, full_url=full_url, draft=draft, default_patient=default_patient)
            return
    where = str(loc)
    if type(obj) is _Rejected:
        yield InputError.coded(where, obj.message, obj.resource_type)
        return
    if depth > _MAX_DEPTH:
        yield _err(where, "too-deep")
        return
    if isinstance(obj, list):
        for i, item in enumerate(obj):
            yield from _walk(item, _at(loc, f"/{i}"), depth + 1, draft=draft, default_patient=default_patient)
        return
    if not isinstance(obj, dict):
        yield _err(where, "not-object", found=type(obj).__name__)
        return
    rt = obj.get("resourceType")
    if rt is None and isinstance(obj.get("context"), dict) and (
        "hook" in obj or "hookInstance" in obj or "prefetch" in obj or "draftOrders" in obj["context"]
    ):
        yield from _walk_cds_request(obj, loc, depth)
        return
    if rt is None and isinstance(obj.get("resource"), dict):  # Bundle entry / prefetch wrapper
        yield from _walk(obj["resource"], _at(loc, "/resource"), depth + 1, draft=draft,
                         default_patient=default_patient, full_url=_s(obj.get("fullUrl")))
        return
    if not isinstance(rt, str) or not rt:
        yield _err(where, "not-resource")
        return
    if rt == "Bundle":
        yield from _walk_bundle(obj, loc, depth, draft=draft, default_patient=default_patient)
        return
    yield RawResource(obj, loc, full_url=full_url, draft=draft, default_patient=default_patient)


def _walk_bundle(bundle: dict[str, Any], loc: SourceLocation, depth: int, *, draft: bool,
                 default_patient: str) -> Iterator[RawResource | InputError]:
    entries = bundle.get("entry", [])
    if entries is None:
        return
    if not isinstance(entries, list):
        yield _err(str(_at(loc, "/entry")), "entry-not-list")
        return
    for i, entry in enumerate(entries):
        eloc = SourceLocation(file=loc.file, line=loc.line, entry=i, pointer=f"{loc.pointer}/entry/{i}")
        if not isinstance(entry, dict):
            yield _err(str(eloc), "entry-not-object")
            continue
        if "resource" in entry:
            res = entry["resource"]
            if res is None:
                continue  # e.g. a transaction DELETE: no resource to check
            full_url = _s(entry.get("fullUrl"))
            if isinstance(res, dict) and res.get("resourceType") == "Bundle":
                yield from _walk_bundle(res, _at(eloc, "/resource"), depth + 1, draft=draft,
                                        default_patient=default_patient)
            elif isinstance(res, dict):
                yield from _walk(res, _at(eloc, "/resource"), depth + 1, draft=draft,
                                 default_patient=default_patient, full_url=full_url)
            else:
                yield _err(str(eloc), "entry-resource-not-object")
        elif "resourceType" in entry:  # entry written without its `resource` wrapper
            yield from _walk(entry, eloc, depth + 1, draft=draft, default_patient=default_patient)
        elif "request" in entry or "response" in entry or "search" in entry:
            continue  # an entry with no resource (e.g. batch request/response only)
        else:
            yield _err(str(eloc), "entry-no-resource")


def _walk_cds_request(body: dict[str, Any], loc: SourceLocation, depth: int) -> Iterator[RawResource | InputError]:
    context = body.get("context")
    if not isinstance(context, dict):
        yield _err(str(_at(loc, "/context")), "cds-context")
        return
    patient = _s(context.get("patientId"))
    if patient and "/" not in patient:
        patient = f"Patient/{patient}"
    for key in ("draftOrders", "medications", "selections_resources"):
        if key in context and context[key] is not None:
            yield from _walk(context[key], _at(loc, f"/context/{key}"), depth + 1, draft=True, default_patient=patient)
    prefetch = body.get("prefetch")
    where = "/prefetch"
    if prefetch is None and isinstance(context.get("prefetch"), dict):  # seen upstream: prefetch inside context
        prefetch, where = context["prefetch"], "/context/prefetch"
    prefetch = prefetch or {}
    if not isinstance(prefetch, dict):
        yield _err(str(_at(loc, where)), "cds-prefetch")
        return
    items = [(f"{where}/{k}", prefetch[k]) for k in sorted(prefetch)]
    # Prefetch items misplaced among the context keys (seen upstream: context.item2)
    items += [(f"/context/{k}", v) for k, v in sorted(context.items())
              if k not in _CDS_CONTEXT_KEYS and isinstance(v, dict) and ("resource" in v or "resourceType" in v)]
    for pointer, value in items:
        if value is None:
            continue
        yield from _walk(value, _at(loc, pointer), depth + 1, default_patient=patient)


_CDS_CONTEXT_KEYS = frozenset({"userId", "patientId", "encounterId", "selections", "draftOrders", "medications",
                               "selections_resources", "prefetch"})


def _at(loc: SourceLocation, suffix: str) -> SourceLocation:
    return SourceLocation(file=loc.file, line=loc.line, entry=loc.entry, pointer=loc.pointer + suffix)


# ------------------------------------------------------------------------------------------------
# Assembling patient records
# ------------------------------------------------------------------------------------------------


class _Index:
    """Reference resolution over every resource of one assemble call."""

    def __init__(self) -> None:
        self.by_key: dict[str, RawResource] = {}
        self.by_file_key: dict[tuple[str, str], RawResource] = {}
        self.medication_by_file_id: dict[tuple[str, str], RawResource] = {}
        self.by_identifier: dict[tuple[str, str, str], RawResource] = {}
        # Orders naming the same medication share one extracted medication (bulk exports repeat a
        # few hundred medications over millions of lines): extraction runs once per medication, and
        # identification and rule memos, keyed by object identity, hit across orders.
        self.medications: dict[Any, Any] = {}
        self.elements: dict[tuple[Any, ...], Any] = {}  # see :func:`_shared_element`

    def occupy(self, raw: RawResource) -> None:
        """Record that a resource which is no reference target (not a Patient or Medication) holds
        its Bundle ``fullUrl``: a reference to that fullUrl finds it, not a later Patient or
        Medication written with the same fullUrl (first wins, as for every key). The resource
        itself is not kept."""
        if raw.full_url:
            self.by_key.setdefault(raw.full_url, _NOT_A_TARGET)
            self.by_file_key.setdefault((raw.location.file, raw.full_url), _NOT_A_TARGET)

    def add(self, raw: RawResource) -> None:
        res, rt = raw.resource, raw.resource_type
        rid = res.get("id")
        keys = [f"{rt}/{rid}"] if isinstance(rid, str) and rid else []
        if raw.full_url:
            keys.append(raw.full_url)
        for key in keys:
            self.by_key.setdefault(key, raw)
            self.by_file_key.setdefault((raw.location.file, key), raw)
        if rt == "Medication" and isinstance(rid, str) and rid:
            self.medication_by_file_id.setdefault((raw.location.file, rid), raw)
        idents = res.get("identifier")
        if isinstance(idents, dict):
            idents = [idents]
        if isinstance(idents, list):
            for ident in idents:
                if isinstance(ident, dict) and isinstance(ident.get("value"), str):
                    self.by_identifier.setdefault((rt, _s(ident.get("system")), ident["value"]), raw)

    def resolve(self, ref: str, near: RawResource | None = None) -> RawResource | None:
        """Resolve ``ref``, preferring a resource of the same file as ``near`` (ids may repeat
        across unrelated files)."""
        if not ref:
            return None
        if near is not None:
            local = self.by_file_key.get((near.location.file, ref))
            if local is None and ref.startswith("#"):  # "#id" naming a Bundle entry, not a contained one
                local = self.medication_by_file_id.get((near.location.file, ref[1:]))
            if local is None:
                m = _ABSOLUTE.search(ref)
                if m:
                    local = self.by_file_key.get((near.location.file, f"{m.group(1)}/{m.group(2)}"))
            if local is not None:
                return local
        hit = self.by_key.get(ref)
        if hit is not None:
            return hit
        if "?" in ref:  # conditional reference: Type?identifier=system|value (maybe URL-encoded)
            rt, _, query = ref.partition("?")
            for part in query.split("&"):
                name, _, value = part.partition("=")
                if name == "identifier":
                    system, bar, code = unquote(value).partition("|")
                    return self.by_identifier.get((rt, system, code) if bar else (rt, "", system))
            return None
        m = _ABSOLUTE.search(ref)
        if m:  # absolute URL http://server/fhir/Type/id(/_history/n)
            return self.by_key.get(f"{m.group(1)}/{m.group(2)}")
        return None


_NOT_A_TARGET = RawResource({"resourceType": ""}, SourceLocation("<not a reference target>"))
"""What :meth:`_Index.resolve` finds where the first resource with that key is not a Patient or a
Medication: resolving to it gives "not found" (the reference stays as written)."""

_ABSOLUTE = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def assemble(raw_items: Iterable[RawResource | InputError | FileMark], *, strict: bool = False,
             as_of: date | None = None) -> Ingestion:
    """Group raw resources per patient, resolve references and extract the domain model."""
    with contextlib.ExitStack() as bulk:
        return _assemble(raw_items, strict=strict, as_of=as_of, bulk=bulk)


def _assemble(raw_items: Iterable[RawResource | InputError | FileMark], *, strict: bool, as_of: date | None,
              bulk: contextlib.ExitStack) -> Ingestion:
    """One pass over the input: each resource is extracted as it arrives and its parsed JSON is
    dropped, except Patients and Medications (reference targets) and the few orders naming their
    medication by reference, which wait for the whole input to be indexed. Patient references are
    made canonical at the end, when every Patient is known. The result is the same as extracting
    every resource after reading them all: same records, same order of lines, same errors."""
    out = Ingestion()
    counts = out.counts
    index = _Index()
    today = as_of or date.today()
    patient_errors: list[InputError] = []
    late_errors: list[tuple[int, InputError]] = []  # by position in the input
    patients: dict[str, Patient] = {}
    canonical: dict[int, str] = {}  # id(Patient raw) -> "Patient/<id>"
    patient_raws: list[RawResource] = []  # keeps those raws alive, so that their ids stay theirs
    # Per patient reference as written: (position, kind, extracted item); `kind` (see _KINDS) names the
    # record list the item goes to.
    groups: dict[str | None, list[tuple[int, int, Any]]] = {}
    deferred: list[tuple[int, RawResource]] = []
    anonymous: dict[tuple[str, str], int] = {}  # (file, content name) -> copies seen, see _content_name
    seq = 0
    for item in raw_items:
        if type(item) is not RawResource:
            if isinstance(item, FileMark):
                counts.files += 1
                continue
            if isinstance(item, InputError):
                out.errors.append(item)
                counts.resources += 1
                counts.rejected += 1
                continue
        seq += 1
        if seq == BULK_RESOURCES:  # a bulk input: what is extracted stays alive to the end
            bulk.enter_context(relaxed_gc())
        counts.resources += 1
        if not item.full_url:
            rid = item.resource.get("id")
            if type(rid) is not str or not rid:
                item.name = _content_name(item, anonymous)
        elif type(rid := item.resource.get("id")) is str and rid and len(out.urls) < MAX_URLS:
            out.urls.setdefault(f"{item.resource_type}/{rid}", item.full_url)
        rt = item.resource_type
        kind = _KINDS.get(rt)
        if kind is None:
            if rt == "Patient":
                index.add(item)
                try:
                    patient = _patient(item)
                except _Bad as bad:
                    patient_errors.append(_rejection(item, bad, strict=False))
                    counts.rejected += 1
                    continue
                if strict and (error := _strict_error(item)) is not None:
                    patient_errors.append(error)
                    counts.rejected += 1
                    continue
                canonical[id(item)] = patient.ref
                patient_raws.append(item)
                patients[patient.ref] = patient
                counts.checked += 1
            elif rt == "Medication":  # used through references; counted as checked
                if strict and (error := _strict_error(item)) is not None:
                    late_errors.append((seq, error))  # not indexed: no order takes its drug from it
                    counts.rejected += 1
                    continue
                index.add(item)
                counts.checked += 1
            elif rt in KNOWN_RESOURCE_TYPES:  # a resource no rule reads (Practitioner, Encounter …)
                index.occupy(item)
                counts.ignored += 1
            else:  # a misspelt or invented type: never silently dropped
                late_errors.append((seq, _err(str(item.location), "unknown-type", rt, type=rt)))
                counts.rejected += 1
            continue
        index.occupy(item)
        if kind == _ORDER and _names_medication_by_reference(item.resource):
            deferred.append((seq, item))  # its Medication may come later in the input
            continue
        _extract(item, kind, seq, index, today, strict, groups, late_errors, counts)
    for position, raw in deferred:
        _extract(raw, _ORDER, position, index, today, strict, groups, late_errors, counts)
    out.errors.extend(patient_errors)
    if deferred:
        late_errors.sort(key=_first)
    out.errors.extend(error for _, error in late_errors)

    resolved: dict[str, str] = {}  # patient reference as written -> canonical key

    def canonical_key(written: str | None) -> str:
        if written is None:
            return ""
        found = resolved.get(written)
        if found is None:
            if LOCAL_REF in written:  # "#id" naming a Patient entry of the same file (French ePrescription)
                file, _, local = written.partition(LOCAL_REF)
                target = index.by_file_key.get((file, f"Patient/{local[1:]}"))
            else:
                target = index.resolve(written)
            found = resolved[written] = canonical.get(id(target), written) if target is not None else written
        return found

    merged: dict[str, list[tuple[int, int, Any]]] = {}
    for written, items in groups.items():
        key = canonical_key(written)
        if key in merged:  # several ways of writing one patient's reference: keep input order
            merged[key] = sorted(merged[key] + items, key=_first)
        else:
            merged[key] = sorted(items, key=_first) if deferred else items
    records: dict[str, PatientRecord] = {}
    for key, items in merged.items():
        shown = key.partition(LOCAL_REF)[2] or key  # an unresolved "#id" is shown as written
        rec = records[key] = PatientRecord(patient=(patients.get(key) or Patient(ref=shown)) if key else None)
        lists = (rec.medication_orders, rec.service_orders, rec.conditions, rec.allergies, rec.observations)
        for _, kind, extracted in items:
            lists[kind].append(extracted)
    # Patients with a Patient resource but no other data still form a (clean) record.
    for ref, patient in patients.items():
        if ref not in records:
            records[ref] = PatientRecord(patient=patient)
    out.records = [records[k] for k in sorted(records)]
    return out


_ORDER, _SERVICE, _CONDITION, _ALLERGY, _OBSERVATION = range(5)
_KINDS = {"MedicationRequest": _ORDER, "ServiceRequest": _SERVICE, "Condition": _CONDITION,
          "AllergyIntolerance": _ALLERGY, "Observation": _OBSERVATION} | dict.fromkeys(MEDICATION_USE_TYPES, _ORDER)
"""Resource types extracted into a patient record, by the record list they go to."""


def _first(item: tuple[int, Any] | tuple[int, int, Any]) -> int:
    return item[0]


def _names_medication_by_reference(res: dict[str, Any]) -> bool:
    """True when the medication is not written in the resource itself (see :func:`_medication`)."""
    med = res.get("medication")
    concept = med.get("concept") if isinstance(med, dict) else res.get("medicationCodeableConcept")
    return concept is None


def _extract(raw: RawResource, kind: int, seq: int, index: _Index, today: date, strict: bool,
             groups: dict[str | None, list[tuple[int, int, Any]]], errors: list[tuple[int, InputError]],
             counts: InputCounts) -> None:
    """Extract one resource of a patient record into ``groups`` (or an error into ``errors``)."""
    if strict and (error := _strict_error(raw)) is not None:
        errors.append((seq, error))
        counts.rejected += 1
        return
    try:
        if kind == _ORDER:
            extracted: Any = (_medication_order(raw, index, today) if raw.resource_type == "MedicationRequest"
                              else _medication_use(raw, index, today))
        elif kind == _SERVICE:
            extracted = _service_order(raw, today)
        elif kind == _CONDITION:
            extracted = _condition(raw)
        elif kind == _ALLERGY:
            extracted = _allergy(raw)
        else:
            extracted = _observation(raw)
    except _Bad as bad:
        errors.append((seq, _rejection(raw, bad, strict=strict)))
        counts.rejected += 1
        groups.setdefault(raw.patient_key(), [])  # its patient still has a record, as every patient named
        return
    written = raw.patient_key()
    group = groups.get(written)
    if group is None:
        group = groups[written] = []
    group.append((seq, kind, extracted))
    counts.checked += 1


def _rejection(raw: RawResource, bad: _Bad, *, strict: bool) -> InputError:
    if bad.where is not None:  # the bad element is in the Medication the order references
        where = SourceLocation(bad.where.file, bad.where.line, bad.where.entry, bad.where.pointer + bad.path)
        names = Message("order-not-checked", {"type": raw.resource_type, "location": str(raw.location)})
        return InputError.coded(str(where), Message(bad.message.code, bad.message.params, (*bad.message.extra, names)),
                                raw.resource_type)
    message = bad.message if strict else _explain(raw) or bad.message
    where = SourceLocation(raw.location.file, raw.location.line, raw.location.entry, raw.location.pointer + bad.path)
    return InputError.coded(str(where), message, raw.resource_type)


def _strict_error(raw: RawResource) -> InputError | None:
    message = _explain(raw)
    return InputError.coded(str(raw.location), message, raw.resource_type) if message else None


def detect_version(resource: dict[str, Any]) -> FhirVersion:
    """Tell R5 from R4/R4B by the elements a resource uses (no declared version is trusted)."""
    if "medication" in resource and isinstance(resource["medication"], dict) and (
        "concept" in resource["medication"] or "reference" in resource["medication"]
    ):
        return "R5"
    if "medicationCodeableConcept" in resource or "medicationReference" in resource or "authoredOn" in resource:
        return "STU3" if "context" in resource and "encounter" not in resource else "R4"
    return "R4"


def _explain(raw: RawResource) -> Message | None:
    """A precise validation message from fhir.resources (R4B or R5 by detection), or ``None``."""
    import fhir.resources as r5
    from fhir.resources import R4B

    version = detect_version(raw.resource)
    package = r5 if version == "R5" else R4B
    try:
        model = package.get_fhir_model_class(raw.resource_type)
    except (KeyError, ValueError):  # fhir.resources 8 raises ValueError for an unknown type
        return Message("unknown-type-plain", {"type": raw.resource_type})
    try:
        model.model_validate(raw.resource)
    except Exception as exc:
        return Message("invalid-resource", {"type": raw.resource_type, "version": "R5" if version == "R5" else "R4",
                                            "error": _first_line(exc)})
    return None


# ------------------------------------------------------------------------------------------------
# Element extraction with explicit type checks
# ------------------------------------------------------------------------------------------------


def _s(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _list(res: dict[str, Any], name: str) -> list[Any]:
    value = res.get(name)
    if value is None:
        return []
    if isinstance(value, dict):  # a single object where a list is expected: tolerated
        return [value]
    if not isinstance(value, list):
        raise _Bad(f"/{name}", Message("expected-list", {"found": type(value).__name__}))
    return value


def _str_field(res: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = res.get(name)
    if value is None:
        if required:
            raise _Bad(f"/{name}", Message("required-missing"))
        return ""
    if not isinstance(value, str):
        raise _Bad(f"/{name}", Message("expected-string", {"found": type(value).__name__}))
    return value


def _concept(value: Any, path: str = "") -> Concept:
    if value is None:
        return Concept()
    if not isinstance(value, dict):
        raise _Bad(path, Message("expected-concept", {"found": type(value).__name__}))
    codings = value.get("coding") or []
    if isinstance(codings, dict):
        codings = [codings]
    if not isinstance(codings, list):
        raise _Bad(f"{path}/coding", Message("expected-codings"))
    out = []
    for i, c in enumerate(codings):
        if not isinstance(c, dict):
            raise _Bad(f"{path}/coding/{i}", Message("coding-not-object"))
        code = c.get("code")
        if code is None:
            if c.get("display"):
                out.append(Coding(_s(c.get("system")), "", _s(c.get("display"))))
            continue
        if not isinstance(code, (str, int)):
            raise _Bad(f"{path}/coding/{i}/code", Message("code-not-string"))
        out.append(Coding(_s(c.get("system")), str(code).strip(), _s(c.get("display"))))
    return Concept(tuple(out), _s(value.get("text")))


def _concepts(values: list[Any], path: str) -> tuple[Concept, ...]:
    if not values:
        return ()
    return tuple(_concept(v, f"{path}/{i}") for i, v in enumerate(values))


def _quantity(value: Any, path: str = "") -> Quantity | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Bad(path, Message("expected-quantity"))
    v = value.get("value")
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        if isinstance(v, str):
            try:
                v = float(v.replace(",", "."))
            except ValueError:
                raise _Bad(f"{path}/value", Message("not-a-number", {"value": repr(v)})) from None
        else:
            raise _Bad(f"{path}/value", Message("expected-number"))
    return Quantity(float(v), _s(value.get("code")) or _s(value.get("unit")))


def _date(value: Any) -> date | None:
    """FHIR date/dateTime/instant (partial dates take their first day); ``None`` if absent/odd."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    try:
        if len(value) == 4:
            return date(int(value), 1, 1)
        if len(value) == 7:
            return date(int(value[:4]), int(value[5:7]), 1)
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


_CQL_TODAY = re.compile(r"Today\(\)(?:\s*([+-])\s*(\d+)\s*(day|days|week|weeks|month|months|year|years))?")
_CQL_UNIT_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}


def _cql_date(expr: str, today: date) -> date | None:
    """Evaluate the simple CQL date expressions some CDS examples carry (``Today() - 90 days``)."""
    m = _CQL_TODAY.search(expr)
    if not m:
        return None
    if not m.group(1):
        return today
    days = int(m.group(2)) * _CQL_UNIT_DAYS[m.group(3).rstrip("s")]
    try:
        return today - timedelta(days=days) if m.group(1) == "-" else today + timedelta(days=days)
    except OverflowError:  # a date outside the calendar: no usable date
        return None


def _ext_cql(element: Any) -> list[str]:
    if not isinstance(element, dict):
        return []
    extensions = element.get("extension")
    return [
        e["valueString"]
        for e in (extensions if isinstance(extensions, list) else [])
        if isinstance(e, dict) and "cqlExpression" in _s(e.get("url")) and isinstance(e.get("valueString"), str)
    ]


def _dated(res: dict[str, Any], name: str, today: date) -> date | None:
    found = _date(res.get(name))
    if found is None:
        for expr in _ext_cql(res.get(f"_{name}")):
            found = _cql_date(expr, today)
            if found:
                break
    return found


def _ref(value: Any) -> str:
    return _s(value.get("reference")) if isinstance(value, dict) else ""


def _resource_ref(raw: RawResource) -> str:
    """``Type/id``, else the Bundle fullUrl, else the content name assembly gave it (see
    :func:`_content_name`): never where the resource sat in the input, so that a finding's
    fingerprint does not depend on it."""
    rid = raw.resource.get("id")
    if isinstance(rid, str) and rid:
        return f"{raw.resource_type}/{rid}"
    return raw.full_url or raw.name or _content_name(raw, {})


def _content_name(raw: RawResource, seen: dict[tuple[str, str], int]) -> str:
    """``Type@sha256:<hash of the content>`` for a resource with neither id nor fullUrl; the second and
    later identical copies in one file get ``-2``, ``-3`` …: two identical orders written twice are two
    lines (a duplicate to report), while the same order read from two files is one."""
    try:
        content = orjson.dumps(raw.resource, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str)
    except TypeError:  # e.g. an integer beyond 64 bits in a library caller's dict
        content = repr(raw.resource).encode("utf-8", "surrogatepass")
    name = f"{raw.resource_type}{ANONYMOUS_MARK}{hashlib.sha256(content).hexdigest()[:16]}"
    key = (raw.location.file, name)
    copies = seen[key] = seen.get(key, 0) + 1
    return name if copies == 1 else f"{name}-{copies}"


def _patient(raw: RawResource) -> Patient:
    res = raw.resource
    gender = _str_field(res, "gender")
    ref = raw.default_patient or _resource_ref(raw)
    return Patient(ref=ref, birth_date=_date(res.get("birthDate")), sex=gender)


def _status(res: dict[str, Any], name: str = "status") -> str:
    return _str_field(res, name)


def _medication_order(raw: RawResource, index: _Index, today: date) -> MedicationOrder:
    res = raw.resource
    version = detect_version(res)
    if "medicationCodeableConcept" not in res and "medicationReference" not in res and "medication" not in res:
        raise _Bad("/medication", Message("order-no-medication"))
    medication, ingredients, form, note = _medication(res, raw, index)
    substitution = res.get("substitution")
    allowed: bool | None = None
    reason: Concept | None = None
    if substitution is not None and isinstance(substitution, dict):
        if isinstance(substitution.get("allowedBoolean"), bool):
            allowed = substitution["allowedBoolean"]
        elif isinstance(substitution.get("allowedCodeableConcept"), dict):
            sub = _concept(substitution["allowedCodeableConcept"], "/substitution/allowedCodeableConcept")
            codes = {c.code for c in sub.codings}
            allowed = False if codes & {"N", "none"} else True if codes else None
        if substitution.get("reason") is not None:
            reason = _concept(substitution.get("reason"), "/substitution/reason")
    reasons = _concepts(_list(res, "reasonCode"), "/reasonCode") if "reasonCode" in res else ()
    reason_refs = tuple(_ref(r) for r in _list(res, "reasonReference") if _ref(r)) if "reasonReference" in res else ()
    if version == "R5":  # R5 reason is a list of CodeableReference
        for r in _list(res, "reason"):
            if isinstance(r, dict):
                if r.get("concept") is not None:
                    reasons += (_concept(r["concept"], "/reason"),)
                if _ref(r.get("reference")):
                    reason_refs += (_ref(r.get("reference")),)
    notes = " ".join(_s(n.get("text")) for n in _list(res, "note") if isinstance(n, dict)).strip() if "note" in res else ""
    status, intent = _str_field(res, "status"), _str_field(res, "intent")
    authored = _date(res.get("authoredOn"))
    if authored is None and "_authoredOn" in res:
        authored = _dated(res, "authoredOn", today)
    dosages, dispense = _dosages_and_dispense(index, raw, today)  # after status/intent: same first error
    return MedicationOrder(
        ref=_resource_ref(raw),
        status=status,
        intent=intent,
        medication=medication,
        ingredients=ingredients,
        medication_form=form,
        authored_on=authored,
        requester=_ref(res.get("requester")),
        dosages=dosages,
        dispense=dispense,
        substitution_allowed=allowed,
        substitution_reason=reason,
        reasons=reasons,
        reason_refs=reason_refs,
        category=_concepts(_list(res, "category"), "/category") if "category" in res else (),
        note=f"{notes} {note}" if notes and note else notes or note,
        fhir_version=version,
        location=raw.location,
        draft=raw.draft,
    )


def _dosages_and_dispense(index: _Index, raw: RawResource, today: date) -> tuple[tuple[Dosage, ...], Dispense | None]:
    """A MedicationRequest's dosage instructions and dispense request, shared between requests
    that write both the same way (see :func:`_shared_element`)."""
    return _shared_element(index, raw, ("dosageInstruction", "dispenseRequest"),
                           lambda res: (_dosages(res, "dosageInstruction"), _dispense(res.get("dispenseRequest"), today)))


_USE_STATUS_TAKEN = {
    "MedicationDispense": {"completed", "in-progress", "preparation"},
    "MedicationAdministration": {"completed", "in-progress"},
    "MedicationStatement": {"active", "completed", "intended", "recorded"},
}
_USE_KIND = {"MedicationDispense": "dispense", "MedicationAdministration": "administration",
             "MedicationStatement": "statement"}
_STU3_NOT_DONE = {"MedicationDispense": ("notDone", True, "declined"),
                  "MedicationAdministration": ("notGiven", True, "not-done"),
                  "MedicationStatement": ("taken", "n", "not-taken")}
"""STU3 flags saying the drug was not dispensed/given/taken: (element, value, R4 status meaning it)."""
_ADHERENCE_SYSTEM = "http://hl7.org/fhir/CodeSystem/medication-statement-adherence"
_ADHERENCE_TAKING = {"taking", "taking-as-directed", "taking-not-as-directed"}
_ADHERENCE_NOT_TAKING = {"not-taking", "on-hold", "on-hold-as-directed", "on-hold-not-as-directed",
                         "stopped", "stopped-as-directed", "stopped-not-as-directed"}
"""R5 MedicationStatement.adherence codes: ``taking`` and ``not-taking`` with their sub-codes."""


def _adherence(res: dict[str, Any]) -> str:
    """``taking``, ``not-taking`` or '' from an R5 MedicationStatement's ``adherence.code``."""
    adherence = res.get("adherence")
    if not isinstance(adherence, dict):
        return ""
    for c in _concept(adherence.get("code"), "/adherence/code").codings:
        if c.system in ("", _ADHERENCE_SYSTEM):
            if c.code in _ADHERENCE_TAKING:
                return "taking"
            if c.code in _ADHERENCE_NOT_TAKING:
                return "not-taking"
    return ""


def _use_status(res: dict[str, Any], rt: str) -> str:
    """The status of a dispense, administration or statement, read with what else says the drug
    was not taken: STU3 ``notDone``/``notGiven``/``taken: n`` and R5 ``adherence`` not-taking."""
    status = _status(res)
    element, value, meaning = _STU3_NOT_DONE[rt]
    if res.get(element) == value:
        return meaning
    if rt == "MedicationStatement" and status not in NOT_TAKEN and _adherence(res) == "not-taking":
        return "not-taking"
    return status


def _last_day(value: Any) -> date | None:
    """Last day a FHIR date/dateTime covers: the day itself, or the end of a year or month given
    alone (``2025`` → 2025-12-31, ``2025-03`` → 2025-03-31); ``None`` if absent/odd."""
    first = _date(value)
    if first is None or not isinstance(value, str):
        return first
    if len(value) == 4:
        return date(first.year, 12, 31)
    if len(value) == 7:
        return first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return first


def _medication_use(raw: RawResource, index: _Index, today: date) -> MedicationOrder:
    """A dispense, administration or statement: a drug the patient is taking over a period.

    Its period is carried as a :class:`Dispense` (start, end or supply days) so that
    treatment-period logic treats every kind alike:

    * a dispense runs from its hand-over (else preparation) for ``daysSupply``; without it, it is
      open-ended like a prescription without duration;
    * an administration covers its ``effectivePeriod``, or, given at one ``effectiveDateTime``,
      that day only (the day, month or year the date is written to);
    * a statement covers its ``effectivePeriod`` (an omitted end means still being taken, per the
      FHIR comment on ``effective[x]``). An ``effectiveDateTime`` is, per FHIR, "the date/time
      when the medication is/was/will be taken": a statement that says the drug is no longer
      taken (R4 status ``completed``) covers that day only; any other (R4 ``active``,
      ``intended``, ``unknown``, ``on-hold``; R5 ``recorded``, the usual medication-list entry)
      runs from that day on, because nothing says it ended: reading it as one day would hide
      its interactions (a false all-clear). No duration is assumed beyond what is written.

    Its status is ``active`` when the drug was handed over, given or is being taken, else the
    original status; records saying it was not taken (R4/R5 ``not-taken``, ``not-done``,
    ``declined``, STU3 ``taken: n``/``notGiven``/``notDone``, R5 adherence ``not-taking``) keep a
    status of :data:`~checker.model.NOT_TAKEN`, so they never count as a treatment.
    """
    res, rt = raw.resource, raw.resource_type
    if not any(k in res for k in ("medicationCodeableConcept", "medicationReference", "medication")):
        raise _Bad("/medication", Message("no-medication"))
    medication, ingredients, form, note = _medication(res, raw, index)
    status = _use_status(res, rt)
    start = end = None
    supply_days = None
    if rt == "MedicationDispense":
        start = _dated(res, "whenHandedOver", today) or _dated(res, "whenPrepared", today)
        days = res.get("daysSupply")
        if isinstance(days, dict):
            q = _quantity(days, "/daysSupply")
            supply_days = period_days(q.value, _ucum_time(q.unit) or "d") if q else None
    else:
        start = _dated(res, "effectiveDateTime", today)
        if start is not None:
            ongoing = rt == "MedicationStatement" and status != "completed"
            end = None if ongoing else (_last_day(res.get("effectiveDateTime")) or start)
        period = res.get("effectivePeriod")
        if isinstance(period, dict):
            start = start or _date(period.get("start"))
            end = end or _date(period.get("end"))
            for expr in _ext_cql(period):
                parts = re.split(r"\bend\s*:", expr, maxsplit=1)
                start = start or _cql_date(parts[0], today)
                if len(parts) > 1:
                    end = end or _cql_date(parts[1], today)
        start = start or _date(res.get("dateAsserted"))
    dosage_name = "dosageInstruction" if rt == "MedicationDispense" else "dosage"
    dosage_list = _list(res, dosage_name) if rt in ("MedicationDispense", "MedicationStatement") else []
    taken = status in _USE_STATUS_TAKEN[rt]
    return MedicationOrder(
        ref=_resource_ref(raw),
        status="active" if taken else status,
        intent=_USE_KIND[rt],
        medication=medication,
        ingredients=ingredients,
        medication_form=form,
        authored_on=start,
        dosages=tuple(_dosage(d, f"/{dosage_name}/{i}") for i, d in enumerate(dosage_list)),
        dispense=Dispense(validity_start=start, validity_end=end, supply_days=supply_days),
        note=" ".join(x for x in (f"{rt} ({status})", note) if x),
        fhir_version=detect_version(res),
        location=raw.location,
        draft=False,
        kind=_USE_KIND[rt],  # type: ignore[arg-type]
    )


Medicated = tuple[Concept, tuple[Ingredient, ...], Concept | None, str]
"""What an order names: (code concept, ingredients, form, note)."""


def _medication(res: dict[str, Any], raw: RawResource, index: _Index) -> Medicated:
    """The ordered medication: (code concept, ingredients, form, note) from any FHIR version."""
    concept_value: Any = res.get("medicationCodeableConcept")
    reference: Any = res.get("medicationReference")
    path = "/medicationCodeableConcept"
    if isinstance(res.get("medication"), dict):  # R5 CodeableReference
        concept_value = res["medication"].get("concept")
        reference = res["medication"].get("reference")
        path = "/medication/concept"
    if concept_value is not None:
        if not raw.json_native:  # a caller's dict: no sharing by JSON text (see RawResource)
            return _concept(concept_value, path), (), None, ""
        key: Any = orjson.dumps(concept_value)
        hit = index.medications.get(key)
        if hit is None:
            hit = index.medications[key] = (_concept(concept_value, path), (), None, "")
        return hit
    ref = _ref(reference)
    if not ref:
        display = _s(reference.get("display")) if isinstance(reference, dict) else ""
        return Concept(text=display), (), None, ""
    target: Any = _contained(res, ref[1:]) if ref.startswith("#") else None
    if target is None:
        target = index.resolve(ref, near=raw)
    med = target.resource if isinstance(target, RawResource) else target
    if not isinstance(med, dict) or med.get("resourceType") != "Medication":
        display = _s(reference.get("display")) or ref
        return Concept(text=display), (), None, f"medication reference {ref} not found in the input"
    shared = index.medications.get(id(med))
    if shared is None:  # the entry holds the Medication dict, so its id is not reused meanwhile
        try:
            shared = index.medications[id(med)] = (med, _medication_resource(med))
        except _Bad as bad:  # say where the bad element really is
            if isinstance(target, RawResource):
                raise _Bad(bad.path, Message(bad.message.code, bad.message.params,
                                             (*bad.message.extra, Message("in-medication", {"ref": ref}))),
                           where=target.location) from None
            position = next(i for i, c in enumerate(_list(res, "contained")) if c is med)
            raise _Bad(f"/contained/{position}{bad.path}", bad.message) from None
    return shared[1]


def _contained(res: dict[str, Any], local_id: str) -> dict[str, Any] | None:
    for c in _list(res, "contained"):
        if isinstance(c, dict) and c.get("id") == local_id:
            return c
    return None


def _medication_resource(med: dict[str, Any]) -> tuple[Concept, tuple[Ingredient, ...], Concept | None, str]:
    code = _concept(med.get("code"), "/code")
    ingredients = []
    for i, ing in enumerate(_list(med, "ingredient")):
        if not isinstance(ing, dict):
            continue
        item = ing.get("itemCodeableConcept")
        if item is None and isinstance(ing.get("item"), dict):  # R5 CodeableReference
            item = ing["item"].get("concept")
            if item is None:
                item = {"text": _s((ing["item"].get("reference") or {}).get("display"))}
        if item is None and isinstance(ing.get("itemReference"), dict):
            item = {"text": _s(ing["itemReference"].get("display"))}
        strength = ing.get("strength") or ing.get("strengthRatio")
        num = den = None
        if isinstance(strength, dict):
            num = _quantity(strength.get("numerator"), f"/ingredient/{i}/strength/numerator")
            den = _quantity(strength.get("denominator"), f"/ingredient/{i}/strength/denominator")
        elif isinstance(ing.get("strengthQuantity"), dict):
            num = _quantity(ing["strengthQuantity"])
        ingredients.append(Ingredient(_concept(item, f"/ingredient/{i}/item"), num, den))
    form = _concept(med.get("form") or med.get("doseForm"), "/form" if med.get("form") else "/doseForm") if (med.get("form") or med.get("doseForm")) else None
    return code, tuple(ingredients), form, ""


_MAX_SHARED_ELEMENTS = 100_000


def _shared_element(index: _Index, raw: RawResource, names: tuple[str, ...],
                    extract: Callable[[dict[str, Any]], Any]) -> Any:
    """``extract(resource)``, which reads the elements ``names`` only, shared between resources
    that write these elements the same way (same JSON text).

    Bulk exports repeat the same dosage and dispense structures over and over; the extracted
    objects are immutable, so one extraction serves every identical element of the input. An
    element that fails extraction raises each time (never cached). The index belongs to one
    assemble call, which has one "today" (CQL dates), so the JSON text is the whole key.
    """
    res = raw.resource
    if not raw.json_native:
        return extract(res)
    key = (names, *[orjson.dumps(res.get(name)) for name in names])
    hit = index.elements.get(key, _MISSING)
    if hit is _MISSING:
        hit = extract(res)
        if len(index.elements) < _MAX_SHARED_ELEMENTS:
            index.elements[key] = hit
    return hit


_MISSING = object()


def _dosages(res: dict[str, Any], name: str) -> tuple[Dosage, ...]:
    return tuple(_dosage(d, f"/{name}/{i}") for i, d in enumerate(_list(res, name)))


def _dosage(d: Any, path: str) -> Dosage:
    if not isinstance(d, dict):
        raise _Bad(path, Message("dosage-not-object"))
    dose = high = None
    dar = d.get("doseAndRate")
    if isinstance(dar, list) and dar and isinstance(dar[0], dict):
        first = dar[0]
        dose = _quantity(first.get("doseQuantity"), f"{path}/doseAndRate/0/doseQuantity")
        rng = first.get("doseRange")
        if dose is None and isinstance(rng, dict):
            dose = _quantity(rng.get("low"), f"{path}/doseAndRate/0/doseRange/low")
            high = _quantity(rng.get("high"), f"{path}/doseAndRate/0/doseRange/high")
    elif d.get("doseQuantity") is not None:  # STU3
        dose = _quantity(d.get("doseQuantity"), f"{path}/doseQuantity")
    timing: dict[str, Any] = t if isinstance(t := d.get("timing"), dict) else {}
    repeat: dict[str, Any] = r if isinstance(r := timing.get("repeat"), dict) else {}
    bounds_start = bounds_end = None
    bounds_days = None
    if isinstance(repeat.get("boundsPeriod"), dict):
        bounds_start = _date(repeat["boundsPeriod"].get("start"))
        bounds_end = _date(repeat["boundsPeriod"].get("end"))
    if isinstance(repeat.get("boundsDuration"), dict):
        q = _quantity(repeat["boundsDuration"], f"{path}/timing/repeat/boundsDuration")
        if q is not None:
            bounds_days = period_days(q.value, _ucum_time(q.unit))
    max_per = max_days = None
    mdp = d.get("maxDosePerPeriod")
    if isinstance(mdp, list):  # R5: list
        mdp = mdp[0] if mdp else None
    if isinstance(mdp, dict):
        max_per = _quantity(mdp.get("numerator"), f"{path}/maxDosePerPeriod/numerator")
        den = _quantity(mdp.get("denominator"), f"{path}/maxDosePerPeriod/denominator")
        if den is not None:
            max_days = period_days(den.value, _ucum_time(den.unit))
    as_needed = d.get("asNeededBoolean")
    if as_needed is None:
        as_needed = d.get("asNeeded")
    return Dosage(
        text=_s(d.get("text")) or _s(d.get("patientInstruction")),
        dose=dose,
        dose_range_high=high,
        frequency=_num(repeat.get("frequency")),
        frequency_max=_num(repeat.get("frequencyMax")),
        period=_num(repeat.get("period")),
        period_unit=_s(repeat.get("periodUnit")),
        as_needed=bool(as_needed) or "asNeededCodeableConcept" in d or "asNeededFor" in d,
        route=_concept(d["route"], f"{path}/route") if isinstance(d.get("route"), dict) else None,
        bounds_start=bounds_start,
        bounds_end=bounds_end,
        bounds_days=bounds_days,
        max_dose_per_period=max_per,
        max_dose_period_days=max_days,
    )


_UCUM_TIME = {"day": "d", "days": "d", "jour": "d", "jours": "d", "week": "wk", "weeks": "wk", "semaine": "wk",
              "semaines": "wk", "month": "mo", "months": "mo", "mois": "mo", "year": "a", "years": "a", "an": "a",
              "ans": "a", "hour": "h", "hours": "h", "h": "h", "d": "d", "wk": "wk", "mo": "mo", "a": "a"}


def _ucum_time(unit: str) -> str:
    return _UCUM_TIME.get(unit.strip().lower(), unit)


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _dispense(value: Any, today: date) -> Dispense | None:
    if not isinstance(value, dict):
        return None
    start = end = None
    vp = value.get("validityPeriod")
    if isinstance(vp, dict):
        start, end = _date(vp.get("start")), _date(vp.get("end"))
        for expr in _ext_cql(vp):  # "FHIR.Period { start: … Today() - 90 days …, end: … Today() … }"
            parts = re.split(r"\bend\s*:", expr, maxsplit=1)
            start = start or _cql_date(parts[0], today)
            if len(parts) > 1:
                end = end or _cql_date(parts[1], today)
    supply = value.get("expectedSupplyDuration")
    supply_days = None
    if isinstance(supply, dict):
        q = _quantity(supply, "/dispenseRequest/expectedSupplyDuration")
        if q is not None:
            supply_days = period_days(q.value, _ucum_time(q.unit))
    repeats = value.get("numberOfRepeatsAllowed")
    return Dispense(
        validity_start=start,
        validity_end=end,
        quantity=_quantity(value.get("quantity"), "/dispenseRequest/quantity"),
        supply_days=supply_days,
        repeats=repeats if isinstance(repeats, int) and not isinstance(repeats, bool) and repeats >= 0 else 0,
    )


def _service_order(raw: RawResource, today: date) -> ServiceOrder:
    res = raw.resource
    code = res.get("code")
    if isinstance(code, dict) and "concept" in code and "coding" not in code:  # R5 CodeableReference
        code = code.get("concept")
    reasons = _concepts(_list(res, "reasonCode"), "/reasonCode")
    reason_refs = tuple(_ref(r) for r in _list(res, "reasonReference") if _ref(r))
    for r in _list(res, "reason"):  # R5
        if isinstance(r, dict):
            if r.get("concept") is not None:
                reasons += (_concept(r["concept"], "/reason"),)
            if _ref(r.get("reference")):
                reason_refs += (_ref(r.get("reference")),)
    occurrence = _date(res.get("occurrenceDateTime"))
    if occurrence is None and isinstance(res.get("occurrencePeriod"), dict):
        occurrence = _date(res["occurrencePeriod"].get("start"))
    notes = " ".join(_s(n.get("text")) for n in _list(res, "note") if isinstance(n, dict)).strip()
    return ServiceOrder(
        ref=_resource_ref(raw),
        status=_status(res),
        intent=_str_field(res, "intent"),
        code=_concept(code, "/code"),
        category=_concepts(_list(res, "category"), "/category"),
        authored_on=_dated(res, "authoredOn", today),
        occurrence=occurrence,
        requester=_ref(res.get("requester")),
        reasons=reasons,
        reason_refs=reason_refs,
        body_site=_concepts(_list(res, "bodySite"), "/bodySite"),
        note=notes,
        fhir_version=detect_version(res),
        location=raw.location,
        draft=raw.draft,
    )


def _status_code(value: Any, path: str) -> str:
    if isinstance(value, str):
        return value
    concept = _concept(value, path)
    return concept.codings[0].code if concept.codings else ""


def _condition(raw: RawResource) -> Condition:
    res = raw.resource
    onset = _date(res.get("onsetDateTime"))
    if onset is None and isinstance(res.get("onsetPeriod"), dict):
        onset = _date(res["onsetPeriod"].get("start"))
    abatement = _date(res.get("abatementDateTime"))
    if abatement is None and isinstance(res.get("abatementPeriod"), dict):
        abatement = _date(res["abatementPeriod"].get("end")) or _date(res["abatementPeriod"].get("start"))
    return Condition(
        ref=_resource_ref(raw),
        code=_concept(res.get("code"), "/code"),
        clinical_status=_status_code(res.get("clinicalStatus"), "/clinicalStatus"),
        verification_status=_status_code(res.get("verificationStatus"), "/verificationStatus"),
        onset=onset,
        abatement=abatement,
        recorded=_date(res.get("recordedDate")) or _date(res.get("assertedDate")),
        category=_concepts(_list(res, "category"), "/category"),
    )


def _allergy(raw: RawResource) -> Allergy:
    res = raw.resource
    reactions: list[Concept] = []
    for i, r in enumerate(_list(res, "reaction")):
        if isinstance(r, dict):
            subst = r.get("substance")
            if isinstance(subst, dict):
                reactions.append(_concept(subst, f"/reaction/{i}/substance"))
    category = tuple(c for c in _list(res, "category") if isinstance(c, str))
    onset = _date(res.get("onsetDateTime")) or _date(res.get("onset"))  # DSTU2: onset is a dateTime
    if onset is None and isinstance(res.get("onsetPeriod"), dict):
        onset = _date(res["onsetPeriod"].get("start"))
    clinical = _status_code(res.get("clinicalStatus"), "/clinicalStatus")
    verification = _status_code(res.get("verificationStatus"), "/verificationStatus")
    old_status = _s(res.get("status"))  # DSTU2: one status for both
    if not clinical and not verification and old_status:
        if old_status in NOT_TRUE:
            verification = old_status
        else:
            clinical = old_status if old_status in ("inactive", "resolved") else "active"
    abatement = None
    for ext in _list(res, "extension"):
        if isinstance(ext, dict) and ext.get("url") == ALLERGY_ABATEMENT:
            abatement = _date(ext.get("valueDateTime")) or _date(ext.get("valueDate"))
            if abatement is None and isinstance(ext.get("valuePeriod"), dict):
                abatement = _date(ext["valuePeriod"].get("end")) or _date(ext["valuePeriod"].get("start"))
    return Allergy(
        ref=_resource_ref(raw),
        code=_concept(res["code"], "/code") if res.get("code") is not None
        else _concept(res.get("substance"), "/substance"),  # DSTU2 names the allergen in substance
        clinical_status=clinical,
        verification_status=verification,
        criticality=_s(res.get("criticality")),
        category=category,
        reactions=tuple(reactions),
        onset=onset,
        # R4/R5 recordedDate, STU3 assertedDate (DSTU2 recordedDate too)
        recorded=_date(res.get("recordedDate")) or _date(res.get("assertedDate")),
        last_occurrence=_date(res.get("lastOccurrence")) or _date(res.get("lastOccurence")),  # DSTU2 spelling
        abatement=abatement,
    )


ALLERGY_ABATEMENT = "http://hl7.org/fhir/StructureDefinition/allergyintolerance-abatement"
"""When an allergy or intolerance resolved (FHIR Extensions Pack 5.x, trial use; dateTime or Period read)."""


def _observation(raw: RawResource) -> Observation:
    res = raw.resource
    value = unit = None
    vq = res.get("valueQuantity")
    if vq is not None:
        q = _quantity(vq, "/valueQuantity")
        if q is not None:
            value, unit = q.value, q.unit
    effective = _date(res.get("effectiveDateTime")) or _date(res.get("issued"))
    if effective is None and isinstance(res.get("effectivePeriod"), dict):
        effective = _date(res["effectivePeriod"].get("start"))
    vc = res.get("valueCodeableConcept")
    vb = res.get("valueBoolean")
    return Observation(
        ref=_resource_ref(raw),
        code=_concept(res.get("code"), "/code"),
        value=value,
        unit=unit or "",
        value_concept=_concept(vc, "/valueCodeableConcept") if isinstance(vc, dict) else None,
        value_bool=vb if isinstance(vb, bool) else None,
        effective=effective,
        status=_s(res.get("status")),
    )


__all__ = [
    "FileMark",
    "Ingestion",
    "RawResource",
    "USED_TYPES",
    "assemble",
    "detect_version",
    "iter_raw",
    "read",
]


_MAGIC = ((b"%PDF", "pdf"), (b"PK\x03\x04", "zip"), (b"\x89PNG", "png"), (b"\xff\xd8\xff", "jpeg"), (b"GIF8", "gif"),
          (b"\xd0\xcf\x11\xe0", "old-office"), (b"{\\rtf", "rtf"), (b"SQLite format 3", "sqlite"), (b"MSH|", "hl7v2"))


def not_fhir_kind(data: bytes) -> str:
    """What a file that is not FHIR JSON/XML looks like, from its first bytes, as a code of the
    catalogue table ``input_kind`` (``"pdf"`` …); "" when nothing is recognised (then the parser's own
    message is the clearest)."""
    head = data.lstrip()[:16]
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    sample = data[:4096]
    if sample and b"\x00" in sample:
        return "binary"
    first = sample.split(b"\n", 1)[0]
    if first.count(b";") >= 2 or first.count(b",") >= 3 or first.count(b"\t") >= 2:
        return "csv"
    if sample and not sample.lstrip()[:1] in (b"{", b"["):
        return "text"
    return ""
