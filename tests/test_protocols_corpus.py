"""Off-protocol rules on real third-party inputs (../shared; skipped when absent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from checker import check

pytestmark = pytest.mark.corpus
AS_OF = "2026-01-15"


def _lumbar(findings: list) -> list:
    return [f for f in findings if f.evidence.get("protocol") == "HAS-LOMBALGIE-IMAGERIE"]


def test_pama_cases_run_and_lumbar_imaging_is_explained(shared_dir: Path) -> None:
    index = json.loads((shared_dir / "fhir/pama-imaging/sandbox-cds-services-pama-cases.DERIVED.json").read_text())
    lumbar_cases = 0
    for case in index["cases"]:
        report = check(case["request"], as_of=AS_OF, select=["OP"])
        assert not report.errors, (case["name"], report.errors)
        orders = [e["resource"] for e in case["request"]["context"]["draftOrders"]["entry"]]
        is_lumbar_ct = any(c.get("code") == "72133" for o in orders for c in o["code"].get("coding", []))
        found = _lumbar(report.findings)
        if not is_lumbar_ct:
            assert not found, case["name"]
            continue
        lumbar_cases += 1
        # low back pain as reason, no birth date, no onset: the decision hinges on missing data, said as such
        [f] = found
        assert f.rule == "OP001" and f.evidence["applies_to"] == "lumbar-ct"
        assert f.evidence["path"][0] == {"check": "is-lbp", "criterion": "low-back-pain", "answer": "yes"}
        missing = f.to_dict()["evidence"]["missing"]  # codes, worded in the finding's language
        assert "date de début : lombalgie commune" in missing and "date de naissance du patient" in missing
        assert f.severity.value == "info" and "IRM" in f.suggested()["alternative"]
    assert lumbar_cases == 1


def test_pama_connectathon_requests_run(shared_dir: Path) -> None:
    requests = sorted((shared_dir / "fhir/pama-imaging/examples").glob("*-request.json"))
    assert requests
    for path in requests:
        report = check([str(path)], as_of=AS_OF, select=["OP"])
        assert not report.errors, (path.name, report.errors)
    first = check([str(shared_dir / "fhir/pama-imaging/examples/scenario-01-outbound-request.json")], as_of=AS_OF,
                  select=["OP001"])
    assert [f.evidence["branch"] for f in _lumbar(first.findings)] == ["no-onset"]


def test_hl7_service_requests_run(shared_dir: Path) -> None:
    folder = shared_dir / "fhir/hl7-r4-examples/json"
    paths = sorted(str(p) for p in folder.glob("servicerequest-*.json"))
    assert len(paths) == 20
    report = check(paths, as_of=AS_OF, select=["OP"])
    assert not report.errors, report.errors
    by_order = {f.implicated[0]: f for f in report.findings}
    # the free T4 example: a thyroid hormone with no TSH on record
    ft4 = by_order["ServiceRequest/ft4"]
    assert ft4.evidence["protocol"] == "HAS-THYROIDE-TSH-SEULE" and ft4.evidence["branch"] == "first-line"
    # the head CT example gives no reason: no protocol fires on it
    assert "ServiceRequest/example" not in by_order
    assert set(by_order) == {"ServiceRequest/ft4"}


def test_hl7_medication_examples_run(shared_dir: Path) -> None:
    folder = shared_dir / "fhir/hl7-r4-examples/json"
    report = check([str(folder)], as_of=AS_OF, select=["OP"])
    assert report.inputs.resources > 0 and not report.errors, report.errors
    assert all(f.rule in ("OP001", "OP002") for f in report.findings)
