"""The one evaluator of the criteria language: :func:`evaluate` (node, context) → :class:`Verdict`.

Three-valued: yes (``True``), no (``False``), unknown (``None``). An unknown verdict always names the
missing datum (a stable datum code, first the one that decided). Combinators follow Kleene logic:
:class:`AllOf` is no when a part is no, unknown when a part is unknown, else yes; :class:`AnyOf` the
mirror; :class:`Not` swaps yes and no and keeps the missing data. A verdict keeps the evidence it
rests on (record elements, measured values, worded facts) from the parts that decided it.

Patient leaves ask the facts layer (:mod:`checker.facts`) about the context's ``record`` on its
``day``; line leaves ask the context about the lines under judgement (their substance keys, the
thesaurus nodes a key stands for, a line's route and structured daily dose); :class:`Local` leaves
are answered by the context itself (:meth:`Context.local`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Protocol

from checker import facts
from checker.criteria.nodes import (
    Age,
    AllOf,
    Always,
    AnyOf,
    AspirinBand,
    Dose,
    HasAllergy,
    HasCondition,
    LineIn,
    Local,
    Matcher,
    Node,
    Not,
    Observation,
    OtherLines,
    Otherwise,
    Pair,
    Pregnant,
    RenalFunction,
    Route,
    RouteGate,
    Sex,
    Stated,
    Unstated,
    ValueTest,
)
from checker.facts import FactTables, Indication
from checker.memo import holds_request_words
from checker.model import Concept, MedicationOrder, PatientRecord
from checker.model import Observation as ObservationRecord

EPSILON = 1e-9
"""Tolerance of dose comparisons (sums of floats)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """Yes (``True``), no (``False``) or unknown (``None``, with the ``missing`` data named);
    ``evidence``: what the answer rests on."""

    value: bool | None
    missing: tuple[str, ...] = ()
    evidence: tuple[Any, ...] = ()

    @property
    def datum(self) -> str | None:
        """The missing datum that decided an unknown verdict (``None`` otherwise)."""
        return self.missing[0] if self.value is None and self.missing else None


@dataclass(frozen=True, slots=True)
class AgeOn:
    """Evidence: the patient's age in years on the day."""

    years: int


@dataclass(frozen=True, slots=True)
class SexOf:
    """Evidence: the patient's recorded sex."""

    sex: str


@dataclass(frozen=True, slots=True)
class Measured:
    """Evidence: the observation used, and the code or words of it that matched."""

    observation: ObservationRecord
    matched: str


@dataclass(frozen=True, slots=True)
class Named:
    """Evidence: the words or code that matched (``text``) and where: ``reason`` / ``reference`` (the
    order's reason), ``order-text`` (its own words), ``inferred`` (a condition recorded just before
    it), ``record`` (the problem list), ``allergy``."""

    where: str
    text: str


@dataclass(frozen=True, slots=True)
class BareReason:
    """Evidence: a condition was found only as a reason code of the order, with no Condition
    resource behind it (so no onset date)."""


BARE_REASON = BareReason()

YES = Verdict(True)
NO = Verdict(False)


def unknown(datum: str, *evidence: Any) -> Verdict:
    return Verdict(None, (datum,), evidence)


class Daily(Protocol):
    @property
    def per_intake_mg(self) -> float: ...
    @property
    def per_day_mg(self) -> float: ...


