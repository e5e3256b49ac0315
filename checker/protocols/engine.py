"""Evaluate a protocol's decision graph for one order of one patient.

The engine knows a fixed set of criterion primitives (condition, age, sex, observation, onset,
other order, act, medication, allergy, treatment duration, reason given, reference); a protocol
only combines them. Every primitive answers ``yes``, ``no`` or ``unknown``; ``unknown`` carries
the missing datum so that a finding can say what the decision hinged on.
"""

from __future__ import annotations

import functools
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Iterator, Sequence, Union

from checker import periods
from checker.memo import by_identities, by_identity, holds_request_words
from checker.model import (
    NO_HISTORY,
    NOT_TAKEN,
    RULE_CONFIDENCE,
    Concept,
    Condition,
    Ingredient,
    MedicationIdentity,
    MedicationOrder,
    PatientRecord,
    ServiceOrder,
)
from checker.protocols.language import Act, Criterion, MedicationClass, Outcome, Protocol, Test
from checker import criteria, facts
from checker.criteria import BARE_REASON, AgeOn, Local, Measured, Named, SexOf, Verdict
from checker.facts import FactTables, Indication, code_matches, concept_matches, system_is
from checker.findings import Localized, Message, Param, Word

Order = Union[ServiceOrder, MedicationOrder]

# --- code systems and concepts: the facts layer's one matcher (checker.facts.concepts) ------------

__all__ = ["code_matches", "concept_matches", "system_is"]


def atc_codes_of(order: MedicationOrder) -> frozenset[str]:
    """ATC codes of a prescription line: from its identification (rule-grade confidence: its
    substances' codes and a combination's own code, :attr:`~checker.model.MedicationIdentity.any_atc`)
    and any ATC coding given in the input."""
    return _atc_codes(order.identity, order.medication, order.ingredients)


@by_identities  # within one reading, orders naming the same medication share these objects (see fhir_input)
def _atc_codes(ident: MedicationIdentity | None, medication: Concept, ingredients: tuple[Ingredient, ...]
               ) -> frozenset[str]:
    codes: set[str] = set()
    if ident is not None and ident.confidence >= RULE_CONFIDENCE:
        codes |= {a.upper() for a in ident.any_atc}  # a combination's own code too (J01CR02)
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


# --- units of observation values: the criteria language's (checker.criteria.in_unit) ----------------

in_unit = criteria.in_unit


# --- results ------------------------------------------------------------------------------------

def _w(key: str) -> Message:
    """A missing datum the engine names itself (``birth``, ``sex``, ``order-day``, ``start``): the
    catalogue words it (``finding_detail`` ``OP.missing-<key>``)."""
    return Message(f"OP.missing-{key}")


def _fact(code: str, **params: Param) -> Message:
    """A fact the decision used, as a code the catalogue words (``finding_detail`` ``OP.fact-<code>``)."""
    return Message(f"OP.fact-{code}", params)


_NAMED_FACT = {"inferred": "inferred", "order-text": "order-text", "reason": "reason", "record": "condition",
               "allergy": "allergy"}
"""The fact code of a fact the criteria evaluator found, by where it was found."""

_ENGINE_DATA = frozenset({"birth", "sex", "order_day", "start"})
"""The patient's data the engine names as missing itself (``OP.missing-<datum>``)."""


def _label(labels: dict[str, str], lang: str) -> str:
    return labels.get(lang) or labels.get("fr") or next(iter(labels.values()), "")


def localized(labels: dict[str, str]) -> Localized:
    """A protocol's label in both languages (French when the file gives no English)."""
    fr = _label(labels, "fr")
    return Localized(fr, labels.get("en") or fr)


def _labelled(code: str, labels: dict[str, str]) -> Message:
    return Message(code, {"label": localized(labels)})


