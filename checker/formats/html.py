"""Self-contained HTML report for a doctor's self-check (no network: inline CSS, SVG and JS).

:func:`render` renders a :class:`~checker.findings.Report`; :func:`render_records` adds each
patient's prescriptions; :func:`render_audit` renders a batch audit from its summary, indicator
rows and patient digests. Everything from the input is escaped. French by default, English with
``lang="en"``. Pure: the same arguments give the same text.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from checker.findings import CATEGORIES, Finding, Report, Severity
from checker.model import PatientRecord

SEVERITY_COLORS = {"critical": "#c0392b", "warning": "#e67e22", "info": "#2e86c1"}
SAVINGS_COLOR = "#1e8449"
INDICATOR_COLOR = "#7d3c98"
REFERENCE_COLOR = "#17202a"

_T: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Auto-évaluation des prescriptions", "subtitle": "Rapport Pertinence",
        "as_of": "Date de référence", "jurisdiction": "Juridiction", "patients": "Patients",
        "prescriptions": "Prescriptions de médicaments", "findings": "Alertes", "critical": "critiques",
        "savings": "Économies potentielles / an", "resources": "Ressources lues", "checked": "analysées",
        "ignored": "ignorées", "rejected": "rejetées", "errors": "Erreurs de lecture",
        "by_category": "Alertes par catégorie et gravité", "by_substance": "Économies potentielles par substance",
        "indicators": "Indicateurs de prescription (esprit ROSP 2016)", "vs_reference": "valeur de référence",
        "no_data": "Aucune donnée", "patient_details": "Patients et alertes", "shown": "patients affichés sur",
        "with_findings": "ayant au moins une alerte", "see_csv": "la liste complète est dans findings.csv",
        "prescription": "Prescription", "date": "Date", "prescriber": "Prescripteur", "dosage": "Posologie",
        "identified": "Identifié comme", "status": "Statut", "suggestion": "Suggestion", "source": "Source",
        "alternatives": "Alternatives", "saving": "Économie", "rule": "Règle", "age": "âge", "years": "ans",
        "sex": "sexe", "indicator": "Indicateur", "numerator": "Numérateur", "denominator": "Dénominateur",
        "value": "Valeur", "reference": "Référence", "filter": "Afficher", "all": "toutes",
        "no_findings": "Aucune alerte : rien à signaler pour ces prescriptions.",
        "severity.critical": "critique", "severity.warning": "attention", "severity.info": "information",
        "unknown_patient": "(patient non identifié)", "implicated": "Lignes concernées", "none": "—",
        "better.higher": "plus haut = mieux", "better.lower": "plus bas = mieux", "level": "Niveau",
        "per_prescriber": "Valeurs par prescripteur", "print_note": "Ce rapport est généré localement ; il ne contient aucun lien vers un service externe.",
        "errors_intro": "Ces entrées n'ont pas pu être lues ou ont été rejetées : leur contenu n'a pas été vérifié.",
        "location": "Emplacement", "message": "Message", "resource_type": "Type de ressource",
        "errors_shown": "erreurs affichées sur", "see_errors": "la liste complète est dans",
    },
    "en": {
        "title": "Prescribing self-check", "subtitle": "Pertinence report",
        "as_of": "Reference date", "jurisdiction": "Jurisdiction", "patients": "Patients",
        "prescriptions": "Medication prescriptions", "findings": "Findings", "critical": "critical",
        "savings": "Potential savings / year", "resources": "Resources read", "checked": "checked",
        "ignored": "ignored", "rejected": "rejected", "errors": "Input errors",
        "by_category": "Findings by category and severity", "by_substance": "Potential savings by substance",
        "indicators": "Prescribing indicators (ROSP 2016 spirit)", "vs_reference": "reference value",
        "no_data": "No data", "patient_details": "Patients and findings", "shown": "patients shown of",
        "with_findings": "with at least one finding", "see_csv": "the full list is in findings.csv",
        "prescription": "Prescription", "date": "Date", "prescriber": "Prescriber", "dosage": "Dosage",
        "identified": "Identified as", "status": "Status", "suggestion": "Suggestion", "source": "Source",
        "alternatives": "Alternatives", "saving": "Saving", "rule": "Rule", "age": "age", "years": "years",
        "sex": "sex", "indicator": "Indicator", "numerator": "Numerator", "denominator": "Denominator",
        "value": "Value", "reference": "Reference", "filter": "Show", "all": "all",
        "no_findings": "No findings: nothing to report for these prescriptions.",
        "severity.critical": "critical", "severity.warning": "warning", "severity.info": "info",
        "unknown_patient": "(unidentified patient)", "implicated": "Lines concerned", "none": "—",
        "better.higher": "higher is better", "better.lower": "lower is better", "level": "Level",
        "per_prescriber": "Values per prescriber", "print_note": "This report was generated locally; it links to no external service.",
        "errors_intro": "These inputs could not be read or were rejected: their content was not checked.",
        "location": "Location", "message": "Message", "resource_type": "Resource type",
        "errors_shown": "errors shown of", "see_errors": "the full list is in",
    },
}

_CATEGORY_LABELS = {
    "fr": {"interaction": "Interactions", "duplicate": "Doublons", "contraindication": "Contre-indications",
           "allergy": "Allergies", "dosage": "Posologie", "cheaper-equivalent": "Équivalent moins cher",
           "off-protocol": "Hors protocole", "unidentified": "Non identifié"},
    "en": {"interaction": "Interactions", "duplicate": "Duplicates", "contraindication": "Contraindications",
           "allergy": "Allergies", "dosage": "Dosage", "cheaper-equivalent": "Cheaper equivalent",
           "off-protocol": "Off protocol", "unidentified": "Unidentified"},
}

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
@media print{.filters{display:none}body{padding:0;max-width:none}.patient,.chart,.card{break-inside:avoid}a{color:inherit}}
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
    return _T.get(lang, _T["fr"])


def _num(n: float | int, lang: str, decimals: int = 0) -> str:
    text = f"{n:,.{decimals}f}"
    return text.replace(",", "\u202f").replace(".", ",") if lang == "fr" else text


def _money(amounts: dict[str, float], lang: str) -> str:
    if not amounts:
        return _num(0, lang, 2)
    return " + ".join(f"{_num(v, lang, 2)} {_e(cur or '')}".strip() for cur, v in sorted(amounts.items()))


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
        parts.append(f'<text x="0" y="{y + 15}">{_e(_CATEGORY_LABELS.get(lang, _CATEGORY_LABELS["fr"]).get(cat, cat))}</text>')
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
        parts.append(f'<text x="0" y="{y + 13}">{_e(_clip(str(r["title"]), 50))}</text>'
                     f'<rect x="{left}" y="{y}" width="{span}" height="{bar_h}" fill="#f2f3f4"/>')
        value = r["value_percent"]
        if value is None:
            parts.append(f'<text x="{left + 6}" y="{y + 13}" class="small">n/d (0/0)</text>')
        else:
            w = max(span * value / 100, 1.5)
            parts.append(f'<rect class="bar indicator" x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" '
                         f'fill="{INDICATOR_COLOR}"><title>{_e(r["title"])}: {_num(value, lang, 1)} % '
                         f'({r["numerator"]}/{r["denominator"]})</title></rect>'
                         f'<text x="{left + span + 6}" y="{y + 13}">{_num(value, lang, 1)} %</text>')
        ref = r.get("reference_percent")
        if ref is not None:
            x = left + span * ref / 100
            parts.append(f'<line class="reference" x1="{x:.1f}" x2="{x:.1f}" y1="{y - 2}" y2="{y + bar_h + 2}" '
                         f'stroke="{REFERENCE_COLOR}" stroke-width="3"><title>{_e(_t(lang)["vs_reference"])}: '
                         f'{_num(ref, lang, 1)} %</title></line>')
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


def _suggestion_html(sugg: dict[str, Any] | None, lang: str) -> str:
    if not sugg:
        return ""
    t = _t(lang)
    items = []
    for key in sorted(sugg):
        value = sugg[key]
        if value in (None, "", [], {}):
            continue
        if key == "saving" and isinstance(value, dict):
            amount = value.get("per_year", value.get("amount"))
            if amount is not None:
                items.append(f"<li>{_e(t['saving'])} : {_num(float(amount), lang, 2)} {_e(value.get('currency', ''))}"
                             f"{' / an' if lang == 'fr' and 'per_year' in value else ' / year' if 'per_year' in value else ''}</li>")
            continue
        if isinstance(value, list):
            shown = ", ".join(_e(v if not isinstance(v, dict) else v.get("name") or v.get("label") or v) for v in value)
            name = t["alternatives"] if key in ("alternatives", "replacements") else key
            items.append(f"<li>{_e(name)} : {shown}</li>")
        elif isinstance(value, dict):
            shown = ", ".join(f"{_e(k)}: {_e(v)}" for k, v in sorted(value.items()) if v not in (None, ""))
            items.append(f"<li>{_e(key)} : {shown}</li>")
        else:
            items.append(f"<li>{_e(key)} : {_e(value)}</li>")
    if not items:
        return ""
    return f'<div class="sugg"><b>{_e(t["suggestion"])}</b><ul>{"".join(items)}</ul></div>'


def _finding_html(f: dict[str, Any], lang: str) -> str:
    t = _t(lang)
    sev = f.get("severity", "info")
    src = f.get("source") or {}
    cite = src.get("label", "") + (f" ({src['edition']})" if src.get("edition") else "")
    level = f' · {_e(t["level"])} {_e(f["level"])}' if f.get("level") else ""
    return (f'<div class="finding {_e(sev)}"><div><span class="badge {_e(sev)}">{_e(t.get("severity." + sev, sev))}</span> '
            f'<span class="sum">{_e(f.get("summary"))}</span> <span class="small">{_e(t["rule"])} {_e(f.get("rule"))}{level}</span></div>'
            f'<div>{_e(f.get("detail"))}</div>'
            f'<div class="small">{_e(t["implicated"])} : {_e(", ".join(f.get("implicated") or []))}</div>'
            f'{_suggestion_html(f.get("suggestion"), lang)}'
            f'<div class="small">{_e(t["source"])} : {_link(src.get("url", ""), cite)}</div></div>')


def _patient_html(p: dict[str, Any], as_of: str, lang: str) -> str:
    t = _t(lang)
    age = _age(p.get("birth_date"), as_of)
    facts = []
    if age is not None:
        facts.append(f"{t['age']} {age} {t['years']}")
    if p.get("sex"):
        sex = {"male": "homme", "female": "femme", "other": "autre", "unknown": "inconnu"}.get(p["sex"], p["sex"]) \
            if lang == "fr" else p["sex"]
        facts.append(f"{t['sex']} {sex}")
    sevs = sorted({f.get("severity", "") for f in p.get("findings", [])})
    head = _e(p.get("patient") or t["unknown_patient"])
    out = [f'<section class="patient" data-severities="{_e(" ".join(sevs))}"><h3>{head} '
           f'<span class="small">{_e(", ".join(facts))}</span></h3>']
    orders = p.get("orders") or []
    if orders:
        out.append(f'<table><thead><tr><th>{_e(t["prescription"])}</th><th>{_e(t["date"])}</th><th>{_e(t["prescriber"])}</th>'
                   f'<th>{_e(t["dosage"])}</th><th>{_e(t["identified"])}</th><th>{_e(t["status"])}</th></tr></thead><tbody>')
        for o in orders:
            out.append(f'<tr id="{_e(o.get("ref"))}"><td>{_e(o.get("label"))}<div class="small">{_e(o.get("ref"))}</div></td>'
                       f'<td>{_e(o.get("authored_on") or t["none"])}</td><td>{_e(o.get("requester") or t["none"])}</td>'
                       f'<td>{_e(o.get("dosage") or t["none"])}</td><td>{_e(o.get("identified") or t["none"])}</td>'
                       f'<td>{_e(o.get("status"))}</td></tr>')
        out.append("</tbody></table>")
    for f in p.get("findings", []):
        out.append(_finding_html(f, lang))
    out.append("</section>")
    return "".join(out)


def _indicator_table(rows: Sequence[dict[str, Any]], lang: str, max_requesters: int = 20) -> str:
    """Overall rows, plus one row per prescriber when there are few (the rest is in indicators.csv)."""
    if not rows:
        return ""
    t = _t(lang)
    requesters = {r["requester"] for r in rows if r["scope"] != "overall"}
    hidden = 0
    if len(requesters) > max_requesters:
        hidden = len(requesters)
        rows = [r for r in rows if r["scope"] == "overall"]
    out = [f'<table class="indicators"><thead><tr><th>{_e(t["indicator"])}</th><th>{_e(t["prescriber"])}</th>'
           f'<th>{_e(t["numerator"])}</th><th>{_e(t["denominator"])}</th><th>{_e(t["value"])}</th>'
           f'<th>{_e(t["reference"])}</th><th>{_e(t["source"])}</th></tr></thead><tbody>']
    for r in rows:
        who = r["requester"] or ("ensemble" if lang == "fr" else "overall")
        value = "n/d" if r["value_percent"] is None else f'{_num(r["value_percent"], lang, 1)} %'
        ref = t["none"] if r.get("reference_percent") is None else f'{_num(r["reference_percent"], lang, 1)} %'
        out.append(f'<tr><td><b>{_e(r["title"])}</b><div class="small">{_e(r["indicator"])} · '
                   f'{_e(t["better." + r["better"]])}</div></td><td>{_e(who)}</td>'
                   f'<td>{r["numerator"]}<div class="small">{_e(r["numerator_definition"])}</div></td>'
                   f'<td>{r["denominator"]}<div class="small">{_e(r["denominator_definition"])}</div></td>'
                   f'<td>{value}</td><td>{ref}</td><td class="small">{_link(r.get("source_url", ""), r["source"])}</td></tr>')
    out.append("</tbody></table>")
    if hidden:
        out.append(f'<p class="small">{_e(t["per_prescriber"])} ({_num(hidden, lang)}) : indicators.csv</p>')
    return "".join(out)


def _errors_html(errors: Sequence[dict[str, Any]], total: int, errors_file: str, lang: str) -> str:
    """The input errors (location, message, resource type), with how many are not shown and where
    they all are when only the first ones are given."""
    if not errors and not total:
        return ""
    t = _t(lang)
    out = [(f'<section id="input-errors"><h2>{_e(t["errors"])} ({_num(total, lang)})</h2>'
            f'<p class="small">{_e(t["errors_intro"])}</p>')]
    if total > len(errors):
        sep = " ; " if lang == "fr" else "; "
        where = f'{sep}{_e(t["see_errors"])} {_e(errors_file)}' if errors_file else ""
        out.append(f'<p class="small">{_num(len(errors), lang)} {_e(t["errors_shown"])} {_num(total, lang)}{where}.</p>')
    if errors:
        out.append(f'<table class="errors"><thead><tr><th>{_e(t["location"])}</th><th>{_e(t["message"])}</th>'
                   f'<th>{_e(t["resource_type"])}</th></tr></thead><tbody>')
        for err in errors:
            out.append(f'<tr><td>{_e(err.get("location"))}</td><td>{_e(err.get("message"))}</td>'
                       f'<td>{_e(err.get("resourceType") or t["none"])}</td></tr>')
        out.append("</tbody></table>")
    out.append("</section>")
    return "".join(out)


# ------------------------------------------------------------------------------------------------
# documents
# ------------------------------------------------------------------------------------------------


def render_audit(summary: dict[str, Any], indicator_rows: Sequence[dict[str, Any]],
                 patients: Iterable[dict[str, Any]], *, lang: str = "fr", patients_total: int | None = None,
                 errors: Sequence[dict[str, Any]] = (), errors_total: int | None = None,
                 errors_file: str = "") -> str:
    """The whole report: headline figures, input errors, charts, indicators, then each patient's
    details. ``errors`` are input errors as :meth:`~checker.findings.InputError.to_dict` gives them,
    all of them or the first of ``errors_total`` (then ``errors_file`` names where all are)."""
    t = _t(lang)
    patients = list(patients)
    inputs = summary.get("inputs", {})
    fnd = summary.get("findings", {})
    by_sev = fnd.get("by_severity", {})
    savings = summary.get("savings", {})
    as_of = summary.get("as_of", "")
    cards = [
        ("crit", _num(by_sev.get("critical", 0), lang), f'{t["findings"]} {t["critical"]}'),
        ("", _num(fnd.get("total", 0), lang), t["findings"]),
        ("", _num(summary.get("patients", 0), lang), t["patients"]),
        ("", _num(summary.get("medication_requests", 0), lang), t["prescriptions"]),
        ("", _money(savings.get("total", {}), lang), t["savings"]),
        ("", _num(inputs.get("resources", 0), lang),
         f'{t["resources"]} ({_num(inputs.get("checked", 0), lang)} {t["checked"]}, '
         f'{_num(inputs.get("ignored", 0), lang)} {t["ignored"]}, {_num(inputs.get("rejected", 0), lang)} {t["rejected"]})'),
    ]
    card_html = "".join(f'<div class="card {c}"><div class="n">{n}</div><div class="l">{_e(label)}</div></div>'
                        for c, n, label in cards)
    total = patients_total if patients_total is not None else len(patients)
    filters = "".join(
        f'<button type="button" data-severity="{s}" aria-pressed="{"true" if s == "all" else "false"}">'
        f'{_e(t["all"] if s == "all" else t["severity." + s])}</button>' for s in ("all", "critical", "warning", "info"))
    body_patients = "".join(_patient_html(p, as_of, lang) for p in patients) or f'<p>{_e(t["no_findings"])}</p>'
    more = ""
    if total > len(patients):
        more = (f'<p class="small">{_num(len(patients), lang)} {_e(t["shown"])} {_num(total, lang)} '
                f'{_e(t["with_findings"])} ; {_e(t["see_csv"])}.</p>')
    checker = summary.get("checker", {})
    return (
        f'<!DOCTYPE html>\n<html lang="{_e(lang)}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
        f'script-src \'unsafe-inline\'; img-src data:">'
        f'<title>{_e(t["title"])} — Pertinence</title><style>{_CSS}</style></head><body>'
        f'<header><h1>{_e(t["title"])}</h1><div class="meta">{_e(t["subtitle"])} · {_e(t["as_of"])} : {_e(as_of)} · '
        f'{_e(t["jurisdiction"])} : {_e(checker.get("jurisdiction", ""))} · {_e(checker.get("name", "pertinence"))} '
        f'{_e(checker.get("version", ""))}</div></header>'
        f'<section class="cards" id="headline">{card_html}</section>'
        f'{_errors_html(errors, len(errors) if errors_total is None else errors_total, errors_file, lang)}'
        f'<h2>{_e(t["by_category"])}</h2><div class="charts"><div class="chart">{chart_findings(fnd.get("by_category", {}), lang)}</div></div>'
        f'<h2>{_e(t["by_substance"])}</h2><div class="charts"><div class="chart">{chart_savings(savings.get("by_substance", {}), lang)}</div></div>'
        f'<h2>{_e(t["indicators"])}</h2><div class="charts"><div class="chart">{chart_indicators(indicator_rows, lang)}</div></div>'
        f'{_indicator_table(indicator_rows, lang)}'
        f'<h2>{_e(t["patient_details"])}</h2><div class="filters">{_e(t["filter"])} : {filters}</div>{more}{body_patients}'
        f'<footer class="small"><p>{_e(t["print_note"])}</p></footer>'
        f'<script>{_JS}</script></body></html>\n'
    )


def summary_of(report: Report) -> dict[str, Any]:
    """The summary fields the HTML needs, from a single-run report."""
    by_category: dict[str, dict[str, int]] = {}
    by_sev = {s.value: 0 for s in Severity}
    for f in report.findings:
        by_category.setdefault(f.category, {}).setdefault(f.severity.value, 0)
        by_category[f.category][f.severity.value] += 1
        by_sev[f.severity.value] += 1
    return {
        "checker": {"name": report.checker_name, "version": report.checker_version, "jurisdiction": report.jurisdiction},
        "as_of": report.as_of, "inputs": report.inputs.to_dict(),
        "patients": len({f.patient for f in report.findings}), "medication_requests": 0,
        "findings": {"total": len(report.findings), "by_severity": by_sev, "by_category": by_category},
        "savings": report.savings(),
    }


def render_records(report: Report, records: Sequence[PatientRecord],
                   indicator_rows: Sequence[dict[str, Any]] = ()) -> str:
    """The report with each patient's prescriptions (records as checked) beside the findings, and
    every input error of the report."""
    summary = summary_of(report)
    summary["patients"] = sum(1 for r in records if r.patient is not None)
    summary["medication_requests"] = sum(len(r.medication_orders) for r in records)
    by_patient: dict[str | None, list[Finding]] = {}
    for f in report.findings:
        by_patient.setdefault(f.patient, []).append(f)
    known = {r.ref: r for r in records}
    patients = [patient_digest(known.get(p), fs, report.lang) for p, fs in by_patient.items()]
    patients.sort(key=lambda d: (-sum(f["severity"] == "critical" for f in d["findings"]),
                                 -sum(f["severity"] == "warning" for f in d["findings"]), d["patient"] or "~"))
    return render_audit(summary, indicator_rows, patients, lang=report.lang, patients_total=len(patients),
                        errors=[e.to_dict() for e in report.errors])


def render(report: Report) -> str:
    """The HTML report of ``report`` (findings grouped by patient; prescriptions named by reference)."""
    return render_records(report, [])
