"""Evaluate a protocol's decision graph for one order of one patient.

The engine knows a fixed set of criterion primitives (condition, age, sex, observation, onset,
other order, act, medication, allergy, treatment duration, reason given, reference); a protocol
only combines them. Every primitive answers ``yes``, ``no`` or ``unknown``; ``unknown`` carries
the missing datum so that a finding can say what the decision hinged on.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date
from typing import Iterator, Union

from checker import periods
from checker.memo import by_identities
from checker.model import (
    NO_HISTORY,
    NOT_TAKEN,
    RULE_CONFIDENCE,
    Concept,
    Condition,
    Ingredient,
    MedicationIdentity,
    MedicationOrder,
    Observation,
    PatientRecord,
    ServiceOrder,
)
from checker.protocols.language import Act, Criterion, MedicationClass, Outcome, Protocol, Test
from checker import facts
from checker.facts import FactTables, Indication, code_matches, concept_matches, system_is

Order = Union[ServiceOrder, MedicationOrder]

# --- code systems and concepts: the facts layer's one matcher (checker.facts.concepts) ------------

__all__ = ["code_matches", "concept_matches", "system_is"]


def atc_codes_of(order: MedicationOrder) -> frozenset[str]:
    """ATC codes of a prescription line: from its identification (rule-grade confidence) and any
    ATC coding given in the input."""
    return _atc_codes(order.identity, order.medication, order.ingredients)


@by_identities  # within one reading, orders naming the same medication share these objects (see fhir_input)
def _atc_codes(ident: MedicationIdentity | None, medication: Concept, ingredients: tuple[Ingredient, ...]
               ) -> frozenset[str]:
    codes: set[str] = set()
    if ident is not None and ident.confidence >= RULE_CONFIDENCE:
        codes |= {a.upper() for a in ident.atc_codes}
    for concept in [medication, *(i.concept for i in ingredients)]:
        codes |= {c.code.strip().upper() for c in concept.codings if system_is("ATC", c.system)}
    return frozenset(codes)


@functools.lru_cache(maxsize=4096)
def atc_matches(prefixes: tuple[str, ...], codes: frozenset[str]) -> str | None:
    """The first of ``codes`` (in code order) that starts with one of ``prefixes``. Cached: asked
    for every line of a record at each step of a protocol, over a few distinct code sets."""
    for code in sorted(codes):
        for p in prefixes:
            if code.startswith(p):
                return code
    return None


# --- units of observation values -----------------------------------------------------------------

# spellings of the same unit (UCUM code first); compared lower-cased, without spaces, ° read as "deg"
_UNIT_ALIASES = {
    "cel": "Cel", "degc": "Cel", "c": "Cel", "celsius": "Cel",
    "[degf]": "[degF]", "degf": "[degF]", "f": "[degF]", "fahrenheit": "[degF]",
}


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


# --- results ------------------------------------------------------------------------------------

_WORDS = {
    "birth": {"fr": "date de naissance du patient", "en": "patient's birth date"},
    "sex": {"fr": "sexe du patient", "en": "patient's sex"},
    "order_day": {"fr": "date de la prescription", "en": "date of the order"},
    "start": {"fr": "date de début du traitement", "en": "treatment start date"},
}


def _w(key: str, lang: str) -> str:
    return _WORDS[key].get(lang, _WORDS[key]["fr"])


def _label(labels: dict[str, str], lang: str) -> str:
    return labels.get(lang) or labels.get("fr") or next(iter(labels.values()), "")


@dataclass(slots=True)
class Result:
    """The answer of a test or criterion: ``True``/``False``/``None`` (unknown)."""

    value: bool | None
    facts: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    reason_only: bool = False  # matched on a reason without a Condition resource (no onset)
    indications: list[Indication] = field(default_factory=list)  # inferred or read from the order's words


@dataclass(frozen=True, slots=True)
class Step:
    check: str
    criterion: str
    question: str
    answer: str
    facts: tuple[str, ...]


@dataclass(frozen=True)
class Evaluation:
    """What the decision graph concluded for one order."""

    protocol: Protocol
    order: Order
    target: str  # the act or medication class that made the protocol apply
    target_label: str
    outcome: Outcome
    steps: tuple[Step, ...]
    missing: tuple[str, ...]
    indications: tuple[Indication, ...] = ()
    """Indications the decision used that the order did not state: inferred from the problem list
    (``inferred``) or read from the order's own words (``order-text``)."""

    @property
    def verdict(self) -> str:
        return self.outcome.verdict

    @property
    def facts(self) -> list[str]:
        return [f for s in self.steps for f in s.facts]


