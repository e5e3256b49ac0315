"""Cheaper equivalents of similar efficacy (EQ…): generics, DCI prescribing, non-substitutable
mentions, biosimilars at initiation, cheaper strategies.

Prices come from the jurisdiction's referential (France: BDPM, EUR; Morocco: CNOPS 2014, MAD);
arithmetic lives in :mod:`checker.economics`. Suggestions are structured::

    {"replace": {cis, cip13, label, unit_price …}, "with": {cis, cip13 | dci, strength, form, label, unit_price},
     "saving": {"amount", "currency", "period", "per_year" …}}

and every finding with money puts the substance key in ``evidence["substance"]`` so that the run
summary (:meth:`checker.findings.Report.savings`) totals savings by substance.

"Per year" convention (``saving["per_year"]``, summed by the run summary): a long-term line —
prescribed for 28 days or more, with repeats, or with no duration — is annualised (saving per day
× 365, ``per_year_basis: "annualised"``); a short course (under 28 days, no repeats) counts its
treatment amount as is (``per_year_basis: "treatment"``). Messages say which, in plain words.
EQ001 talks about the cheaper product and the money; the legal reminder to prescribe in DCI is
EQ002's alone, so the prescriber does not read the same advice twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from checker import facts, periods
from checker.economics.costs import CostComparison, dose_in_units, prescribed_days, treatment_days, units_per_day
from checker.economics.packs import comparable_units, fold, form_key, interchangeable_form, normalise_strength
from checker.economics.prices import (
    PricedPack,
    bdpm_packs,
    brand_rows,
    cheapest,
    cnops_matches,
    cnops_products_for,
)
from checker.findings import Amount, Finding, Localized, Message, Param, Phrases, Saving, Source, Word
from checker.findings import Quantity as Measure
from checker.memo import Built, by_identities, by_identity, holds_request_words
from checker.model import (ENDED, NO_HISTORY, Concept, Dispense, Dosage, Ingredient, MedicationIdentity,
                           MedicationOrder, Quantity)
from checker.referentials import Referentials
from checker.registry import Rule, RuleCall, Trigger, rule

BDPM_SOURCE = Source(
    "ANSM, Répertoire des groupes génériques (BDPM CIS_GENER) et prix des présentations (BDPM CIS_CIP); "
    "droit de substitution du pharmacien, art. L. 5125-23 du code de la santé publique; formes orales à "
    "libération immédiate tenues pour une même forme pharmaceutique, art. L. 5121-1, 5° a du même code",
    "https://base-donnees-publique.medicaments.gouv.fr/telechargement.php",
    "BDPM 2026-01",
)
DCI_SOURCE = Source(
    "Code de la santé publique, art. L. 5121-1-2 (prescription en dénomination commune, "
    "en vigueur au 1er janvier 2015)",
    "https://www.legifrance.gouv.fr/codes/article_lc/LEGIARTI000028654557",
    "2015-01-01",
)
MTE_SOURCE = Source(
    "Arrêté du 12 novembre 2019 (situations médicales où la substitution peut être exclue: MTE, EFG, CIF), "
    "modifié par l'arrêté du 20 juillet 2022",
    "https://www.legifrance.gouv.fr/jorf/article_jo/JORFARTI000039393133",
    "2022-07-28",
)
BIOSIMILAR_SOURCE = Source(
    "ANSM, liste de référence des groupes biologiques similaires (art. R. 5121-9-1 CSP), décision du 13 octobre 2017 "
    "et modifications",
    "https://ansm.sante.fr/actualites/decision-du-13-02-2026-portant-modification-de-la-liste-de-reference-"
    "des-groupes-biologiques-similaires-mentionnee-a-larticle-r-5121-9-1-du-code-de-la-sante-publique",
    "2026-02-13",
)
STRATEGY_SOURCE = Source(
    "HAS, fiches Bon usage du médicament et évaluations médico-économiques (voir la source de chaque stratégie)",
    "https://www.has-sante.fr/",
    "2009-2013",
)
CNOPS_LABEL = "CNOPS, référentiel des médicaments (Maroc) 2014"
CNOPS_SOURCE = Source(
    "CNOPS, référentiel des médicaments et prix (PPV, base de remboursement PRIX_BR), Maroc — licence non vérifiée",
    "https://www.data.gov.ma/",
    "2014",
)

_EPS = 1e-9
DOSE_LEVELS = ("demi-dose", "pleine dose")
"""The dose levels of ``cheaper-strategies.json`` the catalogue words (table ``eq_dose_level``)."""
SUBSTITUTABLE_TYPES = {0, 1, 4}  # princeps, générique, substituable (2 = complémentarité posologique)


def _cheaper_rule(rule_id: str, name: str, source: Source, referentials: tuple[str, ...],
                  severity: str = "info", trigger: Callable[[Referentials], Trigger] | None = None,
                  ) -> Callable[[Callable[[RuleCall], Iterable[Finding]]], Rule]:
    """Register an EQ rule: category ``cheaper-equivalent``, severity ``info`` unless stated."""
    return rule(rule_id, name=name, category="cheaper-equivalent", severity=severity, source=source,
                referentials=referentials, trigger=trigger)


# --- triggers (see checker.registry.Trigger): each rule's first test of a line, which needs only its
# medication or the order itself; every finding is about one line that passes it ---------------------


def _in_repertoire(idx: Any, ident: MedicationIdentity) -> bool:
    """A medication identified to a specialty of a generic group of the répertoire."""
    spec = idx.specialty(ident.cis) if ident.cis else None
    return spec is not None and bool(spec.generic_group)


def _generic_trigger(refs: Referentials) -> Trigger:
    """EQ001: a line of the répertoire (France: its substitute is looked up; Morocco: its CNOPS rows)."""
    idx = refs.get("bdpm")
    return Trigger(medication=lambda ident: _in_repertoire(idx, ident))


def _dci_trigger(refs: Referentials) -> Trigger:
    """EQ002: a line written by the brand name of a specialty of the répertoire."""
    idx = refs.get("bdpm")
    return Trigger(medication=lambda ident: ident.prescribed_as == "brand" and bool(ident.cis)
                   and _dci_advice(idx, ident) is not None)


def _non_substitutable_trigger(refs: Referentials) -> Trigger:
    """EQ003: a line marked non-substitutable."""
    return Trigger(line=lambda order: order.substitution_allowed is False)


def _biosimilar_trigger(refs: Referentials) -> Trigger:
    """EQ004: a line of a biologic for which a cheaper biosimilar exists."""
    idx, groups = refs.get("bdpm"), refs.get("biosimilar-groups")
    return Trigger(medication=lambda ident: _biosimilar_offer(idx, groups, ident) is not None)


def _strategy_trigger(refs: Referentials) -> Trigger:
    """EQ005: a line of a medication some cheaper strategy can apply to."""
    idx, strategies = refs.get("bdpm"), refs.get("cheaper-strategies")
    return Trigger(medication=lambda ident: bool(_line_strategies(idx, strategies, ident)[1]))


# --- shared helpers -------------------------------------------------------------------------------


def _unit_price(value: float | None, currency: str) -> Param:
    """A unit price to the hundredth of a cent (``0,0123 €``), worded the language's CLDR way."""
    return Amount(value, currency, 4) if value is not None else "?"


def _prescription_lines(call: RuleCall) -> tuple[tuple[MedicationOrder, MedicationIdentity], ...]:
    """The identified prescription lines the EQ rules look at, with their identity: running and past
    ones (a past prescription's saving is counted once, see :class:`CostComparison`). Once per record
    for the EQ rules (through the rules' shared memo)."""
    found = call.shared.get(_LINES)
    if found is None:
        found = call.shared[_LINES] = tuple((o, o.identity) for o in call.identified_orders(prescriptions_only=True)
                                            if o.identity is not None)
    return found  # type: ignore[no-any-return]


_LINES = ("cheaper", "prescription-lines")
"""The key of :func:`_prescription_lines` in the rules' shared memo of a record."""


@by_identities  # priced packs never change once built
def _described(pack: PricedPack) -> dict[str, Any]:
    """:meth:`PricedPack.describe`, once per pack (copy it: each finding gets its own dict)."""
    return pack.describe()


_MESSAGES = Built()
"""EQ001's and EQ002's messages by the objects they are built from (kept by the entry) and the line's
product: a bulk export repeats the same medication's advice over thousands of lines."""


