"""CDS Hooks service: card format, discovery, hook calls, errors, limits, 412, alert-fatigue controls,
feedback persistence, start-up loading. (JWT: test_service_auth.py; shared corpus:
test_service_corpus.py; OpenAPI fuzzing: test_service_schema.py.)"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from checker.findings import Finding, InputCounts, Report, Severity, Source
from checker.formats import cds_hooks
from checker.service import ServiceConfig, create_app, feedback_stats, load_config
from checker.service.config import AlertPolicy, AuthConfig, ConfigError

AS_OF = "2026-01-15"
ANSM = Source("ANSM, Thésaurus des interactions médicamenteuses", "https://ansm.sante.fr/x", "2023-09")


# --- helpers (also used by the other test_service_* files) --------------------------------------


def insecure_config(tmp_path: Path, **kw: Any) -> ServiceConfig:
    """Authentication off; FHIR server https://ehr.example.org/fhir bound (unless ``fhir`` is given)."""
    from checker.service.config import FhirFetch

    kw.setdefault("fhir", FhirFetch(servers={"https://ehr.example.org": ("https://ehr.example.org/fhir",)}))
    return ServiceConfig(auth=AuthConfig(enabled=False), feedback_db=str(tmp_path / "fb.sqlite3"), as_of=AS_OF, **kw)