class Context(Protocol):
    """What a criterion is judged on: a patient's record on a day, and the prescription lines under
    judgement (``lines``: substance key and line, in the source's order)."""

    @property
    def record(self) -> PatientRecord: ...

    @property
    def day(self) -> date:
        """The day the criterion is judged at."""
        ...

    @property
    def tables(self) -> FactTables | None:
        """The clinical facts tables (concept sets, observation codes, validity windows)."""
        ...

    @property
    def aspirin_bands(self) -> tuple[dict[str, Any], ...]:
        """The thesaurus' aspirin dose bands (``referentials/iatrogenic/aspirin-dose-bands.json``)."""
        ...

    def reasons(self) -> Sequence[Concept]:
        """Further concepts that speak for the patient (the reasons of the lines judged)."""
        ...

    def indications(self) -> Sequence[Indication]:
        """The indications of the order judged (:func:`checker.facts.indications`)."""
        ...

    def lines(self) -> Sequence[tuple[str, MedicationOrder]]: ...

    def nodes_for(self, key: str) -> Collection[str]:
        """The nodes (classes, entities) a substance key stands for."""
        ...

    def closure(self, key: str) -> Collection[str]:
        """Every node reachable from a substance key (itself, its classes, their classes …)."""
        ...

    def route_of(self, line: MedicationOrder) -> str | None: ...

    def route_name(self, line: MedicationOrder) -> str | None:
        """The line's route as a route gate names it (``iv``, ``im``, ``sc``, ``oral`` …), None when
        unknown or not understood."""
        ...

    def daily_dose(self, line: MedicationOrder, key: str) -> Daily | None: ...

    def local(self, node: Local) -> Verdict:
        """The answer of a leaf of the source's own context."""
        ...


def evaluate(node: Node, ctx: Context) -> Verdict:
    """The verdict of ``node`` for ``ctx`` (see the module docstring)."""
    return _EVALUATORS[type(node)](node, ctx)


Judge = Callable[[Any], Verdict]
"""A node compiled for a context: ``judge(ctx)`` is ``evaluate(node, ctx)``."""


def compiled(node: Node) -> Judge:
    """``node`` as a function of the context giving what :func:`evaluate` gives: the tree is walked
    once here instead of at each evaluation (its combinators call their parts' functions directly,
    each leaf its evaluator). For the criteria a source judges again and again (a protocol's)."""
    kind = type(node)
    if kind is AllOf or kind is AnyOf:
        parts = tuple(compiled(c) for c in node.of)  # type: ignore[union-attr]
        decisive = kind is AnyOf
        if len(parts) == 1:
            only = parts[0]
            return lambda ctx: _combine([only(ctx)], decisive)
        return lambda ctx: _combine([judge(ctx) for judge in parts], decisive)
    leaf = _EVALUATORS[kind]
    return lambda ctx: leaf(node, ctx)


def _merge(parts: list[Verdict]) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    missing: list[str] = []
    evidence: list[Any] = []
    for p in parts:
        missing.extend(m for m in p.missing if m not in missing)
        evidence.extend(e for e in p.evidence if e not in evidence)
    return tuple(missing), tuple(evidence)


def _distinct(items: tuple[Any, ...]) -> tuple[Any, ...]:
    """``items`` without repeats (equal items), first kept, as :func:`_merge` keeps them."""
    if len(items) < 2:
        return items
    out: list[Any] = []
    out.extend(e for e in items if e not in out)
    return tuple(out)


def _combine(parts: list[Verdict], decisive: bool) -> Verdict:
    """All-of (``decisive`` = False: one no decides) or any-of (one yes decides)."""
    if len(parts) == 1:  # what the general case below gives for one part, without its lists
        p = parts[0]
        if len(p.evidence) < 2 and type(p.evidence) is tuple and type(p.missing) is tuple and (
                (not p.missing and (p.value is True or p.value is False)) or (p.value is None and len(p.missing) < 2)):
            return p  # nothing to drop nor to merge: the part is its own combination (an equal, immutable verdict)
        if p.value is None:
            return Verdict(None, _distinct(p.missing), _distinct(p.evidence))
        return Verdict(decisive if p.value is decisive else not decisive, (), _distinct(p.evidence))
    hits = [p for p in parts if p.value is decisive]
    if hits:
        return Verdict(decisive, (), _merge(hits)[1])
    open_ = [p for p in parts if p.value is None]
    if open_:
        missing, evidence = _merge(open_)
        return Verdict(None, missing, evidence)
    return Verdict(not decisive, (), _merge(parts)[1])


def _all_of(node: AllOf, ctx: Context) -> Verdict:
    return _combine([evaluate(c, ctx) for c in node.of], False)


def _any_of(node: AnyOf, ctx: Context) -> Verdict:
    return _combine([evaluate(c, ctx) for c in node.of], True)


def _not(node: Not, ctx: Context) -> Verdict:
    v = evaluate(node.of, ctx)
    return v if v.value is None else Verdict(not v.value, (), v.evidence)


