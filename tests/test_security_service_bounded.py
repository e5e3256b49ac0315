"""Bounded cost of a CDS request: admission limits on the number of orders (a clear 413 before any
work), and a check that stops at its deadline (no work continues after the 503). Memory and time
figures: ``python benchmarks/service_bounded.py``."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from checker.service import create_app
from checker.service.config import Limits
from tests.test_service import hook_body, insecure_config, is_outcome, med

COMMON = ["AMLODIPINE 5 mg comprimé", "ATORVASTATINE 20 mg comprimé", "METFORMINE 850 mg comprimé",
          "WARFARINE 5 mg comprimé", "IBUPROFENE 400 mg comprimé", "SIMVASTATINE 20 mg comprimé"]


@pytest.fixture(scope="module")
def refs() -> Any:
    from checker.service.app import load_referentials

    return load_referentials()


def test_too_many_draft_orders_are_refused_before_any_work_and_the_next_request_is_normal(
        tmp_path: Path, refs: Any) -> None:
    """The reported request: 4,900 draft orders, under the body and resource limits."""
    with TestClient(create_app(insecure_config(tmp_path), refs=refs)) as client:
        many = hook_body([med(f"d{i}", COMMON[i % len(COMMON)], "draft") for i in range(4900)])
        resp = client.post("/cds-services/order-sign", json=many)
        assert resp.status_code == 413 and is_outcome(resp)
        assert "draft orders" in resp.json()["issue"][0]["diagnostics"]
        normal = client.post("/cds-services/order-sign",
                             json=hook_body([med("d1", "IBUPROFENE 400 mg comprimé", "draft")],
                                            [med("a1", "WARFARINE 5 mg comprimé")]))
        assert normal.status_code == 200 and normal.json()["cards"]


def test_draft_order_limit_is_configurable(tmp_path: Path, refs: Any) -> None:
    cfg = insecure_config(tmp_path, limits=Limits(max_draft_orders=3))
    client = TestClient(create_app(cfg, refs=refs))
    drafts = [med(f"d{i}", "PARACETAMOL 1 g comprimé", "draft") for i in range(4)]
    resp = client.post("/cds-services/order-sign", json=hook_body(drafts))
    assert resp.status_code == 413 and "3 draft orders" in resp.json()["issue"][0]["diagnostics"]
    assert client.post("/cds-services/order-sign", json=hook_body(drafts[:3])).status_code == 200


def test_too_many_orders_in_the_patient_record_are_refused(tmp_path: Path, refs: Any) -> None:
    cfg = insecure_config(tmp_path, limits=Limits(max_orders=50))
    client = TestClient(create_app(cfg, refs=refs))
    active = [med(f"a{i}", COMMON[i % len(COMMON)]) for i in range(60)]
    resp = client.post("/cds-services/order-sign",
                       json=hook_body([med("d1", "IBUPROFENE 400 mg comprimé", "draft")], active))
    assert resp.status_code == 413 and is_outcome(resp)
    assert "50 orders" in resp.json()["issue"][0]["diagnostics"]


def test_default_limits_refuse_what_cannot_be_checked_in_time(tmp_path: Path, refs: Any) -> None:
    """250 drafts (within the body and resource limits) are over the default draft-order limit."""
    client = TestClient(create_app(insecure_config(tmp_path), refs=refs))
    resp = client.post("/cds-services/order-sign",
                       json=hook_body([med(f"d{i}", COMMON[i % len(COMMON)], "draft") for i in range(250)]))
    assert resp.status_code == 413 and is_outcome(resp)


def test_the_check_stops_at_its_deadline(tmp_path: Path, refs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Forty rules of 0.1 s each, a 0.3 s deadline: after the 503, no rule starts any more."""
    import checker.api as api
    from checker.registry import select_rules

    calls: list[str] = []
    real = select_rules()[0]

    def slow(call: Any) -> list[Any]:
        calls.append(call.rule.id)
        time.sleep(0.1)
        return []

    fakes = [dataclasses.replace(real, id=f"ZZ{i:03d}", func=slow, triggers=None) for i in range(40)]  # run always
    monkeypatch.setattr(api, "select_rules", lambda *a, **k: fakes)
    cfg = insecure_config(tmp_path, limits=Limits(timeout_seconds=0.3))
    with TestClient(create_app(cfg, refs=refs)) as client:
        resp = client.post("/cds-services/order-sign", json=hook_body([med("d1", "PARACETAMOL 1 g comprimé", "draft")]))
        assert resp.status_code == 503 and is_outcome(resp)
        time.sleep(1.0)
        after_answer = len(calls)
        time.sleep(0.6)
        assert len(calls) == after_answer < 40


def test_a_long_rule_stops_at_its_deadline_too(tmp_path: Path, refs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """One rule with thousands of pairs (4 s of findings): the check stops inside it, not at its end."""
    import checker.api as api
    from checker.registry import select_rules

    produced: list[int] = []
    real = select_rules()[0]

    def many_pairs(call: Any) -> Any:
        for i in range(400):
            time.sleep(0.01)
            produced.append(i)
            yield object()

    monkeypatch.setattr(api, "select_rules", lambda *a, **k: [dataclasses.replace(real, func=many_pairs, triggers=None)])
    cfg = insecure_config(tmp_path, limits=Limits(timeout_seconds=0.3))
    with TestClient(create_app(cfg, refs=refs)) as client:
        resp = client.post("/cds-services/order-sign", json=hook_body([med("d1", "PARACETAMOL 1 g comprimé", "draft")]))
        assert resp.status_code == 503 and is_outcome(resp)
        time.sleep(1.0)
        after_answer = len(produced)
        time.sleep(0.6)
        assert len(produced) == after_answer < 400


def test_fetched_orders_count_toward_the_order_limit(tmp_path: Path, refs: Any) -> None:
    import httpx

    from tests.security_service_helpers import TOKEN
    from tests.test_service import searchset

    active = [med(f"a{i}", COMMON[i % len(COMMON)]) for i in range(60)]
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json=searchset(*active)
                                                             if r.url.path.endswith("/MedicationRequest")
                                                             else searchset()))
    cfg = insecure_config(tmp_path, limits=Limits(max_orders=50))
    client = TestClient(create_app(cfg, refs=refs, fhir_transport=transport))
    body = hook_body([med("d1", "IBUPROFENE 400 mg comprimé", "draft")], prefetch={},
                     fhirServer="https://ehr.example.org/fhir", fhirAuthorization=TOKEN)
    resp = client.post("/cds-services/order-sign", json=body)
    assert resp.status_code == 413 and "50 orders" in resp.json()["issue"][0]["diagnostics"]
