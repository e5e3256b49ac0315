"""Head-trauma imaging protocol read against the SFR/CMG ADERIM sheet « Traumatisme crânien »
(updated 25 April 2025): in the older patient, no imaging without clinical symptoms unless clinical
observation or follow-up is not possible; age alone is not a reason for a head CT."""

from __future__ import annotations

from datetime import date

import pytest

from checker.model import Concept, Observation, Patient, PatientRecord, ServiceOrder
from checker.protocols import Protocol, ProtocolSet, evaluate_record
from checker.referentials import Referentials

AS_OF = date(2026, 1, 15)
ORDERED = date(2026, 1, 14)


@pytest.fixture(scope="module")
def proto() -> Protocol:
    protocols: ProtocolSet = Referentials().get("protocols")
    return protocols.get("HAS-TRAUMA-CRANIEN-IMAGERIE")


def _ct(reason: str, birth: date | None, observations: list[Observation] | None = None) -> PatientRecord:
    order = ServiceOrder(ref="ServiceRequest/ht", status="active", intent="order",
                         code=Concept(text="Scanner cérébral sans injection"), authored_on=ORDERED,
                         reasons=(Concept(text=reason),))
    return PatientRecord(Patient("Patient/ht", birth, "female"), service_orders=[order],
                         observations=observations or [])


@pytest.mark.parametrize("birth", [date(1931, 5, 2), date(1948, 1, 1), date(1990, 7, 14)])
def test_age_alone_does_not_justify_a_head_ct(proto: Protocol, birth: date) -> None:
    [ev] = evaluate_record(proto, _ct("Chute de sa hauteur, traumatisme crânien léger", birth), AS_OF)
    assert ev.outcome.id == "ct-without-risk", ev.steps


def test_an_unknown_age_no_longer_blocks_the_decision(proto: Protocol) -> None:
    [ev] = evaluate_record(proto, _ct("Traumatisme crânien léger", None), AS_OF)
    assert ev.outcome.id == "ct-without-risk", ev.steps


@pytest.mark.parametrize("reason", [
    "Traumatisme crânien, surveillance impossible à domicile",
    "Traumatisme crânien léger ; vit seule, surveillance clinique non réalisable",
    "Traumatisme crânien, suivi impossible",
    "Traumatisme crânien avec vomissements répétés",
])
def test_impossible_observation_or_a_risk_sign_justifies_the_ct(proto: Protocol, reason: str) -> None:
    [ev] = evaluate_record(proto, _ct(reason, date(1935, 3, 3)), AS_OF)
    assert ev.outcome.id == "ct-justified", (reason, ev.steps)


def test_possible_observation_is_not_read_as_impossible(proto: Protocol) -> None:
    [ev] = evaluate_record(proto, _ct("Traumatisme crânien, surveillance possible par la famille",
                                      date(1935, 3, 3)), AS_OF)
    assert ev.outcome.id == "ct-without-risk", ev.steps


def test_an_unreadable_glasgow_score_is_named(proto: Protocol) -> None:
    gcs = Observation(ref="Observation/gcs", code=Concept(text="Score de Glasgow"), effective=ORDERED)
    [ev] = evaluate_record(proto, _ct("Traumatisme crânien léger", date(1980, 1, 1), [gcs]), AS_OF)
    assert ev.outcome.id == "ct-risk-unknown", ev.steps
    assert any("glasgow" in m.lower() for m in ev.missing), ev.missing