def _always(node: Always, ctx: Context) -> Verdict:
    return YES


def _otherwise(node: Otherwise, ctx: Context) -> Verdict:
    return unknown("otherwise")


def _unstated(node: Unstated, ctx: Context) -> Verdict:
    return unknown(node.datum)


# --- patient leaves: the facts layer on the context's day -----------------------------------------

def _tables(ctx: Context) -> FactTables:
    if ctx.tables is None:
        raise ValueError("this criterion needs the clinical facts tables")
    return ctx.tables


def _stated(node: Stated, ctx: Context) -> Verdict:
    fact = facts.stated(ctx.record, ctx.day, _tables(ctx).concept(node.concept), history=not node.current,
                        also=ctx.reasons())
    if fact.value is True or (fact.value is False and node.denial_settles):
        return Verdict(fact.value == node.expect, (), (fact,))
    return unknown(node.datum)


def _age(node: Age, ctx: Context) -> Verdict:
    age = facts.age_on(ctx.record, ctx.day)
    if age is None:
        return unknown(node.datum)
    low, band = node.min, node.unknown_band
    if node.population is not None:  # the population's ages, from the facts tables
        population = _tables(ctx).population(node.population)
        low, band = population.from_age, population.undetermined
    if band is not None and band[0] <= age < band[1]:
        return unknown(node.datum, AgeOn(age))
    ok = (low is None or age >= low) and (node.max is None or age <= node.max)
    return Verdict(ok, (), (AgeOn(age),))


def _sex(node: Sex, ctx: Context) -> Verdict:
    sex = ctx.record.patient.sex if ctx.record.patient else ""
    if sex not in ("female", "male"):
        return unknown(node.datum)
    return Verdict(sex == node.sex, (), (SexOf(sex),))


def _pregnant(node: Pregnant, ctx: Context) -> Verdict:
    fact = facts.pregnancy_on(ctx.record, ctx.day, _tables(ctx))
    if fact.value is None:
        return unknown(node.datum, fact)
    return Verdict(bool(fact.value), (), (fact,))


def _renal(node: RenalFunction, ctx: Context) -> Verdict:
    tables = _tables(ctx)
    value: float | None
    got: Any
    if node.estimate:
        kidney = facts.kidney_function_on(ctx.record, ctx.day, tables)
        value, got, comparator = kidney.value, kidney, kidney.comparator
    else:
        measured = facts.renal_on(ctx.record, ctx.day, tables)
        value, got = (measured[1], measured) if measured is not None else (None, None)
        comparator = measured[2].comparator if measured is not None else ""
    if value is None:
        return unknown(node.datum, got) if got is not None else unknown(node.datum)
    below = facts.renal_below(value, comparator, node.below, inclusive=node.inclusive, normal_from=node.normal_from)
    return unknown(node.datum, got) if below is None else Verdict(below, (), (got,))


_UNIT_ALIASES = {
    "cel": "Cel", "degc": "Cel", "c": "Cel", "celsius": "Cel",
    "[degf]": "[degF]", "degf": "[degF]", "f": "[degF]", "fahrenheit": "[degF]",
}
"""Spellings of the same unit (UCUM code first); compared lower-cased, without spaces, ° read as "deg"."""


def _unit_key(unit: str) -> str:
    u = unit.strip().replace("°", "deg").replace(" ", "").lower()
    return _UNIT_ALIASES.get(u, u)


def in_unit(value: float, unit: str, wanted: str) -> float | None:
    """``value`` (in ``unit``) expressed in ``wanted``; ``None`` when the unit is missing or not
    convertible. Only the Celsius/Fahrenheit conversion is known; other units must be the same."""
    have, want = _unit_key(unit), _unit_key(wanted)
    if not have:
        return None
    if have == want:
        return value
    if have == "[degF]" and want == "Cel":
        return (value - 32) * 5 / 9
    if have == "Cel" and want == "[degF]":
        return value * 9 / 5 + 32
    return None


