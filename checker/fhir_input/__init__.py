"""The FHIR boundary: the only package that reads FHIR.

Reads files (JSON resources and Bundles, NDJSON bulk exports, FHIR XML, gzip of any of these),
directories (recursively), standard input, dicts, JSON text, fhir.resources models and CDS Hooks
request bodies; resolves references; and assembles one :class:`~checker.model.PatientRecord` per
patient. Extraction works on parsed JSON with explicit type checks (fast); fhir.resources is used
only to parse XML, to explain a resource that extraction found malformed, and in ``strict`` mode.

Nothing is lost: every resource read is *checked* (a type the rules use), *ignored* (another
type) or *rejected* (with an :class:`~checker.findings.InputError` saying where and why).

Modules, by concern: :mod:`.sources` (paths, streams, gzip limits, NDJSON lines) and :mod:`.walking`
(Bundles, CDS Hooks requests, XML) yield :class:`~.raw.RawResource` items; :mod:`.decoding` (repeated
keys, XML to JSON, files that are not FHIR); :mod:`.assembly` groups them per patient with
:mod:`.references`; one extractor module per resource type (:mod:`.medication_requests`,
:mod:`.medication_uses`, :mod:`.service_requests`, :mod:`.patients`, :mod:`.conditions`,
:mod:`.allergies`, :mod:`.observations`) over the shared readers of :mod:`.elements`,
:mod:`.medications` and :mod:`.dates`. Errors are codes with parameters (:mod:`.errors`, catalogue table
``input_error``), worded in the run's language by the report.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from checker.fhir_input.assembly import MAX_URLS, Ingestion, assemble
from checker.fhir_input.decoding import duplicate_key_paths, may_have_duplicate_keys, not_fhir_kind
from checker.fhir_input.errors import InputNotFound
from checker.fhir_input.references import RUN_SHARED_ENTRIES, SharedReading
from checker.fhir_input.raw import (LOCAL_REF, MEDICATION_USE_TYPES, USED_TYPES, FileMark, NdjsonLines, RawResource,
                                  TypedLines, TypedResource)
from checker.fhir_input.sources import (
    CHUNK,
    EXPANSION_FROM,
    FILE_SUFFIXES,
    MAX_DECOMPRESSED,
    MAX_EXPANSION,
    MAX_LINE,
    display_name,
    iter_raw,
    ndjson_line_items,
    numbered_lines,
)
from checker.fhir_input.validation import detect_version


def read(inputs: Any, *, strict: bool = False, as_of: date | None = None,
         max_decompressed: int = MAX_DECOMPRESSED, max_expansion: float = MAX_EXPANSION) -> Ingestion:
    """Read ``inputs`` and assemble patient records (see the package docstring).

    ``max_decompressed``: bytes a compressed input may expand to; past it the rest of the input is
    refused with an error (a decompression bomb costs neither memory nor time); ``max_expansion``:
    the same for a compressed input expanding more than this many times its compressed size.
    """
    return assemble(iter_raw(inputs, max_decompressed=max_decompressed, max_expansion=max_expansion,
                             typed=not strict), strict=strict, as_of=as_of)


__all__ = [
    "CHUNK",
    "EXPANSION_FROM",
    "FILE_SUFFIXES",
    "LOCAL_REF",
    "MAX_DECOMPRESSED",
    "MAX_EXPANSION",
    "MAX_LINE",
    "MAX_URLS",
    "MEDICATION_USE_TYPES",
    "USED_TYPES",
    "FileMark",
    "Ingestion",
    "InputNotFound",
    "NdjsonLines",
    "RUN_SHARED_ENTRIES",
    "RawResource",
    "SharedReading",
    "TypedLines",
    "TypedResource",
    "assemble",
    "detect_version",
    "display_name",
    "duplicate_key_paths",
    "iter_raw",
    "may_have_duplicate_keys",
    "ndjson_line_items",
    "not_fhir_kind",
    "numbered_lines",
    "read",
]
