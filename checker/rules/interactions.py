"""Interactions (IX…): drug–drug interactions listed in the ANSM thesaurus."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from checker import facts
from checker.facts import FactTables
from checker.findings import Finding, Message, Quantity, Severity, Source, Word, Words
from checker.iatrogenic.conditions import (
    PairContext,
    Settled,
    local_route,
    route_of,
    settle,
    skin_form,
)
from checker.iatrogenic.thesaurus import LEVEL_NAMES_FR, LEVEL_RANK, Advice, Entry, Match, Thesaurus, ThesaurusAdvice
from checker.memo import MAX_ENTRIES, Built, by_identities, by_identity
from checker.model import Concept, Dosage, MedicationIdentity, MedicationOrder
from checker.periods import effective_interval
from checker.referentials import Referentials
from checker.registry import RuleCall, Trigger, rule
from checker.rules.pairing import (
    LINE_PAIRS_PER_PRODUCT_PAIR,
    Group,
    Line,
    ProductPair,
    lines_of as _lines_of,
    judged_pairs,
    product_pairs,
    sealed,
    signature_pairs,
)

THESAURUS_SOURCE = Source(
    "ANSM, Thésaurus des interactions médicamenteuses, septembre 2023",
    "https://ansm.sante.fr/documents/reference/thesaurus-des-interactions-medicamenteuses-1",
    "2023-09",
)

SEVERITY_OF_LEVEL = {"CI": Severity.CRITICAL, "AD": Severity.WARNING, "PE": Severity.INFO, "APEC": Severity.INFO}

# The wording (levels, risk themes, conduct, missing data) is the catalogue's: tables ix_level,
# ix_theme, ix_conduct, datum and the IX001 messages of finding_summary / finding_detail.


@dataclass(slots=True)
class PairResult:
    """Everything found for one pair of prescription lines."""

    first: MedicationOrder
    second: MedicationOrder
    items: list[tuple[Match, Settled]]
    lines: tuple[MedicationOrder, ...] = ()
    """Every line concerned, when a pair of products is reported once for many pairs of lines."""
    line_pairs: int = 1
    fixed: bool = False
    """``items`` are the ones every pair of lines of these two medications gets (shared, not to be
    changed): entries settled without reading the lines (:func:`_fixed_items`)."""

    def best(self) -> tuple[Match, Settled]:
        """The item that sets the finding's level (:func:`_best`)."""
        return _best(self.items)


def _best(items: list[tuple[Match, Settled]]) -> tuple[Match, Settled]:
    """The item that sets the finding's level.

    A class entry whose levels depend on circumstances the thesaurus leaves to the specific
    entries ("unstated") gives way to any other entry for the pair, and every unsettled class
    entry gives way to a settled entry naming both substances, as the thesaurus' class headings
    direct; otherwise the highest level wins.
    """
    vague = [it for it in items if not it[1].settled and set(it[1].missing) <= {"unstated"}]
    direct_settled = any(it[1].settled and len(it[0].path_first) == 1 and len(it[0].path_second) == 1
                         for it in items)
    if direct_settled:  # an entry naming both substances, settled, outranks unsettled class entries
        vague += [it for it in items if not it[1].settled]
    pool = [it for it in items if it not in vague] or items
    return max(pool, key=lambda it: (LEVEL_RANK[it[1].level], it[1].settled))


def _display(th: Thesaurus, node: str) -> str:
    ent = th.entities.get(node)
    return ent["name"].lower() if ent else node


@by_identity
def _path_names(th: Thesaurus, path: tuple[str, ...]) -> tuple[str, ...]:
    """The display names of a class path (thesaurus paths repeat across pairs and patients)."""
    return tuple(_display(th, n) for n in path)


# Heading of the torsadogenic class (ANSM thesaurus 2023, l. 18240): for erythromycin and vincamine
# only the intravenous forms are concerned.
TORSADOGENIC_IV_ONLY = frozenset({"erythromycine", "vincamine"})


def _torsadogenic_by_route_only(m: Match, first: MedicationOrder, second: MedicationOrder) -> bool:
    """True when a side joins a torsadogenic class only as erythromycin/vincamine by a known non-IV
    route (the match does not concern the pair)."""
    for path, line in ((m.path_first, first), (m.path_second, second)):
        if _torsadogenic_iv_only(path):
            route = route_of(line)
            if route is not None and route != "iv":
                return True
    return False


