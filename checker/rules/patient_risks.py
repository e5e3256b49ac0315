"""Patient-specific risks (PR…): allergy, age, renal function, pregnancy, maximum dose, accumulation."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from checker import criteria, facts
from checker.drugs import identify_text
from checker.facts import FactTables
from checker.findings import Finding, Localized, Message, Param, Phrases, Severity, Source, Word, Words
from checker.iatrogenic.conditions import route_of
from checker.iatrogenic.doses import DailyDose, daily_dose, largest_intake_mg, medication_key
from checker.iatrogenic.risks import IatrogenicRules, LineContext, RiskRow, key_matches, row_matches, rows_matching
from checker.iatrogenic.thesaurus import Thesaurus
from checker.memo import MAX_ENTRIES, Built, by_identities, holds_request_words
from checker.model import RULE_CONFIDENCE, Allergy, MedicationIdentity, MedicationOrder, Observation, PatientRecord
from checker.periods import counts, largest_concurrent, renewal_ends
from checker.referentials import Referentials, default_referentials
from checker.registry import RuleCall, Trigger, rows_of, rule
from checker.text import fold

STOPP_SOURCE = Source("STOPP/START v2 (O'Mahony et al., Age Ageing 2015) ; codage Huibers et al. 2019",
                      "https://github.com/MichielCM/stoppstart", "v2")
STOPP_POPULATION = "stopp-start"
"""The population STOPP/START v2 is written for: its age (65) is in the facts tables' ``populations``."""
KIDNEY_KINDS = ("clcr", "egfr", "cockcroft-gault")
"""The kinds of renal function measure PR003 words (catalogue table ``renal_kind``)."""
SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}

# The STOPP criteria evaluated, and our wording of each: referentials/iatrogenic/stopp-selection.json.


def _atc_hit(order: MedicationOrder, prefixes: tuple[str, ...] | list[str]) -> str | None:
    """The substance key of the line whose ATC starts with one of ``prefixes``."""
    return _identity_atc_hit(order.identity, prefixes)


@by_identities  # asked for every line and every STOPP iteration: a few hundred medications, fixed prefix lists
def _identity_atc_hit(identity: MedicationIdentity | None, prefixes: tuple[str, ...] | list[str]) -> str | None:
    for s in identity.substances if identity else ():
        if any(a.startswith(p) for a in s.atc for p in prefixes):
            return s.key
    return None


def _stopp_drug_hit(data: IatrogenicRules, rid: str, order: MedicationOrder
                    ) -> tuple[str, float | None, dict[str, Any] | None] | None:
    """``(substance, daily mg, dose threshold)`` of the first iteration of STOPP criterion ``rid`` the line
    meets (every drug-only iteration is tried); a dose criterion needs a structured daily dose above it."""
    for it in data.stopp_drug_iterations(rid):
        key = _atc_hit(order, it["atc"])
        if not key:
            continue
        dose = it["dose"]
        if dose is None:
            return key, None, None
        if dose.get("unit", "").upper() != "MG" or dose.get("per", "").upper() != "D" or dose.get("op") != ">":
            continue  # a threshold this rule cannot read is never guessed
        dd = _daily(order, key)
        if dd is not None and dd.per_day_mg > float(dose["value"]) + 1e-9:
            return key, dd.per_day_mg, dose
    return None


def _judged_orders(call: RuleCall) -> list[MedicationOrder]:
    """Identified lines that count (not stopped, cancelled …), whenever they were taken: each is
    judged at its own date (:func:`checker.facts.judgement_days`), never only when current."""
    return [o for o in call.identified_orders() if counts(o)]


def _tables(call: RuleCall) -> FactTables:
    tables: FactTables = call.refs.get("clinical-facts")
    return tables


def _holds_plain(node: criteria.Node | None, call: RuleCall, order: MedicationOrder, key: str, day: date | None
                 ) -> bool | None:
    """The verdict of a row's criterion for the line on ``day`` (``True`` when the row states none;
    ``day`` ``None``: the line's own day)."""
    if node is None:
        return True
    if day is None:
        day = facts.order_day(order, call.as_of)
    ctx = LineContext(call.record, day, call.refs.get("clinical-facts"), order, key)
    return criteria.evaluate(node, ctx).value


# --- answers shared across lines and records --------------------------------------------------------
# Each of these memos keeps the objects its answer was computed from (so that their ids are not
# reused while an entry exists) and is emptied when full; tests/test_rule_fast_paths.py checks
# that the rules give the same findings with the plain functions.

_VERDICTS: dict[tuple[int, object], tuple[object, bool | None]] = {}


def _holds(node: criteria.Node | None, call: RuleCall, order: MedicationOrder, key: str, day: date | None
           ) -> bool | None:
    """:func:`_holds_plain`, remembered where the verdict depends on one value only: an age condition
    of the rows (no population of the facts tables) on the patient's age that day, a route condition
    on the line's route (which reads no day: ``day`` may be left ``None``, the line's own day, worked
    out only if needed). Other nodes are evaluated each time."""
    kind = type(node)
    if kind is criteria.Age and node.population is None:  # type: ignore[union-attr]
        on: object = call.record.age_on(facts.order_day(order, call.as_of) if day is None else day)
    elif kind is criteria.Route:
        on = _route_of(order)
    else:
        return _holds_plain(node, call, order, key, day)
    hit = _VERDICTS.get((id(node), on))
    if hit is None:
        if len(_VERDICTS) >= MAX_ENTRIES:
            _VERDICTS.clear()
        hit = _VERDICTS[(id(node), on)] = (node, _holds_plain(node, call, order, key, day))
    return hit[1]


_ROUTES: dict[tuple[int, int, int], tuple[object, str | None]] = {}


def _route_of(order: MedicationOrder) -> str | None:
    """:func:`checker.iatrogenic.conditions.route_of`, which reads the line's dosages, identified
    medication and coded medication only: remembered per these three objects (shared by the lines of
    one reading that name the same medication and dosage)."""
    k = (id(order.dosages), id(order.identity), id(order.medication))
    hit = _ROUTES.get(k)
    if hit is None:
        if len(_ROUTES) >= MAX_ENTRIES:
            _ROUTES.clear()
        hit = _ROUTES[k] = ((order.dosages, order.identity, order.medication), route_of(order))
    return hit[1]


_DAILY: dict[tuple[int, int, str], tuple[object, DailyDose | None]] = {}


def _daily(order: MedicationOrder, key: str) -> DailyDose | None:
    """:func:`checker.iatrogenic.doses.daily_dose`, which reads the line's identified medication and
    dosages only: remembered per these two objects and the substance (PR005 asks it up to four
    times per line, PR003 and PR002 once per criterion)."""
    k = (id(order.identity), id(order.dosages), key)
    hit = _DAILY.get(k)
    if hit is None:
        if len(_DAILY) >= MAX_ENTRIES:
            _DAILY.clear()
        hit = _DAILY[k] = ((order.identity, order.dosages), daily_dose(order, key))
    return hit[1]


def line_daily_dose(order: MedicationOrder, key: str) -> DailyDose | None:
    """:func:`checker.iatrogenic.doses.daily_dose` of a line, remembered as PR005 remembers it (DU001
    states the total of two lines)."""
    return _daily(order, key)


# --- triggers (see checker.registry.Trigger) --------------------------------------------------------

def _allergy_trigger(refs: Referentials) -> Trigger:
    """An identified line and an allergy recorded."""
    return Trigger(record=facts.lists_allergies)


def _elderly_trigger(refs: Referentials) -> Trigger:
    data: IatrogenicRules = refs.get("iatrogenic-rules")
    return Trigger(medication=lambda ident: _elderly_candidate(data, ident))


def _renal_trigger(refs: Referentials) -> Trigger:
    data: IatrogenicRules = refs.get("iatrogenic-rules")
    return Trigger(medication=lambda ident: _renal_candidate(data, ident))


