"""MedicationRequest (STU3, R4, R4B, R5) to :class:`~checker.model.MedicationOrder`."""

from __future__ import annotations

from datetime import date
from typing import Any

from checker.fhir_input.dates import _date, _read_date, _dated
from checker.fhir_input.elements import _Bad, _concept, _concepts, _list, _ref, _s, _str_field
from checker.fhir_input.medications import _dispense, _dosages, _medication, _shared_element
from checker.fhir_input.raw import RawResource, TypedLines, TypedResource, unnamed_patient, written_patient
from checker.fhir_input.references import _Index, _resource_ref
from checker.fhir_input.typed import FAILED, UNSET, MedicationRequestLine, checked
from checker.fhir_input.validation import detect_version
from checker.findings import Message
from checker.model import Concept, Dispense, Dosage, MedicationOrder, SourceLocation


def _medication_order(raw: RawResource, index: _Index, today: date) -> MedicationOrder:
    res = raw.resource
    version = detect_version(res)
    if "medicationCodeableConcept" not in res and "medicationReference" not in res and "medication" not in res:
        raise _Bad("/medication", Message("order-no-medication"))
    medication, ingredients, form, note = _medication(res, raw, index)
    substitution = res.get("substitution")
    allowed: bool | None = None
    reason: Concept | None = None
    if substitution is not None and isinstance(substitution, dict):
        if isinstance(substitution.get("allowedBoolean"), bool):
            allowed = substitution["allowedBoolean"]
        elif isinstance(substitution.get("allowedCodeableConcept"), dict):
            sub = _concept(substitution["allowedCodeableConcept"], "/substitution/allowedCodeableConcept")
            codes = {c.code for c in sub.codings}
            allowed = False if codes & {"N", "none"} else True if codes else None
        if substitution.get("reason") is not None:
            reason = _concept(substitution.get("reason"), "/substitution/reason")
    reasons = _concepts(_list(res, "reasonCode"), "/reasonCode") if "reasonCode" in res else ()
    reason_refs = tuple(_ref(r) for r in _list(res, "reasonReference") if _ref(r)) if "reasonReference" in res else ()
    if version == "R5":  # R5 reason is a list of CodeableReference
        for r in _list(res, "reason"):
            if isinstance(r, dict):
                if r.get("concept") is not None:
                    reasons += (_concept(r["concept"], "/reason"),)
                if _ref(r.get("reference")):
                    reason_refs += (_ref(r.get("reference")),)
    notes = " ".join(_s(n.get("text")) for n in _list(res, "note") if isinstance(n, dict)).strip() if "note" in res else ""
    status, intent = _str_field(res, "status"), _str_field(res, "intent")
    authored = _read_date(res.get("authoredOn"), "/authoredOn")
    if authored is None and "_authoredOn" in res:
        authored = _dated(res, "authoredOn", today)
    dosages, dispense = _dosages_and_dispense(index, raw, today)  # after status/intent: same first error
    return MedicationOrder(
        ref=_resource_ref(raw),
        status=status,
        intent=intent,
        medication=medication,
        ingredients=ingredients,
        medication_form=form,
        authored_on=authored,
        requester=_ref(res.get("requester")),
        dosages=dosages,
        dispense=dispense,
        substitution_allowed=allowed,
        substitution_reason=reason,
        reasons=reasons,
        reason_refs=reason_refs,
        category=_concepts(_list(res, "category"), "/category") if "category" in res else (),
        note=f"{notes} {note}" if notes and note else notes or note,
        fhir_version=version,
        location=raw.location,
        draft=raw.draft,
    )


def _dosages_and_dispense(index: _Index, raw: RawResource, today: date) -> tuple[tuple[Dosage, ...], Dispense | None]:
    """A MedicationRequest's dosage instructions and dispense request, shared between requests
    that write both the same way (see :func:`_shared_element`)."""
    return _shared_element(index, raw, ("dosageInstruction", "dispenseRequest"),
                           lambda res: (_dosages(res, "dosageInstruction"), _dispense(res.get("dispenseRequest"), today)))


def _typed_order(item: TypedResource, index: _Index, today: date) -> MedicationOrder | None:
    """:func:`_medication_order` of a typed line, or ``None`` when the line must be read as a dict
    (no id, no medication, an element the dict path would refuse): then the dict path's result and
    error stand. Builds what :func:`_medication_order` builds from a resource holding only the
    elements of :class:`~checker.fhir_input.typed.MedicationRequestLine` (FHIR R4 by detection)."""
    return typed_order(item.typed, item.location, index, today)