@dataclass(slots=True)
class Result:
    """The answer of a test or criterion: ``True``/``False``/``None`` (unknown). Read only once built
    (empty parts are shared empty tuples: most answers carry nothing)."""

    value: bool | None
    facts: Sequence[Message] = ()
    missing: Sequence[Any] = ()  # datum names from a test; their wording (Message) once a criterion is worded
    conditions: Sequence[Condition] = ()
    reason_only: bool = False  # matched on a reason without a Condition resource (no onset)
    indications: Sequence[Indication] = ()  # inferred or read from the order's words


@dataclass(frozen=True, slots=True)
class Step:
    check: str
    criterion: str
    question: str
    answer: str
    facts: tuple[Message, ...]


@dataclass(frozen=True)
class Evaluation:
    """What the decision graph concluded for one order."""

    protocol: Protocol
    order: Order
    target: str  # the act or medication class that made the protocol apply
    target_label: str
    outcome: Outcome
    steps: tuple[Step, ...]
    missing: tuple[Message, ...]
    indications: tuple[Indication, ...] = ()
    """Indications the decision used that the order did not state: inferred from the problem list
    (``inferred``) or read from the order's own words (``order-text``)."""

    @property
    def verdict(self) -> str:
        return self.outcome.verdict

    @property
    def facts(self) -> list[Message]:
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
            if med_order.status in NOT_TAKEN or not med_order.is_prescription:
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
        self.verdicts: dict[str, Verdict] = {}
        self.judges = _judges(protocol)
        self.about_reasons = _about_reasons(protocol)
        self.own: tuple[Any, list[Indication]] | None | bool = False  # see _own_words (False: not yet known)
        self.shared: dict = {} if shared is None else shared  # per record, across its orders and protocols

    # reasons: codes/texts of the order, the Conditions it references and, when it states none, its
    # own words and the Conditions of its day (see checker.facts.indications)
    def indications(self) -> list[Indication]:
        """Once per order and day for the record's evaluations (every protocol asks the same); not to
        be modified. A line that states no reason, of a record without conditions, has only its own
        words (dosage texts, note) as indications: those are shared by the lines with the same
        dosages and note (:func:`_own_words`)."""
        key = ("indications", id(self.order), self.day)
        found: list[Indication] | None = self.shared.get(key)
        if found is None:
            own = self._own_words()
            found = self.shared[key] = own[1] if own is not None else \
                facts.indications(self.record, self.order, self.day, self.tables)
        return found

    def _own_words(self) -> tuple[Any, list[Indication]] | None:
        """The shared indications of a line that has nothing but its own words (see :meth:`indications`),
        with the dosages they are shared by; ``None`` for any other order. Once per context."""
        own = self.own
        if own is False:
            order = self.order
            own = self.own = None if (facts.lists_conditions(self.record) or not isinstance(order, MedicationOrder)
                                      or order.reasons or order.reason_refs) \
                else _own_words(self.record, order, self.day, self.tables)
        return own  # type: ignore[return-value]

    def criterion(self, crit_id: str) -> Result:
        if crit_id not in self.cache:
            self.cache[crit_id] = self._criterion(self.protocol.criteria[crit_id])
        return self.cache[crit_id]

    def verdict(self, crit_id: str) -> Verdict:
        """The criteria evaluator's verdict on a criterion of the protocol (once per order). A criterion
        that reads only the order's reasons and the record's conditions, for a line that has nothing but
        its own words (see :meth:`indications`), is judged once per criterion and shared indications."""
        found = self.verdicts.get(crit_id)
        if found is None:
            own = self._own_words() if crit_id in self.about_reasons else None
            if own is None:
                found = self.judges[crit_id](self)
            else:
                key = (id(self.protocol.criteria[crit_id]), id(own[1]))
                hit = _REASON_VERDICTS.get(key)
                if hit is None:
                    if len(_REASON_VERDICTS) >= OWN_WORDS_ENTRIES:
                        _REASON_VERDICTS.clear()
                    hit = _REASON_VERDICTS[key] = (self.protocol.criteria[crit_id], own[1],
                                                   self.judges[crit_id](self))
                found = hit[2]
            self.verdicts[crit_id] = found
        return found

    def _criterion(self, crit: Criterion) -> Result:
        """The verdict of ``crit`` worded: its facts, the data it misses, the conditions and
        indications it rests on."""
        v = self.verdict(crit.id)
        if not v.evidence and not v.missing:
            return Result(v.value)
        facts_: list[Message] = []
        conditions: list[Condition] = []
        indications: list[Indication] = []
        reason_only = False
        for e in v.evidence:
            if isinstance(e, (Message, AgeOn, SexOf, Measured, Named)):
                fact = e if isinstance(e, Message) else self._fact(e)
                if fact not in facts_:
                    facts_.append(fact)
            elif isinstance(e, Condition):
                conditions.append(e)
            elif isinstance(e, Indication):
                indications.append(e)
            elif e is BARE_REASON:
                reason_only = True
        missing: list[Message] = []
        for datum in v.missing:
            word = self._word(datum)
            if word not in missing:
                missing.append(word)
        return Result(v.value, facts_, missing, conditions, reason_only, indications)

    def _fact(self, e: AgeOn | SexOf | Measured | Named) -> Message:
        """A fact the criteria evaluator found, as a code the catalogue words (``OP.fact-*``)."""
        if isinstance(e, Named):
            return _fact(_NAMED_FACT.get(e.where, "reason"), hit=e.text)
        if isinstance(e, AgeOn):
            return _fact("age", age=e.years)
        if isinstance(e, SexOf):
            return _fact("sex", sex=Word("sex", e.sex))
        obs = e.observation
        shown = obs.value if obs.value is not None else (
            obs.value_bool if obs.value_bool is not None else (obs.value_concept.label() if obs.value_concept else ""))
        value = f"{shown}{(' ' + obs.unit) if obs.unit else ''}"
        if obs.effective:
            return _fact("observation-dated", hit=e.matched, value=value, day=obs.effective)
        return _fact("observation", hit=e.matched, value=value)

    def _word(self, datum: str) -> Message:
        """A missing datum as a code the catalogue words: the patient's data (``OP.missing-*``), or
        what a criterion of the protocol needs (its own label)."""
        if datum in _ENGINE_DATA:
            return _w(datum.replace("_", "-"))
        what, _, crit_id = datum.partition(":")
        labels = self.protocol.criteria[crit_id].labels
        return _labelled("OP.missing-onset" if what == "onset" else "OP.missing-label", labels)

    # the criteria context (checker.criteria.Context): the protocol's own leaves are answered here;
    # a protocol judges no medication line by its substance key
    aspirin_bands: tuple[dict[str, Any], ...] = ()

    def reasons(self) -> tuple[Concept, ...]:
        return ()

    def lines(self) -> tuple[tuple[str, MedicationOrder], ...]:
        return ()

    def nodes_for(self, key: str) -> frozenset[str]:
        return frozenset()

    def closure(self, key: str) -> frozenset[str]:
        return frozenset({key})

    def route_of(self, line: MedicationOrder) -> str | None:
        return None

    def route_name(self, line: MedicationOrder) -> str | None:
        return None

    def daily_dose(self, line: MedicationOrder, key: str) -> criteria.Daily | None:
        return None

    def local(self, node: Local) -> Verdict:
        t: Test = node.spec
        if t.kind == "ref":
            return self.verdict(t.attrs["criterion"])
        r: Result = _PRIMITIVES[t.kind](self, t)
        return Verdict(r.value, tuple(r.missing),
                       (*r.facts, *r.conditions, *r.indications, *((BARE_REASON,) if r.reason_only else ())))

    # each primitive ------------------------------------------------------------------------------

    def _t_onset(self, t: Test) -> Result:
        target = self.protocol.criteria[t.attrs["criterion"]]
        base = self.criterion(target.id)
        missing = [f"onset:{target.id}"]
        if not self.dated:
            return Result(None, missing=["order_day"])
        onsets = [c.onset for c in base.conditions if c.onset is not None]
        if not onsets:
            return Result(None, missing=missing)
        onset = max(onsets)  # most recent episode
        days = (self.day - onset).days
        limit = int(t.attrs["lessThanDays"])
        fact = _fact("onset", onset=onset, days=days)
        return Result(days < limit, facts=[fact])

    def _t_otherOrder(self, t: Test) -> Result:
        if not self.dated:
            return Result(None, missing=["order_day"])
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
                fact = _fact("other-order", ref=other.ref, day=day, hit=hit)
                return Result(True, facts=[fact])
        return Result(False)

    def _t_act(self, t: Test) -> Result:
        return Result(self.target in t.attrs["ids"].split(), facts=[_fact("act", label=self.order.label)])

    def _t_medication(self, t: Test) -> Result:
        key = ("medication", t.atc)
        lines = self.shared.get(key)
        if lines is None:  # once per record: its lines of the class, in record order, with the code matched
            lines = self.shared[key] = [
                (other, hit) for other, codes in _record_codes(self.record, self.shared)
                if periods.counts(other) and (hit := atc_matches(t.atc, codes))]
        if len(lines) > CO_PRESCRIBED_SCAN:  # many lines of the class: the first one found by a sweep
            is_line = isinstance(self.order, MedicationOrder)
            key_first = ("medication-first", t.atc, is_line)
            first = self.shared.get(key_first)
            if first is None:  # once per record and kind of order: every order's first line of the class
                queries, not_taken = _co_prescribed_queries(self.record, is_line, self.as_of)
                first = self.shared[key_first] = _first_overlapping(lines, queries, self.as_of)
                first.update((id(o), -1) for o in not_taken)
            at = first.get(id(self.order))
            if at is not None:  # an order of the record (else, as below)
                if at < 0:
                    return Result(False)
                other, hit = lines[at]
                return Result(True, facts=[_fact("co-prescribed", label=other.label, atc=hit)])
        for other, hit in lines:
            if other is self.order:
                continue
            if isinstance(self.order, MedicationOrder):
                together = periods.overlaps(self.order, other, self.as_of)
            else:
                lo, hi = periods.effective_interval(other, self.as_of)
                together = lo <= self.day <= hi
            if together:
                return Result(True, facts=[_fact("co-prescribed", label=other.label, atc=hit)])
        return Result(False)

    def _t_treatmentDuration(self, t: Test) -> Result:
        if not isinstance(self.order, MedicationOrder):
            return Result(False)
        prefixes, over, gap, key = _duration_test(self.protocol, t)
        found = self.shared.get(key)
        if found is None:  # once per record: the lines of the class, sorted, merged into blocks
            found = self.shared[key] = _treatment_blocks(self.record, prefixes, gap, self.as_of,
                                                         _record_codes(self.record, self.shared))
        block_at_start, undated = found
        if id(self.order) in undated:
            return Result(None, missing=["start"])
        block = block_at_start.get(id(self.order))
        if block is None:
            return Result(False)
        return _duration_result(block, over)

    def _t_reasonGiven(self, t: Test) -> Result:
        given = bool(self.order.reasons or self.order.reason_refs)
        return Result(given)

    def _t_orderedSince(self, t: Test) -> Result:
        if not self.dated:
            return Result(None, missing=["order_day"])
        since = date.fromisoformat(t.attrs["date"])
        return Result(self.day >= since, facts=[_fact("order-date", day=self.day)])


