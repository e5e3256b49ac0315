"""Rule registry: every rule is a decorated function in its family module.

A rule has a stable id (two capital letters and three digits, e.g. ``IX001``), a category, a
default severity, the referentials it reads and a cited source; its docstring is its
documentation (``pertinence explain ID``). It is called once per patient record and yields
:class:`~checker.findings.Finding` objects built with :meth:`RuleCall.finding`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from checker import memo
from checker.findings import CATEGORIES, Category, Finding, Message, Severity, Source, finding_of
from checker.memo import by_identities
from checker.model import (
    ANONYMOUS_MARK,
    NOT_TAKEN,
    RULE_CONFIDENCE,
    MedicationIdentity,
    MedicationOrder,
    PatientRecord,
    ServiceOrder,
)

if TYPE_CHECKING:
    from checker.referentials import Referentials

RULE_ID = re.compile(r"^[A-Z]{2}\d{3}$")


@dataclass(frozen=True, slots=True)
class RunSettings:
    """What a run fixes for every rule: today's date, jurisdiction, language, overrides."""

    as_of: date
    jurisdiction: str = "fr"
    lang: str = "fr"
    severity_overrides: tuple[tuple[str, Severity], ...] = ()
    focus: frozenset[str] | None = None
    """The orders whose findings are wanted (a CDS request's drafts); ``None``: every order. Rules
    may then skip work that cannot give a finding implicating one of them."""


@dataclass(frozen=True, slots=True)
class Trigger:
    """What can make a rule fire on a record, computed once from the referentials (see
    :meth:`Rule.trigger`): the engine runs the rule only on records that have it.

    A record has it when ``record`` (a fact the rule needs, e.g. an allergy recorded) holds and at
    least ``lines`` of its medication lines are *concerned*: a line is concerned by ``line`` (a test
    of the order itself), else by ``medication`` (a test of its identified medication, asked once
    per medication), else whenever it is identified. Every medication line a finding of the rule
    implicates must be concerned (tests/test_dispatch.py proves it on every corpus), so under a
    ``focus`` the rule runs only when a concerned line is in the focus."""

    medication: Callable[[MedicationIdentity], bool] | None = None
    line: Callable[[MedicationOrder], bool] | None = None
    lines: int = 1
    record: Callable[[PatientRecord], bool] | None = None

    def concerns(self, order: MedicationOrder) -> bool:
        if self.line is not None:
            return self.line(order)
        ident = order.identity
        if ident is None:
            return False
        return self.medication is None or _concerned(self, ident)

    def fires(self, record: PatientRecord, focus: frozenset[str] | None = None) -> bool:
        """Whether the rule can give a finding on ``record`` (one implicating a ``focus`` order, when given)."""
        if self.record is not None and not self.record(record):
            return False
        if self.lines <= 0:
            return True
        n, focused = 0, focus is None
        for order in record.medication_orders:
            if self.concerns(order):
                n += 1
                focused = focused or order.ref in focus  # type: ignore[operator]
                if n >= self.lines and focused:
                    return True
        return False


@by_identities
def _concerned(trigger: Trigger, ident: MedicationIdentity) -> bool:
    assert trigger.medication is not None
    return trigger.medication(ident)