# --- applicability ------------------------------------------------------------------------------


order_day = facts.order_day
"""The day the order is judged at (see :func:`checker.facts.order_day`)."""


def matching_act(protocol: Protocol, order: ServiceOrder) -> Act | None:
    for act in protocol.acts:
        if concept_matches(act.matcher, order.code):
            return act
    return None


def matching_class(protocol: Protocol, order: MedicationOrder) -> tuple[MedicationClass, str] | None:
    return _matching_class(protocol, atc_codes_of(order))


@by_identities
def _matching_class(protocol: Protocol, codes: frozenset[str]) -> tuple[MedicationClass, str] | None:
    for med in protocol.medications:
        hit = atc_matches(med.atc, codes)
        if hit:
            return med, hit
    return None


def applicable(protocol: Protocol, record: PatientRecord) -> Iterator[tuple[Order, str, str]]:
    """Orders of ``record`` the protocol applies to, with the act/class id and a label."""
    if protocol.applies_to_services:
        for order in record.service_orders:
            if order.status in NO_HISTORY:
                continue
            act = matching_act(protocol, order)
            if act is not None:
                yield order, act.id, order.label or _label(act.labels, "fr")
    else:
        for med_order in record.medication_orders:
            if not med_order.is_active_like or not med_order.is_prescription:
                continue
            hit = matching_class(protocol, med_order)
            if hit is not None:
                med, code = hit
                yield med_order, med.id, f"{med_order.label or _label(med.labels, 'fr')} (ATC {code})"


# --- evaluation ---------------------------------------------------------------------------------