OWN_WORDS_ENTRIES = 20_000
"""Bound of the memos of a line's own words and of the verdicts on them (emptied when full, and
after each check: they hold a prescriber's words)."""
_OWN_WORDS: dict[tuple[int, str], tuple[Any, list[Indication]]] = {}
_REASON_VERDICTS: dict[tuple[int, int], tuple[Criterion, list[Indication], Verdict]] = {}
holds_request_words(_OWN_WORDS.clear)
holds_request_words(_REASON_VERDICTS.clear)


def _own_words(record: PatientRecord, order: MedicationOrder, day: date, tables: FactTables | None
               ) -> tuple[Any, list[Indication]]:
    """:func:`checker.facts.indications` of a line stating no reason in a record without conditions:
    its dosage texts and note only, so shared by the lines with the same dosages (by identity: the
    lines of one reading share them) and note. The entry keeps the dosages alive."""
    key = (id(order.dosages), order.note)
    hit = _OWN_WORDS.get(key)
    if hit is None:
        if len(_OWN_WORDS) >= OWN_WORDS_ENTRIES:
            _OWN_WORDS.clear()
        hit = _OWN_WORDS[key] = (order.dosages, facts.indications(record, order, day, tables))
    return hit


@by_identities  # a few protocols
def _about_reasons(protocol: Protocol) -> frozenset[str]:
    """The criteria of ``protocol`` made only of condition tests (an order's reasons and own words, the
    record's conditions) and of "a reason is given", combined: their verdict for a line that states
    no reason, in a record without conditions, depends on the line's own words alone."""
    return frozenset(crit_id for crit_id, crit in protocol.criteria.items()
                     if all(isinstance(n, (criteria.AllOf, criteria.AnyOf, criteria.Not, criteria.HasCondition))
                            or (isinstance(n, criteria.Local) and n.spec.kind == "reasonGiven")
                            for n in criteria.walk(crit.node)))