def _rows_trigger(refs: Referentials, kind: str, lines: int = 1) -> Trigger:
    """A line (``lines`` lines) whose medication one of the rows of ``kind`` concerns."""
    data: IatrogenicRules = refs.get("iatrogenic-rules")
    return Trigger(medication=lambda ident: any(row_matches(row, ident) for row in data.kind(kind)), lines=lines)


def _pregnancy_trigger(refs: Referentials) -> Trigger:
    return _rows_trigger(refs, "pregnancy")


def _max_dose_trigger(refs: Referentials) -> Trigger:
    return _rows_trigger(refs, "max-dose")


def _accumulation_trigger(refs: Referentials) -> Trigger:
    """As many lines as the smallest class asks for, each with a substance in a class."""
    data: IatrogenicRules = refs.get("iatrogenic-rules")
    th: Thesaurus = refs.get("ansm-thesaurus")
    need = min((int(row.params.get("min_lines", 3)) for row in data.kind("accumulation")), default=1)
    return Trigger(medication=lambda ident: any(_accumulation_keys(th, data, ident)), lines=need)


# --- PR001 allergy -------------------------------------------------------------------------------

def _word_hit(token: str, text: str) -> bool:
    """``token`` begins a word of ``text`` (a stem such as "penicill"); tokens of four letters or
    fewer ("ains") must be a whole word, so "certains pollens" or "grains" never match."""
    if len(token) <= 4:
        return re.search(rf"(?<![a-z0-9]){re.escape(token)}(?![a-z0-9])", text) is not None
    return re.search(rf"(?<![a-z0-9]){re.escape(token)}", text) is not None


def _allergy_tokens(a: Allergy) -> tuple[str, set[str]]:
    text = " ".join(fold(t) for t in a.code.all_texts())
    codes = {f"sct {c.code}" for c in a.code.codings if "snomed" in c.system.lower()}
    return text, codes


@rule("PR001", name="allergy", category="allergy", severity="critical",
      source=Source("RCP (BDPM), rubrique 4.3 Contre-indications : hypersensibilité", "https://base-donnees-publique.medicaments.gouv.fr/", "2026-01"),
      referentials=("iatrogenic-rules", "clinical-facts"),
      trigger=_allergy_trigger)
def allergy(call: RuleCall) -> Iterator[Finding]:
    """Prescribed drug to which the patient has a recorded allergy or intolerance.

    A line contains a substance named (by its name, or by a BDPM brand name: « Augmentin ») in an
    AllergyIntolerance that stands on the order's date (and on the last day the line was taken), or
    a member of an allergy class with cross-reactivity (penicillins, cephalosporins, NSAIDs,
    sulfonamides). The facts layer says which allergies stand
    on a day (:func:`checker.facts.allergies_on`): one recorded after a finished course does not
    count against it; refuted, entered-in-error, resolved ones and records of no allergy never do;
    an allergen named only to be denied (« pas d'allergie à la pénicilline ») is not one.

    Source: the contraindication for hypersensitivity in the summaries of product characteristics
    (BDPM, section 4.3); class rows in ``referentials/iatrogenic/patient-risks.tsv``.
    """
    data: IatrogenicRules = call.refs.get("iatrogenic-rules")
    tables = _tables(call)
    for order in _judged_orders(call):
        if not call.in_focus(order):  # a CDS request judges its drafts only
            continue
        for day in facts.judgement_days(order, call.as_of):  # the order's day, then today if still taken
            found = _allergy_hit(data, order, facts.allergies_on(call.record, day, tables), call.refs)
            if found is None:
                continue
            a, key, row = found
            label = a.code.label()
            name = order.substance_name(key)
            params: dict[str, Param] = {"substance": name, "line": order.label, "allergen": label}
            if row is None:
                message = Message("PR001", params)
                source, severity = None, None
            else:
                message = Message("PR001-class", {**params, "class_label": Localized(row.label_fr, row.label_en)})
                source, severity = row.source, row.severity
            yield call.finding(message=message, implicated=[order.ref], key=f"{a.ref}:{key}",
                               source=source, severity=severity,
                               evidence={"allergy": a.ref, "allergen": label, "substance": key,
                                         "class": row.id if row else None, "criticality": a.criticality,
                                         "judged_on": day.isoformat(),
                                         "allergy_onset": a.onset.isoformat() if a.onset else None,
                                         "allergy_recorded": a.recorded.isoformat() if a.recorded else None},
                               suggestion={"action": "stop-or-replace"})
            break


_BRAND_ALLERGENS: dict[tuple[tuple[str, ...], int], tuple[Referentials | None, frozenset[str]]] = {}
holds_request_words(_BRAND_ALLERGENS.clear)  # keyed by an allergy's wording: the patient's words


def _brand_allergens(a: Allergy, refs: Referentials | None) -> frozenset[str]:
    """Substance keys of the brand names the allergy's wording names other than to deny them: each
    word of five letters or more that reads, alone, as a BDPM brand at the rules' confidence, by its
    exact name (« Augmentin » → amoxicillin, clavulanic acid). Remembered per wording."""
    texts = a.code.all_texts()
    found = _BRAND_ALLERGENS.get((texts, id(refs)))
    if found is not None and found[0] is refs:
        return found[1]
    keys: set[str] = set()
    for word in {w for t in texts for w in fold(t).split() if len(w) >= 5 and w.isalpha()}:
        ident = identify_text(word, refs)
        if (ident is not None and ident.method == "text-exact" and ident.prescribed_as == "brand"
                and ident.confidence >= RULE_CONFIDENCE and _named(a, word, True)):
            keys |= ident.substance_keys
    if len(_BRAND_ALLERGENS) >= MAX_ENTRIES:
        _BRAND_ALLERGENS.clear()
    _BRAND_ALLERGENS[(texts, id(refs))] = (refs, frozenset(keys))
    return frozenset(keys)


def _named(a: Allergy, token: str, whole_word: bool = False) -> bool:
    """The allergy's wording names ``token`` (a folded substance key or class stem) other than to deny it."""
    end = r"(?![a-z0-9])" if whole_word or len(token) <= 4 else ""
    return facts.allergen_polarity(a, _token_pattern(token, end)) is True


@functools.lru_cache(maxsize=4096)
def _token_pattern(token: str, end: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![a-z0-9]){re.escape(token)}{end}")


def _allergy_hit(data: IatrogenicRules, order: MedicationOrder, allergies: list[Allergy],
                 refs: Referentials | None = None) -> tuple[Allergy, str, RiskRow | None] | None:
    """The first standing allergy that names a substance of the line (by its name, or by a brand
    name of the BDPM: « Allergie : Augmentin »), or its class (a brand's substances reach it as
    their names written would: « Augmentin », amoxicillin, a penicillin): ``(allergy, substance key,
    class row or None)``."""
    for a in allergies:
        text, codes = _allergy_tokens(a)
        for s in order.identity.substances if order.identity else ():
            if s.key and ((re.search(rf"(?<![a-z0-9]){re.escape(s.key)}(?![a-z0-9])", text) and _named(a, s.key, True))
                          or any(key_matches(s.key, w) for w in text.split(" , "))):
                return a, s.key, None
        brand_keys = _brand_allergens(a, refs)
        for s in order.identity.substances if order.identity and brand_keys else ():
            if s.key in brand_keys:
                return a, s.key, None
        for class_row in data.kind("allergy-class"):
            allergen_hit = any(_word_hit(t, text) and _named(a, t) if not t.startswith("sct ") else (t in codes)
                               for t in class_row.allergens) or any(  # a brand's substance, as if written by name
                _word_hit(t, key) for key in brand_keys for t in class_row.allergens if not t.startswith("sct "))
            if not allergen_hit:
                continue
            assert order.identity is not None  # identified_orders() yields identified lines only
            keys = class_row.matches_order(order) or [
                s.key for s in order.identity.substances
                if any(t in s.key for t in class_row.allergens if not t.startswith("sct "))]
            if keys:
                return a, keys[0], class_row
    return None


