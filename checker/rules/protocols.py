"""Off-protocol orders: imaging/biology requests (OP001) and medications (OP002) checked against
the HAS-style protocols of ``referentials/protocols/`` (see docs/protocols.md).

The rules hold no clinical content: every threshold, code and message comes from a protocol
file, which cites its source. A finding names the protocol, the branch of its decision graph that
fired, the facts used, the recommended alternative and, when the decision hinged on a missing
datum, which one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from checker.facts import FactTables, Indication
from checker.findings import Finding, Localized, Message, Phrases, Severity, Source, Word
from checker.model import MedicationOrder
from checker.protocols import ProtocolSet
from checker.protocols.engine import Evaluation, atc_codes_of, evaluate_all, localized
from checker.protocols.engine import _classes_in as classes_in
from checker.protocols.language import Outcome, Protocol
from checker.memo import by_identities, by_identity
from checker.referentials import Referentials
from checker.registry import RuleCall, Trigger, rule

_REPORTED = frozenset({"off-protocol", "undetermined"})

_SOURCE = Source(
    "HAS, ANAES, SFR, ANSM et SPILF — recommandations encodées dans referentials/protocols (une source par protocole)",
    "https://www.has-sante.fr/",
    "voir chaque protocole",
)


@by_identities  # immutable, shared by the protocol's findings
def _source(protocol: Protocol) -> Source:
    """The recommendation that decides (the protocol's first source); the others (a definition
    borrowed for a threshold, a report cited for comparison) go to the evidence."""
    s = protocol.sources[0]
    return Source(s.cite(), s.url, s.year)


def _dotted(texts: dict[str, str]) -> Localized:
    """A protocol text in both languages, ending with a full stop."""
    both = localized(texts)
    return Localized(*(t if not t or t.endswith(".") else t + "." for t in (both.fr, both.en)))


def _message(ev: Evaluation) -> Message:
    """The finding's message: the protocol's own texts (outcome, alternative, questions, title) in
    both languages, the engine's facts and missing data as codes, the catalogue's wording around them."""
    protocol = ev.protocol
    parts = _outcome_parts(protocol, ev.outcome)
    extra: list[Message] = []
    if parts.alternative is not None:
        extra.append(parts.alternative)
    if ev.missing:
        extra.append(Message("OP.missing", {"missing": Phrases(ev.missing)}))
    if ev.steps:
        extra.append(_path(protocol, tuple((step.check, step.criterion, step.answer) for step in ev.steps))[0])
    facts = tuple(f for step in ev.steps for f in step.facts)
    if facts:
        extra.append(Message("OP.facts", {"facts": Phrases(facts)}))
    extra.append(parts.protocol)
    what = ev.target_label or ev.order.label or ev.order.ref
    return Message("OP", {"what": what, "head": Word("op_verdict", ev.verdict), "protocol": protocol.id,
                          "outcome": parts.outcome}, tuple(extra))


@dataclass(frozen=True, slots=True)
class _OutcomeParts:
    """What every finding of one outcome of a protocol says alike (immutable, so shared)."""

    alternative: Message | None
    protocol: Message
    outcome: Localized
    title: Localized
    suggested: Localized | None
    key: str
    severity: Severity
    source: dict[str, Any]  # the deciding source in the evidence (copied into each finding)
    background: tuple[dict[str, str], ...]  # the other sources (copied)


@by_identities  # a few dozen outcomes
def _outcome_parts(protocol: Protocol, outcome: Outcome) -> _OutcomeParts:
    src = protocol.sources[0]
    return _OutcomeParts(
        Message("OP.alternative", {"alternative": _dotted(outcome.alternatives)}) if outcome.alternatives else None,
        Message("OP.protocol", {"protocol": protocol.id,
                                "title": _dotted({"fr": protocol.title("fr"), "en": protocol.title("en")})}),
        _dotted(outcome.messages),
        Localized(protocol.title("fr"), protocol.title("en")),
        localized(outcome.alternatives) if outcome.alternatives else None,
        f"{protocol.id}:{outcome.id}",
        Severity.parse(outcome.severity or "warning"),
        {"publisher": src.publisher, "title": src.title, "year": src.year, "url": src.url},
        tuple({"citation": x.cite(), "url": x.url} for x in protocol.sources[1:]))


@by_identity  # a path through a protocol's checks: a few dozen (immutable, so shared; the dicts are copied)
def _path(protocol: Protocol, path: tuple[tuple[str, str, str], ...]) -> tuple[Message, tuple[dict[str, str], ...]]:
    """The reasoning of a path of ``(check, criterion, answer)`` steps: its sentence and its evidence."""
    return (Message("OP.reasoning", {"path": Phrases(tuple(_step(protocol, *step) for step in path), " → ")}),
            tuple({"check": c, "criterion": crit, "answer": a} for c, crit, a in path))


@by_identity  # a step of the reasoning: a check of a protocol and its answer (immutable, so shared)
def _step(protocol: Protocol, check_id: str, criterion: str, answer: str) -> Message:
    check, crit = protocol.checks[check_id], protocol.criteria[criterion]
    question = localized(check.labels) if check.labels else localized(crit.labels)
    return Message("OP.step", {"question": question, "answer": Word("op_answer", answer)})


def _finding(call: RuleCall, ev: Evaluation) -> Finding:
    protocol = ev.protocol
    parts = _outcome_parts(protocol, ev.outcome)
    path = _path(protocol, tuple((s.check, s.criterion, s.answer) for s in ev.steps))[1]
    evidence = {
        "protocol": protocol.id,
        "protocol_version": protocol.version,
        "protocol_title": parts.title,
        "verdict": ev.verdict,
        "branch": ev.outcome.id,
        "applies_to": ev.target,
        "path": [dict(step) for step in path],
        "facts": ev.facts,
        "missing": list(ev.missing),
        "source": dict(parts.source),
    }
    if ev.indications:  # indications the order did not state: inferred from the problem list, or its own words
        evidence["indications"] = [_indication(i) for i in ev.indications]
    if parts.background:
        evidence["background_sources"] = [dict(x) for x in parts.background]
    suggestion = {"alternative": parts.suggested, "protocol": protocol.id} \
        if parts.suggested is not None else None
    return call.finding(
        message=_message(ev),
        implicated=[ev.order.ref],
        key=parts.key,
        severity=parts.severity,
        level=ev.verdict,
        source=_source(protocol),
        suggestion=suggestion,
        evidence=evidence,
    )


def _indication(ind: Indication) -> dict[str, Any]:
    if ind.condition is None:
        return {"order_text": ind.concept.text, "inferred": False}
    c = ind.condition
    when = c.recorded or c.onset
    return {"condition": c.ref, "label": c.code.label(), "recorded": when.isoformat() if when else None,
            "inferred": ind.inferred}


def _run(call: RuleCall, protocols: tuple[Protocol, ...]) -> Iterator[Finding]:
    tables: FactTables = call.refs.get("clinical-facts")
    for ev in evaluate_all(protocols, call.record, call.as_of, lang=call.settings.lang, tables=tables,
                           only=call.settings.focus, verdicts=_REPORTED):  # under a focus, findings implicate the evaluated order only
        yield _finding(call, ev)


def _service_trigger(refs: Referentials) -> Trigger:
    """A service order (the service protocols apply to service orders only)."""
    return Trigger(record=lambda record: bool(record.service_orders), lines=0)


def _medication_trigger(refs: Referentials) -> Trigger:
    """A line whose ATC codes (identified or given) fall in a medication protocol's class."""
    meds = refs.get("protocols").medications()
    known: dict[frozenset[str], bool] = {}  # by value: each request brings new objects

    def concerns(order: MedicationOrder) -> bool:
        codes = atc_codes_of(order)
        found = known.get(codes)
        if found is None:
            if len(known) > 10_000:
                known.clear()
            found = known[codes] = bool(classes_in(meds, codes))
        return found

    return Trigger(line=concerns)