@functools.lru_cache(maxsize=4096)
def _torsadogenic_iv_only(path: tuple[str, ...]) -> bool:
    """Whether a class path joins a torsadogenic class as erythromycin or vincamine (paths repeat)."""
    return bool(path) and path[0] in TORSADOGENIC_IV_ONLY and any("torsad" in n for n in path[1:])


NSAIDS = "anti inflammatoires non steroidiens"


def line_local_route(th: Thesaurus, order: MedicationOrder, ident: MedicationIdentity) -> str | None:
    """The local route of a line (:func:`~checker.iatrogenic.conditions.local_route`); an NSAID in a
    skin form (gel, cream, ointment, medicated plaster) with no stated route counts as cutaneous: every
    such NSAID specialty of the BDPM is given by the cutaneous route (checked by the tests)."""
    return _local_route_of(th, order.medication, order.dosages, ident)


@by_identities
def _local_route_of(th: Thesaurus, medication: Concept, dosages: tuple[Dosage, ...],
                    ident: MedicationIdentity) -> str | None:
    """:func:`line_local_route` from what it reads of a line (the route depends on nothing else), shared
    by the lines that share these objects (bulk inputs share medications and dosages, see fhir_input)."""
    order = MedicationOrder(ref="", status="", intent="", medication=medication, dosages=dosages, identity=ident)
    route = local_route(order)
    if route is None and skin_form(order) and ident.substances and all(
            NSAIDS in th.closure_with_atc(s.key, s.atc) for s in ident.substances):
        return "cutanee"
    return route


def interacting_pairs(call: RuleCall, th: Thesaurus) -> Iterator[PairResult]:
    """Every pair of concurrent identified lines with at least one thesaurus entry, in record order;
    the record is read as it stood when the combination began (the later of the two orders' days),
    else on the last day both were taken.

    Lines are grouped by product; a pair of products with more than
    :data:`~checker.rules.pairing.LINE_PAIRS_PER_PRODUCT_PAIR` overlapping pairs of lines gives one
    result naming all its lines (see :func:`_collapsed`), so the cost stays n log n per patient.
    """
    at: dict[int, int] = {}  # id(medication) -> its position, in order of its first line
    left_out: set[int] = set()  # id(medication) of those that pair with nothing here (whole medications go)
    idents: list[MedicationIdentity] = []
    reaches: list[_Reach] = []
    members: list[list[tuple[int, MedicationOrder]]] = []  # the lines of each medication
    focus = call.settings.focus
    for i, o in enumerate(call.identified_orders()):  # lines taken (not cancelled …) only
        ident = o.identity
        pos = at.get(id(ident))
        if pos is not None:
            members[pos].append((i, o))
            continue
        if id(ident) in left_out:
            continue
        assert ident is not None  # identified_orders() yields identified lines only
        reach = _reach(th, ident)
        if not reach[0]:  # on no side of any entry: pairs with nothing
            left_out.add(id(ident))
            continue
        at[id(ident)] = len(idents)
        idents.append(ident)
        reaches.append(reach)
        members.append([(i, o)])
    hot = None if focus is None else [any(o.ref in focus for _, o in m) for m in members]
    linked = _systemic_links(th, _linked(th, idents, reaches, [len(m) > 1 for m in members], hot), members)
    as_of = call.as_of
    lines = {p: _lines_of(members[p], as_of) for p in sorted({p for pair in linked for p in pair})}
    groups: dict[int, Group] = {}  # sealed groups, only for the pairs that need the pairing machinery
    results: list[tuple[tuple[int, int], PairResult]] = []

    def judge(x: Line, y: Line) -> None:
        a, b = x.order, y.order
        fixed = _fixed_items(th, a.identity, b.identity)  # type: ignore[arg-type]  # as _pair_result, inline
        if fixed is not None:
            if fixed:
                results.append(((x.index, y.index), PairResult(a, b, fixed, fixed=True)))
            return
        one = _pair_result(call, th, a, b)
        if one is not None:
            results.append(((x.index, y.index), one))

    def group(p: int) -> Group:
        g = groups.get(p)
        if g is None:
            g = groups[p] = sealed(id(idents[p]), lines[p])
        return g

    for i, j in linked:  # the pairs of medications in the order product_pairs asks them
        la, lb = lines[i], lines[j]
        if focus is None and i != j and _one_line_side(la, lb):  # most pairs: one line against a few
            x, many = (la[0], lb) if len(la) == 1 else (lb[0], la)
            found = [(x, y) if x.index < y.index else (y, x) for y in many if x.lo <= y.hi and y.lo <= x.hi]
            if len(found) <= LINE_PAIRS_PER_PRODUCT_PAIR:  # what product_pairs and ProductPair.pairs give
                for x, y in found:
                    judge(x, y)
                continue
        for pp in product_pairs([group(i), group(j)], _always, focus=focus, pairs=((0, 0) if i == j else (0, 1),)):
            if pp.collapsed:
                result = _collapsed(call, th, pp)
                if result is not None:
                    results.append(result)
                continue
            for x, y in pp.pairs():
                judge(x, y)
    results.sort(key=lambda f: f[0])
    for _, pair in results:
        yield pair


