"""``text``: a report a doctor can read in a terminal, grouped by patient, most severe first.

Every word comes from the catalogue (:mod:`checker.formats.catalogue`); numbers and money follow
the language's CLDR conventions."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from itertools import groupby

from checker.findings import Finding, Report, Severity
from checker.formats.advice import advice
from checker.formats.catalogue import amounts, day, msg, number, word

_COLOURS = {Severity.CRITICAL: "\x1b[1;31m", Severity.WARNING: "\x1b[33m", Severity.INFO: "\x1b[36m"}
_RESET, _BOLD, _DIM = "\x1b[0m", "\x1b[1m", "\x1b[2m"
Paint = Callable[[str, str], str]


def render(report: Report, *, color: bool = False) -> str:
    """Render ``report`` as plain text (ANSI colours only when ``color`` is true)."""
    lang = report.lang
    t = lambda key: msg(lang, f"text.{key}")  # noqa: E731
    n = lambda value: number(value, lang)  # noqa: E731
    paint: Paint = (lambda code, s: f"{code}{s}{_RESET}") if color else (lambda code, s: s)
    c = report.inputs
    lines = [
        f"{report.checker_name} {report.checker_version} — {t('as_of')} {day(report.as_of, lang)} — "
        f"{n(c.files)} {t('files')}, {n(c.resources)} {t('resources')} ({n(c.checked)} {t('checked')}, "
        f"{n(c.ignored)} {t('ignored')}, {n(c.rejected)} {t('rejected')})",
        "",
    ]
    findings = report.sorted_findings()
    wrapped: dict[str, list[str]] = {}  # a detail's lines, for this report only (see _finding)
    for patient, group in groupby(findings, key=lambda f: f.patient):
        items = list(group)
        lines.append(paint(_BOLD, f"{patient or t('no_patient')} — {n(len(items))} {t('findings')}"))
        for f in items:
            lines.extend(_finding(f, lang, paint, wrapped))
        lines.append("")
    if not findings:
        lines += [t("none"), ""]
    if report.errors:
        lines.append(paint(_BOLD, f"{t('errors')} ({n(len(report.errors))})"))
        for e in report.errors:
            lines.append(f"  {e.location}: {e.message}")
        lines.append("")
    lines.append(_summary(report))
    savings = report.savings()
    if savings["total"]:
        lines.append(f"{t('savings')} : {amounts(savings['total'], lang)} {t('per_year')}" if lang == "fr" else
                     f"{t('savings')}: {amounts(savings['total'], lang)} {t('per_year')}")
        for label, part in ((t("by_rule"), savings["by_rule"]), (t("by_substance"), savings["by_substance"])):
            lines.append(f"  {label} : " if lang == "fr" else f"  {label}: ")
            lines[-1] += "; ".join(f"{k} {amounts(v, lang)}" for k, v in _largest_first(part))
    return "\n".join(lines) + "\n"


def _largest_first(part: dict[str, dict[str, float]]) -> list[tuple[str, dict[str, float]]]:
    return sorted(part.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))


def _colon(lang: str) -> str:
    return " : " if lang == "fr" else ": "


def _finding(f: Finding, lang: str, paint: Paint, wrapped: dict[str, list[str]] | None = None) -> list[str]:
    """A finding's lines. ``wrapped``: the lines of the details already wrapped in this report (a
    bulk report repeats a few hundred details over thousands of findings; wrapping is most of the
    cost of a finding's lines)."""
    head = (f"  {paint(_COLOURS[f.severity], msg(lang, 'severity_upper.' + f.severity.value)):<10} {f.rule} "
            f"{word(lang, 'category', f.category)}")
    if f.level:
        head += f" [{word(lang, 'level', f.level)}]"
    out = [head, f"    {f.summary}"]
    detail = f.detail
    body = wrapped.get(detail) if wrapped is not None else None
    if body is None:
        body = _wrapped(detail)
        if wrapped is not None:
            wrapped[detail] = body
    out += body
    out.append(f"    ↳ {', '.join(f.implicated)}")
    proposal = advice(f.to_dict(), lang)
    if proposal:
        out.append(f"    {msg(lang, 'text.suggestion')}{_colon(lang)}{proposal}")
    src = f"    {msg(lang, 'text.source')}{_colon(lang)}{f.source.cite()}" + (f" — {f.source.url}" if f.source.url else "")
    out.append(paint(_DIM, src))
    return out


def _wrapped(detail: str) -> list[str]:
    """The lines of a finding's detail: each paragraph wrapped at 100 columns, indented."""
    wrap = textwrap.TextWrapper(width=100, initial_indent="    ", subsequent_indent="    ")
    out: list[str] = []
    for para in detail.splitlines():
        if para.strip():
            out.extend(wrap.wrap(para.strip()))
    return out


def _summary(report: Report) -> str:
    lang = report.lang
    counts = {s: 0 for s in Severity}
    for f in report.findings:
        counts[f.severity] += 1
    parts = [f"{number(counts[s], lang)} {msg(lang, 'severity.' + s.value)}"
             for s in (Severity.CRITICAL, Severity.WARNING, Severity.INFO)]
    return f"{msg(lang, 'text.summary')}{_colon(lang)}" + ", ".join(parts)