def value_passes(test: ValueTest | None, obs: ObservationRecord) -> bool | None:
    """Does the observation's value pass ``test`` (``None``: no value to read)?"""
    if test is None:
        return True
    if test.kind == "valueBool":
        return None if obs.value_bool is None else obs.value_bool == test.is_
    if test.kind == "valueCode":
        if obs.value_concept is None or test.code is None:
            return None
        spec = test.code
        return any(facts.code_matches(spec, c.system, c.code) for c in obs.value_concept.codings)
    if obs.value is None:
        return None
    value: float | None = obs.value
    if test.unit:
        value = in_unit(obs.value, obs.unit, test.unit)
    if value is None:
        return None
    n = test.number
    return {"lt": value < n, "le": value <= n, "gt": value > n, "ge": value >= n, "eq": value == n}[test.op]


def _observation(node: Observation, ctx: Context) -> Verdict:
    found: list[tuple[ObservationRecord, str]] = []
    for obs in facts.observations_on(ctx.record, ctx.day, node.within_days):
        hit = facts.concept_matches(node.matcher, obs.code)
        if hit:
            found.append((obs, hit))
    if not found:
        return unknown(node.datum) if node.if_absent_unknown else NO
    found.sort(key=lambda x: x[0].effective or date.min, reverse=True)
    obs, hit = found[0]
    ok = value_passes(node.value, obs)
    if ok is None:
        return unknown(node.datum, Measured(obs, hit))
    return Verdict(ok, (), (Measured(obs, hit),))


def _has_condition(node: HasCondition, ctx: Context) -> Verdict:
    found = False
    evidence: list[Any] = []
    conditions: list[Any] = []
    bare = False
    if node.in_reason:
        for ind in ctx.indications():
            hit = _affirmed_match(node.matcher, ind.concept)
            if not hit:
                continue
            found = True
            evidence.append(Named(ind.how, hit))
            if ind.how in ("inferred", "order-text"):
                evidence.append(ind)
            if ind.condition is not None:
                conditions.append(ind.condition)
            else:
                bare = True
    if node.in_record:
        pool = facts.conditions_on(ctx.record, ctx.day) if node.active_only else facts.history_on(ctx.record, ctx.day)
        for cond in pool:
            if cond in conditions:
                continue
            hit = _affirmed_match(node.matcher, cond.code)
            if hit:
                found = True
                conditions.append(cond)
                evidence.append(Named("record", hit))
    if not found:
        return NO
    # a Condition found in the record documents the reason given as a bare code
    return Verdict(True, (), (*evidence, *conditions, *((BARE_REASON,) if bare and not conditions else ())))


_AFFIRMED: dict[tuple[int, Concept], tuple[Matcher, str | None]] = {}


def _affirmed_match(matcher: Matcher, concept: Concept) -> str | None:
    """``facts.concept_matches(matcher, concept, negation=True)``, remembered per matcher and concept
    value (an order's reasons and own words recur across the lines of an export: the same dosage
    texts); an unhashable concept is matched each time."""
    try:
        k = (id(matcher), concept)
        hit = _AFFIRMED.get(k)
    except TypeError:
        return facts.concept_matches(matcher, concept, negation=True)
    if hit is None:
        if len(_AFFIRMED) >= AFFIRMED_ENTRIES:
            _AFFIRMED.clear()
        hit = _AFFIRMED[k] = (matcher, facts.concept_matches(matcher, concept, negation=True))
    return hit[1]


AFFIRMED_ENTRIES = 20_000
"""Bound of the memo of :func:`_affirmed_match` (emptied when full, and after each check: its keys
are an order's reasons, a diagnosis in the prescriber's words)."""
holds_request_words(_AFFIRMED.clear)


def _has_allergy(node: HasAllergy, ctx: Context) -> Verdict:
    for allergy in facts.allergies_on(ctx.record, ctx.day, ctx.tables):
        hit = facts.concept_matches(node.matcher, allergy.code, negation=True)
        if hit:
            return Verdict(True, (), (Named("allergy", hit),))
    return NO


# --- line leaves: the lines under judgement --------------------------------------------------------

def _route(node: Route, ctx: Context) -> Verdict:
    routes = [ctx.route_of(line) for _, line in ctx.lines()]
    for got in routes:
        if got is not None and (any(r in got for r in node.routes) if node.contains else got in node.routes):
            return Verdict(True, (), (got,))
    return NO if all(r is not None for r in routes) else unknown(node.datum)


