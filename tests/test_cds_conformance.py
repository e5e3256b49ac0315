"""CDS Hooks conformance, clause by clause (docs/cds-hooks.md lists each clause and the test that shows it).

Specification: cds-hooks/docs, ``docs/specification/current.md`` (CDS Hooks 2.0) and the hook pages
``docs/hooks/order-select.md`` / ``order-sign.md``. The first part uses synthetic requests; the second sends
the specification's own examples and the HL7 PDDI-CDS requests of the shared corpus (skipped when
``../shared`` is absent).
"""

from __future__ import annotations

import copy
import json
import re
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from checker.findings import Severity
from checker.formats import cds_hooks, codes
from checker.service import create_app, feedback_stats
from checker.service.feedback import FeedbackLimits
from tests.test_service import finding, hook_body, insecure_config, is_outcome, med, refs, report, searchset

__all__ = ["refs"]

WARFARIN = "WARFARINE 5 mg comprimé"
IBUPROFEN = "IBUPROFENE 400 mg comprimé"


@pytest.fixture()
def client(tmp_path: Path, refs: Any) -> TestClient:
    return TestClient(create_app(insecure_config(tmp_path), refs=refs))


def _interaction_body(hook: str = "order-sign") -> dict[str, Any]:
    return hook_body([med("d1", IBUPROFEN, "draft")], [med("a1", WARFARIN)], hook=hook)


def _diag(resp: Any) -> str:
    return json.dumps(resp.json(), ensure_ascii=False)


# --- card identity (Card Attributes: uuid; Extensions) -------------------------------------------------


def test_each_card_of_each_response_has_a_fresh_uuid_and_a_stable_fingerprint(client: TestClient) -> None:
    body = _interaction_body()
    first = client.post("/cds-services/order-sign", json=body).json()["cards"]
    again = client.post("/cds-services/order-sign", json=body).json()["cards"]
    assert first and len(first) == len(again)
    assert not {c["uuid"] for c in first} & {c["uuid"] for c in again}
    for c in first:
        uuid.UUID(c["uuid"])
    fps = [c["extension"][codes.CARD_EXTENSION]["fingerprint"] for c in first]
    assert fps == [c["extension"][codes.CARD_EXTENSION]["fingerprint"] for c in again]
    sugg = [s["uuid"] for c in first for s in c.get("suggestions", [])]
    assert not set(sugg) & {s["uuid"] for c in again for s in c.get("suggestions", [])}


def test_partial_check_card_uuid_differs_between_patients_and_every_card_is_logged(tmp_path: Path, refs: Any) -> None:
    cfg = insecure_config(tmp_path)
    c = TestClient(create_app(cfg, refs=refs))
    issued = []
    for pid in ("p1", "p2"):
        body = hook_body([med("d1", "PARACETAMOL 500 mg comprimé", "draft", patient=pid)])
        body["context"]["patientId"] = pid
        body["prefetch"]["patient"]["id"] = pid
        del body["prefetch"]["allergies"]
        [card] = c.post("/cds-services/order-sign", json=body).json()["cards"]
        assert card["source"]["topic"]["code"] == "data-missing"
        issued.append(card["uuid"])
    assert issued[0] != issued[1]
    with sqlite3.connect(cfg.feedback_db) as conn:
        logged = {r[0] for r in conn.execute("SELECT uuid FROM cards")}
    assert set(issued) <= logged


# --- order-select: selections (hook page, Context) ---------------------------------------------------


def test_order_select_without_selections_is_400(client: TestClient) -> None:
    body = _interaction_body("order-select")
    resp = client.post("/cds-services/order-select", json=body)
    assert resp.status_code == 400 and is_outcome(resp) and "selections" in _diag(resp)


def test_order_select_with_selections_naming_no_draft_is_400(client: TestClient) -> None:
    body = _interaction_body("order-select")
    body["context"]["selections"] = ["MedicationRequest/nope"]
    resp = client.post("/cds-services/order-select", json=body)
    assert resp.status_code == 400 and "MedicationRequest/nope" in _diag(resp)


