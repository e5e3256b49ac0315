"""Start-up cost of a single-file check: cold (drug index compiled) and warm (index cached).

Prints the median wall time of ``pertinence check`` on one small sample, cold and warm, as a ratio
to ``python -c "import checker"``. Run: ``python benchmarks/startup.py [--runs N] [FILE]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SAMPLE = REPO / "fhir_samples" / "rules" / "ID001" / "pass-identified.json"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("file", nargs="?", default=str(DEFAULT_SAMPLE))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    check = [sys.executable, str(REPO / "cli.py"), "check", args.file, "--as-of", "2026-01-15"]
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PERTINENCE_CACHE=tmp, PYTHONPATH=str(REPO))
        base = statistics.median(timed([sys.executable, "-c", "import checker"], env) for _ in range(args.runs))
        colds = []
        for i in range(args.runs):
            cold_env = dict(env, PERTINENCE_CACHE=str(Path(tmp) / f"cold{i}"))
            colds.append(timed(check, cold_env))
        cold = statistics.median(colds)
        timed(check, env)  # fill the cache
        warm = statistics.median(timed(check, env) for _ in range(args.runs))
    print(f"python -c 'import checker': {base * 1000:7.0f} ms (1.0x)")
    print(f"pertinence check, cold:     {cold * 1000:7.0f} ms ({cold / base:.1f}x)  drug index compiled")
    print(f"pertinence check, warm:     {warm * 1000:7.0f} ms ({warm / base:.1f}x)  drug index from cache")
    print(f"sample: {args.file}; median of {args.runs} runs")


if __name__ == "__main__":
    main()
