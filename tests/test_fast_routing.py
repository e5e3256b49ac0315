"""The audit's partition copies most NDJSON lines to their patient's shard unparsed (the worker
parses them once): the items the worker reads and the shards they land in must be those of the
plain routing, which parses every line in the partition.

Seeded lines of every resource type the reader accepts, with odd patient references, Bundles and
lists on one line, contained resources, and malformed lines; then whole audits and sharded checks
compared byte for byte with the plain routing and with the in-memory check.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

import checker.audit.pipeline as pipeline
import checker.audit.sharded as sharded
from checker import check
from checker.audit import AuditOptions, codec, run_audit
from checker.audit.merge import OUTPUT_FILES
from checker.audit.pipeline import COMMON, route_file
from checker.fhir_input import RawResource, TypedResource
from checker.findings import InputError
from checker.formats import render
from tests.conftest import export_generator
from tests.test_ingest_typed import TRICKY

AS_OF = "2026-01-15"
TYPES = ["MedicationRequest", "ServiceRequest", "Medication", "Patient", "Condition", "AllergyIntolerance",
         "Observation", "MedicationDispense", "MedicationAdministration", "MedicationStatement", "Practitioner",
         "Encounter", "Prescripton"]


def _reference(rng: random.Random) -> Any:
    n = rng.randrange(40)
    return rng.choice([
        f"Patient/p{n}", f"Patient/p{n}", f"Patient/p{n}", f"https://ehr.example/fhir/Patient/p{n}/_history/3",
        f"urn:uuid:0000-{n}", f"#p{n}", f"Patient?identifier=urn%3Aoid%3A1%7C{n}", f"Patient?identifier=sys|{n}",
        f"p{n}", "", f"Patient/é{n}", f"Patient/{'x' * 70}", 42, None, [f"Patient/p{n}"],
    ])


def _resource(rng: random.Random) -> dict[str, Any]:
    rt = rng.choice(TYPES)
    res: dict[str, Any] = {"resourceType": rt}
    if rng.random() < 0.9:
        res["id"] = rng.choice([f"r{rng.randrange(10**6)}", f"p{rng.randrange(40)}", "", 7, None])
    if rt == "Patient":
        res["gender"] = rng.choice(["female", "male"])
        res["birthDate"] = rng.choice(["1950-03-02", "1990", "2020-01-01"])
    for element in ("subject", "patient"):
        shape = rng.random()
        if shape < 0.6:
            res[element] = {"reference": _reference(rng)}
        elif shape < 0.7:
            res[element] = {"display": "Jean Martin"}
        elif shape < 0.75:
            res[element] = f"Patient/p{rng.randrange(40)}"
    if rt.startswith("Medication") and rt != "Medication":
        res["status"] = rng.choice(["active", "completed", "stopped"])
        res["medicationCodeableConcept"] = {"coding": [{"system": "http://www.whocc.no/atc", "code": "B01AA03"}],
                                            "text": "Warfarine 5 mg"}
        res["authoredOn"] = "2025-11-02"
    if rng.random() < 0.1:
        res["contained"] = [{"resourceType": "Patient", "id": "pc", "subject": {"reference": "Patient/other"}}]
    if rng.random() < 0.1:
        res["note"] = [{"text": "à jeun: 1 cp"}]
    return res


def _text(res: Any, rng: random.Random) -> bytes:
    return json.dumps(res, ensure_ascii=False).encode() if rng.random() < 0.3 else orjson.dumps(res)


def _line(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.75:
        return _text(_resource(rng), rng)
    res = _resource(rng)
    text = orjson.dumps(res)
    odd = rng.choice([
        lambda: text[:-1] + b',"resourceType":"Bundle"}',  # a repeated key: the dict path refuses it
        lambda: text[:-1] + b',"subject":{"reference":"Patient/p99"}}',
        lambda: text.replace(b'"resourceType"', b'"contained":[{"resourceType":"Basic","id":"a","id":"b"}],'
                                                b'"resourceType"', 1),
        lambda: text[: len(text) // 2],  # cut
        lambda: text.replace(b'"Patient', b'"Pat\xffient', 1),  # invalid UTF-8
        lambda: text.replace(b'"Patient/', b'"Patient\\/', 1),  # an escape
        lambda: text.replace(b'"Patient/', b'"Patient\\u002f', 1),
        lambda: text[:-1] + b',"x":NaN}',
        lambda: text[:-1] + b',"x":123456789012345678901234567890}',
        lambda: text[:-1] + b',"x":"a\tb"}',  # a raw tab inside a string
        lambda: text + b" garbage",
        lambda: orjson.dumps([res, res]),
        lambda: orjson.dumps({"resourceType": "Bundle", "type": "collection",
                              "entry": [{"fullUrl": "urn:uuid:1", "resource": res}, {"resource": _resource(rng)}]}),
        lambda: orjson.dumps({"resource": res}),
        lambda: orjson.dumps({**res, "resourceType": ""}),
        lambda: orjson.dumps({**res, "resourceType": 5}),
        lambda: b"42",
        lambda: b"{}",
        lambda: b"   " + text + b"  \r",
        lambda: b"\xef\xbb\xbf" + text,
    ])
    return odd()


def _items_by_seq(routed: list[tuple[str, bytes, bool]]) -> dict[tuple[int, int], list[tuple[str, Any, bool]]]:
    out: dict[tuple[int, int], list[tuple[str, Any, bool]]] = {}
    for target, line, is_med in routed:
        _, seq, payload = codec.split(line)
        for item in codec.decode_items(payload):
            out.setdefault(seq, []).append((target, item, is_med))
    return out


def _assert_same_routing(path: Path, shards: int) -> tuple[int, int]:
    plain = list(route_file(3, str(path), shards, fast=False))
    fast = list(route_file(3, str(path), shards))
    a, b = _items_by_seq(plain), _items_by_seq(fast)
    assert list(a) == list(b)  # same positions, in the same order
    copied = sum(line.split(b"\t", 3)[2][:1] == b"n" for _, line, _ in fast)
    errors = 0
    for seq in a:
        assert [item for _, item, _ in a[seq]] == [item for _, item, _ in b[seq]], seq
        for (t1, item, med1), (t2, _, med2) in zip(a[seq], b[seq]):
            assert med1 == med2
            if isinstance(item, InputError):  # an error has no patient: read where it was routed
                errors += 1
                assert t1 == COMMON
            else:
                assert t1 == t2, (seq, item)
    return copied, errors


@pytest.mark.parametrize("seed", range(6))
def test_fast_routing_reads_every_line_as_the_plain_routing(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    lines = [_line(rng) for _ in range(400)]
    lines[1:1] = [b"", b"   "]  # blank lines are counted, not read
    path = tmp_path / "Mixed.ndjson"
    path.write_bytes(b"\n".join(lines) + rng.choice([b"\n", b""]))
    copied, errors = _assert_same_routing(path, rng.choice([1, 3, 7]))
    assert copied > 200 and errors > 5


def test_fast_routing_reads_the_tricky_lines_as_the_plain_routing(tmp_path: Path) -> None:
    path = tmp_path / "Tricky.ndjson"
    path.write_bytes(b"\n".join(TRICKY.values()) + b"\n")
    _assert_same_routing(path, 4)


def test_routing_key_is_the_resources_patient_key() -> None:
    """Every line the fast routing copies: its key is the one the dict path gives."""
    rng = random.Random(9)
    for _ in range(3000):
        line = _line(rng)
        key = codec.line_patient(line, "f.ndjson")
        if key is None:
            continue
        (item,) = list(codec.decode_items(codec.encode_line(1, b'"f.ndjson"', line)))
        if isinstance(item, RawResource):
            assert item.patient_key() == key, line
        else:
            assert isinstance(item, InputError), line


def test_shard_lines_copied_unparsed_are_decoded_typed(tmp_path: Path) -> None:
    export_generator().generate(tmp_path / "export", patients=20, per_patient=5, seed=2)
    (path,) = sorted((tmp_path / "export").glob("MedicationRequest*.ndjson"))
    typed = 0
    for _, line, _ in route_file(0, str(path), 2):
        _, _, payload = codec.split(line)
        (item,) = codec.decode_items(payload, typed=True)
        typed += isinstance(item, TypedResource)
    assert typed >= 90


def _files(root: Path) -> dict[str, bytes]:
    return {name: (root / name).read_bytes() for name in OUTPUT_FILES}


def test_audit_outputs_are_the_same_with_both_routings(tmp_path: Path, monkeypatch: Any) -> None:
    export = tmp_path / "export"
    export_generator().generate(export, patients=60, per_patient=8, seed=4)
    rng = random.Random(4)
    (export / "Mixed.ndjson").write_bytes(b"\n".join(_line(rng) for _ in range(300)) + b"\n")
    (export / "Tricky.ndjson").write_bytes(b"\n".join(TRICKY.values()) + b"\n")
    fast = tmp_path / "fast"
    run_audit([str(export)], AuditOptions(out=fast, jobs=1, as_of=AS_OF, shards=5, progress=False))
    real = pipeline.route_file
    monkeypatch.setattr(pipeline, "route_file", lambda *a, **k: real(*a, **k, fast=False))
    plain = tmp_path / "plain"
    run_audit([str(export)], AuditOptions(out=plain, jobs=1, as_of=AS_OF, shards=5, progress=False))
    assert _files(fast) == _files(plain)
    assert b"duplicate-keys" in (fast / "errors.ndjson").read_bytes() or (fast / "errors.ndjson").stat().st_size


def test_sharded_check_with_fast_routing_equals_the_in_memory_check(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export_generator().generate(export, patients=40, per_patient=6, seed=8)
    rng = random.Random(8)
    (export / "Mixed.ndjson").write_bytes(b"\n".join(_line(rng) for _ in range(300)) + b"\n")
    (export / "Tricky.ndjson").write_bytes(b"\n".join(TRICKY.values()) + b"\n")
    whole = render(check([str(export)], as_of=AS_OF), "json")
    for shards in (1, 4):
        assert render(sharded.check_sharded([str(export)], as_of=AS_OF, shards=shards), "json") == whole
