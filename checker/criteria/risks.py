"""The patient-risk rows' conditions (``referentials/iatrogenic/patient-risks.tsv``, ``params``
column) read into criteria nodes.

The numbers stay in the row; this module only says which parameter is which condition: the
population a row is for (an age band), the routes it concerns, the patient state that makes the
risk (renal function below a threshold, a recorded pregnancy) and when the older-adult and the
weight-based maxima of a dose row apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from checker.criteria.nodes import Age, CriteriaError, Node, Pregnant, RenalFunction, Route


@dataclass(frozen=True, slots=True)
class RowCriteria:
    """The conditions of one patient-risk row (``None``: the row states none)."""

    population: Node | None = None
    """Who the row is for: ``min_age`` (older people, renal rows of the Beers list), ``max_age``
    (a paediatric dose row)."""
    route: Node | None = None
    """The routes the row concerns (``routes``: words of the line's route)."""
    risk: Node | None = None
    """The patient state that makes the risk: renal function below ``below`` (mL/min, a
    Cockcroft–Gault clearance standing in), a recorded pregnancy."""
    older: Node | None = None
    """When the older-adult maximum applies (``older_from_age``)."""
    weight_based: Node | None = None
    """When the weight-based maximum applies (``per_kg_max_age``; always when absent)."""

    def nodes(self) -> tuple[Node, ...]:
        return tuple(n for n in (self.population, self.route, self.risk, self.older, self.weight_based)
                     if n is not None)


AGE = "age"
"""The datum an age condition needs (the birth date)."""

CONDITION_PARAMS: dict[str, frozenset[str]] = {
    "elderly": frozenset({"min_age"}),
    "renal": frozenset({"below", "min_age", "inclusive"}),
    "pregnancy": frozenset(),
    "max-dose": frozenset({"routes", "max_age", "older_from_age", "per_kg_max_age"}),
    "duplicate-class": frozenset(),
    "same-substance": frozenset(),
    "allergy-class": frozenset(),
    "accumulation": frozenset(),
}
"""For each row kind, the parameters that are conditions (the others are maxima, counts, wording)."""


def from_risk_row(kind: str, params: dict[str, Any]) -> RowCriteria:
    """The criteria of a row of ``kind`` with ``params``; :class:`CriteriaError` when a condition the
    kind needs is missing or malformed."""
    if kind not in CONDITION_PARAMS:
        raise CriteriaError(f"unknown patient-risk row kind {kind!r}")
    try:
        if kind == "elderly":
            return RowCriteria(population=Age(AGE, min=int(params["min_age"])))
        if kind == "renal":
            return RowCriteria(
                population=Age(AGE, min=int(params["min_age"])) if "min_age" in params else None,
                risk=RenalFunction("renal-function", float(params["below"]), estimate=True,
                                   inclusive=bool(params.get("inclusive"))))
        if kind == "pregnancy":
            return RowCriteria(risk=Pregnant("pregnancy"))
        if kind == "max-dose":
            routes = params.get("routes")
            return RowCriteria(
                population=Age(AGE, max=int(params["max_age"])) if "max_age" in params else None,
                route=Route(tuple(str(r) for r in routes), contains=True) if routes else None,
                older=Age(AGE, min=int(params["older_from_age"])) if "older_from_age" in params else None,
                weight_based=Age(AGE, max=int(params["per_kg_max_age"])) if "per_kg_max_age" in params else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise CriteriaError(f"{kind} row: condition parameter {exc} missing or malformed") from None
    return RowCriteria()