_WALKS: dict[tuple[int, int], tuple[Protocol, list[Indication], Outcome | None]] = {}
holds_request_words(_WALKS.clear)


def _known_outcome(protocol: Protocol, record: PatientRecord, order: Order, target: str, as_of: date,
                   lang: str, tables: FactTables | None, shared: dict) -> Outcome | None:
    """The outcome of ``protocol`` for a line that states no reason, in a record without conditions,
    when every check on its path asks a criterion of :func:`_about_reasons`: then it depends on the
    line's own words alone, and is walked once per protocol and own words. ``None`` otherwise."""
    if facts.lists_conditions(record) or not isinstance(order, MedicationOrder) or order.reasons or order.reason_refs:
        return None
    own = _OWN_WORDS.get((id(order.dosages), order.note))
    hit = _WALKS.get((id(protocol), id(own[1]))) if own is not None else None
    if hit is None:
        ctx = _Context(protocol, record, order, target, as_of, lang, tables, shared)
        own = ctx._own_words()
        assert own is not None
        about, checks = ctx.about_reasons, protocol.checks
        node = protocol.start
        while node in checks and checks[node].criterion in about:
            check = checks[node]
            node = getattr(check, _ANSWERS[ctx.verdict(check.criterion).value])
        if len(_WALKS) >= OWN_WORDS_ENTRIES:
            _WALKS.clear()
        hit = _WALKS[(id(protocol), id(own[1]))] = (protocol, own[1],
                                                     None if node in checks else protocol.outcomes[node])
    return hit[2]


