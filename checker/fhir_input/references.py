"""Reference resolution over one reading, and the names resources are given in outputs."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from typing import Any
from urllib.parse import unquote

import orjson

from checker.fhir_input.elements import _s
from checker.fhir_input.raw import RawResource
from checker.model import ANONYMOUS_MARK, SourceLocation


SHARED_ENTRIES = 100_000
"""Entries kept per table of a :class:`SharedReading` made for one reading (a run's chunks share a
smaller one: see :data:`RUN_SHARED_ENTRIES`)."""

RUN_SHARED_ENTRIES = 20_000
"""Entries kept per table of the :class:`SharedReading` that the chunks of one sharded run share: far
more than the distinct medications, dosages and dates of a bulk export, and a bound on what a long
run keeps alive when every line writes its own dosage."""


class SharedReading:
    """Extractions shared between resources that write an element the same way (same JSON text).

    Bulk exports repeat a few hundred medications, dosages, dispense requests and dates over millions
    of lines: each distinct text is extracted once, and the objects built from it are shared, so that
    identification and the rules' memos (keyed by object identity) hit across lines. One reading
    makes its own; the chunks of a sharded run (``check`` above its threshold, an audit's shards)
    share one, so that every chunk does not extract the same texts again. Extracted objects are
    immutable and the same text always gives equal objects, so sharing changes the cost, never a
    result. Bounded: a table holding ``limit`` entries is emptied before the next is added. Valid
    for one "today" (CQL dates): a reading with another day empties every table first.
    """

    def __init__(self, limit: int | None = None) -> None:
        self.limit = RUN_SHARED_ENTRIES if limit is None else limit
        self.today: date | None = None
        self.medications: dict[bytes, Any] = {}  # see :func:`~.medications._medication`
        self.elements: dict[tuple[Any, ...], Any] = {}  # see :func:`~.medications._shared_element`
        # The same for typed lines (see :mod:`checker.fhir_input.typed`), keyed by the raw JSON text
        # of the elements, and their authoring dates by the date as written.
        self.typed_lines: dict[bytes, Any] = {}  # the three texts joined by newlines
        self.typed_medications: dict[bytes, Any] = {}
        self.typed_elements: dict[tuple[bytes | None, bytes | None], Any] = {}
        self.typed_dates: dict[str, Any] = {}

    def tables(self) -> tuple[dict[Any, Any], ...]:
        return (self.medications, self.elements, self.typed_lines, self.typed_medications, self.typed_elements,
                self.typed_dates)

    def begin(self, today: date) -> None:
        """Start a reading whose "today" is ``today``."""
        if today != self.today:
            for table in self.tables():
                table.clear()
            self.today = today

    def keep(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        """``table[key] = value``, the table emptied first when it holds ``limit`` entries."""
        if len(table) >= self.limit:
            table.clear()
        table[key] = value


class _Index:
    """Reference resolution over every resource of one assemble call."""

    def __init__(self, today: date, shared: SharedReading | None = None) -> None:
        self.by_key: dict[str, RawResource] = {}
        self.by_file_key: dict[tuple[str, str], RawResource] = {}
        self.medication_by_file_id: dict[tuple[str, str], RawResource] = {}
        self.by_identifier: dict[tuple[str, str, str], RawResource] = {}
        # Orders naming the same medication share one extracted medication (bulk exports repeat a
        # few hundred medications over millions of lines): extraction runs once per medication, and
        # identification and rule memos, keyed by object identity, hit across orders. Medication
        # resources by the identity of their dict (this reading's only); elements written inline by
        # their JSON text (see SharedReading).
        self.medication_resources: dict[int, Any] = {}
        self.shared = shared if shared is not None else SharedReading(SHARED_ENTRIES)
        self.shared.begin(today)

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
