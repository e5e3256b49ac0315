"""Plain X-ray protocols (skull, sinuses, plain abdomen) read against the publisher's own pages:
the SFR / Collège de la médecine générale ADERIM sheets « Céphalées aiguës non fébriles »,
« Traumatisme crânien », « Douleur abdominale », « Ingestion de corps étranger » and « Colique
néphrétique ». The HAS 2008-2009 reports are only named in the descriptions: a protocol judges an
order only for the reasons those sheets cover, explicitly (warning) or by naming other exams (info)."""

from __future__ import annotations

from datetime import date

import pytest

from checker.model import Concept, Patient, PatientRecord, ServiceOrder
from checker.protocols import ProtocolSet, evaluate_record
from checker.referentials import Referentials

AS_OF = date(2026, 1, 15)
ORDERED = date(2026, 1, 10)
ADULT = date(1970, 1, 1)
CHILD = date(2016, 6, 1)
NEWBORN = date(2026, 1, 2)


@pytest.fixture(scope="module")
def shipped() -> ProtocolSet:
    return Referentials().get("protocols")


def _order(act: str, reason: str | None, birth: date | None) -> PatientRecord:
    order = ServiceOrder(ref="ServiceRequest/x", status="active", intent="order", code=Concept(text=act),
                         authored_on=ORDERED, reasons=(Concept(text=reason),) if reason else ())
    return PatientRecord(Patient("Patient/x", birth, "female"), service_orders=[order])


def _outcome(shipped: ProtocolSet, pid: str, act: str, reason: str | None,
             birth: date | None) -> tuple[str, str, str | None] | None:
    found = evaluate_record(shipped.get(pid), _order(act, reason, birth), AS_OF)
    if not found:
        return None
    [ev] = found
    return ev.outcome.id, ev.outcome.verdict, ev.outcome.severity


# --- skull X-ray -----------------------------------------------------------------------------------

def test_skull_xray_for_a_childs_headache_is_explicitly_not_indicated(shipped: ProtocolSet) -> None:
    assert _outcome(shipped, "HAS-RADIO-CRANE", "Radiographie du crâne", "Céphalées depuis 3 jours", CHILD) == (
        "headache-child", "off-protocol", "warning")


def test_skull_xray_for_an_adults_headache_is_outside_the_exams_named(shipped: ProtocolSet) -> None:
    assert _outcome(shipped, "HAS-RADIO-CRANE", "Radiographie du crâne", "Céphalées", ADULT) == (
        "headache-adult", "off-protocol", "info")


def test_skull_xray_headache_with_unknown_age_is_not_called_a_child(shipped: ProtocolSet) -> None:
    assert _outcome(shipped, "HAS-RADIO-CRANE", "Radiographie du crâne", "Céphalées", None) == (
        "headache-adult", "off-protocol", "info")


@pytest.mark.parametrize("reason", ["Vertiges", "Baisse de l'acuité visuelle", "Bilan de surdité"])
def test_skull_xray_for_a_reason_no_sheet_read_covers_is_not_judged(shipped: ProtocolSet, reason: str) -> None:
    ev = _outcome(shipped, "HAS-RADIO-CRANE", "Radiographie du crâne", reason, ADULT)
    assert ev is not None and ev[1] == "not-applicable", (reason, ev)


def test_skull_xray_remaining_indication_and_missing_reason_are_kept(shipped: ProtocolSet) -> None:
    assert _outcome(shipped, "HAS-RADIO-CRANE", "Radiographie du crâne", "Myélome, céphalées", ADULT)[1] == "conform"
    assert _outcome(shipped, "HAS-RADIO-CRANE", "Radiographie du crâne", None, ADULT)[:2] == (
        "no-reason", "undetermined")


# --- sinus X-ray -----------------------------------------------------------------------------------

def test_sinus_xray_for_a_childs_headache_is_explicitly_not_indicated(shipped: ProtocolSet) -> None:
    assert _outcome(shipped, "HAS-RADIO-SINUS", "Radiographie des sinus", "Céphalées frontales", CHILD) == (
        "headache-child", "off-protocol", "warning")


def test_sinus_xray_for_an_adults_headache_is_outside_the_exams_named(shipped: ProtocolSet) -> None:
    assert _outcome(shipped, "HAS-RADIO-SINUS", "Radiographie des sinus", "Céphalées", ADULT) == (
        "headache-adult", "off-protocol", "info")