class Dispatch:
    """The triggers of a run's rules asked together: which rules can fire on a record, decided in one
    pass over its lines, each line adding a bit per rule concerned by it (a medication's bits worked
    out once, :meth:`bits_of`), instead of each rule walking the lines. Gives what
    :meth:`Trigger.fires` gives for each rule (``tests/test_dispatch.py``); ``None`` stands for a rule
    without trigger, which always runs. Bounded: the medications' bits are emptied when full."""

    __slots__ = ("_always", "_bits", "_by_line", "_by_medication", "_by_record", "_identified", "_needs", "triggers")

    def __init__(self, triggers: Iterable[Trigger | None]) -> None:
        self.triggers = tuple(triggers)
        self._identified = 0  # rules concerned by every identified line
        self._by_medication: list[tuple[int, Callable[[MedicationIdentity], bool]]] = []
        self._by_line: list[tuple[int, Callable[[MedicationOrder], bool]]] = []
        self._always = 0  # rules that fire whatever the lines (no trigger, or none on the lines)
        self._by_record: list[tuple[int, Callable[[PatientRecord], bool]]] = []
        depth = max((t.lines for t in self.triggers if t is not None), default=0)
        needs = [0] * (depth + 1)  # needs[k]: the rules that need k concerned lines
        for i, t in enumerate(self.triggers):
            bit = 1 << i
            if t is None or t.lines <= 0:
                self._always |= bit
            else:
                needs[t.lines] |= bit
            if t is None:
                continue
            if t.record is not None:
                self._by_record.append((bit, t.record))
            if t.lines <= 0:
                continue  # nothing to count on the lines
            if t.line is not None:
                self._by_line.append((bit, t.line))
            elif t.medication is None:
                self._identified |= bit
            else:
                self._by_medication.append((bit, t.medication))
        self._needs = tuple(needs)
        self._bits: dict[int, tuple[MedicationIdentity, int]] = {}

    def bits_of(self, ident: MedicationIdentity) -> int:
        """The rules (as bits) whose trigger concerns the lines of ``ident`` by their medication."""
        hit = self._bits.get(id(ident))
        if hit is not None:
            return hit[1]
        bits = self._identified
        for bit, test in self._by_medication:
            if test(ident):
                bits |= bit
        if len(self._bits) >= memo.MAX_ENTRIES:
            self._bits.clear()
        self._bits[id(ident)] = (ident, bits)  # the entry keeps ``ident`` alive: its id is never reused under it
        return bits

    def firing_bits(self, record: PatientRecord, focus: frozenset[str] | None = None) -> int:
        """The rules (bit ``i`` for trigger ``i``) that can give a finding on ``record``, one
        implicating a ``focus`` order when given (see :meth:`Trigger.fires`)."""
        if focus is not None:
            return self._focused_bits(record, focus)
        needs = self._needs
        depth = len(needs) - 1
        at_least = [0] * (depth + 1)  # at_least[k]: rules with k or more concerned lines so far
        focused = 0  # rules with a concerned line in the focus
        by_line = self._by_line
        bits_of = self.bits_of
        for order in record.medication_orders:
            ident = order.identity
            bits = 0 if ident is None else bits_of(ident)
            for bit, test in by_line:  # a rule whose trigger tests the order itself
                if test(order):
                    bits |= bit
            if not bits:
                continue
            for k in range(depth, 1, -1):
                at_least[k] |= at_least[k - 1] & bits
            at_least[1] |= bits
            if focus is not None and order.ref in focus:
                focused |= bits
        counted = 0
        for k in range(1, depth + 1):
            counted |= at_least[k] & needs[k]
        if focus is not None:
            counted &= focused
        fire = self._always | counted
        for bit, holds in self._by_record:
            if fire & bit and not holds(record):
                fire &= ~bit
        return fire

    def _focused_bits(self, record: PatientRecord, focus: frozenset[str]) -> int:
        """:meth:`firing_bits` under a focus (a CDS request: its lines are new objects, each test of a
        medication is worked out afresh): each rule's trigger asked of the focus lines first, and of
        the others only to count up to what it needs, as :meth:`Trigger.fires` would, never of
        every line for every rule."""
        fire = 0
        chosen = [o for o in record.medication_orders if o.ref in focus]
        for i, t in enumerate(self.triggers):
            if t is None:
                fire |= 1 << i
            elif t.record is not None and not t.record(record):
                continue
            elif t.lines <= 0 or (any(t.concerns(o) for o in chosen) and (t.lines == 1 or t.fires(record))):
                fire |= 1 << i
        return fire

    def firing(self, record: PatientRecord, focus: frozenset[str] | None = None) -> list[bool]:
        """For each trigger, whether its rule can give a finding on ``record`` (see :meth:`firing_bits`)."""
        fire = self.firing_bits(record, focus)
        return [bool(fire >> i & 1) for i in range(len(self.triggers))]


_DISPATCHES: dict[tuple[int, ...], Dispatch] = {}
DISPATCHES_LIMIT = 64


def dispatch_of(triggers: Iterable[Trigger | None]) -> Dispatch:
    """The :class:`Dispatch` of these triggers, kept across runs (an audit's chunks, a service's
    requests) so that each medication's bits are worked out once; the entry holds the triggers."""
    triggers = tuple(triggers)
    key = tuple(map(id, triggers))
    found = _DISPATCHES.get(key)
    if found is None:
        if len(_DISPATCHES) >= DISPATCHES_LIMIT:
            _DISPATCHES.clear()
        found = _DISPATCHES[key] = Dispatch(triggers)
    return found