def _line_finding(call: RuleCall, order: MedicationOrder, key: str, message: Message, **extra: Any) -> Finding:
    """A finding on one prescription line, worded from ``message`` (the catalogue bounds the summary)."""
    return call.finding(message=message, implicated=[order.ref], key=key, **extra)


def _saving(cmp: CostComparison) -> Saving:
    """The suggestion's saving as a typed value (amount over its period, per year, the other figures)."""
    return _cost_words(cmp)[1]


def _cheaper_than(candidates: Iterable[PricedPack], reference: PricedPack) -> PricedPack | None:
    """The cheapest candidate counted in a unit comparable with ``reference``'s (tablets with tablets
    or capsules, ml with ml: see :func:`comparable_units`) when it costs less per unit, else ``None``."""
    if reference.units is None:
        return None
    unit = reference.units.unit
    best = cheapest(c for c in candidates if c.units is not None and comparable_units(c.units.unit, unit))
    if best is None or best.unit_price is None or reference.unit_price is None:
        return None
    return best if best.unit_price < reference.unit_price - _EPS else None


def _index(call: RuleCall) -> Any:
    return call.refs.get("bdpm")


@by_identities  # per identified medication (immutable): bulk inputs repeat them
def _substance(identity: MedicationIdentity) -> tuple[str, str]:
    """(key, display name) of the line's substance(s), ``+``-joined for combinations."""
    subs = sorted(identity.substances, key=lambda s: s.key)
    return " + ".join(s.key for s in subs), " + ".join(s.name for s in subs)


@by_identities
def _strength_text(identity: MedicationIdentity) -> str:
    """The line's strengths as data (``500 mg + 30 mg``), for a suggestion."""
    parts = []
    for s in sorted(identity.substances, key=lambda s: s.key):
        if s.strength is not None:
            parts.append(f"{s.strength.value:g} {'µg' if s.strength.unit == 'ug' else s.strength.unit}".strip())
    return " + ".join(parts)


def _decimals(value: float) -> int:
    text = f"{value:g}"
    return len(text.split(".")[1]) if "." in text and "e" not in text else 0


@by_identities
def _strength(identity: MedicationIdentity) -> Phrases:
    """The line's strengths, each number worded the language's CLDR way (``0,5 mg + 30 mg``)."""
    return Phrases(tuple(Message("EQ.strength", {"q": Measure(s.strength.value, "µg" if s.strength.unit == "ug"
                                                              else s.strength.unit, _decimals(s.strength.value))})
                         for s in sorted(identity.substances, key=lambda s: s.key) if s.strength is not None),
                   " + ")


def _single_strength(identity: MedicationIdentity) -> Quantity | None:
    return identity.substances[0].strength if len(identity.substances) == 1 else None


_NAME_STRENGTH = re.compile(
    r"\b(\d+(?:[.,]\d+)?)\s*(mg|g|microgrammes?|µg|ug|ui|u\.?i\.?|unités?)\b(?:\s*/\s*(\d+(?:[.,]\d+)?)?\s*ml)?",
    re.I)


def _name_strength(name: str) -> Quantity | None:
    """The strength written in a one-strength specialty name (``LEVOTHYROX 100 microgrammes`` → 100 µg):
    the labelled strength, which the composition may express as the base (97.28 µg)."""
    hits = _NAME_STRENGTH.findall(name.split(",")[0])
    if len(hits) != 1:
        return None
    value, unit, per = hits[0]
    unit = {"microgramme": "ug", "microgrammes": "ug", "µg": "ug"}.get(unit.lower(), unit.lower())
    unit = "U" if fold(unit).replace(".", "").startswith(("ui", "unite")) else unit
    v = float(value.replace(",", "."))
    if per:
        v /= float(per.replace(",", "."))
    return Quantity(v, f"{unit}/ml" if "ml" in name.split(",")[0].lower() and "/" in name else unit)


@by_identities  # identities and specialties never change once built; bulk inputs repeat them
def with_strengths(identity: MedicationIdentity, spec: Any) -> MedicationIdentity:
    """The identity with each substance's strength filled from the specialty's composition when the
    prescription text did not give it (a brand name alone carries no strength)."""
    if spec is None:
        return identity
    labelled_first = _name_strength(getattr(spec, "name", "")) if len(identity.substances) == 1 else None
    if labelled_first is not None:  # the specialty is known: its labelled strength is the one to cite
        return replace(identity, substances=(replace(identity.substances[0], strength=labelled_first),))
    if all(s.strength is not None for s in identity.substances):
        return identity
    by_key = {c.key: c for c in getattr(spec, "components", ()) if c.value is not None}
    labelled = _name_strength(getattr(spec, "name", "")) if len(identity.substances) == 1 else None
    subs = []
    for s in identity.substances:
        c = by_key.get(s.key)
        if s.strength is None and labelled is not None:
            s = replace(s, strength=labelled)
        elif s.strength is None and c is not None:
            unit = c.unit or ""
            if re.search(r"\bml\b", fold(c.per or "")) and "/" not in unit:
                unit = f"{unit}/ml"
            s = replace(s, strength=Quantity(c.value, unit))
        subs.append(s)
    return replace(identity, substances=tuple(subs))


def _specialty_strength(spec: Any) -> Quantity | None:
    """Strength per dispensing unit of a one-substance specialty (``100 U/ml``, ``20 mg``)."""
    comps: Sequence[Any] = getattr(spec, "components", ()) or ()
    if len(comps) != 1 or comps[0].value is None:
        return None
    c = comps[0]
    unit = c.unit or ""
    per = fold(c.per or "")
    if "/" not in unit and re.search(r"\bml\b", per):
        m = re.match(r"^(\d+(?:[.,]\d+)?)\s*ml", per)
        if m and float(m.group(1).replace(",", ".")) not in (0.0, 1.0):
            return Quantity(c.value / float(m.group(1).replace(",", ".")), f"{unit}/ml")
        unit = f"{unit}/ml"
    return Quantity(c.value, unit)


def _compare(order: MedicationOrder, prescribed: PricedPack, alternative: PricedPack,
             strength: Quantity | None) -> CostComparison:
    """Unit prices, units per day (from the dosage) and the prescribed duration, in one object."""
    return _comparison(order.dosages, order.dispense, order.status in ENDED, prescribed, alternative, strength)


def _compare_shared(order: MedicationOrder, prescribed: PricedPack, alternative: PricedPack,
                    strength: Quantity | None) -> CostComparison:
    """:func:`_compare` remembered per dosages, dispense, packs and strength (by identity: the lines of
    one reading share their dosages and dispense, the packs and strengths come from memos), for the
    packs and strengths that are themselves remembered (others would only fill the memo)."""
    return _shared_comparison(order.dosages, order.dispense, order.status in ENDED, prescribed, alternative, strength)


def _comparison(dosages: tuple[Dosage, ...], dispense: Dispense | None, ended: bool, prescribed: PricedPack,
                alternative: PricedPack, strength: Quantity | None) -> CostComparison:
    unit = prescribed.units.unit if prescribed.units else ""
    per_day = units_per_day(dosages, unit, strength)
    dispensed: float | None = None
    q = dispense.quantity if dispense else None
    if per_day is None and q is not None:
        dispensed = dose_in_units(q, unit, strength)
        if dispensed is not None and dispensed <= 0:  # a zero or negative quantity is no quantity
            dispensed = None
    return CostComparison(
        currency=prescribed.currency,
        unit_price=prescribed.unit_price or 0.0,
        alt_unit_price=alternative.unit_price or 0.0,
        units_per_day=per_day,
        days=prescribed_days(dosages, dispense),
        dispensed_units=dispensed,
        repeats=dispense.repeats if dispense else 0,
        ended=ended,
    )


_shared_comparison = by_identities(_comparison)
holds_request_words(_shared_comparison.cache_clear)  # type: ignore[attr-defined]  # it keeps a request's dispense (its dates) alive


def _saving_phrase(cmp: CostComparison) -> Phrases:
    """The saving in plain words, saying how the yearly figure was obtained (annualised long-term
    treatment, or a short course counted as is); see :class:`~checker.economics.costs.CostComparison`."""
    return _cost_words(cmp)[2]