_Reach = tuple[frozenset[str], frozenset[str]]


def _systemic_links(th: Thesaurus, linked: list[tuple[int, int]], members: list[list[tuple[int, MedicationOrder]]]
                    ) -> list[tuple[int, int]]:
    """``linked`` (pairs of medications found with all their lines) once the lines given by a local
    route outside the thesaurus' scope are left out of the medications in a pair (``members`` is
    narrowed in place): a pair goes when a side has no line left, a medication with itself when it
    has one line left. The route is worked out only for the lines of linked medications (a request
    or a record names many medications that pair with none)."""
    for p in sorted({p for pair in linked for p in pair}):
        members[p] = [(i, o) for i, o in members[p] if not _local_only_of(th, o.medication, o.dosages, o.identity)]
    return [(i, j) for i, j in linked if members[i] and members[j] and (i != j or len(members[i]) > 1)]


@by_identities
def _local_only_of(th: Thesaurus, medication: Concept, dosages: tuple[Dosage, ...],
                   ident: MedicationIdentity | None) -> bool:
    """Whether a line is given by a local route outside the thesaurus' systemic scope, from what it
    reads of the line (its coded medication, dosages and identified medication), shared by the lines
    that share these objects (one look-up per line of a bulk input; the route is worked out here, not
    remembered apart, so a request's new lines cost one entry each as before)."""
    assert ident is not None
    route = _local_route_of.__wrapped__(th, medication, dosages, ident)  # type: ignore[attr-defined]
    return th.local_only(route, ident.substance_keys, ident.atc_codes)


def _one_line_side(a: list[Line], b: list[Line]) -> bool:
    """Whether one of two medications is on one line (their pairs of lines are then found by a scan of
    the other's lines, without groups: most medications of a record are on one line)."""
    return len(a) == 1 or len(b) == 1


def _always(a: Group, b: Group) -> bool:
    """Every pair :func:`_linked` gives is wanted (it asked :func:`_pairs_with`)."""
    return True


def _linked(th: Thesaurus, idents: list[MedicationIdentity], reaches: list[_Reach], twice: list[bool],
            hot: list[bool] | None = None) -> list[tuple[int, int]]:
    """The pairs of a record's medications (in order of their first line, each with its
    :func:`_reach` and whether it is on two lines or more) that have a thesaurus entry, as positions
    ``(i, j)``, ``i <= j`` (a medication with itself when on two lines), in order. ``hot`` (under a
    focus): whether each medication has a focus line; only the pairs with such a medication are
    asked, the others could give no finding implicating a focus line (see
    :func:`~checker.rules.pairing.product_pairs`).

    A pair is asked whether it has an entry (:func:`_pairs_with`) only when the nodes of one meet
    the partners of the other: most pairs of a record have none, and the lines of a medication in
    no pair are not grouped or paired at all."""
    found: list[tuple[int, int]] = []
    nodes = [nodes for nodes, _ in reaches]
    for x, ix in enumerate(idents):
        disjoint = reaches[x][1].isdisjoint  # the partners of x
        if hot is not None and not hot[x]:  # only its pairs with a later medication that has a focus line
            found += [(x, y) for y in range(x + 1, len(idents))
                      if hot[y] and not disjoint(nodes[y]) and _pairs_with(th, ix, idents[y])]
            continue
        if twice[x] and not disjoint(nodes[x]) and _pairs_with(th, ix, ix):
            found.append((x, x))
        found += [(x, y) for y, other in enumerate(nodes[x + 1:], x + 1)
                  if not disjoint(other) and _pairs_with(th, ix, idents[y])]
    return found


