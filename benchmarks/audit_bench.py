"""Benchmark of ``pertinence audit``: throughput relative to plain orjson parsing, and peak memory.

    python benchmarks/audit_bench.py EXPORT_DIR [--jobs 2] [--memory 1G] [--out DIR] [other pertinence audit options]

Prints one JSON object: resources, seconds for plain ``orjson.loads`` of every line (one core),
seconds for the audit, the ratio audit/parse, resources per second (and per core), and the peak
resident memory of the whole audit (main process + workers, sampled every 0.2 s with psutil), and
where the audit's wall clock went ("timeline": start-up, each phase, the cores' busy and idle time
while the shards are checked, the last shards' tail, the merge's steps; from the spans the audit
records when ``PERTINENCE_AUDIT_TIMELINE`` names a file, see ``checker/audit/timeline.py``).
Generate an export first with ``benchmarks/generate_export.py``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def run_audit(export: Path, out: Path, jobs: int, memory: str, extra: list[str], timeline: Path | None = None
              ) -> dict[str, Any]:
    cmd = [sys.executable, str(ROOT / "cli.py"), "audit", str(export), "--out", str(out), "--jobs", str(jobs),
           "--memory", memory, "--no-progress", *extra]
    env = dict(os.environ)
    if timeline is not None:
        env["PERTINENCE_AUDIT_TIMELINE"] = str(timeline)
    started_at = time.time()
    start = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
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
            "stderr": err.decode(errors="replace").strip()[-300:], "started_at": started_at,
            "ended_at": started_at + elapsed}


def timeline_figures(path: Path, started_at: float, ended_at: float, jobs: int) -> dict[str, Any]:
    """Where the wall clock went, from the spans of the audit's timeline file (seconds)."""
    spans = [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    if not spans:
        return {}
    main = {s["what"]: s for s in spans if s["what"] in ("partition", "check", "merge")}
    out: dict[str, Any] = {"startup_s": round(min(s["start"] for s in spans) - started_at, 2)}
    for what in ("partition", "check", "merge"):
        if what in main:
            out[f"{what}_s"] = round(main[what]["end"] - main[what]["start"], 2)
    last = max(s["end"] for s in spans)
    out["after_merge_s"] = round(ended_at - last, 2)
    shards = [s for s in spans if s["what"] == "shard"]
    inits = [s for s in spans if s["what"] == "worker-init"]
    if shards:
        check = main.get("check", {"start": min(s["start"] for s in shards), "end": max(s["end"] for s in shards)})
        wall = check["end"] - check["start"]
        busy = sum(s["end"] - s["start"] for s in shards)
        per_pid: dict[int, list[dict[str, Any]]] = {}
        for s in shards:
            per_pid.setdefault(s["pid"], []).append(s)
        ends = sorted(max(s["end"] for s in ss) for ss in per_pid.values())
        out["check_detail"] = {
            "shards": len(shards),
            "shard_s_min_median_max": [round(x, 2) for x in _spread([s["end"] - s["start"] for s in shards])],
            "worker_init_s": [round(s["end"] - s["start"], 2) for s in inits],
            "first_shard_starts_after_s": round(min(s["start"] for s in shards) - check["start"], 2),
            "busy_core_s": round(busy, 1),
            "shards_cpu_s": round(sum(s.get("cpu", 0) for s in shards), 1),
            "idle_core_s": round(jobs * wall - busy, 1),
            "tail_s": round(ends[-1] - ends[0], 2),  # one worker still busy, the others done
            "per_worker_busy_s": sorted(round(sum(s["end"] - s["start"] for s in ss), 1) for ss in per_pid.values()),
        }
    steps = [s for s in spans if s["what"].startswith("merge-")]
    if steps:
        out["merge_detail_wall_cpu"] = {s["what"][len("merge-"):]: [round(s["end"] - s["start"], 2), round(s.get("cpu", 0), 2)]
                                        for s in steps}
    return out


def _spread(values: list[float]) -> tuple[float, float, float]:
    v = sorted(values)
    return v[0], v[len(v) // 2], v[-1]


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
    fd, name = tempfile.mkstemp(prefix="audit-timeline-", suffix=".ndjson")
    os.close(fd)
    timeline = Path(name)
    audit = run_audit(args.export, out, args.jobs, args.memory, args.extra, timeline)
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
        "timeline": timeline_figures(timeline, audit["started_at"], audit["ended_at"], args.jobs)
        if timeline.is_file() else {},
    }
    timeline.unlink(missing_ok=True)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
