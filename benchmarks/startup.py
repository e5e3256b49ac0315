"""Start-up cost of a single-file check: cold (drug index compiled) and warm (index cached).

Prints the median wall time of ``pertinence check`` on one small sample, cold and warm, as a ratio
to ``python -c "import checker"``. Run: ``python benchmarks/startup.py [--runs N] [FILE]``.
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

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SAMPLE = REPO / "fhir_samples" / "rules" / "ID001" / "pass-identified.json"


CPU: list[float] = []  # CPU seconds (user + system) of each timed command, in order


def timed(cmd: list[str], env: dict[str, str]) -> float:
    """Wall seconds of ``cmd``; its CPU seconds are appended to ``CPU`` (steadier on a shared machine)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return wall


def median_of(cmd: list[str], env: dict[str, str], runs: int) -> tuple[float, float]:
    """Median wall and median CPU seconds of ``runs`` runs of ``cmd``."""
    walls = [timed(cmd, env) for _ in range(runs)]
    return statistics.median(walls), statistics.median(CPU[-runs:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", nargs="?", default=str(DEFAULT_SAMPLE))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-cold", action="store_true", help="skip the cold runs (the drug index compiled each time)")
    args = parser.parse_args()
    check = [sys.executable, str(REPO / "cli.py"), "check", args.file, "--as-of", "2026-01-15"]
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PERTINENCE_CACHE=tmp, PYTHONPATH=str(REPO))
        base, base_cpu = median_of([sys.executable, "-c", "import checker"], env, args.runs)
        colds = []
        for i in range(0 if args.no_cold else args.runs):
            cold_env = dict(env, PERTINENCE_CACHE=str(Path(tmp) / f"cold{i}"))
            colds.append(timed(check, cold_env))
        cold = statistics.median(colds) if colds else float("nan")
        timed(check, env)  # fill the cache
        warm, warm_cpu = median_of(check, env, args.runs)
    print(f"python -c 'import checker': {base * 1000:7.0f} ms (1.0x)")
    print(f"pertinence check, cold:     {cold * 1000:7.0f} ms ({cold / base:.1f}x)  drug index compiled")
    print(f"pertinence check, warm:     {warm * 1000:7.0f} ms ({warm / base:.1f}x)  drug index from cache")
    print(f"CPU (user + system), median: import checker {base_cpu * 1000:.0f} ms, warm check {warm_cpu * 1000:.0f} ms "
          f"({warm_cpu / base_cpu:.1f}x)")
    print(f"warm start-up target (issue 17): <= 5x import checker: x{warm / base:.1f}, "
          f"{'OK' if warm <= 5 * base else 'OVER TARGET'}")
    print(f"sample: {args.file}; median of {args.runs} runs")


if __name__ == "__main__":
    main()
