"""Assembling patient records: one pass over the raw resources, references resolved, every resource
checked, ignored or rejected."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from checker.fhir_input.allergies import _allergy
from checker.fhir_input.dates import _date
from checker.fhir_input.conditions import _condition
from checker.fhir_input.elements import _Bad
from checker.fhir_input.errors import _err
from checker.fhir_input.medication_requests import _medication_order, _typed_order, typed_patient_key, typed_run
from checker.fhir_input.medication_uses import _medication_use
from checker.fhir_input.observations import _observation
from checker.fhir_input.patients import _patient
from checker.fhir_input.raw import (LOCAL_REF, MEDICATION_USE_TYPES, UNNAMED, FileMark, RawResource, TypedLines, TypedResource,
                                    unnamed_patient)
from checker.fhir_input.references import SharedReading, _content_name, _Index
from checker.fhir_input.service_requests import _service_order
from checker.fhir_input.typed import UNSET, PatientLine
from checker.fhir_input.sources import _ndjson_line
from checker.fhir_input.validation import _explain, _strict_error
from checker.fhir_types import KNOWN_RESOURCE_TYPES
from checker.findings import InputCounts, InputError, Message
from checker.memo import BULK_RESOURCES, relaxed_gc
from checker.model import MedicationOrder, Patient, PatientRecord, SourceLocation

MAX_URLS = 1_000_000
"""At most this many ``Type/id`` -> fullUrl pairs are kept per read (bounded memory on bulk inputs;
past it, outputs name the resources by ``Type/id``)."""


@dataclass(slots=True)
class Ingestion:
    """What reading the inputs produced."""

    records: list[PatientRecord] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    counts: InputCounts = field(default_factory=InputCounts)
    urls: dict[str, str] = field(default_factory=dict)
    """``Type/id`` -> Bundle ``fullUrl`` of the resources that had both (first wins)."""
    typed_in_input_order: list[list[Any]] = field(default_factory=list, repr=False, compare=False)
    """The orders of runs of typed lines, run by run, in input order (see :meth:`__del__`)."""

    def __del__(self) -> None:
        """Let go of the records first, then of :attr:`typed_in_input_order`: the orders are then
        freed run by run, as they were made (sequential memory), not patient by patient (scattered
        over memory when an export is not sorted by patient: 0.26 s against 0.10 s for the 200,000
        orders of the dense export). Nothing changes for a caller still holding the records."""
        self.records = []


def assemble(raw_items: Iterable[RawResource | TypedLines | TypedResource | InputError | FileMark], *, strict: bool = False,
             as_of: date | None = None, shared: SharedReading | None = None) -> Ingestion:
    """Group raw resources per patient, resolve references and extract the domain model.

    ``shared``: the extractions to share with other readings of the same run (the chunks of a
    sharded check); by default this reading's own."""
    with contextlib.ExitStack() as bulk:
        return _assemble(raw_items, strict=strict, as_of=as_of, bulk=bulk, shared=shared)


