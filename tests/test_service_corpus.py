"""Every CDS Hooks request of the shared corpus (CDS Hooks spec examples, HL7 PDDI CDS IG) against the
service: a 200 with cards, a 412, or a clear 400 with an OperationOutcome; never a 500."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from checker.service import create_app
from tests.conftest import SHARED
from tests.test_service import insecure_config, is_outcome

pytestmark = pytest.mark.corpus

def corpus_files() -> list[Path]:
    """Every file of the corpus that is (or claims to be) a CDS Hooks request."""
    patterns = (("fhir/cds-hooks/extracted", "*.json*"), ("fhir/pddi-cds/requests", "*.json"),
                ("fhir/pddi-cds/artifacts", "*cds-request.json"), ("fhir/pama-imaging/examples", "*request.json"))
    files: list[Path] = []
    for folder, pattern in patterns:
        root = SHARED / folder
        if root.is_dir():
            files += sorted(p for p in root.rglob(pattern) if p.is_file())
    return files


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path) -> TestClient:
    return TestClient(create_app(insecure_config(tmp_path_factory.mktemp("corpus"))), raise_server_exceptions=False)


def service_for(raw: bytes) -> str:
    try:
        hook = json.loads(raw.decode("utf-8-sig")).get("hook")
    except (ValueError, AttributeError):
        hook = None
    return hook if hook in ("order-select", "order-sign", "medication-prescribe") else "order-sign"


def post(client: TestClient, path: Path, user: bool = False) -> Any:
    """POST a corpus file as it is; ``user``: with the ``context.userId`` the PDDI requests lack (they predate
    it being REQUIRED) added."""
    raw = path.read_bytes()
    if user:
        body = json.loads(raw.decode("utf-8-sig"))
        body["context"].setdefault("userId", "Practitioner/1")
        raw = json.dumps(body).encode()
    return client.post(f"/cds-services/{service_for(raw)}", content=raw, headers={"content-type": "application/json"})


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_every_corpus_request_is_answered_cleanly(client: TestClient, path: Path) -> None:
    resp = post(client, path)
    assert resp.status_code in (200, 400, 412), resp.text[:500]
    if resp.status_code == 200:
        for card in resp.json()["cards"]:
            assert len(card["summary"]) < 140 and card["indicator"] in ("info", "warning", "critical")
            assert card["source"]["label"]
    else:
        assert is_outcome(resp)


def test_the_corpus_was_found(shared_dir: Path) -> None:
    names = {p.name for p in corpus_files()}
    assert "warfarin-nsaids-order-sign-coordination.json" in names
    assert "warfarin-nsaids-cds-request.json" in names  # the curl-command file
    assert "order-select__01__Example-R4__L45.json" in names


def test_curl_command_files_get_a_clear_400(client: TestClient, shared_dir: Path) -> None:
    for name in ("warfarin-nsaids", "digoxin-cyclosporine"):
        resp = post(client, shared_dir / "fhir/pddi-cds/artifacts" / name / f"{name}-cds-request.json")
        assert resp.status_code == 400 and "curl command" in resp.json()["issue"][0]["diagnostics"]


def test_dstu2_medication_order_gets_a_clear_400(client: TestClient, shared_dir: Path) -> None:
    path = shared_dir / "fhir/cds-hooks/extracted/examples__01__CDC-Guideline-for-Prescribing-Opioids-fo__L9.json"
    resp = post(client, path)
    assert resp.status_code == 400 and "MedicationOrder is DSTU2" in resp.json()["issue"][0]["diagnostics"]


def test_context_only_spec_fragments_get_a_clear_400(client: TestClient, shared_dir: Path) -> None:
    resp = post(client, shared_dir / "fhir/cds-hooks/extracted/order-sign__01__Example-R4__L46.json")
    assert resp.status_code == 400 and "hook" in json.dumps(resp.json())


@pytest.mark.parametrize("name", ["request-warfarin-nsaid-scenario-02.json"])
def test_warfarin_plus_nsaid_gives_an_interaction_card(client: TestClient, shared_dir: Path, name: str) -> None:
    """PDDI IG warfarin + oral ibuprofen, in its legacy layout (scenario 01 is a topical diclofenac gel,
    whose systemic interaction is a matter for the identification and interaction rules). Its
    context.patientId (``Patient/patient-warfarin-…``) names another patient than the drafts' subject
    (``Patient/warfarin-…``): as published it gets a 400; with the patientId the drafts name, a card."""
    path = shared_dir / "fhir/pddi-cds/requests" / name
    resp = post(client, path, user=True)
    assert resp.status_code == 400 and "another patient" in resp.text
    body = json.loads(path.read_text(encoding="utf-8-sig"))
    body["context"].update(userId="Practitioner/1", patientId="warfarin-nsaid-over65-prefetch")
    resp = client.post("/cds-services/medication-prescribe", json=body)
    assert resp.status_code == 200
    ix = [c for c in resp.json()["cards"] if c["source"]["topic"]["code"] == "interaction"]
    assert ix and any("warfarine" in c["summary"].lower() for c in ix)
    assert all("ANSM" in c["source"]["label"] for c in ix)


def test_warfarin_plus_ketorolac_order_sign_gives_an_interaction_card(client: TestClient, shared_dir: Path) -> None:
    resp = post(client, shared_dir / "fhir/pddi-cds/requests/warfarin-nsaids-order-sign-coordination.json", user=True)
    assert resp.status_code == 200
    cards = [c for c in resp.json()["cards"] if c["source"]["topic"]["code"] == "interaction"]
    # ketorolac joins the thesaurus NSAID class through its oral ATC code (M01AB15): warfarin + NSAID is AD
    assert cards and all(c["indicator"] == "warning" for c in cards)


def test_imaging_order_without_prefetch_is_checked_and_says_what_is_missing(client: TestClient,
                                                                          shared_dir: Path) -> None:
    resp = post(client, shared_dir / "fhir/pama-imaging/examples/scenario-01-outbound-request.json")
    assert resp.status_code == 200
    missing = [c for c in resp.json()["cards"] if c["source"]["topic"]["code"] == "data-missing"]
    assert len(missing) == 1 and "patient" in missing[0]["detail"] and len(missing[0]["summary"]) < 140


def test_request_without_active_orders_gets_412(client: TestClient, shared_dir: Path) -> None:
    resp = post(client, shared_dir / "fhir/pddi-cds/requests/request-digoxin-cyclosporine-scenario-01.json", user=True)
    assert resp.status_code == 412 and "medications" in json.dumps(resp.json())
