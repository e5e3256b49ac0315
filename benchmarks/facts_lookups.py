"""One patient with many dated results: the facts layer's per-line look-ups (latest observation within
its window) must not rescan the record for every line.

    python benchmarks/facts_lookups.py [--observations 3000] [--lookups 3000]

Prints the time of ``lookups`` calls of :func:`checker.facts.record.latest_observation` on one
seeded synthetic record (the record's observations are indexed by day once, then bisected).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from checker.facts.record import LOINC, latest_observation
from checker.model import Coding, Concept, Observation, PatientRecord


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--observations", type=int, default=3000)
    ap.add_argument("--lookups", type=int, default=3000)
    args = ap.parse_args()
    rng = random.Random(20260115)
    start = date(2020, 1, 1)
    codes = ["2160-0", "29463-7", "33914-3", "8310-5"]
    obs = [Observation(f"Observation/{i}", Concept(codings=(Coding(LOINC, rng.choice(codes)),)), value=1.0,
                       effective=start + timedelta(days=rng.randint(0, 2000)), status="final")
           for i in range(args.observations)]
    record = PatientRecord(patient=None, observations=obs)
    wanted = frozenset({"2160-0", "33914-3"})
    t = time.perf_counter()
    for i in range(args.lookups):
        latest_observation(record, LOINC, wanted, start + timedelta(days=i % 2000), 365, with_value=True)
    took = time.perf_counter() - t
    print(f"{args.observations} observations, {args.lookups} look-ups: {took:.3f} s "
          f"({took / max(args.lookups, 1) * 1e6:.1f} µs per look-up)")


if __name__ == "__main__":
    main()
