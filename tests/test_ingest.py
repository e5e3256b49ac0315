"""The FHIR boundary: every input shape, reference resolution, and broken input."""

from __future__ import annotations

import gzip
import json
from datetime import date
from pathlib import Path

import orjson
import pytest

from checker import fhir_input
from checker.fhir_input import read

PATIENT = {"resourceType": "Patient", "id": "p1", "birthDate": "1950-06-01", "gender": "female"}


def mr(rid: str, text: str = "amoxicilline 1 g", **extra) -> dict:  # type: ignore[no-untyped-def]
    res = {"resourceType": "MedicationRequest", "id": rid, "status": "active", "intent": "order",
           "medicationCodeableConcept": {"text": text}, "subject": {"reference": "Patient/p1"},
           "authoredOn": "2026-01-10"}
    res.update(extra)
    return res


def bundle(*resources: dict, type_: str = "collection", urn: bool = False) -> dict:
    entries = []
    for r in resources:
        e: dict = {"resource": r}
        if urn:
            e["fullUrl"] = f"urn:uuid:{r['resourceType'].lower()}-{r['id']}"
        entries.append(e)
    return {"resourceType": "Bundle", "type": type_, "entry": entries}


def orders(ing: fhir_input.Ingestion) -> list:
    return [o for r in ing.records for o in r.medication_orders]


@pytest.mark.parametrize("type_", ["collection", "transaction", "searchset", "document", "batch"])
def test_bundle_types(type_: str) -> None:
    ing = read(bundle(PATIENT, mr("a"), type_=type_))
    assert [o.ref for o in orders(ing)] == ["MedicationRequest/a"]
    assert ing.records[0].patient.birth_date == date(1950, 6, 1)
    assert ing.counts.to_dict() == {"files": 0, "resources": 2, "checked": 2, "ignored": 0, "rejected": 0}


def test_files_directories_ndjson_gzip_bom(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.json").write_bytes(b"\xef\xbb\xbf" + orjson.dumps(bundle(PATIENT)))
    lines = b"\n".join(orjson.dumps(mr(f"m{i}")) for i in range(3))
    (tmp_path / "sub" / "MedicationRequest.000.ndjson").write_bytes(lines)
    (tmp_path / "sub" / "Practitioner.ndjson.gz").write_bytes(
        gzip.compress(orjson.dumps({"resourceType": "Practitioner", "id": "d"})))
    (tmp_path / "notes.txt").write_text("not an input")
    ing = read(str(tmp_path))
    assert ing.counts.files == 3
    assert ing.counts.to_dict() == {"files": 3, "resources": 5, "checked": 4, "ignored": 1, "rejected": 0}
    assert sorted(o.ref for o in orders(ing)) == ["MedicationRequest/m0", "MedicationRequest/m1", "MedicationRequest/m2"]
    assert orders(ing)[0].location.line is not None


def test_ndjson_bad_line_is_an_error_with_its_line(tmp_path: Path) -> None:
    f = tmp_path / "MedicationRequest.ndjson"
    f.write_bytes(orjson.dumps(mr("a")) + b"\n{broken\n" + orjson.dumps(mr("b")) + b"\n")
    ing = read(str(f))
    assert len(orders(ing)) == 2
    assert len(ing.errors) == 1 and ing.errors[0].location.endswith(":2")
    assert ing.counts.balanced() and ing.counts.rejected == 1


def test_truncated_json_wrong_types_unknown_type(tmp_path: Path) -> None:
    (tmp_path / "trunc.json").write_text('{"resourceType": "Bundle", "entry": [')
    (tmp_path / "types.json").write_bytes(orjson.dumps(mr("w", dosageInstruction="twice a day")))
    (tmp_path / "unknown.json").write_bytes(orjson.dumps({"resourceType": "Prescriptionz", "id": "x"}))
    (tmp_path / "curl.json").write_text("curl -X POST http://example.org -d '{}'")
    ing = read(str(tmp_path))
    by_file = {Path(e.location.split(" ")[0].split(":")[0]).name: e.message for e in ing.errors}
    assert "not valid JSON" in by_file["trunc.json"]
    assert "shell command" in by_file["curl.json"]
    assert "dosageInstruction" in next(e.location + e.message for e in ing.errors if "types.json" in e.location)
    # A misspelt or invented type is rejected with its location, never silently dropped ("MedicationReqest"
    # would hide a prescription); a real FHIR type no rule reads is counted as ignored.
    assert "unknown FHIR resource type 'Prescriptionz'" in by_file["unknown.json"]
    assert ing.counts.ignored == 0 and ing.counts.balanced()
    (tmp_path / "unknown.json").write_bytes(orjson.dumps({"resourceType": "Practitioner", "id": "x"}))
    (tmp_path / "stu3.json").write_bytes(orjson.dumps({"resourceType": "ProcedureRequest", "id": "x"}))
    again = read(str(tmp_path))
    assert again.counts.ignored == 2 and not any("unknown FHIR" in e.message for e in again.errors)


def test_a_misspelt_order_type_is_reported_not_lost() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {**mr("a"), "resourceType": "MedicationReqest"}}, {"resource": mr("b")}]}
    ing = read([bundle])
    (error,) = ing.errors
    assert "/entry/0" in error.location and "MedicationReqest" in error.message
    assert (ing.counts.checked, ing.counts.rejected, ing.counts.ignored) == (1, 1, 0)