def test_sinus_xray_for_sinusitis_alone_is_no_longer_judged(shipped: ProtocolSet) -> None:
    """No publisher page on the imaging of sinusitis was read: the HAS 2008 sheet was only found as
    copies on document-sharing sites."""
    ev = _outcome(shipped, "HAS-RADIO-SINUS", "Radiographie des sinus", "Sinusite maxillaire aiguë", ADULT)
    assert ev is not None and ev[1] == "not-applicable", ev


# --- plain abdominal X-ray -------------------------------------------------------------------------

def test_asp_for_a_childs_abdominal_pain_is_explicitly_not_indicated(shipped: ProtocolSet) -> None:
    assert _outcome(shipped, "HAS-ASP", "Abdomen sans préparation", "Douleurs abdominales", CHILD) == (
        "pain-child", "off-protocol", "warning")


def test_asp_for_an_adults_abdominal_pain_is_outside_the_exams_named(shipped: ProtocolSet) -> None:
    assert _outcome(shipped, "HAS-ASP", "Abdomen sans préparation", "Douleurs abdominales", ADULT) == (
        "pain-adult", "off-protocol", "info")


def test_asp_in_the_first_year_of_life_is_not_flagged(shipped: ProtocolSet) -> None:
    assert _outcome(shipped, "HAS-ASP", "Abdomen sans préparation", "Douleurs abdominales", NEWBORN)[1] == "conform"


@pytest.mark.parametrize("reason", ["Ingestion de pile bouton", "Corps étranger acéré avalé",
                                    "Ingestion d'aimants", "Colique néphrétique, avec échographie"])
def test_asp_indications_named_by_the_sheets_are_conform(shipped: ProtocolSet, reason: str) -> None:
    ev = _outcome(shipped, "HAS-ASP", "Abdomen sans préparation", reason, ADULT)
    assert ev is not None and ev[1] == "conform", (reason, ev)


def test_asp_for_a_foreign_body_of_unstated_nature_names_the_datum(shipped: ProtocolSet) -> None:
    [ev] = evaluate_record(shipped.get("HAS-ASP"),
                           _order("Abdomen sans préparation", "Ingestion de corps étranger", CHILD), AS_OF)
    assert (ev.outcome.id, ev.outcome.verdict) == ("foreign-body-nature", "undetermined")
    assert any("corps étranger" in m.detail("fr") for m in ev.missing), ev.missing


@pytest.mark.parametrize("reason", ["Constipation chronique", "Recherche de stérilet", "Syndrome occlusif"])
def test_asp_for_a_reason_no_sheet_read_covers_is_not_judged(shipped: ProtocolSet, reason: str) -> None:
    ev = _outcome(shipped, "HAS-ASP", "Abdomen sans préparation", reason, ADULT)
    assert ev is not None and ev[1] == "not-applicable", (reason, ev)


# --- sources ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("pid", ["HAS-RADIO-CRANE", "HAS-RADIO-SINUS", "HAS-ASP", "HAS-TRAUMA-CRANIEN-IMAGERIE"])
def test_plain_xray_protocols_cite_only_publisher_pages(shipped: ProtocolSet, pid: str) -> None:
    hosts = {s.url.split("/")[2] for s in shipped.get(pid).sources}
    assert hosts <= {"aderim.radiologie.fr", "doi.org"}, hosts


@pytest.mark.parametrize("pid, act", [("HAS-RADIO-CRANE", "Radiographie du crâne"),
                                      ("HAS-RADIO-SINUS", "Radiographie des sinus")])
@pytest.mark.parametrize("reason", ["Céphalées fébriles", "Céphalées et fièvre à 39", "Sinusite aiguë avec céphalées"])
def test_febrile_or_sinus_headache_is_outside_the_sheet_on_non_febrile_headache(shipped: ProtocolSet, pid: str,
                                                                              act: str, reason: str) -> None:
    ev = _outcome(shipped, pid, act, reason, CHILD)
    assert ev is not None and ev[1] == "not-applicable", (pid, reason, ev)


def test_denied_fever_does_not_take_the_headache_out_of_scope(shipped: ProtocolSet) -> None:
    assert _outcome(shipped, "HAS-RADIO-SINUS", "Radiographie des sinus", "Céphalées, pas de fièvre", CHILD)[0] == (
        "headache-child")