@by_identities  # a few tests of a few protocols
def _duration_test(protocol: Protocol, t: Test) -> tuple[tuple[str, ...], int, int, tuple[str, tuple[str, ...], int]]:
    """A treatment-duration test's classes (the protocol's when it names none), its limit and allowed
    pause in days, and the key of its blocks in a record's shared work."""
    prefixes = t.atc or tuple(a for m in protocol.medications for a in m.atc)
    gap = int(t.attrs.get("maxGapDays", "0"))
    return prefixes, int(t.attrs["overDays"]), gap, ("treatmentDuration", prefixes, gap)


DURATION_ENTRIES = 20_000
"""Bound of the memo of :func:`_duration_result` (emptied when full, and after each check: its keys
and facts are the days a patient took a treatment)."""
_DURATIONS: dict[tuple[tuple[date, date, int, int], int], Result] = {}
holds_request_words(_DURATIONS.clear)


def _duration_result(block: tuple[date, date, int, int], over: int) -> Result:
    """The answer of a treatment-duration test on a line's block (first day, last day, lines, days of
    treatment), remembered by value: many lines have the same dates and counts (read only, so shared)."""
    key = (block, over)
    hit = _DURATIONS.get(key)
    if hit is None:
        if len(_DURATIONS) >= DURATION_ENTRIES:
            _DURATIONS.clear()
        hit = _DURATIONS[key] = _plain_duration_result(block, over)
    return hit