def med(rid: str, text: str, status: str = "active", patient: str = "p1") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
        "subject": {"reference": f"Patient/{patient}"}, "medicationCodeableConcept": {"text": text},
        "authoredOn": "2026-01-10",
        "dosageInstruction": [{"text": "1 comprimé par jour", "doseQuantity": {"value": 1, "unit": "comprimé"},
                               "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}],
    }


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def hook_body(drafts: list[dict[str, Any]], active: list[dict[str, Any]] | None = None, *, hook: str = "order-sign",
              prefetch: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A CDS Hooks request for patient p1 with every prefetch key answered (``null`` = no data)."""
    pre = {"patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1950-03-02", "gender": "female"},
           "medications": searchset(*(active or [])) if active else None,
           "conditions": None, "allergies": None, "renal": None, "weight": None, "pregnancy": None, "results": None}
    if prefetch is not None:
        pre = prefetch
    body = {"hook": hook, "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/1", "patientId": "p1",
                        "draftOrders": {"resourceType": "Bundle", "entry": [{"resource": d} for d in drafts]}},
            "prefetch": pre}
    body.update(extra)
    return body


def is_outcome(resp: httpx.Response) -> bool:
    data = resp.json()
    return data.get("resourceType") == "OperationOutcome" and bool(data["issue"][0]["diagnostics"])


@pytest.fixture(scope="module")
def refs() -> Any:
    from checker.service.app import load_referentials

    return load_referentials()


@pytest.fixture()
def client(tmp_path: Path, refs: Any) -> TestClient:
    return TestClient(create_app(insecure_config(tmp_path), refs=refs))


def finding(rule: str = "IX001", category: str = "interaction", severity: Severity = Severity.WARNING,
            implicated: tuple[str, ...] = ("MedicationRequest/a1", "MedicationRequest/d1"), level: str | None = "AD",
            suggestion: dict[str, Any] | None = None, summary: str = "Association déconseillée : a + b") -> Finding:
    return Finding(rule=rule, category=category, severity=severity, summary=summary,
                   detail="Explication *en Markdown*.", source=ANSM, patient="Patient/p1", implicated=implicated,
                   level=level, suggestion=suggestion, key=f"{rule}-{implicated}")


def report(*findings: Finding, lang: str = "fr") -> Report:
    return Report("pertinence", "0", (), AS_OF, "fr", InputCounts(), list(findings), [], lang=lang)


# --- the card format -----------------------------------------------------------------------------


def test_card_fields_follow_the_specification() -> None:
    f = finding(severity=Severity.CRITICAL, level="CI")
    [card] = cds_hooks.cards(report(f))
    assert card["indicator"] == "critical"
    assert card["summary"] == f.summary and len(card["summary"]) < 140
    assert card["uuid"] == str(uuid.uuid5(cds_hooks.CARD_NAMESPACE, f.fingerprint))
    assert card["source"]["label"].startswith("ANSM") and card["source"]["url"] == "https://ansm.sante.fr/x"
    assert "2023-09" in card["detail"] and "[ANSM" in card["detail"] and "IX001" in card["detail"]
    assert card["overrideReasons"] and all(r["display"] and r["code"] and r["system"] for r in card["overrideReasons"])


@pytest.mark.parametrize(("severity", "indicator"), [(Severity.INFO, "info"), (Severity.WARNING, "warning"),
                                                     (Severity.CRITICAL, "critical")])
def test_indicator_from_severity(severity: Severity, indicator: str) -> None:
    assert cds_hooks.cards(report(finding(severity=severity)))[0]["indicator"] == indicator


def test_card_uuid_is_stable_and_distinct_per_finding() -> None:
    a, b = finding(), finding(implicated=("MedicationRequest/a2", "MedicationRequest/d1"))
    first = [c["uuid"] for c in cds_hooks.cards(report(a, b))]
    again = [c["uuid"] for c in cds_hooks.cards(report(b, a))]
    assert sorted(first) == sorted(again) and len(set(first)) == 2


def test_only_findings_about_a_draft_get_a_card() -> None:
    between_signed = finding(implicated=("MedicationRequest/a1", "MedicationRequest/a2"))
    with_draft = finding(implicated=("MedicationRequest/a1", "MedicationRequest/d1"))
    out = cds_hooks.cards(report(between_signed, with_draft), draft_refs={"MedicationRequest/d1"})
    assert [c["uuid"] for c in out] == [cds_hooks.card_uuid(with_draft.fingerprint)]
    assert cds_hooks.cards(report(between_signed), draft_refs={"MedicationRequest/d1"}) == []


def test_cheaper_equivalent_suggests_updating_the_draft() -> None:
    from checker.drugs.matcher import SYS_CIP13, SYS_CIS

    draft = med("d1", "ATORVASTATINE MARQUE 20 mg", status="draft")
    f = finding(rule="EQ001", category="cheaper-equivalent", severity=Severity.INFO, level=None,
                implicated=("MedicationRequest/d1",),
                suggestion={"replace": {"label": "MARQUE 20 mg", "cis": "60000001", "cip13": "3400900000002"},
                            "with": {"label": "GENERIQUE 20 mg — boîte de 30", "cis": "60000002",
                                     "cip13": "3400900000001", "dci": "atorvastatine"},
                            "saving": {"amount": 12.5, "currency": "EUR", "period": "treatment"}})
    [card] = cds_hooks.cards(report(f), draft_refs={"MedicationRequest/d1"},
                             draft_resources={"MedicationRequest/d1": draft})
    [sugg] = card["suggestions"]
    assert card["selectionBehavior"] == "at-most-one" and sugg["label"].startswith("Remplacer par GENERIQUE")
    [action] = sugg["actions"]
    assert action["type"] == "update" and action["resource"]["id"] == "d1"
    concept = action["resource"]["medicationCodeableConcept"]
    assert concept["text"] == "GENERIQUE 20 mg — boîte de 30"
    assert {"system": SYS_CIP13, "code": "3400900000001"} in concept["coding"]
    assert {"system": SYS_CIS, "code": "60000002"} in concept["coding"]
    assert action["resource"]["dosageInstruction"] == draft["dosageInstruction"]  # the whole resource
    assert draft["medicationCodeableConcept"] == {"text": "ATORVASTATINE MARQUE 20 mg"}  # input untouched
    assert "12,50\u00a0€ sur la durée prescrite" in card["detail"]


def test_cheaper_removal_suggests_deleting_the_draft() -> None:
    f = finding(rule="EQ002", category="cheaper-equivalent", severity=Severity.INFO, level=None,
                implicated=("MedicationRequest/d1",),
                suggestion={"action": "remove", "replace": {"label": "IPP"}, "with": None})
    [card] = cds_hooks.cards(report(f), draft_refs={"MedicationRequest/d1"})
    assert [a["type"] for s in card["suggestions"] for a in s["actions"]] == ["delete"]


def test_contraindicated_draft_gets_a_delete_action_for_the_draft_only() -> None:
    f = finding(severity=Severity.CRITICAL, level="CI")
    [card] = cds_hooks.cards(report(f), draft_refs={"MedicationRequest/d1"})
    actions = [a for s in card["suggestions"] for a in s["actions"]]
    assert actions == [{"type": "delete", "description": actions[0]["description"],
                        "resourceId": "MedicationRequest/d1"}]


def test_no_delete_action_for_a_draft_without_id() -> None:
    ref = "MedicationRequest@<dict> /context/draftOrders/entry/0/resource"
    f = finding(severity=Severity.CRITICAL, level="CI", implicated=("MedicationRequest/a1", ref))
    [card] = cds_hooks.cards(report(f), draft_refs={ref})
    assert "suggestions" not in card and "selectionBehavior" not in card


def test_off_protocol_exam_suggests_the_alternative_exam() -> None:
    sr = {"resourceType": "ServiceRequest", "id": "s1", "status": "draft", "intent": "order",
          "code": {"text": "IRM du rachis lombaire"}, "subject": {"reference": "Patient/p1"}}
    alt = {"label": "Radiographie du rachis lombaire", "coding": {"system": "urn:test:ccam", "code": "LFQK002"}}
    f = finding(rule="OP001", category="off-protocol", severity=Severity.WARNING, level="off-protocol",
                implicated=("ServiceRequest/s1",), suggestion={"alternative": alt, "protocol": "P"})
    [card] = cds_hooks.cards(report(f), draft_refs={"ServiceRequest/s1"}, draft_resources={"ServiceRequest/s1": sr})
    [action] = card["suggestions"][0]["actions"]
    assert action["type"] == "update" and action["resource"]["id"] == "s1"
    assert action["resource"]["code"]["coding"] == [{"system": "urn:test:ccam", "code": "LFQK002"}]


def test_off_protocol_with_advice_only_suggests_withdrawing_the_request() -> None:
    sr = {"resourceType": "ServiceRequest", "id": "s1", "status": "draft", "intent": "order",
          "code": {"text": "Radiographie du rachis lombaire"}, "subject": {"reference": "Patient/p1"}}
    f = finding(rule="OP001", category="off-protocol", severity=Severity.WARNING, level="off-protocol",
                implicated=("ServiceRequest/s1",), suggestion={"alternative": "Pas d'imagerie d'emblée.", "protocol": "P"})
    [card] = cds_hooks.cards(report(f), draft_refs={"ServiceRequest/s1"}, draft_resources={"ServiceRequest/s1": sr})
    [sugg] = card["suggestions"]
    assert sugg["actions"] == [{"type": "delete", "description": sugg["actions"][0]["description"],
                                "resourceId": "ServiceRequest/s1"}]
    assert "Radiographie du rachis lombaire" in sugg["label"] and "Pas d'imagerie d'emblée" in card["detail"]
    undetermined = finding(rule="OP001", category="off-protocol", level="undetermined",
                           implicated=("ServiceRequest/s1",), suggestion=None)
    assert "suggestions" not in cds_hooks.cards(report(undetermined), draft_refs={"ServiceRequest/s1"})[0]


def test_render_is_a_cds_hooks_response() -> None:
    assert json.loads(cds_hooks.render(report())) == {"cards": []}
    assert len(json.loads(cds_hooks.render(report(finding())))["cards"]) == 1


def test_english_cards() -> None:
    [card] = cds_hooks.cards(report(finding(), lang="en"))
    assert "**Source**" in card["detail"] and "edition 2023-09" in card["detail"]
    assert card["overrideReasons"][0]["display"].startswith("Expected benefit")


# --- alert-fatigue policy and configuration --------------------------------------------------------


def test_policy_floor_disabled_overrides_and_never_suppress() -> None:
    info = finding(rule="EQ001", category="cheaper-equivalent", severity=Severity.INFO, level=None)
    ad = finding(rule="IX001", level="AD")
    ci = finding(rule="IX001", level="CI", severity=Severity.CRITICAL, implicated=("MedicationRequest/x",))
    policy = AlertPolicy(min_severity={"order-select": Severity.WARNING}, disabled_rules=("IX",),
                         severity_overrides={"EQ001": Severity.WARNING})
    kept = policy.apply([info, ad, ci], "order-select")
    assert [(f.rule, f.level, f.severity) for f in kept] == [("EQ001", None, Severity.WARNING),
                                                             ("IX001", "CI", Severity.CRITICAL)]
    assert policy.protected(ci) and not policy.protected(ad)
    assert AlertPolicy(never_suppress=()).apply([ci], "order-sign") == [ci]
    assert AlertPolicy(disabled_rules=("IX001",), never_suppress=()).apply([ci], "order-sign") == []


FLOOR_CONFIG = """
[server]
as_of = "2026-01-15"
feedback_db = "fb.sqlite3"
[auth]
enabled = false
[alerts]
min_severity = { order-sign = "warning" }
"""


def test_severity_floor_hides_could_not_check_notes_with_the_default_never_suppress(tmp_path: Path) -> None:
    """The default never-suppress list protects real contraindications (warning, critical), not the
    info-level "could not check" notes of the contraindication category."""
    path = tmp_path / "pertinence.toml"
    path.write_text(FLOOR_CONFIG, encoding="utf-8")
    policy = load_config(path).policy_for(None, None)
    assert policy.never_suppress == ("contraindication", "allergy", "CI")  # the default list
    note = finding(rule="PR003", category="contraindication", severity=Severity.INFO, level=None,
                   implicated=("MedicationRequest/d1",), summary="Fonction rénale non renseignée pour metformine")
    renal = finding(rule="PR003", category="contraindication", severity=Severity.WARNING, level=None,
                    implicated=("MedicationRequest/d1",), summary="metformine avec DFG estimé à 25 (< 30)")
    ci = finding(severity=Severity.CRITICAL, level="CI")
    assert policy.apply([note, renal, ci], "order-sign") == [renal, ci]
    assert policy.apply([note, renal, ci], "order-select") == [note, renal, ci]  # no floor for that hook
    silenced = replace(policy, disabled_rules=("PR003", "IX001"), severity_overrides={"PR": Severity.INFO})
    assert silenced.apply([note, renal, ci], "order-sign") == [renal, ci]  # protected: kept, severity kept
    assert replace(policy, never_suppress=("PR003",)).apply([note], "order-sign") == [note]  # a rule named


def test_severity_floor_removes_every_info_card_of_the_service(tmp_path: Path, refs: Any) -> None:
    """Metformin for a 76-year-old without renal results: PR003's info note and the data-missing card; a
    site whose order-sign floor is warning sees neither (default never-suppress list)."""
    body = hook_body([med("d1", "METFORMINE 850 mg comprimé", "draft")])
    del body["prefetch"]["renal"]
    shown = TestClient(create_app(insecure_config(tmp_path), refs=refs)).post("/cds-services/order-sign", json=body)
    topics = sorted(c["source"]["topic"]["code"] for c in shown.json()["cards"])
    assert topics == ["contraindication", "data-missing"] and {c["indicator"] for c in shown.json()["cards"]} == {"info"}
    path = tmp_path / "floor" / "pertinence.toml"
    path.parent.mkdir()
    path.write_text(FLOOR_CONFIG, encoding="utf-8")
    floor = TestClient(create_app(load_config(path), refs=refs)).post("/cds-services/order-sign", json=body)
    assert floor.status_code == 200 and floor.json() == {"cards": []}


def test_config_file(tmp_path: Path) -> None:
    path = tmp_path / "pertinence.toml"
    path.write_text("""
[server]
base_url = "https://cds.example.org"
feedback_db = "data/fb.sqlite3"
[auth]
jwks_file = "keys.json"
issuers = ["https://ehr.example.org"]
[limits]
max_body_bytes = 1000
[alerts]
min_severity = { order-select = "warning" }
disabled_rules = ["eq"]
[sites."tenant-a"]
severity_overrides = { IX001 = "info" }
""", encoding="utf-8")
    cfg = load_config(path)
    assert cfg.auth.jwks_file == str(tmp_path / "keys.json") and cfg.feedback_db == str(tmp_path / "data/fb.sqlite3")
    assert cfg.alerts.min_severity == {"order-select": Severity.WARNING} and cfg.alerts.disabled_rules == ("EQ",)
    assert "contraindication" in cfg.alerts.never_suppress
    assert cfg.policy_for("tenant-a", None).severity_overrides == {"IX001": Severity.INFO}
    assert cfg.policy_for("other", None).severity_overrides == {}
    assert cfg.limits.max_body_bytes == 1000


def test_config_booleans_must_be_booleans(tmp_path: Path) -> None:
    """warn_missing_data = "false" (quoted) used to be read as true."""
    path = tmp_path / "pertinence.toml"
    for text in ('[server]\nwarn_missing_data = "false"\n', '[auth]\nenabled = "no"\n'):
        path.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match="must be true or false"):
            load_config(path)
    path.write_text("[server]\nwarn_missing_data = false\n", encoding="utf-8")
    assert load_config(path).warn_missing_data is False
    path.write_text('[alerts]\nmin_severity = { order-view = "info" }\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown hook 'order-view'"):
        load_config(path)
    path.write_text("[alerts\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


# --- the app -------------------------------------------------------------------------------------


def test_discovery_lists_services_with_prefetch_templates(client: TestClient) -> None:
    resp = client.get("/cds-services")
    assert resp.status_code == 200
    services = {s["id"]: s for s in resp.json()["services"]}
    assert {"order-select", "order-sign", "medication-prescribe"} <= set(services)
    assert services["order-sign"]["hook"] == "order-sign" and services["order-sign"]["description"]
    pre = services["order-select"]["prefetch"]
    assert pre["patient"] == "Patient/{{context.patientId}}"
    assert pre["medications"].startswith("MedicationRequest?patient={{context.patientId}}") and "active" in pre["medications"]
    assert pre["conditions"].startswith("Condition?") and pre["allergies"].startswith("AllergyIntolerance?")
    assert "33914-3" in pre["renal"] and "29463-7" in pre["weight"]  # eGFR (MDRD), body weight


def test_interaction_between_draft_and_active_order_gives_a_card(client: TestClient) -> None:
    body = hook_body([med("d1", "IBUPROFENE 400 mg comprimé", "draft")], [med("a1", "WARFARINE 5 mg comprimé")])
    resp = client.post("/cds-services/order-sign", json=body)
    assert resp.status_code == 200
    cards = resp.json()["cards"]
    ix = [c for c in cards if c["source"]["topic"]["code"] == "interaction"]
    assert len(ix) == 1 and "warfarine" in ix[0]["summary"].lower()
    assert ix[0]["indicator"] in ("warning", "critical") and "MedicationRequest/d1" in ix[0]["detail"]
    # the same request again: a fresh card id, the same fingerprint (de-duplication)
    again = client.post("/cds-services/order-sign", json=body).json()["cards"]
    fp = [c["extension"][cds_hooks.codes.CARD_EXTENSION]["fingerprint"] for c in cards]
    assert [c["extension"][cds_hooks.codes.CARD_EXTENSION]["fingerprint"] for c in again] == fp
    assert not {c["uuid"] for c in again} & {c["uuid"] for c in cards}


def test_no_card_when_nothing_to_say(client: TestClient) -> None:
    body = hook_body([med("d1", "PARACETAMOL 500 mg comprimé", "draft")])
    resp = client.post("/cds-services/order-sign", json=body)
    assert resp.status_code == 200 and resp.json() == {"cards": []}


def test_order_select_focuses_on_the_selections(client: TestClient) -> None:
    drafts = [med("d1", "IBUPROFENE 400 mg comprimé", "draft"), med("d2", "EZETIMIBE 10 mg comprimé", "draft")]
    body = hook_body(drafts, [med("a1", "WARFARINE 5 mg comprimé")], hook="order-select")
    body["context"]["selections"] = ["MedicationRequest/d2"]
    assert client.post("/cds-services/order-select", json=body).json()["cards"] == []
    body["context"]["selections"] = ["MedicationRequest/d1"]
    assert client.post("/cds-services/order-select", json=body).json()["cards"]


def test_min_severity_per_hook_hides_cards(tmp_path: Path, refs: Any) -> None:
    cfg = insecure_config(tmp_path, alerts=AlertPolicy(min_severity={"order-sign": Severity.CRITICAL}, never_suppress=()))
    c = TestClient(create_app(cfg, refs=refs))
    body = hook_body([med("d1", "IBUPROFENE 400 mg comprimé", "draft")], [med("a1", "WARFARINE 5 mg comprimé")])
    assert c.post("/cds-services/order-sign", json=body).json()["cards"] == []


def test_missing_optional_data_is_said_not_silently_skipped(client: TestClient) -> None:
    body = hook_body([med("d1", "PARACETAMOL 500 mg comprimé", "draft")])
    del body["prefetch"]["allergies"]
    [card] = client.post("/cds-services/order-sign", json=body).json()["cards"]
    assert card["indicator"] == "info" and "allergies" in card["summary"]


@pytest.mark.parametrize(("payload", "status", "needle"), [
    (b"{not json", 400, "not valid JSON"),
    (b"curl -H 'Content-Type: application/json' --data @x.json http://h/cds-services/x", 400, "curl command"),
    (b"[1, 2]", 400, "JSON object"),
    (b"", 400, "empty"),
    (b'{"hookInstance": "x", "context": {}}', 400, "hook"),
    (b'{"hook": "patient-view", "hookInstance": "x", "context": {}}', 400, "patient-view"),
    (b'{"hook": "order-sign", "hookInstance": "x", "context": {"patientId": "p1", "userId": "Practitioner/1"}}',
     400, "draftOrders"),
    (b'{"hook": "order-sign", "hookInstance": "x", "context": {"patientId": "p1", "userId": "Practitioner/1", '
     b'"draftOrders": {"resourceType": "Bundle", "entry": '
     b'[{"resource": {"resourceType": "MedicationOrder", "id": "m"}}]}}}', 400, "DSTU2"),
    (b'{"hook": "order-sign", "hookInstance": "x", "context": {"patientId": "p1", "userId": "Practitioner/1", '
     b'"draftOrders": {"resourceType": "Bundle", "entry": '
     b'[{"resource": {"resourceType": "MedicationRequest", "id": "m", "status": "draft"}}]}}, "prefetch": '
     b'{"medications": null}}', 400, "draft order could not be read"),
    (b'{"hook": "order-sign", "hookInstance": "x", "context": {"patientId": "p1", "draftOrders": {"resourceType": '
     b'"Bundle", "entry": []}}}', 400, "context.userId"),
])
def test_malformed_requests_get_400_with_an_operation_outcome(client: TestClient, payload: bytes, status: int,
                                                              needle: str) -> None:
    resp = client.post("/cds-services/order-sign", content=payload, headers={"content-type": "application/json"})
    assert resp.status_code == status and is_outcome(resp)
    assert needle in json.dumps(resp.json())


def test_unknown_service_is_404(client: TestClient) -> None:
    resp = client.post("/cds-services/nope", json={})
    assert resp.status_code == 404 and is_outcome(resp)


def test_412_when_active_orders_are_neither_prefetched_nor_fetchable(client: TestClient) -> None:
    body = hook_body([med("d1", "IBUPROFENE 400 mg comprimé", "draft")], prefetch={})
    resp = client.post("/cds-services/order-sign", json=body)
    assert resp.status_code == 412 and is_outcome(resp)
    assert "medications" in json.dumps(resp.json())
    # a fhirServer without fhirAuthorization does not help
    body["fhirServer"] = "https://ehr.example.org/fhir"
    assert client.post("/cds-services/order-sign", json=body).status_code == 412


def test_missing_prefetch_is_fetched_from_the_fhir_server(tmp_path: Path, refs: Any) -> None:
    seen: list[httpx.Request] = []

    def fhir(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/MedicationRequest"):
            return httpx.Response(200, json=searchset(med("a1", "WARFARINE 5 mg comprimé")))
        if request.url.path.endswith("/Patient/p1"):
            return httpx.Response(200, json={"resourceType": "Patient", "id": "p1", "birthDate": "1950-03-02"})
        return httpx.Response(200, json=searchset())

    c = TestClient(create_app(insecure_config(tmp_path), refs=refs, fhir_transport=httpx.MockTransport(fhir)))
    body = hook_body([med("d1", "IBUPROFENE 400 mg comprimé", "draft")], prefetch={},
                     fhirServer="https://ehr.example.org/fhir",
                     fhirAuthorization={"access_token": "tok", "token_type": "Bearer", "expires_in": 300,
                                        "scope": "patient/*.read", "subject": "pertinence"})
    resp = client_post = c.post("/cds-services/order-sign", json=body)
    assert client_post.status_code == 200
    assert any("warfarine" in card["summary"].lower() for card in resp.json()["cards"])
    assert {r.headers["authorization"] for r in seen} == {"Bearer tok"}
    assert any(r.url.params.get("patient") == "p1" and r.url.path.endswith("/MedicationRequest") for r in seen)


def test_fhir_server_failure_gives_412(tmp_path: Path, refs: Any) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, text="maintenance")

    def paged(request: httpx.Request) -> httpx.Response:  # an incomplete list is not a list
        return httpx.Response(200, json={**searchset(), "link": [{"relation": "next", "url": "x"}]})

    for transport in (httpx.MockTransport(down), httpx.MockTransport(paged)):
        c = TestClient(create_app(insecure_config(tmp_path), refs=refs, fhir_transport=transport))
        body = hook_body([med("d1", "IBUPROFENE 400 mg comprimé", "draft")], prefetch={},
                         fhirServer="https://ehr.example.org/fhir",
                         fhirAuthorization={"access_token": "t", "token_type": "Bearer", "expires_in": 1,
                                            "scope": "s", "subject": "s"})
        resp = c.post("/cds-services/order-sign", json=body)
        assert resp.status_code == 412 and is_outcome(resp)


def test_body_and_resource_limits(tmp_path: Path, refs: Any) -> None:
    from checker.service.config import Limits

    c = TestClient(create_app(insecure_config(tmp_path, limits=Limits(max_body_bytes=2000, max_resources=3)),
                              refs=refs))
    big = hook_body([med("d1", "X" * 3000, "draft")])
    resp = c.post("/cds-services/order-sign", json=big)
    assert resp.status_code == 413 and is_outcome(resp)
    chunked = c.post("/cds-services/order-sign", content=(b"x" * 100 for _ in range(50)),
                     headers={"content-type": "application/json"})  # no Content-Length: counted as it streams
    assert chunked.status_code == 413 and is_outcome(chunked)
    many = hook_body([med(f"d{i}", "PARACETAMOL", "draft") for i in range(4)])
    many["prefetch"] = {"medications": None}
    c2 = TestClient(create_app(insecure_config(tmp_path, limits=Limits(max_resources=3)), refs=refs))
    resp = c2.post("/cds-services/order-sign", json=many)
    assert resp.status_code == 413 and "resources" in resp.json()["issue"][0]["diagnostics"]


def test_timeout_gives_503_not_a_wrong_all_clear(tmp_path: Path, refs: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    import checker.service.app as app_mod
    from checker.service.config import Limits

    real = app_mod._evaluate

    def slow(*args: Any) -> Any:
        time.sleep(0.5)
        return real(*args)

    monkeypatch.setattr(app_mod, "_evaluate", slow)
    c = TestClient(create_app(insecure_config(tmp_path, limits=Limits(timeout_seconds=0.05)), refs=refs))
    resp = c.post("/cds-services/order-sign", json=hook_body([med("d1", "PARACETAMOL", "draft")]))
    assert resp.status_code == 503 and is_outcome(resp)


def test_a_timed_out_check_keeps_its_slot_until_its_thread_ends(tmp_path: Path, refs: Any,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    import checker.service.app as app_mod
    from checker.service.config import Limits

    real, calls = app_mod._evaluate, []

    def first_slow(*args: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(1.2)
        return real(*args)

    monkeypatch.setattr(app_mod, "_evaluate", first_slow)
    cfg = insecure_config(tmp_path, limits=Limits(timeout_seconds=0.3, max_concurrent_checks=1))
    body = hook_body([med("d1", "PARACETAMOL", "draft")])
    with TestClient(create_app(cfg, refs=refs)) as c:  # one event loop, as under uvicorn
        assert c.post("/cds-services/order-sign", json=body).status_code == 503
        assert c.post("/cds-services/order-sign", json=body).status_code == 503  # the slow thread still runs
        assert len(calls) == 1
        time.sleep(1.0)
        assert c.post("/cds-services/order-sign", json=body).status_code == 200


def test_referentials_are_loaded_once_at_start_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from checker import referentials as referentials_mod

    app = create_app(insecure_config(tmp_path))
    refs = app.state.pertinence.refs
    loaded_at_start = set(refs._loaded)
    calls: list[str] = []
    for ref_id, loader in list(referentials_mod._LOADERS.items()):
        monkeypatch.setitem(referentials_mod._LOADERS, ref_id,
                            lambda entry, root, _l=loader, _id=ref_id: calls.append(_id) or _l(entry, root))
    c = TestClient(app)
    body = hook_body([med("d1", "IBUPROFENE 400 mg comprimé", "draft")], [med("a1", "WARFARINE 5 mg comprimé")])
    for _ in range(2):
        assert c.post("/cds-services/order-sign", json=body).status_code == 200
    assert calls == [] and set(refs._loaded) == loaded_at_start and loaded_at_start


# --- feedback ------------------------------------------------------------------------------------


def test_feedback_is_stored_and_survives_a_restart(tmp_path: Path, refs: Any) -> None:
    cfg = insecure_config(tmp_path)
    c = TestClient(create_app(cfg, refs=refs))
    body = hook_body([med("d1", "IBUPROFENE 400 mg comprimé", "draft")], [med("a1", "WARFARINE 5 mg comprimé")])
    card = next(c for c in c.post("/cds-services/order-sign", json=body).json()["cards"]
                if c["source"]["topic"]["code"] == "interaction")
    reason = card["overrideReasons"][0]
    fb = {"feedback": [
        {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-01-15T10:00:00Z",
         "overrideReason": {"reason": {"system": reason["system"], "code": reason["code"]}, "userComment": "suivi INR"}},
        {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-01-15T10:05:00Z"},
    ]}
    resp = c.post("/cds-services/order-sign/feedback", json=fb)
    assert resp.status_code == 200 and resp.json() == {"stored": 2}
    unknown = {"feedback": [{"card": "unknown-card", "outcome": "accepted", "acceptedSuggestions": [{"id": "s"}],
                             "outcomeTimestamp": "2026-01-15T10:06:00Z"}]}
    assert c.post("/cds-services/order-sign/feedback", json=unknown).status_code == 400
    c.close()
    app2 = create_app(cfg, refs=refs)  # a restart: a new app on the same database
    stats = {s["rule"]: s for s in feedback_stats(app2.state.pertinence.store.path)}
    ix = stats["IX001"]
    assert (ix["cards_shown"], ix["accepted"], ix["overridden"], ix["override_rate"]) == (1, 0, 2, 1.0)
    assert ix["override_reasons"][0]["code"] in (reason["code"], None)
    assert None not in stats
    with sqlite3.connect(cfg.feedback_db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT user_comment FROM feedback WHERE user_comment IS NOT NULL").fetchone() == (
            "suivi INR",)


@pytest.mark.parametrize("payload", [
    {}, {"feedback": []}, {"feedback": [{"card": "x", "outcome": "maybe", "outcomeTimestamp": "2026-01-15T10:00:00Z"}]},
    {"feedback": [{"card": "x", "outcome": "accepted", "outcomeTimestamp": "2026-01-15T10:00:00Z"}]},
    {"feedback": [{"card": "x", "outcome": "overridden", "outcomeTimestamp": "yesterday"}]},
    {"feedback": [{"card": "x", "outcome": "overridden", "outcomeTimestamp": "2026-01-15T10:00:00Z",
                   "overrideReason": {"reason": "no"}}]},
])
def test_invalid_feedback_is_400(client: TestClient, payload: dict[str, Any]) -> None:
    resp = client.post("/cds-services/order-sign/feedback", json=payload)
    assert resp.status_code == 400 and is_outcome(resp)


# --- command line ---------------------------------------------------------------------------------


def test_serve_listens_on_loopback_by_default_and_refuses_insecure_elsewhere() -> None:
    import cli

    host = next(p for p in cli.serve.params if p.name == "host")
    assert host.default == "127.0.0.1"
    result = CliRunner().invoke(cli.main, ["serve", "--host", "0.0.0.0", "--insecure-dev"])
    assert result.exit_code == 2 and "non-loopback" in result.output


def test_serve_without_keys_refuses_to_start(tmp_path: Path) -> None:
    import cli

    result = CliRunner().invoke(cli.main, ["serve", "--port", "1"])
    assert result.exit_code == 2 and "issuers" in result.output


def test_feedback_stats_command(tmp_path: Path, refs: Any) -> None:
    import cli

    cfg = insecure_config(tmp_path)
    c = TestClient(create_app(cfg, refs=refs))
    body = hook_body([med("d1", "IBUPROFENE 400 mg comprimé", "draft")], [med("a1", "WARFARINE 5 mg comprimé")])
    uid = c.post("/cds-services/order-sign", json=body).json()["cards"][0]["uuid"]
    c.post("/cds-services/order-sign/feedback", json={"feedback": [
        {"card": uid, "outcome": "overridden", "outcomeTimestamp": "2026-01-15T10:00:00Z"}]})
    result = CliRunner().invoke(cli.main, ["feedback", "stats", "--db", cfg.feedback_db])
    assert result.exit_code == 0, result.output
    line = next(ln for ln in result.output.splitlines() if ln.startswith("IX001"))
    assert "100.0" in line
    result = CliRunner().invoke(cli.main, ["feedback", "stats", "--db", cfg.feedback_db, "--json"])
    assert json.loads(result.output)[0]["rule"] == "IX001"
    assert CliRunner().invoke(cli.main, ["feedback", "stats", "--db", str(tmp_path / "none.db")]).exit_code == 2


def test_policy_merge_keeps_global_protection() -> None:
    glob = AlertPolicy(disabled_rules=("EQ",))
    site = AlertPolicy(disabled_rules=("DU",), never_suppress=())
    merged = glob.merged(site)
    assert merged.disabled_rules == ("EQ", "DU") and "contraindication" in merged.never_suppress
    assert replace(merged, never_suppress=()).protected(finding(level="CI")) is False


def test_legacy_medication_prescribe_layout_is_handled(client: TestClient) -> None:
    """PDDI-era requests: drafts in context.medications, prefetch (and stray itemN) inside context."""
    body = {"hook": "medication-prescribe", "hookInstance": "x",
            "context": {"patientId": "p1", "userId": "Practitioner/1",
                        "medications": {"resourceType": "Bundle", "entry": [med("d1", "IBUPROFENE 400 mg", "active")]},
                        "prefetch": {"item1": {"response": {"status": "200 OK"},
                                               "resource": searchset(med("a0", "PARACETAMOL 1 g"))}},
                        "item2": {"response": {"status": "200 OK"},
                                  "resource": searchset(med("a1", "WARFARINE 5 mg comprimé"))}}}
    resp = client.post("/cds-services/medication-prescribe", json=body)
    assert resp.status_code == 200
    assert any("warfarine" in c["summary"].lower() for c in resp.json()["cards"])
    # the same body sent to the order-sign service is refused with a pointer to the right one
    wrong = client.post("/cds-services/order-sign", json=body)
    assert wrong.status_code == 400 and "/cds-services/medication-prescribe" in wrong.json()["issue"][0]["diagnostics"]


def test_fhir_server_outside_the_allow_list_is_not_called(tmp_path: Path, refs: Any) -> None:
    from checker.service.config import FhirFetch

    called: list[str] = []

    def fhir(request: httpx.Request) -> httpx.Response:
        called.append(str(request.url))
        return httpx.Response(200, json=searchset())

    cfg = insecure_config(tmp_path, fhir=FhirFetch(servers={"https://ehr.example.org": ("https://ehr.example.org/fhir",)}))
    c = TestClient(create_app(cfg, refs=refs, fhir_transport=httpx.MockTransport(fhir)))
    body = hook_body([med("d1", "IBUPROFENE 400 mg comprimé", "draft")], prefetch={},
                     fhirServer="https://elsewhere.example/fhir",
                     fhirAuthorization={"access_token": "t", "token_type": "Bearer", "expires_in": 1,
                                        "scope": "s", "subject": "s"})
    resp = c.post("/cds-services/order-sign", json=body)
    assert resp.status_code == 412 and "not allowed" in json.dumps(resp.json()) and called == []


# --- what the prefetch templates ask for, and fetch errors -----------------------------------------


def test_renal_prefetch_template_asks_for_every_code_the_renal_rule_reads(client: TestClient) -> None:
    from checker.referentials import default_referentials
    from checker.rules.patient_risks import renal_value

    observations = default_referentials().get("clinical-facts").observations
    EGFR_CODES, CLCR_CODES = observations["egfr"].codes, observations["creatinine-clearance"].codes
    CREATININE_CODES, LOINC = observations["creatinine"].codes, observations["egfr"].uri
    template = {s["id"]: s for s in client.get("/cds-services").json()["services"]}["order-sign"]["prefetch"]["renal"]
    query = httpx.URL("https://ehr.example.org/fhir/" + template)
    asked = set(query.params["code"].split(","))
    assert {f"{LOINC}|{c}" for c in EGFR_CODES | CLCR_CODES | CREATININE_CODES} <= asked
    # and those are the codes renal_value reads, plus the serum creatinine of the Cockcroft-Gault
    # estimate: an observation with any other LOINC code is not used
    from checker.fhir_input import read

    obs = {"resourceType": "Observation", "id": "o", "status": "final", "subject": {"reference": "Patient/p"},
           "effectiveDateTime": "2026-01-05", "valueQuantity": {"value": 25, "unit": "mL/min"}}
    for code in ("2339-0", *sorted(EGFR_CODES | CLCR_CODES)):
        [record] = read([{"resourceType": "Patient", "id": "p"},
                         {**obs, "code": {"coding": [{"system": LOINC, "code": code}]}}]).records
        assert (renal_value(record) is not None) == (f"{LOINC}|{code}" in asked), code


def _demo_fhir_server(bundle: dict[str, Any], seen: list[httpx.Request]) -> httpx.MockTransport:
    """A FHIR server holding the resources of ``bundle`` and answering the discovery templates' searches
    (patient, status, clinical-status, code filters), as an EHR honouring them would."""
    resources = [e["resource"] for e in bundle["entry"]]

    def matches(res: dict[str, Any], params: httpx.QueryParams) -> bool:
        if params.get("status") and res.get("status") != params["status"]:
            return False
        if params.get("code"):
            wanted = set(params["code"].split(","))
            codings = (res.get("code") or {}).get("coding") or []
            return any(f"{c.get('system')}|{c.get('code')}" in wanted for c in codings)
        return True

    def fhir(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        rtype, _, rid = request.url.path.removeprefix("/fhir/").partition("/")
        if rid:
            hit = next((r for r in resources if r["resourceType"] == rtype and r["id"] == rid), None)
            return httpx.Response(200, json=hit) if hit else httpx.Response(404)
        return httpx.Response(200, json=searchset(*(r for r in resources if r["resourceType"] == rtype
                                                    and matches(r, request.url.params))))
    return httpx.MockTransport(fhir)


def test_demo_egfr_reaches_the_renal_rule_through_the_discovery_template(tmp_path: Path, refs: Any) -> None:
    """Marie Dupont's eGFR is LOINC 62238-1: an EHR answering the ``renal`` template must send it, and the
    service must give the warning ``pertinence check … --select PR003`` gives, not "renal function not
    recorded"."""
    import cli
    from tests.conftest import SAMPLES

    demo = SAMPLES / "demo" / "01-dupont-marie.json"
    res = CliRunner().invoke(cli.main, ["check", str(demo), "--as-of", AS_OF, "--select", "PR003", "--format", "json"])
    # the draft is the metformin line; her tramadol line has its own Beers kidney finding, not the draft's
    [expected] = [f for f in json.loads(res.output)["findings"]
                  if f["implicated"] == ["MedicationRequest/dupont-metformine"]]
    assert expected["severity"] == "warning"

    bundle = json.loads(demo.read_text(encoding="utf-8"))
    [draft] = [e["resource"] for e in bundle["entry"] if e["resource"]["id"] == "dupont-metformine"]
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"] is not draft]  # the server: the rest
    seen: list[httpx.Request] = []
    app = create_app(insecure_config(tmp_path), refs=refs, fhir_transport=_demo_fhir_server(bundle, seen))
    body = {"hook": "order-sign", "hookInstance": str(uuid.uuid4()), "fhirServer": "https://ehr.example.org/fhir",
            "fhirAuthorization": {"access_token": "t", "token_type": "Bearer", "expires_in": 300,
                                  "scope": "patient/*.read", "subject": "pertinence"},
            "context": {"userId": "Practitioner/dr-lefebvre", "patientId": "dupont-marie",
                        "draftOrders": searchset({**draft, "status": "draft"})}}
    resp = TestClient(app).post("/cds-services/order-sign", json=body)
    assert resp.status_code == 200
    renal = [c for c in resp.json()["cards"] if "PR003" in c["detail"]]
    assert [(c["summary"], c["indicator"], c["extension"][cds_hooks.codes.CARD_EXTENSION]["fingerprint"])
            for c in renal] == [(expected["summary"], "warning", expected["fingerprint"])]
    assert not any(c["source"]["topic"]["code"] == "data-missing" for c in resp.json()["cards"])
    assert any(r.url.path.endswith("/Observation") and "62238-1" in r.url.params.get("code", "") for r in seen)


@pytest.mark.parametrize(("answer", "detail"), [
    (httpx.Response(500, text="boom"), "medications: FHIR server answered HTTP 500"),
    (httpx.Response(200, json={"resourceType": "Bundle", "entry": 5}),
     "medications: malformed FHIR server answer (response.entry: a Bundle's entry must be an array, not number)"),
    (httpx.Response(200, json={"resourceType": "Bundle", "entry": [], "link": 5}),
     "medications: malformed FHIR server answer (response.link: a Bundle's link must be an array, not number)"),
])
def test_412_details_name_the_missing_data_once_and_why(tmp_path: Path, refs: Any, answer: httpx.Response,
                                                        detail: str) -> None:
    app = create_app(insecure_config(tmp_path), refs=refs, fhir_transport=httpx.MockTransport(lambda r: answer))
    body = hook_body([med("d1", "IBUPROFENE 400 mg comprimé", "draft")], prefetch={},
                     fhirServer="https://ehr.example.org/fhir",
                     fhirAuthorization={"access_token": "t", "token_type": "Bearer", "expires_in": 1,
                                        "scope": "s", "subject": "s"})
    resp = TestClient(app).post("/cds-services/order-sign", json=body)
    assert resp.status_code == 412 and is_outcome(resp)
    assert [i["diagnostics"] for i in resp.json()["issue"][1:]] == [detail]


def test_a_weight_under_another_key_does_not_cover_renal_function() -> None:
    """Prefetch under another service's key names: any Observation used to cover both renal function and
    weight, so an EHR sending only a weight got no renal fetch and no "not checked" notice."""
    from checker.service.prefetch import coverage

    def obs(code: str) -> dict:
        return {"resourceType": "Observation", "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": code}]}}

    def searchset(url: str, *resources: dict) -> dict:
        return {"resourceType": "Bundle", "type": "searchset", "link": [{"relation": "self", "url": url}],
                "entry": [{"resource": r} for r in resources]}

    only_weight = coverage({"vitals": searchset("https://ehr/fhir/Observation?patient=1&code=29463-7", obs("29463-7"))})
    assert "weight" in only_weight.covered and "renal" in only_weight.missing
    egfr = coverage({"labs": searchset("https://ehr/fhir/Observation?patient=1&code=http://loinc.org|62238-1")})
    assert "renal" in egfr.covered and "weight" in egfr.missing  # asked for eGFR, none found: covered
    labs = coverage({"labs": searchset("https://ehr/fhir/Observation?patient=1&category=laboratory")})
    assert "renal" in labs.covered and "weight" in labs.missing
    everything = coverage({"obs": searchset("https://ehr/fhir/Observation?patient=1")})
    assert {"renal", "weight"} <= everything.covered
    assert "renal" in coverage({"x": obs("62238-1")}).covered


@pytest.mark.parametrize("section", ["limits", "feedback"])
def test_a_misspelt_limit_is_refused_not_ignored(tmp_path: Path, section: str) -> None:
    """A typo in a limit's name ("max_draft_order") would leave the default in force unnoticed."""
    from checker.service.config import ConfigError

    path = tmp_path / "pertinence.toml"
    path.write_text(f"[{section}]\nmax_draft_order = 10\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(path)
