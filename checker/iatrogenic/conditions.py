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

from checker.iatrogenic.doses import daily_dose
from checker.iatrogenic.thesaurus import LEVEL_RANK, TOPICAL_ROUTE, Entry, Thesaurus
from checker import facts
from checker.facts import FactTables
from checker.memo import by_identity
from checker.model import Concept, MedicationIdentity, MedicationOrder, PatientRecord
from checker.text import fold

ASPIRIN = "acide acetylsalicylique"


# Condition code tables (acute coronary syndrome, peptic ulcer, heart failure, hepatic failure,
# hypokalaemia) live in referentials/facts/clinical-facts.json and are read through the facts layer.

# Elderly: the thesaurus says "sujet âgé" without a figure. HAS's programme "Prescription
# médicamenteuse chez le sujet âgé" (PMSA, since 2006) takes "personne âgée" as over 75, or over 65
# with several chronic diseases (as restated by VIDAL Recos, "Médicaments et personnes âgées",
# 21 February 2023, https://campus.vidal.fr/recommandations/1745/). So: 75 and over is elderly,
# under 65 is not, and 65-74 stays open (the record would need the count of chronic diseases).
ELDERLY_FROM = 75
NOT_ELDERLY_BELOW = 65


def _stated(ctx: PairContext, concept: str, *, current: bool = False) -> bool | None:
    """What the record states on the pair's day about ``concept`` (a concept set of the facts tables):
    True (stated; a history counts unless ``current`` asks for a present state), False (denied in
    text or refuted), None (not stated: a problem list that does not mention a condition is no proof
    that the patient does not have it). The reasons of the two orders speak for the patient too."""
    reasons = [r for o in (ctx.first, ctx.second) for r in o.reasons]
    return facts.stated(ctx.record, ctx.day, ctx.tables.concept(concept), history=not current, also=reasons).value


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


@dataclass(slots=True)
class PairContext:
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

    def line_of(self, nodes: set[str]) -> MedicationOrder | None:
        if self.thesaurus.nodes_for(self.first_key) & nodes:
            return self.first
        if self.thesaurus.nodes_for(self.second_key) & nodes:
            return self.second
        return None


def evaluate(cond: dict[str, Any], ctx: PairContext) -> tuple[bool | None, str | None]:
    """(result, datum) for one condition; ``datum`` names what is missing when result is None."""
    kind = cond.get("kind", "other")
    if kind == "always":
        return True, None
    if kind == "substances":
        return _substances(cond, ctx)
    if kind == "aspirin-dose":
        return _aspirin(cond, ctx)
    if kind == "acs-indication":
        acs = _stated(ctx, "acute-coronary-syndrome")
        if acs is None:
            return None, "acs-indication"
        return acs == bool(cond["acs"]), None
    if kind == "pair":
        return _pair(cond, ctx), None
    if kind in ("all_of", "any_of"):
        results = [evaluate(c, ctx) for c in cond["of"]]
        values = [r for r, _ in results]
        missing = next((d for r, d in results if r is None), None)
        if kind == "all_of":
            if any(v is False for v in values):
                return False, None
            return (True, None) if all(values) else (None, missing)
        if any(v is True for v in values):
            return True, None
        return (False, None) if all(v is False for v in values) else (None, missing)
    if kind in ("weekly-dose", "daily-dose"):
        return _dose_threshold(cond, ctx)
    if kind == "not":
        ok, datum = evaluate(cond["of"], ctx)
        return (None, datum) if ok is None else (not ok, None)
    if kind == "route-gate":
        return _route_gate(cond, ctx)
    if kind == "elderly" and "elderly" in cond:
        age = facts.age_on(ctx.record, ctx.day)
        if age is None or NOT_ELDERLY_BELOW <= age < ELDERLY_FROM:
            return None, "elderly"
        return (age >= ELDERLY_FROM) == bool(cond["elderly"]), None
    if kind == "renal-function" and "impaired" in cond:
        return _renal(cond, ctx)
    if kind == "hepatic-function" and "impaired" in cond:
        hepatic = _stated(ctx, "hepatic-failure", current=True)  # a resolved liver failure is no present impairment
        if hepatic is None:
            return None, "hepatic-function"
        return hepatic == bool(cond["impaired"]), None
    if kind == "heart-function" and "altered" in cond:
        if _stated(ctx, "heart-failure"):
            return bool(cond["altered"]), None
        return None, "heart-function"
    if kind == "indication" and cond.get("what") == "heart-failure":
        if _stated(ctx, "heart-failure"):
            return True, None
        return None, "indication"
    if kind == "hypokalaemia":
        if _stated(ctx, "hypokalaemia", current=True):
            return True, None
        return None, "hypokalaemia"
    if kind == "titration":
        return None, "titration"
    if kind == "route":
        r1, r2 = route_of(ctx.first), route_of(ctx.second)
        if cond["route"] in (r1, r2):
            return True, None
        return (False, None) if r1 is not None and r2 is not None else (None, "route")
    return None, kind