def _plain_duration_result(block: tuple[date, date, int, int], over: int) -> Result:
    start, end, n, days = block
    pause = (end - start).days + 1 - days
    fact = _fact("duration-pause", n=n, start=start, end=end, days=days, pause=pause) if pause else \
        _fact("duration", n=n, start=start, end=end, days=days)
    return Result(days > over, facts=[fact])


CO_PRESCRIBED_SCAN = 16
"""Up to this many lines of a class, the co-prescribed test compares the order with each of them;
above it, the first line over each order's period is found by one sweep per record (n log n)."""


def _co_prescribed_queries(record: PatientRecord, lines: bool, as_of: date
                           ) -> tuple[list[tuple[Any, date, date]], list[Any]]:
    """The record's orders of one kind as ``(order, first day, last day)``: a medication line over its
    period, a service order on its day; and the lines not taken (they overlap nothing)."""
    if not lines:
        return [(o, day, day) for o in record.service_orders for day in (facts.order_day(o, as_of),)], []
    out: list[tuple[Any, date, date]] = []
    not_taken: list[Any] = []
    for o in record.medication_orders:
        if o.status in NOT_TAKEN:
            not_taken.append(o)
        else:
            lo, hi = periods.effective_interval(o, as_of)
            out.append((o, lo, hi))
    return out, not_taken


def _first_overlapping(lines: list[tuple[MedicationOrder, str]], queries: list[tuple[Any, date, date]],
                       as_of: date) -> dict[int, int]:
    """For each query ``(order, lo, hi)``: the position in ``lines`` (record order) of the first line,
    other than the order itself, whose period meets ``[lo, hi]``, or -1; keyed by ``id(order)``.

    One sweep: queries by last day, lines inserted by first day into a Fenwick tree over their last
    days that keeps the smallest positions (as many as the order may appear in ``lines``, plus one).
    Cost (lines + queries) log lines."""
    spans = [(*periods.effective_interval(o, as_of), p) for p, (o, _) in enumerate(lines)]
    seen: dict[int, list[int]] = {}
    for p, (o, _) in enumerate(lines):
        seen.setdefault(id(o), []).append(p)
    keep = 1 + max(len(ps) for ps in seen.values())
    his = sorted({hi for _, hi, _ in spans})
    size = len(his)
    tree: list[list[int]] = [[] for _ in range(size + 1)]  # slot i: last days ranked from the latest
    spans.sort(key=lambda sp: sp[0])
    out: dict[int, int] = {}
    at = 0
    for order, lo, hi in sorted(queries, key=lambda q: q[2]):
        while at < len(spans) and spans[at][0] <= hi:  # lines begun by the query's last day
            i = size - bisect_left(his, spans[at][1])  # rank from the latest last day, 1-based
            p = spans[at][2]
            while i <= size:
                node = tree[i]
                if len(node) < keep or p < node[-1]:
                    node.append(p)
                    node.sort()
                    del node[keep:]
                i += i & -i
            at += 1
        best: list[int] = []
        i = size - bisect_left(his, lo)  # lines still running on the query's first day
        while i > 0:
            best = sorted(best + tree[i])[:keep]
            i -= i & -i
        own = seen.get(id(order), ())
        out[id(order)] = next((p for p in best if p not in own), -1)
    return out