# --- PR002 older people --------------------------------------------------------------------------

@rule("PR002", name="elderly-inappropriate", category="contraindication", severity="warning", source=STOPP_SOURCE,
      referentials=("iatrogenic-rules", "clinical-facts"),
      trigger=_elderly_trigger)
def elderly(call: RuleCall) -> Iterator[Finding]:
    """Potentially inappropriate medication in an older patient.

    From the STOPP/START age (65, ``populations`` of ``referentials/facts/clinical-facts.json``):
    benzodiazepines (K1), Z-drugs (K4), first-generation antihistamines (D14), centrally acting
    antihypertensives (B10), ticlopidine (C7), long-acting
    sulphonylureas (J1), salicylate antiplatelets above the daily doses of C1 from structured dosage
    (aspirin 160 mg, carbasalate 200 mg): every drug-only iteration of the criteria listed in
    ``referentials/iatrogenic/stopp-selection.json``. Durations of benzodiazepine use (STOPP D5) are
    left to the protocol rule OP002 (HAS durations), which judges the same line. From the age of each
    Laroche row (``min_age`` in ``patient-risks.tsv``, 75; French Laroche list, 2007): long half-life
    benzodiazepines. The age is the age on the order's date (and on the last day the line was
    taken). One finding per line with every criterion met in ``evidence``.

    Source: STOPP/START v2 (O'Mahony et al. 2015, coded by Huibers et al. 2019); Laroche ML et al.,
    Eur J Clin Pharmacol 2007;63:725-731.
    """
    data: IatrogenicRules = call.refs.get("iatrogenic-rules")
    for order in _judged_orders(call):
        if not call.in_focus(order) or not _elderly_candidate(data, order.identity):
            continue  # no criterion can concern this medication, whatever the age
        for day in facts.judgement_days(order, call.as_of):  # the order's day, then today if still taken
            found = _elderly_hits(call, data, order, facts.age_on(call.record, day), day)
            if found is not None:
                yield found
                break


@by_identities
def _elderly_candidate(data: IatrogenicRules, identity: MedicationIdentity | None) -> bool:
    """Whether a PR002 criterion names a substance of this medication (ATC of a drug-only STOPP
    iteration, or a Laroche row): the lines that need an age at all."""
    return identity is not None and (any(
        _identity_atc_hit(identity, it["atc"]) for rid in data.stopp_selection("elderly")
        for it in data.stopp_drug_iterations(rid)) or any(
        row_matches(row, identity) for row in data.kind("elderly")))


@by_identities
def _renal_candidate(data: IatrogenicRules, identity: MedicationIdentity | None) -> bool:
    """Whether a PR003 threshold names a substance of this medication (ATC of a STOPP renal
    iteration, or a renal row): the lines that need the renal function at all."""
    return identity is not None and (any(
        _identity_atc_hit(identity, it["medicines"][0]["atc"]) for rid in data.stopp_selection("renal")
        for it in data.stopp["rules"][rid]["iterations"]) or any(
        row_matches(row, identity) for row in data.kind("renal")))


@by_identities
def _renal_hits(data: IatrogenicRules, identity: MedicationIdentity | None
                ) -> dict[str, tuple[tuple[dict[str, Any], dict[str, Any], str], ...]]:
    """For each STOPP renal criterion, its iterations whose medicine's ATC names a substance of this
    medication, in order, as ``(iteration, medicine, substance key)`` (the others are passed over)."""
    out: dict[str, tuple[tuple[dict[str, Any], dict[str, Any], str], ...]] = {}
    for rid in data.stopp_selection("renal"):
        found = []
        for it in data.stopp["rules"][rid]["iterations"]:
            med = it["medicines"][0]
            key = _identity_atc_hit(identity, med["atc"])
            if key:
                found.append((it, med, key))
        if found:
            out[rid] = tuple(found)
    return out


def _elderly_hits(call: RuleCall, data: IatrogenicRules, order: MedicationOrder, age: int | None, day: date
                  ) -> Finding | None:
    """The PR002 finding for ``order`` at ``age``, or ``None``."""
    if age is None:
        return None
    hits: list[dict[str, Any]] = []
    phrases: list[Message] = []  # the reason of each criterion, worded in either language
    sources: list[Source] = []
    stopp = age >= _tables(call).population(STOPP_POPULATION).from_age
    for rid, words in data.stopp_selection("elderly").items() if stopp else ():
        hit = _stopp_drug_hit(data, rid, order)
        if hit is not None:
            key, daily_mg, dose = hit
            entry: dict[str, Any] = {"criterion": rid, "substance": key}
            why = Localized(words["fr"], words["en"])
            if dose is not None:
                entry.update(daily_mg=round(daily_mg or 0.0, 1), above_mg=dose["value"])
                phrases.append(Message("PR002.why-dose", {"why": why, "mg": daily_mg or 0.0, "above": float(dose["value"])}))
            else:
                phrases.append(Message("PR002.why", {"why": why}))
            hits.append(entry)
    sources.extend(STOPP_SOURCE for _ in hits)  # one source per criterion, in the order of ``hits``
    for row in data.kind("elderly"):  # each row judges its own age (its ``min_age``)
        keys = data.row_keys("elderly", order).get(id(row), ())
        if keys and _holds(row.criteria.population, call, order, keys[0], day) is True:
            hits.append({"criterion": f"Laroche 2007 ({row.id})", "substance": keys[0]})
            phrases.append(Message("PR002.why", {"why": Localized(row.label_fr, row.label_en)}))
            sources.append(row.source)
    if not hits:
        return None
    message = Message("PR002", {"age": age, "substance": order.substance_name(hits[0]["substance"]),
                                "line": order.label, "whys": Phrases(_distinct(phrases))})
    return call.finding(message=message, implicated=[order.ref], key=hits[0]["substance"],
                       source=sources[0],  # the source of the first criterion met
                       evidence={"age": age, "judged_on": day.isoformat(), "criteria": hits,
                                 "sources": list(dict.fromkeys(f"{x.label} ({x.edition})" for x in sources))},
                       suggestion={"action": "reassess"})


def _distinct(messages: list[Message]) -> tuple[Message, ...]:
    """``messages`` without repeats (same code and parameters), first kept."""
    seen: dict[tuple[str, tuple[tuple[str, Any], ...]], Message] = {}
    for m in messages:
        seen.setdefault((m.code, tuple(sorted(m.params.items()))), m)
    return tuple(seen.values())


# --- PR003 renal function ------------------------------------------------------------------------

def renal_value(record: PatientRecord, day: date | None = None, tables: FactTables | None = None
                ) -> tuple[str, float, Observation] | None:
    """Most recent creatinine clearance or eGFR with a value on or before ``day``, within the validity
    window (any date, no window, when ``day`` is ``None``): ``(kind, value, observation)``."""
    if tables is None:
        tables = default_referentials().get("clinical-facts")
    assert tables is not None
    return facts.renal_on(record, day or date.max, tables, windowed=day is not None)


def _ckd_codes(record: PatientRecord, day: date) -> set[str]:
    """ICD-10 codes of the conditions present on ``day`` (chronic kidney disease stages N18.x)."""
    out = set()
    for c in facts.conditions_on(record, day):
        for coding in c.code.codings:
            if "icd" in coding.system.lower() or "cim" in coding.system.lower():
                out.add(coding.code.upper())
    return out


@rule("PR003", name="renal-function", category="contraindication", severity="warning", source=STOPP_SOURCE,
      referentials=("iatrogenic-rules", "clinical-facts"),
      trigger=_renal_trigger)