def _assemble(raw_items: Iterable[RawResource | TypedLines | TypedResource | InputError | FileMark], *, strict: bool, as_of: date | None,
              bulk: contextlib.ExitStack, shared: SharedReading | None) -> Ingestion:
    """One pass over the input: each resource is extracted as it arrives and its parsed JSON is
    dropped, except Patients and Medications (reference targets) and the few orders naming their
    medication by reference, which wait for the whole input to be indexed. Patient references are
    made canonical at the end, when every Patient is known. The result is the same as extracting
    every resource after reading them all: same records, same order of lines, same errors."""
    out = Ingestion()
    counts = out.counts
    today = as_of or date.today()
    index = _Index(today, shared)
    patient_errors: list[InputError] = []
    late_errors: list[tuple[int, InputError]] = []  # by position in the input
    patients: dict[str, Patient] = {}
    canonical: dict[int, str] = {}  # id(Patient raw) -> "Patient/<id>"
    patient_raws: list[RawResource] = []  # keeps those raws alive, so that their ids stay theirs
    # Per patient reference as written: (position, kind, extracted item); `kind` (see _KINDS) names the
    # record list the item goes to.
    groups: dict[str | None, list[tuple[int, int, Any]]] = {}
    # The orders of runs of typed lines (TypedLines), per patient reference as written, in input order;
    # their positions are kept per run (the run's orders and the position before it), for when needed.
    typed_groups: dict[str | None, list[MedicationOrder]] = {}
    typed_runs = out.typed_in_input_order
    run_bases: list[int] = []
    deferred: list[tuple[int, RawResource]] = []
    anonymous: dict[tuple[str, str], int] = {}  # (file, content name) -> copies seen, see _content_name
    seq = 0
    typed_orders = 0  # added to the counts at the end (checked resources)
    relaxed = False

    def take(item: RawResource | InputError | FileMark) -> None:
        """One resource, error or file mark of the input, in input order."""
        nonlocal seq, relaxed
        if type(item) is not RawResource:
            if isinstance(item, FileMark):
                counts.files += 1
                return
            if isinstance(item, InputError):
                out.errors.append(item)
                counts.resources += 1
                counts.rejected += 1
                return
        seq += 1
        if seq >= BULK_RESOURCES and not relaxed:  # a bulk input: what is extracted stays alive to the end
            bulk.enter_context(relaxed_gc())
            relaxed = True
        counts.resources += 1
        if not item.full_url:
            rid = item.resource.get("id")
            if type(rid) is not str or not rid:
                item.name = _content_name(item, anonymous)
        elif type(rid := item.resource.get("id")) is str and rid and len(out.urls) < MAX_URLS:
            out.urls.setdefault(f"{item.resource_type}/{rid}", item.full_url)
        rt = item.resource_type
        kind = _KINDS.get(rt)
        if kind is None:
            if rt == "Patient":
                index.add(item)
                try:
                    patient = _patient(item)
                except _Bad as bad:
                    patient_errors.append(_rejection(item, bad, strict=False))
                    counts.rejected += 1
                    return
                if strict and (error := _strict_error(item)) is not None:
                    patient_errors.append(error)
                    counts.rejected += 1
                    return
                canonical[id(item)] = patient.ref
                patient_raws.append(item)
                patients[patient.ref] = patient
                counts.checked += 1
            elif rt == "Medication":  # used through references; counted as checked
                if strict and (error := _strict_error(item)) is not None:
                    late_errors.append((seq, error))  # not indexed: no order takes its drug from it
                    counts.rejected += 1
                    return
                index.add(item)
                counts.checked += 1
            elif rt in KNOWN_RESOURCE_TYPES:  # a resource no rule reads (Practitioner, Encounter …)
                index.occupy(item)
                counts.ignored += 1
            else:  # a misspelt or invented type: never silently dropped
                late_errors.append((seq, _err(str(item.location), "unknown-type", rt, type=rt)))
                counts.rejected += 1
            return
        index.occupy(item)
        if kind == _ORDER and _names_medication_by_reference(item.resource):
            deferred.append((seq, item))  # its Medication may come later in the input
            return
        _extract(item, kind, seq, index, today, strict, groups, late_errors, counts)

    for entry in raw_items:
        if isinstance(entry, TypedLines):  # a run of bulk lines, each as a TypedResource below
            if strict:  # every line as a dict
                for number, line in zip(entry.line_numbers(), entry.lines):
                    for item in _ndjson_line(line, entry.file, number):
                        take(item)
                continue
            if type(entry.typed[0]) is PatientLine:
                for number, t, line in zip(entry.line_numbers(), entry.typed, entry.lines):
                    rid, birth = t.id, t.birthDate
                    born = None
                    if not rid or birth is not UNSET and (born := _date(birth)) is None:  # as the dict path says
                        for item in _ndjson_line(line, entry.file, number):
                            take(item)
                        continue
                    # what take() does with this Patient read as a dict, without the dict's generic path
                    seq += 1
                    if seq >= BULK_RESOURCES and not relaxed:
                        bulk.enter_context(relaxed_gc())
                        relaxed = True
                    counts.resources += 1
                    resource: dict[str, Any] = {"resourceType": "Patient", "id": rid}
                    if t.gender is not UNSET:
                        resource["gender"] = t.gender
                    if birth is not UNSET:
                        resource["birthDate"] = birth
                    raw = RawResource(resource, SourceLocation(entry.file, number))
                    index.add(raw)
                    patient = Patient(f"Patient/{rid}", born, t.gender or "")
                    canonical[id(raw)] = patient.ref
                    patient_raws.append(raw)
                    patients[patient.ref] = patient
                    counts.checked += 1
                continue
            base = seq  # line k of the run is at position base + k + 1
            seq += len(entry.lines)
            if not relaxed and seq >= BULK_RESOURCES:
                bulk.enter_context(relaxed_gc())
                relaxed = True
            orders, refused = typed_run(entry, index, today, typed_groups)
            run_bases.append(base)
            typed_runs.append(orders)
            typed_orders += len(orders) - len(refused)
            if refused:
                for k in refused:  # read as dicts, at their positions
                    seq = base + k
                    number = entry.first + k if entry.numbers is None else entry.numbers[k]
                    for item in _ndjson_line(entry.lines[k], entry.file, number):
                        take(item)
                seq = base + len(orders)
            continue
        if isinstance(entry, TypedResource):
            if not strict:
                order = _typed_order(entry, index, today)
                if order is not None:  # what the dict path gives, without its dict (see _typed_order)
                    seq += 1
                    if seq >= BULK_RESOURCES and not relaxed:
                        bulk.enter_context(relaxed_gc())
                        relaxed = True
                    typed_orders += 1
                    subject = entry.typed.subject
                    written = subject.reference if subject else None
                    if not written or written[0] == "#" or "?" in written:
                        written = typed_patient_key(entry.typed, entry.location.file)
                    group = groups.get(written)
                    if group is None:
                        group = groups[written] = []
                    group.append((seq, _ORDER, order))
                    continue
            if entry.reader is None:  # read as a dict
                for item in _ndjson_line(entry.line, entry.location.file, entry.location.line or 0):
                    take(item)
            else:
                take(entry.reader(entry.line))
        else:
            take(entry)
    counts.resources += typed_orders
    counts.checked += typed_orders
    for position, raw in deferred:
        _extract(raw, _ORDER, position, index, today, strict, groups, late_errors, counts)
    out.errors.extend(patient_errors)
    if deferred:
        late_errors.sort(key=_first)
    out.errors.extend(error for _, error in late_errors)

    resolved: dict[str, str] = {}  # patient reference as written -> canonical key

    def canonical_key(written: str | None) -> str:
        if written is None:
            return ""
        if written.startswith(UNNAMED):  # the lines of one file that name no patient
            return written
        found = resolved.get(written)
        if found is None:
            if LOCAL_REF in written:  # "#id" naming a Patient entry of the same file (French ePrescription)
                file, _, local = written.partition(LOCAL_REF)
                target = index.by_file_key.get((file, f"Patient/{local[1:]}"))
            else:
                target = index.resolve(written)
            found = resolved[written] = canonical.get(id(target), written) if target is not None else written
        return found

    positions: dict[int, int] = {}  # id(order of a run) -> its position, filled when first needed

    def placed(written: str | None) -> list[tuple[int, int, Any]]:
        """The items of one way of writing a patient's reference, with their positions."""
        items = groups.get(written, [])
        typed = typed_groups.get(written)
        if typed:
            if not positions:
                positions.update({id(o): base + k for base, orders in zip(run_bases, typed_runs)
                                  for k, o in enumerate(orders, 1)})
            items = items + [(positions[id(o)], _ORDER, o) for o in typed]
        return items

    ways: dict[str, list[str | None]] = {}  # canonical key -> the ways its reference is written
    for written in groups:
        ways.setdefault(canonical_key(written), []).append(written)
    for written in typed_groups:
        if written not in groups:
            ways.setdefault(canonical_key(written), []).append(written)
    records: dict[str, PatientRecord] = {}
    for key, written_as in ways.items():
        shown = key.partition(LOCAL_REF)[2] or key  # an unresolved "#id" is shown as written
        person = (patients.get(key) or Patient(ref=shown)) if key and key[0] != UNNAMED else None
        if len(written_as) == 1 and (only := written_as[0]) not in groups:  # orders of runs only, in input order
            records[key] = PatientRecord(patient=person, medication_orders=typed_groups[only])
            continue
        if len(written_as) == 1 and only not in typed_groups:
            items = sorted(groups[only], key=_first) if deferred else groups[only]
        else:  # several ways of writing one patient's reference, or orders of runs and other items: input order
            items = sorted([item for written in written_as for item in placed(written)], key=_first)
        rec = records[key] = PatientRecord(patient=person)
        lists = (rec.medication_orders, rec.service_orders, rec.conditions, rec.allergies, rec.observations)
        for _, kind, extracted in items:
            lists[kind].append(extracted)
    # Patients with a Patient resource but no other data still form a (clean) record.
    for ref, patient in patients.items():
        if ref not in records:
            records[ref] = PatientRecord(patient=patient)
    out.records = [records[k] for k in sorted(records)]
    return out


