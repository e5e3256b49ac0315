"""MedicationDispense, MedicationAdministration and MedicationStatement: drugs the patient takes."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from checker.fhir_input.dates import _cql_date, _read_date, _read_end_date, _dated, _ext_cql, _last_day
from checker.fhir_input.elements import _Bad, _concept, _list, _quantity, _status, _ucum_time
from checker.fhir_input.medications import _dosage, _medication
from checker.fhir_input.raw import RawResource
from checker.fhir_input.references import _Index, _resource_ref
from checker.fhir_input.validation import detect_version
from checker.findings import Message
from checker.model import NOT_CURRENT, Dispense, MedicationOrder, period_days

_USE_STATUS_TAKEN = {
    "MedicationDispense": {"completed", "in-progress", "preparation"},
    "MedicationAdministration": {"completed", "in-progress"},
    "MedicationStatement": {"active", "completed", "intended", "recorded"},
}


_USE_KIND = {"MedicationDispense": "dispense", "MedicationAdministration": "administration",
             "MedicationStatement": "statement"}


_STU3_NOT_DONE = {"MedicationDispense": ("notDone", True, "declined"),
                  "MedicationAdministration": ("notGiven", True, "not-done"),
                  "MedicationStatement": ("taken", "n", "not-taken")}
"""STU3 flags saying the drug was not dispensed/given/taken: (element, value, R4 status meaning it)."""


_ADHERENCE_SYSTEM = "http://hl7.org/fhir/CodeSystem/medication-statement-adherence"


_ADHERENCE_TAKING = {"taking", "taking-as-directed", "taking-not-as-directed"}


_ADHERENCE_NOT_TAKING = {"not-taking", "on-hold", "on-hold-as-directed", "on-hold-not-as-directed",
                         "stopped", "stopped-as-directed", "stopped-not-as-directed"}
"""R5 MedicationStatement.adherence codes: ``taking`` and ``not-taking`` with their sub-codes."""


def _adherence(res: dict[str, Any]) -> str:
    """``taking``, ``not-taking`` or '' from an R5 MedicationStatement's ``adherence.code``."""
    adherence = res.get("adherence")
    if not isinstance(adherence, dict):
        return ""
    for c in _concept(adherence.get("code"), "/adherence/code").codings:
        if c.system in ("", _ADHERENCE_SYSTEM):
            if c.code in _ADHERENCE_TAKING:
                return "taking"
            if c.code in _ADHERENCE_NOT_TAKING:
                return "not-taking"
    return ""


def _use_status(res: dict[str, Any], rt: str) -> str:
    """The status of a dispense, administration or statement, read with what else says the drug
    was not taken: STU3 ``notDone``/``notGiven``/``taken: n`` and R5 ``adherence`` not-taking."""
    status = _status(res)
    element, value, meaning = _STU3_NOT_DONE[rt]
    if res.get(element) == value:
        return meaning
    if rt == "MedicationStatement" and status not in NOT_CURRENT and _adherence(res) == "not-taking":
        return "not-taking"
    return status


def _medication_use(raw: RawResource, index: _Index, today: date) -> MedicationOrder:
    """A dispense, administration or statement: a drug the patient is taking over a period.

    Its period is carried as a :class:`Dispense` (start, end or supply days) so that
    treatment-period logic treats every kind alike:

    * a dispense runs from its hand-over (else preparation) for ``daysSupply``; without it, it is
      open-ended like a prescription without duration;
    * an administration covers its ``effectivePeriod``, or, given at one ``effectiveDateTime``,
      that day only (the day, month or year the date is written to);
    * a statement covers its ``effectivePeriod`` (an omitted end means still being taken, per the
      FHIR comment on ``effective[x]``). An ``effectiveDateTime`` is, per FHIR, "the date/time
      when the medication is/was/will be taken": a statement that says the drug is no longer
      taken (R4 status ``completed``) covers that day only; any other (R4 ``active``,
      ``intended``, ``unknown``, ``on-hold``; R5 ``recorded``, the usual medication-list entry)
      runs from that day on, because nothing says it ended: reading it as one day would hide
      its interactions (a false all-clear). No duration is assumed beyond what is written.

    Its status is ``active`` when the drug was handed over, given or is being taken, else the
    original status; records saying it was not taken (R4/R5 ``not-taken``, ``not-done``,
    ``declined``, STU3 ``taken: n``/``notGiven``/``notDone``, R5 adherence ``not-taking``) keep a
    status of :data:`~checker.model.NOT_TAKEN`, so they never count as a treatment.
    """
    res, rt = raw.resource, raw.resource_type
    if not any(k in res for k in ("medicationCodeableConcept", "medicationReference", "medication")):
        raise _Bad("/medication", Message("no-medication"))
    medication, ingredients, form, note = _medication(res, raw, index)
    status = _use_status(res, rt)
    start = end = None
    supply_days = None
    if rt == "MedicationDispense":
        start = _dated(res, "whenHandedOver", today) or _dated(res, "whenPrepared", today)
        days = res.get("daysSupply")
        if isinstance(days, dict):
            q = _quantity(days, "/daysSupply")
            supply_days = period_days(q.value, _ucum_time(q.unit) or "d") if q else None
    else:
        start = _dated(res, "effectiveDateTime", today)
        if start is not None:
            ongoing = rt == "MedicationStatement" and status != "completed"
            end = None if ongoing else (_last_day(res.get("effectiveDateTime")) or start)
        period = res.get("effectivePeriod")
        if isinstance(period, dict):
            start = start or _read_date(period.get("start"), "/effectivePeriod/start")
            end = end or _read_end_date(period.get("end"), "/effectivePeriod/end")
            for expr in _ext_cql(period):
                parts = re.split(r"\bend\s*:", expr, maxsplit=1)
                start = start or _cql_date(parts[0], today)
                if len(parts) > 1:
                    end = end or _cql_date(parts[1], today)
        start = start or _read_date(res.get("dateAsserted"), "/dateAsserted")
    dosage_name = "dosageInstruction" if rt == "MedicationDispense" else "dosage"
    dosage_list = _list(res, dosage_name) if rt in ("MedicationDispense", "MedicationStatement") else []
    taken = status in _USE_STATUS_TAKEN[rt]
    return MedicationOrder(
        ref=_resource_ref(raw),
        status="active" if taken else status,
        intent=_USE_KIND[rt],
        medication=medication,
        ingredients=ingredients,
        medication_form=form,
        authored_on=start,
        dosages=tuple(_dosage(d, f"/{dosage_name}/{i}") for i, d in enumerate(dosage_list)),
        dispense=Dispense(validity_start=start, validity_end=end, supply_days=supply_days),
        note=" ".join(x for x in (f"{rt} ({status})", note) if x),
        fhir_version=detect_version(res),
        location=raw.location,
        draft=False,
        kind=_USE_KIND[rt],  # type: ignore[arg-type]
    )
