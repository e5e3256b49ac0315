"""Evaluation of the conditions of multi-level thesaurus entries on a patient's data.

Each condition evaluates to ``True`` (applies), ``False`` (does not apply) or ``None`` (the data
needed is not in the record). :func:`settle` picks the level: the highest level whose condition
holds, provided every higher level is ruled out; when a higher level cannot be ruled out it is
kept, and the datum that would settle it is named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from checker import criteria
from checker.criteria import CriteriaError, Local, Node, Otherwise, Verdict, aspirin_category, mentions_route
from checker.criteria.thesaurus import ASPIRIN
from checker.iatrogenic.doses import DailyDose, daily_dose
from checker.iatrogenic.thesaurus import LEVEL_RANK, TOPICAL_ROUTE, Entry, Thesaurus
from checker import facts
from checker.facts import FactTables, Indication
from checker.memo import by_identity
from checker.model import Concept, MedicationIdentity, MedicationOrder, PatientRecord
from checker.text import fold

__all__ = ["ASPIRIN", "aspirin_category"]  # read from checker.criteria

# Condition code tables (acute coronary syndrome, peptic ulcer, heart failure, hepatic failure,
# hypokalaemia) live in referentials/facts/clinical-facts.json and are read through the facts layer;
# the conditions themselves are criteria nodes (checker.criteria), judged by its one evaluator.


_ORAL_FORM = re.compile(r"\b(comprimes?|gelules?|sachets?|capsules?|tablets?|pastilles?|sirop|syrup|"
                       r"suspension buvable|solution buvable|buvable|orodispersibles?|effervescents?|oral|orale|"
                       r"per os|lyocs?|granules?)\b")
_INJECTABLE_FORM = re.compile(r"\b(injectables?|injection|perfusion|infusion|intraveineuse|ampoules?|flacon pour)\b")
_IV = {"47625008", "20045000", "IV", "intravenous"}
_ORAL = {"26643006", "20053000", "PO", "oral"}


def route_of(order: MedicationOrder) -> str | None:
    """``iv``, ``oral`` or another folded route; ``None`` when unknown."""
    for d in order.dosages:
        if d.route is None:
            continue
        codes = {c.code for c in d.route.codings}
        if codes & _IV:
            return "iv"
        if codes & _ORAL:
            return "oral"
        text = " ".join(fold(t) for t in d.route.all_texts())
        if "intraveine" in text or re.search(r"\biv\b", text) or "intravenous" in text:
            return "iv"
        if "oral" in text or "per os" in text or "buccal" in text:
            return "oral"
        if text:
            return text
    return _route_without_dosage(order.identity, order.medication)


@by_identity
def _route_without_dosage(ident: MedicationIdentity | None, medication: Concept) -> str | None:
    """The route told by the identified product or, failing that, by the dose form's words."""
    if ident is not None and ident.route:
        r = fold(ident.route)
        if "intraveine" in r or "intravenous" in r:
            return "iv"
        if "orale" in r or r == "oral":
            return "oral"
        return r
    # no stated route: a dose form that can only be swallowed (tablet, capsule, sachet …) is oral
    words = " ".join(fold(t) for t in medication.all_texts())
    if ident is not None and getattr(ident, "form", None):
        words += " " + fold(str(ident.form))
    if _INJECTABLE_FORM.search(words):
        return None
    if _ORAL_FORM.search(words):
        return "oral"
    return None


