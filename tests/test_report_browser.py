"""The doctor's report in real headless Chromium: the demo and a 100,000-line export render, the
headline counts are visible, the summary does not overflow (wide and phone-sized windows), and the
big report stays bounded (under 10 MB, says what it left out and where the full findings are).

Screenshots are written to ``$PERTINENCE_SCREENSHOTS`` when set (to look at them), else to a
temporary folder."""

from __future__ import annotations

import html as html_module
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import SAMPLES, export_generator
from tests.test_audit_browser import _run

ROOT = Path(__file__).resolve().parents[1]
AS_OF = "2026-01-15"

PROBE = """<script>(function(){var bad=[];
function over(el,name){if(el&&el.scrollWidth>el.clientWidth+1)bad.push(name)}
over(document.getElementById('headline'),'headline');over(document.getElementById('subline'),'subline');
document.querySelectorAll('#headline .card').forEach(function(c,i){over(c,'card'+i)});
if(document.documentElement.scrollWidth>window.innerWidth+1)bad.push('page');
var cards=[].map.call(document.querySelectorAll('#headline .card'),function(c){var r=c.getBoundingClientRect();
return r.width>0&&r.height>0&&r.bottom<=window.innerHeight?1:0}).reduce(function(a,b){return a+b},0);
document.documentElement.setAttribute('data-overflow',bad.length?bad.join(' '):'none');
document.documentElement.setAttribute('data-cards-visible',String(cards));})();</script>"""


def _shots(tmp_path: Path) -> Path:
    where = os.environ.get("PERTINENCE_SCREENSHOTS")
    folder = Path(where) if where else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _probe(chromium: str, html: Path, tmp_path: Path, width: int, height: int) -> str:
    probed = html.with_name(html.stem + f".probe{width}.html")
    text = html.read_text(encoding="utf-8")
    probed.write_text(text.replace("</body>", PROBE + "</body>", 1), encoding="utf-8")
    done = _run(chromium, tmp_path / f"profile{width}", f"--window-size={width},{height}", "--dump-dom",
                probed.as_uri())
    return done.stdout.decode("utf-8", errors="replace")


def _screenshot(chromium: str, html: Path, shot: Path, tmp_path: Path, width: int = 1200, height: int = 1600) -> None:
    _run(chromium, tmp_path / "profile-shot", "--hide-scrollbars", f"--window-size={width},{height}",
         f"--screenshot={shot}", html.as_uri())
    assert shot.is_file() and shot.stat().st_size > 10_000


def _visible_text(dom: str) -> str:
    dom = re.sub(r"(?s)<style>.*?</style>|<script>.*?</script>", " ", dom)
    return html_module.unescape(re.sub(r"[ \t\r\n]+", " ", re.sub(r"<[^>]+>", " ", dom)))


def _headline(dom: str) -> str:
    start = dom.index('id="headline"')
    return _visible_text(dom[start: dom.index("</section>", start)])


def test_demo_report_in_chromium(chromium: str, tmp_path: Path) -> None:
    from checker.audit.report import build_report
    from checker.formats.catalogue import money, number

    out = tmp_path / "demo.html"
    html, report = build_report([str(SAMPLES / "demo")], as_of=AS_OF, output=out)
    out.write_text(html, encoding="utf-8")
    records = report.records  # type: ignore[attr-defined]
    patients = sum(1 for r in records if r.patient is not None)
    lines = sum(len(r.medication_orders) + len(r.service_orders) for r in records)
    critical = sum(f.severity.value == "critical" for f in report.findings)
    for width, height in ((1200, 900), (420, 2400)):
        dom = _probe(chromium, out, tmp_path, width, height)
        assert 'data-overflow="none"' in dom, re.findall(r'data-overflow="[^"]*"', dom)
        assert 'data-cards-visible="4"' in dom  # the four headline figures fit in the first screen
        head = _headline(dom)
        assert f"{patients} patients vérifiés" in head and f"{lines} lignes de prescription vérifiées" in head
        assert f"{critical} alertes critiques" in head
        assert money(report.savings()["total"]["EUR"], "EUR", "fr") in head
    assert patients == 4 and lines > patients
    _screenshot(chromium, out, _shots(tmp_path) / "report-demo.png", tmp_path, 1200, 1800)
    _screenshot(chromium, out, _shots(tmp_path) / "report-demo-phone.png", tmp_path, 420, 1400)
    assert number(patients, "fr") in _headline(dom)


def test_check_format_html_counts_every_patient(tmp_path: Path) -> None:
    from click.testing import CliRunner

    import cli

    out = tmp_path / "check.html"
    res = CliRunner().invoke(cli.main, ["check", str(SAMPLES / "demo"), "--as-of", AS_OF, "--format", "html",
                                        "-o", str(out)])
    assert res.exit_code == 1  # the demo has a critical finding: exit 1 by design
    head = _headline(out.read_text(encoding="utf-8"))
    assert "4 patients vérifiés" in head and "0 patients" not in head
    assert "Patient/benali-fatima" in out.read_text(encoding="utf-8")  # nothing to report, still listed