@rule(
    "OP001",
    name="off-protocol-service-request",
    category="off-protocol",
    severity="warning",
    source=_SOURCE,
    referentials=("protocols", "clinical-facts"),
    trigger=_service_trigger,
)
def off_protocol_service_request(call: RuleCall) -> Iterator[Finding]:
    """Imaging, biology or patient-transport request outside a HAS-style protocol or the référentiel.

    Each ServiceRequest that matches an imaging, biology or transport protocol (by CCAM, CPT, LOINC or SNOMED
    code, or by its wording) is run through that protocol's decision graph: indication, red flags,
    time since onset, patient age and sex, recorded observations, prior orders. The finding names
    the protocol, the branch that fired, the facts used and the recommended alternative; when the
    decision depends on a datum absent from the record (no onset date, no birth date …) it is
    reported at ``info`` severity with that datum named.

    Source: the HAS / ANAES / SFR recommendation cited by each protocol file (publisher, title,
    year, URL), listed by ``pertinence protocols list``.
    """
    protocols: ProtocolSet = call.refs.get("protocols")
    yield from _run(call, protocols.services())


@rule(
    "OP002",
    name="off-protocol-medication",
    category="off-protocol",
    severity="warning",
    source=_SOURCE,
    referentials=("protocols", "clinical-facts"),
    trigger=_medication_trigger,
)
def off_protocol_medication(call: RuleCall) -> Iterator[Finding]:
    """Medication order outside a HAS-style protocol.

    Each MedicationRequest identified (ATC code from the drug referential or from the input) as a
    medication a protocol covers — antibiotics, benzodiazepines and Z-drugs, proton-pump
    inhibitors — is run through that protocol's decision graph: indication recorded on the order
    or in the patient's problems, exceptions (allergy, complications, age), treatment duration
    computed over consecutive prescriptions. The finding names the protocol, the branch, the facts
    and the first-line alternative; a decision that hinges on a missing datum says which.

    Source: the HAS / ANSM / SPILF recommendation cited by each protocol file, listed by
    ``pertinence protocols list``.
    """
    protocols: ProtocolSet = call.refs.get("protocols")
    yield from _run(call, protocols.medications())
