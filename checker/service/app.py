"""The CDS Hooks 2.0 service (FastAPI): discovery, order-select / order-sign, feedback.

Specification: HL7 CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/): discovery at
``GET {base}/cds-services``; a service is called with ``POST {base}/cds-services/{id}`` and answers
``{"cards": [...]}`` (412 when the data it needs is neither prefetched nor fetchable); feedback at
``POST {base}/cds-services/{id}/feedback``; every call carries a signed JWT (see :mod:`.auth`).

Referentials are loaded once, when the app is created, and shared by all requests (they are
read-only); the rules run in a worker thread under a per-request time limit.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import uuid
import weakref
from collections.abc import Mapping
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from checker.findings import Report, Severity
from checker.formats.cds_hooks import CARD_NAMESPACE, TOPIC_SYSTEM, cards as make_cards
from checker.service.auth import AuthError, JwtVerifier
from checker.service.config import AlertPolicy, ServiceConfig
from checker.service.errors import ServiceError, outcome_response
from checker.service.feedback import FeedbackStore
from checker.service.prefetch import (PREFETCH, REQUIRED, bundle_entries, bundle_shape_problems, coverage,
                                      fetch_missing, server_allowed)

if TYPE_CHECKING:
    from checker.model import MedicationOrder, PatientRecord, ServiceOrder

log = logging.getLogger("pertinence.service")

SERVICES: dict[str, dict[str, str]] = {
    "order-select": {
        "hook": "order-select",
        "title": "Pertinence : contrôle à la sélection",
        "description": "Checks the selected draft orders (MedicationRequest, ServiceRequest) against the patient's "
        "active orders, conditions, allergies and recent results: interactions, duplicates, patient risks, "
        "cheaper equivalents, off-protocol exams. Every card cites its source and edition.",
    },
    "order-sign": {
        "hook": "order-sign",
        "title": "Pertinence : contrôle à la signature",
        "description": "Checks every draft order about to be signed against the patient's active orders, conditions, "
        "allergies and recent results; cards cite their source and edition.",
    },
    "medication-prescribe": {
        "hook": "medication-prescribe",
        "title": "Pertinence : contrôle de prescription (ancien hook)",
        "description": "The order-sign checks for EHRs still calling the retired medication-prescribe hook "
        "(draft medications in context.medications).",
    },
}

LEGACY_ORDER_TYPES = {
    "MedicationOrder": "DSTU2 (use an R4 MedicationRequest)",
    "ProcedureRequest": "STU3 (use an R4 ServiceRequest)",
    "DiagnosticOrder": "DSTU2 (use an R4 ServiceRequest)",
    "ReferralRequest": "STU3 (use an R4 ServiceRequest)",
}

_CODING = {"type": "object", "required": ["code", "system"],
           "properties": {"code": {"type": "string"}, "system": {"type": "string"}, "display": {"type": "string"}}}
HOOK_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["hook", "hookInstance", "context"],
    "properties": {
        "hook": {"type": "string"},
        "hookInstance": {"type": "string"},
        "fhirServer": {"type": "string", "format": "uri"},
        "fhirAuthorization": {
            "type": "object",
            "required": ["access_token", "token_type", "expires_in", "scope", "subject"],
            "properties": {"access_token": {"type": "string"}, "token_type": {"type": "string"},
                           "expires_in": {"type": "integer"}, "scope": {"type": "string"},
                           "subject": {"type": "string"}},
        },
        "context": {"type": "object", "properties": {
            "userId": {"type": "string"}, "patientId": {"type": "string"}, "encounterId": {"type": "string"},
            "selections": {"type": "array", "items": {"type": "string"}},
            "draftOrders": {"type": "object", "description": "FHIR R4 Bundle of draft orders"},
        }},
        "prefetch": {"type": "object", "additionalProperties": {"type": ["object", "null"]}},
        "extension": {"type": "object"},
    },
}
FEEDBACK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["feedback"],
    "properties": {"feedback": {"type": "array", "items": {
        "type": "object",
        "required": ["card", "outcome", "outcomeTimestamp"],
        "properties": {
            "card": {"type": "string"},
            "outcome": {"type": "string", "enum": ["accepted", "overridden"]},
            "acceptedSuggestions": {"type": "array", "items": {
                "type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}},
            "overrideReason": {"type": "object", "properties": {"reason": _CODING, "userComment": {"type": "string"}}},
            "outcomeTimestamp": {"type": "string", "format": "date-time"},
        },
    }}},
}
_EXAMPLE_ORDER = {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                  "subject": {"reference": "Patient/p1"}, "authoredOn": "2026-01-10",
                  "dosageInstruction": [{"text": "1 comprimé par jour"}]}
EXAMPLE_REQUEST: dict[str, Any] = {
    "hook": "order-sign",
    "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
    "context": {"userId": "Practitioner/1", "patientId": "p1", "draftOrders": {"resourceType": "Bundle", "entry": [
        {"resource": {**_EXAMPLE_ORDER, "id": "d1", "status": "draft",
                      "medicationCodeableConcept": {"text": "IBUPROFENE 400 mg comprimé"}}}]}},
    "prefetch": {
        "patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1950-03-02", "gender": "female"},
        "medications": {"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": {**_EXAMPLE_ORDER, "id": "a1", "medicationCodeableConcept": {"text": "WARFARINE 5 mg comprimé"}}}]},
        "conditions": None, "allergies": None, "renal": None, "weight": None,
    },
}
_OUTCOME = {"content": {"application/json": {"schema": {"type": "object", "properties": {
    "resourceType": {"type": "string"}, "issue": {"type": "array", "items": {"type": "object"}}}}}}}
_CARDS = {"type": "object", "required": ["cards"], "properties": {"cards": {"type": "array", "items": {
    "type": "object", "required": ["summary", "indicator", "source"],
    "properties": {"uuid": {"type": "string"}, "summary": {"type": "string", "maxLength": 140},
                   "detail": {"type": "string"}, "indicator": {"type": "string", "enum": ["info", "warning", "critical"]},
                   "source": {"type": "object"}, "suggestions": {"type": "array"},
                   "selectionBehavior": {"type": "string"}, "overrideReasons": {"type": "array"}}}}}}


class BodyTooLarge(Exception):
    """The request body exceeds the configured limit."""


class _BodyLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` (declared or actually streamed)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                resp = outcome_response(413, f"request body over {self.max_bytes} bytes")
                await resp(scope, receive, send)
                return
        seen = 0

        async def limited() -> dict[str, Any]:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge()
            return message

        await self.app(scope, limited, send)


class ServiceState:
    """What the app shares across requests: config, referentials, verifier, feedback store."""

    def __init__(self, config: ServiceConfig, refs: Any, store: FeedbackStore, verifier: JwtVerifier | None) -> None:
        self.config = config
        self.refs = refs
        self.store = store
        self.verifier = verifier
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary())
        self.fhir_transport: Any = None
        self._identities: dict[Any, Any] = {}
        self._identities_lock = threading.Lock()

    def identify(self, records: list[Any]) -> None:
        """Fill ``order.identity`` from a cache shared across requests (the same drug names come back
        all day), identifying the new ones. The key is what identification reads: the medication
        concept, the ingredients and the form."""
        from checker.drugs import identify

        for record in records:
            for order in record.medication_orders:
                if order.identity is not None:
                    continue
                key = (order.medication, order.ingredients, order.medication_form)
                hit = self._identities.get(key)
                if hit is None:
                    hit = identify(order, self.refs)
                    with self._identities_lock:
                        if len(self._identities) >= 20_000:
                            self._identities.clear()
                        self._identities[key] = hit
                order.identity = hit

    def slots(self) -> asyncio.Semaphore:
        """The concurrency limiter of the running event loop (one per loop: test clients, servers)."""
        key = asyncio.get_running_loop()
        sem = self._slots.get(key)
        if sem is None:
            sem = self._slots[key] = asyncio.Semaphore(self.config.limits.max_concurrent_checks)
        return sem


def load_referentials() -> Any:
    """Load every referential the rules use, once (start-up cost, not per request)."""
    from checker.referentials import default_referentials
    from checker.registry import all_rules

    refs = default_referentials()
    refs.verify_all()  # an altered referential: the service refuses to start (ReferentialError)
    for ref_id in sorted({r for rule in all_rules() for r in rule.referentials}):
        if refs.has(ref_id):
            refs.get(ref_id)
    return refs


def create_app(config: ServiceConfig | None = None, *, refs: Any = None, fhir_transport: Any = None) -> FastAPI:
    """Build the CDS Hooks app: referentials loaded and feedback store opened now.

    ``refs``: referentials to use (default: the shipped ones, loaded here); ``fhir_transport``: an
    httpx transport for the FHIR server reads (tests use ``httpx.MockTransport``).
    """
    config = config or ServiceConfig()
    verifier = JwtVerifier(config.auth) if config.auth.enabled else None
    if verifier is None:
        log.warning("AUTHENTICATION DISABLED (--insecure-dev): any caller can use this service. Local demos only.")
    elif not config.base_url:
        log.warning("server.base_url is not set: the JWT audience is checked against the URL the request names "
                    "(Host header); set base_url to the service's public URL")
    refs = refs if refs is not None else load_referentials()
    store = FeedbackStore(config.feedback_db)
    state = ServiceState(config, refs, store, verifier)
    state.fhir_transport = fhir_transport

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        yield
        store.close()

    app = FastAPI(
        title="Pertinence CDS Hooks service",
        version=_version(),
        description="CDS Hooks 2.0 service: guideline conformity checks of draft orders, each card citing its "
        "source. Authentication: a JWT signed by the EHR in `Authorization: Bearer` (CDS Hooks 2.0, "
        "'Trusting CDS Clients').",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.pertinence = state
    app.add_middleware(_BodyLimit, max_bytes=config.limits.max_body_bytes)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        return outcome_response(exc.status, exc.message, exc.details, exc.headers)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        return outcome_response(413, f"request body over {config.limits.max_body_bytes} bytes")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        msgs = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in exc.errors()][:20]
        return outcome_response(400, "invalid request", msgs)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return outcome_response(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error on %s %s", request.method, request.url.path)
        return outcome_response(500, "internal error (logged on the server); no decision support was produced")

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        """Liveness probe (no authentication, no data)."""
        return {"status": "ok"}

    @app.get("/cds-services", summary="CDS Hooks discovery",
             responses={401: _OUTCOME})
    async def discovery(request: Request) -> dict[str, Any]:
        _authenticate(state, request)
        return {"services": [
            {"hook": s["hook"], "title": s["title"], "description": s["description"], "id": sid,
             "prefetch": dict(PREFETCH)}
            for sid, s in SERVICES.items()
        ]}

    @app.post(
        "/cds-services/{service_id}",
        summary="Call a CDS service (order-select, order-sign, medication-prescribe)",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
            "schema": HOOK_REQUEST_SCHEMA, "example": EXAMPLE_REQUEST}}}},
        responses={200: {"content": {"application/json": {"schema": _CARDS}}}, 400: _OUTCOME, 401: _OUTCOME,
                   404: _OUTCOME, 412: _OUTCOME, 413: _OUTCOME, 503: _OUTCOME},
    )
    async def call_service(service_id: str, request: Request) -> JSONResponse:
        service = _service(service_id)
        claims = _authenticate(state, request)
        body = _json_object(await request.body())
        result = await _handle_hook(state, service_id, service["hook"], body, claims)
        return JSONResponse(result)

    @app.post(
        "/cds-services/{service_id}/feedback",
        summary="Feedback on cards (accepted / overridden)",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": FEEDBACK_SCHEMA}}}},
        responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}, 400: _OUTCOME,
                   401: _OUTCOME, 404: _OUTCOME, 413: _OUTCOME},
    )
    async def feedback(service_id: str, request: Request) -> JSONResponse:
        _service(service_id)
        claims = _authenticate(state, request)
        body = _json_object(await request.body())
        items = _feedback_items(body)
        n = await asyncio.to_thread(state.store.record, service_id, items, claims.get("iss"))
        return JSONResponse({"stored": n})

    return app


def _version() -> str:
    from checker import __version__

    return __version__


def _service(service_id: str) -> dict[str, str]:
    service = SERVICES.get(service_id)
    if service is None:
        raise ServiceError(404, f"no CDS service {service_id!r}; see GET /cds-services "
                                f"({', '.join(SERVICES)})")
    return service


def _authenticate(state: ServiceState, request: Request) -> dict[str, Any]:
    if state.verifier is None:
        return {}
    base = state.config.base_url or str(request.base_url)
    audience = base.rstrip("/") + request.url.path
    try:
        return state.verifier.verify(request.headers.get("authorization"), audience)
    except AuthError as exc:
        raise ServiceError(401, f"not authenticated: {exc}", headers={"WWW-Authenticate": "Bearer"}) from None


def _json_object(raw: bytes) -> dict[str, Any]:
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if not raw.strip():
        raise ServiceError(400, "empty request body: expected a JSON object")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        head = raw.lstrip()[:40].decode("utf-8", "replace")
        hint = " (this looks like a curl command, not its JSON payload)" if head.startswith("curl ") else ""
        raise ServiceError(400, f"request body is not valid JSON: {exc}{hint}") from None
    if not isinstance(data, dict):
        raise ServiceError(400, f"request body must be a JSON object, not {type(data).__name__}")
    return data


def _feedback_items(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    items = body.get("feedback")
    if not isinstance(items, list) or not items:
        raise ServiceError(400, "feedback must be a non-empty array")
    if len(items) > 1000:
        raise ServiceError(413, "more than 1000 feedback items in one request")
    problems: list[str] = []
    for i, item in enumerate(items):
        where = f"feedback[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected an object")
            continue
        if not isinstance(item.get("card"), str) or not item["card"]:
            problems.append(f"{where}.card: the card uuid is required")
        if item.get("outcome") not in ("accepted", "overridden"):
            problems.append(f"{where}.outcome: must be accepted or overridden")
        ts = item.get("outcomeTimestamp")
        if not isinstance(ts, str) or not _is_timestamp(ts):
            problems.append(f"{where}.outcomeTimestamp: an ISO date-time is required")
        acc = item.get("acceptedSuggestions")
        if item.get("outcome") == "accepted":
            if not isinstance(acc, list) or not acc or not all(isinstance(a, dict) and isinstance(a.get("id"), str)
                                                               for a in acc):
                problems.append(f"{where}.acceptedSuggestions: required for accepted outcomes, items {{id}}")
        elif acc is not None and not isinstance(acc, list):
            problems.append(f"{where}.acceptedSuggestions: must be an array")
        reason = item.get("overrideReason")
        if reason is not None:
            if not isinstance(reason, dict):
                problems.append(f"{where}.overrideReason: expected an object")
            else:
                coding = reason.get("reason")
                if coding is not None and not (isinstance(coding, dict) and isinstance(coding.get("code"), str)
                                               and isinstance(coding.get("system", ""), str)
                                               and isinstance(coding.get("display", ""), str)):
                    problems.append(f"{where}.overrideReason.reason: expected a Coding with a code")
                if not isinstance(reason.get("userComment", ""), str):
                    problems.append(f"{where}.overrideReason.userComment: expected a string")
    if problems:
        raise ServiceError(400, "invalid feedback", problems[:20])
    return items


def _is_timestamp(value: str) -> bool:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True
    except ValueError:
        return False


# --- the hook call -------------------------------------------------------------------------------


def _normalize_legacy(body: dict[str, Any]) -> dict[str, Any]:
    """Older PDDI-era requests put ``prefetch`` (and stray ``itemN`` results) inside ``context``:
    move them to the top-level ``prefetch`` where CDS Hooks 1.0+ puts them."""
    context = body.get("context")
    if not isinstance(context, dict) or isinstance(body.get("prefetch"), dict):
        return body
    moved: dict[str, Any] = {}
    if isinstance(context.get("prefetch"), dict):
        moved.update(context["prefetch"])
    for key, value in context.items():
        if re.fullmatch(r"item\d+", key) and isinstance(value, dict):
            moved.setdefault(key, value)
    if not moved:
        return body
    new_context = {k: v for k, v in context.items() if k != "prefetch" and k not in moved}
    return {**body, "context": new_context, "prefetch": moved}


def _validate_request(body: Mapping[str, Any], hook: str, service_id: str) -> None:
    problems = []
    got = body.get("hook")
    if not isinstance(got, str) or not got:
        problems.append("hook: required (the hook that triggered this call)")
    elif got != hook:
        alt = next((sid for sid, s in SERVICES.items() if s["hook"] == got), None)
        hint = f"; call /cds-services/{alt}" if alt else f"; this service handles {hook} only"
        raise ServiceError(400, f"hook {got!r} sent to the {service_id!r} service{hint}")
    if not isinstance(body.get("hookInstance"), str) or not body.get("hookInstance"):
        problems.append("hookInstance: required (a UUID for this call)")
    if not isinstance(body.get("context"), dict):
        problems.append("context: required object")
    if "prefetch" in body and not isinstance(body["prefetch"], dict):
        problems.append("prefetch: must be an object")
    if "fhirServer" in body and not isinstance(body["fhirServer"], str):
        problems.append("fhirServer: must be a URL string")
    auth = body.get("fhirAuthorization")
    if auth is not None and not (isinstance(auth, dict) and isinstance(auth.get("access_token"), str)):
        problems.append("fhirAuthorization: must be an object with access_token")
    if problems:
        raise ServiceError(400, "not a valid CDS Hooks request", problems)
    context = body["context"]
    drafts_key = "medications" if hook == "medication-prescribe" else "draftOrders"
    drafts = next((context[k] for k in (drafts_key, "draftOrders", "medications") if context.get(k) is not None), None)
    if drafts is None:
        raise ServiceError(400, f"context.{drafts_key} is required for the {hook} hook")
    if not isinstance(drafts, (dict, list)):
        raise ServiceError(400, f"context.{drafts_key} must be a FHIR Bundle")
    legacy = sorted({rt for rt in _types_in(drafts) if rt in LEGACY_ORDER_TYPES})
    if legacy:
        raise ServiceError(400, "draft orders in an older FHIR version cannot be checked: "
                           + "; ".join(f"{rt} is {LEGACY_ORDER_TYPES[rt]}" for rt in legacy))
    sel = context.get("selections")
    if sel is not None and not (isinstance(sel, list) and all(isinstance(s, str) for s in sel)):
        raise ServiceError(400, "context.selections must be an array of references")


def _check_bundle_shapes(body: Mapping[str, Any]) -> None:
    """400 when a Bundle of the context or the prefetch (also the older ``context.prefetch`` layout) has an
    ``entry`` or ``link`` that is not an array: its orders or results cannot be read, so nothing is checked."""
    problems: list[str] = []
    context = body.get("context")
    for key, value in context.items() if isinstance(context, dict) else ():
        if key == "prefetch" and isinstance(value, dict):
            for k, v in value.items():
                problems += bundle_shape_problems(v, f"context.prefetch.{k}")
        else:
            problems += bundle_shape_problems(value, f"context.{key}")
    prefetch = body.get("prefetch")
    for key, value in prefetch.items() if isinstance(prefetch, dict) else ():
        problems += bundle_shape_problems(value, f"prefetch.{key}")
    if problems:
        raise ServiceError(400, "malformed FHIR Bundle; no decision support was produced", problems[:20])


def _types_in(value: Any, depth: int = 0) -> list[str]:
    if depth > 8:
        return []
    out: list[str] = []
    if isinstance(value, list):
        for v in value:
            out += _types_in(v, depth + 1)
    elif isinstance(value, dict):
        rt = value.get("resourceType")
        if rt == "Bundle":
            for e in bundle_entries(value):
                out += _types_in(e, depth + 1)
        elif isinstance(rt, str):
            out.append(rt)
        elif isinstance(value.get("resource"), dict):
            out += _types_in(value["resource"], depth + 1)
    return out


def _count_resources(body: Mapping[str, Any]) -> int:
    n = len(_types_in(list((body.get("context") or {}).values())))
    for value in (body.get("prefetch") or {}).values():
        n += len(_types_in(value))
    return n


def _draft_resources(value: Any) -> dict[str, dict[str, Any]]:
    """Raw draft resources by ``Type/id`` (what update actions start from)."""
    out: dict[str, dict[str, Any]] = {}
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            rt = v.get("resourceType")
            if rt == "Bundle":
                stack.extend(bundle_entries(v))
            elif isinstance(rt, str) and isinstance(v.get("id"), str):
                out[f"{rt}/{v['id']}"] = v
            elif isinstance(v.get("resource"), dict):
                stack.append(v["resource"])
    return out


async def _handle_hook(state: ServiceState, service_id: str, hook: str, body: dict[str, Any],
                       claims: Mapping[str, Any]) -> dict[str, Any]:
    cfg = state.config
    original = body
    body = _normalize_legacy(body)
    _validate_request(body, hook, service_id)
    _check_bundle_shapes(original)
    if _count_resources(body) > cfg.limits.max_resources:
        raise ServiceError(413, f"more than {cfg.limits.max_resources} resources in one request")
    prefetch = dict(body.get("prefetch") or {})
    context = body["context"]
    draft_types = _types_in([context.get("draftOrders"), context.get("medications")])
    required = REQUIRED if "MedicationRequest" in draft_types else ()
    cov = coverage(prefetch, required=required)
    fetch_errors: dict[str, str] = {}
    server, auth = body.get("fhirServer"), body.get("fhirAuthorization")
    if cov.missing and server and isinstance(auth, dict):
        if not server_allowed(server, cfg.fhir):
            fetch_errors = {k: f"fhirServer {server} is not allowed by this service's configuration"
                            for k in cov.missing}
        else:
            client = None
            if state.fhir_transport is not None:
                import httpx

                client = httpx.AsyncClient(transport=state.fhir_transport, timeout=cfg.fhir.timeout_seconds)
            try:
                got, fetch_errors = await fetch_missing(cov.missing, server=server, token=auth["access_token"],
                                                        context=body["context"], cfg=cfg.fhir, client=client)
            finally:
                if client is not None:
                    await client.aclose()
            prefetch.update(got)
            cov = coverage(prefetch, required=required)
    if cov.missing_required:
        details = [f"{k}: {fetch_errors[k]}" if k in fetch_errors else
                   f"{k}: not prefetched ({PREFETCH[k]}) and no fhirServer with fhirAuthorization to fetch it"
                   for k in cov.missing_required]
        raise ServiceError(412, "the data needed to check these orders is missing; no decision support was "
                                "produced", details)
    body = {**body, "prefetch": prefetch}
    policy = cfg.policy_for(claims.get("tenant"), claims.get("iss"))
    # The check runs in a worker thread, which cannot be interrupted: a slot is held until the thread
    # really ends, so slow requests cannot pile up threads beyond max_concurrent_checks.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + cfg.limits.timeout_seconds
    sem = state.slots()
    try:
        async with asyncio.timeout_at(deadline):
            await sem.acquire()
    except TimeoutError:
        raise _timeout(cfg.limits.timeout_seconds) from None
    try:
        fut = loop.run_in_executor(None, _evaluate, state, service_id, hook, body, policy, cov.missing_optional)
    except BaseException:
        sem.release()
        raise
    fut.add_done_callback(lambda _f: sem.release())
    try:
        async with asyncio.timeout_at(deadline):
            result = await asyncio.shield(fut)
    except TimeoutError:
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieve a late error quietly
        raise _timeout(cfg.limits.timeout_seconds) from None
    return result


def _timeout(seconds: float) -> ServiceError:
    return ServiceError(503, f"the check took longer than {seconds} s; no decision support was produced",
                        headers={"Retry-After": "1"})


def _orders(record: PatientRecord) -> tuple[MedicationOrder | ServiceOrder, ...]:
    """The record's medication then service orders."""
    return (*record.medication_orders, *record.service_orders)


