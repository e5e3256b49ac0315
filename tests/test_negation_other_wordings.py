"""Other ways of writing a denial, a relative's disease, a doubt or a past episode, over every plain
phrase of every notion of the facts tables (French and English), then end to end through PR004."""

from __future__ import annotations

import pytest

from checker import facts
from checker.model import Concept
from tests.test_facts_negation import AS_OF, TABLES, _literal_phrases, _valproate, findings
from tests.test_facts_point_in_time import bundle, condition, med


@pytest.mark.parametrize("name, phrase", _literal_phrases())
@pytest.mark.parametrize("template, expected", [
    # denied after the term, or by a longer cue before it
    ("{} nié", False), ("{} niée", False), ("{} : nié", False), ("{}: denied", False), ("{} absent", False),
    ("{} : absente", False), ("Absence totale de {}", False), ("Absence of {}", False), ("Free of {}", False),
    ("Aucune notion de {}", False), ("Negative for {}", False), ("No evidence of {}", False),
    ("PAS DE {}", False), ("{} : NON", False),
    # a relative's, written as a header or with the relative as subject
    ("Antécédents familiaux : {}", None), ("ATCD familiaux : {}", None), ("Père : {}", None),
    ("FH: {}", None), ("Family history: {}", None), ("Mother had {}", None), ("Sa mère a eu un {}", None),
    # a question, a probability, a work-up, a risk or a prevention: not the patient's disease
    ("{} ?", None), ("? {}", None), ("Probable {}", None), ("Évoque un {}", None), ("Tableau évocateur de {}", None),
    ("Bilan de {} en cours", None), ("Workup for {}", None), ("Dépistage de {}", None), ("Screening for {}", None),
    ("Risque de {}", None), ("Risk of {}", None), ("Prévention de {}", None), ("Prevention of {}", None),
    # still affirmed
    ("ATCD : {}", True), ("Connu pour {}", True), ("Diagnosed with {}", True), ("{} confirmé", True),
    ("No fever; {}", True), ("Pas de fièvre. {}", True), ("Fièvre ? Non. {}", True), ("{} ? oui", True),
    # answered after the question
    ("{} ? non", False), ("{} ? Négatif", False),
    # a second round of wordings
    ("Nie tout {}", False), ("{} non retrouvé", False), ("{} : jamais", False), ("Patient denies {}", False),
    ("{} was ruled out", False), ("Absence d'argument pour un {}", False), ("Pas de {} connu", False), ("{} : neg", False),
    ("No {} reported", False), ("{} niés par la patiente", False),
    ("Frère : {}", None), ("Antécédents familiaux: {} (père)", None), ("Father had {}", None),
    ("Grand-mère maternelle : {}", None), ("Mère atteinte d'un {}", None), ("Father suffers from {}", None), ("{} ??", None), ("Hypothèse de {}", None), ("{} à évoquer", None),
    ("Bilan d'un {}", None), ("Risque élevé de {}", None), ("Prévention d'un {}", None), ("Probable {} débutant", None),
    ("ATCD personnels : {}", True), ("Suivi pour {}", True), ("{} (2021)", True), ("Known case of {}", True),
    ("{} stable", True),
])
def test_other_wordings_read_the_same_way_for_every_phrase(name: str, phrase: str, template: str,
                                                           expected: bool | None) -> None:
    text = template.format(phrase)
    assert facts.concept_polarity(TABLES.concept(name), Concept(text=text))[0] is expected, text


@pytest.mark.parametrize("text", ["Grossesse terminée en 2019", "ATCD de grossesse", "Antécédent de grossesse",
                                  "Grossesse antérieure", "Ancienne grossesse", "Grossesse précédente en 2018",
                                  "Previous pregnancy", "Past pregnancy", "History of pregnancy, resolved",
                                  "Pregnancy ended in 2019", "Prior pregnancy"])
@pytest.mark.parametrize("clinical", ["active", None])
def test_a_pregnancy_written_as_over_is_no_current_pregnancy_on_valproate(text: str, clinical: str | None) -> None:
    """A past pregnancy in the wording of an active (or status-less) Condition is no pregnancy on the
    order's day; nothing states the current status either, so no critical finding."""
    got = findings(_valproate(condition("g", text, clinical=clinical)), AS_OF, "PR004")
    assert not [f for f in got if f["severity"] == "critical"], text


@pytest.mark.parametrize("text", ["Grossesse niée", "Pregnancy: denied", "Grossesse : absente"])
def test_a_denied_pregnancy_in_other_wordings_is_no_pregnancy(text: str) -> None:
    assert not findings(_valproate(condition("g", text)), AS_OF, "PR004")


@pytest.mark.parametrize("text", ["Grossesse ?", "Enceinte ?", "Probable pregnancy", "Bilan de grossesse en cours"])
def test_a_questioned_pregnancy_is_a_note_naming_the_missing_status(text: str) -> None:
    got = findings(_valproate(condition("g", text)), AS_OF, "PR004")
    assert [(f["severity"], f["evidence"]["missing"]) for f in got] == [("info", "pregnancy-status")], text


@pytest.mark.parametrize("text", ["Grossesse en cours, ATCD de fausse couche",
                                  "Enceinte de 8 SA, grossesse précédente en 2018", "Pregnant, previous pregnancy in 2019"])
def test_a_current_pregnancy_beside_a_past_one_stays_critical(text: str) -> None:
    got = findings(_valproate(condition("g", text, onset="2025-11-01")), AS_OF, "PR004")
    assert got and got[0]["severity"] == "critical", text


def test_a_past_ulcer_is_still_a_history_of_ulcer() -> None:
    """The past-episode reading is for notions judged on the day (a pregnancy); a history counts."""
    ulcer = TABLES.concept("peptic-ulcer")
    for text in ("Ancien ulcère gastrique", "Previous peptic ulcer", "Ulcère gastrique guéri"):
        assert facts.concept_polarity(ulcer, Concept(text=text))[0] is True, text


@pytest.mark.parametrize("text", ["Fracture ?", "Probable fracture", "Risque d'effets secondaires pendant le trajet",
                                  "Bilan de lombalgie"])
def test_a_requests_reason_keeps_its_question_as_the_indication(text: str) -> None:
    """Reading a request's reason (protocols), a question, a probability, a risk or a work-up names the
    indication: only the patient's state is read as a hypothesis then."""
    import re

    pattern = re.compile(r"\b(?:fracture|effets secondaires|lombalgie)\b")
    assert facts.affirmed(pattern, text) is True


@pytest.mark.parametrize("text", ["Mère allergique à la pénicilline", "Mother allergic to penicillin",
                                  "Antécédents familiaux : allergie à la pénicilline"])
def test_a_relatives_allergy_is_no_allergy_of_the_patient(text: str) -> None:
    allergy = {"resourceType": "AllergyIntolerance", "id": "al", "patient": {"reference": "Patient/pit"},
               "code": {"text": text}}
    data = bundle(med("amox", "Amoxicilline 1 g comprimé", "2026-01-10", freq=2, days=7), allergy)
    assert not findings(data, AS_OF, "PR001")
