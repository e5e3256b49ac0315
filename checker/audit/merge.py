"""Merging shard results into the audit's output files (deterministic, streaming, atomic)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import orjson

from checker import __version__
from checker.audit import outputs
from checker.audit.timeline import span
from checker.audit.indicators import definitions, merge_json, to_rows
from checker.audit.worker import QUIET_PATIENTS, Settings, merge_sorted
from checker.findings import InputCounts, Severity
from checker.outputs import write_atomic
from checker.formats.html import render_audit
from checker.referentials import default_referentials
from checker.registry import select_rules

OUTPUT_FILES = ("findings.ndjson", "findings.csv", "errors.ndjson", "summary.json", "indicators.csv", "report.html")
HTML_ERRORS = 100
"""How many input errors report.html lists (the first lines of errors.ndjson, which holds them all)."""


def _add_nested(into: dict[str, Any], other: dict[str, Any]) -> None:
    for k, v in other.items():
        if isinstance(v, dict):
            _add_nested(into.setdefault(k, {}), v)
        else:
            into[k] = into.get(k, 0) + v


def _amounts(tree: dict[str, dict[str, Fraction]]) -> dict[str, dict[str, float]]:
    """Exact sums rounded to the cent, like :meth:`Report.savings`."""
    return {k: {c: round(float(v), 2) for c, v in sorted(per.items())} for k, per in sorted(tree.items())}


def merge_outputs(work: Path, out: Path, settings: Settings) -> dict[str, Any]:
    """Write the six output files from the per-shard results; returns the summary."""
    results = work / "results"
    names = sorted(p.name[: -len(".json")] for p in results.glob("*.json"))
    counts = InputCounts()
    agg: dict[str, Any] = {"by_rule": {}, "by_category": {}}
    savings: dict[str, dict[str, dict[str, Fraction]]] = {}
    patients = meds = services = with_findings = 0
    quiet: list[str] = []
    tally: dict[tuple[str, str], list[int]] = {}
    top: list[tuple[list[Any], str, int]] = []  # (score key, shard, place of its digest in the shard's top)
    with span("merge-summaries"):
        for name in names:
            s = orjson.loads((results / f"{name}.json").read_bytes())
            counts.add(InputCounts(**s["counts"]))
            patients += s["patients"]
            meds += s["medication_requests"]
            services += s.get("service_requests", 0)
            quiet = sorted(quiet + s.get("quiet", []))[:QUIET_PATIENTS]
            with_findings += s["patients_with_findings"]
            for k in ("by_rule", "by_category"):
                _add_nested(agg[k], s[k])
            for axis, keys in s["savings"].items():
                for key, per in keys.items():
                    for cur, text in per.items():
                        cell = savings.setdefault(axis, {}).setdefault(key, {})
                        cell[cur] = cell.get(cur, Fraction(0)) + Fraction(text)
            merge_json(tally, s["tally"])
            add_top(top, name, s["top"], settings.top_patients)

    with span("merge-findings"), outputs.atomic_file(out / "findings.csv") as csv_file, \
            outputs.atomic_file(out / "findings.ndjson") as ndjson_file:  # both files in one pass over the merge
        csv_file.write(outputs.csv_header(outputs.FINDINGS_CSV_COLUMNS))
        n_findings = 0
        write_row, write_line, line_row = csv_file.write, ndjson_file.write, outputs.line_row
        for value in merge_sorted([results / f"{n}.findings.ndjson" for n in names], line_feed=True):
            body, _, row = value.partition(b"\t")  # the row keeps the result line's line feed
            write_row(line_row(row))
            write_line(body)
            write_line(b"\n")
            n_findings += 1

    with span("merge-errors"):
        n_errors = outputs.atomic_lines(out / "errors.ndjson", (v + b"\n" for v in merge_sorted(
            [results / f"{n}.errors.ndjson" for n in names])))

    refs = default_referentials()
    with span("merge-indicators"):
        defs = definitions(refs)
        rows = to_rows(tally, defs, settings.lang)
        write_atomic(out / "indicators.csv", outputs.indicators_csv(rows))

    by_severity = {s.value: 0 for s in Severity}
    for per in agg["by_rule"].values():
        for sev, n in per.items():
            by_severity[sev] = by_severity.get(sev, 0) + n
    chosen = select_rules(settings.select, settings.ignore)
    used = sorted({r for rule in chosen for r in rule.referentials})
    summary = {
        "checker": {"name": "pertinence", "version": __version__, "jurisdiction": settings.jurisdiction,
                    "referentials": [r.to_dict() for r in refs.info(used)]},
        "as_of": settings.as_of,
        "lang": settings.lang,
        "inputs": {**counts.to_dict(), "balanced": counts.balanced()},
        "patients": patients,
        "patients_with_findings": with_findings,
        "medication_requests": meds,
        "lines": meds + services,
        "findings": {
            "total": n_findings,
            "by_severity": by_severity,
            "by_category": {k: dict(sorted(v.items())) for k, v in sorted(agg["by_category"].items())},
            "by_rule": {k: dict(sorted(v.items())) for k, v in sorted(agg["by_rule"].items())},
        },
        "errors": n_errors,
        "savings": {
            "period": "year",
            "total": _amounts(savings.get("total", {})).get("", {}),
            "by_rule": _amounts(savings.get("by_rule", {})),
            "by_substance": _amounts(savings.get("by_substance", {})),
        },
        "rules": [r.id for r in chosen],
        "outputs": list(OUTPUT_FILES),
    }
    write_atomic(out / "summary.json", outputs.json_bytes(summary))
    with span("merge-html"):
        html = render_audit(summary, rows, top_digests(results, [(n, i) for _, n, i in top]), lang=settings.lang,
                            patients_total=with_findings, errors=first_errors(out / "errors.ndjson", HTML_ERRORS),
                            errors_total=n_errors, errors_file="errors.ndjson", quiet=quiet,
                            findings_file="findings.csv, findings.ndjson")
        write_atomic(out / "report.html", html)
    return summary


def add_top(top: list[tuple[list[Any], str, int]], name: str, scores: list[list[Any]], limit: int) -> None:
    """Add a shard's top patients (their score keys) to ``top`` and keep the first ``limit`` (a
    stable sort: equal keys keep the order of the shards, then of each shard's top)."""
    top.extend((k, name, i) for i, k in enumerate(scores))
    top.sort(key=lambda t: t[0])
    del top[limit:]  # keep memory bounded whatever the number of shards


def top_digests(results: Path, chosen: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """The digests of the ``chosen`` (shard, place) patients, in that order: only their lines of
    the shards' top files are parsed."""
    wanted: dict[str, set[int]] = {}
    for name, i in chosen:
        wanted.setdefault(name, set()).add(i)
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for name, places in wanted.items():
        last = max(places)
        with (results / f"{name}.top.ndjson").open("rb") as f:
            for i, line in enumerate(f):
                if i in places:
                    found[name, i] = orjson.loads(line)
                if i >= last:
                    break
    return [found[c] for c in chosen]


def first_errors(path: Path, limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` input errors of errors.ndjson (read no further)."""
    found: list[dict[str, Any]] = []
    with path.open("rb") as f:
        for line in f:
            if len(found) >= limit:
                break
            if line.strip():
                found.append(orjson.loads(line))
    return found

