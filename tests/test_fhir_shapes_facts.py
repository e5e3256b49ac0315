"""FHIR shapes other systems write for the facts the rules read: a Condition whose verification
status says it is only a candidate diagnosis (HL7 FHIR R4 ValueSet condition-ver-status: unconfirmed,
provisional, differential), an eGFR in another unit or given as a bound (``comparator``)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_facts_negation import AS_OF, _aspirin_warfarin, _valproate, findings
from tests.test_facts_point_in_time import bundle, condition, egfr, med

CANDIDATE = ["unconfirmed", "provisional", "differential"]


@pytest.mark.parametrize("status", CANDIDATE)
@pytest.mark.parametrize("text", ["Grossesse", "Pregnancy"])
def test_a_candidate_pregnancy_is_a_note_naming_the_missing_status_not_critical(status: str, text: str) -> None:
    got = findings(_valproate(condition("g", text, verification=status)), AS_OF, "PR004")
    assert [(f["severity"], f["evidence"]["pregnancy"], f["evidence"]["missing"]) for f in got] == \
        [("info", "evoked", "pregnancy-status")]


@pytest.mark.parametrize("status", CANDIDATE)
def test_a_candidate_ulcer_leaves_the_ulcer_question_open(status: str) -> None:
    got = findings(_aspirin_warfarin(condition("c", "Ulcère gastrique", verification=status)), AS_OF, "IX001")
    assert len(got) == 1
    assert got[0]["evidence"]["settled"] is False and "ulcer" in got[0]["evidence"]["missing"]


def test_a_confirmed_pregnancy_stays_critical() -> None:
    got = findings(_valproate(condition("g", "Grossesse", verification="confirmed")), AS_OF, "PR004")
    assert got and got[0]["severity"] == "critical"