def _treatment_blocks(record: PatientRecord, prefixes: tuple[str, ...], gap: int, as_of: date,
                      codes: tuple[tuple[MedicationOrder, frozenset[str]], ...] | None = None
                      ) -> tuple[dict[int, tuple[date, date, int, int]], set[int]]:
    """The record's lines of ``prefixes`` merged into blocks of consecutive treatment (a pause of at
    most ``gap`` days joins two lines). For each line (by identity), its block as it stood when the
    line was taken: (first day, last day, lines, days of treatment) over the lines of the block that
    began on or before that line's first day, counted up to that line's last day — a renewal written
    later does not make an earlier line too long, nor does a later ``as_of`` (point in time). Also the
    lines without a start. One sort per record (n log n), shared by
    every line the treatment-duration criterion asks about."""
    spans: list[tuple[date, date, int]] = []
    undated: set[int] = set()
    for o, atc in codes if codes is not None else _record_codes(record, {}):
        if o.status in NOT_TAKEN or not atc_matches(prefixes, atc):
            continue
        start, end = periods.treatment_period(o, as_of)
        if start is None:
            undated.add(id(o))
            continue
        if periods.counts(o):  # open ends closed at ``as_of``, ended lines as far as they were taken
            end = periods.effective_interval(o, as_of)[1]
        elif end is None:
            end = start
        spans.append((start, max(end, start), id(o)))
    spans.sort(key=lambda s: (s[0], s[1]))
    at_start: dict[int, tuple[date, date, int, int]] = {}
    first = last = date.min
    n = days = 0
    pending: list[tuple[int, date]] = []  # lines that began on the current day, given their block once the day is read
    for i, (start, end, ident) in enumerate(spans):
        if n and (start - last).days <= 1 + gap:
            overlap = max(0, (min(end, last) - start).days + 1)  # days already counted
            days += (end - start).days + 1 - overlap
            last = max(last, end)
            n += 1
        else:
            first, last, n, days = start, end, 1, (end - start).days + 1
        pending.append((ident, end))
        if i + 1 == len(spans) or spans[i + 1][0] != start:
            for p, p_end in pending:
                # up to the line's own last day: the days after it come from one earlier line still
                # running (every line counted began on or before it), so they form one stretch
                after = max(0, (last - p_end).days)
                at_start[p] = (first, min(last, p_end), n, days - after)
            pending.clear()
    return at_start, undated


def evaluate(protocol: Protocol, record: PatientRecord, order: Order, target: str, as_of: date, *,
             lang: str = "fr", target_label: str = "", tables: FactTables | None = None,
             shared: dict | None = None) -> Evaluation:
    """Walk the decision graph from its start to an outcome for ``order``; ``tables`` (the facts
    tables) allow an indication to be inferred from the problem list when the order states none."""
    ctx = _Context(protocol, record, order, target, as_of, lang, tables, shared)
    return _evaluation(ctx, target_label)


def _outcome(ctx: _Context) -> Outcome:
    """The outcome the decision graph reaches for ``ctx``'s order, from the criteria's verdicts alone
    (the path :func:`_evaluation` walks, without wording its steps)."""
    protocol = ctx.protocol
    checks = protocol.checks
    node = protocol.start
    while node in checks:
        check = checks[node]
        node = getattr(check, _ANSWERS[ctx.verdict(check.criterion).value])
    return protocol.outcomes[node]


def _evaluation(ctx: _Context, target_label: str) -> Evaluation:
    """The decision graph walked for ``ctx``'s order, each step worded (see :func:`evaluate`)."""
    protocol, lang, order, target = ctx.protocol, ctx.lang, ctx.order, ctx.target
    used: list[Indication] = []
    node = protocol.start
    steps: list[Step] = []
    missing: list[Message] = []
    checks = protocol.checks
    questions = _questions(protocol, lang)
    while node in checks:
        check = checks[node]
        res = ctx.criterion(check.criterion)
        answer = _ANSWERS[res.value]
        steps.append(Step(check.id, check.criterion, questions[check.id], answer, tuple(res.facts)))
        if answer == "unknown" and res.missing:
            missing.extend(m for m in res.missing if m not in missing)
        if answer == "yes" and res.indications:
            used.extend(i for i in res.indications if i not in used)
        node = getattr(check, answer)
    outcome = protocol.outcomes[node]
    if outcome.missing:
        extra = _labelled("OP.missing-label", outcome.missing)
        if _label(outcome.missing, "fr") and extra not in missing:
            missing.append(extra)
    return Evaluation(protocol, order, target, target_label or order.label, outcome, tuple(steps), tuple(missing),
                      tuple(used))


