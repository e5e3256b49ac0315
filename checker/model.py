"""Domain model: what the rules see of a patient's record.

The FHIR boundary (:mod:`checker.fhir_input`) is the only code that reads FHIR; it fills these
plain, immutable-by-convention dataclasses. Rules never touch raw FHIR JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

FhirVersion = Literal["R4", "R4B", "R5", "STU3", "unknown"]


@dataclass(frozen=True, slots=True)
class Coding:
    """One code from a code system (``system`` may be empty when the input gave none)."""

    system: str
    code: str
    display: str = ""


@dataclass(frozen=True, slots=True)
class Concept:
    """A CodeableConcept reduced to its codings and free text."""

    codings: tuple[Coding, ...] = ()
    text: str = ""

    def label(self) -> str:
        """Best human label: the text, else the first display, else the first code."""
        if self.text:
            return self.text
        for c in self.codings:
            if c.display:
                return c.display
        return self.codings[0].code if self.codings else ""

    def all_texts(self) -> tuple[str, ...]:
        """Text and every coding display, for text matching."""
        out = [self.text] if self.text else []
        out.extend(c.display for c in self.codings if c.display)
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Quantity:
    value: float
    unit: str = ""


@dataclass(frozen=True, slots=True)
class Ingredient:
    """An ingredient of a Medication resource (contained, in the Bundle, or in another file)."""

    concept: Concept
    strength: Quantity | None = None  # amount per unit (numerator); denominator folded in ``per``
    per: Quantity | None = None


@dataclass(frozen=True, slots=True)
class Dosage:
    """One dosage instruction, structured when the input was structured.

    ``dose`` is the amount per intake; ``frequency``/``period``/``period_unit`` come from
    ``timing.repeat``. ``bounds_days`` is the treatment duration when the timing gives one.
    """

    text: str = ""
    dose: Quantity | None = None
    dose_range_high: Quantity | None = None
    frequency: float | None = None
    frequency_max: float | None = None
    period: float | None = None
    period_unit: str = ""
    as_needed: bool = False
    route: Concept | None = None
    bounds_start: date | None = None
    bounds_end: date | None = None
    bounds_days: float | None = None
    max_dose_per_period: Quantity | None = None
    max_dose_period_days: float | None = None

    @property
    def structured(self) -> bool:
        """True when dose and frequency are both coded (not only free text)."""
        return self.dose is not None and self.frequency is not None and self.period is not None

    def intakes_per_day(self) -> float | None:
        """Administrations per day from ``timing.repeat``; ``None`` when not structured."""
        if self.frequency is None or not self.period:
            return None
        days = _PERIOD_DAYS.get(self.period_unit)
        if days is None:
            return None
        return self.frequency / (self.period * days)

    def daily_amount(self) -> Quantity | None:
        """Amount per day (dose × intakes per day), in the dose unit; ``None`` if unknown."""
        per_day = self.intakes_per_day()
        if self.dose is None or per_day is None:
            return None
        return Quantity(self.dose.value * per_day, self.dose.unit)


_PERIOD_DAYS: dict[str, float] = {
    "s": 1 / 86400,
    "min": 1 / 1440,
    "h": 1 / 24,
    "d": 1.0,
    "wk": 7.0,
    "mo": 30.0,
    "a": 365.0,
}


def period_days(value: float, unit: str) -> float | None:
    """Length in days of a UCUM time quantity (``d``, ``wk``, ``mo``, ``a``, ``h`` …)."""
    days = _PERIOD_DAYS.get(unit)
    return None if days is None else value * days


@dataclass(frozen=True, slots=True)
class Dispense:
    """``dispenseRequest``: what the pharmacist may hand out and for how long."""

    validity_start: date | None = None
    validity_end: date | None = None
    quantity: Quantity | None = None
    supply_days: float | None = None  # expectedSupplyDuration in days
    repeats: int = 0


@dataclass(frozen=True, slots=True)
class SubstanceMatch:
    """One active moiety a prescription line was identified to."""

    key: str  # normalised moiety name, lower case, no accents: "atorvastatine"
    name: str  # display name (French DCI): "atorvastatine"
    strength: Quantity | None = None
    atc: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MedicationIdentity:
    """What a prescription line was identified as, how, and how surely.

    ``confidence`` is in [0, 1]; rules act only above :data:`RULE_CONFIDENCE`.
    ``prescribed_as`` tells whether the prescriber used a brand name (``brand``), the DCI
    (``dci``) or a code only (``code``); the generic-name rules need it.
    """

    substances: tuple[SubstanceMatch, ...]
    method: str  # "cip13", "cis", "ucd", "atc", "rxnorm", "snomed", "text-exact", "text-fuzzy"
    confidence: float
    cis: str | None = None
    cip13: str | None = None
    product: str = ""  # specialty name when known
    form: str = ""
    route: str = ""
    generic_group: str | None = None
    generic_type: int | None = None  # BDPM: 0 princeps, 1 générique, 2 complémentarité, 4 substituable
    prescribed_as: Literal["brand", "dci", "code", "unknown"] = "unknown"
    alternatives: tuple[str, ...] = ()  # other candidates when ambiguous
    note: str = ""
    product_atc: tuple[str, ...] = ()
    """ATC code of a product of several substances as a whole (C09DA06 for candesartan +
    hydrochlorothiazide; :meth:`checker.drugs.index.DrugIndex.combination_atc`), empty for one
    substance or when unknown. :attr:`atc_codes` holds the components' own codes."""
    substance_keys: frozenset[str] = field(init=False, repr=False, compare=False)
    """Keys of :attr:`substances` (derived once: rules ask for them on every pair of lines)."""
    atc_codes: frozenset[str] = field(init=False, repr=False, compare=False)
    """ATC codes of :attr:`substances` (derived once): what the line *contains* (interactions,
    duplicates, patient risks: a thiazide in a combination is a thiazide)."""
    class_atc: frozenset[str] = field(init=False, repr=False, compare=False)
    """ATC codes of the product *as prescribed*: its substance's codes for one substance, the
    combination's own code (:attr:`product_atc`) for several. A criterion meant for one class of
    single agent ("a sartan alone", C09CA) tests these, so that it never matches a combination
    through one of its components; a combination class (C09DA) matches the combination."""
    any_atc: frozenset[str] = field(init=False, repr=False, compare=False)
    """:attr:`atc_codes` and :attr:`product_atc` together: every class the line belongs to, alone or
    in combination (a criterion on "any line with a sartan" or on "amoxicillin + clavulanic acid")."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "substance_keys", frozenset(s.key for s in self.substances))
        atc = frozenset(a for s in self.substances for a in s.atc)
        object.__setattr__(self, "atc_codes", atc)
        object.__setattr__(self, "class_atc", frozenset(self.product_atc) if len(self.substance_keys) > 1 else atc)
        object.__setattr__(self, "any_atc", atc | frozenset(self.product_atc) if self.product_atc else atc)

    def name_of(self, key: str) -> str:
        """Display name (French DCI) of the substance ``key`` of this line, else the key itself."""
        for s in self.substances:
            if s.key == key:
                return s.name or key
        return key


NEVER_TAKEN = frozenset({"not-taken", "not-done", "declined"})
"""Statuses of a record saying the drug was *not* taken: MedicationStatement ``not-taken`` (R4:
"the medication was not consumed by the patient"), MedicationAdministration ``not-done`` (R4/R5:
"terminated prior to any impact on the subject"), MedicationDispense ``declined`` (R4/R5: "the
dispense was declined and not performed"). Such a record is no treatment, not even a past one."""

NO_HISTORY = frozenset({"entered-in-error", "cancelled", "revoked"}) | NEVER_TAKEN
"""Lines that are not even past treatment: never valid, withdrawn before use, or a record that the drug
was not taken (a stopped or completed line is past treatment)."""

ENDED = frozenset({"stopped", "completed", "ended"})
"""Statuses of a line that was taken and is now over: MedicationRequest ``completed`` ("all actions
that are implied by the prescription have occurred"), ``stopped`` ("to be permanently halted") and R5
``ended`` ("the subject should no longer be taking the medication"), and the same statuses of a
MedicationStatement. Such a line is past treatment: it counts over the days it was taken (see
:mod:`checker.periods`), so that an export audited after the end of its courses keeps their findings."""

NOT_TAKEN = frozenset({"cancelled", "entered-in-error", "revoked", "not-taking"}) | NEVER_TAKEN
"""Statuses of a line that never counts as treatment: never valid (``entered-in-error``), withdrawn
before use (``cancelled``, ``revoked``), a record that the drug was not taken (:data:`NEVER_TAKEN`)
and ``not-taking`` (an R5 MedicationStatement whose ``adherence`` is ``not-taking`` or one of its
sub-codes, see :mod:`checker.fhir_input`). ``on-hold``, ``draft`` and ``unknown`` count: the drug may
be (or soon be again) taken; the :data:`ENDED` statuses count over the days the line was taken."""

NOT_CURRENT = NOT_TAKEN | ENDED
"""Lines that are not being taken now: never taken, or taken and over."""

RULE_CONFIDENCE = 0.85
"""Minimum identification confidence for a line to take part in clinical rules."""


ANONYMOUS_MARK = "@sha256:"
"""In ``<Type>@sha256:<hash>``: how a resource with neither id nor Bundle fullUrl is named, by a hash of
its content, so that its findings keep the same fingerprint wherever and however it is read."""


@dataclass(slots=True)
class SourceLocation:
    """Where a resource came from: file, NDJSON line, Bundle entry, element path."""

    file: str = ""
    line: int | None = None
    entry: int | None = None
    pointer: str = ""

    def __str__(self) -> str:
        """Notation, no words (the same in every language): ``file:3`` for an NDJSON line, then the
        JSON pointer (RFC 6901) of the element, ``file:3 /medication``, ``file /entry/2/resource``
        (a Bundle entry is in its pointer)."""
        text = self.file or "<input>"
        if self.line is not None:
            text += f":{self.line}"
        pointer = self.pointer or ("" if self.entry is None else f"/entry/{self.entry}")
        return f"{text} {pointer}" if pointer else text


@dataclass(slots=True)
class MedicationOrder:
    """A MedicationRequest as the rules need it."""

    ref: str  # "MedicationRequest/<id>", else the Bundle fullUrl, else "MedicationRequest@sha256:<hash>"
    status: str
    intent: str
    medication: Concept
    ingredients: tuple[Ingredient, ...] = ()
    medication_form: Concept | None = None
    authored_on: date | None = None
    requester: str = ""
    dosages: tuple[Dosage, ...] = ()
    dispense: Dispense | None = None
    substitution_allowed: bool | None = None
    substitution_reason: Concept | None = None
    reasons: tuple[Concept, ...] = ()
    reason_refs: tuple[str, ...] = ()
    category: tuple[Concept, ...] = ()
    note: str = ""
    fhir_version: FhirVersion = "R4"
    location: SourceLocation = field(default_factory=SourceLocation)
    draft: bool = False  # a CDS Hooks draft order (being prescribed now)
    identity: MedicationIdentity | None = None  # filled by identification before rules run
    kind: Literal["request", "dispense", "administration", "statement"] = "request"
    """``request`` for a MedicationRequest; the other kinds record a drug the patient is taking
    (MedicationDispense, MedicationAdministration, MedicationStatement): they take part in
    interaction, duplicate and patient-risk checks but are not judged as prescriptions."""
    period_memo: tuple[date, tuple[date | None, date | None], tuple[date, date]] | None = field(
        default=None, init=False, repr=False, compare=False)
    """``(as_of, (start, end), (lo, hi))``: the line's period and comparison interval last computed
    by :mod:`checker.periods`. Every rule asks for the same periods of the same lines, so they are
    computed once per line. Orders are not changed once built (``dataclasses.replace`` starts a
    fresh memo)."""

    @property
    def label(self) -> str:
        return self.medication.label() or (self.ingredients[0].concept.label() if self.ingredients else "")

    def substance_name(self, key: str) -> str:
        """Display name (French DCI) of the substance ``key`` of this line, else the key itself."""
        return self.identity.name_of(key) if self.identity is not None else key

    @property
    def is_prescription(self) -> bool:
        return self.kind == "request"

    @property
    def is_active_like(self) -> bool:
        """Orders that may be taken now: not stopped, completed, cancelled or entered in error."""
        return self.status not in NOT_CURRENT


@dataclass(slots=True)
class ServiceOrder:
    """A ServiceRequest (imaging, biology, procedure)."""

    ref: str
    status: str
    intent: str
    code: Concept
    category: tuple[Concept, ...] = ()
    authored_on: date | None = None
    occurrence: date | None = None
    requester: str = ""
    reasons: tuple[Concept, ...] = ()
    reason_refs: tuple[str, ...] = ()
    body_site: tuple[Concept, ...] = ()
    note: str = ""
    fhir_version: FhirVersion = "R4"
    location: SourceLocation = field(default_factory=SourceLocation)
    draft: bool = False

    @property
    def label(self) -> str:
        return self.code.label()


NOT_TRUE = frozenset({"refuted", "entered-in-error"})
"""Verification statuses of a Condition or an allergy asserted as wrong: no fact about the patient,
whatever its clinical status."""

CANDIDATE = frozenset({"unconfirmed", "provisional", "differential"})
"""Verification statuses of a Condition that is only a candidate diagnosis (HL7 FHIR R4 ValueSet
condition-ver-status: "not sufficient diagnostic and/or clinical evidence", "a tentative diagnosis",
"one of a set of potential diagnoses"): a question the record raises about the patient's state,
neither a fact nor a denial."""


@dataclass(frozen=True, slots=True)
class Condition:
    ref: str
    code: Concept
    clinical_status: str = ""  # active, recurrence, relapse, inactive, remission, resolved
    verification_status: str = ""
    onset: date | None = None
    abatement: date | None = None
    recorded: date | None = None
    category: tuple[Concept, ...] = ()


@dataclass(frozen=True, slots=True)
class Allergy:
    ref: str
    code: Concept
    clinical_status: str = ""
    verification_status: str = ""
    criticality: str = ""
    category: tuple[str, ...] = ()
    reactions: tuple[Concept, ...] = ()
    onset: date | None = None
    recorded: date | None = None
    last_occurrence: date | None = None
    abatement: date | None = None  # extension allergyintolerance-abatement (FHIR extensions pack)


@dataclass(frozen=True, slots=True)
class Observation:
    ref: str
    code: Concept
    value: float | None = None
    unit: str = ""
    value_concept: Concept | None = None
    value_bool: bool | None = None
    effective: date | None = None
    status: str = ""
    comparator: str = ""
    """``<``, ``<=``, ``>=``, ``>`` when the value is a bound (HL7 FHIR Quantity.comparator: « DFG < 15 »)."""


@dataclass(frozen=True, slots=True)
class Patient:
    ref: str  # "Patient/<id>"
    birth_date: date | None = None
    sex: str = ""  # FHIR administrative gender


@dataclass(slots=True)
class PatientRecord:
    """Everything known about one patient in the input: the unit the rules check."""

    patient: Patient | None
    medication_orders: list[MedicationOrder] = field(default_factory=list)
    service_orders: list[ServiceOrder] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    allergies: list[Allergy] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    memo: dict[object, object] = field(default_factory=dict, init=False, repr=False, compare=False)
    """What the facts layer derived from this record once (e.g. its observations sorted by day)."""

    @property
    def ref(self) -> str | None:
        return self.patient.ref if self.patient else None

    def age_on(self, day: date | None) -> int | None:
        """Age in whole years on ``day`` (``None`` if birth date or day unknown)."""
        if self.patient is None or self.patient.birth_date is None or day is None:
            return None
        b = self.patient.birth_date
        return day.year - b.year - ((day.month, day.day) < (b.month, b.day))