def test_known_resource_types_are_fhir_resources_models() -> None:
    """Every name the reader takes for a FHIR resource type has a model in fhir.resources (R5, R4B or
    STU3), but for the R4 types that R4B dropped; and misspellings are not among them."""
    import importlib.util

    from checker.fhir_types import KNOWN_RESOURCE_TYPES, R4_ONLY

    for name in sorted(KNOWN_RESOURCE_TYPES - R4_ONLY):
        assert any(importlib.util.find_spec(f"{pkg}.{name.lower()}") for pkg in
                   ("fhir.resources", "fhir.resources.R4B", "fhir.resources.STU3")), name
    assert {"MedicationRequest", "ServiceRequest", "Patient", "Practitioner", "DeviceUseStatement"} <= KNOWN_RESOURCE_TYPES
    assert not {"MedicationReqest", "Prescriptionz", "Resource", "DomainResource"} & KNOWN_RESOURCE_TYPES


def test_references_contained_urn_absolute_conditional_and_cross_file(tmp_path: Path) -> None:
    med = {"resourceType": "Medication", "id": "med1", "code": {"text": "simvastatine 20 mg"}}
    contained = mr("c", medicationCodeableConcept=None)
    del contained["medicationCodeableConcept"]
    contained["contained"] = [{"resourceType": "Medication", "id": "m", "code": {"text": "warfarine 5 mg"},
                               "ingredient": [{"itemCodeableConcept": {"text": "warfarine"},
                                               "strength": {"numerator": {"value": 5, "unit": "mg"},
                                                            "denominator": {"value": 1, "unit": "cp"}}}]}]
    contained["medicationReference"] = {"reference": "#m"}
    urn = mr("u", subject={"reference": "urn:uuid:patient-p1"})
    absolute = mr("abs")
    del absolute["medicationCodeableConcept"]
    absolute["medicationReference"] = {"reference": "http://example.org/fhir/Medication/med1"}
    cond = mr("cond")
    del cond["medicationCodeableConcept"]
    cond["medicationReference"] = {"reference": "Medication?identifier=urn:oid:1.2|42"}
    med2 = {"resourceType": "Medication", "id": "med2", "identifier": [{"system": "urn:oid:1.2", "value": "42"}],
            "code": {"text": "ibuprofene 400 mg"}}
    (tmp_path / "b.json").write_bytes(orjson.dumps(bundle(PATIENT, contained, urn, absolute, cond, urn=True)))
    (tmp_path / "Medication.ndjson").write_bytes(orjson.dumps(med) + b"\n" + orjson.dumps(med2) + b"\n")
    ing = read(str(tmp_path))
    assert len(ing.records) == 1, "urn:uuid and Patient/p1 must be the same patient"
    got = {o.ref: o for o in orders(ing)}
    assert got["MedicationRequest/c"].medication.text == "warfarine 5 mg"
    assert got["MedicationRequest/c"].ingredients[0].strength.value == 5
    assert got["MedicationRequest/abs"].medication.text == "simvastatine 20 mg"
    assert got["MedicationRequest/cond"].medication.text == "ibuprofene 400 mg"
    assert got["MedicationRequest/u"].medication.text == "amoxicilline 1 g"


