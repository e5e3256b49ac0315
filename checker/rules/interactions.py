"""Interactions (IX…): drug–drug interactions listed in the ANSM thesaurus."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from checker import facts
from checker.facts import FactTables
from checker.findings import Finding, Severity, Source
from checker.iatrogenic.conditions import (
    DATUM_EN,
    DATUM_FR,
    PairContext,
    Settled,
    local_route,
    route_of,
    settle,
    skin_form,
)
from checker.iatrogenic.thesaurus import LEVEL_NAMES_EN, LEVEL_NAMES_FR, LEVEL_RANK, Match, Thesaurus
from checker.memo import by_identities
from checker.model import Concept, Dosage, MedicationIdentity, MedicationOrder
from checker.periods import effective_interval
from checker.registry import RuleCall, rule
from checker.rules.pairing import Group, ProductPair, group_lines, judged_pairs, product_pairs, signature_pairs

THESAURUS_SOURCE = Source(
    "ANSM, Thésaurus des interactions médicamenteuses, septembre 2023",
    "https://ansm.sante.fr/documents/reference/thesaurus-des-interactions-medicamenteuses-1",
    "2023-09",
)

SEVERITY_OF_LEVEL = {"CI": Severity.CRITICAL, "AD": Severity.WARNING, "PE": Severity.INFO, "APEC": Severity.INFO}

# Our own wording of the risk themes detected in each entry (codes assigned at build time).
THEME_FR = {
    "torsades": "risque de torsades de pointes",
    "qt-rhythm": "risque de troubles du rythme",
    "bleeding": "risque hémorragique accru",
    "hyperkalaemia": "risque d'hyperkaliémie",
    "serotonin": "risque de syndrome sérotoninergique",
    "myopathy": "risque d'atteinte musculaire (rhabdomyolyse)",
    "bradycardia": "risque de bradycardie ou de trouble de conduction",
    "hypotension": "risque d'hypotension",
    "sedation": "sédation et dépression respiratoire majorées",
    "renal": "risque d'atteinte rénale",
    "liver": "risque d'atteinte hépatique",
    "haematological": "toxicité hématologique majorée",
    "hypoglycaemia": "risque d'hypoglycémie",
    "seizures": "abaissement du seuil épileptogène",
    "ischaemia": "risque de vasoconstriction et d'ischémie",
    "hyponatraemia": "risque d'hyponatrémie",
    "lithium": "variation de la lithémie",
    "digoxin": "variation de la digoxinémie",
    "immunosuppression": "risque infectieux lié à l'immunodépression",
    "contraception": "risque d'échec de la contraception",
    "increased-exposure": "exposition accrue à l'un des médicaments (surdosage possible)",
    "decreased-efficacy": "baisse de l'exposition ou de l'efficacité de l'un des médicaments",
    "absorption": "absorption digestive modifiée",
    "additive": "effets indésirables additifs",
    "other": "interaction décrite par le thésaurus",
}
THEME_EN = {
    "torsades": "risk of torsades de pointes",
    "qt-rhythm": "risk of arrhythmia",
    "bleeding": "increased bleeding risk",
    "hyperkalaemia": "risk of hyperkalaemia",
    "serotonin": "risk of serotonin syndrome",
    "myopathy": "risk of muscle damage (rhabdomyolysis)",
    "bradycardia": "risk of bradycardia or conduction disorder",
    "hypotension": "risk of hypotension",
    "sedation": "increased sedation and respiratory depression",
    "renal": "risk of kidney injury",
    "liver": "risk of liver injury",
    "haematological": "increased haematological toxicity",
    "hypoglycaemia": "risk of hypoglycaemia",
    "seizures": "lowered seizure threshold",
    "ischaemia": "risk of vasoconstriction and ischaemia",
    "hyponatraemia": "risk of hyponatraemia",
    "lithium": "change in lithium levels",
    "digoxin": "change in digoxin levels",
    "immunosuppression": "infection risk from immunosuppression",
    "contraception": "risk of contraceptive failure",
    "increased-exposure": "higher exposure to one of the drugs (possible overdose)",
    "decreased-efficacy": "lower exposure or efficacy of one of the drugs",
    "absorption": "altered gut absorption",
    "additive": "additive adverse effects",
    "other": "interaction described by the thesaurus",
}
CONDUCT_FR = {
    "CI": "ne pas associer ; choisir une alternative",
    "AD": "éviter l'association ; si elle est indispensable, la surveiller étroitement",
    "PE": "association possible en appliquant les précautions prévues (surveillance, adaptation de dose)",
    "APEC": "tenir compte du risque dans la décision et le suivi",
}
CONDUCT_EN = {
    "CI": "do not combine; choose an alternative",
    "AD": "avoid the combination; if it cannot be avoided, monitor closely",
    "PE": "possible with the precautions the thesaurus sets (monitoring, dose adjustment)",
    "APEC": "take the risk into account when deciding and monitoring",
}


@dataclass(slots=True)
class PairResult:
    """Everything found for one pair of prescription lines."""

    first: MedicationOrder
    second: MedicationOrder
    items: list[tuple[Match, Settled]]
    lines: tuple[MedicationOrder, ...] = ()
    """Every line concerned, when a pair of products is reported once for many pairs of lines."""
    line_pairs: int = 1

    def best(self) -> tuple[Match, Settled]:
        """The item that sets the finding's level.

        A class entry whose levels depend on circumstances the thesaurus leaves to the specific
        entries ("unstated") gives way to any other entry for the pair, and every unsettled class
        entry gives way to a settled entry naming both substances, as the thesaurus' class headings
        direct; otherwise the highest level wins.
        """
        vague = [it for it in self.items if not it[1].settled and set(it[1].missing) <= {"unstated"}]
        direct_settled = any(it[1].settled and len(it[0].path_first) == 1 and len(it[0].path_second) == 1
                             for it in self.items)
        if direct_settled:  # an entry naming both substances, settled, outranks unsettled class entries
            vague += [it for it in self.items if not it[1].settled]
        pool = [it for it in self.items if it not in vague] or self.items
        return max(pool, key=lambda it: (LEVEL_RANK[it[1].level], it[1].settled))


def _display(th: Thesaurus, node: str) -> str:
    ent = th.entities.get(node)
    return ent["name"].lower() if ent else node


def _path_text(th: Thesaurus, path: tuple[str, ...]) -> list[str]:
    return [_display(th, n) for n in path]


# Heading of the torsadogenic class (ANSM thesaurus 2023, l. 18240): for erythromycin and vincamine
# only the intravenous forms are concerned.
TORSADOGENIC_IV_ONLY = frozenset({"erythromycine", "vincamine"})


def _torsadogenic_by_route_only(m: Match, first: MedicationOrder, second: MedicationOrder) -> bool:
    """True when a side joins a torsadogenic class only as erythromycin/vincamine by a known non-IV
    route (the match does not concern the pair)."""
    for path, line in ((m.path_first, first), (m.path_second, second)):
        if path and path[0] in TORSADOGENIC_IV_ONLY and any("torsad" in n for n in path[1:]):
            route = route_of(line)
            if route is not None and route != "iv":
                return True
    return False


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
    lines: list[MedicationOrder] = []
    for o in call.identified_orders():
        ident = o.identity
        assert ident is not None  # identified_orders() yields identified lines only
        if not th.local_only(line_local_route(th, o, ident), ident.substance_keys, ident.atc_codes):
            lines.append(o)
    groups = group_lines(lines, call.as_of, key=lambda o: id(o.identity))

    def wanted(a: Group, b: Group) -> bool:
        ia, ib = a.lines[0].order.identity, b.lines[0].order.identity
        assert ia is not None and ib is not None
        return bool(_pair_matches(th, ia, ib) or _pair_matches(th, ib, ia))

    results: list[tuple[tuple[int, int], PairResult]] = []
    for pp in product_pairs(groups, wanted):
        if pp.collapsed:
            result = _collapsed(call, th, pp)
            if result is not None:
                results.append(result)
            continue
        for x, y in pp.pairs():
            one = _pair_result(call, th, x.order, y.order)
            if one is not None:
                results.append(((x.index, y.index), one))
    results.sort(key=lambda f: f[0])
    for _, pair in results:
        yield pair


def _pair_result(call: RuleCall, th: Thesaurus, a: MedicationOrder, b: MedicationOrder) -> PairResult | None:
    """The entries concerning two concurrent lines (``a`` before ``b`` in the record), settled."""
    assert a.identity is not None and b.identity is not None
    tables: FactTables = call.refs.get("clinical-facts")
    bands = call.refs.get("iatrogenic-rules").aspirin_bands
    items: list[tuple[Match, Settled]] = []
    days = _pair_days(a, b, call.as_of)
    for ka, m in _pair_matches(th, a.identity, b.identity):
        first, second = (a, b) if m.first == ka else (b, a)
        if _torsadogenic_by_route_only(m, first, second):
            continue
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



def _pair_days(a: MedicationOrder, b: MedicationOrder, as_of: date) -> tuple[date, ...]:
    """The day the combination began (the later of the two orders' days), then the last day both lines
    were taken up to ``as_of`` (fixed once the combination has ended, whatever ``as_of``)."""
    day = max(facts.order_day(a, as_of), facts.order_day(b, as_of))
    last = min(effective_interval(a, as_of)[1], effective_interval(b, as_of)[1], as_of)
    return (day, last) if last > day else (day,)


@by_identities
def _pair_matches(th: Thesaurus, a: MedicationIdentity, b: MedicationIdentity) -> tuple[tuple[str, Match], ...]:
    """The thesaurus matches between two identified medications, as ``(substance of a, match)``
    (substances in key order): the same for every pair of lines naming these medications."""
    subs_a = sorted(a.substances, key=lambda s: s.key)
    subs_b = sorted(b.substances, key=lambda s: s.key)
    return tuple((sa.key, m) for sa in subs_a for sb in subs_b for m in th.matches(sa.key, sb.key, sa.atc, sb.atc))


@rule(
    "IX001",
    name="ansm-interaction",
    category="interaction",
    severity="warning",
    source=THESAURUS_SOURCE,
    referentials=("ansm-thesaurus", "clinical-facts", "iatrogenic-rules"),
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
    en = call.settings.lang == "en"
    for pair in interacting_pairs(call, th):
        match, settled = pair.best()
        entry = match.entry
        level = settled.level
        first_line = pair.first if match.first in (pair.first.identity.substance_keys if pair.first.identity else ()) else pair.second
        second_line = pair.second if first_line is pair.first else pair.first
        subst = sorted({match.first, match.second})
        names = LEVEL_NAMES_EN if en else LEVEL_NAMES_FR
        themes = list(entry.themes)
        theme_text = "; ".join((THEME_EN if en else THEME_FR).get(t, t) for t in themes)
        label_a, label_b = first_line.label or match.first, second_line.label or match.second
        na, nb = first_line.substance_name(match.first), second_line.substance_name(match.second)
        summary = f"{names[level].capitalize()}{':' if en else ' :'} {na} + {nb}"
        if len(summary) > 140:
            summary = summary[:137] + "…"
        if en:
            detail = (f"{label_a} and {label_b} are taken over the same period. ANSM thesaurus (2023): "
                      f"{names[level]} — {theme_text}. What to do: {CONDUCT_EN[level]}.")
        else:
            detail = (f"{label_a} et {label_b} sont pris sur la même période. Thésaurus ANSM (2023) : "
                      f"{names[level]} — {theme_text}. Conduite : {CONDUCT_FR[level]}.")
        if entry.multi_level:
            all_levels = ", ".join(names[lv.level] for lv in entry.levels)
            if not settled.settled:
                datum = "; ".join((DATUM_EN if en else DATUM_FR).get(d, d) for d in settled.missing)
                detail += (f" The thesaurus grades this pair {all_levels} depending on circumstances; the record "
                           f"does not state {datum}, so the highest possible level is kept." if en else
                           f" Le thésaurus gradue cette association ({all_levels}) selon les circonstances ; le "
                           f"dossier ne précise pas {datum} : le niveau le plus élevé possible est retenu.")
            elif settled.all_ruled_out:
                detail += (" The circumstances of the higher levels are not met; the lowest level is kept." if en else
                           " Les circonstances des niveaux supérieurs ne sont pas réunies : le niveau le plus bas est retenu.")
        elif not settled.settled:  # a single-level entry limited to circumstances the record does not state
            datum = "; ".join((DATUM_EN if en else DATUM_FR).get(d, d) for d in settled.missing)
            detail += (f" The thesaurus lists this pair only in some circumstances; the record does not state {datum}, "
                       f"so the entry is reported." if en else
                       f" Le thésaurus ne retient cette association que dans certaines circonstances ; le dossier ne "
                       f"précise pas {datum} : l'interaction est signalée.")
        if pair.lines:
            detail += (f" These two products are prescribed in {len(pair.lines)} lines forming {pair.line_pairs} "
                       f"overlapping pairs: reported once, naming every line." if en else
                       f" Ces deux produits figurent sur {len(pair.lines)} lignes formant {pair.line_pairs} paires "
                       f"concomitantes : signalé une seule fois, toutes les lignes citées.")
        evidence: dict[str, Any] = {
            "substances": subst,
            "level": level,
            "level_name": LEVEL_NAMES_FR[level],
            "settled": settled.settled,
            "themes": themes,
            "thesaurus_edition": THESAURUS_SOURCE.edition,
            "entries": _entries_evidence(th, pair),
        }
        if entry.multi_level:
            evidence["levels_in_entry"] = [lv.level for lv in entry.levels]
        if not settled.settled:
            evidence["missing"] = list(settled.missing)
        if pair.lines:
            evidence["line_pairs"] = pair.line_pairs
        yield call.finding(
            summary=summary,
            detail=detail,
            implicated=[o.ref for o in pair.lines] if pair.lines else [pair.first.ref, pair.second.ref],
            key="+".join(subst),
            severity=SEVERITY_OF_LEVEL[level],
            level=level,
            evidence=evidence,
            suggestion={"action": {"CI": "stop-or-replace", "AD": "avoid-or-monitor", "PE": "monitor",
                                   "APEC": "consider"}[level]},
        )


def _entries_evidence(th: Thesaurus, pair: PairResult) -> list[dict[str, Any]]:
    """Every entry and class path explaining the pair, strongest first, without repeats."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, ...]] = set()
    for m, s in sorted(pair.items, key=lambda it: -LEVEL_RANK[it[1].level]):
        key = tuple(sorted((m.entry.a, m.entry.b))) + (m.first, m.second)
        if key in seen:
            continue
        seen.add(key)
        out.append({
            "entry": f"{th.entities.get(m.entry.a, {}).get('name', m.entry.a)} + {m.entry.interactant}",
            "pdf_line": m.entry.line,
            "level": s.level,
            "levels_in_entry": [lv.level for lv in m.entry.levels],
            "conditions_hand_encoded": m.entry.hand_encoded,
            "via": [_path_text(th, m.path_first), _path_text(th, m.path_second)],
        })
    return out