@by_identity
def _partner_index(th: Thesaurus) -> dict[str, frozenset[str]]:
    """Each node on a side of an entry, with the nodes on the other side of its entries."""
    out: dict[str, set[str]] = {}
    for e in th.entries:
        out.setdefault(e.a, set()).add(e.b)
        out.setdefault(e.b, set()).add(e.a)
    return {node: frozenset(across) for node, across in out.items()}


@by_identities
def _reach(th: Thesaurus, ident: MedicationIdentity) -> tuple[frozenset[str], frozenset[str]]:
    """The medication's nodes on a side of an entry (its substances, their classes, as
    :meth:`~checker.iatrogenic.thesaurus.Thesaurus.matches` places them) and the nodes across those
    entries. Two medications have a match only if the nodes of one meet the partners of the other
    (an entry's sides lie one in each closure), so this is a sound filter before :func:`_pairs_with`."""
    if len(ident.substances) == 1:  # most medications: the substance's reach as it is
        only = ident.substances[0]
        return _substance_reach(th, only.key, only.atc)
    index = _partner_index(th)
    nodes = frozenset(n for s in ident.substances for n in th.closure_with_atc(s.key, s.atc) if n in index)
    return nodes, frozenset().union(*(index[n] for n in nodes))


@by_identity
def _substance_reach(th: Thesaurus, key: str, atc: tuple[str, ...]) -> _Reach:
    """:func:`_reach` of a medication of one substance, by the substance's key and ATC codes (a CDS
    request's lines bring new medications of the same substances)."""
    index = _partner_index(th)
    nodes = frozenset(n for n in th.closure_with_atc(key, atc) if n in index)
    return nodes, frozenset().union(*(index[n] for n in nodes))


def _pair_result(call: RuleCall, th: Thesaurus, a: MedicationOrder, b: MedicationOrder) -> PairResult | None:
    """The entries concerning two concurrent lines (``a`` before ``b`` in the record), settled."""
    assert a.identity is not None and b.identity is not None
    fixed_items = _fixed_items(th, a.identity, b.identity)
    if fixed_items is not None:  # every entry settled without the lines: the same items for every pair
        return PairResult(a, b, fixed_items, fixed=True) if fixed_items else None
    tables: FactTables = call.refs.get("clinical-facts")
    bands = call.refs.get("iatrogenic-rules").aspirin_bands
    items: list[tuple[Match, Settled]] = []
    days: tuple[date, ...] = ()
    for ka, m, fixed, torsadogenic in _pair_plan(th, a.identity, b.identity):
        first, second = (a, b) if m.first == ka else (b, a)
        if torsadogenic and _torsadogenic_by_route_only(m, first, second):
            continue
        if fixed is not None:  # one level, no gate: nothing of the record to read
            items.append((m, fixed))
            continue
        days = days or _pair_days(a, b, call.as_of)
        for day in days:  # settled on the record of its first day, else of its last one
            ctx = PairContext(th, call.record, call.as_of, m.first, m.second, first, second, tables, day, bands)
            settled = settle(m.entry, ctx)
            if settled.settled:
                break
        if not settled.dropped:  # the entry does not concern this pair
            items.append((m, settled))
    return PairResult(a, b, items) if items else None


def _collapsed(call: RuleCall, th: Thesaurus, pp: ProductPair) -> tuple[tuple[int, int], PairResult] | None:
    """One result for a pair of products with many overlapping pairs of lines: settled for each pair
    of line signatures that overlap, on its earliest and on its latest lines (the highest level
    wins), naming every line concerned."""
    best: tuple[tuple[int, bool], tuple[int, int], PairResult] | None = None
    for sa, sb in signature_pairs(pp):
        for x, y in judged_pairs(sa, sb):
            one = _pair_result(call, th, x.order, y.order)
            if one is None:
                continue
            _, settled = one.best()
            rank = (LEVEL_RANK[settled.level], settled.settled)
            if best is None or rank > best[0]:
                best = (rank, (x.index, y.index), one)
    if best is None:
        return None
    involved = pp.lines()
    result = best[2]
    result.lines = tuple(ln.order for ln in involved)
    result.line_pairs = pp.count
    return (involved[0].index, involved[1].index if len(involved) > 1 else involved[0].index), result