def renal(call: RuleCall) -> Iterator[Finding]:
    """Drug to avoid or stop at the patient's level of renal function.

    Thresholds on eGFR (mL/min/1.73 m²) from STOPP/START v2: digoxin above 125 µg/day below 30 (E1),
    direct thrombin inhibitors below 30 (E2), factor Xa inhibitors below 15 (E3), NSAIDs below 50
    (E4), colchicine below 10 (E5), metformin below 30 (E6), or the matching chronic kidney disease
    stage (ICD-10 N18.x); colchicine with creatinine clearance below 30 mL/min (ANSM 2016). Each line
    is judged at its own date (and again on ``as_of`` while still taken): the most recent creatinine
    clearance or eGFR (the LOINC codes of the facts tables) taken on or before that
    day, within the validity window of ``referentials/facts/clinical-facts.json`` (a project
    convention). When a line needs the renal function and none is recorded in that window, an info
    finding says so. The STOPP criteria apply from the STOPP/START age of the facts tables'
    ``populations`` (65, the population STOPP/START is written for) or when the age is unknown. The
    AGS Beers 2023 kidney table (table 6: anticoagulants, potassium-sparing diuretics,
    co-trimoxazole, gabapentinoids, levetiracetam, NSAIDs, H2 blockers…, one row per threshold,
    "≤ N" rows flagged with ``inclusive``) applies from each row's ``min_age`` (65 too).

    When no eGFR or clearance is recorded, the creatinine clearance is computed with the
    Cockcroft–Gault formula from the latest serum creatinine (mg/dL, mg/L, µmol/L or mmol/L,
    converted), weight, age and sex (:func:`checker.facts.kidney_function_on`); when one of these is
    missing the info finding names it (``evidence.missing_for_cockcroft_gault``).

    Source: STOPP/START v2 criteria E1–E6; ANSM, colchicine, 21 September 2016; AGS Beers Criteria
    2023, table 6; Cockcroft DW, Gault MH, Nephron 1976;16:31–41.
    """
    data: IatrogenicRules = call.refs.get("iatrogenic-rules")
    tables = _tables(call)
    for order in _judged_orders(call):
        if not call.in_focus(order) or not _renal_candidate(data, order.identity):
            continue  # no threshold concerns this medication: nothing to judge, nothing missing
        missing: Finding | None = None
        judged = False
        for day in facts.judgement_days(order, call.as_of):
            status, found = _renal_at(call, data, tables, order, day, word_missing=missing is None)
            if status == "flag":
                yield found  # type: ignore[misc]
                break
            if status == "ok":
                judged = True
            elif status == "missing" and missing is None:
                missing = found
        else:
            if missing is not None and not judged:
                yield missing


def _renal_at(call: RuleCall, data: IatrogenicRules, tables: FactTables, order: MedicationOrder, day: date,
              word_missing: bool = True) -> tuple[str, Finding | None]:
    """``("flag", finding)``, ``("ok", None)``, ``("missing", info finding)`` or ``("none", None)``
    (no renal threshold for this line) for ``order`` judged on ``day``; without ``word_missing``,
    ``("missing", None)`` (the caller keeps the first day's info finding only)."""
    concerned = _concerned(call, data, tables, order, day)
    if not concerned:
        return "none", None
    subst = order.substance_name(concerned[0]["substance"])
    kidney = _kidney_on(call, day, tables)
    on = day.isoformat()
    if kidney.value is None:
        ckd = _ckd_codes(call.record, day)
        by_stage = [c for c in concerned if any(code.startswith(tuple(c["ckd"])) for code in ckd)] if ckd else []
        if by_stage:
            c = by_stage[0]
            return "flag", call.finding(
                message=Message("PR003-ckd", {"substance": subst, "line": order.label, "codes": ", ".join(sorted(ckd)),
                                              "criterion": c["criterion"], "what": c["what"]}),
                implicated=[order.ref], key=c["substance"],
                evidence={"criteria": _clean(concerned), "ckd": sorted(ckd), "judged_on": on})
        if not word_missing:
            return "missing", None
        limits = _limits(concerned)
        window = tables.window("renal-function")
        return "missing", call.finding(
            message=Message("PR003-missing", {"substance": subst, "line": order.label, "limits": limits,
                                              "window": window if window is not None else "—", "day": day,
                                              "lacking": Words("renal_input", tuple(kidney.missing), ", ")}),
            implicated=[order.ref], key=f"missing:{concerned[0]['substance']}", severity=Severity.INFO,
            evidence={"criteria": _clean(concerned), "missing": "egfr", "missing_for_cockcroft_gault": list(kidney.missing),
                      "judged_on": on, "window_days": window},
            suggestion={"action": "measure-renal-function"})
    return _renal_flag(call, order, day, kidney, concerned, subst, on, word_missing)


_Concerned = tuple[dict[str, Any], ...]
_LIMITS: dict[int, tuple[_Concerned, Phrases]] = {}


def _limits(concerned: _Concerned) -> Phrases:
    """The thresholds of the criteria concerned, worded (once per tuple of criteria: the tuples are
    shared, see :func:`_concerned`)."""
    hit = _LIMITS.get(id(concerned))
    if hit is None:
        if len(_LIMITS) >= MAX_ENTRIES:
            _LIMITS.clear()
        hit = _LIMITS[id(concerned)] = (concerned, _limits_plain(concerned))
    return hit[1]


def _limits_plain(concerned: _Concerned) -> Phrases:
    return Phrases(tuple(Message("PR003.limit-stated", {"what": c["what"]}) if "row" in c  # its label states it
                         else Message("PR003.limit", {"what": c["what"], "below": float(c["below"]),
                                                      "op": Word("renal_op", "le" if c.get("inclusive") else "lt")})
                         for c in concerned))

_CONCERNED: dict[tuple[int, int, int, int, int | None], tuple[object, _Concerned]] = {}


def _concerned(call: RuleCall, data: IatrogenicRules, tables: FactTables, order: MedicationOrder, day: date
               ) -> _Concerned:
    """:func:`_concerned_plain`, remembered per identified medication, dosages and age when every
    renal row's population is an age condition (as in the shipped rows): it then reads nothing else
    of the line, the record or the day. Not to be modified."""
    if not _renal_ages_only(data):
        return _concerned_plain(call, data, tables, order, day)
    k = (id(data), id(tables), id(order.identity), id(order.dosages), call.record.age_on(day))
    hit = _CONCERNED.get(k)
    if hit is None:
        if len(_CONCERNED) >= MAX_ENTRIES:
            _CONCERNED.clear()
        hit = _CONCERNED[k] = ((data, tables, order.identity, order.dosages),
                               _concerned_plain(call, data, tables, order, day))
    return hit[1]


@by_identities
def _renal_ages_only(data: IatrogenicRules) -> bool:
    """Whether the population of every renal row is an age condition of the row (or none)."""
    return all(r.criteria.population is None or (type(r.criteria.population) is criteria.Age
                                                 and r.criteria.population.population is None)
               for r in data.kind("renal"))


def _concerned_plain(call: RuleCall, data: IatrogenicRules, tables: FactTables, order: MedicationOrder, day: date
                     ) -> _Concerned:
    """The renal criteria that concern the line on ``day`` (STOPP iterations by ATC and dose, from the
    STOPP/START age or an unknown age; renal rows of the line's medication from their own age), each
    with its wording (``what``)."""
    age = facts.age_on(call.record, day)
    stopp_applies = age is None or age >= tables.population(STOPP_POPULATION).from_age  # the STOPP/START population
    concerned: list[dict[str, Any]] = []
    what: dict[int, Localized] = {}  # the wording of each criterion, by its place in ``concerned``
    hits = _renal_hits(data, order.identity)
    for rid, words in data.stopp_selection("renal").items() if stopp_applies else ():
        for it, med, key in hits.get(rid, ()):
            if "dose" in med:
                dd = _daily(order, key)
                if dd is not None and not dd.per_day_mg > med["dose"]["value"]:
                    break  # dose under the criterion's threshold: not concerned
            if it["egfr"]:
                what[len(concerned)] = Localized(words["fr"], words["en"])
                concerned.append({"criterion": rid, "substance": key, "below": it["egfr"]["value"], "ckd": []})
            elif it["ckd_icd10"] and concerned and concerned[-1]["criterion"] == rid:
                concerned[-1]["ckd"] = it["ckd_icd10"]
    for renal_row, keys in data.matching("renal", order):  # the rows naming the line's medication, in row order
        if keys and _holds(renal_row.criteria.population, call, order, keys[0], day) is not False:  # unknown age: applies
            what[len(concerned)] = Localized(renal_row.label_fr, renal_row.label_en)
            concerned.append({"criterion": renal_row.id, "substance": keys[0],
                              "below": float(renal_row.params["below"]),
                              "inclusive": bool(renal_row.params.get("inclusive")),  # source says "≤ N"
                              "ckd": [], "row": renal_row})
    for n, c in enumerate(concerned):
        c["what"] = what[n]
    return tuple(concerned)