COST_ENTRIES = 20_000
"""Bound of the memos of :func:`_cost_words` and :func:`_price` (emptied when full)."""
_COSTS: dict[tuple[Any, ...], tuple[CostComparison, Saving, Phrases, dict[str, Any]]] = {}
_COSTS_BY_ID: dict[int, tuple[CostComparison, tuple[CostComparison, Saving, Phrases, dict[str, Any]]]] = {}
_PRICES: dict[tuple[Any, ...], tuple[Any, Any, Any, Phrases]] = {}


def _cost_key(cmp: CostComparison) -> tuple[Any, ...]:
    """``cmp`` by value and by the exact type of each number (``30`` and ``30.0`` days are equal but
    not written alike). No figure of a comparison is ``-0.0`` (prices are ``x or 0.0``, quantities
    and durations positive or ``None``), and a NaN key is never found again (so never shared)."""
    return (cmp, type(cmp.unit_price), type(cmp.alt_unit_price), type(cmp.units_per_day), type(cmp.days),
            type(cmp.dispensed_units), type(cmp.repeats), type(cmp.ended))


def _cost_words(cmp: CostComparison) -> tuple[CostComparison, Saving, Phrases, dict[str, Any]]:
    """The saving (typed), its phrase and the evidence's cost figures of a comparison, remembered by
    the comparison's value: the lines of one medication with the same dosage and duration compare
    alike (immutable, but the evidence figures are copied by :func:`_evidence_costs`)."""
    mine = _COSTS_BY_ID.get(id(cmp))  # the comparisons of _compare_shared recur as objects: no key to hash
    if mine is not None:  # the entry keeps its comparison alive, so an id found is this comparison's
        return mine[1]
    key = _cost_key(cmp)
    hit = _COSTS.get(key)
    if hit is None:
        if len(_COSTS) >= COST_ENTRIES:
            _COSTS.clear()
        hit = _COSTS[key] = _plain_cost_words(cmp)
    if len(_COSTS_BY_ID) >= COST_ENTRIES:
        _COSTS_BY_ID.clear()
    _COSTS_BY_ID[id(cmp)] = (cmp, hit)
    return hit


def _plain_cost_words(cmp: CostComparison) -> tuple[CostComparison, Saving, Phrases, dict[str, Any]]:
    return cmp, Saving.from_dict(cmp.saving_dict()), _plain_saving_phrase(cmp), _plain_evidence_costs(cmp)


def _plain_saving_phrase(cmp: CostComparison) -> Phrases:
    s = cmp.saving_dict()

    def m(v: float | None) -> Param:
        return Amount(v, cmp.currency) if v is not None else "?"

    if s["period"] == "year":
        return Phrases((Message("EQ.saving-year", {"amount": m(s["amount"])}),))
    if s["period"] != "treatment":
        return Phrases((Message("EQ.saving-unit"),))
    days = s.get("days")
    parts = [Message("EQ.saving-days", {"amount": m(s["amount"]), "days": float(days)}) if days
             else Message("EQ.saving-quantity", {"amount": m(s["amount"])})]
    basis = s.get("per_year_basis")
    if basis == "annualised":
        parts.append(Message("EQ.per-year-annualised", {"per_year": m(s["per_year"])}))
    elif basis == "past":
        parts.append(Message("EQ.per-year-ended"))
    elif basis == "treatment" and cmp.long_term:  # no daily figure: the quantity cannot be annualised
        parts.append(Message("EQ.per-year-as-is"))
    elif basis == "treatment":
        parts.append(Message("EQ.per-year-short"))
    return Phrases(tuple(parts), "")


def _price(cmp: CostComparison, alternative: Param, reference: Param, unit: str = "") -> Phrases:
    """``<alternative> costs A per unit against B for <reference>: <saving>``; remembered by the
    comparison's value, the texts by value and other parameters by identity (kept alive by the entry)."""
    words = _cost_words(cmp)  # shared by the comparisons of equal value (and type)
    key = (id(words), alternative if type(alternative) is str else id(alternative),
           reference if type(reference) is str else id(reference), unit == "ml")
    hit = _PRICES.get(key)
    if hit is None:
        if len(_PRICES) >= COST_ENTRIES:
            _PRICES.clear()
        hit = _PRICES[key] = (words, alternative, reference, _plain_price(cmp, alternative, reference, unit))
    return hit[3]  # type: ignore[no-any-return]


def _plain_price(cmp: CostComparison, alternative: Param, reference: Param, unit: str = "") -> Phrases:
    return Phrases((Message("EQ.price", {"alternative": alternative, "reference": reference,
                                         "alt_price": _unit_price(cmp.alt_unit_price, cmp.currency),
                                         "price": _unit_price(cmp.unit_price, cmp.currency),
                                         "per": Word("eq_per", "ml" if unit == "ml" else "unit"),
                                         "saving": _saving_phrase(cmp)}),))


def _evidence_costs(cmp: CostComparison) -> dict[str, Any]:
    """The cost figures of a finding's evidence (a fresh dict)."""
    return dict(_cost_words(cmp)[3])


def _plain_evidence_costs(cmp: CostComparison) -> dict[str, Any]:
    out: dict[str, Any] = {"unit_price": round(cmp.unit_price, 4),
                           "alternative_unit_price": round(cmp.alt_unit_price, 4), "currency": cmp.currency}
    if cmp.units_per_day is not None:
        out["units_per_day"] = round(cmp.units_per_day, 4)
        out["cost_per_day"] = round(cmp.cost_per_day or 0.0, 4)
        out["alternative_cost_per_day"] = round(cmp.alt_cost_per_day or 0.0, 4)
    if cmp.days is not None:
        out["treatment_days"] = cmp.days
    return out


def _prescribed_pack(idx: Any, identity: MedicationIdentity) -> PricedPack | None:
    """The price reference of the prescribed specialty: its cheapest priced (marketed first)
    presentation, even when the order codes a smaller pack. Savings from choosing a larger pack of
    the same specialty belong to EQ005 (large pack) alone, so no amount is counted twice."""
    packs = bdpm_packs(idx, identity.cis) if identity.cis else []
    marketed = [p for p in packs if p.marketed]
    return cheapest(marketed) or cheapest(packs)


def _replace(pack: PricedPack, identity: MedicationIdentity) -> dict[str, Any]:
    """``replace`` member of a suggestion; names the coded pack when it is not the price reference."""
    out = pack.describe()
    if identity.cip13 and identity.cip13 != pack.code:
        out["prescribed_cip13"] = identity.cip13
    return out


def _names_the_substance(order: MedicationOrder, identity: MedicationIdentity) -> bool:
    """True when the prescription text already names every substance (DCI beside a brand is lawful)."""
    return _text_names(order.medication, order.ingredients, identity)


@by_identities  # the lines of one reading naming the same medication share its objects
def _text_names(medication: Concept, ingredients: tuple[Ingredient, ...], identity: MedicationIdentity) -> bool:
    texts = " ".join(fold(t) for t in medication.all_texts())
    texts += " " + " ".join(fold(t) for i in ingredients for t in i.concept.all_texts())
    return bool(identity.substances) and all(fold(s.name) in texts or s.key in texts for s in identity.substances)


holds_request_words(_text_names.cache_clear)  # type: ignore[attr-defined]  # it keeps a prescriber's words alive


# --- EQ001: cheaper generic -----------------------------------------------------------------------


@_cheaper_rule("EQ001", "cheaper-generic", BDPM_SOURCE, ("bdpm", "cnops-2014"),
               trigger=_generic_trigger)
