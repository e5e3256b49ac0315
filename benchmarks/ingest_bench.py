"""Ingestion throughput: reading and checking an NDJSON of N MedicationRequests, as a ratio to
plain orjson parsing of the same file, measured in one run.

    python benchmarks/ingest_bench.py [--n 200000] [--keep]

Prints: orjson parse time, the repeated-key pre-check's time, ``fhir_input.read`` time, ``check`` with only the foundation's rule (ID001:
reading, identification, one rule), full ``check`` time (all rules), and the ratios.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# A realistic mix: French codes (CIS, CIP13), DCI text, English RxNorm-style text.
MEDICATIONS = [
    {"coding": [{"system": "http://data.esante.gouv.fr/ansm/medicament/codeCIS", "code": "69902323",
                 "display": "TAHOR 20 mg, comprimé pelliculé"}]},
    {"coding": [{"system": "http://data.esante.gouv.fr/ansm/medicament/codeCIS", "code": "60234100",
                 "display": "DOLIPRANE 1000 mg, comprimé"}]},
    {"coding": [{"system": "http://data.esante.gouv.fr/ansm/medicament/codeCIS", "code": "63245753",
                 "display": "COUMADINE 5 mg, comprimé sécable"}]},
    {"text": "Simvastatine 20 mg comprimé"},
    {"text": "Clarithromycine 500 mg comprimé pelliculé"},
    {"text": "ADVIL 400 mg, comprimé enrobé"},
    {"text": "Amoxicilline 1 g comprimé dispersible"},
    {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "314076",
                 "display": "lisinopril 10 MG Oral Tablet"}]},
    {"text": "Metformine 850 mg comprimé"},
    {"text": "Oméprazole 20 mg gélule gastro-résistante"},
]


def generate(path: Path, n: int, seed: int = 20260115) -> None:
    rng = random.Random(seed)
    with path.open("wb") as f:
        for i in range(n):
            patient = f"p{i // 10}"
            res = {
                "resourceType": "MedicationRequest", "id": f"mr{i}", "status": rng.choice(["active"] * 9 + ["stopped"]),
                "intent": "order", "medicationCodeableConcept": rng.choice(MEDICATIONS),
                "subject": {"reference": f"Patient/{patient}"},
                "authoredOn": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                "requester": {"reference": f"Practitioner/d{rng.randint(1, 300)}"},
                "dosageInstruction": [{"text": "1 comprimé par jour",
                                       "timing": {"repeat": {"frequency": rng.randint(1, 3), "period": 1,
                                                             "periodUnit": "d"}},
                                       "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "comprimé"}}]}],
                "dispenseRequest": {"expectedSupplyDuration": {"value": rng.choice([7, 30, 90]), "unit": "d"}},
            }
            f.write(orjson.dumps(res) + b"\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--keep", action="store_true", help="keep the generated file")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pertinence-bench-"))
    data = tmp / "MedicationRequest.000.ndjson"
    generate(data, args.n)
    size = data.stat().st_size

    t0 = time.perf_counter()
    with data.open("rb") as f:
        parsed = sum(1 for line in f if orjson.loads(line))
    t_orjson = time.perf_counter() - t0

    from checker import check
    from checker.fhir_input import may_have_duplicate_keys, read
    from checker.referentials import default_referentials

    with data.open("rb") as f:  # the repeated-key pre-check alone, on lines already parsed
        lines = [(line, orjson.loads(line)) for line in f]
    t0 = time.perf_counter()
    alarms = sum(may_have_duplicate_keys(line, value) for line, value in lines)
    t_dups = time.perf_counter() - t0
    del lines

    t0 = time.perf_counter()
    ing = read(str(data))
    t_read = time.perf_counter() - t0

    default_referentials()  # referential loading is a one-off start-up cost, measured separately
    t0 = time.perf_counter()
    from checker.api import identify_records

    identify_records(ing.records[:1], default_referentials())
    t_refs = time.perf_counter() - t0

    t0 = time.perf_counter()
    base = check(str(data), as_of="2026-01-15", select=["ID001"])
    t_base = time.perf_counter() - t0

    t0 = time.perf_counter()
    report = check(str(data), as_of="2026-01-15")
    t_check = time.perf_counter() - t0

    print(f"input: {args.n:,} MedicationRequests, {size / 1e6:.1f} MB, {parsed:,} lines parsed")
    print(f"orjson parse only        {t_orjson:7.2f} s  ({args.n / t_orjson:,.0f} resources/s)")
    print(f"repeated-key pre-check   {t_dups:7.2f} s  ratio {t_dups / t_orjson:5.2f}x of the parse, "
          f"{t_dups / t_read:5.1%} of fhir_input.read ({alarms} lines sent to the exact check)")
    print(f"fhir_input.read          {t_read:7.2f} s  ratio {t_read / t_orjson:5.1f}x")
    print(f"referential warm-up      {t_refs:7.2f} s  (once per process)")
    print(f"check(), ID001 only      {t_base:7.2f} s  ratio {t_base / t_orjson:5.1f}x  "
          f"(reading, identification and the foundation's rule; {len(base.findings):,} findings)")
    print(f"check() full path        {t_check:7.2f} s  ratio {t_check / t_orjson:5.1f}x  "
          f"({len(report.findings):,} findings, counts balanced: {report.inputs.balanced()})")
    if args.keep:
        print(f"kept {data}")
    else:
        data.unlink()
        tmp.rmdir()


if __name__ == "__main__":
    main()
