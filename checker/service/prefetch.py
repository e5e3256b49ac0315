"""Prefetch templates, what a request's prefetch covers, and fetching the rest from ``fhirServer``.

HL7 CDS Hooks 2.0, "Providing FHIR Resources to a CDS Service" (https://cds-hooks.hl7.org/2.0/#prefetch-template):
the service declares prefetch templates in its discovery document; the EHR may satisfy some, all or
none. A key that is present with ``null`` means "no data"; an absent key means "not provided". The
service must check what it got and fetch what is missing itself with ``fhirServer`` and the bearer
token of ``fhirAuthorization``; when the data still cannot be had, it answers 412 Precondition Failed.

Observation templates are derived from the facts tables (``referentials/facts/clinical-facts.json``,
``requests`` and ``observations``), never listed here: each request key (``renal``, ``weight``,
``pregnancy`` …) asks for every code of the observation kinds that name it, so an EHR honouring the
templates sends every result the rules can read (eGFR, creatinine clearance, serum creatinine for the
Cockcroft–Gault estimate, body weight 29463-7 and 3141-9, pregnancy status). The templates are built on
first use, from the shipped tables, not at import.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

from checker.facts.tables import SYSTEM_URIS, FactTables, ObservationRequest
from checker.referentials import default_referentials
from checker.service.config import FhirFetch
from checker.service.urls import NotBound, _origin, _under, url_problem  # noqa: F401 (re-exported)

V = TypeVar("V")

_RECORD_TEMPLATES = {
    "patient": "Patient/{{context.patientId}}",
    "medications": "MedicationRequest?patient={{context.patientId}}&status=active",
    "conditions": "Condition?patient={{context.patientId}}&clinical-status=active",
    "allergies": "AllergyIntolerance?patient={{context.patientId}}",
}
_RECORD_TYPES = {"patient": "Patient", "medications": "MedicationRequest", "conditions": "Condition",
                 "allergies": "AllergyIntolerance"}


@functools.cache
def _observation_requests() -> dict[str, ObservationRequest]:
    """The facts tables' request keys; a key marked ``protocols`` also asks for every exact code the
    protocols' observation criteria name (a criterion worded only by a text pattern cannot be asked for)."""
    refs = default_referentials()
    tables: FactTables = refs.get("clinical-facts")
    requests = tables.observation_requests()
    if any(r.protocols for r in requests.values()):
        named = tuple(sorted({(SYSTEM_URIS[c.system], c.code) for p in refs.get("protocols").protocols
                              for crit in p.criteria.values() for t in crit.tests if t.kind == "observation"
                              for c in t.matcher.codes if not c.prefix and c.system in SYSTEM_URIS}))
        for key, r in requests.items():
            if r.protocols:
                requests[key] = replace(r, codes=tuple(dict.fromkeys(r.codes + named)))
    return requests


def observation_template(request: ObservationRequest) -> str:
    """The Observation search asking for every code of ``request``, latest first."""
    return ("Observation?patient={{context.patientId}}&code=" + ",".join(f"{uri}|{code}" for uri, code in request.codes)
            + f"&_sort=-date&_count={request.count}")


class _Derived(Mapping[str, V]):
    """A read-only table built on first use from the facts tables (a referential failing its checksum
    then stops the request or the run with its own error, not the import)."""

    def __init__(self, build: Callable[[], dict[str, V]]) -> None:
        self._build = build
        self._data: dict[str, V] | None = None

    def _get(self) -> dict[str, V]:
        if self._data is None:
            self._data = self._build()
        return self._data

    def __getitem__(self, key: str) -> V:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


PREFETCH: Mapping[str, str] = _Derived(lambda: {
    **_RECORD_TEMPLATES, **{k: observation_template(r) for k, r in _observation_requests().items()}})
"""Prefetch key -> FHIR query template, as published in the discovery document."""