def cheaper_generic(call: RuleCall) -> Iterator[Finding]:
    """A substitutable equivalent of the same strength and form costs less.

    The line is identified to a specialty of a generic group of the répertoire (France) and a
    member of the group (princeps, generic or substitutable specialty, same pharmaceutical form in
    the sense of art. L. 5121-1, 5° a CSP: every immediate-release oral form is one form, modified
    release and other routes only replace their own kind) has a lower unit price (presentation
    price ÷ units in the pack, in comparable units) among marketed, reimbursed presentations that
    are not in rupture nor stopped (a supply tension is named in the suggestion). The finding gives both unit prices, the cost per day
    from the structured dosage, the saving over the prescribed duration and per year (annualised
    for a long-term line, the treatment amount for a short course), and suggests the cheaper
    presentation (the DCI reminder itself is EQ002's). Lines prescribed in DCI (unless coded to, or
    named with the laboratory of, a princeps: ``HYDROCORTISONE ROUSSEL``), lines with a
    non-substitutable mention (respected, see EQ003) and lines already at the lowest price yield
    nothing. With ``--jurisdiction ma`` the same comparison runs on the CNOPS 2014 list (PPV, MAD);
    a product absent from that list is reported as such, never priced by guess.
    Prices: France, the presentation price without dispensing fees; the prescribed unit price is
    the specialty's cheapest priced presentation (the smallest saving; a larger pack of the same
    specialty is EQ005's business). Morocco, the public price (PPV), with CNOPS's reimbursement
    (rate × PRIX_BR) in the evidence and the patient's extra cost when the princeps is dispensed
    (difference of the shares left to the patient).
    Source: BDPM répertoire des génériques and prices (ANSM/UNCAM); art. L. 5125-23 CSP; CNOPS list.
    """
    idx = _index(call)
    ma = call.settings.jurisdiction == "ma"
    for order, ident in _prescription_lines(call):
        offer = None if ma else _generic_offer(idx, ident)
        if not ma and offer is None:  # nothing cheaper for this medication: its lines need no more look
            continue
        if order.substitution_allowed is False or (ident.prescribed_as == "dci"
                                                   and not _names_a_princeps(idx, order, ident)):
            continue
        if offer is None:
            yield from _cheaper_ma(call, idx, order, ident)
            continue
        cmp = _compare_shared(order, offer.prescribed, offer.best, offer.strength)
        yield _generic_finding(call, order, offer.ident, offer.prescribed, offer.best, cmp, offer.key, offer.name,
                               offer.form, offer.extra)


@dataclass(frozen=True, slots=True)
class _GenericOffer:
    """A cheaper substitute of one identified medication (France): what EQ001 looks up alike for
    every line of the medication (the specialty, its group, the price reference, the substitute)."""

    ident: MedicationIdentity  # with its strengths filled from the specialty
    prescribed: PricedPack
    best: PricedPack
    strength: Quantity | None
    key: str
    name: str
    form: str
    extra: dict[str, Any]  # copied into each finding's evidence


@by_identities  # the drug index and identified medications never change once built
def _generic_offer(idx: Any, ident: MedicationIdentity) -> _GenericOffer | None:
    """The cheaper substitute EQ001 offers for a line of ``ident`` (France), or ``None``."""
    spec = idx.specialty(ident.cis) if ident.cis else None
    if spec is None or not spec.generic_group:
        return None
    ident = with_strengths(ident, spec)
    group = idx.generic_group(spec.generic_group)
    prescribed = _prescribed_pack(idx, ident)
    if group is None or prescribed is None or prescribed.unit_price is None:
        return None
    substitute = _cheapest_substitute(idx, spec.cis, prescribed.units.unit if prescribed.units else "")
    best = _cheaper_than([substitute], prescribed) if substitute is not None else None
    if best is None:
        return None
    key, name = _substance(ident)
    return _GenericOffer(ident, prescribed, best, _single_strength(ident), key, name, spec.form,
                         {"generic_group": group.id, "group_label": group.label})


def _names_a_princeps(idx: Any, order: MedicationOrder, ident: MedicationIdentity) -> bool:
    """A line read as DCI that still designates one princeps specialty: coded by its CIP13 or CIS, or
    named by the DCI with the laboratory's name (``HYDROCORTISONE ROUSSEL 10 mg``, ``LEVONORGESTREL
    BIOGARAN 1,5 mg``). What the pharmacy dispenses is that princeps unless it substitutes, so the
    generic's saving is real. A plain DCI line (``budésonide 64 µg/dose``) leaves the choice to the
    pharmacy, even when a single product fits it."""
    spec = idx.specialty(ident.cis) if ident.cis else None
    if spec is None or spec.generic_type != 0 or not spec.generic_group:
        return False
    if ident.method in ("cip13", "cis", "ucd"):
        return True
    words = fold(spec.brand or "").split()
    text = " ".join(fold(t) for t in order.medication.all_texts())
    named = {w for s in ident.substances for w in fold(s.name).split()}
    return bool(words) and any(w not in named for w in words) and all(
        re.search(rf"\b{re.escape(w)}\b", text) for w in words)


@by_identity
def _cheapest_substitute(idx: Any, cis: str, unit: str) -> PricedPack | None:
    """The cheapest available pack, counted in a unit comparable with ``unit``, of the other members of the
    specialty's generic group that may replace it; memoised per drug index.

    The répertoire group establishes substitutability (art. L. 5125-23 CSP); its members must be of a
    substitutable type (princeps, générique, substituable) and of the same pharmaceutical form in the
    sense of art. L. 5121-1, 5° a CSP, where every immediate-release oral form counts as one form
    (:func:`~checker.economics.packs.interchangeable_form`): a coated tablet, a film-coated tablet, a
    capsule or an oral lyophilisate replace each other; prolonged or delayed release and other routes
    only replace their own kind. Prices then compare per comparable unit."""
    spec = idx.specialty(cis)
    group = idx.generic_group(spec.generic_group) if spec is not None and spec.generic_group else None
    if group is None:
        return None
    form = interchangeable_form(spec.form, tuple(spec.routes))
    candidates: list[PricedPack] = []
    for member, gtype, _sort in group.members:
        if member == cis or gtype not in SUBSTITUTABLE_TYPES:
            continue
        other = idx.specialty(member)
        if other is None or interchangeable_form(other.form, tuple(other.routes)) != form:
            continue
        candidates.extend(p for p in bdpm_packs(idx, member)
                          if p.available and p.units and comparable_units(p.units.unit, unit))
    return cheapest(candidates)


def _generic_finding(call: RuleCall, order: MedicationOrder, ident: MedicationIdentity, prescribed: PricedPack,
                     best: PricedPack, cmp: CostComparison, key: str, name: str, form: str,
                     extra: dict[str, Any], source: Source | None = None, notes: tuple[Message, ...] = ()) -> Finding:
    parts = _generic_parts(ident, prescribed, best, name, form)
    suggestion = {"replace": dict(parts.replace), "with": dict(parts.with_), "saving": _saving(cmp)}
    evidence = {"substance": key, "jurisdiction": call.settings.jurisdiction, **_cost_words(cmp)[3], **extra}
    product = ident.product or order.label
    # The DCI wording is EQ002's advice (prescription en DC); this finding is about the product and the money.
    price = _price(cmp, parts.alternative, prescribed.product, parts.unit)
    message = _generic_message(product, name, parts, price, notes) if notes else _MESSAGES.get(
        ("EQ001", id(parts), id(price), product, name), _generic_message, product, name, parts, price, notes,
        keep=(parts, price))
    return _line_finding(call, order, f"generic:{key}", message, suggestion=suggestion, evidence=evidence,
                         source=source)


def _generic_message(product: str, name: str, parts: _GenericParts, price: Phrases,
                     notes: tuple[Message, ...]) -> Message:
    return Message("EQ001", {"product": product, "name": name, "strength": parts.strength,
                             "unit_price": parts.unit_price, "price": price}, notes)


def _dci_message(product: str, name: str, spec: Any, strength: Phrases) -> Message:
    return Message("EQ002", {"product": product, "name": name, "specialty": spec.name, "strength": strength,
                             "form": spec.form})


@dataclass(frozen=True, slots=True)
class _GenericParts:
    """What every EQ001 finding of one medication and substitute says alike (the dicts are copied
    into each finding)."""

    replace: dict[str, Any]
    with_: dict[str, Any]
    strength: Phrases
    unit_price: Param
    alternative: Phrases
    unit: str


@by_identities  # identified medications and priced packs never change once built
def _generic_parts(ident: MedicationIdentity, prescribed: PricedPack, best: PricedPack, name: str,
                   form: str) -> _GenericParts:
    with_ = best.describe()
    with_.update({"dci": name, "strength": _strength_text(ident), "form": form})
    return _GenericParts(
        _replace(prescribed, ident), with_, _strength(ident), _unit_price(best.unit_price, prescribed.currency),
        Phrases((Message("EQ001.alternative", {"product": best.product, "label": best.label}),)),
        prescribed.units.unit if prescribed.units else "")


