"""The ``check`` targets of issue 17, as ratios to plain orjson parsing, from one run.

    python benchmarks/check_targets.py [INPUT ...] [--n 200000] [--repeat 1]

INPUT: NDJSON files or folders (default: the file of ``benchmarks/ingest_bench.py``, generated with
``--n`` lines in a temporary folder). For each input, prints the CPU seconds (user + system, so that
a shared machine's other load counts less than with wall time) of

- plain ``orjson.loads`` of every line (one core: the reference);
- reading alone (``fhir_input.read``), target ≤ 2.5× the parse;
- the full ``pertinence check --format json`` in a child process, target ≤ 15× the parse;
- the child's peak resident memory, target ≤ 600 MB;

with each ratio to its target (≤ 1.00 meets it). With ``--repeat N`` each figure is the median of N runs.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
READ_TARGET, CHECK_TARGET, RSS_TARGET = 2.5, 15.0, 600 << 20


def _files(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*.ndjson")) if path.is_dir() else [path]


def parse_cpu(path: Path) -> float:
    start = time.process_time()
    for f in _files(path):
        with f.open("rb") as fh:
            for line in fh:
                if line.strip():
                    orjson.loads(line)
    return time.process_time() - start


def read_cpu(path: Path) -> float:
    from checker.fhir_input import read

    start = time.process_time()
    read(str(path))
    return time.process_time() - start


def check_child(path: Path) -> tuple[float, int]:
    """CPU seconds and peak RSS (bytes) of ``cli.py check`` in a fresh child process."""
    code = ("import resource, subprocess, sys;"
            "subprocess.run([sys.executable, sys.argv[1], 'check', sys.argv[2], '--as-of', '2026-01-15',"
            " '--format', 'json', '-o', sys.argv[3]]);"
            "r = resource.getrusage(resource.RUSAGE_CHILDREN);"
            "print(r.ru_utime + r.ru_stime, r.ru_maxrss * 1024)")
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-c", code, str(ROOT / "cli.py"), str(path), os.path.join(tmp, "r.json")],
                              capture_output=True, text=True, check=True)
    cpu, rss = done.stdout.split()
    return float(cpu), int(rss)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="*", type=Path)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pertinence-targets-") as tmp:
        inputs = list(args.inputs)
        if not inputs:
            sys.path.insert(0, str(ROOT / "benchmarks"))
            from ingest_bench import generate

            inputs = [Path(tmp) / "MedicationRequest.000.ndjson"]
            generate(inputs[0], args.n)
        for path in inputs:
            parse = statistics.median(parse_cpu(path) for _ in range(args.repeat))
            read = statistics.median(read_cpu(path) for _ in range(args.repeat))
            runs = [check_child(path) for _ in range(args.repeat)]
            cpu = statistics.median(c for c, _ in runs)
            rss = statistics.median(r for _, r in runs)
            print(f"{path}: orjson parse {parse:.2f} s CPU")
            print(f"  reading alone   {read:7.2f} s  {read / parse:5.1f}x the parse (target {READ_TARGET}x: "
                  f"ratio to target {read / parse / READ_TARGET:.2f})")
            print(f"  full check      {cpu:7.2f} s  {cpu / parse:5.1f}x the parse (target {CHECK_TARGET:.0f}x: "
                  f"ratio to target {cpu / parse / CHECK_TARGET:.2f})")
            print(f"  check peak RSS  {rss / 2**20:7.0f} MB (target {RSS_TARGET >> 20} MB: ratio to target "
                  f"{rss / RSS_TARGET:.2f})", flush=True)


if __name__ == "__main__":
    main()