KEY_TYPE: Mapping[str, str] = _Derived(lambda: {**_RECORD_TYPES, **dict.fromkeys(_observation_requests(), "Observation")})
REQUIRED = ("medications",)
"""For draft medication orders: without the active orders a draft may interact with, no check can be
trusted, hence 412. The other keys are optional: when missing, the response says which checks could not
be done (and the protocol rules say "cannot be checked" when their criteria are unknown)."""

_TOKEN = re.compile(r"\{\{\s*context\.([A-Za-z0-9_]+)\s*\}\}")


@dataclass(slots=True)
class Coverage:
    """Which prefetch keys the request satisfies (``covered``) and which are missing."""

    covered: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)
    required: tuple[str, ...] = REQUIRED

    @property
    def missing_required(self) -> list[str]:
        return [k for k in self.missing if k in self.required]

    @property
    def missing_optional(self) -> list[str]:
        return [k for k in self.missing if k not in self.required]


def unwrap(value: Any) -> Any:
    """A prefetch value, with the DSTU2-era ``{"response": ..., "resource": {...}}`` wrapper removed."""
    if isinstance(value, Mapping) and "resourceType" not in value and isinstance(value.get("resource"), Mapping):
        return value["resource"]
    return value


def bundle_entries(bundle: Mapping[str, Any]) -> list[Any]:
    """A Bundle's ``entry`` array ([] when absent or not an array: :func:`bundle_shape_problems` reports it)."""
    entries = bundle.get("entry")
    return entries if isinstance(entries, list) else []


def bundle_links(bundle: Mapping[str, Any]) -> list[Any]:
    """A Bundle's ``link`` array ([] when absent or not an array)."""
    links = bundle.get("link")
    return links if isinstance(links, list) else []


def json_type(value: Any) -> str:
    """The JSON name of a value's type (what a FHIR author reads in an error message)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def bundle_shape_problems(value: Any, where: str, depth: int = 0) -> list[str]:
    """Where a Bundle in ``value`` (a resource, a Bundle, a list, a ``{"resource": ...}`` wrapper) has an
    ``entry`` or ``link`` that is not an array, as ``path: message`` lines; [] when the shapes are right."""
    if depth > 8:
        return []
    out: list[str] = []
    if isinstance(value, list):
        for i, item in enumerate(value):
            out += bundle_shape_problems(item, f"{where}[{i}]", depth + 1)
    elif isinstance(value, Mapping):
        rt = value.get("resourceType")
        if rt == "Bundle":
            for name in ("entry", "link"):
                got = value.get(name)
                if got is not None and not isinstance(got, list):
                    out.append(f"{where}.{name}: a Bundle's {name} must be an array, not {json_type(got)}")
            for i, entry in enumerate(bundle_entries(value)):
                out += bundle_shape_problems(entry, f"{where}.entry[{i}]", depth + 1)
        elif rt is None and isinstance(value.get("resource"), Mapping):
            out += bundle_shape_problems(value["resource"], f"{where}.resource", depth + 1)
    return out


def _self_urls(bundle: Mapping[str, Any]) -> list[str]:
    """The URLs of a Bundle's ``self`` links (the query that produced a searchset)."""
    return [link["url"] for link in bundle_links(bundle)
            if isinstance(link, Mapping) and link.get("relation") == "self" and isinstance(link.get("url"), str)]


def resource_types(value: Any) -> set[str]:
    """Resource types a prefetch value answers for: its resources, and the queries its links name."""
    value = unwrap(value)
    out: set[str] = set()
    if not isinstance(value, Mapping):
        return out
    rtype = value.get("resourceType")
    if rtype != "Bundle":
        if isinstance(rtype, str):
            out.add(rtype)
        return out
    for url in _self_urls(value):
        path = urlsplit(url).path.rstrip("/")
        last = path.rsplit("/", 1)[-1]
        if last[:1].isupper():
            out.add(last)
        elif "/" in path:  # Patient/123 read
            parts = path.split("/")
            if len(parts) >= 2 and parts[-2][:1].isupper():
                out.add(parts[-2])
    for entry in bundle_entries(value):
        if not isinstance(entry, Mapping):
            continue
        res: Mapping[str, Any] = r if isinstance(r := entry.get("resource"), Mapping) else entry
        if isinstance(res.get("resourceType"), str):
            out.add(res["resourceType"])
    return out