def test_order_select_never_alerts_on_orders_the_user_did_not_select(client: TestClient) -> None:
    drafts = [med("d1", IBUPROFEN, "draft"), med("d2", "KETOPROFENE 100 mg comprimé", "draft")]
    body = hook_body(drafts, [med("a1", WARFARIN)], hook="order-select")
    body["context"]["selections"] = ["MedicationRequest/d2"]
    cards = client.post("/cds-services/order-select", json=body).json()["cards"]
    assert cards
    for c in cards:
        assert "MedicationRequest/d1" not in json.dumps(c.get("suggestions", []))
        assert "d1" not in c["extension"][codes.CARD_EXTENSION].get("drafts", [])


# --- request validation (Calling a CDS Service; hook context) -----------------------------------------


def test_a_draft_for_another_patient_is_400(client: TestClient) -> None:
    body = hook_body([med("d1", IBUPROFEN, "draft", patient="someone-else")], [med("a1", WARFARIN)])
    resp = client.post("/cds-services/order-sign", json=body)
    assert resp.status_code == 400 and "someone-else" in _diag(resp)


def test_a_draft_subject_with_history_or_absolute_url_of_the_same_patient_is_accepted(client: TestClient) -> None:
    for subject in ("Patient/p1/_history/3", "https://ehr.example.org/fhir/Patient/p1"):
        d = med("d1", IBUPROFEN, "draft")
        d["subject"] = {"reference": subject}
        body = hook_body([d], [med("a1", WARFARIN)])
        assert client.post("/cds-services/order-sign", json=body).status_code == 200, subject


def test_fhir_authorization_without_fhir_server_is_400(client: TestClient) -> None:
    body = _interaction_body()
    body["fhirAuthorization"] = {"access_token": "t", "token_type": "Bearer", "expires_in": 300,
                                 "scope": "user/Patient.read", "subject": "cds"}
    resp = client.post("/cds-services/order-sign", json=body)
    assert resp.status_code == 400 and "fhirServer" in _diag(resp)


@pytest.mark.parametrize("field", ["userId", "patientId"])
def test_missing_user_or_patient_id_is_400(client: TestClient, field: str) -> None:
    body = _interaction_body()
    del body["context"][field]
    resp = client.post("/cds-services/order-sign", json=body)
    assert resp.status_code == 400 and f"context.{field}" in _diag(resp)


def test_prefetch_operation_outcome_is_named_as_the_ehrs_error(client: TestClient) -> None:
    body = _interaction_body()
    body["prefetch"]["medications"] = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "timeout", "diagnostics": "query timed out on the EHR"}]}
    resp = client.post("/cds-services/order-sign", json=body)
    assert resp.status_code == 412
    text = _diag(resp)
    assert "OperationOutcome" in text and "query timed out on the EHR" in text and "not prefetched" not in text


# --- discovery and language -----------------------------------------------------------------------------


def test_discovery_declares_usage_requirements(client: TestClient) -> None:
    services = client.get("/cds-services").json()["services"]
    for s in services:
        assert s["usageRequirements"] and "medications" in s["usageRequirements"]


def test_accept_language_gives_english_cards_reasons_and_discovery(client: TestClient) -> None:
    en = {"Accept-Language": "en-GB,en;q=0.9,fr;q=0.5"}
    cards = client.post("/cds-services/order-sign", json=_interaction_body(), headers=en).json()["cards"]
    ix = next(c for c in cards if c["source"]["topic"]["code"] == "interaction")
    assert ix["overrideReasons"][0]["display"].startswith("Expected benefit") and "**Source**" in ix["detail"]
    fr = client.post("/cds-services/order-sign", json=_interaction_body(), headers={"Accept-Language": "fr"}).json()
    ix_fr = next(c for c in fr["cards"] if c["source"]["topic"]["code"] == "interaction")
    assert ix_fr["overrideReasons"][0]["display"].startswith("Bénéfice")
    resp = client.get("/cds-services", headers=en)
    assert resp.headers["content-language"] == "en" and "accept-language" in resp.headers["vary"].lower()
    d_en = resp.json()["services"]
    d_fr = client.get("/cds-services", headers={"Accept-Language": "fr-FR"}).json()["services"]
    assert d_en[0]["description"] != d_fr[0]["description"] and d_en[0]["title"] != d_fr[0]["title"]
    assert "Vérifie" in d_fr[0]["description"] or "Contrôle" in d_fr[0]["description"]