def _renal_flag(call: RuleCall, order: MedicationOrder, day: date, kidney: facts.KidneyFunction,
                concerned: _Concerned, subst: str, on: str, word_missing: bool = True) -> tuple[str, Finding | None]:
    """``("flag", finding)`` when the kidney function is below a criterion that concerns the line,
    ``("missing", info finding)`` when it is a bound that cannot tell (« DFG < 60 » for a threshold of
    30), else ``("ok", None)``."""
    assert kidney.value is not None
    kind, value = kidney.kind or "", kidney.value
    below = [c for c in concerned if (_holds(c["row"].criteria.risk, call, order, c["substance"], day) is True
                                      if "row" in c else facts.renal_below(value, kidney.comparator, c["below"]))]
    if not below and kidney.comparator:
        return _renal_bound(call, order, day, kidney, concerned, subst, on, word_missing)
    if not below:
        return "ok", None
    worst = max(below, key=lambda c: SEVERITY_RANK[c["row"].severity] if "row" in c else 1)
    row: RiskRow | None = worst.get("row")
    when = kidney.measured_on.isoformat() if kidney.measured_on else None
    extra: list[Message] = []
    if kind == "cockcroft-gault" and kidney.inputs:
        i = kidney.inputs
        extra.append(Message("PR003.cockcroft-gault", {"creatinine": str(i["creatinine"]),
                                                       "weight": float(i["weight_kg"]), "age": float(i["age"]),
                                                       "sex": Word("sex", str(i["sex"]))}))
    if row is not None and kind == "egfr":
        extra.append(Message("PR003.egfr-stands-in"))
    open_: list[dict[str, Any]] = []
    if kidney.comparator:  # « < 30 » settles ≤ 50 but not < 15: the thresholds left open are named
        open_ = [c for c in concerned if c not in below and (
            _holds(c["row"].criteria.risk, call, order, c["substance"], day) is None if "row" in c
            else facts.renal_below(value, kidney.comparator, c["below"]) is None)]
        if open_:
            extra.append(Message("PR003.bound-open", {"bound": f"{kidney.comparator} {value:g}",
                                                      "limits": _limits_plain(tuple(open_))}))
    measured: Param = kidney.measured_on if kidney.measured_on else Word("renal_kind", "undated")
    kind_word = Word("renal_kind", kind if kind in KIDNEY_KINDS else "egfr")
    op = Word("renal_op", "le" if worst.get("inclusive") else "lt")
    under = Word("renal_under", "le" if worst.get("inclusive") else "lt")
    if kidney.comparator:  # a bound (« DFG < 30 ») is worded as written, not as a value
        message = Message("PR003-bounded", {
            "substance": subst, "line": order.label, "kind": kind_word, "bound": f"{kidney.comparator} {value:g}",
            "below": float(worst["below"]), "when": measured, "op": op, "under": under,
            "criterion": worst["criterion"], "what": worst["what"]}, tuple(extra))
    else:
        message = Message("PR003", {
            "substance": subst, "line": order.label, "kind": kind_word, "value": float(value),
            "below": float(worst["below"]), "when": measured, "op": op, "under": under,
            "criterion": worst["criterion"], "what": worst["what"]}, tuple(extra))
    return "flag", call.finding(
        message=message,
        implicated=[order.ref], key=worst["substance"],
        severity=row.severity if row is not None else None, source=row.source if row is not None else None,
        evidence={"renal": {"kind": kind, "value": value, "observation": kidney.refs[0] if kidney.refs else None,
                            "records": list(kidney.refs), "date": when, "inputs": kidney.inputs,
                            **({"comparator": kidney.comparator} if kidney.comparator else {})},
                  "criteria": _clean(below), "judged_on": on,
                  **({"open_criteria": _clean(open_)} if open_ else {})},
        suggestion={"action": "stop-or-adjust"})


def _renal_bound(call: RuleCall, order: MedicationOrder, day: date, kidney: facts.KidneyFunction,
                 concerned: _Concerned, subst: str, on: str, word_missing: bool) -> tuple[str, Finding | None]:
    """A renal function recorded as a bound that decides no criterion of the line (« < 60 » against a
    threshold of 30): ``("ok", None)`` when each criterion is decided (none below), else an info
    finding naming the bound (``("missing", None)`` without ``word_missing``)."""
    assert kidney.value is not None
    open_ = [c for c in concerned if (_holds(c["row"].criteria.risk, call, order, c["substance"], day) is None
                                      if "row" in c else facts.renal_below(kidney.value, kidney.comparator,
                                                                           c["below"]) is None)]
    if not open_:
        return "ok", None
    if not word_missing:
        return "missing", None
    kind = kidney.kind or "egfr"
    bound = f"{kidney.comparator} {kidney.value:g}"
    return "missing", call.finding(
        message=Message("PR003-bound", {"substance": subst, "line": order.label, "limits": _limits(concerned),
                                        "kind": Word("renal_kind", kind if kind in KIDNEY_KINDS else "egfr"),
                                        "bound": bound, "day": day}),
        implicated=[order.ref], key=f"missing:{concerned[0]['substance']}", severity=Severity.INFO,
        evidence={"criteria": _clean(open_), "missing": "egfr", "bound": bound,
                  "observation": kidney.refs[0] if kidney.refs else None,
                  "date": kidney.measured_on.isoformat() if kidney.measured_on else None, "judged_on": on},
        suggestion={"action": "measure-renal-function"})


def _kidney_on(call: RuleCall, day: date, tables: FactTables) -> facts.KidneyFunction:
    """:func:`checker.facts.kidney_function_on` for this record, once per day (lines share their days);
    once per sex and known or unknown age for the records without any usable observation."""
    memo: dict[object, facts.KidneyFunction] = call.shared.setdefault(("PR003", "kidney"), {})  # type: ignore[assignment]
    found = memo.get(day)
    if found is None:
        if next(facts.observations_on(call.record, date.max), None) is not None:
            found = memo[day] = facts.kidney_function_on(call.record, day, tables)
        else:  # no usable measure, creatinine or weight on any day: only the sex and whether the age is known count
            patient = call.record.patient
            k = (id(tables), call.record.age_on(day) is None, patient.sex if patient is not None else None)
            hit = _UNMEASURED.get(k)
            if hit is None:
                if len(_UNMEASURED) >= MAX_ENTRIES:
                    _UNMEASURED.clear()
                hit = _UNMEASURED[k] = (tables, facts.kidney_function_on(call.record, day, tables))
            found = memo[day] = hit[1]
    return found


_UNMEASURED: dict[tuple[int, bool, str | None], tuple[FactTables, facts.KidneyFunction]] = {}
"""The kidney function of records without observations (it then names what is missing)."""


