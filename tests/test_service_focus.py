"""The CDS service checks only what concerns the drafts, and says the same as a full check.

Every request below is answered twice: as served (the rules run focused on the drafts, see
``check_records(focus=...)``) and with the focus dropped (every rule on every line, the cards then
filtered to the drafts). The responses must be identical but for the random card uuids. Requests:
each order of each shipped sample in turn drafted over the others (seeded choice of at most three
per file), the load benchmark's request, the discovery example and the specification's R4 examples
of the third-party corpus when present.
"""

from __future__ import annotations

import copy
import random
import sys
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

import checker.service.app as app_module
from checker.service.app import EXAMPLE_REQUEST, create_app
from tests.conftest import REPO, SAMPLES, SHARED
from tests.test_service import insecure_config

ORDER_TYPES = ("MedicationRequest", "ServiceRequest")
CONTEXT_TYPES = {"Condition": "conditions", "AllergyIntolerance": "allergies", "Observation": "renal"}


def _resources(doc: Any) -> list[dict[str, Any]]:
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
        return [e["resource"] for e in doc.get("entry") or () if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    if isinstance(doc, list):
        return [r for r in doc if isinstance(r, dict)]
    return [doc] if isinstance(doc, dict) else []


def _about(resource: dict[str, Any], pid: str) -> dict[str, Any]:
    out = copy.deepcopy(resource)
    for key in ("subject", "patient"):
        if key in out:
            out[key] = {"reference": f"Patient/{pid}"}
    return out


def _sample_requests() -> Iterator[tuple[str, dict[str, Any]]]:
    """Order-sign requests built from the samples: one order drafted, the others prefetched."""
    rnd = random.Random(17)
    for path in sorted(SAMPLES.rglob("*.json")):
        resources = _resources(orjson.loads(path.read_bytes()))
        patient = next((r for r in resources if r.get("resourceType") == "Patient" and r.get("id")), None)
        orders = [r for r in resources if r.get("resourceType") in ORDER_TYPES and r.get("id")]
        if patient is None or not orders:
            continue
        pid = str(patient["id"])
        for draft in orders if len(orders) <= 3 else rnd.sample(orders, 3):
            others = [_about(r, pid) for r in orders if r is not draft]
            prefetch: dict[str, Any] = {"patient": patient, "medications": _searchset(others),
                                        "conditions": None, "allergies": None, "renal": None, "weight": None}
            for rtype, key in CONTEXT_TYPES.items():
                found = [_about(r, pid) for r in resources if r.get("resourceType") == rtype]
                if found:
                    prefetch[key] = _searchset(found)
            drafted = {**_about(draft, pid), "status": "draft"}
            yield (f"{path.relative_to(SAMPLES)}#{draft['id']}", {
                "hook": "order-sign", "hookInstance": "d7f1c0a2-5b7e-4f0e-9d8a-000000000001",
                "context": {"userId": "Practitioner/1", "patientId": pid,
                            "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": drafted}]}},
                "prefetch": prefetch})


def _searchset(resources: list[dict[str, Any]]) -> dict[str, Any] | None:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]} if resources else None


def _other_requests() -> Iterator[tuple[str, str, dict[str, Any]]]:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from service_load import request_body  # type: ignore[import-not-found]

    yield "order-sign", "benchmark", request_body(1)
    yield "order-sign", "discovery example", copy.deepcopy(EXAMPLE_REQUEST)
    examples = SHARED / "fhir" / "cds-hooks" / "extracted"
    for name in ("order-sign__01__Example-R4__L46.json", "order-select__01__Example-R4__L45.json"):
        if (examples / name).is_file():
            yield name.split("__")[0], name, orjson.loads((examples / name).read_bytes())


def _without_uuids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_uuids(v) for k, v in value.items() if k != "uuid"}
    if isinstance(value, list):
        return [_without_uuids(v) for v in value]
    return value


def _answers(client: TestClient, service: str, body: dict[str, Any]) -> tuple[int, Any]:
    resp = client.post(f"/cds-services/{service}", json=body)
    return resp.status_code, _without_uuids(resp.json())


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestClient, TestClient]:
    from checker.service.app import load_referentials

    refs = load_referentials()
    return (TestClient(create_app(insecure_config(tmp_path_factory.mktemp("focused")), refs=refs)),
            TestClient(create_app(insecure_config(tmp_path_factory.mktemp("full")), refs=refs)))


def _compare(clients: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch,
             cases: list[tuple[str, str, dict[str, Any]]]) -> tuple[list[str], int]:
    focused, full = clients
    real = app_module.check_records
    served = [_answers(focused, service, body) for service, _, body in cases]
    monkeypatch.setattr(app_module, "check_records", lambda *a, focus=None, **kw: real(*a, **kw))
    unfocused = [_answers(full, service, body) for service, _, body in cases]
    differ = [name for (_, name, _), a, b in zip(cases, served, unfocused) if a != b]
    cards = sum(len(a[1].get("cards", ())) for a in served if a[0] == 200)
    return differ, cards


def test_cards_about_the_drafts_are_the_same_as_with_a_full_check_on_the_samples(
        clients: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [("order-sign", name, body) for name, body in _sample_requests()]
    differ, cards = _compare(clients, monkeypatch, cases)
    assert len(cases) > 200 and cards > 100  # the requests are checked, and many get cards
    assert not differ, differ[:10]


def test_cards_are_the_same_on_the_benchmark_and_specification_requests(
        clients: tuple[TestClient, TestClient], monkeypatch: pytest.MonkeyPatch) -> None:
    cases = list(_other_requests())
    differ, cards = _compare(clients, monkeypatch, cases)
    assert cards > 0
    assert not differ, differ