@by_identities
def _pair_plan(th: Thesaurus, a: MedicationIdentity, b: MedicationIdentity
               ) -> tuple[tuple[str, Match, Settled | None, bool], ...]:
    """:func:`_pair_matches` with, for each match, what does not depend on the lines: its level when
    the entry has one level and no gate (:func:`_unconditional`), and whether a class path is a
    torsadogenic one limited to the IV route (the lines' routes are then read)."""
    return tuple((ka, m, _unconditional(m.entry),
                  _torsadogenic_iv_only(m.path_first) or _torsadogenic_iv_only(m.path_second))
                 for ka, m in _pair_matches(th, a, b))


@by_identities
def _fixed_items(th: Thesaurus, a: MedicationIdentity, b: MedicationIdentity) -> list[tuple[Match, Settled]] | None:
    """The items of every pair of lines of ``a`` (earlier) and ``b`` when no entry between them reads
    the lines (one level, no gate, no class limited to the IV route), else ``None``: one list per pair
    of medications, so what a finding says of it is worked out once (:func:`_judgement`)."""
    plan = _pair_plan(th, a, b)
    if any(fixed is None or torsadogenic for _, _, fixed, torsadogenic in plan):
        return None
    return [(m, fixed) for _, m, fixed, _ in plan if fixed is not None]


def _unconditional(entry: Entry) -> Settled | None:
    """What :func:`~checker.iatrogenic.conditions.settle` gives an entry of one level and no gate
    whatever the pair (its level, settled); ``None`` for an entry whose level depends on the record."""
    if len(entry.levels) != 1 or entry.gate_criterion is not None:
        return None
    return Settled(entry.levels[0].level, True, ())


def _pair_days(a: MedicationOrder, b: MedicationOrder, as_of: date) -> tuple[date, ...]:
    """The day the combination began (the later of the two orders' days), then the last day both lines
    were taken up to ``as_of`` (fixed once the combination has ended, whatever ``as_of``)."""
    day = max(facts.order_day(a, as_of), facts.order_day(b, as_of))
    last = min(effective_interval(a, as_of)[1], effective_interval(b, as_of)[1], as_of)
    return (day, last) if last > day else (day,)


@by_identities
def _pairs_with(th: Thesaurus, a: MedicationIdentity, b: MedicationIdentity) -> bool:
    """Whether the thesaurus has an entry for two identified medications, in either order."""
    return bool(_pair_matches(th, a, b) or _pair_matches(th, b, a))


@by_identities
def _pair_matches(th: Thesaurus, a: MedicationIdentity, b: MedicationIdentity) -> tuple[tuple[str, Match], ...]:
    """The thesaurus matches between two identified medications, as ``(substance of a, match)``
    (substances in key order): the same for every pair of lines naming these medications."""
    subs_a = sorted(a.substances, key=lambda s: s.key)
    subs_b = sorted(b.substances, key=lambda s: s.key)
    return tuple((sa.key, m) for sa in subs_a for sb in subs_b for m in th.matches(sa.key, sb.key, sa.atc, sb.atc))


def _trigger(refs: Referentials) -> Trigger:
    """Two lines whose medications each have a substance on a side of a thesaurus entry (by name,
    class or ATC code, as :meth:`~checker.iatrogenic.thesaurus.Thesaurus.matches` places it)."""
    th: Thesaurus = refs.get("ansm-thesaurus")
    sides = frozenset(n for e in th.entries for n in (e.a, e.b))
    return Trigger(medication=lambda ident: any(not sides.isdisjoint(th.closure_with_atc(s.key, s.atc))
                                                for s in ident.substances), lines=2)