def _evaluate(state: ServiceState, service_id: str, hook: str, body: dict[str, Any], policy: AlertPolicy,
              missing_optional: list[str]) -> dict[str, Any]:
    """Read the request, run the rules and build the cards (runs in a worker thread)."""
    from checker import fhir_input
    from checker.api import check_records

    cfg = state.config
    as_of = date.fromisoformat(cfg.as_of) if cfg.as_of else None
    ingestion = fhir_input.read(body, as_of=as_of)
    draft_errors = [e for e in ingestion.errors if "/context/" in e.location]
    if draft_errors:
        raise ServiceError(400, "a draft order could not be read; it was not checked",
                           [f"{e.location}: {e.message}" for e in draft_errors[:20]])
    records = ingestion.records
    drafts = {o.ref for r in records for o in _orders(r) if o.draft}
    if not drafts:
        return {"cards": []}  # nothing this service checks (e.g. a NutritionOrder): nothing to say
    selections = body["context"].get("selections") if hook == "order-select" else None
    focus = {s for s in selections or () if s in drafts} or drafts
    state.identify(records)
    report = check_records(records, counts=ingestion.counts, errors=ingestion.errors, as_of=as_of,
                           jurisdiction=cfg.jurisdiction, lang=cfg.lang, refs=state.refs)
    shown = policy.apply(report.findings, hook)
    context = body["context"]
    raw_drafts = _draft_resources([context.get("draftOrders"), context.get("medications")])
    labels = {o.ref: o.label for r in records for o in _orders(r) if o.label}
    out = make_cards(report, draft_refs=focus, draft_resources=raw_drafts, findings=shown, order_labels=labels)
    by_uuid = {str(uuid.uuid5(CARD_NAMESPACE, f.fingerprint)): f for f in shown}
    state.store.log_cards(service_id, [(c["uuid"], by_uuid[c["uuid"]].rule, by_uuid[c["uuid"]].fingerprint,
                                        by_uuid[c["uuid"]].category, c["indicator"])
                                       for c in out if c.get("uuid") in by_uuid])
    unchecked = (_unchecked_card(report, missing_optional, ingestion.errors)
                 if cfg.warn_missing_data and policy.passes_floor(Severity.INFO, hook) else None)
    if unchecked is not None:
        out.append(unchecked)
    return {"cards": out}


