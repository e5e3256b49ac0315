"""Typed decoding of bulk NDJSON lines (the reader's fast path) gives exactly what the dict path gives.

``read`` decodes the MedicationRequest lines of NDJSON files into small typed structures (only the
elements extraction reads, the rest refused so that such a line takes the dict path). These tests
compare it with the dict path (``assemble(iter_raw(..., typed=False))``): same records (every model
object equal), same errors, same counts, on generated exports, on every sample file, on the
third-party corpus when present, and on lines written to trip the fast path up.
"""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import export_generator

from checker.fhir_input import Ingestion, assemble, iter_raw, read
from checker.fhir_input.raw import TypedLines, TypedResource
from checker.fhir_input.typed import PatientLine

ROOT = Path(__file__).resolve().parents[1]
AS_OF = date(2026, 1, 15)




def _both(inputs: Any, *, strict: bool = False) -> tuple[Ingestion, Ingestion]:
    typed = read(inputs, strict=strict, as_of=AS_OF)
    plain = assemble(iter_raw(inputs, typed=False), strict=strict, as_of=AS_OF)
    return typed, plain


def _assert_same(typed: Ingestion, plain: Ingestion) -> None:
    assert typed.counts == plain.counts
    assert typed.errors == plain.errors
    assert typed.urls == plain.urls
    assert len(typed.records) == len(plain.records)
    for a, b in zip(typed.records, plain.records):
        assert a == b
        assert [o.location for o in a.medication_orders] == [o.location for o in b.medication_orders]


def test_typed_path_reads_generated_exports_as_the_dict_path(tmp_path: Path) -> None:
    export_generator().generate(tmp_path, patients=300, per_patient=10, seed=11, practitioners=20, file_lines=1000)
    typed, plain = _both(str(tmp_path))
    assert typed.counts.checked > 3000
    _assert_same(typed, plain)


def test_the_typed_path_is_taken_on_bulk_lines(tmp_path: Path) -> None:
    """Without this the comparisons above would hold trivially."""
    export_generator().generate(tmp_path, patients=50, per_patient=10, seed=3, practitioners=5)
    items = list(iter_raw(str(tmp_path), typed=True))
    as_dicts = sum(getattr(i, "resource_type", "") == "MedicationRequest" for i in items)
    typed = sum(len(i.lines) if type(i) is TypedLines else 1 for i in items if type(i) in (TypedLines, TypedResource))
    assert typed and typed >= 0.99 * (typed + as_dicts)
    assert any(type(i) is TypedLines and len(i.lines) > 100 for i in items)  # runs of lines, not one item per line
    assert not any(type(i) in (TypedLines, TypedResource) for i in iter_raw(str(tmp_path)))  # typed=False is the default


def _sample_files() -> list[Path]:
    return sorted(p for p in (ROOT / "fhir_samples").rglob("*") if p.is_file() and not p.name.endswith(".expect"))


@pytest.mark.parametrize("path", _sample_files(), ids=lambda p: str(p.relative_to(ROOT / "fhir_samples")))
def test_typed_path_reads_every_sample_as_the_dict_path(path: Path) -> None:
    _assert_same(*_both(str(path)))


def test_typed_path_reads_the_shared_corpus_as_the_dict_path(shared_dir: Path) -> None:
    _assert_same(*_both(str(shared_dir / "fhir")))


BASE: dict[str, Any] = {
    "resourceType": "MedicationRequest", "id": "m1", "status": "active", "intent": "order",
    "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": "B01AA03"}],
                                  "text": "Warfarine 5 mg"},
    "subject": {"reference": "Patient/p1"}, "authoredOn": "2025-11-02",
    "requester": {"reference": "Practitioner/d1", "display": "Dr X"},
    "dosageInstruction": [{"text": "1 cp/j", "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                           "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "comprimé"}}]}],
    "dispenseRequest": {"expectedSupplyDuration": {"value": 30, "unit": "d"}},
}


PATIENT: dict[str, Any] = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1940-02-29"}


def _line(**changes: Any) -> bytes:
    res = dict(BASE)
    for k, v in changes.items():
        if v is ...:
            res.pop(k, None)
        else:
            res[k] = v
    return orjson.dumps(res)


