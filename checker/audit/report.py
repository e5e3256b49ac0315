"""``pertinence report``: one HTML self-check report for a (small) set of FHIR inputs."""

from __future__ import annotations

from typing import Any

from checker import fhir_input
from checker.api import check_records, parse_day
from checker.audit.indicators import definitions, tally_records, to_rows
from checker.findings import Report
from checker.formats.html import render_records
from checker.referentials import default_referentials


def build_report(inputs: Any, *, as_of: str | None = None, jurisdiction: str = "fr",
                 lang: str = "fr", max_decompressed: int | None = None,
                 max_expansion: float | None = None) -> tuple[str, Report]:
    """Read, check and render ``inputs`` as the self-contained HTML report (prescriptions and input
    errors included); returns the HTML and the report it shows."""
    day = parse_day(as_of) if as_of else None
    refs = default_referentials()
    refs.verify_all()  # an altered referential stops the report before anything is read
    limit = fhir_input.MAX_DECOMPRESSED if max_decompressed is None else max_decompressed
    ratio = fhir_input.MAX_EXPANSION if max_expansion is None else max_expansion
    ing = fhir_input.read(inputs, as_of=day, max_decompressed=limit, max_expansion=ratio)
    report = check_records(ing.records, counts=ing.counts, errors=ing.errors, as_of=day,
                           jurisdiction=jurisdiction, lang=lang, refs=refs)
    rows = to_rows(tally_records(ing.records, definitions(refs), parse_day(report.as_of)), definitions(refs), lang)
    return render_records(report, ing.records, rows), report


def build_report_html(inputs: Any, *, as_of: str | None = None, jurisdiction: str = "fr", lang: str = "fr") -> str:
    """Read, check and render ``inputs`` as the self-contained HTML report (see :func:`build_report`)."""
    return build_report(inputs, as_of=as_of, jurisdiction=jurisdiction, lang=lang)[0]
