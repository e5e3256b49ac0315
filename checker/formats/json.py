"""``json``: the whole report as one JSON object (checker, as_of, inputs, findings, errors)."""

from __future__ import annotations

import orjson

from checker.findings import Report


def render(report: Report) -> str:
    return report.to_json(orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"
