"""Defects found by a fresh-eyes review of the FHIR boundary: each test failed before its fix."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson

import cli
from checker import check
from checker.fhir_input import read
from tests.test_cli import run
from tests.test_ingest import PATIENT, bundle, mr

SIMVA, CLARI = "simvastatine 20 mg comprimé", "clarithromycine 500 mg comprimé"
FHIR_NS = 'xmlns="http://hl7.org/fhir"'


def _anonymous(text: str) -> dict:
    res = mr("x", text)
    del res["id"]
    return res


def test_a_line_without_id_keeps_its_fingerprint_wherever_it_is_read(tmp_path: Path) -> None:
    """Draft orders and NDJSON lines without id used to be named by file and line: the same
    interaction got another fingerprint in another file, on another line, or from stdin."""
    lines = [orjson.dumps(_anonymous(SIMVA)), orjson.dumps(_anonymous(CLARI))]
    (tmp_path / "a.ndjson").write_bytes(b"\n".join(lines) + b"\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "b.ndjson").write_bytes(b"\n".join([orjson.dumps(PATIENT), lines[1], lines[0]]) + b"\n")
    a = check(str(tmp_path / "a.ndjson"), as_of="2026-01-15", select=["IX001"])
    b = check(str(tmp_path / "b"), as_of="2026-01-15", select=["IX001"])
    (fa,), (fb,) = a.findings, b.findings
    assert fa.fingerprint == fb.fingerprint and fa.implicated == fb.implicated
    assert all(ref.startswith("MedicationRequest@sha256:") and " " not in ref for ref in fa.implicated)
    assert sorted(fb.evidence["located_at"].values()) == [f"{tmp_path / 'b' / 'b.ndjson'}:{n}" for n in (2, 3)]
    from checker.formats import render

    [issue] = [e["resource"] for e in orjson.loads(render(a, "fhir"))["entry"]
               if e["resource"]["resourceType"] == "DetectedIssue"]
    assert all("reference" not in r and r["display"].startswith("MedicationRequest@") for r in issue["implicated"])


def test_an_xml_bundle_with_one_bad_entry_keeps_the_others(tmp_path: Path) -> None:
    def order(rid: str, text: str) -> str:
        return (f'<entry><resource><MedicationRequest><id value="{rid}"/><status value="active"/>'
                f'<intent value="order"/><medicationCodeableConcept><text value="{text}"/></medicationCodeableConcept>'
                f'<subject><reference value="Patient/p1"/></subject><authoredOn value="2026-01-10"/>'
                f'</MedicationRequest></resource></entry>')

    bad = ('<entry><resource><Observation><id value="o"/><status value="final"/><code><text value="x"/></code>'
           '<valueQuantity><value value="abc"/></valueQuantity></Observation></resource></entry>')
    xml = (f'<Bundle {FHIR_NS}><type value="collection"/><entry><resource><Patient><id value="p1"/></Patient>'
           f'</resource></entry>{order("s", SIMVA)}{order("c", CLARI)}{bad}</Bundle>')
    (tmp_path / "b.xml").write_text(xml)
    report = check(str(tmp_path / "b.xml"), as_of="2026-01-15", select=["IX001"])
    assert (report.inputs.checked, report.inputs.rejected) == (3, 1)
    (error,) = report.errors
    assert "/entry/3" in error.location and "abc" in error.message
    assert [f.level for f in report.findings] == ["CI"]


def test_an_unknown_xml_root_is_an_error_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "foo.xml").write_text(f'<Foo {FHIR_NS}><id value="x"/></Foo>')
    (tmp_path / "ok.json").write_bytes(orjson.dumps(bundle(PATIENT, mr("a"))))
    ing = read(str(tmp_path))
    (error,) = ing.errors
    assert "foo.xml" in error.location and "unknown FHIR resource type <Foo>" in error.message
    assert ing.counts.checked == 2 and ing.counts.balanced()


def test_gzip_on_standard_input(tmp_path: Path) -> None:
    data = gzip.compress(b"\n".join(orjson.dumps(r) for r in (PATIENT, mr("s", SIMVA), mr("c", CLARI))))
    from click.testing import CliRunner

    result = CliRunner().invoke(cli.main, ["check", "-", "--format", "json", "--as-of", "2026-01-15"], input=data)
    out = orjson.loads(result.output)
    assert out["inputs"]["checked"] == 3 and not out["errors"] and result.exit_code == 1  # the CI pair


def test_output_to_a_folder_and_a_malformed_date_are_usage_errors(tmp_path: Path) -> None:
    sample = str(tmp_path / "in.json")
    Path(sample).write_bytes(orjson.dumps(bundle(PATIENT, mr("a"))))
    result = CliRunner_invoke("check", sample, "-o", str(tmp_path))
    assert result.exit_code == 2 and "cannot write" in result.output
    result = CliRunner_invoke("check", sample, "--as-of", "2026-01-15garbage")
    assert result.exit_code == 2 and "not a date" in result.output
    assert run("check", sample, "--as-of", "2026-01-15T10:00:00").exit_code == 0


def CliRunner_invoke(*args: str):  # type: ignore[no-untyped-def]  # noqa: N802
    from click.testing import CliRunner

    return CliRunner().invoke(cli.main, list(args))


def test_a_local_hash_patient_reference_names_the_patient_entry_of_its_own_file(tmp_path: Path) -> None:
    """French ePrescription bundles write subject "#patient-x" for a Patient entry of the Bundle."""
    for name, birth in (("one", "1940-01-01"), ("two", "1990-01-01")):
        p = {**PATIENT, "id": "px", "birthDate": birth}
        orders = [mr(r, t, subject={"reference": "#px"}) for r, t in ((f"{name}-s", SIMVA), (f"{name}-c", CLARI))]
        (tmp_path / f"{name}.json").write_bytes(orjson.dumps(bundle(p, *orders)))
    ing = read(str(tmp_path))
    assert sorted(r.ref for r in ing.records) == ["Patient/px"]  # both files name Patient/px: one patient
    (tmp_path / "two.json").unlink()
    (tmp_path / "three.json").write_bytes(orjson.dumps(bundle(mr("t-s", SIMVA, subject={"reference": "#nobody"}))))
    (tmp_path / "four.json").write_bytes(orjson.dumps(bundle(mr("f-s", SIMVA, subject={"reference": "#nobody"}))))
    refs = sorted(r.ref for r in read(str(tmp_path)).records)
    assert refs == ["#nobody", "#nobody", "Patient/px"]  # unresolved local ids of two files stay two patients
    one = [r for r in read(str(tmp_path)).records if r.ref == "Patient/px"][0]
    assert one.patient is not None and one.patient.birth_date is not None and len(one.medication_orders) == 2


def test_a_url_encoded_conditional_reference_is_resolved() -> None:
    patient = {**PATIENT, "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "NIR1"}]}
    enc = "Patient?identifier=urn%3Aoid%3A1.2.250.1.213.1.4.8%7CNIR1"
    ing = read([bundle(patient, mr("s", SIMVA), mr("c", CLARI, subject={"reference": enc}))])
    assert [r.ref for r in ing.records] == ["Patient/p1"] and len(ing.records[0].medication_orders) == 2


def test_strict_validates_medications_too() -> None:
    bad = {"resourceType": "Medication", "id": "m", "code": {"coding": "bad"}}
    assert read([bad]).counts.checked == 1
    strict = read([bad], strict=True)
    assert strict.counts.rejected == 1 and "Medication" in strict.errors[0].message


def test_a_bad_element_of_a_referenced_medication_is_located_in_that_medication(tmp_path: Path) -> None:
    med = {"resourceType": "Medication", "id": "mbad", "code": {"text": "x"},
           "ingredient": [{"itemCodeableConcept": {"text": "x"}, "strength": {"numerator": {"value": "abc"}}}]}
    (tmp_path / "Medication.ndjson").write_bytes(orjson.dumps(med) + b"\n")
    order = mr("o", medicationReference={"reference": "Medication/mbad"})
    del order["medicationCodeableConcept"]
    (tmp_path / "MedicationRequest.ndjson").write_bytes(orjson.dumps(order) + b"\n")
    (error,) = read(str(tmp_path)).errors
    assert error.location.startswith(str(tmp_path / "Medication.ndjson") + ":1 /ingredient/0/strength/numerator")
    assert "MedicationRequest.ndjson:1" in error.message
    contained = {**order, "contained": [{**med, "id": "c1"}], "medicationReference": {"reference": "#c1"}}
    (error,) = read([contained]).errors
    assert "/contained/0/ingredient/0/strength/numerator" in error.location


def test_dispense_dosage_errors_name_dosage_instruction() -> None:
    dispense = {"resourceType": "MedicationDispense", "id": "d", "status": "completed",
                "medicationCodeableConcept": {"text": SIMVA}, "subject": {"reference": "Patient/p1"},
                "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": "abc"}}]}]}
    errors = read([dispense]).errors
    assert errors and "/dosageInstruction/0" in errors[0].location


def test_identical_lines_without_id_in_one_file_stay_two_lines(tmp_path: Path) -> None:
    """Named by content, two identical orders of one file must not merge into one: that duplicate is
    what DU001 is for. The same order read from two files is one line."""
    zolpidem = _anonymous("zolpidem 10 mg comprimé")
    (tmp_path / "a.json").write_bytes(orjson.dumps(bundle(PATIENT, zolpidem, dict(zolpidem))))
    report = check(str(tmp_path / "a.json"), as_of="2026-01-15", select=["DU001"])
    (f,) = report.findings
    assert len(set(f.implicated)) == 2 and f.implicated[1] == f.implicated[0] + "-2"
    (tmp_path / "b.json").write_bytes(orjson.dumps(bundle(PATIENT, zolpidem)))
    both = check(str(tmp_path), as_of="2026-01-15", select=["DU001"])
    assert [x.implicated for x in both.findings] == [f.implicated]