def typed_order(t: MedicationRequestLine, location: SourceLocation, index: _Index, today: date
                ) -> MedicationOrder | None:
    """:func:`_typed_order` of a line decoded as ``t``, read at ``location``."""
    rid = t.id
    med, dosage, dispense_request = t.medicationCodeableConcept, t.dosageInstruction, t.dispenseRequest
    if not rid or med is UNSET:  # (UNSET is false) named by its content / medication by reference or missing
        return None
    # One bytes key, joined without copying each element first (a JSON text is never empty and holds
    # no newline, so b"" stands for an absent element and the key reads back unambiguously).
    key = _JOIN((med, _NONE if dosage is UNSET else dosage, _NONE if dispense_request is UNSET else dispense_request))
    memo = index.shared
    shared = memo.typed_lines.get(key)
    if shared is None:
        shared = _typed_shared((bytes(med), None if dosage is UNSET else bytes(dosage),
                                None if dispense_request is UNSET else bytes(dispense_request)), index, today)
        if shared is None:
            return None
        memo.keep(memo.typed_lines, key, shared)
    authored = None
    if t.authoredOn is not UNSET:  # an empty date too: the dict path refuses it
        authored = memo.typed_dates.get(t.authoredOn, _MISSING)
        if authored is _MISSING:
            authored = _date(t.authoredOn)
            if authored is None:  # not a FHIR date: the dict path refuses the line and names the element
                return None
            memo.keep(memo.typed_dates, t.authoredOn, authored)
    requester = t.requester
    # Positional (twice as fast as keywords here): the field order of MedicationOrder, checked by
    # tests/test_ingest_typed.py, which compares these orders with the dict path's.
    return MedicationOrder(
        f"MedicationRequest/{rid}",  # ref
        t.status or "",  # status
        t.intent or "",  # intent
        shared[0],  # medication
        (),  # ingredients
        None,  # medication_form
        authored,  # authored_on
        (requester.reference or "") if requester else "",  # requester
        shared[1],  # dosages
        shared[2],  # dispense
        None,  # substitution_allowed
        None,  # substitution_reason
        (),  # reasons
        (),  # reason_refs
        (),  # category
        "",  # note
        "R4",  # fhir_version
        location,  # location
    )


def typed_run(run: TypedLines, index: _Index, today: date, groups: dict[str | None, list[MedicationOrder]]
              ) -> tuple[list[MedicationOrder | None], list[int]]:
    """:func:`typed_order` of every line of ``run`` (``None`` for a line to read as a dict) and the
    positions in the run of the lines to read as dicts; each order is also appended to ``groups``
    under the patient reference it is written with (:func:`typed_patient_key`). The same steps as for
    one line, in one frame for the run with its look-ups bound once: the hot loop of bulk reading."""
    orders: list[MedicationOrder | None] = []
    refused: list[int] = []
    add_order = orders.append
    group_of = groups.get
    memo = index.shared
    lines_get, dates_get = memo.typed_lines.get, memo.typed_dates.get
    file = run.file
    for number, t in zip(run.line_numbers(), run.typed):
        rid = t.id
        med, dosage, dispense_request = t.medicationCodeableConcept, t.dosageInstruction, t.dispenseRequest
        authored = t.authoredOn
        shared = None
        if rid and med:  # (UNSET is false; a JSON text is never empty) else typed_order refuses it
            shared = lines_get(_JOIN((med, dosage or _NONE, dispense_request or _NONE)))
        if shared is None or authored is not UNSET and (authored := dates_get(authored)) is None:
            order = typed_order(t, SourceLocation(file, number), index, today)  # first sight, or refused
            add_order(order)
            if order is None:
                refused.append(len(orders) - 1)
                continue
            written: str | None = typed_patient_key(t, file)
        else:
            requester, subject = t.requester, t.subject
            order = MedicationOrder(  # as typed_order builds it
                f"MedicationRequest/{rid}", t.status or "", t.intent or "", shared[0], (), None,
                None if authored is UNSET else authored, (requester.reference or "") if requester else "",
                shared[1], shared[2], None, None, (), (), (), "", "R4", SourceLocation(file, number))
            add_order(order)
            written = subject.reference if subject else None  # the common case inline, as typed_patient_key
            if not written or written[0] == "#" or "?" in written:
                written = typed_patient_key(t, file)
        group = group_of(written)
        if group is None:
            groups[written] = [order]
        else:
            group.append(order)
    return orders, refused


def _typed_shared(key: tuple[bytes, bytes | None, bytes | None], index: _Index, today: date
                  ) -> tuple[Concept, tuple[Dosage, ...], Dispense | None] | None:
    """The medication, dosages and dispense of typed lines writing them as ``key`` (their JSON texts),
    or ``None`` when the dict path would refuse one of them. Shared between lines: the medication by
    its text alone, the dosages and dispense by theirs."""
    med_text, dosage_text, dispense_text = key
    memo = index.shared
    medicated = memo.typed_medications.get(med_text)
    if medicated is None:
        value = checked(med_text)
        if value is FAILED or value is None:  # null: the dict path looks for a referenced Medication
            return None
        try:
            medicated = _concept(value, "/medicationCodeableConcept")
        except _Bad:
            return None
        memo.keep(memo.typed_medications, med_text, medicated)
    elements = memo.typed_elements.get(key[1:])
    if elements is None:
        res: dict[str, Any] = {}
        for name, text in (("dosageInstruction", dosage_text), ("dispenseRequest", dispense_text)):
            if text is not None:
                res[name] = value = checked(text)
                if value is FAILED:
                    return None
        try:
            elements = (_dosages(res, "dosageInstruction"), _dispense(res.get("dispenseRequest"), today))
        except _Bad:
            return None
        memo.keep(memo.typed_elements, key[1:], elements)
    return (medicated, *elements)


def typed_patient_key(t: MedicationRequestLine, file: str) -> str:
    """The grouping key of a line of ``file`` decoded as ``t``: :meth:`RawResource.patient_key`, or
    :func:`unnamed_patient` when it names none."""
    subject = t.subject
    if subject is UNSET or subject.reference is UNSET or not subject.reference:
        return unnamed_patient(file)
    return written_patient(subject.reference, file)


_MISSING: Any = object()
_JOIN = b"\n".join
_NONE = b""