@dataclass(frozen=True)
class Rule:
    """A registered rule; call :meth:`run` on a patient record."""

    id: str
    name: str
    category: Category
    severity: Severity
    source: Source
    referentials: tuple[str, ...]
    func: Callable[[RuleCall], Iterable[Finding]]
    family: str
    triggers: Callable[[Referentials], Trigger] | None = None
    """Computes the rule's :class:`Trigger` from the referentials; ``None``: the rule runs on every record."""

    def trigger(self, refs: Referentials) -> Trigger | None:
        """The rule's trigger for these referentials (computed once), or ``None`` when it has none or
        it cannot be computed: the rule then runs on every record."""
        return _trigger_of(self, refs) if self.triggers is not None else None

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.func.__doc__ or "")

    @property
    def title(self) -> str:
        return self.doc.splitlines()[0] if self.doc else self.name

    def run(self, record: PatientRecord, settings: RunSettings, refs: Referentials,
            shared: dict[Any, Any] | None = None) -> list[Finding]:
        """Findings of this rule on ``record``. ``shared`` carries what the rules run on the same
        record and settings may share (the identified lines); a fresh one when omitted."""
        return list(self.func(RuleCall(self, record, settings, refs, {} if shared is None else shared)))


@by_identities
def _trigger_of(rule: Rule, refs: Referentials) -> Trigger | None:
    assert rule.triggers is not None
    try:
        return rule.triggers(refs)
    except Exception:  # a trigger that cannot be computed never hides a finding: the rule runs always
        return None