def _cheaper_ma(call: RuleCall, idx: Any, order: MedicationOrder, ident: MedicationIdentity) -> Iterator[Finding]:
    """EQ001 under the Moroccan referential (CNOPS 2014, MAD)."""
    spec = idx.specialty(ident.cis) if ident.cis else None
    if spec is None or not spec.generic_group:
        return
    ident = with_strengths(ident, spec)
    products = cnops_products_for(call.refs.get("cnops-2014"), idx)  # computed once per loaded referentials
    matches = cnops_matches(products, ident)
    brand = getattr(spec, "brand", "") or fold(ident.product).split(",")[0]
    own = brand_rows(matches, brand.split()[0] if brand else "")
    key, name = _substance(ident)
    if not own:
        message = Message("EQ001-absent-ma", {"product": ident.product or order.label, "brand": brand.upper(),
                                              "name": name, "strength": _strength(ident), "rows": len(matches)})
        yield _line_finding(call, order, f"absent-ma:{key}", message, source=CNOPS_SOURCE,
                           evidence={"substance": key, "jurisdiction": "ma", "absent_from": "cnops-2014",
                                     "same_dci_rows": len(matches)})
        return
    # One immediate-release oral form covers tablets and oral suspensions alike: price the line only in
    # units comparable with what was prescribed (a capsule is never priced per ml of suspension).
    line_pack = _prescribed_pack(idx, ident)
    line_unit = line_pack.units.unit if line_pack is not None and line_pack.units is not None else None
    own_packs = [p for p in (m.pack() for m in own)
                 if line_unit is None or (p.units is not None and comparable_units(p.units.unit, line_unit))]
    prescribed = cheapest(own_packs)
    own_codes = {m.row.code for m in own}
    alternatives = [m.pack() for m in matches if m.row.code not in own_codes and m.row.generic]
    best = _cheaper_than((p for p in alternatives if p.available), prescribed) if prescribed is not None else None
    if prescribed is None or best is None:
        return
    cmp = _compare(order, prescribed, best, _single_strength(ident))
    paid, alt_paid = _reimbursed_per_unit(prescribed), _reimbursed_per_unit(best)
    extra: dict[str, Any] = {"price_referential": CNOPS_LABEL,
                             "reimbursed_per_unit": paid,
                             "alternative_reimbursed_per_unit": alt_paid}
    notes: list[Message] = []
    if paid is not None and alt_paid is not None:
        notes.append(Message("EQ001.cnops-reimbursed", {"paid": _unit_price(paid, "MAD"),
                                                        "alt_paid": _unit_price(alt_paid, "MAD")}))
    own_paid, generic_paid = _amo_share(prescribed, paid), _amo_share(best, alt_paid)
    if own_paid is not None and generic_paid is not None:
        extra_cost = _patient_extra_cost(cmp, prescribed, best, own_paid, generic_paid)
        extra["patient_extra_cost"] = extra_cost
        notes.append(_extra_cost_message(extra_cost))
    yield _generic_finding(call, order, ident, prescribed, best, cmp, key, name, spec.form, extra,
                           source=CNOPS_SOURCE, notes=tuple(notes))


def _amo_share(p: PricedPack, reimbursed: float | None) -> float | None:
    """AMO reimbursement per unit: rate × PRIX_BR ÷ units, nothing for a product not reimbursed
    (rate 0), unknown when a reimbursed product has no base."""
    if reimbursed is not None:
        return reimbursed
    return 0.0 if not p.reimbursement_rate else None


def _patient_extra_cost(cmp: CostComparison, prescribed: PricedPack, best: PricedPack, paid: float,
                        alt_paid: float) -> dict[str, Any]:
    """What the patient pays on top when the princeps is dispensed rather than the generic: the
    difference of the two shares left to the patient (PPV − AMO reimbursement, rate × PRIX_BR, which
    for a princeps with a generic is the generic's base), per unit and over the line's duration."""
    own = (prescribed.unit_price or 0.0) - paid
    alt = (best.unit_price or 0.0) - alt_paid
    share = replace(cmp, unit_price=own, alt_unit_price=alt)
    saving = share.saving_dict()
    return {"per_unit": round(own - alt, 4), "patient_share_per_unit": round(own, 4),
            "alternative_patient_share_per_unit": round(alt, 4), "amount": saving["amount"],
            "period": saving["period"], "currency": "MAD"}


def _extra_cost_message(extra: dict[str, Any]) -> Message:
    per_unit, amount = extra["per_unit"], extra["amount"]
    if per_unit <= 0:
        return Message("EQ001.extra-cost-none")
    if amount is None:
        return Message("EQ001.extra-cost-unit", {"per_unit": _unit_price(per_unit, "MAD")})
    return Message("EQ001.extra-cost", {"per_unit": _unit_price(per_unit, "MAD"), "amount": Amount(amount, "MAD")})


def _reimbursed_per_unit(p: PricedPack) -> float | None:
    """CNOPS pays its rate of the reimbursement base (PRIX_BR, the generic's price for a princeps)."""
    if p.reimbursement_base is None or not p.reimbursement_rate or p.units is None or p.units.count <= 0:
        return None
    return round(p.reimbursement_base * p.reimbursement_rate / p.units.count, 4)


# --- EQ002: brand name instead of DCI -------------------------------------------------------------


@_cheaper_rule("EQ002", "brand-instead-of-dci", DCI_SOURCE, ("bdpm",),
               trigger=_dci_trigger)
def brand_instead_of_dci(call: RuleCall) -> Iterator[Finding]:
    """Prescription by brand name of a substance of the generic repertory (DCI required).

    Since 1 January 2015 a French prescription names the active substances by their common
    name (DCI); the brand may be added. A line written only with the brand name of a specialty
    that belongs to a generic group is reported for information, with the DCI wording to use,
    even when all members cost the same: no money is claimed.
    Source: art. L. 5121-1-2 of the code de la santé publique.
    """
    if call.settings.jurisdiction != "fr":
        return
    idx = _index(call)
    for order, ident in _prescription_lines(call):
        if ident.prescribed_as != "brand" or not ident.cis:
            continue
        advice = _dci_advice(idx, ident)
        if advice is None or _names_the_substance(order, ident):
            continue
        spec, ident, key, name, strength, strength_text = advice
        product = ident.product or order.label
        message = _MESSAGES.get(("EQ002", id(advice), product), _dci_message, product, name, spec, strength,
                                keep=advice)
        yield _line_finding(call, order, f"dci:{key}", message,
                            suggestion={"replace": {"cis": spec.cis, "label": spec.name},
                                        "with": {"dci": name, "strength": strength_text, "form": spec.form}},
                            evidence={"substance": key, "generic_group": spec.generic_group})


@by_identities  # per drug index and identified medication
def _dci_advice(idx: Any, ident: MedicationIdentity) -> tuple[Any, MedicationIdentity, str, str, Phrases, str] | None:
    """For a medication of the répertoire: its specialty, the medication with its strengths filled, its
    substance key and name, its strengths worded and as data; ``None`` outside the répertoire."""
    spec = idx.specialty(ident.cis) if ident.cis else None
    if spec is None or not spec.generic_group:
        return None
    ident = with_strengths(ident, spec)
    key, name = _substance(ident)
    return spec, ident, key, name, _strength(ident), _strength_text(ident)


# --- EQ003: non-substitutable mention and its justification ---------------------------------------

_JUSTIFICATION = re.compile(r"\b(MTE|EFG|CIF)\b", re.I)


def justification_codes(order: MedicationOrder) -> set[str]:
    """MTE / EFG / CIF codes found in ``substitution.reason`` (codes, displays or text)."""
    reason = order.substitution_reason
    if reason is None:
        return set()
    texts = [reason.text, *(c.code for c in reason.codings), *(c.display for c in reason.codings)]
    return {m.upper() for t in texts if t for m in _JUSTIFICATION.findall(t)}


@_cheaper_rule("EQ003", "non-substitutable-justification", MTE_SOURCE, ("bdpm", "mte-substances"),
               severity="warning", trigger=_non_substitutable_trigger)
