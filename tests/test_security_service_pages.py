"""Prefetch with a next link: a Bundle that says it has more pages is not a complete list. The service
fetches the remaining pages from the FHIR server bound to the caller (bounded), or, when it cannot, answers
as for a list it does not have (412 for the active medications, a "partial check" card for the others).
The fetch path and the prefetch path behave the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from checker.service import create_app
from checker.service.config import FhirFetch
from tests.security_service_helpers import TOKEN, json_answer, loopback_fhir
from tests.test_service import hook_body, insecure_config, is_outcome, med, searchset

DRAFT = [med("d1", "IBUPROFENE 400 mg comprimé", "draft")]
PAGE1 = [med("a1", "PARACETAMOL 1 g comprimé")]
PAGE2 = [med("a2", "WARFARINE 5 mg comprimé")]


@pytest.fixture(scope="module")
def refs() -> Any:
    from checker.service.app import load_referentials

    return load_referentials()


def paged(origin: str, *resources: dict[str, Any], next_url: str | None) -> dict[str, Any]:
    bundle = searchset(*resources)
    bundle["link"] = [{"relation": "self", "url": f"{origin}/fhir/MedicationRequest?patient=p1&status=active"}]
    if next_url:
        bundle["link"].append({"relation": "next", "url": next_url})
    return bundle


def two_pages(where: dict[str, str]):  # noqa: ANN201
    """A server whose active-medication search has two pages (``where["origin"]``: its live origin)."""
    def answer(path: str) -> tuple[int, dict[str, str], bytes]:
        origin = where["origin"]
        if path.startswith("/fhir/MedicationRequest") and "page=2" in path:
            return json_answer(paged(origin, *PAGE2, next_url=None))
        if path.startswith("/fhir/MedicationRequest"):
            return json_answer(paged(origin, *PAGE1, next_url=f"{origin}/fhir/MedicationRequest?page=2"))
        if path.startswith("/fhir/Patient/"):
            return json_answer({"resourceType": "Patient", "id": "p1", "birthDate": "1950-03-02"})
        return json_answer(searchset())
    return answer


def prefetch_with(medications: dict[str, Any] | None, **over: Any) -> dict[str, Any]:
    pre = {"patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1950-03-02", "gender": "female"},
           "medications": medications, "conditions": None, "allergies": None, "renal": None, "weight": None, "pregnancy": None, "results": None}
    return {**pre, **over}


def warfarin_card(resp: Any) -> bool:
    return any("warfarine" in c["summary"].lower() for c in resp.json()["cards"])


def test_prefetched_list_with_a_next_link_is_completed_from_the_bound_server(tmp_path: Path, refs: Any) -> None:
    where: dict[str, str] = {}
    with loopback_fhir(two_pages(where)) as (origin, seen):
        where["origin"] = origin
        pre = prefetch_with(paged(origin, *PAGE1, next_url=f"{origin}/fhir/MedicationRequest?page=2"))
        app = create_app(insecure_config(tmp_path, fhir=FhirFetch(servers={"iss": (f"{origin}/fhir",)})), refs=refs)
        body = hook_body(DRAFT, prefetch=pre, fhirServer=f"{origin}/fhir", fhirAuthorization=TOKEN)
        resp = TestClient(app).post("/cds-services/order-sign", json=body)
    assert resp.status_code == 200, resp.text
    assert warfarin_card(resp)  # the interaction with the drug on page 2 is found
    assert seen.requests and all(auth == "Bearer secret-ehr-token" for _, auth in seen.requests)


def test_prefetched_list_with_a_next_link_and_no_server_is_not_an_all_clear(tmp_path: Path, refs: Any) -> None:
    pre = prefetch_with(paged("https://ehr.example.org", *PAGE1, next_url="https://ehr.example.org/fhir/x?page=2"))
    resp = TestClient(create_app(insecure_config(tmp_path), refs=refs)).post(
        "/cds-services/order-sign", json=hook_body(DRAFT, prefetch=pre))
    assert resp.status_code == 412 and is_outcome(resp)
    assert "next" in resp.text and "medications" in resp.text


def test_next_link_to_another_server_is_not_followed(tmp_path: Path, refs: Any) -> None:
    """The token goes to the bound server only, whatever a prefetched Bundle's next link names."""
    with loopback_fhir(lambda p: json_answer(searchset(*PAGE2))) as (evil, evil_seen):
        with loopback_fhir(lambda p: json_answer(searchset())) as (origin, seen):
            pre = prefetch_with(paged(origin, *PAGE1, next_url=f"{evil}/fhir/MedicationRequest?page=2"))
            app = create_app(insecure_config(tmp_path, fhir=FhirFetch(servers={"iss": (f"{origin}/fhir",)})),
                             refs=refs)
            body = hook_body(DRAFT, prefetch=pre, fhirServer=f"{origin}/fhir", fhirAuthorization=TOKEN)
            resp = TestClient(app).post("/cds-services/order-sign", json=body)
    assert evil_seen.requests == []
    assert resp.status_code in (200, 412)


def test_endless_pages_stop_at_the_page_limit(tmp_path: Path, refs: Any) -> None:
    counter = {"n": 0}

    def endless(path: str) -> tuple[int, dict[str, str], bytes]:
        counter["n"] += 1
        return json_answer(paged(origin, med(f"a{counter['n']}", "PARACETAMOL 1 g comprimé"),
                                 next_url=f"{origin}/fhir/MedicationRequest?page={counter['n'] + 1}"))

    with loopback_fhir(endless) as (origin, seen):
        cfg = insecure_config(tmp_path, fhir=FhirFetch(servers={"iss": (f"{origin}/fhir",)}, max_pages=4))
        pre = prefetch_with(None)
        del pre["medications"]  # not prefetched: fetched, page after page
        body = hook_body(DRAFT, prefetch=pre, fhirServer=f"{origin}/fhir", fhirAuthorization=TOKEN)
        resp = TestClient(create_app(cfg, refs=refs)).post("/cds-services/order-sign", json=body)
    assert resp.status_code == 412 and "4 pages" in resp.text
    assert len([p for p, _ in seen.requests if "MedicationRequest" in p]) == 4


def test_fetch_path_follows_next_links_like_the_prefetch_path(tmp_path: Path, refs: Any) -> None:
    where: dict[str, str] = {}
    with loopback_fhir(two_pages(where)) as (origin, seen):
        where["origin"] = origin
        app = create_app(insecure_config(tmp_path, fhir=FhirFetch(servers={"iss": (f"{origin}/fhir",)})), refs=refs)
        body = hook_body(DRAFT, prefetch={}, fhirServer=f"{origin}/fhir", fhirAuthorization=TOKEN)
        resp = TestClient(app).post("/cds-services/order-sign", json=body)
    assert resp.status_code == 200, resp.text
    assert warfarin_card(resp)


def test_optional_list_with_a_next_link_gives_a_partial_check_card(tmp_path: Path, refs: Any) -> None:
    conditions = {"resourceType": "Bundle", "type": "searchset", "entry": [],
                  "link": [{"relation": "next", "url": "https://ehr.example.org/fhir/Condition?page=2"}]}
    pre = prefetch_with(None, conditions=conditions)
    resp = TestClient(create_app(insecure_config(tmp_path), refs=refs)).post(
        "/cds-services/order-sign", json=hook_body(DRAFT, prefetch=pre))
    assert resp.status_code == 200, resp.text
    partial = [c for c in resp.json()["cards"] if c["source"].get("topic", {}).get("code") == "data-missing"]
    assert partial and ("pathologies" in partial[0]["summary"] or "conditions" in partial[0]["summary"])