# --- local routes (thesaurus p. 2: "les voies locales ne sont pas concernées …") ------------------
# Route codes → the route names of the encoding's ``local_routes``. EDQM Standard Terms: 20001000
# auricular, 20003000 cutaneous, 20004000 dental, 20014000 gingival, 20049000 nasal, 20051000 ocular,
# 20072000 vaginal (EDQM list as republished by hl7-eu/unicom-ig and the Swiss CH EMED ConceptMap
# CdTyp26 → EDQM; 20003000 is "Voie cutanée" in the ANS ePrescription examples). SNOMED CT route values
# (FHIR ValueSet route-codes; HL7 R4 examples medicationrequest0329/0330/0339): 54485002 ophthalmic,
# 46713006 nasal, 16857009 vaginal, 10547007 otic; 6064005 and 359540000 "topical", a surface route
# that does not say which one (TOPICAL).
TOPICAL = TOPICAL_ROUTE
LOCAL_ROUTE_CODES: dict[str, str] = {
    "20001000": "auriculaire", "20003000": "cutanee", "20004000": "dentaire", "20014000": "gingivale",
    "20049000": "nasale", "20051000": "ophtalmique", "20072000": "vaginale",
    "54485002": "ophtalmique", "46713006": "nasale", "16857009": "vaginale", "10547007": "auriculaire",
    "6064005": TOPICAL, "359540000": TOPICAL,
}
# Routes that reach the blood: EDQM 20066000 subcutaneous, 20070000 transdermal (ANS ePrescription
# examples), 20030000 intradermal, 20002500 buccal, 20067000 sublingual; SNOMED CT 34206005 subcutaneous,
# 45890007 transdermal (besides the IV and oral codes above).
_SYSTEMIC_CODES = _IV | _ORAL | {"20066000", "20070000", "20030000", "20002500", "20067000", "34206005", "45890007"}
# Words, on folded text. Systemic words are looked for first ("sous-cutanée" is not "cutanée").
_SYSTEMIC_WORDS = re.compile(r"sous cutane|subcutane|transderm|transcutane|percutane|intraderm|\boral|per os|"
                             r"buccal|sublingu|intraveine|intravenous|intramuscul|rectal|inhal|\b(iv|im|sc)\b")
_LOCAL_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ophtalmique", re.compile(r"ophtalm|ophthalm|oculaire|\bocular|collyre|eye drop")),
    ("nasale", re.compile(r"\b(intra|endo)?nasale?s?\b")),
    ("vaginale", re.compile(r"vaginal")),
    ("auriculaire", re.compile(r"auricul|\botiques?\b|\botic\b")),
    ("gingivale", re.compile(r"gingiv")),
    ("dentaire", re.compile(r"dentaire|\bdental")),
    ("cutanee", re.compile(r"\bcutane")),
    (TOPICAL, re.compile(r"\btopi(que|ques|cal)\b|usage local|application locale|voie locale|\blocal use")),
)
# Skin dose forms (BDPM forms "gel", "crème", "pommade", "emplâtre médicamenteux(se)"); meaningful only
# where the substance's skin forms are all cutaneous (see the NSAID rule in checker.rules.interactions).
_SKIN_FORM = re.compile(r"\b(gel|gels|creme|cremes|cream|pommade|pommades|ointment|emplatres?|plasters?)\b")
_TRANSDERMAL = re.compile(r"transderm|\bpatchs?\b|dispositif")


def _local_of_text(text: str) -> str | None:
    """The thesaurus local route a folded route or product text names; None when it names a systemic
    route or none."""
    if not text or _SYSTEMIC_WORDS.search(text):
        return None
    return next((name for name, pattern in _LOCAL_WORDS if pattern.search(text)), None)


def _product_words(order: MedicationOrder) -> str:
    ident = order.identity
    words = [fold(t) for t in order.medication.all_texts()]
    if ident is not None:
        words += [fold(ident.form), fold(ident.product)]
    return " ".join(w for w in words if w)


def local_route(order: MedicationOrder) -> str | None:
    """The thesaurus local route of a line (``cutanee``, ``ophtalmique`` …, or :data:`TOPICAL`), from
    the stated route (codes, then words), else the identified specialty's BDPM routes, else route
    words of the product's name; None for systemic or unknown routes. Transdermal products are
    systemic whatever the line says."""
    ident = order.identity
    bdpm = fold(ident.route) if ident is not None and ident.route else ""
    if _TRANSDERMAL.search(bdpm) or _TRANSDERMAL.search(_product_words(order)):
        return None
    for d in order.dosages:
        if d.route is None:
            continue
        codes = [c.code.strip() for c in d.route.codings]
        known = next((LOCAL_ROUTE_CODES[c] for c in codes if c in LOCAL_ROUTE_CODES), None)
        if known is not None:
            return known
        if any(c in _SYSTEMIC_CODES for c in codes):
            return None
        return _local_of_text(" ".join(fold(t) for t in d.route.all_texts()))
    if bdpm:
        names = {_local_of_text(part.strip()) for part in bdpm.split(";")}
        if None in names:
            return None
        return names.pop() if len(names) == 1 else TOPICAL
    return _local_of_text(_product_words(order))


