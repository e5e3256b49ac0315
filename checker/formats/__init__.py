"""Output formats: each module has ``render(report: Report) -> str`` (pure, no clock inside)."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable

from checker.findings import Report
from checker.formats import json as json_format
from checker.formats import ndjson as ndjson_format
from checker.memo import BULK_RESOURCES, relaxed_gc

FORMATS: dict[str, str] = {
    "text": "checker.formats.text",
    "json": "checker.formats.json",
    "ndjson": "checker.formats.ndjson",
    "csv": "checker.formats.csv",
    "fhir": "checker.formats.fhir",
    "cds-hooks": "checker.formats.cds_hooks",
    "html": "checker.formats.html",
}


def render(report: Report, fmt: str = "text", *, color: bool = False, lang: str | None = None) -> str:
    """Render ``report`` in format ``fmt`` (see :data:`FORMATS`), in ``lang`` (default: the
    report's language); findings carrying a message are worded again in that language."""
    if lang is not None:
        report = report.worded(lang)
    try:
        module = importlib.import_module(FORMATS[fmt])
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}") from None
    # A bulk report is worded and written under the relaxed collector, as it was checked: rendering
    # allocates a dict per finding that the default thresholds rescan with the whole heap (a third of
    # the JSON rendering of 26,000 findings); a small report (a CDS request) keeps the host's settings.
    with relaxed_gc() if len(report.findings) >= BULK_RESOURCES else contextlib.nullcontext():
        if fmt == "text":
            return module.render(report, color=color)
        return module.render(report)


def render_bytes(report: Report, fmt: str = "text", *, lang: str | None = None) -> bytes:
    """:func:`render` encoded in UTF-8, made as bytes by the formats that write JSON with orjson (the
    ``json`` report of 25,000 findings: about 0.1 s of decoding and encoding again saved)."""
    write = _BYTES.get(fmt)
    if write is None:
        return render(report, fmt, lang=lang).encode("utf-8")
    if lang is not None:
        report = report.worded(lang)
    with relaxed_gc() if len(report.findings) >= BULK_RESOURCES else contextlib.nullcontext():
        return write(report)


_BYTES: dict[str, Callable[[Report], bytes]] = {"json": json_format.render_bytes, "ndjson": ndjson_format.render_bytes}
