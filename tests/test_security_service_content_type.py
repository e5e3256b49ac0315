"""A body that does not say it is JSON is refused with 415 (Unsupported Media Type), before anything is read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from checker.service import create_app
from tests.test_service import hook_body, insecure_config, is_outcome, med

BODY = orjson.dumps(hook_body([med("d1", "PARACETAMOL 1 g comprimé", "draft")]))


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> TestClient:
    from checker.service.app import load_referentials

    tmp: Path = tmp_path_factory.mktemp("ct")
    return TestClient(create_app(insecure_config(tmp), refs=load_referentials()))


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "text/html",
                                          "multipart/form-data; boundary=x", "application/jsonx", None])
@pytest.mark.parametrize("path", ["/cds-services/order-sign", "/cds-services/order-sign/feedback"])
def test_non_json_content_type_is_415(client: TestClient, content_type: str | None, path: str) -> None:
    headers: dict[str, Any] = {"content-type": content_type} if content_type else {}
    resp = client.post(path, content=BODY, headers=headers)
    assert resp.status_code == 415 and is_outcome(resp)
    assert "application/json" in resp.json()["issue"][0]["diagnostics"]


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8",
                                          "Application/JSON", "application/fhir+json"])
def test_json_content_types_are_accepted(client: TestClient, content_type: str) -> None:
    resp = client.post("/cds-services/order-sign", content=BODY, headers={"content-type": content_type})
    assert resp.status_code == 200, resp.text
