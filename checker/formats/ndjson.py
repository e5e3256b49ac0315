"""``ndjson``: one finding per line (input errors are not findings: see the json format)."""

from __future__ import annotations

import orjson

from checker.findings import Report


def render(report: Report) -> str:
    return render_bytes(report).decode()


def render_bytes(report: Report) -> bytes:
    """The findings as UTF-8 bytes, as written to a file (no text copy on the way)."""
    return b"".join([f.to_json(orjson.OPT_SORT_KEYS) + b"\n" for f in report.sorted_findings()])
