"""The doctor's HTML report on a large export: page size and headless Chromium render time.

    python benchmarks/report_bench.py [--patients 10000] [--per-patient 10]

Generates an export (benchmarks/generate_export.py), writes the report with `pertinence report`'s
code, prints the page size, how long it took to build and how long headless Chromium took to load
and screenshot it (goal: a 100,000-line export gives a page under 10 MB rendered in under 5 s).
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--per-patient", type=int, default=10)
    args = ap.parse_args()
    from checker.audit.report import build_report

    spec = importlib.util.spec_from_file_location("generate_export", ROOT / "benchmarks" / "generate_export.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        gen.generate(folder / "in", patients=args.patients, per_patient=args.per_patient, seed=7)
        out = folder / "report.html"
        t0 = time.perf_counter()
        html, report = build_report([str(folder / "in")], as_of="2026-01-15", output=out)
        out.write_text(html, encoding="utf-8")
        built = time.perf_counter() - t0
        lines = sum(len(r.medication_orders) for r in report.records)  # type: ignore[attr-defined]
        print(f"{lines:,} prescription lines, {len(report.findings):,} findings")
        print(f"report.html: {out.stat().st_size / 1e6:.2f} MB, built in {built:.1f} s "
              f"(full findings beside it: {', '.join(p.name for p in folder.glob('report.findings.*'))})")
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if not chromium:
            print("chromium not found: render time not measured")
            return
        t0 = time.perf_counter()
        subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={folder / 'profile'}", "--window-size=1200,1600",
                        f"--screenshot={folder / 'shot.png'}", out.as_uri()], capture_output=True, timeout=300)
        print(f"headless Chromium load + screenshot: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