def _clean(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The criteria as evidence data: the wording of each (``what``) goes to the message, not here."""
    return [{k: v for k, v in c.items() if k not in ("row", "what")} for c in items]


# --- PR004 pregnancy ------------------------------------------------------------------------------

def pregnancy_recorded(record: PatientRecord, day: date, tables: FactTables | None = None) -> str | None:
    """Reference of the record element stating a pregnancy on ``day``, else ``None`` (see
    :func:`checker.facts.pregnancy_on`)."""
    if tables is None:
        tables = default_referentials().get("clinical-facts")
    assert tables is not None
    fact = facts.pregnancy_on(record, day, tables)
    return fact.ref if fact.value else None


@rule("PR004", name="pregnancy", category="contraindication", severity="critical",
      source=Source("ANSM / RCP (BDPM)", "https://ansm.sante.fr/", "2018"),
      referentials=("iatrogenic-rules", "clinical-facts"),
      trigger=_pregnancy_trigger)
def pregnancy(call: RuleCall) -> Iterator[Finding]:
    """Drug contraindicated or to avoid during a recorded pregnancy.

    Only when a pregnancy is recorded on the order's date or on the last day the line was taken
    (a pregnancy status observation, codes in the facts tables, within its window, or a pregnancy condition
    present that day; denied, refuted, hypothetical or someone else's pregnancy never counts, see
    :mod:`checker.facts`): valproate and valpromide, oral isotretinoin,
    ACE inhibitors/ARBs/aliskiren (critical); warfarin and acenocoumarol, to be replaced by a heparin
    except in rare indications such as a mechanical valve (warning). Each row names its source. When
    the record raises a pregnancy only as a hypothesis (« suspicion de grossesse », « grossesse peu
    probable ») and nothing settles it, a drug of a critical row gets an information finding naming
    the missing pregnancy status.

    Source: ANSM (valproate pregnancy prevention programme 2018; isotretinoin); summaries of product
    characteristics (BDPM) sections 4.3/4.6; CRAT warfarin and acenocoumarol pages (2023-04-02).
    """
    data: IatrogenicRules = call.refs.get("iatrogenic-rules")
    tables = _tables(call)
    for order in _judged_orders(call):
        rows = data.matching("pregnancy", order) if call.in_focus(order) else ()
        if not rows:
            continue
        found = False
        for day in facts.judgement_days(order, call.as_of):
            verdicts = [(row, keys, criteria.evaluate(row.criteria.risk,
                                                      LineContext(call.record, day, tables, order, keys[0])))
                        for row, keys in rows if row.criteria.risk is not None]
            pregnant = [(row, keys, v) for row, keys, v in verdicts if v.value is True]
            if not pregnant:
                continue
            for row, keys, verdict in pregnant:
                where = verdict.evidence[0].ref
                yield call.finding(
                    message=Message("PR004", {"risk": Localized(row.label_fr, row.label_en), "where": where or "",
                                              "line": order.label}),
                    implicated=[order.ref], key=f"{row.id}:{keys[0]}", severity=row.severity, source=row.source,
                    evidence={"pregnancy": where, "rule": row.id, "substance": keys[0], "judged_on": day.isoformat()},
                    suggestion={"action": "stop-or-replace"})
            found = True
            break
        if not found:
            yield from _pregnancy_evoked(call, tables, order, rows)


def _pregnancy_evoked(call: RuleCall, tables: FactTables, order: MedicationOrder,
                      rows: Sequence[tuple[RiskRow, tuple[str, ...]]]) -> Iterator[Finding]:
    """A pregnancy the record raises without settling it (« suspicion de grossesse ») on the order's
    day, for a drug contraindicated in pregnancy (critical rows): what is missing is the pregnancy
    status, which the record itself asks for. Information, once per line."""
    critical = [(row, keys) for row, keys in rows if row.severity == Severity.CRITICAL]
    if not critical:
        return
    day = facts.order_day(order, call.as_of)
    evoked = facts.pregnancy_evoked_on(call.record, day, tables)
    if not evoked.value:
        return
    row, keys = critical[0]
    yield call.finding(
        message=Message("PR004-evoked", {"risk": Localized(row.label_fr, row.label_en), "what": evoked.what or "",
                                         "line": order.label}),
        implicated=[order.ref], key=f"evoked:{row.id}:{keys[0]}", severity=Severity.INFO, source=row.source,
        evidence={"pregnancy": "evoked", "evoked_by": evoked.ref, "rule": row.id, "substance": keys[0],
                  "missing": "pregnancy-status", "judged_on": day.isoformat()},
        suggestion={"action": "check-pregnancy"})


# --- PR005 maximum dose ---------------------------------------------------------------------------

@rule("PR005", name="maximum-dose", category="dosage", severity="warning",
      source=Source("RCP (BDPM) rubrique 4.2 et ANSM (colchicine 2016, méthotrexate oral 2016, "
                    "hydroxyzine 2015, citalopram/escitalopram 2022, ondansétron 2013)", "https://ansm.sante.fr/", "2006-2024"),
      referentials=("iatrogenic-rules", "clinical-facts"),
      trigger=_max_dose_trigger)
def maximum_dose(call: RuleCall) -> Iterator[Finding]:
    """Dose above the maximum of the summary of product characteristics (or an ANSM document).

    About fifty substances, each row citing its source (``max-dose`` rows of
    ``referentials/iatrogenic/patient-risks.tsv``): the maximum per intake and per day for adults;
    the older-adult maximum where the source gives one (citalopram, escitalopram, hydroxyzine,
    aspirin, loprazolam, intravenous ondansetron), from the age the row states; the paediatric maximum in mg/kg
    when the record has a weight on the order's day (ibuprofen, hydroxyzine, metoclopramide,
    allopurinol); rows limited to routes where the ceiling applies (a gel is not an oral dose). Doses
    come from structured dosage only (dose × frequency, unit strength for a count of tablets) and
    are also summed over concurrent lines of the same substance (a renewal of the same medication
    written up to ``renewal_overlap_days`` before the line ends takes over from it, see
    ``referentials/facts/clinical-facts.json``); a text-only dosage is reported as
    not evaluable, and a child's missing weight is named when a weight-based maximum applies. Oral
    methotrexate prescribed more than once a week is reported.

    Source: the summaries of product characteristics (BDPM, section 4.2) and ANSM documents named by
    each row, with their dates.
    """
    data: IatrogenicRules = call.refs.get("iatrogenic-rules")
    tables = _tables(call)
    for row, candidates in _lines_by_row(data, _judged_orders(call)):
        lines = [(o, key) for o, key in candidates if _route_allowed(call, row, o, key)]
        if not lines:
            continue
        if "max_intakes_per_week" in row.params:
            yield from _weekly(call, row, lines)
            continue
        evaluable = True
        day_caps: list[float] = []
        counted: list[tuple[MedicationOrder, str]] = []
        for order, key in lines:
            caps = _dose_caps(call, tables, row, order)
            if caps is None:
                continue  # a row for another age group
            counted.append((order, key))
            if caps.missing_weight:
                yield _weight_missing(call, row, order, key)
            dd = _daily(order, key)
            if dd is None:
                evaluable = False
                intake = largest_intake_mg(order, key) if caps.per_intake is not None else None
                if caps.per_intake is not None and intake is not None and intake > caps.per_intake[0] + 1e-9:
                    # one intake too many mg needs no frequency (« 2 g matin et soir »)
                    yield _over(call, row, [order], key, [("per_intake", intake, caps.per_intake[0], caps.per_intake[1])])
                if "max_age" not in row.params:  # the adult row already says it
                    yield _not_evaluable(call, row, order, key)
                continue
            if caps.per_day is not None:
                day_caps.append(caps.per_day[0])
            over = [(what, got, cap[0], cap[1]) for what, got, cap in (
                ("per_intake", dd.per_intake_mg, caps.per_intake),
                ("per_day", dd.per_day_mg, caps.per_day)) if cap is not None and got > cap[0] + 1e-9]
            if over:
                yield _over(call, row, [order], key, over)
        cap_day = min(day_caps) if day_caps else None
        if not evaluable or len(counted) < 2 or cap_day is None or any(
                (dd := _daily(o, k)) is not None and dd.per_day_mg > cap_day for o, k in counted):
            continue
        renewed = renewal_ends([o for o, _ in counted], call.as_of, tables.renewal_overlap_days, medication_key)
        group = largest_concurrent(counted, call.as_of, weight=lambda o, k: _mg_per_day(o, k), renewed=renewed)
        total = sum(_mg_per_day(o, k) for o, k in group)
        if len(group) > 1 and total > cap_day + 1e-9:
            yield _over(call, row, [o for o, _ in group], group[0][1], [("per_day_total", total, cap_day, "lines")])


def _lines_by_row(data: IatrogenicRules, orders: list[MedicationOrder]
                  ) -> list[tuple[RiskRow, list[tuple[MedicationOrder, str]]]]:
    """The ``max-dose`` rows concerning some of ``orders``, in row order, each with its lines (in
    record order) and the first substance key it names in each: one pass over the lines (a record
    names a few of the rows; the rows of a medication are remembered, see
    :meth:`~checker.iatrogenic.risks.IatrogenicRules.matching`)."""
    by_row: dict[int, tuple[RiskRow, list[tuple[MedicationOrder, str]]]] = {}
    rows = data.kind("max-dose")
    for o in orders:
        for row, keys in rows_matching(rows, o.identity) if o.identity is not None and rows else ():
            found = by_row.get(id(row))
            if found is None:
                by_row[id(row)] = (row, [(o, keys[0])])
            else:
                found[1].append((o, keys[0]))
    if len(by_row) < 2:
        return list(by_row.values())
    at = _row_positions(data)
    return [by_row[rid] for rid in sorted(by_row, key=at.__getitem__)]


@by_identities
def _row_positions(data: IatrogenicRules) -> dict[int, int]:
    """Each ``max-dose`` row's position among them, by ``id(row)``."""
    return {id(row): i for i, row in enumerate(data.kind("max-dose"))}