def _renal(cond: dict[str, Any], ctx: PairContext) -> tuple[bool | None, str | None]:
    """Renal function below ``below`` (impaired) / from ``normal_from`` (normal), eGFR or CrCl."""
    got = facts.renal_on(ctx.record, ctx.day, ctx.tables)
    if got is None:
        return None, "renal-function"
    value = got[1]
    if value < cond["below"]:
        impaired: bool | None = True
    elif value >= cond["normal_from"]:
        impaired = False
    else:
        return None, "renal-function"
    return impaired == bool(cond["impaired"]), None


def _route_gate(cond: dict[str, Any], ctx: PairContext) -> tuple[bool | None, str | None]:
    """False when a line is one of ``keys`` (a substance, or a class it belongs to) given by a route
    outside ``routes`` (or the single ``route``): the entry does not concern it; None when its route is
    not known."""
    keys = set(cond["keys"])
    wanted = set(cond.get("routes") or [cond["route"]])
    pending = False
    for key, line in ((ctx.first_key, ctx.first), (ctx.second_key, ctx.second)):
        if key in keys or ctx.thesaurus.nodes_for(key) & keys or keys & ctx.thesaurus.closure(key).keys():
            got = route_name(line)
            if got is None:
                pending = True
            elif got not in wanted:
                return False, None
    return (None, "route") if pending else (True, None)


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


def _substances(cond: dict[str, Any], ctx: PairContext) -> tuple[bool | None, str | None]:
    pending: str | None = None
    result: bool | None = False
    for clause in cond["any_of"]:
        if "unresolved" in clause:
            result, pending = None, pending or clause["unresolved"]
            continue
        if clause.get("others"):
            named = set(clause.get("except", ()))
            if not (ctx.thesaurus.nodes_for(ctx.first_key) & named or ctx.thesaurus.nodes_for(ctx.second_key) & named):
                return True, None
            continue
        line = ctx.line_of(set(clause["keys"]))
        if line is None:
            continue
        want = clause.get("routes") or ([clause["route"]] if clause.get("route") else [])
        if not want:
            return True, None
        got = route_name(line)
        if got in want:
            return True, None
        if got is None:
            result, pending = None, "route"
    return result, pending


def _pair(cond: dict[str, Any], ctx: PairContext) -> bool:
    """One line in the first set of nodes and the other in the second (either way round)."""
    ca = set(ctx.thesaurus.closure(ctx.first_key))
    cb = set(ctx.thesaurus.closure(ctx.second_key))
    for left, right in cond["any_of"]:
        left, right = set(left), set(right)
        if (ca & left and cb & right) or (cb & left and ca & right):
            return True
    return False


def _dose_threshold(cond: dict[str, Any], ctx: PairContext) -> tuple[bool | None, str | None]:
    """Dose of ``cond["key"]`` per week above ``above_mg`` / per day at least ``at_least_mg``."""
    for key, line in ((ctx.first_key, ctx.first), (ctx.second_key, ctx.second)):
        if cond["key"] == key or cond["key"] in ctx.thesaurus.nodes_for(key):
            dd = daily_dose(line, key)
            if dd is None:
                return None, cond["kind"]
            if cond["kind"] == "weekly-dose":
                return dd.per_day_mg * 7 > cond["above_mg"] + 1e-9, None
            if "at_most_mg" in cond and dd.per_day_mg > cond["at_most_mg"] + 1e-9:
                return False, None
            return dd.per_day_mg >= cond["at_least_mg"] - 1e-9, None
    return False, None