def skin_form(order: MedicationOrder) -> bool:
    """True when no route is stated and the product's name or BDPM form is a skin form (gel, cream,
    ointment, medicated plaster) with no word of any route."""
    ident = order.identity
    if any(d.route is not None for d in order.dosages) or (ident is not None and ident.route):
        return False
    words = _product_words(order)
    if _SYSTEMIC_WORDS.search(words) or _TRANSDERMAL.search(words) or _ORAL_FORM.search(words):
        return False
    if any(pattern.search(words) for name, pattern in _LOCAL_WORDS if name != "cutanee"):
        return False
    return bool(_SKIN_FORM.search(words))


class LineReading:
    """How the criteria read a prescription line (its route, its route name, its daily dose): the
    part of :class:`checker.criteria.Context` every medication context shares."""

    __slots__ = ()

    def route_of(self, line: MedicationOrder) -> str | None:
        return route_of(line)

    def route_name(self, line: MedicationOrder) -> str | None:
        return route_name(line)

    def daily_dose(self, line: MedicationOrder, key: str) -> DailyDose | None:
        return daily_dose(line, key)


@dataclass(slots=True)
class PairContext(LineReading):
    """The two lines of a pair as the entry sees them (``first`` on the entry's A side)."""

    thesaurus: Thesaurus
    record: PatientRecord
    as_of: date
    first_key: str
    second_key: str
    first: MedicationOrder
    second: MedicationOrder
    tables: FactTables
    day: date
    aspirin_bands: tuple[dict[str, Any], ...] = ()
    """The thesaurus' aspirin dose bands (``referentials/iatrogenic/aspirin-dose-bands.json``)."""
    """The day the pair is judged at: the later of the two orders' days (when the combination began)."""

    # the criteria context (checker.criteria.Context): the pair's two lines, the first on the A side
    def reasons(self) -> list[Concept]:
        """The reasons of the two orders speak for the patient too."""
        return [r for o in (self.first, self.second) for r in o.reasons]

    def indications(self) -> list[Indication]:
        return [i for o in (self.first, self.second) for i in facts.indications(self.record, o, self.day, self.tables)]

    def lines(self) -> tuple[tuple[str, MedicationOrder], ...]:
        return ((self.first_key, self.first), (self.second_key, self.second))

    def nodes_for(self, key: str) -> frozenset[str]:
        return self.thesaurus.nodes_for(key)

    def closure(self, key: str) -> dict[str, tuple[str, ...]]:
        return self.thesaurus.closure(key)

    def local(self, node: Local) -> Verdict:
        raise CriteriaError(f"a thesaurus condition has no {node.kind!r} leaf")


def evaluate(cond: Node, ctx: PairContext) -> tuple[bool | None, str | None]:
    """(result, datum) for one condition; ``datum`` names what is missing when result is None."""
    verdict = criteria.evaluate(cond, ctx)
    return verdict.value, verdict.datum




# Route names of the thesaurus' route gates (referentials/thesaurus/hand-encoded.json, route_phrases),
# read from a line's route: EDQM Standard Terms codes as used in the ANS ePrescription examples
# (20035000 "Voie intramusculaire", 20066000 "Voie sous-cutanée", 20020000 "Voie inhalée"), then the
# folded words of route_of (first match wins: "sous-cutanée" before "cutanée").
_ROUTE_CODES = {"20035000": "im", "20066000": "sc", "34206005": "sc", "20020000": "inhaled"}
_ROUTE_NAMES: tuple[tuple[str, re.Pattern[str]], ...] = tuple((name, re.compile(words)) for name, words in (
    ("sc", r"sous cutane|subcutane|\bsc\b"), ("transdermal", r"transderm|percutane|transcutane"),
    ("intra-articular", r"intra ?articul"), ("im", r"intramuscul|\bim\b"),
    ("iv", r"intraveine|intravenous|\biv\b|perfusion"), ("sublingual", r"sublingu"),
    ("dental", r"dentaire|\bdental|gingiv"), ("oral", r"\boral|per os|buccal"), ("rectal", r"rectal"),
    ("inhaled", r"inhal"), ("nasal", r"nasal"), ("vaginal", r"vaginal"),
    ("ocular", r"ophtalm|ophthalm|oculaire|\bocular|collyre"), ("cutaneous", r"\bcutane|topi|\blocal")))
