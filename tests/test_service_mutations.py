"""Type-mutation test of the hook endpoint: real CDS Hooks requests with one element at a time replaced by a
value of another JSON type are answered 200, 400, 412 or 413 with an OperationOutcome, never a 5xx (issue 6:
"malformed JSON or FHIR -> 400 ... never a 500").

Deterministic (every element, a fixed list of replacements) and fast: the seeds are the app's own example,
a PDDI-era medication-prescribe request, and, when ../shared is present, a few of its CDS Hooks requests."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from checker.service import create_app
from checker.service.app import EXAMPLE_REQUEST
from tests.conftest import SHARED
from tests.test_service import insecure_config, is_outcome, med, searchset

ElementPath = tuple[str | int, ...]

LEGACY_PRESCRIBE: dict[str, Any] = {
    "hook": "medication-prescribe", "hookInstance": "legacy-1",
    "context": {"patientId": "p1", "userId": "Practitioner/1",
                "medications": {"resourceType": "Bundle", "entry": [med("d1", "IBUPROFENE 400 mg", "draft")]},
                "prefetch": {"item1": {"response": {"status": "200 OK"},
                                       "resource": {**searchset(med("a1", "WARFARINE 5 mg comprimé")),
                                                    "link": [{"relation": "self",
                                                              "url": "MedicationRequest?patient=p1"}]}}}},
}
"""PDDI-era layout: drafts in context.medications, prefetch inside context, a DSTU2-style wrapper."""

SHARED_SEEDS = ("fhir/pddi-cds/requests/warfarin-nsaids-order-sign-coordination.json",
                "fhir/pddi-cds/requests/warfarin-nsaids-order-select-coordination.json",
                "fhir/cds-hooks/extracted/examples__03__Radiology-Appropriateness__L139.json")

# What replaces an element: every one of these for an object or an array (the shapes the service walks),
# one of these in turn for a string, a number, a boolean or a null.
OTHER_TYPES: dict[type, list[Any]] = {
    dict: [None, 7, "x", []],
    list: [None, 7, "x", {}],
    str: [7, [], {}],
    int: ["x", {}],
    float: ["x", {}],
    bool: ["x", []],
    type(None): [7, {}],
}


def replacements(value: Any, n: int) -> list[Any]:
    """The values put in place of the ``n``-th element ``value``."""
    others = OTHER_TYPES[type(value)]
    return others if isinstance(value, (dict, list)) else [others[n % len(others)]]


def seeds() -> list[tuple[str, dict[str, Any]]]:
    """(name, request body) of every seed request available here."""
    out = [("EXAMPLE_REQUEST", EXAMPLE_REQUEST), ("legacy medication-prescribe", LEGACY_PRESCRIBE)]
    for rel in SHARED_SEEDS:
        path = SHARED / rel
        if path.is_file():
            body = json.loads(path.read_text(encoding="utf-8-sig"))
            body["context"].setdefault("userId", "Practitioner/1")  # PDDI requests predate the required userId
            out.append((path.name, body))
    return out


def elements(value: Any, path: ElementPath = ()) -> Iterator[tuple[ElementPath, Any]]:
    """Every element below the root, depth first, with its path."""
    if isinstance(value, dict):
        items: list[tuple[str | int, Any]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return
    for key, child in items:
        yield (*path, key), child
        yield from elements(child, (*path, key))


def mutated(body: dict[str, Any], path: ElementPath, new: Any) -> dict[str, Any]:
    out = copy.deepcopy(body)
    parent: Any = out
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = copy.deepcopy(new)
    return out


def service_of(body: dict[str, Any]) -> str:
    hook = body.get("hook")
    return hook if hook in ("order-select", "order-sign", "medication-prescribe") else "order-sign"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    return TestClient(create_app(insecure_config(tmp_path_factory.mktemp("mutations"))),
                      raise_server_exceptions=False)


def answered_cleanly(resp: Any) -> bool:
    if resp.status_code == 200:
        return all(c["indicator"] in ("info", "warning", "critical") and len(c["summary"]) < 140
                   for c in resp.json()["cards"])
    return resp.status_code in (400, 412, 413) and is_outcome(resp)


def test_every_element_replaced_by_another_type_never_gives_a_5xx(client: TestClient) -> None:
    failures: list[str] = []
    sent = 0
    for name, body in seeds():
        service = service_of(body)
        assert client.post(f"/cds-services/{service}", json=body).status_code == 200, name  # a valid seed
        for n, (path, value) in enumerate(elements(body)):
            for new in replacements(value, n):
                resp = client.post(f"/cds-services/{service}", json=mutated(body, path, new))
                sent += 1
                if not answered_cleanly(resp):
                    failures.append(f"{name} {'.'.join(map(str, path))} = {new!r}: HTTP {resp.status_code}")
    assert sent > 200
    assert not failures, f"{len(failures)} of {sent} mutated requests:\n" + "\n".join(failures[:30])


def bundle(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Bundle", **fields}


@pytest.mark.parametrize(("service", "change", "where"), [
    ("order-sign", lambda b: b["context"].update(draftOrders=bundle(entry=True)), "context.draftOrders.entry"),
    ("order-sign", lambda b: b["context"].update(draftOrders=bundle(entry=[], link="x")), "context.draftOrders.link"),
    ("order-sign", lambda b: b["prefetch"].update(medications=bundle(entry=True)), "prefetch.medications.entry"),
    ("order-sign", lambda b: b["prefetch"].update(conditions=bundle(link=5)), "prefetch.conditions.link"),
    ("order-sign", lambda b: b["prefetch"]["medications"]["entry"].append({"resource": bundle(entry=2)}),
     "prefetch.medications.entry[1].resource.entry"),
    ("medication-prescribe", lambda b: b["context"].update(medications=bundle(entry=3)), "context.medications.entry"),
    ("medication-prescribe", lambda b: b["context"]["prefetch"].update(item1=bundle(entry=7)),
     "context.prefetch.item1.entry"),
])
def test_a_bundle_whose_entry_or_link_is_not_an_array_gets_a_400_naming_it(client: TestClient, service: str,
                                                                          change: Any, where: str) -> None:
    body = copy.deepcopy(EXAMPLE_REQUEST if service == "order-sign" else LEGACY_PRESCRIBE)
    change(body)
    resp = client.post(f"/cds-services/{service}", json=body)
    assert resp.status_code == 400 and is_outcome(resp), resp.text
    assert any(i["diagnostics"].startswith(f"{where}: ") for i in resp.json()["issue"]), resp.text
