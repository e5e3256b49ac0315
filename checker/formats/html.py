"""Self-contained HTML report for a doctor's self-check (no network: inline CSS, SVG and JS).

:func:`render` renders a :class:`~checker.findings.Report`; :func:`render_records` adds each
patient's prescriptions; :func:`render_audit` renders a batch audit from its summary, indicator
rows and patient digests. Everything from the input is escaped. French by default, English with
``lang="en"``. Pure: the same arguments give the same text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from functools import lru_cache
from typing import Any

from checker.findings import CATEGORIES, Finding, Report, Severity
from checker.formats.advice import advice, short_cite
from checker.formats.catalogue import LANGS, amounts, day, msg, number, percent, table, word
from checker.model import PatientRecord

SEVERITY_COLORS = {"critical": "#c0392b", "warning": "#e67e22", "info": "#2e86c1"}
SAVINGS_COLOR = "#1e8449"
INDICATOR_COLOR = "#7d3c98"
REFERENCE_COLOR = "#17202a"

_CSS = """
:root{--crit:#c0392b;--warn:#e67e22;--info:#2e86c1;--ink:#17202a;--muted:#5d6d7e;--line:#d5d8dc}
*{box-sizing:border-box}body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:var(--ink);
margin:0 auto;max-width:1100px;padding:24px;line-height:1.4;background:#fff}
h1{font-size:1.6rem;margin:0}h2{font-size:1.2rem;border-bottom:2px solid var(--line);padding-bottom:4px;margin-top:32px}
.meta{color:var(--muted);margin:4px 0 16px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px}
.card{border:1px solid var(--line);border-radius:8px;padding:12px}.card .n{font-size:1.35rem;font-weight:700;overflow-wrap:anywhere}
.card.crit{border-color:#f5b7b1;background:#fdedec}.card.crit .n{color:#a93226}.card .l{color:var(--muted);font-size:.9rem}
.charts{display:grid;grid-template-columns:1fr;gap:16px}.chart{border:1px solid var(--line);border-radius:8px;padding:12px}
.chart h3{margin:0 0 8px;font-size:1rem}svg text{font-family:inherit;font-size:12px;fill:var(--ink)}
table{border-collapse:collapse;width:100%;margin:8px 0;font-size:.92rem}th,td{border:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f4f6f7}.badge{display:inline-block;border-radius:4px;padding:1px 6px;color:#fff;font-size:.8rem;font-weight:600}
.badge.critical{background:var(--crit)}.badge.warning{background:var(--warn)}.badge.info{background:var(--info)}
.patient{border:1px solid var(--line);border-radius:8px;padding:12px;margin:14px 0;break-inside:avoid;page-break-inside:avoid}
.patient h3{margin:0 0 6px;font-size:1.05rem}.finding{border-left:4px solid var(--line);padding:4px 10px;margin:8px 0}
.finding.critical{border-color:var(--crit)}.finding.warning{border-color:var(--warn)}.finding.info{border-color:var(--info)}
.finding .sum{font-weight:600}.small{color:var(--muted);font-size:.85rem}.legend span{margin-right:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
.filters button{margin:0 4px 8px 0;padding:3px 10px;border:1px solid var(--line);background:#fff;border-radius:4px;cursor:pointer}
.filters button[aria-pressed=true]{background:var(--ink);color:#fff}
table.errors td{overflow-wrap:anywhere}
.cards .card.money .n{color:#1e8449}#subline{margin:8px 0 0}
details.finding{border-left:4px solid var(--line);padding:3px 8px;margin:4px 0;background:#fbfcfc}
details.finding.critical{border-color:var(--crit)}details.finding.warning{border-color:var(--warn)}details.finding.info{border-color:var(--info)}
details.finding>summary{cursor:pointer;overflow-wrap:anywhere}details.finding .why{padding:4px 0 2px 18px}
details.finding .why p{margin:4px 0}.cat{color:var(--muted);font-size:.85rem}.todo{color:#1b4f72}
.who{font-weight:600;margin-right:4px}details.orders{margin-top:6px}details.orders>summary{cursor:pointer;color:var(--muted)}
.quiet-list{overflow-wrap:anywhere;max-height:12em;overflow:auto}.capped{background:#fef9e7;padding:4px 8px;border-radius:4px}
td.dir{white-space:nowrap}details.orders,#indicators,#input-errors,.chart{overflow-x:auto}
@media (max-width:600px){body{padding:10px}.cards{grid-template-columns:1fr 1fr}}
@media print{.filters{display:none}details>*{display:block}body{padding:0;max-width:none}.patient,.chart,.card{break-inside:avoid}a{color:inherit}}
"""

_JS = """
(function(){var d=document.documentElement;d.setAttribute('data-js','ready');
var bs=document.querySelectorAll('.filters button');bs.forEach(function(b){b.addEventListener('click',function(){
var want=b.getAttribute('data-severity');bs.forEach(function(x){x.setAttribute('aria-pressed',x===b?'true':'false')});
document.querySelectorAll('.patient').forEach(function(p){var s=p.getAttribute('data-severities')||'';
p.style.display=(want==='all'||s.indexOf(want)>=0)?'':'none'})})})})();
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _t(lang: str) -> dict[str, str]:
    """The report's labels (``label`` table) with ``severity.*`` and ``better.*`` keys, from the catalogue."""
    return _labels(lang if lang in LANGS else "fr")


@lru_cache(maxsize=4)
def _labels(lang: str) -> dict[str, str]:
    out = dict(table(lang, "label"))
    out.update({f"severity.{k}": v for k, v in table(lang, "severity").items()})
    out.update({f"better.{k}": v for k, v in table(lang, "better").items()})
    return out


def _num(n: float | int, lang: str, decimals: int = 0) -> str:
    return number(n, lang, decimals)


def _money(amounts_by_currency: dict[str, float], lang: str) -> str:
    return _e(amounts(amounts_by_currency, lang))


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _link(url: str, text: str) -> str:
    if url.startswith(("http://", "https://")):
        return f'<a href="{_e(url)}" rel="noreferrer">{_e(text)}</a>'
    return _e(text)


# ------------------------------------------------------------------------------------------------
# charts (inline SVG)
# ------------------------------------------------------------------------------------------------


def _empty_chart(label: str, lang: str) -> str:
    return (f'<svg class="chart-svg empty" role="img" aria-label="{_e(label)}" width="100%" height="40" '
            f'viewBox="0 0 600 40"><text x="8" y="24">{_e(_t(lang)["no_data"])}</text></svg>')


def chart_findings(by_category: dict[str, dict[str, int]], lang: str) -> str:
    """Horizontal stacked bars: one per category, segments by severity."""
    rows = [(c, by_category.get(c, {})) for c in CATEGORIES if sum(by_category.get(c, {}).values())]
    label = _t(lang)["by_category"]
    if not rows:
        return _empty_chart(label, lang)
    width, left, bar_h, gap = 640, 170, 22, 8
    top = max(sum(v.values()) for _, v in rows)
    height = len(rows) * (bar_h + gap) + 10
    parts = [f'<svg class="chart-svg" id="chart-findings" role="img" aria-label="{_e(label)}" width="100%" '
             f'viewBox="0 0 {width} {height}" preserveAspectRatio="xMinYMin meet"><title>{_e(label)}</title>']
    for i, (cat, per) in enumerate(rows):
        y = 5 + i * (bar_h + gap)
        parts.append(f'<text x="0" y="{y + 15}">{_e(word(lang, "category_plural", cat))}</text>')
        x = float(left)
        for sev in ("critical", "warning", "info"):
            n = per.get(sev, 0)
            if not n:
                continue
            w = max((width - left - 60) * n / top, 2.0)
            parts.append(f'<rect class="bar sev-{sev}" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                         f'fill="{SEVERITY_COLORS[sev]}"><title>{_e(_t(lang)["severity." + sev])}: {n}</title></rect>')
            x += w
        parts.append(f'<text x="{x + 6:.1f}" y="{y + 15}">{_num(sum(per.values()), lang)}</text>')
    parts.append("</svg>")
    legend = "".join(f'<span><i style="background:{SEVERITY_COLORS[s]}"></i>{_e(_t(lang)["severity." + s])}</span>'
                     for s in ("critical", "warning", "info"))
    return "".join(parts) + f'<div class="legend small">{legend}</div>'


def chart_savings(by_substance: dict[str, dict[str, float]], lang: str, limit: int = 12) -> str:
    """Horizontal bars of potential yearly savings by substance (largest first)."""
    label = _t(lang)["by_substance"]
    items = sorted(((s, sum(v.values()), v) for s, v in by_substance.items() if sum(v.values()) > 0),
                   key=lambda t: (-t[1], t[0]))[:limit]
    if not items:
        return _empty_chart(label, lang)
    width, left, bar_h, gap = 640, 170, 20, 6
    top = items[0][1]
    height = len(items) * (bar_h + gap) + 10
    parts = [f'<svg class="chart-svg" id="chart-savings" role="img" aria-label="{_e(label)}" width="100%" '
             f'viewBox="0 0 {width} {height}" preserveAspectRatio="xMinYMin meet"><title>{_e(label)}</title>']
    for i, (subst, total, per) in enumerate(items):
        y = 5 + i * (bar_h + gap)
        w = max((width - left - 110) * total / top, 2.0)
        parts.append(f'<text x="0" y="{y + 14}">{_e(subst[:26])}</text>'
                     f'<rect class="bar saving" x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{SAVINGS_COLOR}">'
                     f'<title>{_e(subst)}: {_money(per, lang)}</title></rect>'
                     f'<text x="{left + w + 6:.1f}" y="{y + 14}">{_money(per, lang)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def chart_indicators(rows: Sequence[dict[str, Any]], lang: str) -> str:
    """Overall value of each indicator (0–100 %) with its reference value as a tick when known."""
    label = _t(lang)["indicators"]
    overall = [r for r in rows if r["scope"] == "overall"]
    if not overall:
        return _empty_chart(label, lang)
    width, left, bar_h, gap = 720, 330, 18, 8
    span = width - left - 70
    height = len(overall) * (bar_h + gap) + 10
    parts = [f'<svg class="chart-svg" id="chart-indicators" role="img" aria-label="{_e(label)}" width="100%" '
             f'viewBox="0 0 {width} {height}" preserveAspectRatio="xMinYMin meet"><title>{_e(label)}</title>']
    for i, r in enumerate(overall):
        y = 5 + i * (bar_h + gap)
        arrow = "↑ " if r.get("better") == "higher" else "↓ " if r.get("better") == "lower" else ""
        parts.append(f'<text x="0" y="{y + 13}">{_e(arrow + _clip(str(r["title"]), 48))}</text>'
                     f'<rect x="{left}" y="{y}" width="{span}" height="{bar_h}" fill="#f2f3f4"/>')
        value = r["value_percent"]
        if value is None:
            parts.append(f'<text x="{left + 6}" y="{y + 13}" class="small">n/d (0/0)</text>')
        else:
            w = max(span * value / 100, 1.5)
            parts.append(f'<rect class="bar indicator" x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                         f'fill="{INDICATOR_COLOR}"><title>{_e(r["title"])}: {percent(value, lang)} '
                         f'({r["numerator"]}/{r["denominator"]})</title></rect>'
                         f'<text x="{left + span + 6}" y="{y + 13}">{percent(value, lang)}</text>')
        ref = r.get("reference_percent")
        if ref is not None:
            x = left + span * ref / 100
            parts.append(f'<line class="reference" x1="{x:.1f}" x2="{x:.1f}" y1="{y - 2}" y2="{y + bar_h + 2}" '
                         f'stroke="{REFERENCE_COLOR}" stroke-width="3"><title>{_e(_t(lang)["vs_reference"])}: '
                         f'{percent(ref, lang)}</title></line>')
    parts.append("</svg>")
    return "".join(parts)


# ------------------------------------------------------------------------------------------------
# patients
# ------------------------------------------------------------------------------------------------


def _dosage_text(order: Any) -> str:
    texts = []
    for d in order.dosages:
        if d.text:
            texts.append(d.text)
        elif d.dose is not None:
            t = f"{d.dose.value:g} {d.dose.unit}".strip()
            if d.frequency and d.period:
                t += f" × {d.frequency:g} / {d.period:g} {d.period_unit}"
            texts.append(t)
    return "; ".join(texts)


def records_by_patient(records: Iterable[PatientRecord]) -> dict[str | None, PatientRecord]:
    """The records by patient reference, for the digests. The records that name no patient (one per
    input file, never paired with each other) are shown together under "no patient", as their
    findings are: their lines are listed in one digest."""
    known: dict[str | None, PatientRecord] = {}
    for r in records:
        ref = r.ref
        first = known.get(ref) if ref is None else None
        if first is None:
            known[ref] = r
        else:
            known[None] = PatientRecord(None, [*first.medication_orders, *r.medication_orders],
                                        [*first.service_orders, *r.service_orders])
    return known


def patient_digest(record: PatientRecord | None, findings: Sequence[Finding], lang: str = "fr") -> dict[str, Any]:
    """What the report shows of one patient: prescriptions (when known) and findings (JSON-ready)."""
    orders = []
    if record is not None:
        for o in record.medication_orders:
            ident = o.identity
            orders.append({
                "ref": o.ref, "label": o.label, "status": o.status,
                "authored_on": o.authored_on.isoformat() if o.authored_on else None,
                "requester": o.requester, "dosage": _dosage_text(o),
                "identified": ", ".join(s.name for s in ident.substances) if ident else "",
                "product": ident.product if ident else "",
            })
        for s in record.service_orders:
            orders.append({"ref": s.ref, "label": s.label, "status": s.status,
                           "authored_on": s.authored_on.isoformat() if s.authored_on else None,
                           "requester": s.requester, "dosage": "", "identified": "", "product": ""})
    patient = record.patient if record is not None else None
    fs = sorted(findings, key=lambda f: (-f.severity.rank, f.rule, f.implicated, f.fingerprint))
    return {
        "patient": (patient.ref if patient else None) or (fs[0].patient if fs else None),
        "birth_date": patient.birth_date.isoformat() if patient and patient.birth_date else None,
        "sex": patient.sex if patient else "",
        "orders": orders,
        "findings": [f.to_dict() for f in fs],
    }


def _age(birth: str | None, as_of: str) -> int | None:
    if not birth:
        return None
    try:
        b, d = date.fromisoformat(birth[:10]), date.fromisoformat(as_of[:10])
    except ValueError:
        return None
    return d.year - b.year - ((d.month, d.day) < (b.month, b.day))



MAX_PATIENTS = 200
"""Patients shown in detail (worst first); the others are counted and pointed to the findings file."""
MAX_FINDINGS_PER_PATIENT = 20
MAX_ORDERS_PER_PATIENT = 40
MAX_CRITICAL = 100
MAX_QUIET = 1000
"""Patients with nothing to report listed by name (the rest counted)."""
MAX_ERROR_GROUPS = 50
FIRST_LOCATIONS = 5


def _natural(text: str) -> list[Any]:
    """Sort key reading digit runs as numbers (``line 9`` before ``line 10``)."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)]


def worst_key(p: Mapping[str, Any]) -> tuple[Any, ...]:
    """Patients ranked by their worst finding, then by how many critical and warning findings."""
    fs = p.get("findings") or []
    ranks = [_RANKS.get(f.get("severity", "info"), 0) for f in fs]
    return (-max(ranks, default=-1), -ranks.count(2), -ranks.count(1), -len(fs), p.get("patient") or "~")


_RANKS = {"info": 0, "warning": 1, "critical": 2}


def _colon(lang: str) -> str:
    return "\u00a0: " if lang == "fr" else ": "


def _cite(src: Mapping[str, Any]) -> str:
    return str(src.get("label", "")) + (f" ({src['edition']})" if src.get("edition") else "")


def _finding_html(f: Mapping[str, Any], lang: str, labels: Mapping[str, str] | None = None,
                  patient: str = "") -> str:
    """One finding on one line (severity, category, summary, what to do); the reasoning, the lines
    concerned and the source folded underneath."""
    t = _t(lang)
    sev = f.get("severity", "info")
    src = f.get("source") or {}
    level = word(lang, "level", f.get("level"))
    category = word(lang, "category", f.get("category"))
    tag = category + (f" · {level}" if level and level != category else "")
    todo = advice(f, lang, labels)
    implicated = ", ".join(f"{labels[r]} ({r})" if labels and labels.get(r) else r for r in f.get("implicated") or [])
    who = f'<span class="who">{_e(patient)}</span> ' if patient else ""
    return (f'<details class="finding {_e(sev)}"><summary>{who}<span class="badge {_e(sev)}">'
            f'{_e(t.get("severity." + sev, sev))}</span> <span class="cat">{_e(tag)}</span> '
            f'<span class="sum">{_e(f.get("summary"))}</span>'
            + (f' <span class="todo">→ {_e(todo)}</span>' if todo else "") +
            f'</summary><div class="why"><p>{_e(f.get("detail"))}</p>'
            f'<p class="small">{_e(t["implicated"])}{_colon(lang)}{_e(implicated)}</p>'
            f'<p class="small">{_e(t["source"])}{_colon(lang)}{_link(src.get("url", ""), _cite(src))} · '
            f'{_e(t["rule"])} {_e(f.get("rule"))}</p></div></details>')


def _labels_of(p: Mapping[str, Any]) -> dict[str, str]:
    return {o["ref"]: o["label"] for o in p.get("orders") or [] if o.get("ref") and o.get("label")}


def _patient_html(p: Mapping[str, Any], as_of: str, lang: str, findings_file: str = "") -> str:
    t = _t(lang)
    age = _age(p.get("birth_date"), as_of)
    facts = []
    if age is not None:
        facts.append(f"{t['age']} {age} {t['years']}")
    if p.get("sex"):
        facts.append(f"{t['sex']} {word(lang, 'sex', p['sex'])}")
    fs = list(p.get("findings") or [])
    sevs = sorted({f.get("severity", "") for f in fs})
    counts = {s: sum(f.get("severity") == s for f in fs) for s in ("critical", "warning", "info")}
    badges = "".join(f'<span class="badge {s}">{n} {_e(t["severity." + s])}</span> ' for s, n in counts.items() if n)
    out = [f'<section class="patient" data-severities="{_e(" ".join(sevs))}"><h3>{_e(p.get("patient") or t["unknown_patient"])} '
           f'<span class="small">{_e(", ".join(facts))}</span> {badges}</h3>']
    labels = _labels_of(p)
    for f in fs[:MAX_FINDINGS_PER_PATIENT]:
        out.append(_finding_html(f, lang, labels))
    if len(fs) > MAX_FINDINGS_PER_PATIENT:
        out.append(f'<p class="small capped">{_e(msg(lang, "report.findings_capped", hidden=number(len(fs) - MAX_FINDINGS_PER_PATIENT, lang), file=findings_file or "findings.csv"))}</p>')
    orders = p.get("orders") or []
    if orders:
        out.append(f'<details class="orders"><summary>{_e(msg(lang, "report.lines_of_patient"))} ({number(len(orders), lang)})</summary>'
                   f'<table><thead><tr><th>{_e(t["prescription"])}</th><th>{_e(t["date"])}</th><th>{_e(t["prescriber"])}</th>'
                   f'<th>{_e(t["dosage"])}</th><th>{_e(t["identified"])}</th><th>{_e(t["status"])}</th></tr></thead><tbody>')
        for o in orders[:MAX_ORDERS_PER_PATIENT]:
            out.append(f'<tr id="{_e(o.get("ref"))}"><td>{_e(o.get("label"))}<div class="small">{_e(o.get("ref"))}</div></td>'
                       f'<td>{_e(day(o.get("authored_on"), lang) or t["none"])}</td><td>{_e(o.get("requester") or t["none"])}</td>'
                       f'<td>{_e(o.get("dosage") or t["none"])}</td><td>{_e(o.get("identified") or t["none"])}</td>'
                       f'<td>{_e(o.get("status"))}</td></tr>')
        out.append("</tbody></table>")
        if len(orders) > MAX_ORDERS_PER_PATIENT:
            out.append(f'<p class="small">{_e(msg(lang, "report.quiet_capped", shown=number(MAX_ORDERS_PER_PATIENT, lang), total=number(len(orders), lang)))}</p>')
        out.append("</details>")
    out.append("</section>")
    return "".join(out)


def _indicator_table(rows: Sequence[dict[str, Any]], lang: str, max_requesters: int = 20) -> str:
    """Overall rows with their direction and reference, plus one row per prescriber when there are
    few (the rest is in indicators.csv)."""
    if not rows:
        return ""
    t = _t(lang)
    requesters = {r["requester"] for r in rows if r["scope"] != "overall"}
    hidden = 0
    if len(requesters) > max_requesters:
        hidden = len(requesters)
        rows = [r for r in rows if r["scope"] == "overall"]
    out = [f'<table class="indicators"><thead><tr><th>{_e(t["indicator"])}</th><th>{_e(t["prescriber"])}</th>'
           f'<th>{_e(t["value"])}</th><th>{_e(msg(lang, "report.direction"))}</th><th>{_e(t["reference"])}</th>'
           f'<th>{_e(t["numerator"])}</th><th>{_e(t["denominator"])}</th><th>{_e(t["source"])}</th></tr></thead><tbody>']
    for r in rows:
        who = r["requester"] or ("ensemble" if lang == "fr" else "overall")
        value = "n/d" if r["value_percent"] is None else percent(r["value_percent"], lang)
        ref = msg(lang, "report.no_reference") if r.get("reference_percent") is None else percent(r["reference_percent"], lang)
        arrow = "↑" if r["better"] == "higher" else "↓"
        out.append(f'<tr><td><b>{_e(r["title"])}</b><div class="small">{_e(r["indicator"])}</div></td><td>{_e(who)}</td>'
                   f'<td><b>{_e(value)}</b></td><td class="dir">{arrow} {_e(t["better." + r["better"]])}</td><td>{_e(ref)}</td>'
                   f'<td>{_num(r["numerator"], lang)}<div class="small">{_e(r["numerator_definition"])}</div></td>'
                   f'<td>{_num(r["denominator"], lang)}<div class="small">{_e(r["denominator_definition"])}</div></td>'
                   f'<td class="small" title="{_e(r["source"])}">{_link(r.get("source_url", ""), short_cite(str(r["source"])))}</td></tr>')
    out.append("</tbody></table>")
    if hidden:
        out.append(f'<p class="small">{_e(t["per_prescriber"])} ({_num(hidden, lang)}){_colon(lang)}indicators.csv</p>')
    return "".join(out)


def group_errors(errors: Iterable[Mapping[str, Any]], first: int = FIRST_LOCATIONS) -> list[dict[str, Any]]:
    """Input errors grouped by message: count and the first locations in numeric order, the most
    frequent message first."""
    groups: dict[str, dict[str, Any]] = {}
    for e in errors:
        g = groups.setdefault(str(e.get("message", "")), {"message": str(e.get("message", "")), "count": 0,
                                                          "locations": [], "types": set()})
        g["count"] += 1
        g["locations"].append(str(e.get("location", "")))
        if e.get("resourceType"):
            g["types"].add(str(e["resourceType"]))
    out = []
    for g in groups.values():
        g["locations"] = sorted(g["locations"], key=_natural)[:first]
        g["types"] = sorted(g["types"])
        out.append(g)
    return sorted(out, key=lambda g: (-g["count"], g["message"]))


def _errors_html(errors: Sequence[dict[str, Any]], total: int, errors_file: str, lang: str) -> str:
    """The input errors grouped by message (count, first locations in numeric order), with how many
    are not counted here and where they all are when only the first ones are given."""
    if not errors and not total:
        return ""
    t = _t(lang)
    out = [(f'<section id="input-errors"><h2>{_e(t["errors"])} ({_num(total, lang)})</h2>'
            f'<p class="small">{_e(t["errors_intro"])}</p>')]
    if total > len(errors):
        sep = " ; " if lang == "fr" else "; "
        where = f'{sep}{_e(t["see_errors"])} {_e(errors_file)}' if errors_file else ""
        out.append(f'<p class="small">{_num(len(errors), lang)} {_e(t["errors_shown"])} {_num(total, lang)}{where}.</p>')
    groups = group_errors(errors)
    if groups:
        out.append(f'<table class="errors"><thead><tr><th>{_e(t["message"])}</th><th>{_e(msg(lang, "report.count"))}</th>'
                   f'<th>{_e(msg(lang, "report.first_locations"))}</th><th>{_e(t["resource_type"])}</th></tr></thead><tbody>')
        for g in groups[:MAX_ERROR_GROUPS]:
            more = " …" if g["count"] > len(g["locations"]) else ""
            out.append(f'<tr><td>{_e(g["message"])}</td><td>{_num(g["count"], lang)}</td>'
                       f'<td>{"<br>".join(_e(x) for x in g["locations"])}{more}</td>'
                       f'<td>{_e(", ".join(g["types"]) or t["none"])}</td></tr>')
        out.append("</tbody></table>")
        if len(groups) > MAX_ERROR_GROUPS:
            out.append(f'<p class="small">{_e(msg(lang, "report.quiet_capped", shown=number(MAX_ERROR_GROUPS, lang), total=number(len(groups), lang)))}</p>')
    out.append("</section>")
    return "".join(out)


# ------------------------------------------------------------------------------------------------
# documents
# ------------------------------------------------------------------------------------------------


def _critical_html(patients: Sequence[Mapping[str, Any]], total: int, findings_file: str, lang: str) -> str:
    shown: list[str] = []
    for p in patients:
        labels = _labels_of(p)
        for f in p.get("findings") or []:
            if f.get("severity") == "critical" and len(shown) < MAX_CRITICAL:
                shown.append(_finding_html(f, lang, labels, patient=p.get("patient") or ""))
    if not total:
        return ""
    note = ""
    if total > len(shown):
        text = msg(lang, "report.more_critical", shown=number(len(shown), lang), total=number(total, lang),
                   file=findings_file or "findings.csv")
        note = f'<p class="small capped">{_e(text)}</p>'
    return (f'<section id="critical"><h2>{_e(msg(lang, "report.critical_title"))} ({_num(total, lang)})</h2>'
            f'{"".join(shown)}{note}</section>')


def _quiet_html(quiet: Sequence[str], total: int, lang: str) -> str:
    names = sorted(quiet, key=_natural)[:MAX_QUIET]
    head = f'<h2>{_e(msg(lang, "report.nothing_to_report"))} ({_num(total, lang)})</h2>'
    if not total:
        return f'<section id="quiet">{head}<p class="small">{_e(msg(lang, "report.nothing_to_report_none"))}</p></section>'
    body = f'<p class="quiet-list small">{_e(" · ".join(names))}</p>' if names else ""
    if total > len(names) and names:
        body += f'<p class="small">{_e(msg(lang, "report.quiet_capped", shown=number(len(names), lang), total=number(total, lang)))}</p>'
    return f'<section id="quiet">{head}{body}</section>'


def render_audit(summary: dict[str, Any], indicator_rows: Sequence[dict[str, Any]],
                 patients: Iterable[dict[str, Any]], *, lang: str = "fr", patients_total: int | None = None,
                 errors: Sequence[dict[str, Any]] = (), errors_total: int | None = None,
                 errors_file: str = "", quiet: Sequence[str] = (), findings_file: str = "") -> str:
    """The whole report, in the order a doctor reads it: how many patients and lines were checked,
    the critical findings and the money at stake; then the patients ranked by their worst finding
    (each finding one line, reasoning folded); patients with nothing to report; indicators with
    their direction and reference; input errors grouped by message.

    ``patients``: digests (:func:`patient_digest`) of patients with findings, at most
    :data:`MAX_PATIENTS` shown, of ``patients_total``; ``quiet``: names of patients without
    findings (``summary["patients"]`` counts all patients); ``errors``: all input errors or the
    first of ``errors_total`` (``errors_file`` holds them all); ``findings_file``: where every
    finding is when the page shows only some."""
    t = _t(lang)
    ranked = sorted(patients, key=worst_key)
    total = patients_total if patients_total is not None else len(ranked)
    shown = ranked[:MAX_PATIENTS]
    inputs = summary.get("inputs", {})
    fnd = summary.get("findings", {})
    by_sev = fnd.get("by_severity", {})
    savings = summary.get("savings", {})
    as_of = summary.get("as_of", "")
    n_patients = int(summary.get("patients", 0))
    lines = int(summary.get("lines", summary.get("medication_requests", 0)))
    cards = [
        ("", _num(n_patients, lang), msg(lang, "report.patients_checked"), "patients"),
        ("", _num(lines, lang), msg(lang, "report.checked_lines"), "lines"),
        ("crit", _num(by_sev.get("critical", 0), lang), msg(lang, "report.critical_findings"), "critical"),
        ("money", _money(savings.get("total", {}), lang), msg(lang, "report.money_at_stake"), "savings"),
    ]
    card_html = "".join(f'<div class="card {c}" id="card-{key}"><div class="n">{n}</div><div class="l">{_e(label)}</div></div>'
                        for c, n, label, key in cards)
    sub = (f'{_num(fnd.get("total", 0), lang)} {_e(t["findings"].lower())} ({_num(by_sev.get("warning", 0), lang)} '
           f'{_e(t["severity.warning"])}, {_num(by_sev.get("info", 0), lang)} {_e(t["severity.info"])}) · '
           f'{_num(total, lang)} {_e(t["patients"].lower())} {_e(t["with_findings"])} · '
           f'{_e(t["resources"])} {_num(inputs.get("resources", 0), lang)} ({_num(inputs.get("checked", 0), lang)} '
           f'{_e(t["checked"])}, {_num(inputs.get("ignored", 0), lang)} {_e(t["ignored"])}, '
           f'{_num(inputs.get("rejected", 0), lang)} {_e(t["rejected"])})')
    filters = "".join(
        f'<button type="button" data-severity="{s}" aria-pressed="{"true" if s == "all" else "false"}">'
        f'{_e(t["all"] if s == "all" else t["severity." + s])}</button>' for s in ("all", "critical", "warning", "info"))
    file_name = findings_file or "findings.csv"
    body_patients = "".join(_patient_html(p, as_of, lang, file_name) for p in shown) or f'<p>{_e(t["no_findings"])}</p>'
    more = ""
    if total > len(shown):
        text = msg(lang, "report.patients_capped", shown=number(len(shown), lang), total=number(total, lang),
                   file=file_name)
        more = f'<p class="small capped" id="patients-capped">{_e(text)}</p>'
    full = (f'<p class="small">{_e(msg(lang, "report.full_findings", files=findings_file))}</p>'
            if findings_file else "")
    quiet_total = max(n_patients - total, len(quiet), 0)
    checker = summary.get("checker", {})
    return (
        f'<!DOCTYPE html>\n<html lang="{_e(lang)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
        f'script-src \'unsafe-inline\'; img-src data:">'
        f'<title>{_e(t["title"])} — Pertinence</title><style>{_CSS}</style></head><body>'
        f'<header><h1>{_e(t["title"])}</h1><div class="meta">{_e(t["subtitle"])} · {_e(t["as_of"])}{_colon(lang)}{_e(day(as_of, lang))} · '
        f'{_e(t["jurisdiction"])}{_colon(lang)}{_e(checker.get("jurisdiction", ""))} · {_e(checker.get("name", "pertinence"))} '
        f'{_e(checker.get("version", ""))}</div></header>'
        f'<section class="cards" id="headline">{card_html}</section><p class="small" id="subline">{sub}</p>{full}'
        f'{_critical_html(shown, int(by_sev.get("critical", 0)), file_name, lang)}'
        f'<section id="patients"><h2>{_e(msg(lang, "report.patients_ranked"))} ({_num(total, lang)})</h2>'
        f'<div class="filters">{_e(t["filter"])}{_colon(lang)}{filters}</div>{more}{body_patients}</section>'
        f'{_quiet_html(quiet, quiet_total, lang)}'
        f'<h2>{_e(t["by_category"])}</h2><div class="charts"><div class="chart">{chart_findings(fnd.get("by_category", {}), lang)}</div></div>'
        f'<h2>{_e(t["by_substance"])}</h2><div class="charts"><div class="chart">{chart_savings(savings.get("by_substance", {}), lang)}</div></div>'
        f'<section id="indicators"><h2>{_e(t["indicators"])}</h2><div class="charts"><div class="chart">{chart_indicators(indicator_rows, lang)}</div></div>'
        f'{_indicator_table(indicator_rows, lang)}</section>'
        f'{_errors_html(errors, len(errors) if errors_total is None else errors_total, errors_file, lang)}'
        f'<footer class="small"><p>{_e(t["print_note"])}</p></footer>'
        f'<script>{_JS}</script></body></html>\n'
    )


def summary_of(report: Report) -> dict[str, Any]:
    """The summary fields the HTML needs, from a single-run report (patients and lines: those the
    findings name; :func:`render_records` counts them from the records)."""
    by_category: dict[str, dict[str, int]] = {}
    by_sev = {s.value: 0 for s in Severity}
    for f in report.findings:
        by_category.setdefault(f.category, {}).setdefault(f.severity.value, 0)
        by_category[f.category][f.severity.value] += 1
        by_sev[f.severity.value] += 1
    return {
        "checker": {"name": report.checker_name, "version": report.checker_version, "jurisdiction": report.jurisdiction},
        "as_of": report.as_of, "inputs": report.inputs.to_dict(),
        "patients": len({f.patient for f in report.findings if f.patient}),
        "lines": len({r for f in report.findings for r in f.implicated}),
        "medication_requests": len({r for f in report.findings for r in f.implicated if r.startswith("MedicationRequest/")}),
        "findings": {"total": len(report.findings), "by_severity": by_sev, "by_category": by_category},
        "savings": report.savings(),
    }


def render_records(report: Report, records: Sequence[PatientRecord],
                   indicator_rows: Sequence[dict[str, Any]] = (), *, findings_file: str = "") -> str:
    """The report with each patient's prescriptions (records as checked) beside the findings, the
    patients without findings listed compactly, and every input error of the report.

    With records, patients and lines are counted from them; without, from the findings. Only the
    :data:`MAX_PATIENTS` worst patients are detailed: name in ``findings_file`` where all findings are."""
    summary = summary_of(report)
    by_patient: dict[str | None, list[Finding]] = {}
    for f in report.findings:
        by_patient.setdefault(f.patient, []).append(f)
    quiet: list[str] = []
    if records:
        summary["patients"] = sum(1 for r in records if r.patient is not None)
        summary["medication_requests"] = sum(len(r.medication_orders) for r in records)
        summary["lines"] = sum(len(r.medication_orders) + len(r.service_orders) for r in records)
        quiet = [r.ref for r in records if r.patient is not None and r.ref not in by_patient and r.ref]
    known = records_by_patient(records)
    ranked = sorted(by_patient.items(), key=lambda kv: worst_key({"patient": kv[0], "findings": [
        {"severity": f.severity.value} for f in kv[1]]}))
    patients = [patient_digest(known.get(p), fs, report.lang) for p, fs in ranked[:MAX_PATIENTS]]
    return render_audit(summary, indicator_rows, patients, lang=report.lang, patients_total=len(by_patient),
                        errors=[e.to_dict() for e in report.errors], quiet=quiet, findings_file=findings_file)


def render(report: Report) -> str:
    """The HTML report of ``report``: findings grouped by patient, with the patients' prescriptions
    when the report carries the records it was computed from (``records`` attribute)."""
    return render_records(report, list(getattr(report, "records", None) or ()))