def coverage(prefetch: Mapping[str, Any] | None, keys: Iterable[str] = PREFETCH,
             required: tuple[str, ...] = REQUIRED) -> Coverage:
    """What the request's prefetch covers: our keys present (even ``null``), or any prefetch value
    (under another service's key names) holding or querying the same resource type."""
    prefetch = prefetch or {}
    seen_types: set[str] = set()
    for value in prefetch.values():
        seen_types |= resource_types(value)
    cov = Coverage(required=required)
    for key in keys:
        if key in prefetch and not _is_outcome(prefetch[key]):
            cov.covered.add(key)
        elif KEY_TYPE[key] in seen_types and key not in OBSERVATION_CODES:
            cov.covered.add(key)
        elif key in OBSERVATION_CODES and any(_answers_for(value, key) for value in prefetch.values()):
            cov.covered.add(key)
        else:
            cov.missing.append(key)
    return cov


OBSERVATION_CODES: Mapping[str, frozenset[str]] = _Derived(
    lambda: {k: frozenset(code for _, code in r.codes) for k, r in _observation_requests().items()})
"""The Observation keys, with the codes that answer them (from the facts tables)."""
_CATEGORY_OF: Mapping[str, str | None] = _Derived(lambda: {k: r.category for k, r in _observation_requests().items()})


def _answers_for(value: Any, key: str) -> bool:
    """True when a prefetch value sent under another service's key answers ``key``: it holds an
    Observation with one of the key's codes, or its self link is an Observation search that asks for
    those codes (or for all Observations, or for the key's category). Any Observation is not enough: a
    weight alone must not pass for a renal result (false all-clear)."""
    value = unwrap(value)
    if not isinstance(value, Mapping):
        return False
    codes = OBSERVATION_CODES[key]
    if value.get("resourceType") == "Observation":
        return bool(_codes(value) & codes)
    if value.get("resourceType") != "Bundle":
        return False
    for url in _self_urls(value):
        parts = urlsplit(url)
        if parts.path.rstrip("/").rsplit("/", 1)[-1] != "Observation":
            continue
        query = parse_qs(parts.query)
        asked = {c.rsplit("|", 1)[-1] for v in query.get("code", []) for c in v.split(",")}
        categories = {c.rsplit("|", 1)[-1] for v in query.get("category", []) for c in v.split(",")}
        if asked & codes or (not asked and (not categories or _CATEGORY_OF[key] in categories)):
            return True
    for entry in bundle_entries(value):
        res = entry.get("resource") if isinstance(entry, Mapping) else None
        if isinstance(res, Mapping) and res.get("resourceType") == "Observation" and _codes(res) & codes:
            return True
    return False


def _codes(observation: Mapping[str, Any]) -> set[str]:
    code = observation.get("code")
    codings = code.get("coding") if isinstance(code, Mapping) else None
    return {c["code"] for c in codings if isinstance(c, Mapping) and isinstance(c.get("code"), str)} \
        if isinstance(codings, list) else set()


def _is_outcome(value: Any) -> bool:
    """CDS Hooks 2.0 lets an EHR send an OperationOutcome when it failed to prefetch: not data."""
    return isinstance(value, Mapping) and value.get("resourceType") == "OperationOutcome"


FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
"""The FHIR id syntax (https://hl7.org/fhir/R4/datatypes.html#id)."""


def fhir_id(value: str) -> str | None:
    """``value`` as a FHIR id (``Patient/123`` gives ``123``); None when it is not one. Ids made of dots
    only (``.``, ``..``) match the syntax but are path segments with a meaning in a URL: refused."""
    text = value.rsplit("/", 1)[-1] if value.count("/") == 1 else value
    if not FHIR_ID.fullmatch(text) or not text.strip("."):
        return None
    return text