def _band_test(test: dict[str, Any], per_intake: float, per_day: float) -> bool:
    got = {"per_intake_mg": per_intake, "per_day_mg": per_day}
    for name, bound in test.items():
        what, _, side = name.rpartition("_")
        value = got[what]
        if (side == "min" and value < bound - 1e-9) or (side == "max" and value > bound + 1e-9):
            return False
    return True


def aspirin_category(bands: tuple[dict[str, Any], ...], per_intake_mg: float, per_day_mg: float) -> str:
    """The thesaurus dose band of an aspirin dosage: the first band one of whose tests holds, else ``other``."""
    for band in bands:
        if any(_band_test(t, per_intake_mg, per_day_mg) for t in band["any"]):
            return str(band["category"])
    return "other"


def _aspirin_category(ctx: PairContext) -> str | None:
    for key, line in ((ctx.first_key, ctx.first), (ctx.second_key, ctx.second)):
        if ASPIRIN in {key} | set(ctx.thesaurus.nodes_for(key)):
            dd = daily_dose(line, key)
            if dd is None or not ctx.aspirin_bands:
                return None
            return aspirin_category(ctx.aspirin_bands, dd.per_intake_mg, dd.per_day_mg)
    return None


def _aspirin(cond: dict[str, Any], ctx: PairContext) -> tuple[bool | None, str | None]:
    category = _aspirin_category(ctx)
    ulcer = _stated(ctx, "peptic-ulcer")
    pending: str | None = None
    result: bool | None = False
    for clause in cond["any_of"]:
        if category is None:
            dose_ok: bool | None = None
        else:
            dose_ok = category == clause["aspirin_dose"]
        if dose_ok is False:
            continue
        want_ulcer = clause.get("ulcer_history")
        if want_ulcer is None:
            ulcer_ok: bool | None = True
        elif ulcer is None:
            ulcer_ok = None  # the record neither states nor rules out an ulcer history
        else:
            ulcer_ok = ulcer == bool(want_ulcer)
        if dose_ok and ulcer_ok:
            return True, None
        if ulcer_ok is False:
            continue
        result = None
        pending = pending or ("aspirin-dose" if dose_ok is None else "ulcer")
    return result, pending


@dataclass(frozen=True, slots=True)
class Settled:
    """The level retained for one entry and whether the data settled it."""

    level: str
    settled: bool
    missing: tuple[str, ...]  # datum codes that would settle it
    all_ruled_out: bool = False  # every condition was evaluated false (lowest level kept)
    dropped: bool = False  # the entry does not concern this pair (e.g. oral erythromycin)


def _mentions_route(cond: Any) -> bool:
    if isinstance(cond, dict):
        if cond.get("kind") in ("route", "route-gate") or "route" in cond:
            return True
        return any(_mentions_route(v) for v in cond.values())
    if isinstance(cond, list):
        return any(_mentions_route(v) for v in cond)
    return False


def settle(entry: Entry, ctx: PairContext) -> Settled:
    """Choose the level of ``entry`` for this pair (see module docstring)."""
    ordered = sorted(entry.levels, key=lambda lv: -LEVEL_RANK[lv.level])
    gate_missing: tuple[str, ...] = ()
    if entry.gate is not None:
        ok, datum = evaluate(entry.gate, ctx)
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
    fallback = next((lv for lv in ordered if lv.condition.get("kind") == "otherwise"), None)
    if fallback is not None:
        # "otherwise" applies when every other level is ruled out
        others = [(lv, *evaluate(lv.condition, ctx)) for lv in ordered if lv is not fallback]
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
        ok, datum = evaluate(lv.condition, ctx)
        if ok:
            return Settled(lv.level, True, ())
        if ok is None:
            missing = [datum or "other"]
            return Settled(lv.level, False, tuple(dict.fromkeys(missing)))
    # every condition ruled out: when a route ruled them out the entry does not concern the pair
    # (e.g. oral forms where only IV ones are listed); otherwise the pair is listed: lowest level
    dropped = any(_mentions_route(lv.condition) for lv in ordered)
    return Settled(ordered[-1].level, True, (), all_ruled_out=True, dropped=dropped)
