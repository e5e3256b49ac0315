"""Benchmark of ``pertinence audit``: throughput relative to plain orjson parsing, and peak memory.

    python benchmarks/audit_bench.py EXPORT_DIR [--jobs 2] [--memory 1G] [--out DIR] [other pertinence audit options]

Prints one JSON object: resources, seconds for plain ``orjson.loads`` of every line (one core),
seconds for the audit, the ratio audit/parse, resources per second (and per core), and the peak
resident memory of the whole audit (main process + workers, sampled every 0.2 s with psutil).
Generate an export first with ``benchmarks/generate_export.py``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import psutil

ROOT = Path(__file__).resolve().parents[1]


def parse_baseline(export: Path) -> tuple[int, float]:
    """Lines parsed and seconds taken by plain orjson over every NDJSON file (single core)."""
    start = time.perf_counter()
    n = 0
    for path in sorted(export.rglob("*.ndjson*")):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as f:
            for line in f:
                if line.strip():
                    orjson.loads(line)
                    n += 1
    return n, time.perf_counter() - start


def tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_audit(export: Path, out: Path, jobs: int, memory: str, extra: list[str]) -> dict[str, float]:
    cmd = [sys.executable, str(ROOT / "cli.py"), "audit", str(export), "--out", str(out), "--jobs", str(jobs),
           "--memory", memory, "--no-progress", *extra]
    start = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = peak_single = 0
    while proc.poll() is None:
        peak = max(peak, tree_rss(proc))
        try:
            peak_single = max([peak_single] + [p.memory_info().rss for p in [proc, *proc.children(recursive=True)]])
        except psutil.Error:
            pass
        time.sleep(0.2)
    elapsed = time.perf_counter() - start
    _, err = proc.communicate()
    if proc.returncode not in (0, 1):  # 1: findings at or above --fail-on (critical), a finished audit
        raise SystemExit(f"audit failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    return {"seconds": elapsed, "peak_rss_total_mb": peak / 2**20, "peak_rss_process_mb": peak_single / 2**20,
            "stderr": err.decode(errors="replace").strip()[-300:]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export", type=Path)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--memory", default="1G")
    ap.add_argument("--out", type=Path)
    args, extra = ap.parse_known_args()  # anything else goes to pertinence audit (e.g. --as-of)
    args.extra = [e for e in extra if e != "--"]
    n, parse_s = parse_baseline(args.export)
    out = args.out or Path(tempfile.mkdtemp(prefix="audit-bench-"))
    audit = run_audit(args.export, out, args.jobs, args.memory, args.extra)
    summary = json.loads((out / "summary.json").read_text())
    result = {
        "resources": summary["inputs"]["resources"],
        "lines_parsed": n,
        "orjson_parse_seconds": round(parse_s, 2),
        "audit_seconds": round(audit["seconds"], 2),
        "ratio_audit_to_parse": round(audit["seconds"] / parse_s, 1),
        "resources_per_second": round(summary["inputs"]["resources"] / audit["seconds"]),
        "resources_per_second_per_core": round(summary["inputs"]["resources"] / audit["seconds"] / args.jobs),
        "orjson_lines_per_second": round(n / parse_s),
        "peak_rss_total_mb": round(audit["peak_rss_total_mb"]),
        "peak_rss_largest_process_mb": round(audit["peak_rss_process_mb"]),
        "jobs": args.jobs,
        "memory_budget": args.memory,
        "patients": summary["patients"],
        "findings": summary["findings"]["total"],
        "balanced": summary["inputs"]["balanced"],
        "out": str(out),
        "audit_stderr_tail": audit["stderr"],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
