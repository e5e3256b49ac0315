"""AllergyIntolerance to :class:`~checker.model.Allergy`."""

from __future__ import annotations

from checker.fhir_input.elements import _concept, _list, _s, _status_code
from checker.fhir_input.raw import RawResource
from checker.fhir_input.references import _resource_ref
from checker.model import Allergy, Concept


def _allergy(raw: RawResource) -> Allergy:
    res = raw.resource
    reactions: list[Concept] = []
    for i, r in enumerate(_list(res, "reaction")):
        if isinstance(r, dict):
            subst = r.get("substance")
            if isinstance(subst, dict):
                reactions.append(_concept(subst, f"/reaction/{i}/substance"))
    category = tuple(c for c in _list(res, "category") if isinstance(c, str))
    return Allergy(
        ref=_resource_ref(raw),
        code=_concept(res.get("code"), "/code"),
        clinical_status=_status_code(res.get("clinicalStatus"), "/clinicalStatus"),
        verification_status=_status_code(res.get("verificationStatus"), "/verificationStatus"),
        criticality=_s(res.get("criticality")),
        category=category,
        reactions=tuple(reactions),
    )
