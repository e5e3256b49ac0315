"""Brain imaging for a child's or adolescent's headache (HAS / G4 fiche pertinence, 18 January 2024,
red flags as listed by the SFR; young age and the other urgent situations of the ADERIM sheet
« Céphalées aiguës non fébriles » also count): no brain imaging without a red flag."""

from __future__ import annotations

from datetime import date

import pytest

from checker.model import Concept, Patient, PatientRecord, ServiceOrder
from checker.protocols import Protocol, ProtocolSet, evaluate_record
from checker.referentials import Referentials

AS_OF = date(2026, 1, 15)
ORDERED = date(2026, 1, 10)
CHILD = date(2015, 5, 5)


@pytest.fixture(scope="module")
def proto() -> Protocol:
    protocols: ProtocolSet = Referentials().get("protocols")
    return protocols.get("HAS-CEPHALEES-ENFANT-IMAGERIE")


def _outcome(proto: Protocol, act: str, reason: str | None, birth: date | None) -> tuple[str, str] | None:
    order = ServiceOrder(ref="ServiceRequest/c", status="active", intent="order", code=Concept(text=act),
                         authored_on=ORDERED, reasons=(Concept(text=reason),) if reason else ())
    found = evaluate_record(proto, PatientRecord(Patient("Patient/c", birth, "male"), service_orders=[order]), AS_OF)
    if not found:
        return None
    [ev] = found
    return ev.outcome.id, ev.outcome.verdict


@pytest.mark.parametrize("act", ["IRM cérébrale", "Scanner cérébral"])
@pytest.mark.parametrize("reason", ["Céphalées depuis deux semaines", "Céphalées, pas de déficit neurologique",
                                    "Maux de tête récidivants, examen normal",
                                    "Céphalées, examen neurologique normal"])
def test_brain_imaging_for_a_childs_headache_without_red_flag_is_off_protocol(proto: Protocol, act: str,
                                                                              reason: str) -> None:
    assert _outcome(proto, act, reason, CHILD) == ("no-red-flag", "off-protocol")


@pytest.mark.parametrize("reason", [
    "Céphalée en coup de tonnerre", "Céphalées avec déficit neurologique", "Céphalées et signes d'HTIC",
    "Céphalées, vomissements en jet, oedème papillaire", "Céphalée récente, continue, d'intensité croissante",
    "Céphalées et trouble endocrinien", "Céphalées chez un enfant drépanocytaire",
    "Céphalées, porteur d'une dérivation ventriculaire",
])
def test_a_red_flag_justifies_the_imaging(proto: Protocol, reason: str) -> None:
    assert _outcome(proto, "IRM cérébrale", reason, CHILD) == ("conform", "conform"), reason


def test_a_very_young_child_is_a_red_flag(proto: Protocol) -> None:
    assert _outcome(proto, "IRM cérébrale", "Céphalées", date(2023, 3, 1)) == ("conform", "conform")


@pytest.mark.parametrize("reason, birth", [
    ("Migraine", CHILD),                          # judged by SFR-MIGRAINE-IMAGERIE
    ("Céphalées post-traumatiques", CHILD),       # head trauma
    ("Céphalées", date(1980, 1, 1)),              # adult
    ("Bilan d'épilepsie", CHILD),                 # not a headache
])
def test_outside_the_sheet_nothing_is_said(proto: Protocol, reason: str, birth: date | None) -> None:
    ev = _outcome(proto, "IRM cérébrale", reason, birth)
    assert ev is not None and ev[1] == "not-applicable", (reason, ev)


def test_an_order_with_no_reason_is_not_judged_here(proto: Protocol) -> None:
    assert _outcome(proto, "IRM cérébrale", None, CHILD) == ("out", "not-applicable")


def test_an_unknown_age_names_the_birth_date(proto: Protocol) -> None:
    order = ServiceOrder(ref="ServiceRequest/c", status="active", intent="order", code=Concept(text="IRM cérébrale"),
                         authored_on=ORDERED, reasons=(Concept(text="Céphalées"),))
    [ev] = evaluate_record(proto, PatientRecord(Patient("Patient/c", None, "male"), service_orders=[order]), AS_OF)
    assert (ev.outcome.id, ev.outcome.verdict) == ("age-unknown", "undetermined")
    assert any("naissance" in m.detail("fr") for m in ev.missing), ev.missing