ROUTE_NAMES = frozenset(name for name, _ in _ROUTE_NAMES)


def route_name(order: MedicationOrder) -> str | None:
    """The route of a line as a route gate names it (``iv``, ``im``, ``sc``, ``oral``, ``rectal`` …);
    None when no route is known or its words are not understood."""
    for d in order.dosages:
        if d.route is not None:
            hit = next((_ROUTE_CODES[c.code] for c in d.route.codings if c.code in _ROUTE_CODES), None)
            if hit is not None:
                return hit
    got = route_of(order)
    if got is None:  # no route stated: a dose form made for one route only ("suspension pour inhalation")
        words = _product_words(order)
        if _INJECTABLE_FORM.search(words):
            return None
        return next((name for name, pattern in _FORM_ROUTES if pattern.search(words)), None)
    if got in ("iv", "oral"):
        return got
    return next((name for name, pattern in _ROUTE_NAMES if pattern.search(got)), None)


_FORM_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = tuple((name, re.compile(words)) for name, words in (
    ("inhaled", r"\binhal|nebulis"), ("rectal", r"suppositoire|lavement|\brectal"), ("transdermal", r"transderm"),
    ("sublingual", r"sublingu"), ("ocular", r"collyre")))


@dataclass(frozen=True, slots=True)
class Settled:
    """The level retained for one entry and whether the data settled it."""

    level: str
    settled: bool
    missing: tuple[str, ...]  # datum codes that would settle it
    all_ruled_out: bool = False  # every condition was evaluated false (lowest level kept)
    dropped: bool = False  # the entry does not concern this pair (e.g. oral erythromycin)


def settle(entry: Entry, ctx: PairContext) -> Settled:
    """Choose the level of ``entry`` for this pair (see module docstring)."""
    ordered = sorted(entry.levels, key=lambda lv: -LEVEL_RANK[lv.level])
    gate_missing: tuple[str, ...] = ()
    if entry.gate_criterion is not None:
        ok, datum = evaluate(entry.gate_criterion, ctx)
        if ok is False:
            return Settled(ordered[-1].level, True, (), all_ruled_out=True, dropped=True)
        if ok is None:
            gate_missing = (datum or "route",)
    result = _settle_levels(entry, ordered, ctx)
    if gate_missing and not result.dropped:
        return Settled(result.level, False, tuple(dict.fromkeys(result.missing + gate_missing)))
    return result


def _settle_levels(entry: Entry, ordered: list[Any], ctx: PairContext) -> Settled:
    if len(ordered) == 1:
        return Settled(ordered[0].level, True, ())
    fallback = next((lv for lv in ordered if isinstance(lv.criterion, Otherwise)), None)
    if fallback is not None:
        # "otherwise" applies when every other level is ruled out
        others = [(lv, *evaluate(lv.criterion, ctx)) for lv in ordered if lv is not fallback]
        for lv, ok, datum in others:
            if ok:
                return Settled(lv.level, True, ())
        unknown = [(lv, datum) for lv, ok, datum in others if ok is None]
        if not unknown:
            return Settled(fallback.level, True, ())
        top = max([fallback.level] + [lv.level for lv, _ in unknown], key=LEVEL_RANK.__getitem__)
        if top == fallback.level:
            return Settled(top, True, ())
        return Settled(top, False, tuple(dict.fromkeys(d or "other" for _, d in unknown)))
    for lv in ordered:
        ok, datum = evaluate(lv.criterion, ctx)
        if ok:
            return Settled(lv.level, True, ())
        if ok is None:
            missing = [datum or "other"]
            return Settled(lv.level, False, tuple(dict.fromkeys(missing)))
    # every condition ruled out: when a route ruled them out the entry does not concern the pair
    # (e.g. oral forms where only IV ones are listed); otherwise the pair is listed: lowest level
    dropped = any(mentions_route(lv.criterion) for lv in ordered)
    return Settled(ordered[-1].level, True, (), all_ruled_out=True, dropped=dropped)
