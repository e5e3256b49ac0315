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
import gc
import hashlib
import logging
import re
import threading
import uuid
import weakref
from collections.abc import Mapping
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from checker import __version__, fhir_input
from checker.api import CheckCancelled, check_records
from checker.drugs import identify
from checker.findings import Report, Severity
from checker.formats import codes
from checker.formats.catalogue import msg, table
from checker.formats.cds_hooks import OVERRIDE_SYSTEM, TOPIC_SYSTEM, cards as make_cards, override_display
from checker.memo import forget_request_words
from checker.model import MedicationOrder, PatientRecord, ServiceOrder
from checker.referentials import default_referentials
from checker.registry import all_rules
from checker.service.auth import AuthError, JwtVerifier
from checker.service.config import AlertPolicy, ServiceConfig
from checker.service.errors import ServiceError, outcome_response
from checker.service.feedback import FeedbackLimits, FeedbackRefused, FeedbackStore
from checker.service.prefetch import (PREFETCH, REQUIRED, NotBound, bound_server, bundle_entries,
                                      bundle_shape_problems, coverage, fetch_missing, incomplete_prefetch,
                                      template_problems)

log = logging.getLogger("pertinence.service")

SERVICES: dict[str, dict[str, str]] = {  # worded (title, description) by the catalogue's cds_service table
    "order-select": {"hook": "order-select"},
    "order-sign": {"hook": "order-sign"},
    "medication-prescribe": {"hook": "medication-prescribe"},
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
        "conditions": None, "allergies": None, "renal": None, "weight": None, "pregnancy": None, "results": None,
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


def _is_json(content_type: str) -> bool:
    """``application/json`` or an ``application/*+json`` type (``application/fhir+json``), any parameters."""
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (mime.startswith("application/") and mime.endswith("+json"))


class _JsonOnly:
    """ASGI middleware: a POST to the CDS services whose Content-Type is not JSON gets 415, unread."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path", "").startswith("/cds-services"):
            ctype = dict(scope.get("headers") or []).get(b"content-type", b"").decode("latin-1")
            if not _is_json(ctype):
                shown = ctype[:80] or "none"
                resp = outcome_response(415, f"Content-Type {shown!r} is not JSON; send application/json")
                await resp(scope, receive, send)
                return
        await self.app(scope, receive, send)


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

    def identify(self, records: list[Any], should_stop: Any = None) -> None:
        """Fill ``order.identity`` from a cache shared across requests (the same drug names come back
        all day), identifying the new ones. The key is what identification reads: the medication
        concept, the ingredients and the form."""
        for record in records:
            for order in record.medication_orders:
                if order.identity is not None:
                    continue
                if should_stop is not None and should_stop():
                    raise CheckCancelled("stopped while identifying the medications")
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
    refs = default_referentials()
    refs.verify_all()  # an altered referential: the service refuses to start (ReferentialError)
    for ref_id in sorted({r for rule in all_rules() for r in rule.referentials}):
        if refs.has(ref_id):
            refs.get(ref_id)
    return refs


def warm_up(state: ServiceState) -> None:
    """Check the discovery example (ibuprofen drafted over warfarin) once, before serving, and log no
    card: the look-up structures the rules build on first use are then ready (the load benchmark's
    first order-sign on a fresh process: 45 ms of CPU without it, 20 ms with it, 6–9 ms the next ones)."""
    cfg = state.config
    as_of = date.fromisoformat(cfg.as_of) if cfg.as_of else None
    body = orjson.loads(orjson.dumps(EXAMPLE_REQUEST))
    ingestion = fhir_input.read(body, as_of=as_of)
    state.identify(ingestion.records)
    report = check_records(ingestion.records, counts=ingestion.counts, as_of=as_of, jurisdiction=cfg.jurisdiction,
                           lang=cfg.lang, refs=state.refs)
    drafts = {o.ref for r in ingestion.records for o in _orders(r) if o.draft}
    make_cards(report, draft_refs=drafts, findings=cfg.alerts.apply(report.findings, "order-sign"), fresh_ids=True)


SERVING_GC_THRESHOLDS = (10_000, 10, 10)
"""Collector thresholds of a serving process: the youngest generation collected every 10,000
allocations instead of 700 (one order-sign request allocates tens of thousands of short-lived objects)."""


def settle_heap() -> None:
    """Prepare a serving process's heap once its referentials are loaded and warmed up: those objects
    live as long as the process, so they are moved out of the cyclic collector's sight
    (``gc.freeze``), and young collections are made rarer (:data:`SERVING_GC_THRESHOLDS`). On the
    load benchmark's order-sign request: about 10.6 ms of CPU before, 8 ms after."""
    gc.freeze()
    gc.set_threshold(*SERVING_GC_THRESHOLDS)


def create_app(config: ServiceConfig | None = None, *, refs: Any = None, fhir_transport: Any = None,
               warm: bool = False) -> FastAPI:
    """Build the CDS Hooks app: referentials loaded and feedback store opened now.

    ``refs``: referentials to use (default: the shipped ones, loaded here); ``fhir_transport``: an
    httpx transport for the FHIR server reads (tests use ``httpx.MockTransport``); ``warm``: run
    :func:`warm_up` then :func:`settle_heap` before returning (what the serving command and the
    workers' factory do: the process is then a server).
    """
    config = config or ServiceConfig()
    verifier = JwtVerifier(config.auth) if config.auth.enabled else None
    if verifier is None:
        log.warning("AUTHENTICATION DISABLED (--insecure-dev): any caller can use this service. Local demos only.")
    elif not config.base_url:
        log.warning("server.base_url is not set: the JWT audience is checked against the URL the request names "
                    "(Host header); set base_url to the service's public URL")
    refs = refs if refs is not None else load_referentials()
    store = FeedbackStore(config.feedback_db, config.feedback)
    state = ServiceState(config, refs, store, verifier)
    state.fhir_transport = fhir_transport
    if warm:
        warm_up(state)
        settle_heap()

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
    app.add_middleware(_JsonOnly)

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
    async def discovery(request: Request) -> JSONResponse:
        _authenticate(state, request)
        lang = request_lang(request.headers.get("accept-language"), config.lang)
        return JSONResponse({"services": discovery_services(lang, config)},
                            headers={"Content-Language": lang, "Vary": "Accept-Language"})

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
        lang = request_lang(request.headers.get("accept-language"), config.lang)
        result = await _handle_hook(state, service_id, service["hook"], body, claims, lang=lang)
        return JSONResponse(result, headers={"Content-Language": lang, "Vary": "Accept-Language"})

    @app.post(
        "/cds-services/{service_id}/feedback",
        summary="Feedback on cards (accepted / overridden)",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": FEEDBACK_SCHEMA}}}},
        responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}, 400: _OUTCOME,
                   401: _OUTCOME, 404: _OUTCOME, 413: _OUTCOME, 429: _OUTCOME},
    )
    async def feedback(service_id: str, request: Request) -> JSONResponse:
        _service(service_id)
        claims = _authenticate(state, request)
        body = _json_object(await request.body())
        items = _feedback_items(body, config.feedback)
        caller = str(claims.get("iss") or (request.client.host if request.client else "") or "anonymous")
        wait = state.store.take(caller, len(items))
        if wait is not None:
            raise ServiceError(429, f"more than {config.feedback.max_items_per_minute} feedback items a minute from "
                                    f"this client; retry later", headers={"Retry-After": str(int(wait) + 1)})
        try:
            await asyncio.to_thread(state.store.check_items, service_id, items)
        except FeedbackRefused as exc:
            raise ServiceError(400, "feedback refused", exc.problems[:20]) from None
        n = await asyncio.to_thread(state.store.record, service_id, _with_our_displays(items, config.lang),
                                    claims.get("iss"))
        return JSONResponse({"stored": n})

    return app