class _Context:
    def __init__(self, protocol: Protocol, record: PatientRecord, order: Order, target: str, as_of: date,
                 lang: str, tables: FactTables | None = None, shared: dict | None = None) -> None:
        self.protocol = protocol
        self.record = record
        self.order = order
        self.target = target
        self.as_of = as_of
        self.lang = lang
        self.day = facts.order_day(order, as_of)
        self.tables = tables
        self.dated = (order.authored_on is not None) or (
            isinstance(order, ServiceOrder) and order.occurrence is not None) or order.draft
        self.cache: dict[str, Result] = {}
        self.shared: dict = {} if shared is None else shared  # per record, across its orders and protocols

    # reasons: codes/texts of the order, the Conditions it references and, when it states none, its
    # own words and the Conditions of its day (see checker.facts.indications)
    def indications(self) -> list[Indication]:
        return facts.indications(self.record, self.order, self.day, self.tables)

    def criterion(self, crit_id: str) -> Result:
        if crit_id not in self.cache:
            self.cache[crit_id] = self._criterion(self.protocol.criteria[crit_id])
        return self.cache[crit_id]

    def _criterion(self, crit: Criterion) -> Result:
        results = [self.test(t, crit) for t in crit.tests]
        out = Result(None)
        if crit.match == "any":
            hits = [r for r in results if r.value is True]
            if hits:
                out.value = True
                chosen = hits
            elif any(r.value is None for r in results):
                out.value, chosen = None, [r for r in results if r.value is None]
            else:
                out.value, chosen = False, results
        else:
            misses = [r for r in results if r.value is False]
            if misses:
                out.value, chosen = False, misses
            elif any(r.value is None for r in results):
                out.value, chosen = None, [r for r in results if r.value is None]
            else:
                out.value, chosen = True, results
        for r in chosen:
            out.facts.extend(f for f in r.facts if f not in out.facts)
            out.missing.extend(m for m in r.missing if m not in out.missing)
            out.conditions.extend(r.conditions)
            out.reason_only = out.reason_only or r.reason_only
            out.indications.extend(i for i in r.indications if i not in out.indications)
        return out

    def test(self, t: Test, crit: Criterion) -> Result:
        return getattr(self, "_t_" + t.kind)(t, crit)

    # each primitive ------------------------------------------------------------------------------

    def _t_condition(self, t: Test, crit: Criterion) -> Result:
        where = t.attrs.get("in", "any")
        active_only = t.attrs.get("status", "active") == "active"
        res = Result(False)
        if where in ("reason", "any"):
            for ind in self.indications():
                concept, cond = ind.concept, ind.condition
                hit = concept_matches(t.matcher, concept, negation=True)
                if not hit:
                    continue
                res.value = True
                if ind.how == "inferred":
                    res.facts.append(("indication déduite du problème enregistré : " if self.lang == "fr"
                                      else "inferred indication, recorded condition: ") + hit)
                elif ind.how == "order-text":
                    res.facts.append(("libellé de la demande : " if self.lang == "fr" else "order wording: ") + hit)
                else:
                    res.facts.append(("motif de la demande : " if self.lang == "fr" else "order reason: ") + hit)
                if ind.how in ("inferred", "order-text"):
                    res.indications.append(ind)
                if cond is not None:
                    res.conditions.append(cond)
                else:
                    res.reason_only = True
        if where in ("record", "any"):
            pool = facts.conditions_on(self.record, self.day) if active_only else facts.history_on(self.record, self.day)
            for cond in pool:
                if cond in res.conditions:
                    continue
                hit = concept_matches(t.matcher, cond.code, negation=True)
                if hit:
                    res.value = True
                    if cond not in res.conditions:
                        res.conditions.append(cond)
                    res.facts.append(("problème enregistré : " if self.lang == "fr" else "recorded condition: ") + hit)
        if res.value:
            # a Condition found in the record documents the reason given as a bare code
            res.reason_only = res.reason_only and not res.conditions
        return res

    def _t_age(self, t: Test, crit: Criterion) -> Result:
        age = self.record.age_on(self.day)
        if age is None:
            return Result(None, missing=[_w("birth", self.lang)])
        lo, hi = t.attrs.get("min"), t.attrs.get("max")
        ok = (lo is None or age >= int(lo)) and (hi is None or age <= int(hi))
        return Result(ok, facts=[("âge : " if self.lang == "fr" else "age: ") + f"{age}"])

    def _t_sex(self, t: Test, crit: Criterion) -> Result:
        sex = self.record.patient.sex if self.record.patient else ""
        if sex not in ("female", "male"):
            return Result(None, missing=[_w("sex", self.lang)])
        return Result(sex == t.attrs["is"], facts=[("sexe : " if self.lang == "fr" else "sex: ") + sex])

    def _observation_ok(self, t: Test, obs: Observation) -> bool | None:
        if t.value is None:
            return True
        kind = t.value["kind"]
        if kind == "valueBool":
            if obs.value_bool is None:
                return None
            return obs.value_bool == (t.value["is"] in ("true", "1"))
        if kind == "valueCode":
            if obs.value_concept is None:
                return None
            spec = t.value_code
            assert spec is not None  # the parser sets value_code with every "valueCode" value
            return any(code_matches(spec, c.system, c.code) for c in obs.value_concept.codings)
        if obs.value is None:
            return None
        value: float | None = obs.value
        if t.value.get("unit"):
            value = in_unit(obs.value, obs.unit, t.value["unit"])
        if value is None:
            return None
        n = float(t.value["number"])
        return {"lt": value < n, "le": value <= n, "gt": value > n, "ge": value >= n,
                "eq": value == n}[t.value["op"]]

    def _t_observation(self, t: Test, crit: Criterion) -> Result:
        within = t.attrs.get("withinDays")
        found: list[tuple[Observation, str]] = []
        for obs in self.record.observations:
            if obs.status in ("entered-in-error", "cancelled"):
                continue
            hit = concept_matches(t.matcher, obs.code)
            if not hit:
                continue
            if obs.effective is not None and obs.effective > self.day:
                continue  # measured after the order: not known when it was written
            if within is not None and obs.effective is not None and (self.day - obs.effective).days > int(within):
                continue
            found.append((obs, hit))
        if not found:
            if t.attrs.get("ifAbsent") == "unknown":
                return Result(None, missing=[_label(crit.labels, self.lang)])
            return Result(False)
        found.sort(key=lambda x: x[0].effective or date.min, reverse=True)
        obs, hit = found[0]
        ok = self._observation_ok(t, obs)
        shown = obs.value if obs.value is not None else (
            obs.value_bool if obs.value_bool is not None else (obs.value_concept.label() if obs.value_concept else ""))
        fact = f"{hit} = {shown}{(' ' + obs.unit) if obs.unit else ''}" + (
            f" ({obs.effective.isoformat()})" if obs.effective else "")
        if ok is None:
            return Result(None, facts=[fact], missing=[_label(crit.labels, self.lang)])
        return Result(ok, facts=[fact])

    def _t_onset(self, t: Test, crit: Criterion) -> Result:
        target = self.protocol.criteria[t.attrs["criterion"]]
        base = self.criterion(target.id)
        label = _label(target.labels, self.lang)
        missing = [("date de début : " if self.lang == "fr" else "onset date: ") + label]
        if not self.dated:
            return Result(None, missing=[_w("order_day", self.lang)])
        onsets = [c.onset for c in base.conditions if c.onset is not None]
        if not onsets:
            return Result(None, missing=missing)
        onset = max(onsets)  # most recent episode
        days = (self.day - onset).days
        limit = int(t.attrs["lessThanDays"])
        fact = (f"début le {onset.isoformat()}, {days} j avant la prescription" if self.lang == "fr"
                else f"onset {onset.isoformat()}, {days} days before the order")
        return Result(days < limit, facts=[fact])

    def _t_otherOrder(self, t: Test, crit: Criterion) -> Result:
        if not self.dated:
            return Result(None, missing=[_w("order_day", self.lang)])
        n = int(t.attrs["withinDays"])
        around = t.attrs.get("direction") == "around"
        same_act = t.attrs.get("sameAct") in ("true", "1")
        orders = self.record.service_orders
        mine = orders.index(self.order) if self.order in orders else -1
        for i, other in enumerate(orders):
            if other is self.order or other.status in NO_HISTORY:
                continue
            day = other.authored_on or other.occurrence
            if day is None:
                continue
            delta = (self.day - day).days
            if around:
                inside = abs(delta) <= n
            else:
                inside = 0 < delta <= n or (delta == 0 and i < mine)
            if not inside:
                continue
            if same_act:
                act = matching_act(self.protocol, other)
                hit = other.label if act is not None and act.id == self.target else None
            else:
                hit = concept_matches(t.matcher, other.code)
            if hit:
                fact = (f"autre demande {other.ref} du {day.isoformat()} ({hit})" if self.lang == "fr"
                        else f"other order {other.ref} on {day.isoformat()} ({hit})")
                return Result(True, facts=[fact])
        return Result(False)

    def _t_act(self, t: Test, crit: Criterion) -> Result:
        return Result(self.target in t.attrs["ids"].split(), facts=[f"{self.order.label}"])

    def _t_medication(self, t: Test, crit: Criterion) -> Result:
        for other in self.record.medication_orders:
            if other is self.order or not periods.counts(other):
                continue
            hit = atc_matches(t.atc, atc_codes_of(other))
            if not hit:
                continue
            if isinstance(self.order, MedicationOrder):
                together = periods.overlaps(self.order, other, self.as_of)
            else:
                lo, hi = periods.effective_interval(other, self.as_of)
                together = lo <= self.day <= hi
            if together:
                word = "co-prescription : " if self.lang == "fr" else "co-prescribed: "
                return Result(True, facts=[f"{word}{other.label} (ATC {hit})"])
        return Result(False)

    def _t_allergy(self, t: Test, crit: Criterion) -> Result:
        for allergy in facts.allergies_on(self.record, self.day):
            hit = concept_matches(t.matcher, allergy.code, negation=True)
            if hit:
                return Result(True, facts=[("allergie : " if self.lang == "fr" else "allergy: ") + hit])
        return Result(False)

    def _t_treatmentDuration(self, t: Test, crit: Criterion) -> Result:
        if not isinstance(self.order, MedicationOrder):
            return Result(False)
        prefixes = t.atc or tuple(a for m in self.protocol.medications for a in m.atc)
        over, gap = int(t.attrs["overDays"]), int(t.attrs.get("maxGapDays", "0"))
        key = ("treatmentDuration", prefixes, gap)
        found = self.shared.get(key)
        if found is None:  # once per record: the lines of the class, sorted, merged into blocks
            found = self.shared[key] = _treatment_blocks(self.record, prefixes, gap, self.as_of)
        blocks, block_of, undated = found
        if id(self.order) in undated:
            return Result(None, missing=[_w("start", self.lang)])
        i = block_of.get(id(self.order))
        if i is None:
            return Result(False)
        start, end, n, days = blocks[i]
        pause = (end - start).days + 1 - days
        fact = (f"{n} prescription(s) consécutive(s) du {start.isoformat()} au {end.isoformat()} : {days} j"
                + (f" de traitement (hors {pause} j d'interruption)" if pause else "")
                if self.lang == "fr" else
                f"{n} consecutive prescription(s) from {start.isoformat()} to {end.isoformat()}: {days} days"
                + (f" of treatment ({pause} days of interruption not counted)" if pause else ""))
        return Result(days > over, facts=[fact])

    def _t_reasonGiven(self, t: Test, crit: Criterion) -> Result:
        given = bool(self.order.reasons or self.order.reason_refs)
        return Result(given)

    def _t_orderedSince(self, t: Test, crit: Criterion) -> Result:
        if not self.dated:
            return Result(None, missing=[_w("order_day", self.lang)])
        since = date.fromisoformat(t.attrs["date"])
        return Result(self.day >= since, facts=[("date de la prescription : " if self.lang == "fr" else "order date: ")
                                                 + self.day.isoformat()])

    def _t_ref(self, t: Test, crit: Criterion) -> Result:
        r = self.criterion(t.attrs["criterion"])
        return Result(r.value, list(r.facts), list(r.missing), list(r.conditions), r.reason_only, list(r.indications))


