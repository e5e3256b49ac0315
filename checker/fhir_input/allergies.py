"""AllergyIntolerance (DSTU2, STU3, R4, R4B, R5) to :class:`~checker.model.Allergy`, with its dates."""

from __future__ import annotations

from checker.fhir_input.dates import _read_date, _read_end_date
from checker.fhir_input.elements import _concept, _list, _s, _status_code
from checker.fhir_input.raw import RawResource
from checker.fhir_input.references import _resource_ref
from checker.model import NOT_TRUE, Allergy, Concept

ALLERGY_ABATEMENT = "http://hl7.org/fhir/StructureDefinition/allergyintolerance-abatement"
"""When an allergy or intolerance resolved (FHIR Extensions Pack 5.x, trial use; dateTime or Period read)."""


def _allergy(raw: RawResource) -> Allergy:
    res = raw.resource
    reactions: list[Concept] = []
    for i, r in enumerate(_list(res, "reaction")):
        if isinstance(r, dict):
            subst = r.get("substance")
            if isinstance(subst, dict):
                reactions.append(_concept(subst, f"/reaction/{i}/substance"))
    category = tuple(c for c in _list(res, "category") if isinstance(c, str))
    onset = _read_date(res.get("onsetDateTime"), "/onsetDateTime") or _read_date(res.get("onset"), "/onset")  # DSTU2: onset is a dateTime
    if onset is None and isinstance(res.get("onsetPeriod"), dict):
        onset = _read_date(res["onsetPeriod"].get("start"), "/onsetPeriod/start")
    clinical = _status_code(res.get("clinicalStatus"), "/clinicalStatus")
    verification = _status_code(res.get("verificationStatus"), "/verificationStatus")
    old_status = _s(res.get("status"))  # DSTU2: one status for both
    if not clinical and not verification and old_status:
        if old_status in NOT_TRUE:
            verification = old_status
        else:
            clinical = old_status if old_status in ("inactive", "resolved") else "active"
    abatement = None
    for ext in _list(res, "extension"):
        if isinstance(ext, dict) and ext.get("url") == ALLERGY_ABATEMENT:
            abatement = (_read_end_date(ext.get("valueDateTime"), "/extension/abatement/valueDateTime")
                         or _read_end_date(ext.get("valueDate"), "/extension/abatement/valueDate"))
            if abatement is None and isinstance(ext.get("valuePeriod"), dict):
                abatement = (_read_end_date(ext["valuePeriod"].get("end"), "/extension/abatement/valuePeriod/end")
                             or _read_date(ext["valuePeriod"].get("start"), "/extension/abatement/valuePeriod/start"))
    return Allergy(
        ref=_resource_ref(raw),
        code=_concept(res["code"], "/code") if res.get("code") is not None
        else _concept(res.get("substance"), "/substance"),  # DSTU2 names the allergen in substance
        clinical_status=clinical,
        verification_status=verification,
        criticality=_s(res.get("criticality")),
        category=category,
        reactions=tuple(reactions),
        onset=onset,
        # R4/R5 recordedDate, STU3 assertedDate (DSTU2 recordedDate too)
        recorded=_read_date(res.get("recordedDate"), "/recordedDate") or _read_date(res.get("assertedDate"), "/assertedDate"),
        last_occurrence=_read_date(res.get("lastOccurrence"), "/lastOccurrence") or _read_date(res.get("lastOccurence"), "/lastOccurence"),  # DSTU2 spelling
        abatement=abatement,
    )