def _generate(folder: Path, patients: int, per_patient: int) -> None:
    export_generator().generate(folder, patients=patients, per_patient=per_patient, seed=7)


@pytest.mark.slow
def test_100k_line_report_is_bounded_and_renders(chromium: str, tmp_path: Path) -> None:
    from checker.audit.report import build_report
    from checker.formats.catalogue import number
    from checker.formats.html import MAX_PATIENTS

    _generate(tmp_path / "in", patients=10_000, per_patient=10)
    out = tmp_path / "big.html"
    html, report = build_report([str(tmp_path / "in")], as_of=AS_OF, output=out)
    out.write_text(html, encoding="utf-8")
    lines = sum(len(r.medication_orders) for r in report.records)  # type: ignore[attr-defined]
    assert lines >= 99_000
    assert out.stat().st_size < 10 * 1024 * 1024
    with_findings = len({f.patient for f in report.findings})
    assert with_findings > MAX_PATIENTS
    # what was left out, and where everything is
    assert 'id="patients-capped"' in html and "big.findings.csv" in html and "big.findings.ndjson" in html
    assert (tmp_path / "big.findings.csv").stat().st_size > 0
    n_csv = sum(1 for _ in (tmp_path / "big.findings.csv").open(encoding="utf-8"))
    assert n_csv - 1 >= len(report.findings)  # quoted multi-line cells can only add lines
    dom = _probe(chromium, out, tmp_path, 1200, 900)
    assert 'data-overflow="none"' in dom and 'data-cards-visible="4"' in dom
    head = _headline(dom)
    assert f"{number(10_000, 'fr')} patients vérifiés" in head and number(lines, "fr") in head
    _screenshot(chromium, out, _shots(tmp_path) / "report-100k.png", tmp_path)
    shutil.rmtree(tmp_path / "in")


def _md(text: str) -> str:
    """The little Markdown a CDS card detail uses, as an EHR would display it."""
    out = html_module.escape(text)
    out = re.sub(r"\[([^\]]+)\]\((https?://[^)]+)\)", r'<a href="\2">\1</a>', out)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return "".join(f"<p>{p}</p>" for p in out.split("\n\n"))


def test_cds_card_as_an_ehr_shows_it(chromium: str, tmp_path: Path) -> None:
    from checker import check
    from checker.formats.cds_hooks import cards

    from checker.fhir_input import read

    report = check(str(SAMPLES / "demo"), as_of=AS_OF)
    labels = {o.ref: o.label for r in read(str(SAMPLES / "demo")).records for o in r.medication_orders}
    card = next(c for c in cards(report, order_labels=labels) if c["indicator"] == "critical")  # as the service sends it
    colour = {"critical": "#c0392b", "warning": "#e67e22", "info": "#2e86c1"}[card["indicator"]]
    page = (f'<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><style>body{{font-family:sans-serif;'
            f'margin:0;padding:12px;width:560px}}.card{{border-left:6px solid {colour};padding:8px 12px;'
            f'box-shadow:0 1px 3px #999}}h4{{margin:0 0 6px}}.src{{color:#555;font-size:.85rem;white-space:nowrap;'
            f'overflow:hidden;text-overflow:ellipsis}}</style></head><body><div class="card" id="card">'
            f'<h4 id="summary">{html_module.escape(card["summary"])}</h4><div>{_md(card["detail"])}</div>'
            f'<div class="src" id="source"><a href="{html_module.escape(card["source"].get("url", ""))}">'
            f'{html_module.escape(card["source"]["label"])}</a></div></div>'
            "<script>var s=document.getElementById('source');document.documentElement.setAttribute("
            "'data-source-fits',String(s.scrollWidth<=s.clientWidth+1));</script></body></html>")
    out = tmp_path / "card.html"
    out.write_text(page, encoding="utf-8")
    dom = _run(chromium, tmp_path / "profile-card", "--window-size=600,900", "--dump-dom",
               out.as_uri()).stdout.decode("utf-8", errors="replace")
    assert 'data-source-fits="true"' in dom  # the source label is short enough for a card's footer
    assert "MedicationRequest/" not in _visible_text(dom).split("Lignes concernées")[0]
    concerned = _visible_text(dom).split("Lignes concernées")[1].split("Source")[0]
    assert "CLARITHROMYCINE" in concerned and "imvastatine" in concerned  # the lines named by their labels
    _screenshot(chromium, out, _shots(tmp_path) / "cds-card.png", tmp_path, 600, 700)