def _treatment_blocks(record: PatientRecord, prefixes: tuple[str, ...], gap: int, as_of: date
                      ) -> tuple[list[tuple[date, date, int, int]], dict[int, int], set[int]]:
    """The record's lines of ``prefixes`` merged into blocks of consecutive treatment (a pause of at
    most ``gap`` days joins two lines): each block as (first day, last day, lines, days of treatment,
    days between lines not counted); the block of each line (by identity); the lines without a start.
    One sort per record (n log n), shared by every line the treatment-duration criterion asks about."""
    spans: list[tuple[date, date, int]] = []
    undated: set[int] = set()
    for o in record.medication_orders:
        if o.status in NO_HISTORY or not atc_matches(prefixes, atc_codes_of(o)):
            continue
        start, end = periods.treatment_period(o, as_of)
        if start is None:
            undated.add(id(o))
            continue
        if end is None:
            end = max(as_of, start) if periods.counts(o) else start
        spans.append((start, max(end, start), id(o)))
    spans.sort(key=lambda s: (s[0], s[1]))
    blocks: list[tuple[date, date, int, int]] = []
    block_of: dict[int, int] = {}
    first = last = date.min
    n = days = 0
    for start, end, ident in spans:
        if n and (start - last).days <= 1 + gap:
            overlap = max(0, (min(end, last) - start).days + 1)  # days already counted
            days += (end - start).days + 1 - overlap
            last = max(last, end)
            n += 1
        else:
            if n:
                blocks.append((first, last, n, days))
            first, last, n, days = start, end, 1, (end - start).days + 1
        block_of[ident] = len(blocks)
    if n:
        blocks.append((first, last, n, days))
    return blocks, block_of, undated