@dataclass(frozen=True, slots=True)
class DoseCaps:
    """The maxima that apply to one line: ``(mg, basis)`` per intake and per day (basis ``adult``,
    ``older`` or ``weight``), and whether a weight-based maximum applies but the weight is missing."""

    per_intake: tuple[float, str] | None
    per_day: tuple[float, str] | None
    missing_weight: bool = False
    weight_kg: float | None = None


def _route_allowed(call: RuleCall, row: RiskRow, order: MedicationOrder, key: str) -> bool:
    """A row limited to some routes concerns a line whose route is one of them, or is unknown."""
    node = row.criteria.route
    return node is None or _holds(node, call, order, key, None) is not False  # on the line's own day


def _lowest(current: tuple[float, str] | None, value: float | None, basis: str) -> tuple[float, str] | None:
    if value is None:
        return current
    return (value, basis) if current is None or value < current[0] else current


_CAPS: dict[tuple[int, int, int | None], tuple[object, DoseCaps | None]] = {}


def _dose_caps(call: RuleCall, tables: FactTables, row: RiskRow, order: MedicationOrder) -> DoseCaps | None:
    """:func:`_dose_caps_plain`, remembered per row and age for the rows without a weight-based
    maximum whose conditions are ages (it then reads nothing else of the line or the record)."""
    by_age = _BY_AGE.get(id(row))
    if by_age is None:  # _caps_by_age without a call per line (the row is kept with its answer)
        if len(_BY_AGE) >= MAX_ENTRIES:
            _BY_AGE.clear()
        by_age = _BY_AGE[id(row)] = (row, _caps_by_age(row))
    if not by_age[1]:
        return _dose_caps_plain(call, tables, row, order)
    k = (id(row), id(tables), call.record.age_on(facts.order_day(order, call.as_of)))
    hit = _CAPS.get(k)
    if hit is None:
        if len(_CAPS) >= MAX_ENTRIES:
            _CAPS.clear()
        hit = _CAPS[k] = ((row, tables), _dose_caps_plain(call, tables, row, order))
    return hit[1]


_BY_AGE: dict[int, tuple[RiskRow, bool]] = {}


def _caps_by_age(row: RiskRow) -> bool:
    """Whether the maxima of ``row`` depend on the patient's age only (no weight-based maximum; its
    population and older-adult conditions, if any, are ages)."""
    p, rc = row.params, row.criteria
    return "per_kg_day_mg" not in p and "per_kg_intake_mg" not in p and all(
        n is None or (type(n) is criteria.Age and n.population is None) for n in (rc.population, rc.older))


def _dose_caps_plain(call: RuleCall, tables: FactTables, row: RiskRow, order: MedicationOrder) -> DoseCaps | None:
    """The maxima of ``row`` for this line on its own day, or ``None`` when the row is for another
    age group (a paediatric row and an adult, or an unknown age)."""
    p, rc = row.params, row.criteria
    day = facts.order_day(order, call.as_of)
    key = keys[0] if (keys := row.matches_order(order)) else ""
    if _holds(rc.population, call, order, key, day) is not True:  # a row for another age group, or age unknown
        return None
    intake = _lowest(None, p.get("per_intake_mg"), "adult")
    per_day = _lowest(None, p.get("per_day_mg"), "adult")
    if rc.older is not None and _holds(rc.older, call, order, key, day) is True:
        intake = _lowest(intake, p.get("older_per_intake_mg"), "older")
        per_day = _lowest(per_day, p.get("older_per_day_mg"), "older")
    missing = False
    kg: float | None = None
    if ("per_kg_day_mg" in p or "per_kg_intake_mg" in p) and _holds(rc.weight_based, call, order, key, day) is True:
        weight = facts.weight_on(call.record, day, tables)
        kg = float(weight.what.split()[0]) if weight.value and weight.what else None
        if kg is None:
            missing = "max_age" in p or "per_kg_max_age" in p  # a child's weight is needed; an adult keeps the adult maximum
        elif kg <= float(p.get("per_kg_max_weight_kg", 10 ** 6)):
            intake = _lowest(intake, p["per_kg_intake_mg"] * kg if "per_kg_intake_mg" in p else None, "weight")
            per_day = _lowest(per_day, p["per_kg_day_mg"] * kg if "per_kg_day_mg" in p else None, "weight")
    return DoseCaps(intake, per_day, missing, kg)


def daily_ceiling(call: RuleCall, order: MedicationOrder, key: str) -> tuple[float, str, str] | None:
    """The lowest PR005 maximum per day that applies to substance ``key`` on this line for this
    patient on the line's day: ``(mg, basis, row id)`` with basis ``adult``, ``older`` or
    ``weight``; ``None`` when no ``max-dose`` row gives one."""
    data: IatrogenicRules = call.refs.get("iatrogenic-rules")
    tables = _tables(call)
    best: tuple[float, str, str] | None = None
    for row, keys in data.matching("max-dose", order):  # the rows concerning the line, in row order
        if "max_intakes_per_week" in row.params or not keys or keys[0] != key or not _route_allowed(call, row, order, key):
            continue
        caps = _dose_caps(call, tables, row, order)
        if caps is not None and caps.per_day is not None and (best is None or caps.per_day[0] < best[0]):
            best = (caps.per_day[0], caps.per_day[1], row.id)
    return best


def _mg_per_day(order: MedicationOrder, key: str) -> float:
    dd = _daily(order, key)
    return dd.per_day_mg if dd is not None else 0.0


def _over_message(substance: str, lines: str, over: list[tuple[str, float, float, str]]) -> Message:
    parts = tuple(Message("PR005.over", {"got": got, "what": Word("dose_per", w), "cap": cap}) if b in ("adult", "lines")
                  else Message("PR005.over-basis", {"got": got, "what": Word("dose_per", w), "cap": cap,
                                                    "basis": Word("dose_over_basis", b)})
                  for w, got, cap, b in over)
    return Message("PR005", {"substance": substance, "lines": lines, "parts": Phrases(parts)})


