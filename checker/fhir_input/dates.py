"""FHIR dates (partial dates, last day covered) and the simple CQL date expressions of CDS examples."""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta
from typing import Any

from checker.fhir_input.elements import _Bad, _s
from checker.findings import Message


def _date(value: Any) -> date | None:
    """FHIR date/dateTime/instant (partial dates take their first day); ``None`` if absent/odd."""
    if not isinstance(value, str) or len(value) < 4:
        return None
    try:
        if len(value) == 4:
            return date(int(value), 1, 1)
        if len(value) == 7:
            return date(int(value[:4]), int(value[5:7]), 1)
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _read_date(value: Any, path: str) -> date | None:
    """A date element of a resource: ``None`` when absent; :class:`_Bad` (the resource is refused,
    the error names the element) when present but not a FHIR date, rather than reading the order as
    undated or the result as unrecorded."""
    if value is None:
        return None
    found = _date(value)
    if found is None:
        raise _Bad(path, Message("bad-date", {"value": str(value)[:40]}))
    return found


def _read_end_date(value: Any, path: str) -> date | None:
    """The end of a Period: like :func:`_read_date`, but a date written to the month or the year
    covers all of it (FHIR Period: "the end value includes any matching date/time"), so
    ``2026-01`` is 31 January, not the 1st."""
    found = _read_date(value, path)
    return _last_day(value) if found is not None else None


_CQL_TODAY = re.compile(r"Today\(\)(?:\s*([+-])\s*(\d+)\s*(day|days|week|weeks|month|months|year|years))?")


_CQL_UNIT_DAYS = {"day": 1, "week": 7, "month": 30, "year": 365}


def _cql_date(expr: str, today: date) -> date | None:
    """Evaluate the simple CQL date expressions some CDS examples carry (``Today() - 90 days``)."""
    m = _CQL_TODAY.search(expr)
    if not m:
        return None
    if not m.group(1):
        return today
    days = int(m.group(2)) * _CQL_UNIT_DAYS[m.group(3).rstrip("s")]
    try:
        return today - timedelta(days=days) if m.group(1) == "-" else today + timedelta(days=days)
    except OverflowError:  # a date outside the calendar: no usable date
        return None


def _ext_cql(element: Any) -> list[str]:
    if not isinstance(element, dict):
        return []
    extensions = element.get("extension")
    return [
        e["valueString"]
        for e in (extensions if isinstance(extensions, list) else [])
        if isinstance(e, dict) and "cqlExpression" in _s(e.get("url")) and isinstance(e.get("valueString"), str)
    ]


def _dated(res: dict[str, Any], name: str, today: date) -> date | None:
    found = _read_date(res.get(name), f"/{name}")
    if found is None:
        for expr in _ext_cql(res.get(f"_{name}")):
            found = _cql_date(expr, today)
            if found:
                break
    return found


def _last_day(value: Any) -> date | None:
    """Last day a FHIR date/dateTime covers: the day itself, or the end of a year or month given
    alone (``2025`` → 2025-12-31, ``2025-03`` → 2025-03-31); ``None`` if absent/odd."""
    first = _date(value)
    if first is None or not isinstance(value, str):
        return first
    if len(value) == 4:
        return date(first.year, 12, 31)
    if len(value) == 7:
        return first.replace(day=calendar.monthrange(first.year, first.month)[1])
    return first
