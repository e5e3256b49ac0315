"""``pertinence report`` and ``check``'s reading: check FHIR inputs with a progress bar on large
inputs, and render the self-contained HTML report of what was checked.

:func:`check_inputs` does what :func:`checker.check` does (same arguments, same findings), checking
the patient records in chunks so that a progress bar (rich, on an interactive terminal) can show
records per second and a steady ETA; the report it returns keeps the records, so that the HTML
report counts the patients and lines checked, not only those with findings.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from checker import fhir_input
from checker.api import check_records, parse_day, start_run
from checker.audit.indicators import definitions, tally_records, to_rows
from checker.audit.progress import interactive
from checker.findings import Finding, InputError, Report
from checker.formats import csv as csv_format
from checker.formats import ndjson as ndjson_format
from checker.formats.html import MAX_FINDINGS_PER_PATIENT, MAX_PATIENTS, render_records
from checker.memo import BULK_RESOURCES, relaxed_gc
from checker.model import PatientRecord
from checker.outputs import write_atomic
from checker.referentials import default_referentials

CHUNK_RECORDS = 1000
"""Patient records checked per step (the progress bar moves once per step)."""
PROGRESS_BYTES = 8 << 20
"""Inputs at least this large (or stdin) get a progress bar on an interactive terminal."""


@dataclass(slots=True)
class CheckedReport(Report):
    """A :class:`Report` with the patient records it was computed from (for the HTML report)."""

    records: Sequence[PatientRecord] = field(default_factory=list)


def _input_size(inputs: Any) -> int:
    items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    total = 0
    for item in items:
        if not isinstance(item, (str, Path)):
            continue
        if str(item) == "-":
            return PROGRESS_BYTES
        path = Path(item)
        if path.is_file():
            total += path.stat().st_size
        elif path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        if total >= PROGRESS_BYTES:
            break
    return total


class _Bar:
    """Reading (resources counted as they come) then checking (records, with ETA), on stderr."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True, speed_estimate_period=60)
        self.read_task = self.bar.add_task("lecture", total=None)
        self.check_task: Any = None

    def __enter__(self) -> _Bar:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def read(self, items: Iterator[Any]) -> Iterator[Any]:
        last = time.monotonic()
        n = 0
        for item in items:
            n += 1
            if n % 1000 == 0 and time.monotonic() - last > 0.1:
                self.bar.update(self.read_task, completed=n)
                last = time.monotonic()
            yield item
        self.bar.update(self.read_task, completed=n, total=n)

    def start_check(self, total: int) -> None:
        self.check_task = self.bar.add_task("contrôle", total=max(total, 1))

    def checked(self, n: int) -> None:
        self.bar.advance(self.check_task, n)


def check_inputs(inputs: Any, *, as_of: date | str | None = None, jurisdiction: str = "fr",
                 select: Any = None, ignore: Any = None, min_severity: Any = None, lang: str = "fr",
                 strict: bool = False, progress: bool | None = None, max_decompressed: int | None = None,
                 max_expansion: float | None = None) -> CheckedReport:
    """:func:`checker.check` with a progress bar on large inputs (``progress=None``: only on an
    interactive terminal outside CI, for inputs of :data:`PROGRESS_BYTES` or more)."""
    run = start_run(as_of, None, max_decompressed, max_expansion)  # an altered referential stops it here
    day, refs = run.day, run.refs
    if progress is None:
        progress = interactive() and _input_size(inputs) >= PROGRESS_BYTES
    bar = _Bar() if progress else None
    with bar if bar is not None else contextlib.nullcontext():
        raw = fhir_input.iter_raw(inputs, max_decompressed=run.max_decompressed, max_expansion=run.max_expansion)
        ing = fhir_input.assemble(bar.read(raw) if bar else raw, strict=strict, as_of=day)
        records = ing.records
        if bar:
            bar.start_check(len(records))
        findings: list[Finding] = []
        errors: list[InputError] = [e.worded(lang) for e in ing.errors]
        gc = relaxed_gc() if ing.counts.resources >= BULK_RESOURCES else contextlib.nullcontext()
        with gc:
            for start in range(0, max(len(records), 1), CHUNK_RECORDS):
                part = check_records(records[start:start + CHUNK_RECORDS], as_of=day, jurisdiction=jurisdiction,
                                     select=select, ignore=ignore, min_severity=min_severity, lang=lang, refs=refs)
                findings.extend(part.findings)
                errors.extend(part.errors)
                if bar:
                    bar.checked(len(records[start:start + CHUNK_RECORDS]))
    base = check_records([], counts=ing.counts, as_of=day, jurisdiction=jurisdiction, select=select, ignore=ignore,
                         lang=lang, refs=refs)
    return CheckedReport(base.checker_name, base.checker_version, base.referentials, base.as_of, base.jurisdiction,
                         base.inputs, findings, errors, lang=lang, resource_urls=ing.urls, records=records)


def _beside(output: str | Path | None, suffix: str) -> Path | None:
    if not output or str(output) == "-":
        return None
    out = Path(output)
    return out.with_name(out.stem + suffix)


def build_report(inputs: Any, *, as_of: str | None = None, jurisdiction: str = "fr", lang: str = "fr",
                 output: str | Path | None = None, progress: bool | None = False,
                 **options: Any) -> tuple[str, Report]:
    """Read, check and render ``inputs`` as the self-contained HTML report (prescriptions and input
    errors included); returns the HTML and the report it shows.

    When more patients have findings than the page details (:data:`~checker.formats.html.MAX_PATIENTS`)
    and ``output`` names the HTML file, every finding is written beside it (``<name>.findings.csv``
    and ``<name>.findings.ndjson``) and the page says so."""
    report = check_inputs(inputs, as_of=as_of, jurisdiction=jurisdiction, lang=lang, progress=progress, **options)
    return render_checked(report, output=output), report


def render_checked(report: Report, *, output: str | Path | None = None) -> str:
    """The HTML of a checked report (with indicators when it carries records), writing the full
    findings beside ``output`` when the page cannot hold them all."""
    records = list(getattr(report, "records", []) or [])
    refs = default_referentials()
    defs = definitions(refs)
    rows = to_rows(tally_records(records, defs, parse_day(report.as_of)), defs, report.lang) if records else []
    findings_file = ""
    patients = {f.patient for f in report.findings}
    capped = len(patients) > MAX_PATIENTS or any(
        n > MAX_FINDINGS_PER_PATIENT for n in _per_patient(report.findings).values())
    csv_path, ndjson_path = _beside(output, ".findings.csv"), _beside(output, ".findings.ndjson")
    if capped and csv_path is not None and ndjson_path is not None:
        write_atomic(csv_path, csv_format.render(report))
        write_atomic(ndjson_path, ndjson_format.render(report))
        findings_file = f"{csv_path.name}, {ndjson_path.name}"
    elif capped:
        findings_file = "pertinence check --format csv"
    return render_records(report, records, rows, findings_file=findings_file)


def _per_patient(findings: Sequence[Finding]) -> dict[str | None, int]:
    out: dict[str | None, int] = {}
    for f in findings:
        out[f.patient] = out.get(f.patient, 0) + 1
    return out


def build_report_html(inputs: Any, *, as_of: str | None = None, jurisdiction: str = "fr", lang: str = "fr") -> str:
    """Read, check and render ``inputs`` as the self-contained HTML report (see :func:`build_report`)."""
    return build_report(inputs, as_of=as_of, jurisdiction=jurisdiction, lang=lang)[0]


