"""FHIR version detection and validation messages from fhir.resources (explanations, ``strict``)."""

from __future__ import annotations

from typing import Any

from checker.fhir_input.decoding import _first_line
from checker.fhir_input.raw import RawResource
from checker.findings import InputError, Message
from checker.model import FhirVersion


def _strict_error(raw: RawResource) -> InputError | None:
    message = _explain(raw)
    return InputError.coded(str(raw.location), message, raw.resource_type) if message else None


def detect_version(resource: dict[str, Any]) -> FhirVersion:
    """Tell R5 from R4/R4B by the elements a resource uses (no declared version is trusted)."""
    if "medication" in resource and isinstance(resource["medication"], dict) and (
        "concept" in resource["medication"] or "reference" in resource["medication"]
    ):
        return "R5"
    if "medicationCodeableConcept" in resource or "medicationReference" in resource or "authoredOn" in resource:
        return "STU3" if "context" in resource and "encounter" not in resource else "R4"
    return "R4"


def _explain(raw: RawResource) -> Message | None:
    """A precise validation message from fhir.resources (R4B or R5 by detection), or ``None``."""
    import fhir.resources as r5
    from fhir.resources import R4B

    version = detect_version(raw.resource)
    package = r5 if version == "R5" else R4B
    try:
        model = package.get_fhir_model_class(raw.resource_type)
    except (KeyError, ValueError):  # fhir.resources 8 raises ValueError for an unknown type
        return Message("unknown-type-plain", {"type": raw.resource_type})
    try:
        model.model_validate(raw.resource)
    except Exception as exc:
        return Message("invalid-resource", {"type": raw.resource_type, "version": "R5" if version == "R5" else "R4",
                                            "error": _first_line(exc)})
    return None
