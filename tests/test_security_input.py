"""Security: hostile or broken input files (issue 16): decompression bombs, runs of blank lines,
repeated JSON keys. Each test counts memory or work; none is timed (benchmarks/decompression_bench.py
and benchmarks/ingest_bench.py hold the timings)."""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checker import check
from checker.fhir_input import read, sources


def _gzip_of(path: Path, block: bytes, times: int) -> None:
    with gzip.open(path, "wb", compresslevel=9) as f:
        for _ in range(times):
            f.write(block)


@pytest.mark.parametrize("name", ["zeros.ndjson.gz", "zeros.json.gz"])
def test_gzip_of_zeros_is_read_in_bounded_memory(tmp_path: Path, name: str, monkeypatch: Any) -> None:
    monkeypatch.setattr(sources, "MAX_LINE", 1 << 20)
    path = tmp_path / name
    _gzip_of(path, bytes(1 << 20), 40)  # 40 MiB of NUL bytes, 40 KiB compressed
    _gzip_of(tmp_path / f"small-{name}", bytes(1 << 20), 2)
    read(str(tmp_path / f"small-{name}"))  # the same error once: its wording catalogue loads once per process
    tracemalloc.start()
    try:
        ing = read(str(path))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ing.errors and ing.counts.checked == 0
    assert peak < 8 << 20, f"peak {peak >> 20} MiB while reading 40 MiB of zeros"


def test_decompressed_size_limit_refuses_the_input(tmp_path: Path) -> None:
    path = tmp_path / "big.ndjson.gz"
    line = orjson.dumps({"resourceType": "Patient", "id": "p"}) + b"\n"
    _gzip_of(path, line * 20_000, 10)  # 200,000 lines, about 8 MB once decompressed
    ing = read(str(path), max_decompressed=1 << 20)
    assert any("limit of 1 MiB" in e.message and "--max-decompressed" in e.message for e in ing.errors)
    assert ing.counts.resources < 200_000
    report = check(str(path), as_of="2026-01-15", max_decompressed=1 << 20)
    assert report.errors
    assert read(str(path)).counts.resources == 200_000  # under the default limit: read in full


def test_blank_lines_are_skipped_without_parsing_each(tmp_path: Path, monkeypatch: Any) -> None:
    path = tmp_path / "blank.ndjson.gz"
    with gzip.open(path, "wb") as f:
        f.write(b"\n" * (30 << 20))
        f.write(orjson.dumps({"resourceType": "Patient", "id": "p"}) + b"\n")
        f.write(b"\r\n  \n" * 1000)
    calls = 0
    real = orjson.loads

    class Counting:
        JSONDecodeError = orjson.JSONDecodeError
        dumps = staticmethod(orjson.dumps)

        @staticmethod
        def loads(data: Any) -> Any:
            nonlocal calls
            calls += 1
            return real(data)

    monkeypatch.setattr(sources, "orjson", Counting)
    ing = read(str(path))
    assert ing.counts.resources == 1 and not ing.errors
    assert calls <= 5, f"{calls} parses for one resource among 30 million blank lines"


# --- repeated keys -----------------------------------------------------------------------------

WARFARIN_MICONAZOLE = {
    "resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "p1", "birthDate": "1950-01-01"}},
        {"resource": {"resourceType": "MedicationRequest", "id": "w", "status": "active", "intent": "order",
                      "medicationCodeableConcept": {"text": "Warfarine 5 mg comprimé"},
                      "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-01-10"}},
        {"resource": {"resourceType": "MedicationRequest", "id": "m", "status": "active", "intent": "order",
                      "medicationCodeableConcept": "MICONAZOLE",
                      "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-01-10"}},
    ]}


def _with_repeated_key(value: Any = WARFARIN_MICONAZOLE) -> bytes:
    text = json.dumps(value, ensure_ascii=False)
    return text.replace('"medicationCodeableConcept": "MICONAZOLE"',
                        '"medicationCodeableConcept": {"text": "Miconazole 2 % gel buccal"}, '
                        '"medicationCodeableConcept": {"text": "Paracétamol 500 mg comprimé"}').encode()


