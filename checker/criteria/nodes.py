"""The node types of the criteria language: typed, frozen, data only.

A criterion is a tree of nodes: combinators (:class:`AllOf`, :class:`AnyOf`, :class:`Not`) over
leaves. Patient leaves read the record through the facts layer on the day the criterion is judged
(:class:`Stated`, :class:`Age`, :class:`Sex`, :class:`Pregnant`, :class:`RenalFunction`,
:class:`Observation`, :class:`HasCondition`, :class:`HasAllergy`); line leaves read the prescription lines under judgement (:class:`Route`,
:class:`LineIn`, :class:`OtherLines`, :class:`Pair`, :class:`RouteGate`, :class:`Dose`,
:class:`AspirinBand`); :class:`Unstated` is a circumstance a referential gives only in prose, so it
is always unknown and names its datum; :class:`Local` is a leaf of one source's own context (a
protocol's order, its other orders, its decision graph), answered by that context. Every threshold
comes from the referential that was parsed, never from this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal


class CriteriaError(ValueError):
    """A condition that is not written in the criteria language."""


@dataclass(frozen=True, slots=True)
class Always:
    """Holds for every patient (a single-level thesaurus entry)."""


@dataclass(frozen=True, slots=True)
class Otherwise:
    """The level that applies when every other level of the entry is ruled out (read by the
    thesaurus' level settling; evaluated alone it is unknown)."""


@dataclass(frozen=True, slots=True)
class AllOf:
    of: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    of: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    of: Node


@dataclass(frozen=True, slots=True)
class Unstated:
    """A circumstance the referential states only in prose (``titration``, an unnamed indication …):
    always unknown, naming ``datum``."""

    datum: str


@dataclass(frozen=True, slots=True)
class Stated:
    """The record states ``concept`` (a concept set of ``referentials/facts/clinical-facts.json``)
    on the day: present only when ``current``, else ever (a history). Yes when the statement equals
    ``expect``; a denial settles it only when ``denial_settles`` (else a denial is unknown)."""

    concept: str
    datum: str
    current: bool = False
    expect: bool = True
    denial_settles: bool = True


@dataclass(frozen=True, slots=True)
class Age:
    """Age on the day within [``min``, ``max``] (years, both inclusive, either open). Ages in the
    ``unknown_band`` [lo, hi) are unknown: the referential does not decide them. With
    ``population``, the ages are those of that population in the facts tables (its ``from_age`` is
    ``min``, its undetermined band ``unknown_band``), read when the criterion is evaluated."""

    datum: str
    min: int | None = None
    max: int | None = None
    unknown_band: tuple[int, int] | None = None
    population: str | None = None


@dataclass(frozen=True, slots=True)
class Sex:
    datum: str
    sex: Literal["female", "male"]


@dataclass(frozen=True, slots=True)
class Pregnant:
    """A pregnancy recorded on the day (status observation within its window, or a condition)."""

    datum: str = "pregnancy"


@dataclass(frozen=True, slots=True)
class RenalFunction:
    """Renal function (mL/min) below ``below`` (at or below it with ``inclusive``, where the source
    writes "≤ N"): yes; from ``normal_from`` (``below`` when None): no; in between: unknown.
    ``estimate``: a Cockcroft–Gault clearance stands in when no eGFR or clearance is recorded."""

    datum: str
    below: float
    normal_from: float | None = None
    estimate: bool = False
    inclusive: bool = False


@dataclass(frozen=True, slots=True)
class CodeSpec:
    """A code to match: system alias (CCAM, ICD10 …), the code, exact or prefix matching."""

    system: str
    code: str
    prefix: bool = False
    display: str = ""


@dataclass(frozen=True, slots=True)
class Matcher:
    """Codes and text patterns; matches a concept when any code or any pattern matches."""

    codes: tuple[CodeSpec, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()

    @property
    def empty(self) -> bool:
        return not self.codes and not self.patterns


@dataclass(frozen=True, slots=True)
class ValueTest:
    """A test on an observation's value: ``value`` (``op`` ``number`` in ``unit``), ``valueBool``
    (``is``) or ``valueCode`` (``code``)."""

    kind: Literal["value", "valueBool", "valueCode"]
    op: str = ""
    number: float = 0.0
    unit: str = ""
    is_: bool = False
    code: CodeSpec | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """The latest observation matching ``matcher`` taken by the day (within ``within_days`` when
    given) passes ``value`` (any value when None). None found: no, or unknown when
    ``if_absent_unknown``; a value that cannot be read is unknown."""

    matcher: Matcher
    datum: str
    value: ValueTest | None = None
    within_days: int | None = None
    if_absent_unknown: bool = False


@dataclass(frozen=True, slots=True)
class HasCondition:
    """A condition matching ``matcher`` is stated: among the indications of the order judged
    (``in_reason``: its reasons, its own words, a condition recorded just before it) and/or in the
    problem list on the day (``in_record``), present then (``active_only``) or ever. Texts are read
    with their negations."""

    matcher: Matcher
    in_reason: bool = True
    in_record: bool = True
    active_only: bool = True


@dataclass(frozen=True, slots=True)
class HasAllergy:
    """An allergy or intolerance matching ``matcher`` is recorded on the day (not refuted, not
    denied in text)."""

    matcher: Matcher


@dataclass(frozen=True, slots=True)
class Route:
    """A line under judgement is given by one of ``routes``: exact route names, or words contained
    in the line's route with ``contains``. Unknown while a line's route is unknown."""

    routes: tuple[str, ...]
    datum: str = "route"
    contains: bool = False


@dataclass(frozen=True, slots=True)
class LineIn:
    """The first line standing for one of ``keys`` (substances or classes) exists and, with
    ``routes``, is given by one of those routes (route names as :meth:`Context.route_name` gives them)."""

    keys: frozenset[str]
    routes: frozenset[str] | None = None
    datum: str = "route"


@dataclass(frozen=True, slots=True)
class OtherLines:
    """No line under judgement stands for one of ``except_`` (the "other members of the class")."""

    except_: frozenset[str]


@dataclass(frozen=True, slots=True)
class Pair:
    """One line in the first set of nodes and the other line in the second (either way round)."""

    any_of: tuple[tuple[frozenset[str], frozenset[str]], ...]


@dataclass(frozen=True, slots=True)
class RouteGate:
    """Every line standing for one of ``keys`` (a substance, a class it belongs to, or a class above
    it) is given by one of ``routes`` (no when one is not; unknown while its route name is not known)."""

    keys: frozenset[str]
    routes: frozenset[str]
    datum: str = "route"


@dataclass(frozen=True, slots=True)
class Dose:
    """The structured dose of ``key`` on its line: per week above ``above_mg`` (``per`` = week), or
    per day at least ``at_least_mg`` and at most ``at_most_mg`` (``per`` = day)."""

    key: str
    per: Literal["day", "week"]
    datum: str
    above_mg: float | None = None
    at_least_mg: float | None = None
    at_most_mg: float | None = None


@dataclass(frozen=True, slots=True)
class AspirinBand:
    """The aspirin line's dose falls in the thesaurus dose band ``category`` (bands are data)."""

    category: str
    key: str
    datum: str = "aspirin-dose"


@dataclass(frozen=True, slots=True)
class Local:
    """A leaf answered by the source's own context (``kind`` with its ``spec``): a protocol's
    order, its other orders, its decision graph."""

    kind: str
    spec: Any
    datum: str = ""


Node = (Always | Otherwise | AllOf | AnyOf | Not | Unstated | Stated | Age | Sex | Pregnant | RenalFunction | Observation
        | HasCondition | HasAllergy | Route | LineIn | OtherLines | Pair | RouteGate | Dose | AspirinBand | Local)

NODE_TYPES: tuple[type, ...] = (Always, Otherwise, AllOf, AnyOf, Not, Unstated, Stated, Age, Sex, Pregnant,
                                RenalFunction, Observation, HasCondition, HasAllergy, Route, LineIn, OtherLines, Pair, RouteGate, Dose,
                                AspirinBand, Local)


def walk(node: Node) -> list[Node]:
    """``node`` and every node under it, depth first."""
    out: list[Node] = [node]
    if isinstance(node, (AllOf, AnyOf)):
        for child in node.of:
            out.extend(walk(child))
    elif isinstance(node, Not):
        out.extend(walk(node.of))
    return out