def template_problems(context: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
    """``context.x: ...`` for each value the templates of ``keys`` put into a URL that is not a FHIR id."""
    names = {m.group(1) for k in keys for m in _TOKEN.finditer(PREFETCH[k])}
    out = []
    for name in sorted(names):
        value = context.get(name)
        if isinstance(value, str) and value and fhir_id(value) is None:
            out.append(f"context.{name}: {value[:80]!r} is not a FHIR id ([A-Za-z0-9-.], 1 to 64 characters)")
    return out


def render_template(template: str, context: Mapping[str, Any]) -> str | None:
    """The template with its ``{{context.x}}`` tokens replaced by FHIR ids, URL-encoded; None when a token
    has no value or a value that is not a FHIR id."""
    missing = False

    def sub(m: re.Match[str]) -> str:
        nonlocal missing
        value = context.get(m.group(1))
        if not isinstance(value, (str, int)) or isinstance(value, bool) or value == "":
            missing = True
            return ""
        text = fhir_id(str(value))
        if text is None:
            missing = True
            return ""
        return quote(text, safe="")

    out = _TOKEN.sub(sub, template)
    return None if missing else out


class FetchError(Exception):
    """A FHIR read for missing prefetch data failed (the message says why; the caller names the key)."""


def bound_server(server: str, issuer: str | None, cfg: FhirFetch) -> str:
    """The request's ``fhirServer`` as the base URL to call, when it is one of the servers bound to
    ``issuer`` in the configuration (or under one, on a path segment boundary); :class:`NotBound`
    otherwise. Scheme, host and port must be the configured ones exactly."""
    bases = cfg.servers_for(issuer)
    if not bases:
        who = f"issuer {issuer}" if issuer else "this service"
        raise NotBound(f"no FHIR server is configured for {who} ([fhir.servers]); nothing is fetched")
    parts = urlsplit(server) if isinstance(server, str) else None
    if parts is not None and parts.query:
        raise NotBound(f"fhirServer {server[:200]} is not allowed: it has a query string")
    try:
        scheme, host, port, path = _origin(server)
    except NotBound as exc:
        raise NotBound(f"fhirServer {str(server)[:200]} is not allowed: {exc}") from None
    if not any(_under(server, _origin(b)) for b in bases):
        raise NotBound(f"fhirServer {server[:200]} is not allowed: the configuration ([fhir.servers]) does not bind "
                       f"it to {'issuer ' + issuer if issuer else 'a trusted issuer'}")
    netloc = f"[{host}]" if ":" in host else host
    if port != (443 if scheme == "https" else 80):
        netloc += f":{port}"
    return f"{scheme}://{netloc}{path}"


def next_link(bundle: Mapping[str, Any]) -> str | None:
    """The URL of a Bundle's ``next`` link (a search result with more pages); "" when the link has no URL."""
    for link in bundle_links(bundle):
        if isinstance(link, Mapping) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) else ""
    return None


