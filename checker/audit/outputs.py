"""The audit's output files, written atomically (temporary file in the same folder, then rename)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from checker.formats import csv as csv_format
from checker.outputs import write_atomic_lines

FINDINGS_CSV_COLUMNS = tuple(csv_format.COLUMNS)
"""The same columns as ``pertinence check --format csv``."""
INDICATOR_COLUMNS = ("indicator", "scope", "requester", "numerator", "denominator", "value_percent",
                     "reference_percent", "better", "title", "numerator_definition", "denominator_definition",
                     "source", "source_url")


def atomic_lines(path: Path, lines: Iterable[bytes]) -> int:
    """Stream ``lines`` into ``path`` atomically; returns the number of lines."""
    return write_atomic_lines(path, lines)


def _csv_line(values: Iterable[Any]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(["" if v is None else v for v in values])
    return buf.getvalue().encode("utf-8")


def csv_header(columns: Iterable[str]) -> bytes:
    return _csv_line(columns)


def finding_csv_line(finding_json: bytes) -> bytes:
    """One findings.csv row from a findings.ndjson line."""
    return _csv_line(csv_format.row(orjson.loads(finding_json)))


def indicators_csv(rows: list[dict[str, Any]]) -> bytes:
    return csv_header(INDICATOR_COLUMNS) + b"".join(_csv_line(r[c] for c in INDICATOR_COLUMNS) for r in rows)


def json_bytes(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