def _version() -> str:
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


def _feedback_items(body: Mapping[str, Any], limits: FeedbackLimits | None = None) -> list[dict[str, Any]]:
    """The feedback items, validated as CDS Hooks 2.0 "Feedback" states them: ``card`` and ``outcome``
    required, ``acceptedSuggestions`` (items with ``id``) required for ``accepted``, ``overrideReason.reason``
    a Coding with ``code`` and ``system``, ``outcomeTimestamp`` an RFC 3339 date-time with its zone."""
    limits = limits or FeedbackLimits()
    items = body.get("feedback")
    if not isinstance(items, list) or not items:
        raise ServiceError(400, "feedback must be a non-empty array")
    if len(items) > limits.max_batch:
        raise ServiceError(413, f"more than {limits.max_batch} feedback items in one request")
    problems: list[str] = []
    for i, item in enumerate(items):
        where = f"feedback[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: expected an object")
            continue
        if not isinstance(item.get("card"), str) or not item["card"] or len(item["card"]) > 64:
            problems.append(f"{where}.card: the card uuid is required")
        if item.get("outcome") not in ("accepted", "overridden"):
            problems.append(f"{where}.outcome: must be accepted or overridden")
        ts = item.get("outcomeTimestamp")
        if not isinstance(ts, str) or not is_rfc3339(ts):
            problems.append(f"{where}.outcomeTimestamp: an RFC 3339 date-time with its time zone is required "
                            "(e.g. 2026-01-15T10:05:31Z)")
        acc = item.get("acceptedSuggestions")
        if item.get("outcome") == "accepted" and (not isinstance(acc, list) or not acc):
            problems.append(f"{where}.acceptedSuggestions: required for accepted outcomes, items {{id}}")
        elif acc is not None and not (isinstance(acc, list) and len(acc) <= _MAX_SUGGESTIONS and all(
                isinstance(a, dict) and isinstance(a.get("id"), str) and 0 < len(a["id"]) <= 64 for a in acc)):
            problems.append(f"{where}.acceptedSuggestions: an array of at most {_MAX_SUGGESTIONS} items {{id}}")
        reason = item.get("overrideReason")
        if reason is not None:
            if not isinstance(reason, dict):
                problems.append(f"{where}.overrideReason: expected an object")
            else:
                coding = reason.get("reason")
                if coding is not None and not (isinstance(coding, dict) and all(
                        isinstance(coding.get(k), str) and 0 < len(coding[k]) <= _MAX_CODING[k] for k in ("code", "system"))
                        and isinstance(coding.get("display", ""), str) and len(coding.get("display", "")) <= 500):
                    problems.append(f"{where}.overrideReason.reason: expected a Coding with code and system "
                                    f"(at most {_MAX_CODING['code']} and {_MAX_CODING['system']} characters)")
                comment = reason.get("userComment", "")
                if not isinstance(comment, str):
                    problems.append(f"{where}.overrideReason.userComment: expected a string")
                elif len(comment) > limits.max_text_chars:
                    problems.append(f"{where}.overrideReason.userComment: over {limits.max_text_chars} characters")
    if problems:
        raise ServiceError(400, "invalid feedback", problems[:20])
    return items


