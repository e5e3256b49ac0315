"""Shard lines: how a raw resource travels from the input to a worker and back.

A shard line is ``<patient key as JSON>\\t<file index>.<item index>\\t<payload>\\n``. The
key and position come first so that a worker can group and order a shard's lines by patient
without parsing the payloads; payloads are parsed only for the chunk being checked.

A payload is either an item as JSON (:func:`encode`), or an NDJSON line of the input copied as
it is (:func:`encode_line`: ``n<line number>\\t<file as JSON>\\t<the line>``), which the partition
routes by its patient reference alone (:func:`line_patient`) and the worker reads as the
reader reads any NDJSON line (:func:`decode_items`): the line is parsed once, by the worker.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import msgspec
import orjson

from checker.findings import InputError, Message, Quantity, Word
from checker.fhir_input import LOCAL_REF, FileMark, RawResource, TypedResource, ndjson_line_items
from checker.fhir_input.raw import written_patient
from checker.fhir_input.typed import MedicationRequestLine, decode_line
from checker.model import SourceLocation

Item = RawResource | InputError | FileMark
Seq = tuple[int, int]

_ABSOLUTE = re.compile(r"(?:^|/)(Patient)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def encode(item: Item) -> bytes:
    """The payload of one item (JSON, no newline)."""
    if isinstance(item, RawResource):
        loc = item.location
        return orjson.dumps(["r", item.resource, [loc.file, loc.line, loc.entry, loc.pointer],
                             item.full_url, item.draft, item.default_patient])
    if isinstance(item, InputError):
        return orjson.dumps(["e", item.location, item.message, item.resource_type,
                             _message_data(item.code) if item.code is not None else None])
    if isinstance(item, FileMark):
        return orjson.dumps(["f", item.name])
    raise TypeError(f"cannot encode {type(item).__name__}")


def decode(payload: bytes | str) -> Item:
    """Inverse of :func:`encode` (and of :func:`encode_line`, whose line gives one item)."""
    if payload[:1] in (b"n", "n"):
        (item,) = decode_items(payload if isinstance(payload, bytes) else payload.encode("utf-8"))
        return item  # type: ignore[return-value]  # not typed
    data: list[Any] = orjson.loads(payload)
    tag = data[0]
    if tag == "r":
        f, line, entry, pointer = data[2]
        return RawResource(data[1], SourceLocation(f, line, entry, pointer), full_url=data[3], draft=data[4],
                           default_patient=data[5])
    if tag == "e":
        code = _message(data[4]) if len(data) > 4 and data[4] is not None else None
        return InputError(data[1], data[2], data[3], code)
    if tag == "f":
        return FileMark(data[1])
    raise ValueError(f"unknown shard item tag {tag!r}")


class _OrderPayload(msgspec.Struct, array_like=True, forbid_unknown_fields=True, gc=False):
    """The payload of a MedicationRequest that :func:`decode_typed` reads typed: what :func:`encode`
    writes, the resource as :class:`~checker.fhir_input.typed.MedicationRequestLine`."""

    tag: Literal["r"]
    resource: MedicationRequestLine
    location: tuple[str, int | None, int | None, str]
    full_url: str
    draft: bool
    default_patient: str


_ORDER_DECODER = msgspec.json.Decoder(_OrderPayload)
_ENCODER = msgspec.json.Encoder()


def decode_typed(payload: bytes) -> TypedResource | None:
    """A MedicationRequest payload decoded typed (assembly extracts it without its dict, as it does
    the NDJSON lines of :func:`checker.fhir_input.read`), or ``None`` when it must be read by
    :func:`decode`: another item, an element the typed structure does not name, an escape, a key
    written twice (see :func:`checker.fhir_input.typed.decode_line`, whose conditions these are), a
    Bundle ``fullUrl``, a CDS Hooks draft or default patient. When assembly cannot extract it typed
    either, it reads it with :func:`decode`."""
    if b"\\" in payload or not payload.startswith(b'["r",') or payload.find(b'"MedicationRequest"', 0, 100) < 0:
        return None
    try:
        decoded = _ORDER_DECODER.decode(payload)
    except msgspec.DecodeError:  # also msgspec.ValidationError: another shape, type or element
        return None
    if decoded.full_url or decoded.draft or decoded.default_patient:
        return None
    encoded = _ENCODER.encode(decoded)  # the same length proves no member dropped, else colons compared
    if len(encoded) != len(payload) and payload.count(b":") != encoded.count(b":"):
        return None
    return TypedResource(decoded.resource, payload, SourceLocation(*decoded.location), decode)


class _Routing(msgspec.Struct, gc=False):
    """The top-level elements of a resource that name its patient (the others are skipped unread)."""

    resourceType: str
    id: Any = None
    subject: Any = None
    patient: Any = None


_ROUTING_DECODER = msgspec.json.Decoder(_Routing)


def line_patient(line: bytes, where: str) -> str | None:
    """The patient key of an NDJSON line of ``where`` (before :func:`normalise_patient_key`), the
    same as ``RawResource.patient_key`` gives for the resource the reader makes of it, or ``None``
    when that cannot be told without reading the line as the reader does: an escape, text that is
    not one JSON object (or that the decoder refuses), no ``resourceType`` text, a Bundle, no patient
    reference. A line the reader refuses as an error (an error has no patient) may still get a key
    here when the decoder accepts it (a repeated key, for one): the worker then reads that error
    where the line was routed, and errors are reported in input order whatever their shard."""
    if b"\\" in line:
        return None
    try:
        found = _ROUTING_DECODER.decode(line)
    except msgspec.DecodeError:  # also msgspec.ValidationError: no resourceType text
        return None
    rt = found.resourceType
    if rt == "Patient":
        return f"Patient/{found.id}" if type(found.id) is str else None
    if not rt or rt == "Bundle":
        return None
    for ref in (found.subject, found.patient):
        if type(ref) is dict and type(written := ref.get("reference")) is str:
            return written_patient(written, where)
    return None


def encode_line(number: int, where_json: bytes, line: bytes) -> bytes:
    """The payload of NDJSON line ``number`` of a file (``where_json``: its name as JSON), copied as it is."""
    return b"n%d\t%b\t%b" % (number, where_json, line)


_WHERE: dict[bytes, str] = {}


def file_name(where_json: bytes) -> str:
    """The file name an NDJSON line's payload writes as JSON (read once per name, bounded)."""
    where = _WHERE.get(where_json)
    if where is None:
        if len(_WHERE) > 1000:
            _WHERE.clear()
        where = _WHERE[where_json] = orjson.loads(where_json)
    return where


