"""Untrusted servers: the service fetches only from the FHIR servers bound to the caller's issuer in the
configuration (scheme, host, port exact; path on a segment boundary; no userinfo; no redirects), sends the
EHR's bearer token only there, and puts only FHIR ids, URL-encoded, into the URLs it builds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from joserfc.jwk import ECKey

from checker.service import ServiceConfig, create_app
from checker.service.config import FhirFetch
from tests.security_service_helpers import TOKEN, json_answer, loopback_fhir
from tests.test_service import hook_body, insecure_config, is_outcome, med, searchset
from tests.test_service_auth import BASE, ISS, auth_config, token

DRAFT = [med("d1", "IBUPROFENE 400 mg comprimé", "draft")]


@pytest.fixture(scope="module")
def refs() -> Any:
    from checker.service.app import load_referentials

    return load_referentials()


def bind(*bases: str, issuer: str = ISS) -> FhirFetch:
    """The configuration binding ``bases`` to ``issuer``."""
    return FhirFetch(servers={issuer: bases})


def fetching_body(server: str, patient: str = "p1") -> dict[str, Any]:
    body = hook_body(DRAFT, prefetch={}, fhirServer=server, fhirAuthorization=TOKEN)
    body["context"]["patientId"] = patient
    for entry in body["context"]["draftOrders"]["entry"]:  # drafts are about the patient in context
        entry["resource"]["subject"] = {"reference": f"Patient/{patient.rsplit('/', 1)[-1]}"}
    return body


def recorder(seen: list[httpx.Request]) -> httpx.MockTransport:
    def fhir(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=searchset())
    return httpx.MockTransport(fhir)


def test_userinfo_url_does_not_reach_the_loopback_server(tmp_path: Path, refs: Any) -> None:
    """``http://ehr.example.org@127.0.0.1:PORT/fhir`` names host 127.0.0.1 (ehr.example.org is a user
    name): it must not be fetched, and the EHR's token must not leave the service."""
    with loopback_fhir(lambda path: json_answer(searchset())) as (origin, seen):
        port = origin.rsplit(":", 1)[1]
        app = create_app(insecure_config(tmp_path, fhir=bind("http://ehr.example.org")), refs=refs)
        resp = TestClient(app).post("/cds-services/order-sign",
                                    json=fetching_body(f"http://ehr.example.org@127.0.0.1:{port}/fhir"))
    assert resp.status_code == 412 and is_outcome(resp)
    assert seen.requests == []


@pytest.mark.parametrize(("bound", "server"), [
    ("https://ehr.example.org", "https://ehr.example.org.evil.net"),  # a host whose name starts the same
    ("https://ehr.example.org/fhir", "https://ehr.example.org/fhirx"),  # a path prefix not on a segment boundary
    ("https://ehr.example.org/fhir", "https://ehr.example.org:8443/fhir"),  # another port
    ("https://ehr.example.org/fhir", "http://ehr.example.org/fhir"),  # another scheme
    ("https://ehr.example.org/fhir", "https://user:pw@ehr.example.org/fhir"),  # userinfo, even on the right host
    ("https://ehr.example.org/fhir", "https://ehr.example.org/fhir/../admin"),  # dot segments
    ("https://ehr.example.org/fhir", "https://ehr.example.org/fhir/%2e%2e/admin"),
])
def test_look_alike_servers_are_not_called(tmp_path: Path, refs: Any, bound: str, server: str) -> None:
    seen: list[httpx.Request] = []
    app = create_app(insecure_config(tmp_path, fhir=bind(bound)), refs=refs,
                     fhir_transport=recorder(seen))
    resp = TestClient(app).post("/cds-services/order-sign", json=fetching_body(server))
    assert resp.status_code == 412 and is_outcome(resp) and seen == []


@pytest.mark.parametrize("server", ["https://ehr.example.org/fhir", "https://EHR.example.org:443/fhir/",
                                    "https://ehr.example.org/fhir/r4"])
def test_the_bound_server_gets_the_token(tmp_path: Path, refs: Any, server: str) -> None:
    seen: list[httpx.Request] = []
    app = create_app(insecure_config(tmp_path, fhir=bind("https://ehr.example.org/fhir/")), refs=refs,
                     fhir_transport=recorder(seen))
    resp = TestClient(app).post("/cds-services/order-sign", json=fetching_body(server))
    assert resp.status_code == 200, resp.text
    assert seen and {r.url.host for r in seen} == {"ehr.example.org"}
    assert {r.headers["authorization"] for r in seen} == {"Bearer secret-ehr-token"}


def test_nothing_is_fetched_when_no_server_is_configured(tmp_path: Path, refs: Any) -> None:
    seen: list[httpx.Request] = []
    app = create_app(insecure_config(tmp_path, fhir=FhirFetch()), refs=refs, fhir_transport=recorder(seen))
    resp = TestClient(app).post("/cds-services/order-sign", json=fetching_body("https://ehr.example.org/fhir"))
    assert resp.status_code == 412 and is_outcome(resp) and seen == []
    assert "no FHIR server" in resp.text


