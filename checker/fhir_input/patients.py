"""Patient to :class:`~checker.model.Patient`."""

from __future__ import annotations

from checker.fhir_input.dates import _read_date
from checker.fhir_input.elements import _str_field
from checker.fhir_input.raw import RawResource
from checker.fhir_input.references import _resource_ref
from checker.model import Patient


def _patient(raw: RawResource) -> Patient:
    res = raw.resource
    gender = _str_field(res, "gender")
    ref = raw.default_patient or _resource_ref(raw)
    return Patient(ref=ref, birth_date=_read_date(res.get("birthDate"), "/birthDate"), sex=gender)
