"""``csv``: one row per finding, flat columns for spreadsheets (nested data as JSON text).

The audit's ``findings.csv`` uses the same columns (:data:`COLUMNS`, :func:`row`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

import orjson

from checker.findings import Finding, Report, Saving, _plain, typed_json

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


def finding_row(f: Finding) -> list[Any]:
    """``row(f.to_dict())``, made from the finding itself: the suggestion and evidence cells written
    from the typed data by :func:`~checker.findings.typed_json` (orjson walks them in C; same bytes,
    same fallback), the saving cells from the typed :class:`~checker.findings.Saving`, without the
    plain copy :meth:`~checker.findings.Finding.to_dict` walks and builds. A suggestion that is not a
    dict, evidence that is not a dict, a saving that is neither a ``Saving`` nor absent, and a
    finding that fails to be written (the plain path raises its own error) take :func:`row` of the
    plain data."""
    suggestion, evidence, lang = f.suggestion, f.evidence, f.lang
    saving = suggestion.get("saving") if type(suggestion) is dict else None
    if (suggestion is not None and type(suggestion) is not dict) or type(evidence) is not dict \
            or (saving is not None and type(saving) is not Saving):
        return row(f.to_dict())
    try:
        figures = saving.to_dict() if saving is not None else {}  # what _plain makes of a Saving
        src = f.source
        return [
            f.patient or "", f.severity.value, f.category, f.rule, f.level or "", " ".join(f.implicated), f.summary,
            f.detail, src.label, src.edition, src.url, figures.get("amount", ""), figures.get("currency", ""),
            figures.get("period", ""),
            typed_json(lambda: suggestion, f.suggested, lang, _SORTED).decode() if suggestion else "",
            typed_json(lambda: evidence, lambda: _plain(evidence, lang), lang, _SORTED).decode() if evidence else "",
            f.fingerprint,
        ]
    except Exception:  # noqa: BLE001 - a finding that cannot be written: the plain path's error, whichever comes first
        return row(f.to_dict())


_SORTED = orjson.OPT_SORT_KEYS


def render(report: Report) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for f in report.sorted_findings():
        writer.writerow(finding_row(f))
    return buf.getvalue()
