"""Duplicates (DU…): the same substance or the same risky class prescribed twice at once."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from checker.findings import Finding, Localized, Message, Param, Quantity, Source, Word
from checker.iatrogenic.classes import TherapeuticClasses
from checker.facts import FactTables
from checker.iatrogenic.doses import medication_key
from checker.iatrogenic.risks import IatrogenicRules, RiskRow
from checker.memo import MAX_ENTRIES, by_identities, by_identity
from checker.model import MedicationIdentity
from checker.iatrogenic.thesaurus import Thesaurus
from checker.model import MedicationOrder
from checker.periods import renewal_ends
from checker.referentials import Referentials
from checker.registry import RuleCall, Trigger, rows_of, rule
from checker.rules.pairing import Group, group_lines, judged_pairs, product_pairs, signature_pairs
from checker.rules.patient_risks import daily_ceiling, line_daily_dose

STOPP_SOURCE = Source(
    "STOPP/START v2 (O'Mahony et al., Age Ageing 2015), critère A3 ; codage Huibers et al. 2019",
    "https://github.com/MichielCM/stoppstart",
    "v2",
)


# Duplicate rules pair prescription lines only (MedicationRequest): a dispense, administration or
# statement of a drug records the delivery or intake of a treatment that is usually also prescribed,
# and pairing it with the request would report one treatment as a duplicate of itself. Interactions
# (IX001) still consider every kind. Pairs are found at bounded cost (see checker.rules.pairing).


def _mg(value: float) -> Quantity:
    return Quantity(round(value, 1), "mg", 0 if abs(value - round(value)) < 1e-9 else 1)


def _total_dose(call: RuleCall, a: MedicationOrder, b: MedicationOrder, key: str,
                evidence: dict[str, Any]) -> Message:
    """The sentence stating the two lines' total daily dose of ``key`` against the maximum per day
    (the lowest that applies to either line); fills ``evidence`` with the figures."""
    doses = [line_daily_dose(o, key) for o in (a, b)]
    if any(d is None for d in doses):
        evidence["daily_total"] = "not-computable"
        return Message("DU001.total-unknown")
    total = sum(d.per_day_mg for d in doses if d is not None)
    evidence["daily_total_mg"] = round(total, 3)
    name = a.substance_name(key)
    ceilings = [c for o in (a, b) if (c := daily_ceiling(call, o, key)) is not None]
    if not ceilings:
        return Message("DU001.total-no-ceiling", {"substance": name, "total": _mg(total)})
    cap, basis, row_id = min(ceilings)
    evidence.update(daily_max_mg=round(cap, 3), daily_max_basis=basis, daily_max_row=row_id)
    params: dict[str, Param] = {"substance": name, "total": _mg(total), "ceiling": _mg(cap),
                                "basis": Word("dose_basis", basis)}
    if total > cap + 1e-9:
        return Message("DU001.total-above", params)
    return Message("DU001.total-within", params)


def _implicated(a: MedicationOrder, b: MedicationOrder, lines: tuple[tuple[MedicationOrder, ...], int] | None,
                evidence: dict[str, Any]) -> list[str]:
    """The two lines, or every line concerned when a pair of products is reported once (the number of
    overlapping pairs of lines then goes to ``evidence``)."""
    if lines is None:
        return [a.ref, b.ref]
    evidence["line_pairs"] = lines[1]
    return [o.ref for o in lines[0]]


def _many_lines(lines: tuple[tuple[MedicationOrder, ...], int] | None) -> tuple[Message, ...]:
    """The sentence saying a pair of products is reported once for many pairs of lines."""
    if lines is None:
        return ()
    return (Message("DU.many-lines", {"lines": len(lines[0]), "pairs": lines[1]}),)


def _two_lines(refs: Referentials) -> Trigger:
    """Any two identified lines (the pair is the rule's to find)."""
    return Trigger(lines=2)


@rule(
    "DU001",
    name="same-substance-twice",
    category="duplicate",
    severity="warning",
    source=STOPP_SOURCE,
    referentials=("iatrogenic-rules", "clinical-facts"),
    trigger=_two_lines,
)
def same_substance(call: RuleCall) -> Iterator[Finding]:
    """Same active substance in two concurrent prescription lines.

    Two lines taken over the same period contain the same active moiety (for instance paracetamol
    in Doliprane and in Ixprim): the doses add up unnoticed, a classic route to overdose. One
    finding per pair of lines and substance. The finding states the total daily dose of the two
    lines (structured dosage) against the lowest PR005 maximum per day that applies to the patient
    (``max-dose`` rows of ``referentials/iatrogenic/patient-risks.tsv``), or says that the total
    cannot be computed (a dosage in words only). A renewal of the same medication written up to
    ``renewal_overlap_days`` (``referentials/facts/clinical-facts.json``, a project convention)
    before the line ends takes over from it: the two are one treatment, not a duplicate.

    Source: ANSM, paracetamol boxes "Surdosage = danger" (9 July 2019: do not take another medicine
    containing paracetamol); STOPP/START v2 criterion A3 (duplicate prescriptions).
    """
    data: IatrogenicRules = call.refs.get("iatrogenic-rules")
    specific, generic = _same_substance_rows(data)
    orders = _sharing_a_substance(call.identified_orders(prescriptions_only=True))
    if len(orders) < 2:
        return
    tables: FactTables = call.refs.get("clinical-facts")
    repeated, medication = _repeated_medications(orders)
    renewed = renewal_ends(repeated, call.as_of, tables.renewal_overlap_days, lambda o: medication[id(o.identity)])
    groups = group_lines(orders, call.as_of, key=lambda o: id(o.identity), ends=renewed)

    def keys(g: Group) -> frozenset[str]:
        return g.lines[0].order.identity.substance_keys  # type: ignore[union-attr]

    results: list[tuple[tuple[int, int], list[Finding]]] = []
    for pp in product_pairs(groups, _always, focus=call.settings.focus, pairs=_substance_pairs(groups)):
        shared = sorted(keys(pp.a) & keys(pp.b))
        if pp.collapsed:  # thousands of lines of the same products: once for the pair of products
            involved = pp.lines()
            a, b = involved[0].order, involved[1].order
            results.append(((involved[0].index, involved[1].index), list(_same_substance_findings(
                call, a, b, shared, specific, generic, lines=(tuple(ln.order for ln in involved), pp.count)))))
            continue
        for x, y in pp.pairs():
            results.append(((x.index, y.index),
                          list(_same_substance_findings(call, x.order, y.order, shared, specific, generic))))
    results.sort(key=lambda f: f[0])
    for _, findings in results:
        yield from findings


def _always(a: Group, b: Group) -> bool:
    """Every pair :func:`_substance_pairs` gives shares a substance."""
    return True


@by_identity
def _same_substance_rows(data: IatrogenicRules) -> tuple[dict[str, RiskRow], RiskRow | None]:
    """The ``same-substance`` rows by substance key, and the row for any substance."""
    rows = data.kind("same-substance")
    return ({r.keys[0]: r for r in rows if r.keys and r.keys[0] != "*"},
            next((r for r in rows if "*" in r.keys), None))


def _medication_key(order: MedicationOrder) -> Hashable:
    """:func:`~checker.iatrogenic.doses.medication_key`, once per identified medication (it reads
    nothing else of the line)."""
    ident = order.identity
    if ident is None:
        return ()
    hit = _MEDICATION_KEYS.get(id(ident))
    if hit is None:  # keeps the medication (its id is not reused while the entry exists); emptied when full
        if len(_MEDICATION_KEYS) >= MAX_ENTRIES:
            _MEDICATION_KEYS.clear()
        hit = _MEDICATION_KEYS[id(ident)] = (ident, medication_key(_Identified(ident)))  # type: ignore[arg-type]
    return hit[1]


_MEDICATION_KEYS: dict[int, tuple[MedicationIdentity, Hashable]] = {}


def _repeated_medications(orders: list[MedicationOrder]) -> tuple[list[MedicationOrder], dict[int, Hashable]]:
    """The lines whose medication (:func:`_medication_key`) is on another line too, and the medication
    of each identified medication by ``id(identity)``: only they can be renewed or renew
    (:func:`~checker.periods.renewal_ends` looks within one medication). Worked out once per identified
    medication of the record (its lines share it)."""
    lines: dict[int, int] = {}  # id(identity) -> its lines
    for o in orders:
        k = id(o.identity)
        lines[k] = lines.get(k, 0) + 1
    medication: dict[int, Hashable] = {}
    seen: dict[Hashable, int] = {}
    for o in orders:
        k = id(o.identity)
        if k not in medication:
            m = medication[k] = _medication_key(o)
            seen[m] = seen.get(m, 0) + lines[k]
    return [o for o in orders if seen[medication[id(o.identity)]] > 1], medication


def _substance_pairs(groups: list[Group]) -> list[tuple[int, int]]:
    """Positions ``(i, j)``, ``i <= j``, of the groups (one medication each) sharing a substance, a
    group with itself when it has two lines, in order: the pairs DU001 asks about."""
    holders: dict[str, list[int]] = {}
    found: set[tuple[int, int]] = set()
    for i, g in enumerate(groups):
        if len(g.lines) > 1:
            found.add((i, i))
        for key in g.lines[0].order.identity.substance_keys:  # type: ignore[union-attr]  # identified lines
            holders.setdefault(key, []).append(i)
    found.update((at[x], at[y]) for at in holders.values() for x in range(len(at)) for y in range(x + 1, len(at)))
    return sorted(found)


def _sharing_a_substance(orders: Iterable[MedicationOrder]) -> list[MedicationOrder]:
    """The lines with a substance that another line also has, in record order: only they can pair, be
    renewed or renew (a renewal is the same medication), so the others are left out of the pairing."""
    orders = list(orders)
    seen: set[str] = set()
    twice: set[str] = set()
    for o in orders:
        keys = o.identity.substance_keys  # type: ignore[union-attr]  # identified lines only
        twice |= seen & keys
        seen |= keys
    return [o for o in orders if not twice.isdisjoint(o.identity.substance_keys)]  # type: ignore[union-attr]


def _same_substance_findings(call: RuleCall, a: MedicationOrder, b: MedicationOrder, shared: list[str],
                             specific: dict[str, RiskRow], generic: RiskRow | None,
                             lines: tuple[tuple[MedicationOrder, ...], int] | None = None) -> Iterator[Finding]:
    """Findings for two concurrent lines; ``lines`` (every line concerned, number of overlapping pairs)
    when a pair of products is reported once for many pairs of lines."""
    for key in shared:
        row = specific.get(key) or generic
        if row is None:
            continue
        params: dict[str, Param] = {"substance": a.substance_name(key), "label_a": a.label, "label_b": b.label}
        evidence: dict[str, Any] = {"substance": key, "basis": row.id, "lines": [a.label, b.label]}
        implicated = _implicated(a, b, lines, evidence)
        extra = (_total_dose(call, a, b, key, evidence),) if lines is None else ()
        yield call.finding(
            message=Message("DU001", params, extra + _many_lines(lines)),
            implicated=implicated, key=key, severity=row.severity,
            source=row.source, evidence=evidence, suggestion={"action": "remove-duplicate"},
        )


@rule(
    "DU002",
    name="same-class-twice",
    category="duplicate",
    severity="warning",
    source=STOPP_SOURCE,
    referentials=("iatrogenic-rules", "ansm-thesaurus", "therapeutic-classes"),
    trigger=_two_lines,
)
def same_class(call: RuleCall) -> Iterator[Finding]:
    """Two concurrent drugs of one therapeutic class.

    Two different substances of the same class on two prescription lines taken over the same period:
    adverse effects add up without added benefit. A class is a WHO ATC chemical subgroup (level 4:
    two benzodiazepines N05BA, two proton-pump inhibitors A02BC, two SSRIs N06AB, two ACE inhibitors
    C09AA …), or one of the wider classes STOPP A3 is coded for (two NSAIDs including aspirin, two
    anticoagulants …, rows of ``patient-risks.tsv``, reported first). Not reported: the standard
    combinations of ``class-duplicates.json`` (e.g. aspirin with a P2Y12 inhibitor, an as-needed
    short-acting with a long-acting beta-2 agonist), each with its reason and source; the scope limits
    of that file (« other » subgroups, vitamins, solutions); a pair the ANSM thesaurus already grades
    (IX001, e.g. two NSAIDs), left to the interaction finding so it is reported once.

    Source: STOPP/START v2 criterion A3 (any duplicate drug-class prescription), classes coded by
    Huibers et al. 2019; WHO ATC chemical subgroups (index 2026); see
    ``referentials/iatrogenic/class-duplicates.json``.
    """
    data: IatrogenicRules = call.refs.get("iatrogenic-rules")
    th: Thesaurus = call.refs.get("ansm-thesaurus")
    classes: TherapeuticClasses = call.refs.get("therapeutic-classes")
    classed, pairs = _sharing_a_class(data, classes, call.identified_orders(prescriptions_only=True))
    if not pairs:
        return
    groups = group_lines(classed, call.as_of, key=lambda o: id(o.identity))

    def hits_of(a: MedicationOrder, b: MedicationOrder) -> _ClassHits:
        return _class_hits(data, classes, a.identity, b.identity)  # type: ignore[arg-type]  # identified lines

    def wanted(ga: Group, gb: Group) -> bool:
        a, b = ga.lines[0].order, gb.lines[0].order
        hits, atc_hits = hits_of(a, b)
        return bool(hits or atc_hits) and not _graded(th, a.identity, b.identity)  # IX001 reports a graded pair

    def findings(a: MedicationOrder, b: MedicationOrder,
                 lines: tuple[tuple[MedicationOrder, ...], int] | None = None) -> list[Finding]:
        hits, atc_hits = hits_of(a, b)
        out = [_class_finding(call, row, a, b, ka[0], kb[0], lines) for row, ka, kb in hits]
        for group, (sa, atc_a), (sb, atc_b) in atc_hits:
            if classes.exception(a, atc_a, b, atc_b) is None:  # as-needed or not is a line's own fact
                out.append(_subgroup_finding(call, classes, group, a, b, sa, sb, lines))
        return out

    results: list[tuple[tuple[int, int], list[Finding]]] = []
    for pp in product_pairs(groups, wanted, same_product=False, focus=call.settings.focus, pairs=pairs):
        if pp.collapsed:  # judged on each pair of line signatures ("as needed" is a line's own fact)
            involved = pp.lines()
            lines = (tuple(ln.order for ln in involved), pp.count)
            once: dict[str, Finding] = {}
            for sa, sb in signature_pairs(pp):
                for x, y in judged_pairs(sa, sb):
                    for f in findings(x.order, y.order, lines):
                        once.setdefault(f.fingerprint, f)
            results.append(((involved[0].index, involved[1].index), list(once.values())))
            continue
        for x, y in pp.pairs():
            results.append(((x.index, y.index), findings(x.order, y.order)))
    results.sort(key=lambda f: f[0])
    for _, found in results:
        yield from found


_Classed = tuple[dict[int, tuple[RiskRow, tuple[str, ...]]], dict[str, tuple[str, str]], tuple[Hashable, ...]]
_ClassHits = tuple[list[tuple[RiskRow, tuple[str, ...], tuple[str, ...]]], list[tuple[str, tuple[str, str], tuple[str, str]]]]


@by_identities
def _classed(data: IatrogenicRules, classes: TherapeuticClasses, ident: MedicationIdentity) -> _Classed:
    """A medication's STOPP class rows (``id(row)`` -> (row, its substance keys the row names)), its
    ATC subgroups (:func:`_subgroups`) and both as labels: two medications make a pair only if they
    share a label (the same row, the same subgroup)."""
    rows = {id(row): (row, keys) for row, keys in data.matching_identity("duplicate-class", ident)}
    subgroups = _subgroups(classes, ident)
    return rows, subgroups, (*(("row", rid) for rid in rows), *(("atc", code) for code in subgroups))


def _sharing_a_class(data: IatrogenicRules, classes: TherapeuticClasses, orders: Iterable[MedicationOrder]
                     ) -> tuple[list[MedicationOrder], list[tuple[int, int]]]:
    """The lines whose medication shares a class row or an ATC subgroup with another medication of the
    record, in record order, and the pairs of such medications as positions ``(i, j)``, ``i < j``, of
    the medications in order of their first line (the groups of :func:`group_lines`), in order. The
    lines of one medication never make a DU002 pair (the same row names the same substances, the same
    subgroup the same substance), and most lines share no class with another: they are not grouped."""
    at: dict[int, int] = {}  # id(identity) -> its position
    unclassed: set[int] = set()
    holders: dict[Hashable, list[int]] = {}
    classed: list[MedicationOrder] = []
    for o in orders:
        k = id(o.identity)
        if k not in at:
            if k in unclassed:
                continue
            labels = _classed(data, classes, o.identity)[2]  # type: ignore[arg-type]  # identified lines only
            if not labels:
                unclassed.add(k)
                continue
            at[k] = position = len(at)
            for label in labels:
                holders.setdefault(label, []).append(position)
        classed.append(o)
    pairs = sorted({(held[x], held[y]) for held in holders.values() if len(held) > 1
                    for x in range(len(held)) for y in range(x + 1, len(held))})
    kept = sorted({p for pair in pairs for p in pair})
    if len(kept) < len(at):
        new = {old: i for i, old in enumerate(kept)}
        pairs = [(new[x], new[y]) for x, y in pairs]
        classed = [o for o in classed if at[id(o.identity)] in new]
    return classed, pairs


@by_identities
def _class_hits(data: IatrogenicRules, classes: TherapeuticClasses, a: MedicationIdentity,
                b: MedicationIdentity) -> _ClassHits:
    """STOPP class rows two medications share (each with the substance keys it names in each), else
    the ATC subgroups they share; never the same substance twice (DU001's)."""
    rows_a, groups_a, _ = _classed(data, classes, a)
    in_b, groups_b, _ = _classed(data, classes, b)
    hits = [(row, ka, in_b[rid][1]) for rid, (row, ka) in rows_a.items()
            if rid in in_b and not set(ka) & set(in_b[rid][1])]
    if hits:
        return hits, []  # the wider STOPP class already names this pair
    shared_keys = a.substance_keys & b.substance_keys
    atc_hits = [(g, groups_a[g], groups_b[g]) for g in sorted(groups_a.keys() & groups_b.keys())
                if groups_a[g][0] != groups_b[g][0] and not {groups_a[g][0], groups_b[g][0]} & shared_keys]
    return hits, atc_hits


@by_identities
def _subgroups(classes: TherapeuticClasses, ident: MedicationIdentity | None) -> dict[str, tuple[str, str]]:
    """The line's ATC chemical subgroups DU002 reports: subgroup -> (substance key, level-5 code)."""
    out: dict[str, tuple[str, str]] = {}
    for s in ident.substances if ident is not None else ():
        for code in s.atc:
            group = classes.subgroup(code)
            if group is not None and group not in out:
                out[group] = (s.key, code)
    return out


def _subgroup_finding(call: RuleCall, classes: TherapeuticClasses, group: str, a: MedicationOrder,
                      b: MedicationOrder, ka: str, kb: str,
                      lines: tuple[tuple[MedicationOrder, ...], int] | None = None) -> Finding:
    na, nb = a.substance_name(ka), b.substance_name(kb)
    name = classes.names[group]
    params: dict[str, Param] = {"class_name": name, "group": group, "first": na, "second": nb,
                                "label_a": a.label, "label_b": b.label}
    evidence: dict[str, Any] = {"class": f"atc:{group}", "atc_subgroup": group, "class_name": name,
                                "substances": sorted((ka, kb)), "products": [a.label, b.label]}
    implicated = _implicated(a, b, lines, evidence)
    return call.finding(
        message=Message("DU002-atc", params, _many_lines(lines)),
        implicated=implicated, key=f"atc:{group}:{'+'.join(sorted((ka, kb)))}",
        source=classes.basis, evidence=evidence, suggestion={"action": "keep-one"})


# Thesaurus classes grouping drugs by a shared effect (hyperkalaemia, sedation …), not by
# pharmacological class: an entry between two of them grades the accumulation of that effect, not
# the duplication DU002 reports.
EFFECT_CLASSES = frozenset({
    "hyperkaliemiants", "hypokaliemiants", "hyponatremiants", "bradycardisants",
    "substances susceptibles de donner des torsades de pointes",
    "torsadogenes sauf arsenieux antiparasitaires neuroleptiques methadone",
})


def _effect_class(node: str) -> bool:
    return node in EFFECT_CLASSES or node.startswith("medicaments ")


@by_identities
def _graded(th: Thesaurus, a: MedicationIdentity | None, b: MedicationIdentity | None) -> bool:
    """:func:`_graded_by_thesaurus` of two lines from their medications (once per pair of them)."""
    return _graded_by_thesaurus(th, _Identified(a), _Identified(b))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class _Identified:
    identity: MedicationIdentity | None


def _graded_by_thesaurus(th: Thesaurus, a: MedicationOrder, b: MedicationOrder) -> bool:
    """True when a thesaurus entry names the two lines' substances or classes themselves (not two
    effect classes): IX001 then reports the pair with the thesaurus level."""
    if a.identity is None or b.identity is None:
        return False
    return any(not (_effect_class(m.entry.a) and _effect_class(m.entry.b))
               for sa in a.identity.substances for sb in b.identity.substances
               for m in th.matches(sa.key, sb.key, sa.atc, sb.atc))


def _class_finding(call: RuleCall, row: RiskRow, a: MedicationOrder, b: MedicationOrder, ka: str, kb: str,
                   lines: tuple[tuple[MedicationOrder, ...], int] | None = None) -> Finding:
    na, nb = a.substance_name(ka), b.substance_name(kb)
    params: dict[str, Param] = {"class_label": Localized(row.label_fr, row.label_en), "first": na, "second": nb,
                                "label_a": a.label, "label_b": b.label}
    evidence: dict[str, Any] = {"class": row.id, "atc_prefixes": list(row.atc), "substances": sorted((ka, kb))}
    implicated = _implicated(a, b, lines, evidence)
    return call.finding(
        message=Message("DU002", params, _many_lines(lines)),
        implicated=implicated, key=f"{row.id}:{'+'.join(sorted((ka, kb)))}",
        severity=row.severity, source=row.source, evidence=evidence, suggestion={"action": "keep-one"},
    )


@rows_of("DU002")
def _class_rows(refs: Referentials) -> list[str]:
    data: IatrogenicRules = refs.get("iatrogenic-rules")
    classes: TherapeuticClasses = refs.get("therapeutic-classes")
    out = [f"{r.id}: {r.label_en} — {r.source.cite()}" for r in data.kind("duplicate-class")]
    out.append(f"ATC chemical subgroups: {len(classes.names)} ({', '.join(sorted(classes.names))}) — "
               f"{classes.basis.cite()}")
    out += [f"not reported: {e.id} ({e.subgroup}): {e.reason_en} — {e.source.cite()}" for e in classes.exceptions]
    return out
