"""Lines that name no patient are one record per input file, never pooled across files.

A folder of prescriptions written without a ``subject`` (one file per prescription, as a doctor's
export or a set of examples may be) holds lines of people the input does not tell apart: pairing a
line of one file with a line of another would judge two people as one. Inside one file (a
prescription Bundle, an NDJSON file) the lines are kept together, as before. The sharded path
groups such lines per file too, so both paths give the same report.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from checker import check
from checker.audit.sharded import check_sharded
from checker.formats import render
from tests.conftest import SAMPLES

AS_OF = "2026-01-15"
PAIR_SAMPLES = sorted((SAMPLES / "rules" / "IX001").glob("fail-*.json")) + \
    sorted((SAMPLES / "rules" / "DU001").glob("fail-*.json"))


def _orders_without_patient(sample: Path) -> list[dict]:
    bundle = json.loads(sample.read_text(encoding="utf-8"))
    orders = [e["resource"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == "MedicationRequest"]
    for o in orders:
        o.pop("subject", None)
    return orders


def _write(folder: Path, name: str, orders: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": o} for o in orders]}
    (folder / name).write_text(json.dumps(bundle), encoding="utf-8")


def _pair_findings(report: object, files: int) -> list[object]:
    return [f for f in report.findings if f.rule in ("IX001", "DU001") and len(f.implicated) > 1]  # type: ignore[attr-defined]


def test_lines_without_a_patient_in_different_files_are_never_paired(tmp_path: Path) -> None:
    """Every pair sample (IX001 and DU001), its lines stripped of their patient: one file each gives
    no pair finding; the same lines in one file give the pair findings they gave with a patient
    for at least most samples (a control that the lines still pair within a file)."""
    together = apart = 0
    for k, sample in enumerate(PAIR_SAMPLES):
        orders = _orders_without_patient(sample)
        if len(orders) < 2:
            continue
        one = tmp_path / f"one-{k}"
        _write(one, "prescription.json", orders)
        split = tmp_path / f"split-{k}"
        for i, o in enumerate(orders):
            _write(split, f"prescription-{i}.json", [o])
        together += bool(_pair_findings(check([str(one)], as_of=AS_OF), 1))
        found = _pair_findings(check([str(split)], as_of=AS_OF), len(orders))
        assert not found, (sample.name, [f.implicated for f in found])  # type: ignore[attr-defined]
        apart += 1
    assert apart >= 20
    assert together >= apart * 0.8, (together, apart)


def test_patientless_files_give_the_same_report_in_memory_and_sharded(tmp_path: Path) -> None:
    """Seeded folders of patient-less prescriptions: the sharded path (any number of shards) writes
    the in-memory report byte for byte."""
    rng = random.Random(20261205)
    for trial in range(4):
        folder = tmp_path / f"t{trial}"
        samples = rng.sample(PAIR_SAMPLES, 6)
        for i, sample in enumerate(samples):
            orders = _orders_without_patient(sample)
            for o in orders:
                o["id"] = f"{o['id']}-{trial}-{i}"
            _write(folder, f"p{i}.json", orders)
        whole = render(check([str(folder)], as_of=AS_OF), "json")
        for shards in (1, 2, 5):
            assert render(check_sharded([str(folder)], as_of=AS_OF, shards=shards), "json") == whole, (trial, shards)
        assert json.loads(whole)["findings"]


def test_the_digest_of_lines_without_a_patient_lists_every_file_s_lines(tmp_path: Path) -> None:
    """The HTML report shows the findings without a patient under one heading: its list of lines
    holds the lines of every file that names no patient, not those of the last file read."""
    from checker.fhir_input import read
    from checker.formats.html import patient_digest, records_by_patient

    folder = tmp_path / "split"
    refs = []
    for i, sample in enumerate(PAIR_SAMPLES[:3]):
        orders = _orders_without_patient(sample)
        refs += [f"MedicationRequest/{o['id']}" for o in orders]
        _write(folder, f"p{i}.json", orders)
    records = read(str(folder)).records
    assert len([r for r in records if r.patient is None]) == 3
    digest = patient_digest(records_by_patient(records).get(None), [])
    assert sorted(o["ref"] for o in digest["orders"]) == sorted(refs)