def evaluate(protocol: Protocol, record: PatientRecord, order: Order, target: str, as_of: date, *,
             lang: str = "fr", target_label: str = "", tables: FactTables | None = None,
             shared: dict | None = None) -> Evaluation:
    """Walk the decision graph from its start to an outcome for ``order``; ``tables`` (the facts
    tables) allow an indication to be inferred from the problem list when the order states none."""
    ctx = _Context(protocol, record, order, target, as_of, lang, tables, shared)
    used: list[Indication] = []
    node = protocol.start
    steps: list[Step] = []
    missing: list[str] = []
    while node in protocol.checks:
        check = protocol.checks[node]
        res = ctx.criterion(check.criterion)
        answer = {True: "yes", False: "no", None: "unknown"}[res.value]
        crit = protocol.criteria[check.criterion]
        question = _label(check.labels, lang) if check.labels else _label(crit.labels, lang)
        steps.append(Step(check.id, crit.id, question, answer, tuple(res.facts)))
        if answer == "unknown":
            missing.extend(m for m in res.missing if m not in missing)
        if answer == "yes":
            used.extend(i for i in res.indications if i not in used)
        node = getattr(check, answer)
    outcome = protocol.outcomes[node]
    if outcome.missing:
        extra = _label(outcome.missing, lang)
        if extra and extra not in missing:
            missing.append(extra)
    return Evaluation(protocol, order, target, target_label or order.label, outcome, tuple(steps), tuple(missing),
                      tuple(used))


