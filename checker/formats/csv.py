"""``csv``: one row per finding, flat columns for spreadsheets (nested data as JSON text).

The audit's ``findings.csv`` uses the same columns (:data:`COLUMNS`, :func:`row`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

import orjson

from checker.findings import Report

COLUMNS = [
    "patient", "severity", "category", "rule", "level", "implicated", "summary", "detail",
    "source_label", "source_edition", "source_url", "saving_amount", "saving_currency", "saving_period",
    "suggestion", "evidence", "fingerprint",
]


def row(f: Mapping[str, Any]) -> list[Any]:
    """The CSV cells of one finding given as :meth:`~checker.findings.Finding.to_dict` data."""
    suggestion = f.get("suggestion")
    saving = (suggestion or {}).get("saving") or {}
    src = f.get("source") or {}
    return [
        f.get("patient") or "", f["severity"], f["category"], f["rule"], f.get("level") or "",
        " ".join(f.get("implicated") or []), f["summary"], f.get("detail", ""), src.get("label", ""),
        src.get("edition", ""), src.get("url", ""), saving.get("amount", ""), saving.get("currency", ""),
        saving.get("period", ""),
        orjson.dumps(suggestion, option=orjson.OPT_SORT_KEYS).decode() if suggestion else "",
        orjson.dumps(f.get("evidence"), option=orjson.OPT_SORT_KEYS).decode() if f.get("evidence") else "",
        f["fingerprint"],
    ]


def render(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for f in report.sorted_findings():
        writer.writerow(row(f.to_dict()))
    return buf.getvalue()