_ANSWERS = {True: "yes", False: "no", None: "unknown"}


@by_identities
def _judges(protocol: Protocol) -> dict[str, criteria.Judge]:
    """Each criterion of the protocol compiled once (:func:`checker.criteria.compiled`)."""
    return {crit_id: criteria.compiled(crit.node) for crit_id, crit in protocol.criteria.items()}


@by_identity  # a few protocols, two languages
def _questions(protocol: Protocol, lang: str) -> dict[str, str]:
    """Each check's question in ``lang``: its own label, else its criterion's (once per protocol)."""
    return {check.id: _label(check.labels, lang) if check.labels else _label(protocol.criteria[check.criterion].labels, lang)
            for check in protocol.checks.values()}


def _record_codes(record: PatientRecord, shared: dict) -> tuple[tuple[MedicationOrder, frozenset[str]], ...]:
    """The record's lines with their ATC codes (:func:`atc_codes_of`), in record order: once per
    record for every protocol and criterion that reads them."""
    found = shared.get("atc-codes")
    if found is None:
        found = shared["atc-codes"] = tuple((o, atc_codes_of(o)) for o in record.medication_orders)
    return found


def evaluate_record(protocol: Protocol, record: PatientRecord, as_of: date, *, lang: str = "fr",
                    tables: FactTables | None = None) -> list[Evaluation]:
    """Every applicable order of ``record`` evaluated against ``protocol``."""
    shared: dict = {}
    return [evaluate(protocol, record, order, target, as_of, lang=lang, target_label=label, tables=tables,
                     shared=shared)
            for order, target, label in applicable(protocol, record)]


def evaluate_all(protocols: tuple[Protocol, ...], record: PatientRecord, as_of: date, *,
                 lang: str = "fr", tables: FactTables | None = None,
                 only: frozenset[str] | None = None, verdicts: frozenset[str] | None = None) -> list[Evaluation]:
    """:func:`evaluate_record` for each protocol in turn (same results, same order), looking up the
    medication protocols of each line once instead of once per protocol. ``only``: evaluate only the
    orders with these references (each evaluation reads the record, not the others' results).
    ``verdicts``: keep only the evaluations reaching an outcome of these verdicts; the others are
    decided from the criteria's verdicts alone, their steps never worded."""
    per_protocol: dict[int, list[tuple[Order, str, str]]] = {}  # by position in ``protocols``
    services, any_medication = _service_positions(protocols)
    shared: dict = {}
    if record.medication_orders and any_medication:
        for order, codes in _record_codes(record, shared):
            if order.status in NOT_TAKEN or order.kind != "request":
                continue
            for i, med, code in _classes_in(protocols, codes):
                per_protocol.setdefault(i, []).append(
                    (order, med.id, f"{order.label or _label(med.labels, 'fr')} (ATC {code})"))
    out: list[Evaluation] = []
    # only the protocols that can apply: service protocols when the record has service orders, and
    # the medication protocols a line falls in (in protocol order, as evaluate_record would give)
    positions = sorted({*per_protocol, *services}) if record.service_orders else sorted(per_protocol)
    for i in positions:
        protocol = protocols[i]
        targets = applicable(protocol, record) if protocol.applies_to_services else per_protocol.get(i, ())
        for judged, target, label in targets:
            if only is not None and judged.ref not in only:
                continue
            if verdicts is not None and (known := _known_outcome(protocol, record, judged, target, as_of, lang,
                                                                 tables, shared)) is not None \
                    and known.verdict not in verdicts:
                continue  # decided by the line's own words, as every line of the same words is
            ctx = _Context(protocol, record, judged, target, as_of, lang, tables, shared)
            if verdicts is None or _outcome(ctx).verdict in verdicts:
                out.append(_evaluation(ctx, label))
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


_PRIMITIVES: dict[str, Any] = {name[3:]: f for name, f in vars(_Context).items() if name.startswith("_t_")}
"""Each primitive of the protocols' tests by its kind (``onset``, ``medication`` …)."""
