"""``text``: a report a doctor can read in a terminal, grouped by patient, most severe first."""

from __future__ import annotations

import textwrap
from itertools import groupby

from checker.findings import Finding, Report, Severity

_LABELS = {
    "fr": {
        Severity.CRITICAL: "CRITIQUE", Severity.WARNING: "ATTENTION", Severity.INFO: "INFO",
        "as_of": "au", "files": "fichier(s)", "resources": "ressource(s)", "checked": "vérifiée(s)",
        "ignored": "ignorée(s)", "rejected": "rejetée(s)", "findings": "constat(s)", "no_patient": "(sans patient)",
        "errors": "Entrées illisibles ou rejetées", "source": "Source", "suggestion": "Proposition",
        "saving": "économie", "per_year": "par an", "summary": "Bilan", "none": "Aucun constat.",
        "savings": "Économies potentielles", "evidence": "Éléments", "by_rule": "par règle",
        "by_substance": "par substance",
    },
    "en": {
        Severity.CRITICAL: "CRITICAL", Severity.WARNING: "WARNING", Severity.INFO: "INFO",
        "as_of": "as of", "files": "file(s)", "resources": "resource(s)", "checked": "checked",
        "ignored": "ignored", "rejected": "rejected", "findings": "finding(s)", "no_patient": "(no patient)",
        "errors": "Unreadable or rejected input", "source": "Source", "suggestion": "Suggestion",
        "saving": "saving", "per_year": "per year", "summary": "Summary", "none": "No findings.",
        "savings": "Potential savings", "evidence": "Evidence", "by_rule": "by rule",
        "by_substance": "by substance",
    },
}
_COLOURS = {Severity.CRITICAL: "\x1b[1;31m", Severity.WARNING: "\x1b[33m", Severity.INFO: "\x1b[36m"}
_RESET, _BOLD, _DIM = "\x1b[0m", "\x1b[1m", "\x1b[2m"


def render(report: Report, *, color: bool = False) -> str:
    """Render ``report`` as plain text (ANSI colours only when ``color`` is true)."""
    t = _LABELS.get(report.lang, _LABELS["fr"])
    paint = (lambda code, s: f"{code}{s}{_RESET}") if color else (lambda code, s: s)
    c = report.inputs
    lines = [
        f"{report.checker_name} {report.checker_version} — {t['as_of']} {report.as_of} — "
        f"{c.files} {t['files']}, {c.resources} {t['resources']} ({c.checked} {t['checked']}, "
        f"{c.ignored} {t['ignored']}, {c.rejected} {t['rejected']})",
        "",
    ]
    findings = report.sorted_findings()
    for patient, group in groupby(findings, key=lambda f: f.patient):
        items = list(group)
        lines.append(paint(_BOLD, f"{patient or t['no_patient']} — {len(items)} {t['findings']}"))
        for f in items:
            lines.extend(_finding(f, t, paint))
        lines.append("")
    if not findings:
        lines += [t["none"], ""]
    if report.errors:
        lines.append(paint(_BOLD, f"{t['errors']} ({len(report.errors)})"))
        for e in report.errors:
            lines.append(f"  {e.location}: {e.message}")
        lines.append("")
    lines.append(_summary(report, t))
    savings = report.savings()
    if savings["total"]:
        lines.append(f"{t['savings']}: {_amounts(savings['total'])} {t['per_year']}")
        for label, part in ((t["by_rule"], savings["by_rule"]), (t["by_substance"], savings["by_substance"])):
            lines.append(f"  {label}: " + "; ".join(f"{k} {_amounts(v)}" for k, v in _largest_first(part)))
    return "\n".join(lines) + "\n"


def _amounts(by_currency: dict[str, float]) -> str:
    return ", ".join(f"{_money(v)} {cur}" for cur, v in sorted(by_currency.items()))


def _largest_first(part: dict[str, dict[str, float]]) -> list[tuple[str, dict[str, float]]]:
    return sorted(part.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))


def _finding(f: Finding, t: dict, paint) -> list[str]:  # type: ignore[type-arg]
    head = f"  {paint(_COLOURS[f.severity], t[f.severity]):<10} {f.rule} {f.category}"
    if f.level:
        head += f" [{f.level}]"
    out = [head, f"    {f.summary}"]
    wrap = textwrap.TextWrapper(width=100, initial_indent="    ", subsequent_indent="    ")
    for para in f.detail.splitlines():
        if para.strip():
            out.extend(wrap.wrap(para.strip()))
    out.append(f"    ↳ {', '.join(f.implicated)}")
    sug = f.suggestion or {}
    if sug:
        target = sug.get("with") or {}
        label = target.get("label") or target.get("dci") or sug.get("text") or ""
        saving = sug.get("saving") or {}
        extra = ""
        if saving.get("amount") is not None:
            extra = f" ({t['saving']} {_money(saving['amount'])} {saving.get('currency', '')}"
            if saving.get("per_year") is not None:
                extra += f", {_money(saving['per_year'])} {saving.get('currency', '')} {t['per_year']}"
            extra += ")"
        if label or extra:
            out.append(f"    {t['suggestion']}: {label}{extra}")
    out.append(paint(_DIM, f"    {t['source']}: {f.source.cite()}" + (f" — {f.source.url}" if f.source.url else "")))
    return out


def _summary(report: Report, t: dict) -> str:  # type: ignore[type-arg]
    counts = {s: 0 for s in Severity}
    for f in report.findings:
        counts[f.severity] += 1
    parts = [f"{counts[s]} {t[s].lower()}" for s in (Severity.CRITICAL, Severity.WARNING, Severity.INFO)]
    return f"{t['summary']}: " + ", ".join(parts)


def _money(value: float) -> str:
    return f"{value:,.2f}".replace(",", " ")