TRICKY: dict[str, bytes] = {
    "plain": _line(),
    "repeated top-level key": _line()[:-1] + b',"status":"stopped"}',
    "repeated key inside the dosage": _line().replace(b'"period":1,', b'"period":1,"period":2,'),
    "repeated key inside the subject": _line().replace(b'"Patient/p1"', b'"Patient/p1","reference":"Patient/p2"'),
    "repeated key inside the medication": _line().replace(b'"text":"Warfarine 5 mg"', b'"text":"a","text":"b"'),
    "invalid UTF-8 inside the dosage": _line().replace(b"1 cp/j", b"1 cp\xff/j"),
    "invalid UTF-8 in the status": _line().replace(b'"active"', b'"act\xffive"'),
    "integer beyond 64 bits in the dosage": _line().replace(b'"frequency":1', b'"frequency":123456789012345678901234'),
    "NaN in the dispense": _line().replace(b'"value":30', b'"value":NaN'),
    "escaped colon": _line().replace(b"Warfarine", b"War\\u003afarine"),
    "escaped letters": _line().replace(b"Warfarine", b"W\\u0061rfarine"),
    "lone surrogate": _line().replace(b"Warfarine", b"W\\ud800arfarine"),
    "null medication": _line(medicationCodeableConcept=None),
    "no medication": _line(medicationCodeableConcept=...),
    "medication as a string": _line(medicationCodeableConcept="WARFARINE"),
    "coding code as a number": _line(medicationCodeableConcept={"coding": [{"code": 12}]}),
    "coding code as a list": _line(medicationCodeableConcept={"coding": [{"code": [1]}]}),
    "null dosage": _line(dosageInstruction=None),
    "dosage as an object": _line(dosageInstruction={"text": "2 cp/j"}),
    "dosage as a string": _line(dosageInstruction="tous les jours"),
    "dosage item as a string": _line(dosageInstruction=["tous les jours"]),
    "dose as a string with a comma": _line(dosageInstruction=[{"doseAndRate": [{"doseQuantity": {"value": "1,5"}}]}]),
    "dose not a number": _line(dosageInstruction=[{"doseAndRate": [{"doseQuantity": {"value": "un"}}]}]),
    "no id": _line(id=...),
    "empty id": _line(id=""),
    "numeric id": _line(id=7),
    "null status": _line(status=None),
    "numeric status": _line(status=1),
    "no status": _line(status=...),
    "local patient": _line(subject={"reference": "#p1"}),
    "conditional patient": _line(subject={"reference": "Patient?identifier=urn%3Aoid%3A1%7C42"}),
    "subject without reference": _line(subject={"display": "Jean"}),
    "subject as a string": _line(subject="Patient/p1"),
    "patient instead of subject": _line(subject=..., patient={"reference": "Patient/p1"}),
    "no subject": _line(subject=...),
    "requester as a string": _line(requester="Practitioner/d1"),
    "requester with identifier": _line(requester={"identifier": {"value": "42"}}),
    "partial date": _line(authoredOn="2025-11"),
    "odd date": _line(authoredOn="yesterday"),
    "empty date": _line(authoredOn=""),
    "empty status and intent": _line(status="", intent=""),
    "empty references": _line(subject={"reference": ""}, requester={"reference": ""}),
    "references with nothing": _line(subject={}, requester={}),
    "empty medication": _line(medicationCodeableConcept={}),
    "CQL date": _line(authoredOn=..., _authoredOn={"extension": [{"url": "cqlExpression",
                                                                   "valueString": "Today() - 3 days"}]}),
    "CQL validity": _line(dispenseRequest={"validityPeriod": {"extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/cqlExpression",
         "valueString": "FHIR.Period { start: Today() - 90 days, end: Today() }"}]}}),
    "extra element": _line(note=[{"text": "à jeun"}]),
    "R5 medication": _line(medicationCodeableConcept=..., medication={"concept": {"text": "Warfarine"}}),
    "contained medication": _line(medicationCodeableConcept=..., medicationReference={"reference": "#med"},
                                  contained=[{"resourceType": "Medication", "id": "med", "code": {"text": "X"}}]),
    "STU3 context": _line(context={"reference": "Encounter/1"}),
    "substitution": _line(substitution={"allowedBoolean": False}),
    "not an order": _line(resourceType="Patient"),
    "a Bundle": orjson.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": BASE}]}),
    "not JSON": b'{"resourceType": "MedicationRequest", "id": ',
    "a list": orjson.dumps([BASE]),
    "spaces and CR": orjson.dumps(BASE, option=orjson.OPT_INDENT_2).replace(b"\n", b" ") + b" \r",
    "tab inside the status": _line().replace(b'"active"', b'"act\tive"'),
    "byte order mark": b"\xef\xbb\xbf" + _line(),
    "key written with spaces": _line().replace(b'"status":', b'"status" :'),
    "spaced, repeated top-level key": json.dumps(BASE).encode()[:-1] + b', "status": "stopped"}',
    "spaced, repeated key inside the requester": json.dumps(BASE).encode().replace(b'"Dr X"', b'"Dr X", "display": "Y"'),
    "UTF-8 surrogate in the status": _line().replace(b'"active"', b'"act\xed\xa0\x80ive"'),
    "patient": orjson.dumps(PATIENT),
    "patient without id": orjson.dumps({**PATIENT, "id": None}).replace(b'"id":null,', b""),
    "patient with an empty id": orjson.dumps({**PATIENT, "id": ""}),
    "patient with a numeric gender": orjson.dumps({**PATIENT, "gender": 1}),
    "patient with a null birth date": orjson.dumps({**PATIENT, "birthDate": None}),
    "patient with a partial birth date": orjson.dumps({**PATIENT, "id": "p2", "birthDate": "1950"}),
    "patient with a name": orjson.dumps({**PATIENT, "id": "p3", "name": [{"family": "Martin"}]}),
    "patient with an identifier": orjson.dumps({**PATIENT, "id": "p4", "identifier": [{"value": "42"}]}),
    "patient with a repeated key": orjson.dumps(PATIENT)[:-1] + b',"gender":"male"}',
    "patient, spaced, repeated key": json.dumps(PATIENT).encode()[:-1] + b', "id": "p5"}',
    "patient named like an order's medication": orjson.dumps({**PATIENT, "id": "med"}),
    "order naming a patient as its medication": _line(id="m9", medicationCodeableConcept=...,
                                                      medicationReference={"reference": "Patient/p1"}),
}