_ORDER, _SERVICE, _CONDITION, _ALLERGY, _OBSERVATION = range(5)


_KINDS = {"MedicationRequest": _ORDER, "ServiceRequest": _SERVICE, "Condition": _CONDITION,
          "AllergyIntolerance": _ALLERGY, "Observation": _OBSERVATION} | dict.fromkeys(MEDICATION_USE_TYPES, _ORDER)
"""Resource types extracted into a patient record, by the record list they go to."""


def _first(item: tuple[int, Any] | tuple[int, int, Any]) -> int:
    return item[0]


def _names_medication_by_reference(res: dict[str, Any]) -> bool:
    """True when the medication is not written in the resource itself (see :func:`_medication`)."""
    med = res.get("medication")
    concept = med.get("concept") if isinstance(med, dict) else res.get("medicationCodeableConcept")
    return concept is None


def _extract(raw: RawResource, kind: int, seq: int, index: _Index, today: date, strict: bool,
             groups: dict[str | None, list[tuple[int, int, Any]]], errors: list[tuple[int, InputError]],
             counts: InputCounts) -> None:
    """Extract one resource of a patient record into ``groups`` (or an error into ``errors``)."""
    if strict and (error := _strict_error(raw)) is not None:
        errors.append((seq, error))
        counts.rejected += 1
        return
    try:
        if kind == _ORDER:
            extracted: Any = (_medication_order(raw, index, today) if raw.resource_type == "MedicationRequest"
                              else _medication_use(raw, index, today))
        elif kind == _SERVICE:
            extracted = _service_order(raw, today)
        elif kind == _CONDITION:
            extracted = _condition(raw)
        elif kind == _ALLERGY:
            extracted = _allergy(raw)
        else:
            extracted = _observation(raw)
    except _Bad as bad:
        errors.append((seq, _rejection(raw, bad, strict=strict)))
        counts.rejected += 1
        groups.setdefault(_group_of(raw), [])  # its patient still has a record, as every patient named
        return
    written = _group_of(raw)
    group = groups.get(written)
    if group is None:
        group = groups[written] = []
    group.append((seq, kind, extracted))
    counts.checked += 1


def _group_of(raw: RawResource) -> str:
    """The patient reference ``raw`` is written with, or its file's key when it names none
    (:func:`~checker.fhir_input.raw.unnamed_patient`: never pooled with another file's)."""
    return raw.patient_key() or unnamed_patient(raw.location.file)


def _rejection(raw: RawResource, bad: _Bad, *, strict: bool) -> InputError:
    if bad.where is not None:  # the bad element is in the Medication the order references
        where = SourceLocation(bad.where.file, bad.where.line, bad.where.entry, bad.where.pointer + bad.path)
        names = Message("order-not-checked", {"type": raw.resource_type, "location": str(raw.location)})
        return InputError.coded(str(where), Message(bad.message.code, bad.message.params, (*bad.message.extra, names)),
                                raw.resource_type)
    message = bad.message if strict else _explain(raw) or bad.message
    where = SourceLocation(raw.location.file, raw.location.line, raw.location.entry, raw.location.pointer + bad.path)
    return InputError.coded(str(where), message, raw.resource_type)