def incomplete_prefetch(prefetch: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
    """Prefetch values that are one page of several (a Bundle with a ``next`` link): their keys, and for
    each of our keys they would have answered, why it is not covered. Such a list is not used (checking
    it as if complete would be a false all-clear): the service fetches the key itself, every page, as
    for a key that was not prefetched, and says so when it cannot."""
    dropped: list[str] = []
    why: dict[str, str] = {}
    for key, value in prefetch.items():
        value = unwrap(value)
        if not (isinstance(value, Mapping) and value.get("resourceType") == "Bundle" and next_link(value) is not None):
            continue
        dropped.append(key)
        types = resource_types(value)
        for ours in PREFETCH:
            if ours == key or (KEY_TYPE[ours] in types and (ours not in OBSERVATION_CODES or _answers_for(value, ours))):
                why[ours] = f"prefetch.{key} is one page of several (next link); the other pages could not be fetched"
    return dropped, why


async def fetch_missing(
    keys: list[str],
    *,
    server: str,
    token: str,
    context: Mapping[str, Any],
    cfg: FhirFetch,
    client: Any = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """GET each missing key's query from ``server`` (a base returned by :func:`bound_server`), following
    ``next`` links on the same server up to ``cfg.max_pages`` pages; returns (key -> resource, key -> error)."""
    import httpx

    own = client is None
    if own:
        client = httpx.AsyncClient(timeout=cfg.timeout_seconds, follow_redirects=False)
    try:
        results = await asyncio.gather(
            *(_fetch_key(client, k, server, token, context, cfg) for k in keys), return_exceptions=True
        )
    finally:
        if own:
            await client.aclose()
    got: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, res in zip(keys, results):
        if isinstance(res, BaseException):
            if not isinstance(res, Exception):
                raise res
            errors[key] = str(res) or type(res).__name__
        else:
            got[key] = res
    return got, errors


async def _fetch_key(client: Any, key: str, server: str, token: str, context: Mapping[str, Any],
                     cfg: FhirFetch) -> Any:
    """One key: its first page, then its ``next`` pages, within ``cfg.timeout_seconds`` in all."""
    query = render_template(PREFETCH[key], context)
    if query is None:
        raise FetchError("the context lacks the FHIR ids its query needs")
    base = _origin(server)
    try:
        async with asyncio.timeout(cfg.timeout_seconds):
            first = await _get(client, server.rstrip("/") + "/" + query, token, cfg, key)
            if first["resourceType"] != "Bundle":
                return first
            entries = list(bundle_entries(first))
            page, pages = first, 1
            while (url := next_link(page)) is not None:
                if pages >= cfg.max_pages:
                    raise FetchError(f"more than {cfg.max_pages} pages of results; the list would be incomplete")
                if not _under(url, base):
                    raise FetchError("a next-page link points outside the FHIR server; not followed")
                page = await _get(client, url, token, cfg, key)
                if page["resourceType"] != "Bundle":
                    raise FetchError("a next page is not a Bundle")
                entries += bundle_entries(page)
                pages += 1
                if len(entries) > cfg.max_results:
                    break
    except TimeoutError:
        raise FetchError(f"FHIR server did not answer within {cfg.timeout_seconds} s") from None
    if len(entries) > cfg.max_results:
        raise FetchError(f"more than {cfg.max_results} results")
    links = [link for link in bundle_links(first) if not (isinstance(link, Mapping) and link.get("relation") == "next")]
    return {**first, "entry": entries, "link": links}


async def _get(client: Any, url: str, token: str, cfg: FhirFetch, key: str) -> dict[str, Any]:
    """GET one page (size-limited, no redirects) and check it is a readable FHIR resource."""
    import httpx
    import orjson

    headers = {"Accept": "application/fhir+json", "Authorization": f"Bearer {token}"}
    try:
        async with client.stream("GET", url, headers=headers, follow_redirects=False) as resp:
            if resp.status_code == 404 and key == "patient":
                raise FetchError("patient not found on the FHIR server")
            if 300 <= resp.status_code < 400:
                raise FetchError(f"FHIR server answered HTTP {resp.status_code} (redirects are not followed)")
            if resp.status_code != 200:
                raise FetchError(f"FHIR server answered HTTP {resp.status_code}")
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > cfg.max_bytes:
                    raise FetchError(f"FHIR response larger than {cfg.max_bytes} bytes")
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise FetchError(f"FHIR server unreachable ({type(exc).__name__})") from None
    try:
        data = orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError:
        raise FetchError("FHIR server did not return JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        raise FetchError("FHIR server did not return a resource")
    if data["resourceType"] == "OperationOutcome":
        raise FetchError("FHIR server returned an OperationOutcome")
    shape = bundle_shape_problems(data, "response")
    if shape:
        raise FetchError(f"malformed FHIR server answer ({shape[0]})")
    return data