_MISSING_TEXT = {
    "fr": {
        "patient": "patient (âge, sexe)", "medications": "traitements en cours", "conditions": "pathologies", "allergies": "allergies", "renal": "fonction rénale (créatinine, DFG)",
        "weight": "poids",
        "summary": "Contrôle partiel : {what} non fournis par le DPI",
        "detail": "Le service n'a reçu ni pu obtenir : {what}. Les contrôles qui en dépendent "
                  "(contre-indications, allergies, adaptations de dose) n'ont pas été faits pour cette prescription.",
        "errors": "Éléments du dossier illisibles, ignorés",
        "several": "{n} types de données",
    },
    "en": {
        "patient": "patient (age, sex)", "medications": "current medications", "conditions": "conditions", "allergies": "allergies", "renal": "renal function (creatinine, eGFR)",
        "weight": "weight",
        "summary": "Partial check: {what} not provided by the EHR",
        "detail": "The service neither received nor could fetch: {what}. The checks that need them "
                  "(contraindications, allergies, dose adjustments) were not done for these orders.",
        "errors": "Unreadable record items, skipped",
        "several": "{n} kinds of data",
    },
}


def _unchecked_card(report: Report, missing: list[str], errors: list[Any]) -> dict[str, Any] | None:
    """An info card saying what could not be checked (never a silent "all clear")."""
    if not missing and not errors:
        return None
    t = _MISSING_TEXT.get(report.lang, _MISSING_TEXT["fr"])
    parts = [t[k] for k in missing]
    what = ", ".join(parts) if parts else t["errors"].lower()
    detail = t["detail"].format(what=what) if parts else ""
    if errors:
        detail += ("\n\n" if detail else "") + f"**{t['errors']}** :\n" + "\n".join(
            f"- `{e.location}` : {e.message}" for e in errors[:10])
    summary = t["summary"].format(what=what)
    if len(summary) >= 140:
        summary = t["summary"].format(what=t["several"].format(n=len(parts)))
    return {
        "uuid": str(uuid.uuid5(CARD_NAMESPACE, "unchecked\x1f" + "\x1f".join(missing))),
        "summary": summary,
        "indicator": "info",
        "detail": detail,
        "source": {"label": "Pertinence (CDS Hooks 2.0 prefetch)", "url": "https://cds-hooks.hl7.org/2.0/#prefetch-template",
                   "topic": {"system": TOPIC_SYSTEM, "code": "data-missing", "display": "data-missing"}},
    }

