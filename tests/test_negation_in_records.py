"""Negation reaches what a verb denies, not a later term: « ne fume plus depuis qu'elle est enceinte » is a pregnancy, « ne prend plus d'AINS depuis son ulcère » an ulcer history; "planned" does not make a pregnancy hypothetical. Read end to end through PR004 and IX001."""

from __future__ import annotations

import pytest
from tests.test_facts_negation import findings, _valproate, _aspirin_warfarin, AS_OF
from tests.test_facts_point_in_time import condition

@pytest.mark.parametrize("text", ["Ne fume plus depuis qu'elle est enceinte",
                                  "N'a pas arrêté le tabac pendant la grossesse",
                                  "She doesn't smoke since her pregnancy"])
def test_affirmed_pregnancy_on_valproate(text):
    got = findings(_valproate(condition("g", text, onset="2025-11-01")), AS_OF, "PR004")
    assert got and got[0]["severity"] == "critical"

@pytest.mark.parametrize("text", ["Ne prend plus d'AINS depuis son ulcère gastrique",
                                  "Patient doesn't tolerate NSAIDs due to peptic ulcer"])
def test_affirmed_ulcer_aspirin_vka(text):
    got = findings(_aspirin_warfarin(condition("c", text)), AS_OF, "IX001")
    assert got[0]["level"] == "AD"

@pytest.mark.parametrize("text", ["Planned C-section for twin pregnancy at 37 weeks",
                                  "G2P1, planned pregnancy at 12 weeks"])
def test_planned_wording_of_an_actual_pregnancy(text):
    got = findings(_valproate(condition("g", text, onset="2025-11-01")), AS_OF, "PR004")
    assert got and got[0]["severity"] == "critical"
