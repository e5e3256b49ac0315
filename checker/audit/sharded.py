"""``check`` of a large input through the audit's pipeline: the same report, in bounded memory.

Above :data:`SHARD_THRESHOLD` bytes of input, holding every patient record at once costs more
memory than the input is worth. The input is then partitioned by patient into shards spilled to a
temporary folder (the audit's partition phase), each shard is checked chunk by chunk of whole
patients (the audit's workers), and the findings, errors and counts are gathered into one
:class:`~checker.findings.Report`, the same as the in-memory path gives: only whole patients are
checked together and every rule works within one patient.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from checker import fhir_input
from checker.api import check_records, parse_day
from checker.audit.pipeline import (MEDICATIONS, expand_inputs, input_bytes, partition_local, shard_count,
                                    parse_size, DEFAULT_MEMORY)
from checker.audit.worker import load_medications, shard_chunks
from checker.findings import Finding, InputCounts, InputError, Report
from checker.memo import relaxed_gc
from checker.referentials import Referentials, default_referentials

SHARD_THRESHOLD = 256 << 20
"""Bytes of (uncompressed) input above which ``check`` runs through the sharded pipeline."""


class _Quiet:
    """Progress sink of the partition phase (``check`` shows no progress)."""

    def items(self, n: int) -> None:
        pass

    def bytes_done(self, n: int) -> None:
        pass


def wants_shards(paths: Sequence[str], threshold: int = SHARD_THRESHOLD) -> bool:
    """Whether ``check`` of ``paths`` (files or folders, not stdin) should run sharded."""
    if any(p == "-" for p in paths) or not all(Path(p).exists() for p in paths):
        return False
    return input_bytes(expand_inputs(paths)) > threshold


def check_sharded(paths: Sequence[str], *, as_of: date | str | None = None, jurisdiction: str = "fr",
                  select: Iterable[str] | None = None, ignore: Iterable[str] | None = None,
                  min_severity: str | None = None, lang: str = "fr", refs: Referentials | None = None,
                  severity_overrides: dict[str, str] | None = None, max_decompressed: int | None = None,
                  max_expansion: float | None = None, shards: int | None = None) -> Report:
    """:func:`checker.check` of ``paths`` through patient shards on disk (same report)."""
    day = parse_day(as_of) if as_of is not None else date.today()
    refs = refs or default_referentials()
    refs.verify_all()
    files = expand_inputs(paths)
    n = shards or shard_count(input_bytes(files), parse_size(DEFAULT_MEMORY), 1)
    select, ignore = (list(select) if select is not None else None), (list(ignore) if ignore is not None else None)
    findings: list[Finding] = []
    errors: list[InputError] = []
    counts = InputCounts()
    urls: dict[str, str] = {}
    report: Report | None = None
    with tempfile.TemporaryDirectory(prefix="pertinence-check-") as tmp:
        work = Path(tmp)
        (work / "shards").mkdir()
        partition_local(files, n, work, _Quiet(), max_decompressed, max_expansion)
        meds_path = work / "shards" / f"{MEDICATIONS}.ndjson"
        medications: dict[str, Any] = {}
        if meds_path.is_file():
            with meds_path.open("rb") as f:
                medications = load_medications(f)
        names = sorted(p.name for p in (work / "shards").glob("*.ndjson") if p.name != meds_path.name)
        for name in names:
            with (work / "shards" / name).open("rb") as f:
                for items, borrowed in shard_chunks(f, medications):
                    ing = fhir_input.assemble(items + borrowed, as_of=day)
                    chunk_counts = ing.counts
                    if borrowed:  # stand-alone Medications lent to this chunk are counted in the common shard
                        lent = fhir_input.assemble(borrowed, as_of=day).counts
                        chunk_counts = InputCounts(chunk_counts.files - lent.files,
                                                   chunk_counts.resources - lent.resources,
                                                   chunk_counts.checked - lent.checked,
                                                   chunk_counts.ignored - lent.ignored,
                                                   chunk_counts.rejected - lent.rejected)
                    with relaxed_gc():
                        report = check_records(ing.records, counts=chunk_counts, errors=ing.errors, as_of=day,
                                               jurisdiction=jurisdiction, select=select, ignore=ignore,
                                               min_severity=min_severity, lang=lang, refs=refs,
                                               severity_overrides=severity_overrides)
                    findings.extend(report.findings)
                    errors.extend(report.errors)
                    counts.add(chunk_counts)
                    urls.update(ing.urls)
    if report is None:  # no input item at all
        report = check_records([], counts=counts, as_of=day, jurisdiction=jurisdiction, select=select,
                               ignore=ignore, min_severity=min_severity, lang=lang, refs=refs,
                               severity_overrides=severity_overrides)
    report.findings, report.errors, report.inputs, report.resource_urls = findings, errors, counts, urls
    return report