def test_r5_codeable_reference_and_stu3_leftovers() -> None:
    r5 = mr("r5")
    del r5["medicationCodeableConcept"]
    r5["medication"] = {"concept": {"text": "paracetamol 1 g"}}
    stu3 = mr("s3", context={"reference": "Encounter/e"})
    stu3["dosageInstruction"] = [{"doseQuantity": {"value": 2, "unit": "cp"},
                                  "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}}}]
    ing = read(bundle(PATIENT, r5, stu3))
    got = {o.ref: o for o in orders(ing)}
    assert got["MedicationRequest/r5"].fhir_version == "R5"
    assert got["MedicationRequest/r5"].medication.text == "paracetamol 1 g"
    assert got["MedicationRequest/s3"].dosages[0].daily_amount().value == 6


def test_cds_hooks_request_body() -> None:
    body = {
        "hook": "order-sign", "hookInstance": "x",
        "context": {"patientId": "p1", "draftOrders": bundle(mr("draft", subject=None))},
        "prefetch": {"patient": PATIENT, "meds": bundle(mr("old")), "empty": None},
    }
    ing = read(body)
    got = {o.ref: o for o in orders(ing)}
    assert got["MedicationRequest/draft"].draft and not got["MedicationRequest/old"].draft
    assert len(ing.records) == 1 and ing.records[0].ref == "Patient/p1"


def test_cql_dated_orders_from_pddi_examples() -> None:
    order = mr("q")
    del order["authoredOn"]
    order["_authoredOn"] = {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/cqif-cqlExpression",
                                           "valueString": "Today() - 90 days"}]}
    ing = read(bundle(PATIENT, order), as_of=date(2026, 1, 15))
    assert orders(ing)[0].authored_on == date(2025, 10, 17)


def test_library_accepts_dicts_json_text_and_models() -> None:
    from fhir.resources.R4B.patient import Patient

    model = Patient.model_validate(PATIENT)
    ing = read([mr("a"), json.dumps(mr("b")), model])
    assert ing.counts.checked == 3 and len(orders(ing)) == 2


