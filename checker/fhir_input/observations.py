"""Observation to :class:`~checker.model.Observation`."""

from __future__ import annotations

from checker.fhir_input.dates import _read_date
from checker.fhir_input.elements import _concept, _quantity, _s
from checker.fhir_input.raw import RawResource
from checker.fhir_input.references import _resource_ref
from checker.model import Observation

_COMPARATORS = ("<", "<=", ">=", ">")
"""HL7 FHIR quantity-comparator codes: the actual value is less than (or equal to), greater than (or
equal to) the given value."""


def _observation(raw: RawResource) -> Observation:
    res = raw.resource
    value = unit = None
    comparator = ""
    vq = res.get("valueQuantity")
    if vq is not None:
        q = _quantity(vq, "/valueQuantity")
        if q is not None:
            value, unit = q.value, q.unit
            if isinstance(vq, dict) and vq.get("comparator") in _COMPARATORS:
                comparator = vq["comparator"]  # the value is a bound: « < 15 »
    # the clinically relevant time (effective[x]) first, the time the result was issued last
    effective = (_read_date(res.get("effectiveDateTime"), "/effectiveDateTime")
                 or _read_date(res.get("effectiveInstant"), "/effectiveInstant"))
    if effective is None and isinstance(res.get("effectivePeriod"), dict):
        effective = _read_date(res["effectivePeriod"].get("start"), "/effectivePeriod/start")
    if effective is None:
        effective = _read_date(res.get("issued"), "/issued")
    vc = res.get("valueCodeableConcept")
    vb = res.get("valueBoolean")
    return Observation(
        ref=_resource_ref(raw),
        code=_concept(res.get("code"), "/code"),
        value=value,
        unit=unit or "",
        value_concept=_concept(vc, "/valueCodeableConcept") if isinstance(vc, dict) else None,
        value_bool=vb if isinstance(vb, bool) else None,
        effective=effective,
        status=_s(res.get("status")),
        comparator=comparator,
    )
