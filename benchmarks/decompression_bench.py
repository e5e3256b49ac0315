"""Decompression bombs: time and peak memory of reading compressed newlines and zeros (goal: 10 MB
of compressed newlines in under 5 s, memory bounded; issue 16).

    python benchmarks/decompression_bench.py [--mb 10]

Writes ``--mb`` MB of gzip-compressed newlines (``.ndjson.gz``, about 10 GB once decompressed) and
of compressed zeros (``.json.gz``), then reads each with ``fhir_input.read`` at the default
decompressed-size limit, in a child process so that its peak memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import gzip
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 5.0


def write_bomb(path: Path, byte: bytes, compressed_mb: float) -> None:
    """Compressed ``byte`` repeated until the gzip file reaches ``compressed_mb`` MB."""
    block = byte * (1 << 24)
    target = int(compressed_mb * 1_000_000)
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9) as f:
        while raw.tell() < target:
            f.write(block)


def read_in_child(path: Path) -> tuple[float, int, str]:
    code = ("import sys; from checker.fhir_input import read; ing = read(sys.argv[1]); "
            "print(ing.counts.resources, ing.errors[0].message if ing.errors else '')")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if done.returncode:
        sys.exit(done.stderr[-2000:])
    return seconds, max(peak, before) * 1024, done.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=10.0, help="compressed size of each file (MB)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, byte in (("newlines.ndjson.gz", b"\n"), ("zeros.json.gz", b"\0"), ("zeros.ndjson.gz", b"\0")):
            path = Path(tmp) / name
            write_bomb(path, byte, args.mb)
            seconds, peak, said = read_in_child(path)
            print(f"{name:<20} {path.stat().st_size / 1e6:5.1f} MB compressed: {seconds:5.2f} s "
                  f"(goal {GOAL_SECONDS:.0f} s, ratio {seconds / GOAL_SECONDS:.2f}), peak of the readers so far "
                  f"{peak / 2**20:.0f} MB; {said[:150]}")


if __name__ == "__main__":
    main()
