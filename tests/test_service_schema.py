"""The service publishes an OpenAPI schema, and a bounded schemathesis run against it finds no 500."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from checker.service import create_app
from tests.test_service import insecure_config

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

_APP = create_app(insecure_config(Path(tempfile.mkdtemp(prefix="pertinence-schema-"))))
schema = schemathesis.openapi.from_asgi("/openapi.json", _APP)


def test_openapi_schema_is_published() -> None:
    doc = TestClient(_APP).get("/openapi.json").json()
    paths = doc["paths"]
    assert {"/cds-services", "/cds-services/{service_id}", "/cds-services/{service_id}/feedback"} <= set(paths)
    body = paths["/cds-services/{service_id}"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"hook", "hookInstance", "context"} <= set(body["required"])
    assert "412" in paths["/cds-services/{service_id}"]["post"]["responses"]


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_error_on_generated_requests(case: schemathesis.Case) -> None:
    if case.path_parameters is not None and "service_id" in case.path_parameters:
        # half of the calls aim at the real services (arbitrary ids only exercise the 404 path)
        if sum(map(ord, str(case.path_parameters["service_id"]))) % 2 == 0:
            case.path_parameters["service_id"] = "order-sign"
    response = case.call()
    assert response.status_code < 500, response.text[:500]
    if response.status_code >= 400:
        assert response.json()["resourceType"] == "OperationOutcome"