def evaluate_record(protocol: Protocol, record: PatientRecord, as_of: date, *, lang: str = "fr",
                    tables: FactTables | None = None) -> list[Evaluation]:
    """Every applicable order of ``record`` evaluated against ``protocol``."""
    shared: dict = {}
    return [evaluate(protocol, record, order, target, as_of, lang=lang, target_label=label, tables=tables,
                     shared=shared)
            for order, target, label in applicable(protocol, record)]


def evaluate_all(protocols: tuple[Protocol, ...], record: PatientRecord, as_of: date, *,
                 lang: str = "fr", tables: FactTables | None = None,
                 only: frozenset[str] | None = None) -> list[Evaluation]:
    """:func:`evaluate_record` for each protocol in turn (same results, same order), looking up the
    medication protocols of each line once instead of once per protocol. ``only``: evaluate only the
    orders with these references (each evaluation reads the record, not the others' results)."""
    per_protocol: dict[int, list[tuple[Order, str, str]]] = {}  # by position in ``protocols``
    services, any_medication = _service_positions(protocols)
    if record.medication_orders and any_medication:
        for order in record.medication_orders:
            if order.status in NOT_TAKEN or order.kind != "request":
                continue
            for i, med, code in _classes_in(protocols, atc_codes_of(order)):
                per_protocol.setdefault(i, []).append(
                    (order, med.id, f"{order.label or _label(med.labels, 'fr')} (ATC {code})"))
    out: list[Evaluation] = []
    shared: dict = {}
    # only the protocols that can apply: service protocols when the record has service orders, and
    # the medication protocols a line falls in (in protocol order, as evaluate_record would give)
    positions = sorted({*per_protocol, *services}) if record.service_orders else sorted(per_protocol)
    for i in positions:
        protocol = protocols[i]
        targets = applicable(protocol, record) if protocol.applies_to_services else per_protocol.get(i, ())
        out.extend(evaluate(protocol, record, order, target, as_of, lang=lang, target_label=label, tables=tables,
                            shared=shared)
                   for order, target, label in targets if only is None or order.ref in only)
    return out


@by_identities
def _service_positions(protocols: tuple[Protocol, ...]) -> tuple[tuple[int, ...], bool]:
    """Positions of the service-order protocols, and whether any protocol is about medications."""
    return (tuple(i for i, p in enumerate(protocols) if p.applies_to_services),
            not all(p.applies_to_services for p in protocols))


@by_identities
def _classes_in(protocols: tuple[Protocol, ...], codes: frozenset[str]
                ) -> tuple[tuple[int, MedicationClass, str], ...]:
    """The medication protocols (by position, with the class and matched ATC code) a line's ATC
    codes fall in."""
    return tuple((i, *hit) for i, p in enumerate(protocols)
                 if not p.applies_to_services and (hit := _matching_class(p, codes)) is not None)