def test_redirects_are_not_followed(tmp_path: Path, refs: Any) -> None:
    def answer(path: str) -> tuple[int, dict[str, str], bytes]:
        if path.startswith("/fhir/"):
            return 302, {"Location": "/elsewhere/MedicationRequest"}, b""
        return json_answer(searchset())

    with loopback_fhir(answer) as (origin, seen):
        app = create_app(insecure_config(tmp_path, fhir=bind(f"{origin}/fhir")), refs=refs)
        resp = TestClient(app).post("/cds-services/order-sign", json=fetching_body(f"{origin}/fhir"))
    assert resp.status_code == 412 and is_outcome(resp)
    assert seen.requests and all(p.startswith("/fhir/") for p, _ in seen.requests)


@pytest.mark.parametrize("patient", ["p1&_count=99999", "../../admin", "..", "p1 x", "x" * 65, "Patient/../../admin"])
def test_ids_outside_the_fhir_id_syntax_are_refused(tmp_path: Path, refs: Any, patient: str) -> None:
    with loopback_fhir(lambda path: json_answer(searchset())) as (origin, seen):
        app = create_app(insecure_config(tmp_path, fhir=bind(f"{origin}/fhir")), refs=refs)
        resp = TestClient(app).post("/cds-services/order-sign", json=fetching_body(f"{origin}/fhir", patient))
    assert resp.status_code == 400 and is_outcome(resp) and "patientId" in resp.text
    assert seen.requests == []


def test_valid_ids_are_sent_url_encoded_in_their_own_parameter(tmp_path: Path, refs: Any) -> None:
    with loopback_fhir(lambda path: json_answer(searchset())) as (origin, seen):
        app = create_app(insecure_config(tmp_path, fhir=bind(f"{origin}/fhir")), refs=refs)
        resp = TestClient(app).post("/cds-services/order-sign", json=fetching_body(f"{origin}/fhir", "Patient/p-1.2"))
    assert resp.status_code == 200, resp.text
    paths = [p for p, _ in seen.requests]
    assert "/fhir/Patient/p-1.2" in paths
    assert all(httpx.URL(origin + p).params.get("patient") in (None, "p-1.2") for p in paths)
    assert all(len(httpx.URL(origin + p).params.get_list("patient")) <= 1 for p in paths)


def test_each_issuer_reaches_only_its_own_servers(tmp_path: Path, refs: Any) -> None:
    """Two trusted EHRs: a request signed by one cannot make the service call (and hand a token to) the
    other's FHIR server."""
    key = ECKey.generate_key("P-384", parameters={"kid": "ehr-1", "use": "sig", "alg": "ES384"})
    other = "https://other-ehr.example.net"
    auth = auth_config(tmp_path, key)
    auth = type(auth)(enabled=True, jwks_file=auth.jwks_file, issuers=(ISS, other))
    fhir = FhirFetch(servers={ISS: ("https://ehr.example.org/fhir",), other: ("https://fhir.other.example.net/r4",)})
    seen: list[httpx.Request] = []
    cfg = ServiceConfig(base_url=BASE, auth=auth, fhir=fhir, feedback_db=str(tmp_path / "f.db"), as_of="2026-01-15")
    client = TestClient(create_app(cfg, refs=refs, fhir_transport=recorder(seen)))

    def call(iss: str, server: str) -> httpx.Response:
        return client.post("/cds-services/order-sign", json=fetching_body(server),
                           headers={"Authorization": f"Bearer {token(key, iss=iss)}"})

    assert call(other, "https://ehr.example.org/fhir").status_code == 412 and seen == []
    assert call(ISS, "https://fhir.other.example.net/r4").status_code == 412 and seen == []
    assert call(other, "https://fhir.other.example.net/r4").status_code == 200
    assert seen and {r.url.host for r in seen} == {"fhir.other.example.net"}


def test_config_file_binds_servers_to_trusted_issuers(tmp_path: Path) -> None:
    from checker.service import load_config
    from checker.service.config import ConfigError

    path = tmp_path / "service.toml"
    path.write_text('[auth]\nissuers = ["https://ehr.example.org"]\njwks_file = "k.json"\n'
                    '[fhir.servers]\n"https://ehr.example.org" = ["https://ehr.example.org/fhir"]\n', encoding="utf-8")
    cfg = load_config(path)
    assert cfg.fhir.servers == {"https://ehr.example.org": ("https://ehr.example.org/fhir",)}
    for bad, words in [
        ('"https://unknown.example" = ["https://x.example/fhir"]', "not in auth.issuers"),
        ('"https://ehr.example.org" = ["https://u@ehr.example.org/fhir"]', "user"),
        ('"https://ehr.example.org" = ["ftp://ehr.example.org/fhir"]', "http"),
        ('"https://ehr.example.org" = ["https://ehr.example.org/fhir?x=1"]', "query"),
        ('"https://ehr.example.org" = "https://ehr.example.org/fhir"', "list"),
    ]:
        path.write_text('[auth]\nissuers = ["https://ehr.example.org"]\njwks_file = "k.json"\n'
                        f'[fhir.servers]\n{bad}\n', encoding="utf-8")
        with pytest.raises(ConfigError, match=words):
            load_config(path)
    path.write_text('[fhir]\nallowed_servers = ["https://ehr.example.org/fhir"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"fhir\.servers"):
        load_config(path)