def non_substitutable_justification(call: RuleCall) -> Iterator[Finding]:
    """Non-substitutable mention without a valid justification (MTE, EFG, CIF).

    Since 1 January 2020 a French prescriber who excludes generic substitution must justify it by
    one of three situations: MTE (narrow-therapeutic-margin substance listed by the arrêté, patient
    stabilised), EFG (child under 6 when no generic has a suitable form) or CIF (formal
    contra-indication to an excipient present in every generic). The mention is respected (no
    generic is suggested, see EQ001); a missing justification, MTE on a substance that is not
    listed, or EFG for a patient aged 6 or more, is reported.
    Source: arrêté du 12 novembre 2019 as amended by the arrêté du 20 juillet 2022.
    """
    if call.settings.jurisdiction != "fr":
        return
    idx = _index(call)
    mte = call.refs.get("mte-substances")
    for order, ident in _prescription_lines(call):
        if order.substitution_allowed is not False:
            continue
        day = facts.order_day(order, call.as_of)
        if day < date(2020, 1, 1):
            continue
        spec = idx.specialty(ident.cis) if ident.cis else None
        if spec is None or not spec.generic_group:
            continue  # outside the répertoire there is nothing to substitute
        codes = justification_codes(order)
        key, name = _substance(ident)
        problem = ""
        if not codes:
            problem = "missing"
        else:
            valid = set()
            if "CIF" in codes:
                valid.add("CIF")
            if "MTE" in codes and all(mte.covers(s.key) or mte.covers(s.name) for s in ident.substances):
                valid.add("MTE")
            if "EFG" in codes:
                age = facts.age_on(call.record, day)
                if age is None or age < mte.efg_max_age_years:
                    valid.add("EFG")
            if not valid:
                problem = "MTE-not-listed" if "MTE" in codes else ("EFG-age" if "EFG" in codes else "invalid")
        if not problem:
            continue
        product = ident.product or order.label
        message = Message("EQ003-missing", {"product": product}) if problem == "missing" else \
            Message("EQ003-mte-not-listed", {"product": product, "name": name}) if problem == "MTE-not-listed" else \
            Message("EQ003-efg-age", {"product": product, "max_age": mte.efg_max_age_years})
        yield _line_finding(call, order, f"ns:{key}", message,
                            evidence={"substance": key, "justification": sorted(codes), "problem": problem,
                                      "mte_listed": all(mte.covers(s.key) for s in ident.substances)})


# --- EQ004: biosimilar at initiation --------------------------------------------------------------


def _is_initiation(call: RuleCall, order: MedicationOrder, keys: frozenset[str]) -> bool:
    """No other order of the same substance in the record dated before this one (or undated); a
    cancelled or never-taken line is no earlier treatment."""
    for other in call.record.medication_orders:
        if other is order or other.identity is None or other.identity.substance_keys != keys \
                or other.status in NO_HISTORY:
            continue
        if order.authored_on is None or other.authored_on is None or other.authored_on < order.authored_on:
            return False
    return True


@_cheaper_rule("EQ004", "biosimilar-at-initiation", BIOSIMILAR_SOURCE, ("bdpm", "biosimilar-groups"),
               trigger=_biosimilar_trigger)
def biosimilar_at_initiation(call: RuleCall) -> Iterator[Finding]:
    """A reference biologic is started although a cheaper biosimilar exists.

    When the reference product of a group of the ANSM biosimilar list is prescribed and the
    record holds no earlier order of the same substance (treatment initiation), a biosimilar of
    the same substance, strength and form that is marketed, reimbursed and cheaper per unit is
    suggested with both prices and the saving from the dosage. Ongoing treatments are left alone, and so
    are past (completed, stopped) lines: an export seldom holds what came before its oldest lines.
    Source: ANSM reference list of similar biological groups (art. R. 5121-9-1 CSP); BDPM prices.
    """
    if call.settings.jurisdiction != "fr":
        return
    idx = _index(call)
    groups = call.refs.get("biosimilar-groups")
    for order, ident in _prescription_lines(call):
        if not order.is_active_like:
            continue  # an export seldom holds what came before its oldest lines: no past initiation
        offer = _biosimilar_offer(idx, groups, ident)
        if offer is None or not _is_initiation(call, order, ident.substance_keys):
            continue
        group, spec, prescribed, best, strength = offer
        key = ident.substances[0].key
        cmp = _compare_shared(order, prescribed, best, strength)
        name = group.name
        st = _strength_text(ident) or (f"{strength.value:g} {strength.unit}" if strength else "")
        with_ = dict(_described(best))
        with_.update({"dci": name, "strength": st, "form": spec.form})
        unit = best.units.unit if best.units else ""
        reference = spec.name.split(",")[0]
        message = Message("EQ004", {"reference": reference, "biosimilar": best.product.split(",")[0],
                                    "price": _price(cmp, f"{best.product} ({best.label})", reference, unit)})
        yield _line_finding(call, order, f"biosimilar:{key}", message, source=group.source,
                            suggestion={"replace": _replace(prescribed, ident), "with": with_,
                                        "saving": _saving(cmp)},
                            evidence={"substance": key, "biosimilar_group": group.name, **_evidence_costs(cmp)})


@by_identities  # per drug index, biosimilar list and identified medication
def _biosimilar_offer(idx: Any, groups: Any, ident: MedicationIdentity
                      ) -> tuple[Any, Any, PricedPack, PricedPack, Quantity | None] | None:
    """For the reference product of a biosimilar group: the group, its specialty, its price reference,
    the cheapest cheaper biosimilar of the same form, strength and unit and the strength compared;
    ``None`` for any other medication or when no biosimilar costs less."""
    if len(ident.substances) != 1 or not ident.cis:
        return None
    group = groups.get(fold(ident.substances[0].key)) or groups.get(fold(ident.substances[0].name))
    spec = idx.specialty(ident.cis)
    if group is None or spec is None:
        return None
    if not (group.is_reference(spec.brand or spec.name) or group.is_reference(spec.name)):
        return None
    prescribed = _prescribed_pack(idx, ident)
    if prescribed is None or prescribed.unit_price is None:
        return None
    strength = _specialty_strength(spec)
    form = form_key(spec.form)
    candidates: list[PricedPack] = []
    for cis in idx.specialties_with(spec.substance_keys):
        other = idx.specialty(cis)
        if other is None or cis == spec.cis or group.is_reference(other.brand or other.name):
            continue
        if form_key(other.form) != form or not _same_q(_specialty_strength(other), strength):
            continue
        candidates.extend(p for p in bdpm_packs(idx, cis) if p.available and p.units
                          and prescribed.units and p.units.unit == prescribed.units.unit)
    best = _cheaper_than(candidates, prescribed)
    if best is None:
        return None
    return group, spec, prescribed, best, strength


def _same_q(a: Quantity | None, b: Quantity | None) -> bool:
    a, b = normalise_strength(a), normalise_strength(b)
    if a is None or b is None:
        return a is None and b is None
    return fold(a.unit) == fold(b.unit) and abs(a.value - b.value) <= 1e-6 * max(abs(a.value), 1)


# --- EQ005: cheaper strategies of comparable efficacy --------------------------------------------


def _atc_in(codes: frozenset[str] | set[str], prefixes: tuple[str, ...] | list[str]) -> bool:
    return any(p == "*" or c.startswith(p) for c in codes for p in prefixes if p)


def _contains_class(identity: MedicationIdentity, prefixes: tuple[str, ...] | list[str]) -> bool:
    """The line contains a drug of the class, alone or in a combination, or is a combination of the
    class (a patient on candesartan + hydrochlorothiazide has taken a sartan, and a C09DA product)."""
    return _atc_in(identity.any_atc, prefixes)


def _icd_norm(code: str) -> str:
    return code.replace(".", "").upper().strip()


def _has_condition(call: RuleCall, order: MedicationOrder, prefixes: list[str] | tuple[str, ...]) -> bool:
    """A condition present on the order's day (:func:`checker.facts.conditions_on`) coded (ICD-10)
    under one of ``prefixes``."""
    wanted = [_icd_norm(p) for p in prefixes]
    for cond in facts.conditions_on(call.record, facts.order_day(order, call.as_of)):
        for c in cond.code.codings:
            if "icd" in c.system.lower() or "cim" in c.system.lower() or not c.system:
                code = _icd_norm(c.code)
                if any(code.startswith(w) for w in wanted):
                    return True
    return False


_ACE_INHIBITOR_WORDS = re.compile(r"\b(iec|inhibiteurs? de l.enzyme de conversion|ace inhibitor)")


def _allergic_to(call: RuleCall, order: MedicationOrder, prefixes: list[str] | tuple[str, ...]) -> bool:
    """An allergy or intolerance standing on the order's day (:func:`checker.facts.allergies_on`) coded
    in ATC under ``prefixes`` (or naming an ACE inhibitor other than to deny it)."""
    day = facts.order_day(order, call.as_of)
    for a in facts.allergies_on(call.record, day, call.refs.get("clinical-facts")):
        if any(c.code.startswith(tuple(prefixes)) for c in a.code.codings if "atc" in c.system.lower()):
            return True
        if "C09A" in prefixes and facts.allergen_polarity(a, _ACE_INHIBITOR_WORDS):
            return True
    return False


