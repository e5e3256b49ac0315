"""Decoding checks: repeated JSON keys, FHIR XML converted to JSON, files that are not FHIR at all."""

from __future__ import annotations

from typing import Any

import orjson

from checker.fhir_input.errors import _err
from checker.findings import InputError, Message


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