def decode_items(payload: bytes, typed: bool = False) -> list[Item | TypedResource]:
    """The items of a payload: what the reader makes of an NDJSON line written by :func:`encode_line`
    (``typed``: a MedicationRequest line decoded typed, see :func:`checker.fhir_input.iter_raw`), or
    the item :func:`encode` wrote."""
    if payload[:1] != b"n":
        return [(decode_typed(payload) if typed else None) or decode(payload)]
    number, where_json, line = payload[1:].split(b"\t", 2)
    where = file_name(where_json)
    if typed and (decoded := decode_line(line)) is not None:
        return [TypedResource(decoded, line, SourceLocation(where, int(number)))]
    return list(ndjson_line_items(line, where, int(number)))


def _message_data(m: Message) -> list[Any]:
    """An input error's code as JSON: code, parameters (text, numbers, ``Word``, ``Quantity``), extras."""
    def param(v: Any) -> Any:
        if isinstance(v, Word):
            return {"w": [v.table, v.code]}
        if isinstance(v, Quantity):
            return {"q": [v.value, v.unit, v.decimals]}
        if isinstance(v, (str, int, float)):
            return v
        raise TypeError(f"cannot encode a {type(v).__name__} message parameter")
    return [m.code, {k: param(v) for k, v in m.params.items()}, [_message_data(x) for x in m.extra]]


def _message(data: list[Any]) -> Message:
    def param(v: Any) -> Any:
        if isinstance(v, dict) and "w" in v:
            return Word(*v["w"])
        if isinstance(v, dict) and "q" in v:
            return Quantity(*v["q"])
        return v
    return Message(data[0], {k: param(v) for k, v in data[1].items()}, tuple(_message(x) for x in data[2]))


def line(key: str | None, seq: Seq, payload: bytes) -> bytes:
    """One shard line (see module docstring); ``key`` ``None`` means "no patient"."""
    return orjson.dumps(key) + b"\t" + f"{seq[0]}.{seq[1]}".encode() + b"\t" + payload + b"\n"


def split(raw_line: bytes) -> tuple[str | None, Seq, bytes]:
    """Key, position and payload of a shard line."""
    key, seq, payload = raw_line.rstrip(b"\n").split(b"\t", 2)
    a, _, b = seq.partition(b".")
    return orjson.loads(key), (int(a), int(b)), payload


def normalise_patient_key(key: str | None, aliases: dict[str, str]) -> str | None:
    """One key per patient whatever the reference form (``urn:uuid:`` via the file's Patient
    ``fullUrl``, absolute URLs, conditional references by identifier)."""
    if key is None:
        return None
    key = aliases.get(key, key)
    m = _ABSOLUTE.search(key)
    if m:
        return f"Patient/{m.group(2)}"
    return key


def patient_aliases(items: list[Item]) -> dict[str, str]:
    """Other names of the Patient resources among ``items`` (fullUrl, identifier searches)."""
    out: dict[str, str] = {}
    for item in items:
        if not isinstance(item, RawResource) or item.resource_type != "Patient":
            continue
        key = item.patient_key()
        if not key:
            continue
        if item.full_url:
            out[item.full_url] = key
        rid = item.resource.get("id")
        if isinstance(rid, str) and rid:  # a local "#id" of the same file (see fhir_input.LOCAL_REF)
            out[f"{item.location.file}{LOCAL_REF}#{rid}"] = key
        idents = item.resource.get("identifier")
        if isinstance(idents, list):
            for ident in idents:
                if isinstance(ident, dict) and isinstance(ident.get("value"), str):
                    system = ident.get("system") if isinstance(ident.get("system"), str) else ""
                    out[f"Patient?identifier={system}|{ident['value']}"] = key
                    out.setdefault(f"Patient?identifier={ident['value']}", key)
    return out


def medication_keys(raw: RawResource) -> list[str]:
    """The references under which a stand-alone Medication can be cited."""
    rid = raw.resource.get("id")
    keys = []
    if isinstance(rid, str) and rid:
        keys += [f"Medication/{rid}", f"#{rid}"]
    if raw.full_url:
        keys.append(raw.full_url)
    return keys


_MED_ABSOLUTE = re.compile(r"(?:^|/)Medication/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def medication_refs(raw: RawResource) -> list[str]:
    """Keys under which the Medication cited by a MedicationRequest may be found."""
    ref = raw.resource.get("medicationReference")
    if not isinstance(ref, dict) or not isinstance(ref.get("reference"), str):
        return []
    value = ref["reference"]
    out = [value]
    m = _MED_ABSOLUTE.search(value)
    if m:
        out.append(f"Medication/{m.group(1)}")
    return out
