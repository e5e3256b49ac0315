"""``json``: the whole report as one JSON object (checker, as_of, inputs, findings, errors)."""

from __future__ import annotations

import orjson

from checker.findings import Report


def render(report: Report) -> str:
    return render_bytes(report).decode()


def render_bytes(report: Report) -> bytes:
    """The report as UTF-8 bytes, as written to a file (no text copy on the way)."""
    return report.to_json(orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