def _line_in(node: LineIn, ctx: Context) -> Verdict:
    line = next((line for key, line in ctx.lines() if set(ctx.nodes_for(key)) & node.keys), None)
    if line is None:
        return NO
    if not node.routes:
        return YES
    got = ctx.route_name(line)
    if got in node.routes:
        return Verdict(True, (), (got,))
    return unknown(node.datum) if got is None else NO


def _other_lines(node: OtherLines, ctx: Context) -> Verdict:
    named = any(set(ctx.nodes_for(key)) & node.except_ for key, _ in ctx.lines())
    return NO if named else YES


def _pair(node: Pair, ctx: Context) -> Verdict:
    lines = ctx.lines()
    if len(lines) < 2:
        return NO
    (ka, _), (kb, _) = lines[:2]
    ca, cb = set(ctx.closure(ka)), set(ctx.closure(kb))
    for left, right in node.any_of:
        if (ca & left and cb & right) or (cb & left and ca & right):
            return YES
    return NO


def _route_gate(node: RouteGate, ctx: Context) -> Verdict:
    pending = False
    for key, line in ctx.lines():
        if key in node.keys or set(ctx.nodes_for(key)) & node.keys or node.keys & set(ctx.closure(key)):
            got = ctx.route_name(line)
            if got is None:
                pending = True
            elif got not in node.routes:
                return Verdict(False, (), (got,))
    return unknown(node.datum) if pending else YES


def _dose(node: Dose, ctx: Context) -> Verdict:
    for key, line in ctx.lines():
        if node.key == key or node.key in ctx.nodes_for(key):
            dd = ctx.daily_dose(line, key)
            if dd is None:
                return unknown(node.datum)
            if node.per == "week":
                assert node.above_mg is not None
                return Verdict(dd.per_day_mg * 7 > node.above_mg + EPSILON, (), (dd,))
            if node.at_most_mg is not None and dd.per_day_mg > node.at_most_mg + EPSILON:
                return Verdict(False, (), (dd,))
            assert node.at_least_mg is not None
            return Verdict(dd.per_day_mg >= node.at_least_mg - EPSILON, (), (dd,))
    return NO


def _band_test(test: dict[str, Any], per_intake: float, per_day: float) -> bool:
    got = {"per_intake_mg": per_intake, "per_day_mg": per_day}
    for name, bound in test.items():
        what, _, side = name.rpartition("_")
        value = got[what]
        if (side == "min" and value < bound - EPSILON) or (side == "max" and value > bound + EPSILON):
            return False
    return True


def aspirin_category(bands: tuple[dict[str, Any], ...], per_intake_mg: float, per_day_mg: float) -> str:
    """The thesaurus dose band of an aspirin dosage: the first band one of whose tests holds, else ``other``."""
    for band in bands:
        if any(_band_test(t, per_intake_mg, per_day_mg) for t in band["any"]):
            return str(band["category"])
    return "other"


def _aspirin_band(node: AspirinBand, ctx: Context) -> Verdict:
    for key, line in ctx.lines():
        if node.key == key or node.key in ctx.nodes_for(key):
            dd = ctx.daily_dose(line, key)
            bands = ctx.aspirin_bands
            if dd is None or not bands:
                return unknown(node.datum)
            return Verdict(aspirin_category(bands, dd.per_intake_mg, dd.per_day_mg) == node.category, (), (dd,))
    return unknown(node.datum)


def _local(node: Local, ctx: Context) -> Verdict:
    return ctx.local(node)


_EVALUATORS: dict[type, Callable[[Any, Context], Verdict]] = {
    Always: _always, Otherwise: _otherwise, AllOf: _all_of, AnyOf: _any_of, Not: _not, Unstated: _unstated,
    Stated: _stated, Age: _age, Sex: _sex, Pregnant: _pregnant, RenalFunction: _renal, Observation: _observation,
    HasCondition: _has_condition, HasAllergy: _has_allergy, Route: _route, LineIn: _line_in, OtherLines: _other_lines, Pair: _pair, RouteGate: _route_gate, Dose: _dose,
    AspirinBand: _aspirin_band, Local: _local,
}
