"""The audit's output files, written atomically (temporary file in the same folder, then rename)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from checker.formats import csv as csv_format
from checker.outputs import atomic_file, write_atomic_lines  # noqa: F401  (atomic_file: used by merge through this module)

FINDINGS_CSV_COLUMNS = tuple(csv_format.COLUMNS)
"""The same columns as ``pertinence check --format csv``."""
INDICATOR_COLUMNS = ("indicator", "scope", "requester", "numerator", "denominator", "value_percent",
                     "reference_percent", "better", "title", "numerator_definition", "denominator_definition",
                     "source", "source_url")


def atomic_lines(path: Path, lines: Iterable[bytes]) -> int:
    """Stream ``lines`` into ``path`` atomically; returns the number of lines."""
    return write_atomic_lines(path, lines)


def _csv_module_line(cells: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    return buf.getvalue()


def _csv_line(values: Iterable[Any]) -> bytes:
    """One CSV row, byte for byte what ``csv.writer(lineterminator="\\n")`` writes (see :func:`_csv_text`)."""
    return _csv_text(values).encode("utf-8")


def _csv_text(values: Iterable[Any]) -> str:
    """One CSV row as text, what ``csv.writer(lineterminator="\\n")`` writes (the default
    dialect, minimal quoting): a cell holding a quote, a comma or a line feed is quoted, its quotes
    doubled, the others are written as they are. The module walks each character (about 20 µs for
    a finding's row of 1.6 kB, its evidence and suggestion being quoted JSON); text methods do it
    at C speed. A row the rule above might not describe in every Python version (a carriage return
    in a cell not quoted otherwise, a cell that is not text or a number, a single empty cell) is
    written by the module; ``tests/test_audit_merge_encoding.py`` compares both on seeded rows."""
    text = _row_text(list(values), False)
    assert text is not None  # (only a row of plain cells is refused)
    return text


def _row_text(cells: list[Any], plain_only: bool) -> str | None:
    """:func:`_csv_text` of ``cells``; with ``plain_only``, ``None`` unless every cell is ``None``,
    text, an integer or a finite number (what a finding's JSON text gives back)."""
    out: list[str] = []
    for v in cells:
        t = type(v)
        if t is not str:
            if v is None:
                v = ""
            elif t is int or (t is float and (not plain_only or math.isfinite(v))):
                v = str(v)
            elif plain_only:
                return None
            else:
                return _csv_module_line(["" if c is None else c for c in cells])
        if '"' in v:
            v = '"' + v.replace('"', '""') + '"'
        elif "," in v or "\n" in v:
            v = '"' + v + '"'
        elif "\r" in v:
            return _by_module(cells, plain_only)
        out.append(v)
    if len(out) == 1 and not out[0]:
        return _by_module(cells, plain_only)
    return ",".join(out) + "\n"


def _by_module(cells: list[Any], plain_only: bool) -> str | None:
    if plain_only and not all(c is None or type(c) is str or type(c) is int or (type(c) is float and math.isfinite(c))
                              for c in cells):
        return None
    return _csv_module_line(["" if c is None else c for c in cells])


def csv_header(columns: Iterable[str]) -> bytes:
    return _csv_line(columns)


def finding_value(finding_json: bytes, data: dict[str, Any] | None = None, *, cells: list[Any] | None = None
                  ) -> bytes:
    """What a shard's result file keeps of a finding: its findings.ndjson line and its findings.csv
    row, tab-separated (JSON text has no raw tab), the row stored by :func:`row_field` (one line).
    The row is made where the finding is (in the worker processes), so that the merge only copies.
    ``data``: the dict ``finding_json`` was dumped from, or ``cells``: its row
    (:func:`checker.formats.csv.finding_row`); the cells are used when they are plain text,
    integers, finite numbers or ``None`` (what the JSON text gives back), else the text is parsed."""
    if cells is None and data is not None:
        cells = csv_format.row(data)
    row = None if cells is None else _row_text(cells, True)
    if row is None:
        row = _csv_text(csv_format.row(orjson.loads(finding_json)))
    return finding_json + b"\t" + row_field(row)


def row_field(row: str) -> bytes:
    """A CSV row as one field of a result line: its UTF-8 bytes without the final line feed, each
    other line feed written as a NUL byte, so that the merge gets the row back with one ``replace``
    (:func:`line_row`). A row that holds a NUL, starts with a line feed, does not end with one, or
    holds text UTF-8 cannot encode (refused by orjson, as before) is a NUL and its JSON string."""
    try:
        raw = row.encode("utf-8")
    except UnicodeEncodeError:
        raw = b"\x00"
    if b"\x00" in raw or raw[:1] == b"\n" or raw[-1:] != b"\n":
        return b"\x00" + orjson.dumps(row)
    return raw[:-1].replace(b"\n", b"\x00")


def line_row(field: bytes) -> bytes:
    """The findings.csv row of a :func:`row_field` followed by its result line's line feed."""
    if field[:1] == b"\x00":
        return orjson.loads(field[1:]).encode("utf-8")
    return field.replace(b"\x00", b"\n")


def split_finding_value(value: bytes) -> tuple[bytes, bytes]:
    """The findings.ndjson line (no newline) and the findings.csv row of a :func:`finding_value`."""
    body, _, row = value.partition(b"\t")
    return body, line_row(row + b"\n")


def indicators_csv(rows: list[dict[str, Any]]) -> bytes:
    return csv_header(INDICATOR_COLUMNS) + b"".join(_csv_line(r[c] for c in INDICATOR_COLUMNS) for r in rows)


def json_bytes(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