@rule(
    "IX001",
    name="ansm-interaction",
    category="interaction",
    severity="warning",
    source=THESAURUS_SOURCE,
    referentials=("ansm-thesaurus", "ansm-thesaurus-advice", "clinical-facts", "iatrogenic-rules"),
    trigger=_trigger,
)
def ansm_interaction(call: RuleCall) -> Iterator[Finding]:
    """Drug–drug interaction listed in the ANSM thesaurus.

    Two prescription lines taken over the same period contain substances (or members of classes)
    that the ANSM *Thésaurus des interactions médicamenteuses* lists together. One finding per pair
    of lines, at the thesaurus level: contre-indication → critical, association déconseillée →
    warning, précaution d'emploi and à prendre en compte → info (``level`` keeps CI/AD/PE/APEC).
    Entries with several levels are resolved on the record (aspirin dose, route, acute coronary
    syndrome indication, ulcer history, the substances named for a level); when the record does not
    settle it, the highest possible level is kept and the missing datum named. Every entry and class
    path that explains the pair is listed in ``evidence``. Stopped, cancelled, entered-in-error and
    completed lines, and lines whose periods do not overlap, never interact; nor do lines given by a
    local route (eye, skin, nose, vagina, ear, gums; EDQM or SNOMED CT codes, words, the BDPM route
    of the identified specialty, or an NSAID skin form with no route), except the substances the
    thesaurus lists as exceptions (miconazole, beta-blocker eye drops, nasal fentanyl …).

    Source: ANSM, Thésaurus des interactions médicamenteuses, septembre 2023 (edition 2023-09).
    """
    th: Thesaurus = call.refs.get("ansm-thesaurus")
    advice: ThesaurusAdvice = call.refs.get("ansm-thesaurus-advice")
    for pair in interacting_pairs(call, th):
        j = _judgement_shared(th, advice, pair.items) if pair.fixed else _judgement_settled(th, advice, pair.items)
        match, level = j.match, j.level
        first_line = pair.first if match.first in (pair.first.identity.substance_keys if pair.first.identity else ()) else pair.second
        second_line = pair.second if first_line is pair.first else pair.first
        evidence = dict(j.evidence)
        if pair.lines:
            evidence["line_pairs"] = pair.line_pairs
        names = (first_line.substance_name(match.first), second_line.substance_name(match.second),
                 first_line.label or match.first, second_line.label or match.second)
        many = (len(pair.lines), pair.line_pairs) if pair.lines else None
        message = _MESSAGES.get((id(j), *names, many), _message, j, names, many, keep=j)
        yield call.finding(
            message=message,
            implicated=[o.ref for o in pair.lines] if pair.lines else [pair.first.ref, pair.second.ref],
            key=j.key,
            severity=SEVERITY_OF_LEVEL[level],
            level=level,
            evidence=evidence,
            suggestion={"action": {"CI": "stop-or-replace", "AD": "avoid-or-monitor", "PE": "monitor",
                                   "APEC": "consider"}[level]},
        )


def _message(j: _Judgement, names: tuple[str, str, str, str], many: tuple[int, int] | None) -> Message:
    """IX001's message: the judgement's words, the two substances and lines, how many lines when many."""
    extra = j.extra
    if many is not None:
        extra += (Message("IX001.many-lines", {"lines": many[0], "pairs": many[1]}),)
    first, second, label_a, label_b = names
    return Message("IX001", {"level": j.level_word, "first": first, "second": second, "label_a": label_a,
                             "label_b": label_b, "themes": j.themes, "conduct": j.conduct_word}, extra)


_MESSAGES = Built()
"""IX001's messages by judgement (kept by the entry), substances, labels and line counts: a bulk export
repeats the same pair of medications over thousands of patients, and a message is worded once."""


def _advice_sentences(advice: Advice | None) -> list[Message]:
    """The entry's own conduct (encoded from the thesaurus): what to monitor, dose, spacing, timing."""
    if advice is None:
        return []
    out: list[Message] = []
    if advice.avoid:
        out.append(Message("IX001.avoid"))
    if advice.monitor:
        out.append(Message("IX001.monitor", {"what": Words("ix_monitor", advice.monitor, ", ")}))
    if advice.adjust_dose:
        out.append(Message("IX001.adjust-dose"))
    if (m := advice.max_dose) is not None:
        dose = Quantity(float(m["value"]), str(m["unit"]), 0 if float(m["value"]).is_integer() else 1)
        if m.get("per_day") and m.get("drug"):
            out.append(Message("IX001.max-dose-day-of", {"dose": dose, "drug": str(m["drug"])}))
        elif m.get("per_day"):
            out.append(Message("IX001.max-dose-day", {"dose": dose}))
        else:
            out.append(Message("IX001.max-dose", {"dose": dose}))
    if advice.spacing_h is not None:
        out.append(Message("IX001.spacing", {"hours": Quantity(advice.spacing_h, "h")}))
    if (p := advice.after_stop) is not None:
        n = int(p["value"])
        out.append(Message("IX001.after-stop", {"n": n, "unit": Word("ix_period", f"{p['unit']}{'1' if n == 1 else ''}")}))
    return out


