"""``ndjson``: one finding per line (input errors are not findings: see the json format)."""

from __future__ import annotations

import orjson

from checker.findings import Report


def render(report: Report) -> str:
    return "".join(
        f.to_json(orjson.OPT_SORT_KEYS).decode() + "\n" for f in report.sorted_findings()
    )
