"""Benchmark: iatrogenic rules (IX, DU, PR) on patients with many concurrent lines.

Prints lines/second and the per-patient time for 10, 30 and 60 identified lines (hand-built
identities, so the drug referential is not measured). Not a test: no timed assertion.

    python benchmarks/iatrogenic_rules.py
"""

from __future__ import annotations

import random
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checker.model import Concept, MedicationIdentity, MedicationOrder, Patient, PatientRecord, SubstanceMatch  # noqa: E402
from checker.referentials import default_referentials  # noqa: E402
from checker.registry import RunSettings, select_rules  # noqa: E402


def main() -> None:
    refs = default_referentials()
    th = refs.get("ansm-thesaurus")
    rules = select_rules(["IX", "DU", "PR"])
    pool = th.substance_nodes()
    rng = random.Random(1)
    settings = RunSettings(as_of=date(2026, 1, 15))
    for n in (10, 30, 60):
        records = []
        for p in range(20):
            orders = [MedicationOrder(ref=f"MedicationRequest/{p}-{i}", status="active", intent="order",
                                      medication=Concept(text=k), authored_on=date(2026, 1, 1),
                                      identity=MedicationIdentity((SubstanceMatch(k, k),), "bench", 1.0))
                      for i, k in enumerate(rng.sample(pool, n))]
            records.append(PatientRecord(Patient(f"Patient/{p}", date(1940, 1, 1)), orders))
        t0 = time.perf_counter()
        findings = sum(len(r.run(rec, settings, refs)) for rec in records for r in rules)
        dt = time.perf_counter() - t0
        print(f"{n:>3} lines/patient: {dt / len(records) * 1000:7.1f} ms/patient, "
              f"{n * len(records) / dt:8.0f} lines/s, {findings / len(records):.1f} findings/patient")


if __name__ == "__main__":
    main()