@dataclass(slots=True)
class RuleCall:
    """What a rule function receives: its rule, the patient record, the run settings, the data."""

    rule: Rule
    record: PatientRecord
    settings: RunSettings
    refs: Referentials
    shared: dict[Any, Any] = field(default_factory=dict)
    """Memo shared by the rules run on this record (see :meth:`Rule.run`)."""

    @property
    def as_of(self) -> date:
        return self.settings.as_of

    def in_focus(self, order: MedicationOrder | ServiceOrder) -> bool:
        """Whether findings about ``order`` are wanted (see :attr:`RunSettings.focus`)."""
        return self.settings.focus is None or order.ref in self.settings.focus

    def identified_orders(self, *, taken_only: bool = True, prescriptions_only: bool = False
                          ) -> Iterator[MedicationOrder]:
        """Medication lines identified with rule-grade confidence (optionally only lines taken now or in
        the past, :data:`~checker.model.NOT_TAKEN` excluded, and
        only prescriptions — not dispenses, administrations or statements), each resource once:
        the same request may be read twice (e.g. from its JSON and its XML copy)."""
        key = ("identified", taken_only, prescriptions_only)
        found = self.shared.get(key)
        if found is None:
            found = self.shared[key] = tuple(self._identified(taken_only, prescriptions_only))
        return iter(found)

    def _identified(self, taken_only: bool, prescriptions_only: bool) -> Iterator[MedicationOrder]:
        seen: set[str] = set()
        for order in self.record.medication_orders:
            if order.ref in seen:
                continue
            if taken_only and order.status in NOT_TAKEN:
                continue
            if prescriptions_only and order.kind != "request":
                continue
            ident = order.identity
            if ident is not None and ident.substances and ident.confidence >= RULE_CONFIDENCE:
                seen.add(order.ref)
                yield order

    def finding(
        self,
        *,
        summary: str = "",
        detail: str = "",
        message: Message | None = None,
        implicated: Iterable[str],
        key: str = "",
        severity: Severity | None = None,
        level: str | None = None,
        source: Source | None = None,
        suggestion: dict[str, Any] | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> Finding:
        """Build a finding of this rule for this patient, with the rule's defaults filled in. A line
        with neither id nor fullUrl is named by its content (see ``fhir_input``); where it sat in the
        input goes to the evidence (``located_at``), out of the fingerprint. Give ``message`` (a code
        with typed parameters, worded in the run's language) rather than ``summary``/``detail`` prose."""
        implicated = tuple(implicated)
        evidence = evidence or {}
        if ANONYMOUS_MARK in "\n".join(implicated):  # one search (the mark holds no line break)
            lines: list[MedicationOrder | ServiceOrder] = [*self.record.medication_orders, *self.record.service_orders]
            where = {o.ref: str(o.location) for o in lines if o.ref in implicated and ANONYMOUS_MARK in o.ref}
            evidence = {**evidence, "located_at": dict(sorted(where.items()))}
        rule = self.rule
        if message is not None:  # the fields set one by one (see finding_of)
            return finding_of(message, self.settings.lang, rule=rule.id, category=rule.category,
                              severity=severity or rule.severity, source=source or rule.source,
                              patient=self.record.ref, implicated=implicated, level=level, suggestion=suggestion,
                              evidence=evidence, key=key)
        return Finding(
            rule=rule.id,
            category=rule.category,
            severity=severity or rule.severity,
            summary=summary,
            detail=detail,
            source=source or rule.source,
            patient=self.record.ref,
            implicated=implicated,
            level=level,
            suggestion=suggestion,
            evidence=evidence,
            key=key,
            message=message,
            lang=self.settings.lang,
        )


_REGISTRY: dict[str, Rule] = {}


def rule(
    id: str,
    *,
    name: str,
    category: Category,
    severity: Severity | str,
    source: Source,
    referentials: Iterable[str] = (),
    trigger: Callable[[Referentials], Trigger] | None = None,
) -> Callable[[Callable[[RuleCall], Iterable[Finding]]], Rule]:
    """Register the decorated function as a rule (see module docstring)."""

    def register(func: Callable[[RuleCall], Iterable[Finding]]) -> Rule:
        if not RULE_ID.match(id):
            raise ValueError(f"rule id {id!r} is malformed: expected two capitals and three digits")
        if id in _REGISTRY and _REGISTRY[id].func.__qualname__ != func.__qualname__:
            raise ValueError(f"rule id {id} registered twice ({_REGISTRY[id].func.__module__}, {func.__module__})")
        if category not in CATEGORIES:
            raise ValueError(f"rule {id}: unknown category {category!r}")
        if not (func.__doc__ or "").strip():
            raise ValueError(f"rule {id}: the function must document itself in its docstring")
        family = func.__module__.rsplit(".", 1)[-1]
        r = Rule(id, name, category, Severity.parse(severity), source, tuple(referentials), func, family, trigger)
        _REGISTRY[id] = r
        return r

    return register


_ROWS: dict[str, Callable[[Referentials], list[str]]] = {}


def rows_of(rule_id: str) -> Callable[[Callable[[Referentials], list[str]]], Callable[[Referentials], list[str]]]:
    """Register the function listing the data rows a rule applies (one line each: id, what, source
    and edition), shown by ``pertinence explain``."""

    def register(func: Callable[[Referentials], list[str]]) -> Callable[[Referentials], list[str]]:
        _ROWS[rule_id] = func
        return func

    return register


def data_rows(rule_id: str, refs: Referentials) -> list[str]:
    """The data rows of a rule (empty when it lists none; the families register their rows when
    :mod:`checker.rules` is imported, as for :func:`all_rules`)."""
    func = _ROWS.get(rule_id)
    return func(refs) if func is not None else []


def all_rules() -> list[Rule]:
    """Every registered rule, by id. The families register when :mod:`checker.rules` is imported,
    which :mod:`checker.api` does (and ``import checker…`` imports the API first)."""
    if not _REGISTRY:
        raise RuntimeError("no rule registered: import checker.rules first")
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def select_rules(select: Iterable[str] | None = None, ignore: Iterable[str] | None = None) -> list[Rule]:
    """Rules chosen by id or id prefix (``IX`` selects every interaction rule); unknown ids raise."""
    rules = all_rules()
    known = {r.id for r in rules}

    def expand(patterns: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for p in patterns:
            p = p.strip().upper()
            if not p:
                continue
            hits = {i for i in known if i.startswith(p)}
            if not hits:
                raise ValueError(f"no rule matches {p!r} (see `pertinence rules`)")
            out |= hits
        return out

    chosen = expand(select) if select else known
    chosen -= expand(ignore or ())
    return [r for r in rules if r.id in chosen]


def get_rule(rule_id: str) -> Rule:
    rules = {r.id: r for r in all_rules()}
    try:
        return rules[rule_id.strip().upper()]
    except KeyError:
        raise KeyError(f"unknown rule {rule_id!r} (see `pertinence rules`)") from None