def test_xml_resource_and_safety(tmp_path: Path) -> None:
    ok = tmp_path / "p.xml"
    ok.write_text('<Patient xmlns="http://hl7.org/fhir"><id value="p1"/><gender value="male"/>'
                  '<birthDate value="1940-01-02"/></Patient>')
    xxe = tmp_path / "xxe.xml"
    xxe.write_text('<?xml version="1.0"?><!DOCTYPE p [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                   '<Patient xmlns="http://hl7.org/fhir"><id value="&x;"/></Patient>')
    laughs = tmp_path / "laughs.xml"
    laughs.write_text('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
                      '<Patient xmlns="http://hl7.org/fhir"><id value="&b;"/></Patient>')
    ing = read(str(tmp_path))
    assert [r.patient.sex for r in ing.records] == ["male"]
    assert sum("DOCTYPE is refused" in e.message for e in ing.errors) == 2
    assert "root:" not in "".join(e.message for e in ing.errors)
    assert ing.counts.balanced()


def test_strict_mode_rejects_invalid_resources() -> None:
    bad = mr("bad", requester="Practitioner/x")  # a Reference written as a plain string
    ing = read(bundle(PATIENT, bad, mr("good")), strict=True)
    assert [o.ref for o in orders(ing)] == ["MedicationRequest/good"]
    assert "requester" in ing.errors[0].message
    assert read(bundle(PATIENT, bad)).counts.rejected == 0  # lenient by default: nothing the rules read


def test_an_unreadable_date_is_refused_even_when_lenient() -> None:
    """A date the checker needs (the order's day) cannot be read leniently: judging the order as
    undated would move it to another day (tests/test_ingest_unreadable_dates.py)."""
    ing = read(bundle(PATIENT, mr("bad", authoredOn="yesterday"), mr("good")))
    assert [o.ref for o in orders(ing)] == ["MedicationRequest/good"]
    assert ing.counts.rejected == 1 and "/authoredOn" in ing.errors[0].location


@pytest.mark.corpus
def test_whole_shared_corpus_reads_without_traceback(shared_dir: Path) -> None:
    ing = read(str(shared_dir / "fhir"))
    assert ing.counts.balanced()
    assert ing.counts.resources > 10000 and ing.counts.checked > 7000
    where = " ".join(e.location for e in ing.errors)
    for broken in ("warfarin-nsaids-cds-request.json", "digoxin-cyclosporine-cds-request.json", "log.ndjson"):
        assert broken in where, f"{broken} must be reported"


def test_dispense_administration_statement_are_medication_lines_not_prescriptions() -> None:
    dispense = {"resourceType": "MedicationDispense", "id": "d", "status": "completed",
                "medicationCodeableConcept": {"text": "warfarine 5 mg"}, "subject": {"reference": "Patient/p1"},
                "whenHandedOver": "2026-01-02", "daysSupply": {"value": 30, "unit": "d"}}
    admin = {"resourceType": "MedicationAdministration", "id": "a", "status": "completed",
             "medicationCodeableConcept": {"text": "héparine"}, "subject": {"reference": "Patient/p1"},
             "effectivePeriod": {"start": "2026-01-03", "end": "2026-01-05"}}
    statement = {"resourceType": "MedicationStatement", "id": "s", "status": "entered-in-error",
                 "medicationCodeableConcept": {"text": "aspirine"}, "subject": {"reference": "Patient/p1"}}
    ing = read(bundle(PATIENT, dispense, admin, statement))
    got = {o.ref: o for o in orders(ing)}
    d = got["MedicationDispense/d"]
    assert d.kind == "dispense" and not d.is_prescription and d.status == "active"
    assert d.authored_on == date(2026, 1, 2) and d.dispense.supply_days == 30
    assert got["MedicationAdministration/a"].dispense.validity_end == date(2026, 1, 5)
    assert not got["MedicationStatement/s"].is_active_like
    assert ing.counts.checked == 4


def test_library_traps_are_handled() -> None:
    from datetime import datetime

    from checker import check

    r = check(bundle(PATIENT, mr("a")), as_of=datetime(2026, 1, 15, 10, 30), select="ID001")
    assert r.as_of == "2026-01-15"
    with pytest.raises(FileNotFoundError, match="empty path"):
        check("")


def test_a_failing_rule_is_reported_and_the_others_still_run() -> None:
    from dataclasses import replace

    from checker.api import check_records
    from checker.registry import all_rules

    def boom(call):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    rules = all_rules()
    broken = replace(rules[0], func=boom, triggers=None)  # run on every record (no dispatch by trigger)
    r = check_records(read(bundle(PATIENT, mr("a"))).records, as_of="2026-01-15", rules=[broken, *rules[1:]])
    assert any(e.location.startswith(f"{broken.id} · ") and "boom" in e.message for e in r.errors)


def test_one_pass_keeps_input_order_whatever_comes_first(tmp_path: Path) -> None:
    """Orders come before their Patient and their Medication, under two spellings of the patient
    reference, with broken resources in between: lines and errors still come out in input order."""
    by_ref = mr("r2")
    del by_ref["medicationCodeableConcept"]
    by_ref["medicationReference"] = {"reference": "Medication/later"}
    broken_by_ref = dict(by_ref, id="r4", status=12)
    lines = [mr("r1"), by_ref, mr("r3", subject={"reference": "urn:uuid:patient-p1"}), broken_by_ref,
             mr("r5", dosageInstruction="twice a day"), mr("r6")]
    other = {"subject": {"reference": "Patient/p2"}}  # one spelling only: no merge to reorder it
    lines += [mr("q1", **other), dict(by_ref, id="q2", **other), mr("q3", **other)]
    (tmp_path / "MedicationRequest.ndjson").write_bytes(b"\n".join(orjson.dumps(r) for r in lines) + b"\n{cut\n")
    (tmp_path / "Patient.json").write_bytes(orjson.dumps(
        bundle({"resourceType": "Patient", "id": "bad", "gender": 3}, PATIENT, urn=True)))
    (tmp_path / "Medication.json").write_bytes(orjson.dumps(
        {"resourceType": "Medication", "id": "later", "code": {"text": "warfarine 5 mg"}}))
    ing = read(str(tmp_path))
    assert [r.ref for r in ing.records] == ["Patient/p1", "Patient/p2"]
    assert ing.records[0].patient.birth_date == date(1950, 6, 1)
    assert [o.ref.removeprefix("MedicationRequest/") for o in orders(ing)] == ["r1", "r2", "r3", "r6", "q1", "q2", "q3"]
    assert orders(ing)[1].medication.text == orders(ing)[5].medication.text == "warfarine 5 mg"
    # read errors first, then rejected Patients, then the other rejections in input order
    where = [e.location.removeprefix(str(tmp_path)) for e in ing.errors]
    assert where == ["/MedicationRequest.ndjson:10", "/Patient.json /entry/0/resource/gender",
                     "/MedicationRequest.ndjson:4 /status",
                     "/MedicationRequest.ndjson:5 /dosageInstruction"], where
    assert ing.counts.to_dict() == {"files": 3, "resources": 13, "checked": 9, "ignored": 0, "rejected": 4}


def test_one_pass_edge_cases_found_in_review(tmp_path: Path) -> None:
    """Cases where reading in one pass could have differed from reading everything first."""
    # A rejected line still gives its patient a (clean) record, as any patient named in the input.
    ing = read(mr("a", status=12, subject={"reference": "Patient/zz"}))
    assert [r.ref for r in ing.records] == ["Patient/zz"] and ing.counts.rejected == 1
    # A Patient the index does not keep (same id twice), then a rejected Patient, then an order:
    # the order stays with its own patient (no identity mix-up between freed and new objects).
    p1 = {"resourceType": "Patient", "id": "p1", "birthDate": "1930-01-01", "gender": "female"}
    ing = read(bundle(p1, dict(p1), {"resourceType": "Basic", "id": "b"},
                      {"resourceType": "Patient", "id": "p9", "gender": 3},
                      mr("r9", subject={"reference": "Patient/p9"})))
    assert {r.ref: [o.ref for o in r.medication_orders] for r in ing.records} == {
        "Patient/p1": [], "Patient/p9": ["MedicationRequest/r9"]}
    # The first resource holding a fullUrl keeps it, whatever its type: a later Patient with the
    # same fullUrl in another file is not what the reference meant.
    a = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": mr("a1", subject={"reference": "urn:uuid:2"})},
        {"fullUrl": "urn:uuid:2", "resource": dict(PATIENT, id="pA")}]}
    b = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": dict(PATIENT, id="pB")},
        {"fullUrl": "urn:uuid:2", "resource": mr("b1", subject={"reference": "urn:uuid:1"})}]}
    (tmp_path / "a.json").write_bytes(orjson.dumps(a))
    (tmp_path / "b.json").write_bytes(orjson.dumps(b))
    ing = read(str(tmp_path))
    assert {r.ref: [o.ref for o in r.medication_orders] for r in ing.records} == {
        "Patient/pA": ["MedicationRequest/a1"], "Patient/pB": [], "urn:uuid:1": ["MedicationRequest/b1"]}
    # Malformed CQL extensions on a date: a rejection or no date, never a crash.
    ing = read([mr("x", status=12, _authoredOn={"extension": 5}),
                mr("y", authoredOn=None, _authoredOn={"extension": 5}),
                mr("z", authoredOn=None, _authoredOn={"extension": [
                    {"url": "cqlExpression", "valueString": "Today() - 99999999 days"}]})])
    assert [o.ref for o in orders(ing)] == ["MedicationRequest/y", "MedicationRequest/z"]
    assert all(o.authored_on is None for o in orders(ing))
    assert [e.location for e in ing.errors] == ["<dict> /status"]


def test_every_used_type_is_read_by_assembly() -> None:
    """The types counted as used are exactly the ones assembly extracts, plus the two reference
    targets (Patient, Medication): a type added to one list and not the other would be lost."""
    from checker.fhir_input.assembly import _KINDS

    assert fhir_input.USED_TYPES == frozenset(_KINDS) | {"Patient", "Medication"}