@pytest.mark.parametrize(("header", "expected"), [
    ("en", "en"), ("en-US,en;q=0.9", "en"), ("fr-FR,en;q=0.8", "fr"), ("de,en;q=0.5,fr;q=0.4", "en"),
    ("en;q=0,fr", "fr"), ("de", "es-default"), ("*", "es-default"), ("", "es-default"), (None, "es-default"),
    ("fr;q=0.5,en;q=0.5", "fr"), ("en;q=abc,fr;q=0.1", "fr"),
])
def test_accept_language_negotiation(header: str | None, expected: str) -> None:
    from checker.service.app import request_lang

    assert request_lang(header, "es-default") == expected


def test_configured_language_is_the_default(tmp_path: Path, refs: Any) -> None:
    from dataclasses import replace

    c = TestClient(create_app(replace(insecure_config(tmp_path), lang="en"), refs=refs))
    cards = c.post("/cds-services/order-sign", json=_interaction_body()).json()["cards"]
    assert cards[0]["overrideReasons"][0]["display"].startswith("Expected")


# --- suggestions outside a hook (check --format cds-hooks) --------------------------------------------


def test_outside_a_hook_no_delete_is_suggested_for_active_orders() -> None:
    ci = finding(severity=Severity.CRITICAL, level="CI")
    [card] = cds_hooks.cards(report(ci))
    assert not [a for s in card.get("suggestions", []) for a in s["actions"] if a["type"] == "delete"]


def test_delete_suggestions_name_the_drug(client: TestClient) -> None:
    body = hook_body([med("d1", "CLARITHROMYCINE 500 mg comprimé", "draft")], [med("a1", "SIMVASTATINE 20 mg comprimé")])
    cards = client.post("/cds-services/order-sign", json=body).json()["cards"]
    deletes = [s for c in cards for s in c.get("suggestions", []) if s["actions"][0]["type"] == "delete"]
    assert deletes
    for s in deletes:
        assert s["actions"][0]["resourceId"] == "MedicationRequest/d1" and "CLARITHROMYCINE" in s["label"]


# --- feedback (Feedback; OverrideReason; Coding) --------------------------------------------------------


def _issue_card(c: TestClient, *, with_suggestion: bool = False) -> dict[str, Any]:
    if with_suggestion:
        body = hook_body([med("d1", "CLARITHROMYCINE 500 mg comprimé", "draft")],
                         [med("a1", "SIMVASTATINE 20 mg comprimé")])
    else:
        body = _interaction_body()
    cards = c.post("/cds-services/order-sign", json=body).json()["cards"]
    return next(x for x in cards if x.get("suggestions") or not with_suggestion)


def _fb(card: str, **kw: Any) -> dict[str, Any]:
    return {"feedback": [{"card": card, "outcome": "overridden", "outcomeTimestamp": "2026-01-15T10:00:00Z", **kw}]}


@pytest.mark.parametrize("ts", ["2026-01-15T10:00:00", "2026-01-15", "2026-01-15 10:00", "yesterday"])
def test_feedback_timestamp_needs_rfc3339_with_a_zone(client: TestClient, ts: str) -> None:
    card = _issue_card(client)
    resp = client.post("/cds-services/order-sign/feedback", json=_fb(card["uuid"], outcomeTimestamp=ts))
    assert resp.status_code == 400 and "outcomeTimestamp" in _diag(resp)
    ok = client.post("/cds-services/order-sign/feedback", json=_fb(card["uuid"], outcomeTimestamp="2026-01-15T10:00:00.52+01:00"))
    assert ok.status_code == 200


