"""``csv``: one row per finding, flat columns for spreadsheets (nested data as JSON text)."""

from __future__ import annotations

import csv
import io

import orjson

from checker.findings import Report

COLUMNS = [
    "patient", "severity", "category", "rule", "level", "implicated", "summary", "detail",
    "source_label", "source_edition", "source_url", "saving_amount", "saving_currency", "saving_period",
    "suggestion", "evidence", "fingerprint",
]


def render(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for f in report.sorted_findings():
        saving = (f.suggestion or {}).get("saving") or {}
        writer.writerow([
            f.patient or "", f.severity.value, f.category, f.rule, f.level or "", " ".join(f.implicated),
            f.summary, f.detail, f.source.label, f.source.edition, f.source.url,
            saving.get("amount", ""), saving.get("currency", ""), saving.get("period", ""),
            orjson.dumps(f.suggestion, option=orjson.OPT_SORT_KEYS).decode() if f.suggestion else "",
            orjson.dumps(f.evidence, option=orjson.OPT_SORT_KEYS).decode() if f.evidence else "",
            f.fingerprint,
        ])
    return buf.getvalue()