def _other_orders(call: RuleCall, order: MedicationOrder) -> list[MedicationOrder]:
    """The patient's other identified lines that are treatment, current or past (not cancelled, not
    entered in error, not a record of a drug not taken)."""
    return [o for o in call.record.medication_orders
            if o is not order and o.identity is not None and o.status not in NO_HISTORY]


def _prior_of_class(call: RuleCall, order: MedicationOrder, prefixes: tuple[str, ...] | list[str]) -> bool:
    """Another order of the class dated before this one, or undated (then treatment is not new)."""
    for o in _other_orders(call, order):
        assert o.identity is not None
        if not _contains_class(o.identity, prefixes):
            continue
        if order.authored_on is None or o.authored_on is None or o.authored_on < order.authored_on:
            return True
    return False


def _strength_mg(identity: MedicationIdentity) -> float | None:
    q = normalise_strength(_single_strength(identity))
    return q.value if q is not None and q.unit == "mg" else None


@by_identity
def _packs_of(idx: Any, key: str, mg: float, form: str) -> tuple[PricedPack, ...]:
    """Available packs of single-substance specialties of ``key`` at ``mg`` per unit in ``form``
    (memoised per drug index)."""
    out: list[PricedPack] = []
    for cis in idx.specialties_with({key}):
        spec = idx.specialty(cis)
        if spec is None or form_key(spec.form) != form or len(spec.components) != 1:
            continue
        q = normalise_strength(_specialty_strength(spec))
        if q is None or q.unit != "mg" or abs(q.value - mg) > 1e-6 * max(mg, 1):
            continue
        out.extend(p for p in bdpm_packs(idx, cis) if p.available)
    return tuple(out)


def _line_pack(idx: Any, ident: MedicationIdentity) -> tuple[PricedPack | None, str]:
    """Price reference of a line: the prescribed pack, or for a DCI line the cheapest available pack
    of the substance and strength (what would be dispensed), with the line's form key."""
    if ident.cis:
        spec = idx.specialty(ident.cis)
        return _prescribed_pack(idx, ident), form_key(spec.form) if spec else ""
    mg = _strength_mg(ident)
    if mg is None or len(ident.substances) != 1:
        return None, ""
    form = form_key(ident.form) if ident.form else "oral-solid gastro-resistant"
    return cheapest(_packs_of(idx, ident.substances[0].key, mg, form)), form


@_cheaper_rule("EQ005", "cheaper-strategy", STRATEGY_SOURCE, ("bdpm", "cheaper-strategies", "clinical-facts"),
               trigger=_strategy_trigger)
def cheaper_strategy(call: RuleCall) -> Iterator[Finding]:
    """A cheaper strategy of comparable efficacy applies to this line.

    Strategies are data (``referentials/economics/cheaper-strategies.json``), each with its
    source and the condition that makes it apply: an ACE inhibitor before a sartan when an
    uncomplicated hypertension is treated for the first time (HAS 2008), the least costly proton
    pump inhibitor at the same dose level (HAS 2009), no systematic PPI with a short NSAID course
    in a patient without risk factor (HAS 2009), the large pack for a treatment of three months or
    more (art. L. 5125-23 CSP). Amounts are given only when the source fixes a dose
    correspondence (same dose level, same product): a class switch carries no amount. A strategy's
    class is the product's as prescribed: a fixed combination by its own code, never a component's.
    Source: HAS Bon usage du médicament sheets (2008, 2009); code de la santé publique.
    """
    if call.settings.jurisdiction != "fr":
        return
    idx = _index(call)
    strategies = call.refs.get("cheaper-strategies")
    for order, ident in _prescription_lines(call):
        ident, found = _line_strategies(idx, strategies, ident)
        for strat in found:
            handler = _STRATEGY_KINDS[strat.kind]
            yield from handler(call, idx, order, ident, strat)


@by_identities  # per drug index, strategies and identified medication
def _line_strategies(idx: Any, strategies: Any, ident: MedicationIdentity) -> tuple[MedicationIdentity, tuple[Any, ...]]:
    """The medication with its strengths filled from its specialty, and the strategies that can apply to
    its lines: those whose condition on the medication alone (a larger pack of a coded pack, a cheaper
    substance at the same dose level) fails are left out, as their handlers would give nothing."""
    spec = idx.specialty(ident.cis) if ident.cis else None
    ident = with_strengths(ident, spec)
    return ident, tuple(s for s in _strategies_for(strategies, ident) if _may_apply(idx, ident, s))


def _may_apply(idx: Any, ident: MedicationIdentity, strat: Any) -> bool:
    """False when ``strat``'s handler gives nothing for any line of ``ident`` (see its first test)."""
    if strat.kind == "large-pack":
        return bool(ident.cis and ident.cip13) and _larger_pack(idx, ident.cis or "", ident.cip13 or "") is not None
    if strat.kind == "same-dose-level":
        return _dose_level_choice(idx, ident, strat) is not None
    return True


@by_identities
def _strategies_for(strategies: Any, ident: MedicationIdentity) -> tuple[Any, ...]:
    """The strategies whose prescribed ATC classes hold the product as prescribed (memoised per
    medication): a single substance by its own code, a combination by the combination's code
    (:attr:`~checker.model.MedicationIdentity.class_atc`), so that a strategy for "a sartan alone"
    (C09CA) never reaches candesartan + hydrochlorothiazide (C09DA) through its sartan; ``*`` holds
    every line with an ATC code."""
    return tuple(s for s in strategies
                 if ("*" in s.prescribed_atc and ident.atc_codes) or _atc_in(ident.class_atc, s.prescribed_atc))


def _strategy_finding(call: RuleCall, order: MedicationOrder, ident: MedicationIdentity, strat: Any,
                      message: Message, suggestion: dict[str, Any] | None,
                      extra: dict[str, Any] | None = None) -> Finding:
    key, _name = _substance(ident)
    evidence = {"substance": key, "strategy": strat.id, **(extra or {})}
    return _line_finding(call, order, f"strategy:{strat.id}", message, source=strat.source, suggestion=suggestion,
                         evidence=evidence)


def _strategy(strat: Any, middle: Phrases | None = None) -> dict[str, Param]:
    """The parameters of a strategy's detail: what the source says, what it means for this line
    (``middle``, a sentence), the condition found in the record and the source named in full."""
    evidence, applies, source = _strategy_texts(strat)
    return {"evidence": evidence, "applies": applies,
            "middle": Phrases((Message("EQ005.middle", {"text": middle}),)) if middle else _NO_PHRASES,
            "source": source}


_NO_PHRASES = Phrases(())


@by_identities  # a strategy never changes once loaded
def _strategy_texts(strat: Any) -> tuple[Localized, Localized, str]:
    return _texts(strat, "evidence"), _texts(strat, "applies_when"), strat.source.cite()


def _texts(strat: Any, name: str) -> Localized:
    """A strategy's text in both languages (English when the file gives it, else French)."""
    return Localized(strat.text(name, "fr"), strat.text(name, "en"))


def _class_switch(call: RuleCall, idx: Any, order: MedicationOrder, ident: MedicationIdentity,
                  strat: Any) -> Iterator[Finding]:
    if strat.param("requires_conditions") and not _has_condition(call, order, strat.param("requires_conditions")):
        return
    if strat.param("excludes_conditions") and _has_condition(call, order, strat.param("excludes_conditions")):
        return
    if strat.param("excludes_allergy_atc") and _allergic_to(call, order, strat.param("excludes_allergy_atc")):
        return
    if strat.param("excludes_prior_atc") and _prior_of_class(call, order, strat.param("excludes_prior_atc")):
        return
    if strat.param("initiation_only") and _prior_of_class(call, order, strat.prescribed_atc):
        return
    preferred = strat.preferred[0]
    product = ident.product or order.label
    _key, name = _substance(ident)
    suggestion = {"replace": {"cis": ident.cis, "label": product, "dci": name},
                  "with": {"class": preferred["substance"], "atc": preferred["atc"]}}
    message = Message("EQ005-class-switch", {"product": product, "title": _texts(strat, "title"), **_strategy(strat)})
    yield _strategy_finding(call, order, ident, strat, message, suggestion)