@pytest.mark.parametrize("as_ndjson", [False, True])
def test_repeated_key_rejects_the_resource_with_its_place(tmp_path: Path, as_ndjson: bool) -> None:
    raw = _with_repeated_key()
    if as_ndjson:
        entries = [json.dumps(e["resource"]) for e in WARFARIN_MICONAZOLE["entry"][:2]]
        last = _with_repeated_key(WARFARIN_MICONAZOLE["entry"][2]["resource"]).decode()
        path = tmp_path / "orders.ndjson"
        path.write_text("\n".join([*entries, last]) + "\n", encoding="utf-8")
    else:
        path = tmp_path / "orders.json"
        path.write_bytes(raw)
    report = check(str(path), as_of="2026-01-15")
    assert not any("aracétamol" in (f.summary + f.detail) for f in report.findings)
    errors = [e for e in report.errors if "medicationCodeableConcept" in e.message]
    assert len(errors) == 1, report.errors
    assert "MedicationRequest/m.medicationCodeableConcept" in errors[0].message
    assert (":3" if as_ndjson else "/entry/2") in errors[0].location
    assert report.inputs.rejected == 1 and report.inputs.checked == 2  # the other resources are read


def _json_text(draw: Any, depth: int) -> str:
    """Random JSON text written by hand: objects may repeat keys, strings hold colons, escapes
    (\\u003a, escaped backslashes) and spaces around colons vary."""
    kind = draw(st.sampled_from(["obj", "obj", "list", "str", "num"] if depth < 3 else ["str", "num"]))
    if kind == "num":
        return str(draw(st.integers(-5, 5)))
    if kind == "str":
        return json.dumps(draw(st.text(alphabet=':a\\"\u00e9 /', max_size=6)), ensure_ascii=draw(st.booleans())) \
            .replace(":", draw(st.sampled_from([":", "\\u003a", "\\u003A"])))
    if kind == "list":
        return "[" + ",".join(_json_text(draw, depth + 1) for _ in range(draw(st.integers(0, 3)))) + "]"
    keys = draw(st.lists(st.sampled_from(["a", "b", "a:b", "c\\u003a", "\\\\u003a"]), max_size=4))
    sep = draw(st.sampled_from([":", " : ", ":\n"]))
    return "{" + ",".join(f'"{k}"{sep}{_json_text(draw, depth + 1)}' for k in keys) + "}"


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_duplicate_precheck_never_misses_a_repeated_key(data: Any) -> None:
    from checker.fhir_input import duplicate_key_paths, may_have_duplicate_keys

    raw = _json_text(data.draw, 0).encode()
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return
    if duplicate_key_paths(raw):
        assert may_have_duplicate_keys(raw, parsed)


def test_duplicate_precheck_stays_quiet_on_the_samples() -> None:
    """No false alarm (the slow exact pass) on the shipped samples without escaped colons."""
    from checker.fhir_input import duplicate_key_paths, may_have_duplicate_keys
    from tests.conftest import SAMPLES

    alarms = 0
    for path in sorted(SAMPLES.rglob("*.json")):
        raw = path.read_bytes()
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        assert not duplicate_key_paths(raw), path
        alarms += may_have_duplicate_keys(raw, parsed)
    assert alarms == 0


def test_expansion_ratio_limit_stops_a_bomb_early(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(sources, "EXPANSION_FROM", 1 << 20)
    path = tmp_path / "newlines.ndjson.gz"
    _gzip_of(path, b"\n" * (1 << 20), 20)  # 20 MiB of newlines, about 1,000 times smaller compressed
    ing = read(str(path))
    assert [e.message for e in ing.errors if "--max-expansion" in e.message]
    assert not read(str(path), max_expansion=5000).errors  # a looser limit reads it (all blank)


def test_a_zero_decompression_limit_is_a_limit_on_every_path(tmp_path: Path) -> None:
    """``--max-decompressed 0`` refuses every compressed input, on the audit's sharded path as in
    ``check``; it is not read as "use the default"."""
    from checker.audit.pipeline import route_file

    path = tmp_path / "one.ndjson.gz"
    _gzip_of(path, orjson.dumps({"resourceType": "Patient", "id": "p"}) + b"\n", 1)
    assert any("--max-decompressed" in e.message for e in read(str(path), max_decompressed=0).errors)
    lines = [line for _, line, _ in route_file(0, str(path), 4, max_decompressed=0)]
    assert any(b"--max-decompressed" in line for line in lines)
    assert not any(b'"Patient"' in line for line in lines)
