"""Condition to :class:`~checker.model.Condition`."""

from __future__ import annotations

from checker.fhir_input.dates import _read_date, _read_end_date
from checker.fhir_input.elements import _concept, _concepts, _list, _status_code
from checker.fhir_input.raw import RawResource
from checker.fhir_input.references import _resource_ref
from checker.model import Condition


def _condition(raw: RawResource) -> Condition:
    res = raw.resource
    onset = _read_date(res.get("onsetDateTime"), "/onsetDateTime")
    if onset is None and isinstance(res.get("onsetPeriod"), dict):
        onset = _read_date(res["onsetPeriod"].get("start"), "/onsetPeriod/start")
    abatement = _read_end_date(res.get("abatementDateTime"), "/abatementDateTime")
    if abatement is None and isinstance(res.get("abatementPeriod"), dict):
        abatement = _read_end_date(res["abatementPeriod"].get("end"), "/abatementPeriod/end") or _read_date(res["abatementPeriod"].get("start"), "/abatementPeriod/start")
    return Condition(
        ref=_resource_ref(raw),
        code=_concept(res.get("code"), "/code"),
        clinical_status=_status_code(res.get("clinicalStatus"), "/clinicalStatus"),
        verification_status=_status_code(res.get("verificationStatus"), "/verificationStatus"),
        onset=onset,
        abatement=abatement,
        recorded=_read_date(res.get("recordedDate"), "/recordedDate") or _read_date(res.get("assertedDate"), "/assertedDate"),
        category=_concepts(_list(res, "category"), "/category"),
    )
