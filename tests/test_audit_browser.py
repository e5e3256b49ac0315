"""The HTML report in a real browser: headless Chromium renders it without console errors, and the
charts are drawn (pixels of the chart colours in a screenshot)."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from checker.formats.html import INDICATOR_COLOR, SAVINGS_COLOR, SEVERITY_COLORS
from tests.conftest import export_generator

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An audit report of a small generated export (with findings, savings and indicators)."""
    from checker.audit import AuditOptions, run_audit

    root = tmp_path_factory.mktemp("browser")
    export_generator().generate(root / "in", patients=40, per_patient=8, seed=3, practitioners=5)
    run_audit([str(root / "in")], AuditOptions(out=root / "out", as_of="2026-01-15", jobs=1, progress=False))
    return root / "out" / "report.html"


def _run(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args],
                          capture_output=True, timeout=180)


def test_report_renders_without_console_errors(chromium: str, report_html: Path, tmp_path: Path) -> None:
    done = _run(chromium, tmp_path / "profile", "--dump-dom", report_html.as_uri())
    dom = done.stdout.decode("utf-8", errors="replace")
    console = [line for line in done.stderr.decode(errors="replace").splitlines() if ":CONSOLE" in line]
    assert console == []  # the page logs nothing: any console message is an error or a blocked load
    assert 'data-js="ready"' in dom  # the inline script ran (not blocked by the page's CSP)
    assert 'id="chart-findings"' in dom and 'id="chart-indicators"' in dom


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def test_screenshot_shows_the_charts(chromium: str, report_html: Path, tmp_path: Path) -> None:
    image_mod = pytest.importorskip("PIL.Image")
    shot = tmp_path / "shot.png"
    # The charts come after the patients: screenshot a copy without the patients' sections.
    import re

    page = re.sub(r'(?s)<section id="(critical|patients|quiet)">.*?</section>(?=<section id=|<h2)', "",
                  report_html.read_text(encoding="utf-8"))
    charts = tmp_path / "charts.html"
    charts.write_text(page, encoding="utf-8")
    done = _run(chromium, tmp_path / "profile", "--hide-scrollbars", "--window-size=1200,2400",
                f"--screenshot={shot}", charts.as_uri())
    assert shot.is_file(), done.stderr.decode(errors="replace")[-2000:]
    img = image_mod.open(shot).convert("RGB")
    counts = {color: n for n, color in img.getcolors(maxcolors=1 << 24)}
    summary = json.loads((report_html.parent / "summary.json").read_text(encoding="utf-8"))
    expected = [(f"{sev} findings", SEVERITY_COLORS[sev]) for sev, n in summary["findings"]["by_severity"].items() if n]
    assert expected, "the test export should produce findings"
    if summary["savings"]["by_substance"]:
        expected.append(("savings", SAVINGS_COLOR))
    rows = list(csv.DictReader((report_html.parent / "indicators.csv").open(encoding="utf-8")))
    if any(r["scope"] == "overall" and r["value_percent"] and float(r["value_percent"]) >= 10 for r in rows):
        expected.append(("indicators", INDICATOR_COLOR))
    assert len(expected) >= 2
    for name, color in expected:
        # a bar of one finding among hundreds is narrow (about 200 pixels here): any drawn bar passes
        assert counts.get(_rgb(color), 0) > 100, f"no {name} bar drawn in the screenshot"


def test_report_prints_to_pdf(chromium: str, report_html: Path, tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    done = _run(chromium, tmp_path / "profile", "--no-pdf-header-footer", f"--print-to-pdf={pdf}",
                report_html.as_uri())
    assert pdf.is_file(), done.stderr.decode(errors="replace")[-2000:]
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and data.count(b"/Type /Page") + data.count(b"/Type/Page") >= 2