def _same_dose_level(call: RuleCall, idx: Any, order: MedicationOrder, ident: MedicationIdentity,
                     strat: Any) -> Iterator[Finding]:
    choice = _dose_level_choice(idx, ident, strat)
    if choice is None:
        return
    level, base, reference, best, best_sub, best_mg = choice
    cmp = _compare_shared(order, reference, best, _single_strength(ident))
    product = ident.product or order.label
    with_ = dict(_described(best))
    with_.update({"dci": best_sub, "strength": f"{best_mg:g} mg", "dose_level": level})
    unit = best.units.unit if best.units else ""
    suggestion: dict[str, Any] = {"replace": dict(_described(base)), "with": with_, "saving": _saving(cmp)}
    if reference is not base:
        suggestion["saving_computed_from"] = dict(_described(reference))
    message = Message("EQ005-same-dose-level", {
        "product": product, "substance": best_sub, "mg": best_mg,
        "level": Word("eq_dose_level", level) if level in DOSE_LEVELS else level,
        **_strategy(strat, _price(cmp, best.product, reference.product, unit))})
    yield _strategy_finding(call, order, ident, strat, message, suggestion, {**_evidence_costs(cmp), "dose_level": level})


@by_identities
def _dose_level_choice(idx: Any, ident: MedicationIdentity, strat: Any
                       ) -> tuple[str, PricedPack, PricedPack, PricedPack, str, float] | None:
    """For a one-substance line listed in the strategy's dose levels: (level, the line's pack, the
    reference pack prices are compared with, the cheapest pack of another substance at the same
    level, that substance, its mg) when that pack costs less; else ``None``. Pure in the drug
    index, the identified medication and the strategy (memoised)."""
    if len(ident.substances) != 1:
        return None
    key = ident.substances[0].key
    mg = _strength_mg(ident)
    levels: dict[str, dict[str, float]] = strat.param("dose_levels")
    level = next((lv for lv, m in levels.items() if fold(key) in m and abs(m[fold(key)] - (mg or -1)) < 1e-6), None)
    if level is None:
        return None
    base, form = _line_pack(idx, ident)
    if base is None or base.unit_price is None:
        return None
    # Compare against the cheapest pack of the prescribed substance itself, so that the amount does
    # not repeat what EQ001 (generic of the same substance) already counts.
    same = cheapest(_packs_of(idx, key, mg or 0, form))
    reference = same if same is not None and same.unit_price is not None and same.unit_price < base.unit_price else base
    best: PricedPack | None = None
    best_sub, best_mg = "", 0.0
    for sub, sub_mg in levels[level].items():
        if sub == fold(key):
            continue
        cand = cheapest(_packs_of(idx, sub, float(sub_mg), form))
        if cand is not None and cand.unit_price is not None \
                and (best is None or cand.unit_price < (best.unit_price or 0)):
            best, best_sub, best_mg = cand, sub, float(sub_mg)
    if best is None or _cheaper_than([best], reference) is None:
        return None
    return level, base, reference, best, best_sub, best_mg


def _cotherapy_lines(call: RuleCall, strat: Any) -> tuple[list[MedicationOrder], set[int], list[MedicationOrder]]:
    """For the drop-cotherapy strategy, among the record's treatment lines, running or past (a line's
    other lines are those of these taken with it, see :func:`_drop_cotherapy`): those of the partner
    classes; the partner lines that are long or open-ended (by identity); the lines of an excluding
    class."""
    taken = [o for o in call.record.medication_orders
             if o.identity is not None and o.status not in NO_HISTORY and periods.counts(o)]
    with_atc, excluded = strat.param("with_atc", ()), strat.param("excludes_cotherapy_atc", ())
    max_days = float(strat.param("max_cotherapy_days", 0))
    partners = [o for o in taken if _atc_in(o.identity.atc_codes, with_atc)]  # type: ignore[union-attr]
    long_ids = {id(o) for o in partners if (d := treatment_days(o)) is None or d > max_days}
    excluding = [o for o in taken if _atc_in(o.identity.atc_codes, excluded)]  # type: ignore[union-attr]
    return partners, long_ids, excluding


def _drop_cotherapy(call: RuleCall, idx: Any, order: MedicationOrder, ident: MedicationIdentity,
                    strat: Any) -> Iterator[Finding]:
    age = facts.age_on(call.record, facts.order_day(order, call.as_of))
    if age is None or age > int(strat.param("max_age", 200)):
        return
    if strat.param("excludes_conditions") and _has_condition(call, order, strat.param("excludes_conditions")):
        return
    key = ("drop-cotherapy", id(strat))
    lines = call.shared.get(key)
    if lines is None:  # once per record, not once per line (bounded cost)
        lines = call.shared[key] = _cotherapy_lines(call, strat)
    with_partner, long_ids, excluding = lines
    # the other lines taken with this one (a past course is judged with the lines of its own days)
    partners = [o for o in with_partner if o is not order and periods.overlaps(order, o, call.as_of)]
    if not partners:
        return
    if any(id(o) in long_ids for o in partners):
        return  # a long or open-ended NSAID course is not the situation the source describes
    if any(o is not order and periods.overlaps(order, o, call.as_of) for o in excluding):
        return
    base, _form = _line_pack(idx, ident)
    product = ident.product or order.label
    suggestion: dict[str, Any] = {"action": "remove", "replace": base.describe() if base else {"label": product},
                                  "with": None}
    extra: dict[str, Any] = {"partners": sorted(o.ref for o in partners)}
    money: Phrases | None = None
    if base is not None and base.unit_price is not None:
        free = PricedPack("fr", "", None, "", "", "", base.units, 0.0, base.currency, None)
        cmp = _compare(order, base, free, _single_strength(ident))
        suggestion["saving"] = _saving(cmp)
        extra.update(_evidence_costs(cmp))
        money = Phrases((Message("EQ005.without-it", {"saving": _saving_phrase(cmp)}),))
    message = Message("EQ005-drop-cotherapy", {"product": product, **_strategy(strat, money)})
    yield _strategy_finding(call, order, ident, strat, message, suggestion, {**extra, "implicated_partners": len(partners)})


def _large_pack(call: RuleCall, idx: Any, order: MedicationOrder, ident: MedicationIdentity,
                strat: Any) -> Iterator[Finding]:
    if not ident.cis or not ident.cip13:
        return  # only a coded pack says which box was chosen
    packs = _larger_pack(idx, ident.cis, ident.cip13)  # the medication's part first: most have none
    if packs is None:
        return
    days = treatment_days(order)
    if days is None or days < float(strat.param("min_days", 90)):
        return
    chosen, best, large, small = packs
    cmp = _compare_shared(order, chosen, best, _single_strength(ident))
    product = ident.product or order.label
    unit = chosen.units.unit if chosen.units else ""
    message = Message("EQ005-large-pack", {"product": product, "days": float(days),
                                           **_strategy(strat, _price(cmp, large, small, unit))})
    yield _strategy_finding(call, order, ident, strat, message,
                            {"replace": dict(_described(chosen)), "with": dict(_described(best)), "saving": _saving(cmp)},
                            _evidence_costs(cmp))


@by_identity  # per drug index and coded pack
def _larger_pack(idx: Any, cis: str, cip13: str) -> tuple[PricedPack, PricedPack, Phrases, Phrases] | None:
    """The coded pack and a larger pack of the same specialty that costs less per unit, with the
    phrases naming them, or ``None``."""
    packs = bdpm_packs(idx, cis)
    chosen = next((p for p in packs if p.code == cip13), None)
    if chosen is None or chosen.unit_price is None or chosen.units is None:
        return None
    larger = [p for p in packs if p.available and p.units and p.units.unit == chosen.units.unit
              and p.units.count > chosen.units.count]
    best = _cheaper_than(larger, chosen)
    if best is None:
        return None
    return (chosen, best, Phrases((Message("EQ005.large-pack", {"label": best.label}),)),
            Phrases((Message("EQ005.prescribed-pack", {"label": chosen.label}),)))


_STRATEGY_KINDS = {
    "class-switch": _class_switch,
    "same-dose-level": _same_dose_level,
    "drop-cotherapy": _drop_cotherapy,
    "large-pack": _large_pack,
}