def test_feedback_override_reason_is_a_coding_with_a_system(client: TestClient) -> None:
    card = _issue_card(client)
    resp = client.post("/cds-services/order-sign/feedback",
                       json=_fb(card["uuid"], overrideReason={"reason": {"code": "benefit-outweighs-risk"}}))
    assert resp.status_code == 400 and "system" in _diag(resp)


@pytest.mark.parametrize("reason", [
    {"reason": {"system": "https://ehr.example.org/r", "code": "x", "display": "d" * 100_000}},
    {"reason": {"system": "https://ehr.example.org/r", "code": "c" * 10_000}},
    {"userComment": "u" * 100_000},
])
def test_feedback_texts_are_bounded(client: TestClient, reason: dict[str, Any]) -> None:
    card = _issue_card(client)
    resp = client.post("/cds-services/order-sign/feedback", json=_fb(card["uuid"], overrideReason=reason))
    assert resp.status_code == 400 and "overrideReason" in _diag(resp)


def test_feedback_accepted_suggestions_must_belong_to_the_card(client: TestClient) -> None:
    card = _issue_card(client, with_suggestion=True)
    other = _issue_card(client, with_suggestion=True)
    bad = {"feedback": [{"card": card["uuid"], "outcome": "accepted", "outcomeTimestamp": "2026-01-15T10:00:00Z",
                         "acceptedSuggestions": [{"id": other["suggestions"][0]["uuid"]}]}]}
    resp = client.post("/cds-services/order-sign/feedback", json=bad)
    assert resp.status_code == 400 and "acceptedSuggestions" in _diag(resp)
    bad["feedback"][0]["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
    assert client.post("/cds-services/order-sign/feedback", json=bad).status_code == 200


def test_feedback_only_for_cards_this_service_issued(client: TestClient) -> None:
    resp = client.post("/cds-services/order-sign/feedback", json=_fb(str(uuid.uuid4())))
    assert resp.status_code == 400 and "not issued" in _diag(resp)
    card = _issue_card(client)  # issued by order-sign: not a card of order-select
    resp = client.post("/cds-services/order-select/feedback", json=_fb(card["uuid"]))
    assert resp.status_code == 400


def test_feedback_for_an_old_card_is_refused(tmp_path: Path, refs: Any) -> None:
    from dataclasses import replace

    cfg = replace(insecure_config(tmp_path), feedback=FeedbackLimits(accept_window_hours=1))
    c = TestClient(create_app(cfg, refs=refs))
    card = _issue_card(c)
    with sqlite3.connect(cfg.feedback_db) as conn:
        conn.execute("UPDATE cards SET first_shown = '2020-01-01T00:00:00+00:00'")
    resp = c.post("/cds-services/order-sign/feedback", json=_fb(card["uuid"]))
    assert resp.status_code == 400 and "not issued" in _diag(resp)


def test_feedback_batch_size_and_rate_are_bounded(tmp_path: Path, refs: Any) -> None:
    from dataclasses import replace

    cfg = replace(insecure_config(tmp_path), feedback=FeedbackLimits(max_batch=3, max_items_per_minute=5))
    c = TestClient(create_app(cfg, refs=refs))
    card = _issue_card(c)
    item = _fb(card["uuid"])["feedback"][0]
    assert c.post("/cds-services/order-sign/feedback", json={"feedback": [item] * 4}).status_code == 413
    assert c.post("/cds-services/order-sign/feedback", json={"feedback": [item] * 3}).status_code == 200
    resp = c.post("/cds-services/order-sign/feedback", json={"feedback": [item] * 3})
    assert resp.status_code == 429 and resp.headers.get("retry-after")


def test_feedback_limits_are_read_from_the_configuration_file(tmp_path: Path) -> None:
    from checker.service import load_config
    from checker.service.config import ConfigError

    (tmp_path / "c.toml").write_text("[feedback]\nmax_batch = 5\naccept_window_hours = 2.5\n", encoding="utf-8")
    cfg = load_config(tmp_path / "c.toml")
    assert cfg.feedback.max_batch == 5 and cfg.feedback.accept_window_hours == 2.5
    (tmp_path / "bad.toml").write_text("[feedback]\nmax_batch = 0\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="max_batch"):
        load_config(tmp_path / "bad.toml")


def test_feedback_retention_is_bounded(tmp_path: Path, refs: Any) -> None:
    from dataclasses import replace

    cfg = replace(insecure_config(tmp_path), feedback=FeedbackLimits(max_feedback_rows=2))
    c = TestClient(create_app(cfg, refs=refs))
    card = _issue_card(c)
    for i in range(4):
        item = _fb(card["uuid"], outcomeTimestamp=f"2026-01-15T10:0{i}:00Z")
        assert c.post("/cds-services/order-sign/feedback", json=item).status_code == 200
    with sqlite3.connect(cfg.feedback_db) as conn:
        rows = [r[0] for r in conn.execute("SELECT outcome_timestamp FROM feedback ORDER BY id")]
    assert rows == ["2026-01-15T10:02:00Z", "2026-01-15T10:03:00Z"]


def test_card_log_is_bounded(tmp_path: Path, refs: Any) -> None:
    from dataclasses import replace

    cfg = replace(insecure_config(tmp_path), feedback=FeedbackLimits(max_card_rows=3))
    c = TestClient(create_app(cfg, refs=refs))
    issued = [x["uuid"] for _ in range(4) for x in c.post("/cds-services/order-sign", json=_interaction_body()).json()["cards"]]
    c.app.state.pertinence.store._last_purge = 0.0  # the purge runs at most once a minute: let the next one run
    c.post("/cds-services/order-sign", json=_interaction_body())
    with sqlite3.connect(cfg.feedback_db) as conn:
        kept = {r[0] for r in conn.execute("SELECT uuid FROM cards")}
    assert len(kept) == 3 and not kept & set(issued[:2])


def test_feedback_reasons_are_escaped_when_shown_or_exported(tmp_path: Path, refs: Any) -> None:
    cfg = insecure_config(tmp_path)
    c = TestClient(create_app(cfg, refs=refs))
    card = _issue_card(c)
    evil = "\x1b[2J\x1b]0;pwned\x07=HYPERLINK(\"http://x\")<script>"
    reason = {"reason": {"system": "https://ehr.example.org/reasons", "code": "x\x1b[31m", "display": evil},
              "userComment": evil}
    assert c.post("/cds-services/order-sign/feedback", json=_fb(card["uuid"], overrideReason=reason)).status_code == 200
    stats = feedback_stats(cfg.feedback_db)
    top = stats[0]["override_reasons"][0]
    assert not re.search(r"[\x00-\x1f\x7f]", top["display"] + top["code"])
    assert not top["display"].startswith("=") and "<script>" not in top["display"]


# --- the shared corpus: the specification's own examples and HL7 PDDI-CDS requests ------------------------

CDS = "fhir/cds-hooks/extracted"
PDDI = "fhir/pddi-cds/requests"


def _load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8-sig")
    text = re.sub(r"^POST .*$", "", text, flags=re.M)
    text = re.sub(r"//[^\n\"]*$", "", text, flags=re.M)  # the spec's inline comments
    return json.loads(text)


def _prefetch(patient_id: str, active: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"patient": {"resourceType": "Patient", "id": patient_id, "birthDate": "1950-03-02", "gender": "female"},
            "medications": searchset(*(active or [])) if active else None,
            "conditions": None, "allergies": None, "renal": None, "weight": None, "pregnancy": None, "results": None}


def _as_request(context: dict[str, Any], hook: str, **extra: Any) -> dict[str, Any]:
    return {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context,
            "prefetch": _prefetch(context["patientId"]), **extra}


@pytest.fixture()
def corpus(shared_dir: Path) -> Path:
    return shared_dir


def test_spec_order_select_example_is_answered_and_focuses_on_its_selections(client: TestClient, corpus: Path) -> None:
    ctx = _load(corpus / CDS / "order-select__01__Example-R4__L45.json")["context"]
    resp = client.post("/cds-services/order-select", json=_as_request(ctx, "order-select"))
    assert resp.status_code == 200
    for c in resp.json()["cards"]:
        assert len(c["summary"]) < 140 and c["indicator"] in ("info", "warning", "critical") and c["source"]["label"]
        if c.get("suggestions"):
            assert c["selectionBehavior"] in ("at-most-one", "any")
    # the same request with an unselected draft that interacts with an active order: no card names it
    ctx2 = copy.deepcopy(ctx)
    ctx2["draftOrders"]["entry"].append({"resource": med("unselected", IBUPROFEN, "draft", patient=ctx["patientId"])})
    body = _as_request(ctx2, "order-select")
    body["prefetch"] = _prefetch(ctx["patientId"], [med("a1", WARFARIN, patient=ctx["patientId"])])
    cards = client.post("/cds-services/order-select", json=body).json()["cards"]
    assert all("unselected" not in json.dumps(c.get("extension", {})) + json.dumps(c.get("suggestions", []))
               for c in cards)
    assert not [c for c in cards if c["source"]["topic"]["code"] == "interaction"]


def test_spec_order_select_example_with_a_selection_not_in_draft_orders_is_400(client: TestClient,
                                                                               corpus: Path) -> None:
    ctx = _load(corpus / CDS / "order-select__01__Example-R4__L45.json")["context"]
    ctx["selections"] = ["MedicationRequest/not-in-the-bundle"]
    assert client.post("/cds-services/order-select", json=_as_request(ctx, "order-select")).status_code == 400
    del ctx["selections"]
    assert client.post("/cds-services/order-select", json=_as_request(ctx, "order-select")).status_code == 400


def test_spec_order_sign_example_is_answered(client: TestClient, corpus: Path) -> None:
    ctx = _load(corpus / CDS / "order-sign__01__Example-R4__L46.json")["context"]
    resp = client.post("/cds-services/order-sign", json=_as_request(ctx, "order-sign"))
    assert resp.status_code == 200 and isinstance(resp.json()["cards"], list)


def test_spec_fhir_authorization_example_without_fhir_server_is_400(client: TestClient, corpus: Path) -> None:
    auth = _load(corpus / CDS / "current__09__Passing-the-Access-Token-to-the-CDS-Serv__L479.json")["fhirAuthorization"]
    ctx = _load(corpus / CDS / "order-sign__01__Example-R4__L46.json")["context"]
    resp = client.post("/cds-services/order-sign", json=_as_request(ctx, "order-sign", fhirAuthorization=auth))
    assert resp.status_code == 400 and "fhirServer" in _diag(resp)


def test_spec_discovery_example_fields_are_the_ones_we_declare(client: TestClient, corpus: Path) -> None:
    example = _load(corpus / CDS / "current__01__Discovery-Example__L100.json")["services"]
    allowed = set().union(*(s.keys() for s in example)) | {"extension"}
    for s in client.get("/cds-services").json()["services"]:
        assert {"hook", "description", "id"} <= set(s) <= allowed


@pytest.mark.parametrize("name", ["current__19__Example-suggestion-accepted__L820.json.invalid.txt",
                                  "current__20__Example-overridden-guidance-without-over__L851.json.invalid.txt",
                                  "current__21__Example-overridden-guidance-with-overrid__L879.json.invalid.txt"])
def test_spec_feedback_examples(client: TestClient, corpus: Path, name: str) -> None:
    fb = _load(corpus / CDS / name)
    resp = client.post("/cds-services/order-sign/feedback", json=fb)  # cards this service never issued
    assert resp.status_code == 400 and "not issued" in _diag(resp)
    card = _issue_card(client, with_suggestion=True)
    item = fb["feedback"][0]
    item["card"] = card["uuid"]
    if item.get("acceptedSuggestions"):
        item["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
    assert client.post("/cds-services/order-sign/feedback", json=fb).status_code == 200


def _pddi(corpus: Path, name: str) -> dict[str, Any]:
    return json.loads((corpus / PDDI / name).read_text(encoding="utf-8-sig"))


def _pddi_files(shared: Path) -> list[str]:
    root = shared / PDDI
    return sorted(p.name for p in root.glob("*.json")) if root.is_dir() else []


@pytest.mark.parametrize("name", _pddi_files(Path(__file__).resolve().parents[2] / "shared"))
def test_pddi_requests_without_user_id_get_400_naming_it(client: TestClient, corpus: Path, name: str) -> None:
    body = _pddi(corpus, name)
    service = body["hook"]
    resp = client.post(f"/cds-services/{service}", json=body)
    if "userId" not in body.get("context", {}):
        assert resp.status_code == 400 and "context.userId" in _diag(resp)
    body["context"]["userId"] = "Practitioner/pddi"
    resp = client.post(f"/cds-services/{service}", json=body)
    assert resp.status_code in (200, 400, 412) and resp.status_code != 500
    if resp.status_code == 200:
        for c in resp.json()["cards"]:
            assert len(c["summary"]) < 140 and c["source"]["label"] and uuid.UUID(c["uuid"])
            assert c["source"]["topic"]["system"] == codes.CATEGORY_SYSTEM


@pytest.mark.parametrize("name", ["warfarin-nsaids-order-select-coordination.json",
                                  "digoxin-cyclosporine-order-select-coordination.json"])
def test_pddi_order_select_alerts_on_the_selection_only(client: TestClient, corpus: Path, name: str) -> None:
    body = _pddi(corpus, name)
    body["context"]["userId"] = "Practitioner/pddi"
    resp = client.post("/cds-services/order-select", json=body)
    assert resp.status_code in (200, 412), resp.text[:300]
    if resp.status_code == 200:
        selected = set(body["context"]["selections"])
        for c in resp.json()["cards"]:
            drafts = set(c.get("extension", {}).get(codes.CARD_EXTENSION, {}).get("drafts", []))
            assert drafts <= selected


def test_pddi_warfarin_ketorolac_order_sign_gives_an_interaction_card(client: TestClient, corpus: Path) -> None:
    body = _pddi(corpus, "warfarin-nsaids-order-sign-coordination.json")
    body["context"]["userId"] = "Practitioner/pddi"
    resp = client.post("/cds-services/order-sign", json=body)
    assert resp.status_code == 200
    cards = [c for c in resp.json()["cards"] if c["source"]["topic"]["code"] == "interaction"]
    assert cards and all(c["indicator"] == "warning" for c in cards)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_discovery_is_worded_by_the_catalogue_in_the_service_language(tmp_path: Path, refs: Any, lang: str) -> None:
    """Without Accept-Language, discovery speaks the service's configured language, every title,
    description and usage requirement taken from the catalogue (no wording table of the service's own)."""
    from dataclasses import replace

    import checker.service.app as app_module
    from checker.formats.catalogue import msg

    c = TestClient(create_app(replace(insecure_config(tmp_path), lang=lang), refs=refs))
    resp = c.get("/cds-services")
    assert resp.headers["content-language"] == lang
    services = resp.json()["services"]
    assert len(services) == len(app_module.SERVICES) >= 3
    for s in services:
        assert s["title"] == msg(lang, f"cds_service.{s['id']}_title")
        assert s["description"] == msg(lang, f"cds_service.{s['id']}_description")
        assert s["usageRequirements"].startswith(msg(lang, "cds_service.usage").split("{")[0])
    assert not hasattr(app_module, "_DISCOVERY_TEXT") and not hasattr(app_module, "_USAGE")
    assert all(set(s) == {"hook"} for s in app_module.SERVICES.values())  # the wording is the catalogue's
    words = " ".join(s["description"] + " " + s["usageRequirements"] for s in services)
    if lang == "fr":
        assert "Vérifie" in words and "Checks" not in words and "Precondition" not in words
    else:
        assert "Checks" in words and "Vérifie" not in words and "Préalable" not in words
