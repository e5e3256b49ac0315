"""ServiceRequest to :class:`~checker.model.ServiceOrder`."""

from __future__ import annotations

from datetime import date

from checker.fhir_input.dates import _read_date, _dated
from checker.fhir_input.elements import _concept, _concepts, _list, _ref, _s, _status, _str_field
from checker.fhir_input.raw import RawResource
from checker.fhir_input.references import _resource_ref
from checker.fhir_input.validation import detect_version
from checker.model import ServiceOrder


def _service_order(raw: RawResource, today: date) -> ServiceOrder:
    res = raw.resource
    code = res.get("code")
    if isinstance(code, dict) and "concept" in code and "coding" not in code:  # R5 CodeableReference
        code = code.get("concept")
    reasons = _concepts(_list(res, "reasonCode"), "/reasonCode")
    reason_refs = tuple(_ref(r) for r in _list(res, "reasonReference") if _ref(r))
    for r in _list(res, "reason"):  # R5
        if isinstance(r, dict):
            if r.get("concept") is not None:
                reasons += (_concept(r["concept"], "/reason"),)
            if _ref(r.get("reference")):
                reason_refs += (_ref(r.get("reference")),)
    occurrence = _read_date(res.get("occurrenceDateTime"), "/occurrenceDateTime")
    if occurrence is None and isinstance(res.get("occurrencePeriod"), dict):
        occurrence = _read_date(res["occurrencePeriod"].get("start"), "/occurrencePeriod/start")
    notes = " ".join(_s(n.get("text")) for n in _list(res, "note") if isinstance(n, dict)).strip()
    return ServiceOrder(
        ref=_resource_ref(raw),
        status=_status(res),
        intent=_str_field(res, "intent"),
        code=_concept(code, "/code"),
        category=_concepts(_list(res, "category"), "/category"),
        authored_on=_dated(res, "authoredOn", today),
        occurrence=occurrence,
        requester=_ref(res.get("requester")),
        reasons=reasons,
        reason_refs=reason_refs,
        body_site=_concepts(_list(res, "bodySite"), "/bodySite"),
        note=notes,
        fhir_version=detect_version(res),
        location=raw.location,
        draft=raw.draft,
    )
