"""CDS Hooks service authentication: EHR-signed JWT (CDS Hooks 2.0, "Trusting CDS Clients")."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from checker.service import ServiceConfig, create_app
from checker.service.auth import AuthError, JwtVerifier
from checker.service.config import AlertPolicy, AuthConfig
from checker.findings import Severity
from tests.test_service import AS_OF, hook_body, is_outcome, med

BASE = "https://cds.example.org"
ISS = "https://ehr.example.org"


@pytest.fixture(scope="module")
def ec_key() -> ECKey:
    return ECKey.generate_key("P-384", parameters={"kid": "ehr-1", "use": "sig", "alg": "ES384"})


@pytest.fixture(scope="module")
def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "ehr-rsa", "use": "sig", "alg": "RS384"})


@pytest.fixture(scope="module")
def refs() -> Any:
    from checker.service.app import load_referentials

    return load_referentials()


def auth_config(tmp_path: Path, *keys: Any) -> AuthConfig:
    jwks = tmp_path / "ehr-jwks.json"
    jwks.write_text(json.dumps({"keys": [k.as_dict(private=False) for k in keys]}), encoding="utf-8")
    return AuthConfig(enabled=True, jwks_file=str(jwks), issuers=(ISS,))


def token(key: Any, *, alg: str = "ES384", aud: Any = f"{BASE}/cds-services/order-sign", iss: str = ISS,
          exp_in: int = 300, iat_shift: int = 0, jti: str | None = None, kid: str | None = None,
          **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": iss, "aud": aud, "exp": now + exp_in, "iat": now + iat_shift, "jti": jti or str(uuid.uuid4()),
               **claims}
    header = {"alg": alg, "typ": "JWT", "kid": kid or key.kid}
    return jwt.encode(header, payload, key, algorithms=[alg])


@pytest.fixture()
def app_client(tmp_path: Path, ec_key: ECKey, rsa_key: RSAKey, refs: Any) -> TestClient:
    cfg = ServiceConfig(base_url=BASE, auth=auth_config(tmp_path, ec_key, rsa_key), feedback_db=str(tmp_path / "f.db"),
                        as_of=AS_OF, sites={"tenant-a": AlertPolicy(severity_overrides={"IX001": Severity.INFO})})
    return TestClient(create_app(cfg, refs=refs))


BODY = hook_body([med("d1", "IBUPROFENE 400 mg comprimé", "draft")], [med("a1", "WARFARINE 5 mg comprimé")])


def call(client: TestClient, tok: str | None, path: str = "/cds-services/order-sign") -> Any:
    headers = {"Authorization": f"Bearer {tok}"} if tok else {}
    return client.post(path, json=BODY, headers=headers)


def test_valid_es384_and_rs384_tokens_are_accepted(app_client: TestClient, ec_key: ECKey, rsa_key: RSAKey) -> None:
    resp = call(app_client, token(ec_key))
    assert resp.status_code == 200 and resp.json()["cards"]
    assert call(app_client, token(rsa_key, alg="RS384")).status_code == 200
    assert call(app_client, token(ec_key, aud=[f"{BASE}/cds-services/order-sign", "other"])).status_code == 200


def test_discovery_needs_a_token_for_its_own_url(app_client: TestClient, ec_key: ECKey) -> None:
    assert app_client.get("/cds-services").status_code == 401
    ok = app_client.get("/cds-services", headers={"Authorization": f"Bearer {token(ec_key, aud=f'{BASE}/cds-services')}"})
    assert ok.status_code == 200 and ok.json()["services"]


@pytest.mark.parametrize(("make", "needle"), [
    (lambda k: None, "missing Authorization"),
    (lambda k: token(k, exp_in=-600, iat_shift=-900), "expired"),
    (lambda k: token(k, aud=f"{BASE}/cds-services/order-select"), "audience"),
    (lambda k: token(k, aud="https://evil.example/cds-services/order-sign"), "audience"),
    (lambda k: token(k, iss="https://unknown-ehr.example"), "allow-list"),
    (lambda k: token(k, kid="nobody"), "signature"),
    (lambda k: token(ECKey.generate_key("P-384", parameters={"kid": "ehr-1"})), "signature"),
    (lambda k: token(OctKey.generate_key(256, parameters={"kid": "ehr-1"}), alg="HS256"), "algorithm"),
    (lambda k: token(k, iat_shift=600, exp_in=900), "future"),
    (lambda k: token(k, exp_in=7200), "lifetime"),
    (lambda k: "not-a-jwt", "malformed"),
])
def test_bad_tokens_get_401(app_client: TestClient, ec_key: ECKey, make: Any, needle: str) -> None:
    resp = call(app_client, make(ec_key))
    assert resp.status_code == 401 and is_outcome(resp)
    assert needle in resp.json()["issue"][0]["diagnostics"]
    assert resp.headers["www-authenticate"] == "Bearer"


def test_replayed_jti_is_refused(app_client: TestClient, ec_key: ECKey) -> None:
    tok = token(ec_key, jti="once")
    assert call(app_client, tok).status_code == 200
    again = call(app_client, tok)
    assert again.status_code == 401 and "replay" in again.json()["issue"][0]["diagnostics"]
    # a new token with the same jti from the same issuer is a replay too
    assert call(app_client, token(ec_key, jti="once")).status_code == 401


def test_feedback_endpoint_is_authenticated(app_client: TestClient, ec_key: ECKey) -> None:
    fb = {"feedback": [{"card": "x", "outcome": "overridden", "outcomeTimestamp": "2026-01-15T10:00:00Z"}]}
    assert app_client.post("/cds-services/order-sign/feedback", json=fb).status_code == 401
    tok = token(ec_key, aud=f"{BASE}/cds-services/order-sign/feedback")
    resp = app_client.post("/cds-services/order-sign/feedback", json=fb, headers={"Authorization": f"Bearer {tok}"})
    assert resp.status_code == 400 and "not issued" in resp.text  # authenticated; card "x" was never issued


def test_per_site_severity_override_follows_the_tenant_claim(app_client: TestClient, ec_key: ECKey) -> None:
    plain = call(app_client, token(ec_key)).json()["cards"]
    site = call(app_client, token(ec_key, tenant="tenant-a")).json()["cards"]
    ix_plain = next(c for c in plain if c["source"]["topic"]["code"] == "interaction")
    ix_site = next(c for c in site if c["source"]["topic"]["code"] == "interaction")
    assert ix_plain["indicator"] in ("warning", "critical") and ix_site["indicator"] == "info"


def test_verifier_configuration_errors(tmp_path: Path, ec_key: ECKey) -> None:
    with pytest.raises(ValueError, match="issuers"):
        JwtVerifier(AuthConfig(jwks={"keys": [ec_key.as_dict(private=False)]}))
    with pytest.raises(ValueError, match="asymmetric"):
        JwtVerifier(AuthConfig(jwks={"keys": []}, issuers=(ISS,), algorithms=("HS256",)))
    with pytest.raises(ValueError, match="not found"):
        JwtVerifier(AuthConfig(jwks_file=str(tmp_path / "nope.json"), issuers=(ISS,)))
    verifier = JwtVerifier(AuthConfig(jwks={"keys": [ec_key.as_dict(private=False)]}, issuers=(ISS,)))
    claims = verifier.verify(f"Bearer {token(ec_key, aud=BASE + '/x')}", BASE + "/x/")
    assert claims["iss"] == ISS
    with pytest.raises(AuthError, match="Bearer"):
        verifier.verify("Basic abc", BASE + "/x")