@pytest.mark.parametrize("strict", [False, True])
def test_typed_path_handles_tricky_lines_as_the_dict_path(tmp_path: Path, strict: bool) -> None:
    rng = random.Random(5)
    names = list(TRICKY)
    lines = [TRICKY[n] for n in names]
    # each tricky line twice (a second sight hits the shared caches), then mixed in a random order
    mixed = lines + lines + rng.sample(lines * 3, len(lines) * 3)
    path = tmp_path / "MedicationRequest.ndjson"
    path.write_bytes(b"\n".join(mixed) + b"\n")
    both = _both(str(path), strict=strict)
    _assert_same(*both)
    assert [e.code for e in both[0].errors] == [e.code for e in both[1].errors]
    codes = {e.code.code for e in both[1].errors if e.code is not None}
    assert all(e.code is not None for e in both[1].errors), "every input error is a code with parameters"
    assert {"invalid-ndjson-line", "duplicate-keys", "invalid-resource"} <= codes, codes
    for name, line in TRICKY.items():  # alone, so that a difference names its line
        one = tmp_path / f"one-{names.index(name)}.ndjson"
        one.write_bytes(line + b"\n" + line + b"\n")
        typed, plain = _both(str(one), strict=strict)
        assert (typed.counts, typed.errors, typed.records) == (plain.counts, plain.errors, plain.records), name
        assert [(e.code, e.message) for e in typed.errors] == [(e.code, e.message) for e in plain.errors], name


@pytest.mark.parametrize("name", ["no medication", "dosage as a string", "dosage item as a string", "dose not a number",
                                  "coding code as a list"])
