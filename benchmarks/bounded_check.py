"""One patient with thousands of lines: `check` time and peak memory (goal: 3,000 lines in under
60 s and 1 GB; issue 16, bounded cost).

    python benchmarks/bounded_check.py [--lines 3000]

Writes a one-patient synthetic export (benchmarks/generate_export.py) into a temporary folder and
runs ``python cli.py check`` on it in a child process; prints wall time, peak resident memory of
the child (ru_maxrss), the number of findings and the ratios to the goals. The same can be
measured by hand with ``/usr/bin/time -v python cli.py check OUT --format json > /dev/null``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GOAL_SECONDS, GOAL_BYTES = 60.0, 1 << 30


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=3000)
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from generate_export import generate

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "export"
        generate(out, patients=1, per_patient=args.lines, seed=7)
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, str(HERE.parent / "cli.py"), "check", str(out), "--as-of",
                               "2026-01-15", "--format", "json"], capture_output=True)
        seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # kB on Linux
    if done.returncode not in (0, 1):
        sys.exit(f"check failed (exit {done.returncode}): {done.stderr.decode()[-2000:]}")
    findings = json.loads(done.stdout)["findings"]
    print(f"{args.lines} lines, one patient: {seconds:.1f} s (goal {GOAL_SECONDS:.0f} s, ratio "
          f"{seconds / GOAL_SECONDS:.2f}), peak {peak / 2**20:.0f} MB (goal 1024 MB, ratio {peak / GOAL_BYTES:.2f}), "
          f"{len(findings)} findings")


if __name__ == "__main__":
    main()