_OVER_MESSAGES = Built()
"""PR005's messages by their words and figures (a dense export repeats a few thousand times the same
ceilings passed by the same doses of the same medications)."""


def _shared_over_message(substance: str, lines: str, over: list[tuple[str, float, float, str]]) -> Message:
    """:func:`_over_message`, one object per value (figures by type and ``repr``: ``1`` and ``1.0``
    are not worded alike)."""
    key = (substance, lines, *[(w, type(got), repr(got), type(cap), repr(cap), b) for w, got, cap, b in over])
    return _OVER_MESSAGES.get(key, _over_message, substance, lines, over)  # type: ignore[no-any-return]


def _over(call: RuleCall, row: RiskRow, orders: list[MedicationOrder], key: str,
          over: list[tuple[str, float, float, str]]) -> Finding:
    return call.finding(
        message=_shared_over_message(orders[0].substance_name(key), " + ".join(o.label for o in orders), over),
        implicated=[o.ref for o in orders], key=f"{row.id}:{'total' if len(orders) > 1 else 'line'}",
        severity=row.severity, source=row.source,
        evidence={"substance": key, "row": row.id,
                  "over": [{"what": w, "mg": round(g, 3), "max_mg": round(c, 3), "basis": b} for w, g, c, b in over]},
        suggestion={"action": "reduce-dose"})


def _weight_missing(call: RuleCall, row: RiskRow, order: MedicationOrder, key: str) -> Finding:
    name = order.substance_name(key)
    return call.finding(
        message=Message("PR005-weight-missing", {"substance": name, "line": order.label}),
        implicated=[order.ref], key=f"{row.id}:missing-weight", severity=Severity.INFO, source=row.source,
        evidence={"substance": key, "row": row.id, "missing": "weight"},
        suggestion={"action": "record-weight"})


def _not_evaluable(call: RuleCall, row: RiskRow, order: MedicationOrder, key: str) -> Finding:
    message, finding_key, texts = _not_evaluable_parts(row, order, key)
    return call.finding(
        message=message, implicated=[order.ref], key=finding_key, severity=Severity.INFO, source=row.source,
        evidence={"substance": key, "evaluable": False, "dosage_text": list(texts)})


_NOT_EVALUABLE: dict[tuple[int, int, int, int, int, str], tuple[object, tuple[Message, str, tuple[str, ...]]]] = {}


def _not_evaluable_parts(row: RiskRow, order: MedicationOrder, key: str) -> tuple[Message, str, tuple[str, ...]]:
    """What the not-evaluable finding of a line says (its message, key and dosage texts), which reads
    the row, the line's identified and coded medication (its label), its ingredients (the label
    when the medication has none), its dosages and the substance only: built once
    per these (the dense exports give thousands of such findings about a few medications)."""
    k = (id(row), id(order.identity), id(order.medication), id(order.ingredients), id(order.dosages), key)
    hit = _NOT_EVALUABLE.get(k)
    if hit is None:
        if len(_NOT_EVALUABLE) >= MAX_ENTRIES:
            _NOT_EVALUABLE.clear()
        kept = (row, order.identity, order.medication, order.ingredients, order.dosages)
        hit = _NOT_EVALUABLE[k] = (kept, _not_evaluable_plain(row, order, key))
    return hit[1]


def _not_evaluable_plain(row: RiskRow, order: MedicationOrder, key: str) -> tuple[Message, str, tuple[str, ...]]:
    name = order.substance_name(key)
    return (Message("PR005-not-evaluable", {"substance": name, "line": order.label}), f"{row.id}:not-evaluable",
            tuple(d.text for d in order.dosages if d.text))


def _weekly(call: RuleCall, row: RiskRow, lines: list[tuple[MedicationOrder, str]]) -> Iterator[Finding]:
    for order, key in lines:
        route = route_of(order)
        if route not in (None, "oral", "orale"):
            continue
        per_week = [d.intakes_per_day() for d in order.dosages]
        if not order.dosages or any(p is None for p in per_week):
            yield _not_evaluable(call, row, order, key)
            continue
        weekly = sum(p * 7 for p in per_week if p is not None)
        if weekly > row.params["max_intakes_per_week"] + 1e-9:
            yield call.finding(
                message=Message("PR005-weekly", {"weekly": weekly, "line": order.label}),
                implicated=[order.ref], key=f"{row.id}:{key}", severity=row.severity, source=row.source,
                evidence={"substance": key, "intakes_per_week": round(weekly, 2)},
                suggestion={"action": "weekly-dosing"})


# --- PR006 accumulation ---------------------------------------------------------------------------

@rule("PR006", name="risk-accumulation", category="contraindication", severity="warning",
      source=Source("ANSM, Thésaurus des interactions médicamenteuses, septembre 2023",
                    "https://ansm.sante.fr/documents/reference/thesaurus-des-interactions-medicamenteuses-1", "2023-09"),
      referentials=("iatrogenic-rules", "ansm-thesaurus"),
      trigger=_accumulation_trigger)
def accumulation(call: RuleCall) -> Iterator[Finding]:
    """Three or more concurrent drugs from the same risk class.

    Hyperkalaemia-inducing, torsadogenic, sedative, serotonergic and atropinic (anticholinergic)
    drugs, with class membership from the ANSM thesaurus classes; the lines must be taken on a
    common day. One finding per class.

    Source: ANSM, Thésaurus des interactions médicamenteuses, septembre 2023 (class headings
    describing the added risk of combining members).
    """
    data: IatrogenicRules = call.refs.get("iatrogenic-rules")
    th: Thesaurus = call.refs.get("ansm-thesaurus")
    lines: list[tuple[MedicationOrder, tuple[str | None, ...]]] = []
    for o in call.identified_orders():
        if counts(o):
            assert o.identity is not None  # identified_orders() yields identified lines only
            lines.append((o, _accumulation_keys(th, data, o.identity)))
    for i, row in enumerate(data.kind("accumulation")):
        members: list[tuple[MedicationOrder, str]] = []
        for line_order, line_keys in lines:
            key = line_keys[i]
            if key:
                members.append((line_order, key))
        need = int(row.params.get("min_lines", 3))
        if len({k for _, k in members}) < need:
            continue
        group = largest_concurrent(members, call.as_of)
        if len({k for _, k in group}) < need:
            continue
        names = ", ".join(sorted({o.substance_name(k) for o, k in group}))
        yield call.finding(
            message=Message("PR006", {"count": len(group), "class_label": Localized(row.label_fr, row.label_en),
                                      "substances": names}),
            implicated=[o.ref for o, _ in group], key=row.id, severity=row.severity, source=row.source,
            evidence={"class": row.id, "thesaurus_class": row.thesaurus_class, "substances": sorted({k for _, k in group})},
            suggestion={"action": "reassess"})


@by_identities
def _accumulation_keys(th: Thesaurus, data: IatrogenicRules, ident: MedicationIdentity) -> tuple[str | None, ...]:
    """For each accumulation row, the line's first substance in the row's thesaurus class, or
    ``None`` (memoised per medication)."""
    return tuple(next((s.key for s in ident.substances if row.thesaurus_class in th.closure(s.key)), None)
                 for row in data.kind("accumulation"))


def _row_line(row: RiskRow) -> str:
    return f"{row.id}: {row.label_en} — {row.source.cite()}"


@rows_of("PR003")
def _renal_rows(refs: Referentials) -> list[str]:
    data: IatrogenicRules = refs.get("iatrogenic-rules")
    stopp = [f"{rid}: {words['en']} — {data.stopp_source.cite()}" for rid, words in data.stopp_selection("renal").items()]
    return stopp + [_row_line(r) for r in data.kind("renal")]


@rows_of("PR005")
def _dose_rows(refs: Referentials) -> list[str]:
    data: IatrogenicRules = refs.get("iatrogenic-rules")
    return [_row_line(r) for r in data.kind("max-dose")]
