"""What the record stated about the patient on a given day.

Every rule family asks these questions through this module, with the same answers:

* **The day an order is judged at** (:func:`order_day`): its ``authoredOn``, else the start of its
  period, else ``as_of`` (a draft being prescribed now). A line is also judged on the last day it
  was taken up to ``as_of`` (:func:`judgement_days`: its end, or ``as_of`` while it runs): the record
  of that day applies to a treatment still taken then. ``as_of`` never changes the judgement of a
  treatment that ended before it.
* **Age** on that day.
* **Conditions** on that day (:func:`conditions_on`): begun by then (onset, else recordedDate; no
  date → assumed begun), not abated by then; ``refuted`` and ``entered-in-error`` never count; a
  ``resolved`` / ``inactive`` / ``remission`` condition without an abatement date is taken as over.
  A *history* (:func:`history_on`) also counts conditions that were over by then.
  A candidate diagnosis (verification ``unconfirmed``, ``provisional``, ``differential``) states
  neither the notion nor its absence: the question stays open (:func:`stated`), and a candidate
  pregnancy is a pregnancy raised, not settled (:func:`pregnancy_evoked_on`).
* **Allergies** on that day (:func:`allergies_on`): the same semantics (onset, else recordedDate or
  lastOccurrence; the abatement extension, else ``resolved`` / ``inactive`` are over; ``refuted`` and
  ``entered-in-error`` never count); a record of *no* allergy (NKA, « pas d'allergie connue ») is not an
  allergy, and an allergen named only to be denied is not one (:func:`allergen_polarity`).
* **Observations** (:func:`latest_observation`): the most recent one on or before the day within
  the validity window of the tables (``referentials/facts/clinical-facts.json``); later, older and
  undated ones are not used.
* **Statements** (:func:`stated`): ``True`` (affirmed), ``False`` (denied: refuted Condition or a
  text that only denies it: « pas d'antécédent d'ulcère »), ``None`` (unknown; the :class:`Fact`
  names the missing datum). A problem list that does not mention a disease is no proof of absence.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import cast

from checker import periods
from checker.facts.concepts import ConceptMatcher, concept_polarity
from checker.facts.negation import polarity
from checker.facts.tables import FactTables
from checker.model import CANDIDATE, NOT_TRUE, Allergy, Concept, Condition, MedicationOrder, Observation, PatientRecord, ServiceOrder

OVER = frozenset({"resolved", "inactive", "remission"})
"""Clinical statuses of a condition that is no longer present."""


@dataclass(frozen=True, slots=True)
class Fact:
    """An answer about the patient: ``value`` True/False/None, the record element that says so
    (``ref``, ``what`` it says) or, when unknown, the ``missing`` datum."""

    value: bool | None
    ref: str | None = None
    what: str | None = None
    missing: str | None = None


# --- days ---------------------------------------------------------------------------------------

def order_day(order: MedicationOrder | ServiceOrder, as_of: date) -> date:
    """The day an order is judged at: when written, else when planned / started, else ``as_of``."""
    if isinstance(order, ServiceOrder):
        return order.authored_on or order.occurrence or as_of
    return order.authored_on or periods.treatment_start(order) or as_of


def judgement_days(order: MedicationOrder, as_of: date) -> tuple[date, ...]:
    """The order's own day, then the last day the line was taken up to ``as_of`` (its end, or ``as_of``
    while it runs): a drug continued while the eGFR fell or a pregnancy began is judged on that
    record too. For a treatment that ended before ``as_of`` both days are fixed, whatever ``as_of``."""
    day = order_day(order, as_of)
    if not periods.counts(order):
        return (day,)
    _, hi = periods.effective_interval(order, as_of)
    last = min(hi, as_of)
    return (day, last) if last > day else (day,)


def age_on(record: PatientRecord, day: date) -> int | None:
    """Age in whole years on ``day`` (``None`` without a birth date)."""
    return record.age_on(day)


# --- conditions ---------------------------------------------------------------------------------

def _begun(c: Condition, day: date) -> bool:
    first = c.onset or c.recorded
    return first is None or first <= day


def _present_on(c: Condition, day: date) -> bool:
    if c.abatement is not None:
        return c.abatement > day
    return c.clinical_status not in OVER


def conditions_on(record: PatientRecord, day: date) -> Iterator[Condition]:
    """Conditions present on ``day`` (see module docstring)."""
    for c in record.conditions:
        if c.verification_status not in NOT_TRUE and _begun(c, day) and _present_on(c, day):
            yield c


def lists_conditions(record: PatientRecord) -> bool:
    """Whether the record lists any condition at all, whatever its dates or status (a cheap pre-check:
    without one, nothing on any day comes from the problem list)."""
    return bool(record.conditions)


def history_on(record: PatientRecord, day: date) -> Iterator[Condition]:
    """Conditions stated, present or past, by ``day`` (a history of ulcer counts after it healed)."""
    for c in record.conditions:
        if c.verification_status not in NOT_TRUE and _begun(c, day):
            yield c


def observations_on(record: PatientRecord, day: date, within_days: int | None = None) -> Iterator[Observation]:
    """Observations known on ``day``: not entered in error or cancelled, not measured after it and,
    with ``within_days``, not measured more than that many days before it (undated ones count)."""
    for obs in record.observations:
        if obs.status in ("entered-in-error", "cancelled"):
            continue
        if obs.effective is not None and (obs.effective > day or (
                within_days is not None and (day - obs.effective).days > within_days)):
            continue
        yield obs


def stated(record: PatientRecord, day: date, matcher: ConceptMatcher, *, history: bool = False,
           also: Iterable[Concept] = (), missing: str = "") -> Fact:
    """Does the record state the notion on ``day`` (present, or ever with ``history``)? ``also``:
    further concepts that speak for the patient (the reasons of the orders in question)."""
    affirmed, denied, refuted = _stated_by_conditions(record, day, matcher, history)
    if affirmed is not None:
        return affirmed
    for concept in also:
        value, what = concept_polarity(matcher, concept)
        if value:
            return Fact(True, None, what)
        if value is False and denied is None:
            denied = Fact(False, None, what)
    if denied is not None:
        return denied
    if refuted is not None:
        return refuted
    return Fact(None, missing=missing or None)


_ByConditions = tuple[Fact | None, Fact | None, Fact | None]


def _stated_by_conditions(record: PatientRecord, day: date, matcher: ConceptMatcher, history: bool
                          ) -> _ByConditions:
    """What the record's conditions say of the notion on ``day``: the first affirming one, the first
    denying one, the first refuted one recorded by then. Memoised per record, day and notion: every
    line of a day asks the same question (the texts' negation patterns are read once)."""
    key = ("stated", len(record.conditions), id(matcher), day, history)
    memo = cast("tuple[ConceptMatcher, _ByConditions] | None", record.memo.get(key))
    if memo is not None and memo[0] is matcher:
        return memo[1]
    affirmed: Fact | None = None
    denied: Fact | None = None
    refuted: Fact | None = None
    pool = history_on(record, day) if history else conditions_on(record, day)
    current = not history and bool(getattr(matcher, "episodic", False))  # « ATCD de grossesse » is over
    for c in pool:
        if c.verification_status in CANDIDATE:
            continue  # a candidate diagnosis states nothing yet: see pregnancy_evoked_on
        value, what = concept_polarity(matcher, c.code, current=True) if current else concept_polarity(matcher, c.code)
        if value:
            affirmed = Fact(True, c.ref, what)
            break
        if value is False and denied is None:
            denied = Fact(False, c.ref, what)
    if affirmed is None:
        for c in record.conditions:  # ruled out by a refuted Condition recorded by then
            if c.verification_status == "refuted" and _begun(c, day) and concept_polarity(matcher, c.code)[0]:
                refuted = Fact(False, c.ref, "refuted")
                break
    found = (affirmed, denied, refuted)
    record.memo[key] = (matcher, found)
    return found


# --- allergies ----------------------------------------------------------------------------------

def _allergy_begun(a: Allergy, day: date) -> bool:
    """Known by ``day``: its onset, else the earlier of when it was recorded and its last reaction
    (a reaction seen before the allergy was written down); no date → assumed known."""
    if a.onset is not None:
        return a.onset <= day
    known = [d for d in (a.recorded, a.last_occurrence) if d is not None]
    return not known or min(known) <= day


def _allergy_present(a: Allergy, day: date) -> bool:
    if a.abatement is not None:
        return a.abatement > day
    return a.clinical_status not in OVER


def is_no_allergy_statement(a: Allergy, tables: FactTables) -> bool:
    """An AllergyIntolerance that records the absence of allergies, not an allergy: a "no known
    allergy" code (SNOMED CT, IPS absent/unknown), NKA / NKDA, or wording that only denies an allergy
    (« Pas d'allergie connue », "No known allergy to penicillin", « Allergies : aucune »)."""
    if concept_polarity(tables.concept("no-known-allergy"), a.code)[0]:
        return True
    return concept_polarity(tables.concept("allergy"), a.code)[0] is False


def lists_allergies(record: PatientRecord) -> bool:
    """Whether the record lists any allergy or intolerance at all, whatever its dates or status (a
    cheap pre-check; :func:`allergies_on` says which stand on a day)."""
    return bool(record.allergies)


def allergies_on(record: PatientRecord, day: date, tables: FactTables | None = None) -> list[Allergy]:
    """Allergies and intolerances that stand on ``day``, with the semantics of conditions: known by
    then (onset, else recordedDate or lastOccurrence; undated = known), not abated by then (the
    ``allergyintolerance-abatement`` date; without one, ``resolved`` / ``inactive`` are over);
    ``refuted`` and ``entered-in-error`` never count, nor do statements of no allergy (recognised with
    the ``tables``; without them, the caller reads wording with negation itself)."""
    key = ("no-allergy-statements", len(record.allergies), id(tables))
    absent = cast("frozenset[int] | None", record.memo.get(key))
    if tables is None:
        absent = frozenset()
    elif absent is None:
        absent = frozenset(i for i, a in enumerate(record.allergies) if is_no_allergy_statement(a, tables))
        record.memo[key] = absent
    return [a for i, a in enumerate(record.allergies)
            if a.verification_status not in NOT_TRUE and i not in absent
            and _allergy_begun(a, day) and _allergy_present(a, day)]


def allergen_polarity(a: Allergy, pattern: re.Pattern[str]) -> bool | None:
    """What the allergy's wording says of the allergen ``pattern`` (on folded text): ``True`` named as
    an allergen at least once, suspected included (« suspicion d'allergie à la pénicilline », like a
    verificationStatus ``unconfirmed``), ``False`` only denied (« pas d'allergie à la pénicilline »),
    ``None`` not named, or only as a relative's."""
    seen: bool | None = None
    for text in a.code.all_texts():
        p = polarity(pattern, text, suspected=True, state=True)
        if p:
            return True
        if p is False:
            seen = False
    return seen


# --- observations -------------------------------------------------------------------------------

_UNUSABLE = frozenset({"entered-in-error", "cancelled"})


def latest_observation(record: PatientRecord, system: str, codes: frozenset[str], day: date,
                       max_days: int | None, *, with_value: bool = False) -> Observation | None:
    """The most recent usable observation with one of ``codes`` taken on or before ``day`` and at
    most ``max_days`` before it (``None``: no limit); with ``with_value``, only numeric results.
    Among observations of the same day, the first in the record wins."""
    oldest = day - timedelta(days=max_days) if max_days is not None else date.min
    index = _observations_by_day(record)
    best: tuple[date, int, Observation] | None = None
    for code in codes:
        found = index.get((system, code, with_value))
        if found is None:
            continue
        days, rows = found
        pos = bisect_right(days, day) - 1
        if pos < 0 or rows[pos][0] < oldest:
            continue
        if best is None or rows[pos][:2] > best[:2]:
            best = rows[pos]
    return best[2] if best is not None else None


_ObservationIndex = dict[tuple[str, str, bool], tuple[list[date], list[tuple[date, int, Observation]]]]


def _observations_by_day(record: PatientRecord) -> _ObservationIndex:
    """The record's usable dated observations by ``(system, code, with a value)``, sorted by day (then
    record order first, last), built once per record: every line then finds its latest result by
    bisection instead of rescanning the record."""
    key = ("observations-by-day", len(record.observations))
    index = cast("_ObservationIndex | None", record.memo.get(key))
    if index is None:
        groups: dict[tuple[str, str, bool], list[tuple[date, int, Observation]]] = {}
        for i, o in enumerate(record.observations):
            if o.status in _UNUSABLE or o.effective is None:
                continue
            for system, code in {(c.system, c.code) for c in o.code.codings}:
                groups.setdefault((system, code, False), []).append((o.effective, -i, o))
                if o.value is not None:
                    groups.setdefault((system, code, True), []).append((o.effective, -i, o))
        built: _ObservationIndex = {}
        for k, rows in groups.items():
            rows.sort(key=lambda r: (r[0], r[1]))
            built[k] = ([r[0] for r in rows], rows)
        record.memo[key] = index = built
    return index


LOINC = "http://loinc.org"


def renal_on(record: PatientRecord, day: date, tables: FactTables, *, windowed: bool = True
             ) -> tuple[str, float, Observation] | None:
    """The most recent creatinine clearance or eGFR with a value, within the window before ``day``
    (any age without ``windowed``): ``(kind, value, observation)``; a clearance wins over an eGFR of
    the same day."""
    best: tuple[str, float, Observation] | None = None
    for kind, name in (("clcr", "creatinine-clearance"), ("egfr", "egfr")):
        spec = tables.observations[name]
        window = tables.observation_window(name) if windowed else None
        o = latest_observation(record, spec.uri, spec.codes, day, window, with_value=True)
        value = renal_ml_per_min(o.value, o.unit) if o is not None and o.value is not None else None
        if o is not None and value is not None and (
                best is None or (o.effective or date.min) > (best[2].effective or date.min)):
            best = (kind, value, o)
    return best


def renal_ml_per_min(value: float, unit: str) -> float | None:
    """A clearance or an eGFR in mL/min (per 1.73 m² when so written): mL/min as is, mL/s × 60; no
    unit is taken as mL/min; ``None`` for a unit that is no flow (mg/dL, %, µmol/L …): not a value."""
    u = unit.strip().lower().replace(" ", "").replace("µ", "u").replace("μ", "u")
    if not u or u.startswith(("ml/min", "ml/mn", "ml.min", "ml/minute")):
        return value
    if u.startswith(("ml/s", "ml.s")):
        return round(value * 60, 3)
    return None


def weight_on(record: PatientRecord, day: date, tables: FactTables) -> Fact:
    """Body weight in kg on ``day``: the latest weight within its window (``missing`` = ``weight``)."""
    spec = tables.observations["weight"]
    o = latest_observation(record, spec.uri, spec.codes, day, tables.observation_window("weight"), with_value=True)
    if o is None or o.value is None:
        return Fact(None, missing="weight")
    unit = o.unit.strip().lower()
    kg = o.value / 1000 if unit == "g" else o.value * 0.45359237 if unit in ("[lb_av]", "lb", "lbs") else o.value
    if unit not in ("kg", "g", "[lb_av]", "lb", "lbs"):
        return Fact(None, o.ref, f"{o.value:g} {o.unit}", missing="weight")  # a unit we cannot read
    return Fact(True, o.ref, f"{kg:g} kg")


def pregnancy_evoked_on(record: PatientRecord, day: date, tables: FactTables) -> Fact:
    """Does the record raise a pregnancy it neither confirms nor denies on ``day``? A pregnancy status
    observation valued "possible pregnancy" (SNOMED 102874004) within its window, or a condition
    present that day that names one only as a hypothesis (« suspicion de grossesse », « grossesse
    peu probable », « grossesse : à confirmer ») or whose verification status makes it a candidate
    diagnosis (``unconfirmed``, ``provisional``, ``differential``), read only when :func:`pregnancy_on` is unknown: the
    question is open, and the record itself asks it. An instruction (« arrêt si grossesse ») is not."""
    if pregnancy_on(record, day, tables).value is not None:
        return Fact(False)
    status = tables.observations["pregnancy-status"]
    o = latest_observation(record, status.uri, status.codes, day, tables.observation_window("pregnancy-status"))
    if o is not None and o.value_concept is not None and "possible-pregnancy" in tables.concepts:
        if concept_polarity(tables.concept("possible-pregnancy"), o.value_concept)[0]:
            return Fact(True, o.ref, o.value_concept.label())
    matcher = tables.concept("pregnancy")
    for c in conditions_on(record, day):
        if c.verification_status in CANDIDATE and concept_polarity(matcher, c.code, current=True)[0]:
            return Fact(True, c.ref, c.verification_status)  # a candidate diagnosis of pregnancy
        if concept_polarity(matcher, c.code, current=True)[0] is None:
            value, what = concept_polarity(matcher, c.code, suspected=True, current=True)
            if value:
                return Fact(True, c.ref, what)
    return Fact(False)


def pregnancy_on(record: PatientRecord, day: date, tables: FactTables) -> Fact:
    """Was the patient pregnant on ``day``? A pregnancy status observation within its window wins;
    else a pregnancy Condition present that day; a man is never pregnant. A pregnancy denied in text
    (« pas de grossesse en cours », "pregnancy ruled out"), refuted, or over by then does not count."""
    if record.patient is not None and record.patient.sex == "male":
        return Fact(False, record.patient.ref, "male")
    status = tables.observations["pregnancy-status"]
    o = latest_observation(record, status.uri, status.codes, day, tables.observation_window("pregnancy-status"))
    if o is not None:
        if o.value_bool is not None:
            return Fact(o.value_bool, o.ref, str(o.value_bool).lower())
        if o.value_concept is not None:
            if concept_polarity(tables.concept("not-pregnant"), o.value_concept)[0]:
                return Fact(False, o.ref, o.value_concept.label())
            value, what = concept_polarity(tables.concept("pregnancy"), o.value_concept, current=True)
            if value is not None:
                return Fact(value, o.ref, what)
    return stated(record, day, tables.concept("pregnancy"), missing="pregnancy-status")