@dataclass(frozen=True, slots=True)
class _Judgement:
    """What an IX001 finding says of its items, whatever its lines: the entry that sets the level,
    the conduct and missing data, and the evidence (``line_pairs`` aside)."""

    match: Match
    level: str
    key: str
    themes: Words
    extra: tuple[Message, ...]
    evidence: dict[str, Any]
    level_word: Word
    conduct_word: Word


def _judgement(th: Thesaurus, advice: ThesaurusAdvice, items: list[tuple[Match, Settled]]) -> _Judgement:
    match, settled = _best(items)
    entry = match.entry
    level = settled.level
    subst = sorted({match.first, match.second})
    themes = list(entry.themes)
    extra: list[Message] = _advice_sentences(advice.of(entry))
    if entry.multi_level:
        if not settled.settled:
            extra.append(Message("IX001.graded-unsettled", {
                "levels": Words("ix_level", tuple(lv.level for lv in entry.levels), ", "),
                "missing": Words("datum", settled.missing)}))
        elif settled.all_ruled_out:
            extra.append(Message("IX001.graded-lowest"))
    elif not settled.settled:  # a single-level entry limited to circumstances the record does not state
        extra.append(Message("IX001.circumstances-unstated", {"missing": Words("datum", settled.missing)}))
    evidence: dict[str, Any] = {
        "substances": subst,
        "level": level,
        "level_name": LEVEL_NAMES_FR[level],
        "settled": settled.settled,
        "themes": themes,
        "thesaurus_edition": THESAURUS_SOURCE.edition,
        "entries": _entries_evidence(th, items),
    }
    if entry.multi_level:
        evidence["levels_in_entry"] = [lv.level for lv in entry.levels]
    if not settled.settled:
        evidence["missing"] = list(settled.missing)
    return _Judgement(match, level, "+".join(subst), Words("ix_theme", tuple(themes)), tuple(extra), evidence,
                      Word("ix_level", level), Word("ix_conduct", level))


_judgement_shared = by_identities(_judgement)
""":func:`_judgement` of items shared by every pair of lines of two medications (``PairResult.fixed``):
worked out once per pair of medications; the findings share the evidence's lists (findings are values)."""


_SETTLED_JUDGEMENTS: dict[tuple[Any, ...], tuple[object, _Judgement]] = {}


def _judgement_settled(th: Thesaurus, advice: ThesaurusAdvice, items: list[tuple[Match, Settled]]) -> _Judgement:
    """:func:`_judgement` of items settled on a pair of lines (entries that read the lines or the
    record), remembered by each match (by identity: matches are remembered per pair of substances)
    and what was settled of it (a value): the pairs of lines settled alike share the judgement and its
    evidence's lists, as those of :func:`_judgement_shared` do. Emptied when full."""
    key = (id(th), id(advice), *[(id(m), s) for m, s in items])
    hit = _SETTLED_JUDGEMENTS.get(key)
    if hit is None:
        if len(_SETTLED_JUDGEMENTS) >= MAX_ENTRIES:
            _SETTLED_JUDGEMENTS.clear()
        kept = (th, advice, [m for m, _ in items])  # the objects keyed by identity stay alive with the entry
        hit = _SETTLED_JUDGEMENTS[key] = (kept, _judgement(th, advice, items))
    return hit[1]


def _entries_evidence(th: Thesaurus, items: list[tuple[Match, Settled]]) -> list[dict[str, Any]]:
    """Every entry and class path explaining the pair, strongest first, without repeats."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, ...]] = set()
    for m, s in sorted(items, key=lambda it: -LEVEL_RANK[it[1].level]):
        key = tuple(sorted((m.entry.a, m.entry.b))) + (m.first, m.second)
        if key in seen:
            continue
        seen.add(key)
        name, levels, via_first, via_second = _match_texts(th, m)
        out.append({
            "entry": name,
            "pdf_line": m.entry.line,
            "level": s.level,
            "levels_in_entry": list(levels),
            "conditions_hand_encoded": m.entry.hand_encoded,
            "via": [list(via_first), list(via_second)],
        })
    return out


@by_identities
def _match_texts(th: Thesaurus, m: Match) -> tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """What the evidence says of one match (entry, its levels, the class paths named), once per match:
    matches are remembered per pair of medications, so they repeat across lines and patients."""
    return (f"{th.entities.get(m.entry.a, {}).get('name', m.entry.a)} + {m.entry.interactant}",
            tuple(lv.level for lv in m.entry.levels), _path_names(th, m.path_first), _path_names(th, m.path_second))