_MAX_SUGGESTIONS = 20
_MAX_CODING = {"code": 128, "system": 500}
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def is_rfc3339(value: str) -> bool:
    """An RFC 3339 section 5.6 ``date-time``: full date, ``T``, full time with its offset (``Z`` or ±hh:mm)."""
    if not _RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        return True
    except ValueError:
        return False


def _with_our_displays(items: list[dict[str, Any]], lang: str = "fr") -> list[Mapping[str, Any]]:
    """Override reasons of our own system stored with our display (not the one the client echoed)."""
    out: list[Mapping[str, Any]] = []
    for item in items:
        reason = (item.get("overrideReason") or {}).get("reason")
        if isinstance(reason, dict) and reason.get("system") == OVERRIDE_SYSTEM:
            ours = override_display(str(reason.get("code")), lang)
            item = {**item, "overrideReason": {**item["overrideReason"], "reason": {**reason, "display": ours}}}
        out.append(item)
    return out


# --- discovery and language -----------------------------------------------------------------------


_SCOPES = "user/Patient.read user/MedicationRequest.read user/Condition.read user/AllergyIntolerance.read " \
          "user/Observation.read"


def request_lang(accept_language: str | None, default: str) -> str:
    """``fr`` or ``en`` from an ``Accept-Language`` header (RFC 9110 §12.5.4: highest q first, the first
    listed on a tie), else ``default``."""
    best: tuple[float, int, str] | None = None
    for pos, part in enumerate((accept_language or "").split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in ("fr", "en"):
            continue
        q = 1.0
        m = re.search(r"q\s*=\s*([^;\s]*)", params)
        if m:
            if not re.fullmatch(r"0(\.\d{0,3})?|1(\.0{0,3})?", m.group(1)):
                continue  # a malformed weight: the language is not taken as preferred
            q = float(m.group(1))
        if q <= 0:
            continue
        if best is None or (q, -pos) > (best[0], -best[1]):
            best = (q, pos, primary)
    return best[2] if best else default


def discovery_services(lang: str, config: ServiceConfig) -> list[dict[str, Any]]:
    """The discovery document's services, worded in ``lang``, with their usage requirements."""
    optional = ", ".join(k for k in PREFETCH if k not in REQUIRED)
    allowed = sorted({url for urls in config.fhir.servers.values() for url in urls})
    servers = msg(lang, "cds_service.allowed_servers", urls=", ".join(allowed)) if allowed else ""
    usage = msg(lang, "cds_service.usage", optional=optional, servers=servers, scopes=_SCOPES)
    return [{"hook": s["hook"], "title": msg(lang, f"cds_service.{sid}_title"),
             "description": msg(lang, f"cds_service.{sid}_description"), "id": sid,
             "prefetch": dict(PREFETCH), "usageRequirements": usage} for sid, s in SERVICES.items()]


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
    problems += _context_problems(body)
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
    _check_drafts(context, drafts, hook)


def _context_problems(body: Mapping[str, Any]) -> list[str]:
    """Request fields the specification requires together: ``fhirServer`` with ``fhirAuthorization``
    ("If fhirAuthorization is provided, this field is REQUIRED"); the hooks' REQUIRED ``context.userId``
    and ``context.patientId``."""
    problems = []
    if body.get("fhirAuthorization") is not None and not body.get("fhirServer"):
        problems.append("fhirServer: required when fhirAuthorization is given (the token is only good there)")
    context = body.get("context")
    if isinstance(context, dict):
        for key in ("userId", "patientId"):
            if not isinstance(context.get(key), str) or not context[key].strip():
                problems.append(f"context.{key}: required by the hook (a non-empty string)")
    return problems


def _patient_id(ref: str) -> str:
    """``Patient/123``, ``https://ehr/fhir/Patient/123``, ``Patient/123/_history/2`` or ``123`` -> ``123``."""
    parts = ref.split("/_history/")[0].rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Patient":
        return parts[-1]
    return parts[-1] if len(parts) == 1 else ref


def _draft_entries(value: Any) -> list[tuple[set[str], dict[str, Any]]]:
    """Each draft resource with the identities a selection may name (``Type/id``, its fullUrl)."""
    out: list[tuple[set[str], dict[str, Any]]] = []
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        v, full_url = stack.pop()
        if isinstance(v, list):
            stack.extend((x, "") for x in v)
        elif isinstance(v, dict):
            rt = v.get("resourceType")
            if rt == "Bundle":
                for e in bundle_entries(v):
                    if isinstance(e, dict) and isinstance(e.get("resource"), dict):
                        stack.append((e["resource"], _full_url(e)))
                    else:
                        stack.append((e, ""))
            elif isinstance(rt, str):
                ids = {full_url} if full_url else set()
                if isinstance(v.get("id"), str) and v["id"]:
                    ids.add(f"{rt}/{v['id']}")
                out.append((ids, v))
            elif isinstance(v.get("resource"), dict):
                stack.append((v["resource"], _full_url(v)))
    return out


def _full_url(entry: Mapping[str, Any]) -> str:
    value = entry.get("fullUrl")
    return value if isinstance(value, str) else ""


def _check_drafts(context: Mapping[str, Any], drafts: Any, hook: str) -> None:
    """400 when a draft order is about another patient than ``context.patientId`` (it would be checked
    against the wrong record), or, for order-select, when ``selections`` is absent or names an order that
    is not in ``draftOrders`` (the hook: decision support focuses on the selected orders)."""
    entries = _draft_entries(drafts)
    patient = _patient_id(str(context.get("patientId") or ""))
    others = []
    for ids, res in entries:
        for key in ("subject", "patient"):
            ref = res.get(key)
            if isinstance(ref, dict) and isinstance(ref.get("reference"), str) and ref["reference"]:
                if "Patient/" in ref["reference"] and _patient_id(ref["reference"]) != patient:
                    name = sorted(ids)[0] if ids else res.get("resourceType", "?")
                    others.append(f"{name}: {key} {ref['reference']} is not context.patientId {patient}")
    if others:
        raise ServiceError(400, "a draft order is about another patient than context.patientId; nothing was "
                                "checked", others[:20])
    if hook != "order-select":
        return
    selections = context.get("selections")
    if not isinstance(selections, list) or not selections:
        raise ServiceError(400, "context.selections is required for order-select (the ids of the newly selected "
                                "orders in draftOrders); nothing was checked")
    known = set().union(*(ids for ids, _ in entries)) if entries else set()
    unmatched = [s for s in selections if s not in known]
    if unmatched:
        raise ServiceError(400, "context.selections names orders that are not in draftOrders; nothing was checked",
                           [f"{s}: not in draftOrders" for s in unmatched[:20]])


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
    return {i: res for ids, res in _draft_entries(value) for i in sorted(ids) if not i.startswith(("urn:", "http"))}


ORDER_TYPES = frozenset({"MedicationRequest", "ServiceRequest", "MedicationStatement", "MedicationDispense",
                         "MedicationAdministration"})
"""The resource types read as the patient's orders: what the rules' work grows with."""


def _admit(limits: Any, draft_types: list[str], prefetch: Mapping[str, Any]) -> None:
    """413 before any work when a request holds more draft orders, or more orders in all, than the
    limits allow (the rules' cost grows with the number of orders of the patient)."""
    drafts = len(draft_types)
    if drafts > limits.max_draft_orders:
        raise ServiceError(413, f"{drafts} draft orders in one request; this service checks at most "
                                f"{limits.max_draft_orders} draft orders at a time (limits.max_draft_orders)")
    orders = sum(1 for t in draft_types if t in ORDER_TYPES) + sum(
        1 for value in prefetch.values() for t in _types_in(value) if t in ORDER_TYPES)
    if orders > limits.max_orders:
        raise ServiceError(413, f"{orders} orders (draft and current) in one request; this service checks "
                                f"patients with at most {limits.max_orders} orders (limits.max_orders)")


async def _handle_hook(state: ServiceState, service_id: str, hook: str, body: dict[str, Any],
                       claims: Mapping[str, Any], *, lang: str | None = None) -> dict[str, Any]:
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
    _admit(cfg.limits, draft_types, prefetch)
    required = REQUIRED if "MedicationRequest" in draft_types else ()
    # A prefetched list with a next link is one page of several: not used, fetched whole when possible.
    dropped, fetch_errors = incomplete_prefetch(prefetch)
    for key in dropped:
        del prefetch[key]
    cov = coverage(prefetch, required=required)
    server, auth = body.get("fhirServer"), body.get("fhirAuthorization")
    if cov.missing and server and isinstance(auth, dict):
        issuer = claims.get("iss") if state.verifier is not None else None
        try:
            base = bound_server(server, issuer, cfg.fhir)
        except NotBound as exc:
            fetch_errors = {k: (f"{fetch_errors[k]}; " if k in fetch_errors else "") + str(exc) for k in cov.missing}
        else:
            bad_ids = template_problems(context, cov.missing)
            if bad_ids:
                raise ServiceError(400, "an id of the context is not a FHIR id; nothing was fetched", bad_ids)
            client = None
            if state.fhir_transport is not None:
                import httpx

                client = httpx.AsyncClient(transport=state.fhir_transport, timeout=cfg.fhir.timeout_seconds,
                                           follow_redirects=False)
            try:
                got, errors = await fetch_missing(cov.missing, server=base, token=auth["access_token"],
                                                  context=context, cfg=cfg.fhir, client=client)
            finally:
                if client is not None:
                    await client.aclose()
            fetch_errors = {k: (f"{fetch_errors[k]}; " if k in fetch_errors else "") + v for k, v in errors.items()}
            prefetch.update(got)
            _admit(cfg.limits, draft_types, prefetch)
            cov = coverage(prefetch, required=required)
    if cov.missing_required:
        details = [f"{k}: {fetch_errors[k]}" if k in fetch_errors else
                   _not_prefetched(k, prefetch) for k in cov.missing_required]
        raise ServiceError(412, "the data needed to check these orders is missing; no decision support was "
                                "produced", details)
    body = {**body, "prefetch": prefetch}
    policy = cfg.policy_for(claims.get("tenant"), claims.get("iss"))
    # The check runs in a worker thread, which cannot be interrupted: it is asked to stop at its deadline
    # (checked before each rule and medication look-up), and its slot is held until the thread really
    # ends, so slow requests cannot pile up threads beyond max_concurrent_checks.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + cfg.limits.timeout_seconds
    stop = threading.Event()
    sem = state.slots()
    try:
        async with asyncio.timeout_at(deadline):
            await sem.acquire()
    except TimeoutError:
        raise _timeout(cfg.limits.timeout_seconds) from None
    try:
        fut = loop.run_in_executor(None, _evaluate, state, service_id, hook, body, policy, cov.missing_optional,
                                   stop.is_set, lang)
    except BaseException:
        sem.release()
        raise
    fut.add_done_callback(lambda _f: sem.release())
    try:
        async with asyncio.timeout_at(deadline):
            result = await asyncio.shield(fut)
    except TimeoutError:
        stop.set()
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieve a late error quietly
        raise _timeout(cfg.limits.timeout_seconds) from None
    except BaseException:  # the request itself was cancelled (client gone, shutdown): the check stops too
        stop.set()
        fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        raise
    return result


def _not_prefetched(key: str, prefetch: Mapping[str, Any]) -> str:
    """Why a required prefetch key is missing: the EHR's own error when it sent an OperationOutcome
    in its place (the query failed on the EHR side), else that nothing was sent."""
    value = prefetch.get(key)
    if isinstance(value, dict) and value.get("resourceType") == "OperationOutcome":
        raw = value.get("issue")
        issues: list[Any] = raw if isinstance(raw, list) else []
        said = "; ".join(str(i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code") or "")
                         for i in issues[:3] if isinstance(i, dict)).strip("; ")
        return (f"{key}: the EHR answered the prefetch query ({PREFETCH[key]}) with an error (OperationOutcome"
                + (f": {said[:300]}" if said else "") + "); no fhirServer with fhirAuthorization to retry it")
    return f"{key}: not prefetched ({PREFETCH[key]}) and no fhirServer with fhirAuthorization to fetch it"


def _timeout(seconds: float) -> ServiceError:
    return ServiceError(503, f"the check took longer than {seconds} s; no decision support was produced",
                        headers={"Retry-After": "1"})


def _orders(record: PatientRecord) -> tuple[MedicationOrder | ServiceOrder, ...]:
    """The record's medication then service orders."""
    return (*record.medication_orders, *record.service_orders)


def _evaluate(state: ServiceState, service_id: str, hook: str, body: dict[str, Any], policy: AlertPolicy,
              missing_optional: list[str], should_stop: Any = None,
              lang: str | None = None) -> dict[str, Any]:
    """Read the request, run the rules and build the cards (runs in a worker thread; ``should_stop``
    says when the request's deadline has passed: the work then ends with :class:`CheckCancelled`).
    The memos that hold the words of a request are emptied once its cards are built (see
    :func:`checker.memo.forget_request_words`)."""
    try:
        return _answer(state, service_id, hook, body, policy, missing_optional, should_stop, lang)
    finally:
        forget_request_words()


def _answer(state: ServiceState, service_id: str, hook: str, body: dict[str, Any], policy: AlertPolicy,
            missing_optional: list[str], should_stop: Any, lang: str | None) -> dict[str, Any]:
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
    focus = _focus(body["context"], drafts, hook)
    if not focus:
        return {"cards": []}  # the selected orders are of kinds this service does not check
    state.identify(records, should_stop)
    report = check_records(records, counts=ingestion.counts, errors=ingestion.errors, as_of=as_of,
                           jurisdiction=cfg.jurisdiction, lang=lang or cfg.lang, refs=state.refs,
                           should_stop=should_stop, focus=focus)  # only findings about the focus get a card
    if should_stop is not None and should_stop():
        raise CheckCancelled("stopped before the cards were built")
    shown = policy.apply(report.findings, hook)
    context = body["context"]
    raw_drafts = _draft_resources([context.get("draftOrders"), context.get("medications")])
    labels = {o.ref: o.label for r in records for o in _orders(r) if o.label}
    out = make_cards(report, draft_refs=focus, draft_resources=raw_drafts, findings=shown, order_labels=labels,
                     fresh_ids=True)
    unchecked = (_unchecked_card(report, missing_optional, ingestion.errors, context)
                 if cfg.warn_missing_data and policy.passes_floor(Severity.INFO, hook) else None)
    if unchecked is not None:
        out.append(unchecked)
    state.store.log_cards(service_id, [_log_row(c) for c in out])
    return {"cards": out}


def _focus(context: Mapping[str, Any], drafts: set[str], hook: str) -> set[str]:
    """The draft orders the cards are about: for order-select the selected ones (named by ``Type/id`` or
    by their fullUrl), for the other hooks every draft."""
    if hook != "order-select":
        return drafts
    aliases: dict[str, str] = {}
    for ids, res in _draft_entries([context.get("draftOrders"), context.get("medications")]):
        typed = next((i for i in ids if "/" in i and not i.startswith(("urn:", "http"))), None)
        for i in ids:
            aliases[i] = typed or i
    return {aliases.get(s, s) for s in context.get("selections") or ()} & drafts


def _log_row(card: Mapping[str, Any]) -> tuple[str, str, str, str, str, list[str]]:
    """What the card log keeps of an issued card: uuid, rule, fingerprint, category, indicator, suggestion ids."""
    ext = (card.get("extension") or {}).get(codes.CARD_EXTENSION) or {}
    return (card["uuid"], str(ext.get("rule", "")), str(ext.get("fingerprint", "")), str(ext.get("category", "")),
            card["indicator"], [s["uuid"] for s in card.get("suggestions", []) if s.get("uuid")])


def _unchecked_card(report: Report, missing: list[str], errors: list[Any],
                    context: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """An info card saying what could not be checked (never a silent "all clear")."""
    if not missing and not errors:
        return None
    t = table(report.lang, "cds_partial")
    parts = [t[k] for k in missing]
    what = ", ".join(parts) if parts else t["errors"].lower()
    detail = t["detail"].format(what=what) if parts else ""
    if errors:
        detail += ("\n\n" if detail else "") + t["errors_heading"].format(label=t["errors"]) + "\n" + "\n".join(
            t["error_line"].format(location=e.location, message=e.message) for e in errors[:10])
    summary = t["summary"].format(what=what)
    if len(summary) >= 140:
        summary = t["summary"].format(what=t["several"].format(n=len(parts)))
    basis = "\x1f".join(["partial-check", str((context or {}).get("patientId", "")), *missing,
                         *sorted(e.location for e in errors[:50])])
    return {
        "uuid": str(uuid.uuid4()),
        "summary": summary,
        "indicator": "info",
        "detail": detail,
        "source": {"label": "Pertinence (CDS Hooks 2.0 prefetch)", "url": "https://cds-hooks.hl7.org/2.0/#prefetch-template",
                   "topic": {"system": TOPIC_SYSTEM, "code": "data-missing", "display": "data-missing"}},
        "extension": {codes.CARD_EXTENSION: {"fingerprint": hashlib.sha256(basis.encode()).hexdigest()[:16],
                                             "rule": "partial-check", "category": "data-missing", "drafts": []}},
    }

