"""The ANSM thesaurus' level conditions (JSON, ``kind`` = …) read into criteria nodes.

Every ``kind`` the thesaurus encoding uses is read here; an unknown one is an error (the referential
fails to load), never a silent "other". Conditions the thesaurus gives only in prose (``dose``,
``titration``, ``unstated``, ``other``, an unnamed indication …) become :class:`Unstated` nodes
naming the datum the record would need.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from checker.criteria.nodes import (
    Age,
    AllOf,
    Always,
    AnyOf,
    AspirinBand,
    CriteriaError,
    Dose,
    LineIn,
    Node,
    Not,
    OtherLines,
    Otherwise,
    Pair,
    RenalFunction,
    Route,
    RouteGate,
    Stated,
    Unstated,
    walk,
)


ASPIRIN = "acide acetylsalicylique"

ELDERLY = "elderly"
"""The population the thesaurus' "sujet âgé" names: its ages (from 75; 65-74 left open, after HAS's
PMSA as restated by VIDAL Recos, 21 February 2023) are in the facts tables' ``populations``
(``referentials/facts/clinical-facts.json``), read when the condition is evaluated."""

PROSE_ONLY = frozenset({"dose", "titration", "unstated", "other"})
"""Kinds the thesaurus encoding uses for circumstances stated in prose only (always unknown)."""


def _unless(cond: dict[str, Any], field: str, node: Callable[[bool], Node], datum: str) -> Node:
    """``node(value)`` when the condition gives ``field``, else the circumstance is unstated."""
    return node(bool(cond[field])) if field in cond else Unstated(datum)


def _negated(node: Node, want: bool) -> Node:
    return node if want else Not(node)


def _substances(cond: dict[str, Any]) -> Node:
    clauses: list[Node] = []
    for clause in cond["any_of"]:
        if "unresolved" in clause:
            clauses.append(Unstated(str(clause["unresolved"])))
        elif clause.get("others"):
            clauses.append(OtherLines(frozenset(clause.get("except", ()))))
        else:
            routes = clause.get("routes") or ([clause["route"]] if clause.get("route") else None)
            clauses.append(LineIn(frozenset(clause["keys"]), frozenset(routes) if routes else None))
    return AnyOf(tuple(clauses))


def _aspirin(cond: dict[str, Any]) -> Node:
    clauses: list[Node] = []
    for clause in cond["any_of"]:
        band = AspirinBand(str(clause["aspirin_dose"]), ASPIRIN)
        if clause.get("ulcer_history") is None:
            clauses.append(band)
        else:
            clauses.append(AllOf((band, Stated("peptic-ulcer", "ulcer", expect=bool(clause["ulcer_history"])))))
    return AnyOf(tuple(clauses))


def _route_gate(cond: dict[str, Any]) -> Node:
    routes = cond["routes"] if "routes" in cond else [cond["route"]]
    return RouteGate(frozenset(cond["keys"]), frozenset(routes))


_READERS: dict[str, Callable[[dict[str, Any]], Node]] = {
    "always": lambda c: Always(),
    "otherwise": lambda c: Otherwise(),
    "all_of": lambda c: AllOf(tuple(from_thesaurus(x) for x in c["of"])),
    "any_of": lambda c: AnyOf(tuple(from_thesaurus(x) for x in c["of"])),
    "not": lambda c: Not(from_thesaurus(c["of"])),
    "substances": _substances,
    "aspirin-dose": _aspirin,
    "acs-indication": lambda c: Stated("acute-coronary-syndrome", "acs-indication", expect=bool(c["acs"])),
    "pair": lambda c: Pair(tuple((frozenset(left), frozenset(right)) for left, right in c["any_of"])),
    "weekly-dose": lambda c: Dose(c["key"], "week", "weekly-dose", above_mg=float(c["above_mg"])),
    "daily-dose": lambda c: Dose(c["key"], "day", "daily-dose", at_least_mg=float(c["at_least_mg"]),
                                 at_most_mg=float(c["at_most_mg"]) if "at_most_mg" in c else None),
    "route-gate": _route_gate,
    "route": lambda c: Route((c["route"],)),
    "elderly": lambda c: _unless(c, "elderly", lambda want: _negated(
        Age("elderly", population=ELDERLY), want), "elderly"),
    "renal-function": lambda c: _unless(c, "impaired", lambda want: _negated(
        RenalFunction("renal-function", float(c["below"]), float(c["normal_from"])), want), "renal-function"),
    # a resolved liver failure is no present impairment
    "hepatic-function": lambda c: _unless(c, "impaired", lambda want: Stated(
        "hepatic-failure", "hepatic-function", current=True, expect=want), "hepatic-function"),
    "heart-function": lambda c: _unless(c, "altered", lambda want: Stated(
        "heart-failure", "heart-function", expect=want, denial_settles=False), "heart-function"),
    "indication": lambda c: (Stated("heart-failure", "indication", denial_settles=False)
                             if c.get("what") == "heart-failure" else Unstated("indication")),
    "hypokalaemia": lambda c: Stated("hypokalaemia", "hypokalaemia", current=True, denial_settles=False),
    **{kind: (lambda c: Unstated(str(c["kind"]))) for kind in PROSE_ONLY},
}

KINDS = frozenset(_READERS)
"""Every condition kind of the thesaurus encoding."""


def from_thesaurus(cond: dict[str, Any]) -> Node:
    """The criteria node of one thesaurus condition; :class:`CriteriaError` for an unknown kind."""
    if not isinstance(cond, dict) or cond.get("kind") not in _READERS:
        raise CriteriaError(f"unknown thesaurus condition kind {cond.get('kind') if isinstance(cond, dict) else cond!r}")
    try:
        return _READERS[cond["kind"]](cond)
    except (KeyError, TypeError, ValueError) as exc:
        raise CriteriaError(f"thesaurus condition {cond!r}: {exc}") from None


def mentions_route(node: Node) -> bool:
    """Does the criterion depend on a line's route (a route, a route gate, a clause on a route)?"""
    return any(isinstance(n, (Route, RouteGate)) or (isinstance(n, LineIn) and n.routes is not None) for n in walk(node))
