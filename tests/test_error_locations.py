"""Input-error locations are notation, not words: a French report says no English word where it
locates an error (an NDJSON line, a Bundle entry, a rule that failed on a record)."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from checker.api import check_records
from checker.findings import InputError, in_input_order
from checker.fhir_input import read
from checker.formats import render
from checker.registry import all_rules

PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1950-06-01", "gender": "female"}
ORDER = {"resourceType": "MedicationRequest", "id": "a", "status": "active", "intent": "order",
         "medicationCodeableConcept": {"text": "amoxicilline 1 g"}, "subject": {"reference": "Patient/p1"},
         "authoredOn": "2026-01-10"}
ENGLISH = re.compile(r"\b(line|entry|rule|on) |patient\)|no patient", re.IGNORECASE)


def _report(tmp_path: Path, rule_fails: bool):  # type: ignore[no-untyped-def]
    (tmp_path / "orders.ndjson").write_bytes(
        orjson.dumps(ORDER) + b"\n" + orjson.dumps(dict(ORDER, id="b", status=12)) + b"\n{cut\n")
    bad = dict(ORDER, id="c", medicationCodeableConcept=None)
    del bad["medicationCodeableConcept"]
    (tmp_path / "bundle.json").write_bytes(orjson.dumps(
        {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": PATIENT}, {"resource": bad}]}))
    rules = all_rules()
    if rule_fails:
        def boom(call):  # type: ignore[no-untyped-def]
            raise RuntimeError("boom")
        rules = [replace(rules[0], func=boom, triggers=None), *rules[1:]]
    ing = read(str(tmp_path))
    r = check_records(ing.records, as_of="2026-01-15", rules=rules)
    return ing, r


def test_error_locations_are_notation(tmp_path: Path) -> None:
    ing, r = _report(tmp_path, rule_fails=True)
    where = sorted(e.location.removeprefix(str(tmp_path) + "/") for e in [*ing.errors, *r.errors])
    assert "orders.ndjson:2 /status" in where and "orders.ndjson:3" in where, where
    assert any(w.startswith("bundle.json /entry/1/resource") for w in where), where
    rule = all_rules()[0].id
    assert f"{rule} · Patient/p1" in where, where
    assert InputError(f"{rule} · —", "x").order_key() > InputError("z.ndjson:9", "x").order_key()


@pytest.mark.parametrize("fmt", ["text", "html", "json"])
def test_french_error_locations_have_no_english_word(tmp_path: Path, fmt: str) -> None:
    ing, r = _report(tmp_path, rule_fails=True)
    r = replace(r, errors=in_input_order([*ing.errors, *r.errors]))
    assert len(r.errors) >= 4
    for e in r.errors:
        assert not ENGLISH.search(e.location.removeprefix(str(tmp_path))), e.location
    out = render(r, fmt, lang="fr")
    for e in r.errors:  # each location is shown as is (the messages are another matter: the codes word them)
        assert (html.escape(e.location) if fmt == "html" else e.location) in out, e.location
    for word in ("(line ", "(entry ", "rule ", "patient)", "no patient", " on Patient"):
        assert word not in out, word

def test_errors_without_patient_name_no_patient(tmp_path: Path) -> None:
    from checker.audit import codec
    from checker.audit.worker import group_key
    from checker.model import SourceLocation
    raw = codec.RawResource({"resourceType": "Medication"}, SourceLocation("in/m.ndjson", 4))
    assert "patient" not in (group_key(None, codec.encode(raw)) or "")


def test_errors_of_one_bundle_come_in_entry_order() -> None:
    """Pointers are ordered number by number (``/entry/2`` before ``/entry/10``), and a folder name
    with a space before a slash stays in the file part."""
    from checker.findings import InputError, in_input_order

    where = ["b.json /entry/10/resource/authoredOn", "b.json /entry/2/resource/authoredOn",
             "my /dir/a.json /entry/3/resource", "a.ndjson:10", "a.ndjson:9 /status", "DU001 · Patient/p"]
    ordered = [e.location for e in in_input_order(InputError(w, "m") for w in where)]
    assert ordered == ["a.ndjson:9 /status", "a.ndjson:10", "b.json /entry/2/resource/authoredOn",
                       "b.json /entry/10/resource/authoredOn", "my /dir/a.json /entry/3/resource", "DU001 · Patient/p"]