def test_typed_lines_refused_by_extraction_give_the_dict_paths_coded_error(
        tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no explanation from fhir.resources, the extraction's own code stands (``order-no-medication``,
    ``expected-list``, ``dosage-not-object``, ``not-a-number``, ``code-not-string``), on both paths alike."""
    from checker.fhir_input import assembly

    monkeypatch.setattr(assembly, "_explain", lambda raw: None)
    path = tmp_path / "MedicationRequest.ndjson"
    path.write_bytes(TRICKY[name] + b"\n" + TRICKY["plain"] + b"\n")
    typed, plain = _both(str(path))
    assert typed.errors == plain.errors and len(plain.errors) == 1
    expected = {"no medication": "order-no-medication", "dosage as a string": "expected-list",
                "dosage item as a string": "dosage-not-object",
                "dose not a number": "not-a-number", "coding code as a list": "code-not-string"}[name]
    assert [e.code.code for e in typed.errors if e.code is not None] == [expected]
    assert typed.counts == plain.counts and typed.records == plain.records


MEDICATIONS = [
    {"coding": [{"system": "http://www.whocc.no/atc", "code": "B01AA03"}], "text": "Warfarine 5 mg"},
    {"coding": [{"system": "http://www.whocc.no/atc", "code": "M01AE01"}], "text": "Ibuprofène 400 mg"},
    {"text": "Oméprazole 20 mg gélule gastro-résistante"},
    {"coding": [{"system": "http://www.whocc.no/atc", "code": "C09AA05", "display": "ramipril"}]},
]
DOSAGES = [
    [{"text": "1 cp/j", "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
      "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "comprimé"}}]}],
    [{"text": "2 cp matin et soir", "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
      "doseAndRate": [{"doseQuantity": {"value": 2, "unit": "comprimé"}}]}],
    [{"text": "si douleur"}],
]
DISPENSES = [{"expectedSupplyDuration": {"value": 30, "unit": "d"}}, {"numberOfRepeatsAllowed": 2},
             {"validityPeriod": {"start": "2025-10-01", "end": "2026-01-01"}}]
SUBJECTS = [f"Patient/p{i}" for i in range(1, 8)] + [
    "http://example.org/fhir/Patient/p3", "#p2", "Patient?identifier=urn%3Aoid%3A1%7C42", "Patient/unknown"]
DATES = ["2025-11-02", "2025-11-02T10:00:00+01:00", "2025-11", "2025", "", "yesterday", "2025-02-30"]
STATUSES = ["active", "completed", "stopped", "on-hold", ""]


def _random_line(rng: random.Random, number: int) -> bytes:
    """A MedicationRequest line as bulk exports write them, with the oddities they sometimes have."""
    res: dict[str, Any] = {"resourceType": "MedicationRequest", "id": f"m{number}"}
    if rng.random() < 0.9:
        res["status"] = rng.choice(STATUSES)
    if rng.random() < 0.9:
        res["intent"] = rng.choice(["order", "plan", "proposal"])
    if rng.random() < 0.95:
        res["medicationCodeableConcept"] = rng.choice(MEDICATIONS)
    if rng.random() < 0.95:
        res["subject"] = {"reference": rng.choice(SUBJECTS)}
    if rng.random() < 0.9:
        res["authoredOn"] = rng.choice(DATES) if rng.random() < 0.3 else DATES[0]
    if rng.random() < 0.7:
        res["requester"] = {"reference": f"Practitioner/d{rng.randrange(4)}"}
    if rng.random() < 0.8:
        res["dosageInstruction"] = rng.choice(DOSAGES)
    if rng.random() < 0.8:
        res["dispenseRequest"] = rng.choice(DISPENSES)
    if rng.random() < 0.05:
        res["note"] = [{"text": "à prendre au repas"}]
    keys = list(res)
    rng.shuffle(keys)
    res = {k: res[k] for k in keys}
    spaced = rng.random() < 0.4
    line = json.dumps(res, ensure_ascii=False).encode() if spaced else orjson.dumps(res)
    roll = rng.random()
    if roll < 0.02:  # a key written twice
        line = line[:-1] + (b', "status": "stopped"}' if spaced else b',"status":"stopped"}')
    elif roll < 0.03:
        line = line.replace(b"comprim", b"compr\\u0069m")  # an escape
    elif roll < 0.04:
        line += b"\r"  # CRLF line ends
    return line


def _random_export(rng: random.Random, count: int) -> bytes:
    lines = []
    for number in range(count):
        roll = rng.random()
        if roll < 0.03:
            lines.append(rng.choice(list(TRICKY.values())))
        elif roll < 0.05:
            lines.append(rng.choice([b"", b"   ", b"\t"]))
        elif roll < 0.08:
            pid = rng.randrange(1, 9)
            patient: dict[str, Any] = {"resourceType": "Patient", "id": f"p{pid}", "gender": "female",
                                       "birthDate": f"19{40 + pid}-03-0{pid}"}
            if pid == 4:
                patient["identifier"] = [{"system": "urn:oid:1", "value": "42"}]
            lines.append(orjson.dumps(patient))
        else:
            lines.append(_random_line(rng, number))
    return b"\n".join(lines) + (b"\n" if rng.random() < 0.7 else b"")


def _random_patients(rng: random.Random, count: int) -> bytes:
    """A Patient file as bulk exports write it, with the lines the typed path must refuse or read alike."""
    tricky = [line for name, line in TRICKY.items() if name.startswith("patient")]
    lines = []
    for number in range(count):
        roll = rng.random()
        if roll < 0.05:
            lines.append(rng.choice(tricky))
            continue
        patient: dict[str, Any] = {"resourceType": "Patient", "id": f"p{rng.randrange(1, 12)}"}
        if rng.random() < 0.9:
            patient["gender"] = rng.choice(["female", "male", "other", "unknown", ""])
        if rng.random() < 0.9:
            patient["birthDate"] = rng.choice(["1950-03-02", "1931", "1962-07", "", "1950-02-30", "1950-02-28"])
        if rng.random() < 0.05:
            patient["id"] = rng.choice(["", 7])
        if rng.random() < 0.05:
            patient["identifier"] = [{"system": "urn:oid:1", "value": "42"}]
        keys = list(patient)
        rng.shuffle(keys)
        patient = {k: patient[k] for k in keys}
        line = json.dumps(patient).encode() if rng.random() < 0.4 else orjson.dumps(patient)
        if rng.random() < 0.03:
            line = line[:-1] + b',"gender":"male"}'
        lines.append(line)
    return b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("seed", range(8))
def test_runs_of_typed_lines_read_random_exports_as_the_dict_path(
        tmp_path: Path, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of typed lines (one decode per line, the repeated-key test summed over the run, orders
    grouped without their positions) against the dict path, on seeded exports mixing compact and
    spaced lines, repeated keys, escapes, CRLF, blank lines, Patients, lines the typed path refuses and
    the ways of writing one patient; small blocks and short runs, so that lines straddle blocks and
    runs stop anywhere."""
    from checker.fhir_input import sources

    rng = random.Random(seed)
    monkeypatch.setattr(sources, "CHUNK", rng.randrange(200, 4000))
    monkeypatch.setattr(sources, "RUN_LINES", rng.randrange(1, 40))
    path = tmp_path / "MedicationRequest.ndjson"
    path.write_bytes(_random_export(rng, 1500))
    (tmp_path / "Patient.ndjson").write_bytes(_random_patients(rng, 300))
    typed, plain = _both(str(tmp_path))
    _assert_same(typed, plain)
    assert [(e.code, e.message) for e in typed.errors] == [(e.code, e.message) for e in plain.errors]
    runs = [i for i in iter_raw(str(tmp_path), typed=True) if type(i) is TypedLines]
    assert sum(len(r.lines) for r in runs if type(r.typed[0]) is PatientLine) > 100  # the runs are taken
    assert sum(len(r.lines) for r in runs if type(r.typed[0]) is not PatientLine) > 600
    if seed < 2:  # typed items under --strict are read as dicts
        strict = assemble(iter_raw(str(tmp_path), typed=True), strict=True, as_of=AS_OF)
        _assert_same(strict, assemble(iter_raw(str(tmp_path)), strict=True, as_of=AS_OF))


def test_orders_of_runs_keep_their_place_among_other_lines_of_a_patient(tmp_path: Path) -> None:
    """A patient's typed lines, lines read as dicts (an element the typed path does not read) and
    lines naming the patient another way (an absolute URL) come out in input order, as the dict path
    gives them."""
    lines = []
    for n in range(60):
        subject = "http://example.org/fhir/Patient/p1" if n % 7 == 3 else "Patient/p1"
        line = _line(id=f"m{n}", subject={"reference": subject})
        lines.append(_line(id=f"m{n}", note=[{"text": "x"}]) if n % 5 == 2 else line)
    lines.insert(30, orjson.dumps(PATIENT))
    path = tmp_path / "MedicationRequest.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    typed, plain = _both(str(path))
    _assert_same(typed, plain)
    (record,) = typed.records
    assert [o.ref for o in record.medication_orders] == [f"MedicationRequest/m{n}" for n in range(60)]
