"""The patient's own state, written in ways the relative, family-header and past-episode readings
must not swallow: a possessive header (« Son diagnostic : … »), a personal section after a family
one, « jeune fille » as the patient, an episode written as not over (« hypokaliémie non corrigée »),
a past cue governing another word (« Previous admission for falls now pregnant »). Over every plain
phrase of every notion of the facts tables, then end to end (a missed fact is the worse error)."""

from __future__ import annotations

import pytest

from checker import facts
from checker.model import Concept
from tests.test_facts_negation import AS_OF, TABLES, _literal_phrases, _valproate, findings
from tests.test_facts_point_in_time import bundle, condition, med


@pytest.mark.parametrize("name, phrase", _literal_phrases())
@pytest.mark.parametrize("template, expected", [
    # « son » before a noun is the French possessive, not the English relative
    ("Son diagnostic : {}", True), ("Son état : {}", True), ("Son problème actuel : {}", True),
    # a personal section after a family one, empty or listed on the same line
    ("Antécédents familiaux :\nAntécédents personnels : {}", True),
    ("ATCD familiaux : diabète, ATCD personnels : {}", True),
    ("Family history: asthma, personal history: {}", True),
    # « jeune fille » is the patient
    ("Jeune fille atteinte de {}", True),
    # still a relative's
    ("Son père : {}", None), ("His son: {}", None), ("Antécédents familiaux : diabète, {}", None),
    ("Père : diabète, mère : {}", None), ("Sa jeune soeur a eu un {}", None), ("Sa fille a eu un {}", None),
])
def test_the_patients_own_wording_is_not_read_as_a_relatives(name: str, phrase: str, template: str,
                                                              expected: bool | None) -> None:
    text = template.format(phrase)
    assert facts.concept_polarity(TABLES.concept(name), Concept(text=text))[0] is expected, text


def _episodic_phrases() -> list[object]:
    return [p for p in _literal_phrases() if TABLES.concept(p.values[0]).episodic]


def test_the_tables_have_notions_that_come_and_go() -> None:
    assert len(_episodic_phrases()) >= 4


@pytest.mark.parametrize("name, phrase", _episodic_phrases())
@pytest.mark.parametrize("template, expected", [
    # an episode written as not over, or over only in part, is current
    ("{} non corrigée", True), ("{} pas encore corrigée", True), ("{} non résolue", True),
    ("{} not resolved", True), ("{} not yet resolved", True), ("{} partiellement corrigée", True),
    # « ancienne » after the noun is long-standing, not former
    ("{} ancienne", True),
    # a past cue that governs another word does not reach the notion
    ("Previous admission for falls now {}", True), ("ATCD de chute à domicile {} ce jour", True),
    # still over
    ("{} corrigée", None), ("{} resolved", None), ("ATCD de {}", None), ("Previous {}", None),
    ("Ancienne {}", None), ("History of {}", None), ("ATCD d'une {}", None),
])
def test_an_episode_not_written_as_over_is_the_state_on_the_day(name: str, phrase: str, template: str,
                                                                expected: bool | None) -> None:
    text = template.format(phrase)
    assert facts.concept_polarity(TABLES.concept(name), Concept(text=text), current=True)[0] is expected, text


@pytest.mark.parametrize("text", ["Son état : enceinte de 12 SA",
                                  "Antécédents familiaux :\nAntécédents personnels : grossesse en cours",
                                  "Previous miscarriage now pregnant",
                                  "ATCD de fausse couche spontanée enceinte de 8 SA"])
def test_a_current_pregnancy_in_these_wordings_stays_critical_on_valproate(text: str) -> None:
    got = findings(_valproate(condition("g", text, onset="2025-11-01")), AS_OF, "PR004")
    assert got and got[0]["severity"] == "critical", (text, got)


@pytest.mark.parametrize("text", ["Jeune fille allergique à la pénicilline", "Son allergie : pénicilline",
                                  "Antécédents familiaux : asthme, allergies : pénicilline"])
def test_the_patients_own_allergy_in_these_wordings_is_flagged(text: str) -> None:
    allergy = {"resourceType": "AllergyIntolerance", "id": "al", "patient": {"reference": "Patient/pit"},
               "code": {"text": text}}
    data = bundle(med("amox", "Amoxicilline 1 g comprimé", "2026-01-10", freq=2, days=7), allergy)
    assert findings(data, AS_OF, "PR001"), text


@pytest.mark.parametrize("name, phrase", _literal_phrases())
@pytest.mark.parametrize("template", ["Prévention de la récidive de {}", "Risque de récidive de {}",
                                      "Prévention d'une rechute de {}", "Prevention of recurrence of {}",
                                      "Risk of recurrent {}"])
def test_a_recurrence_to_prevent_is_a_history_of_the_notion(name: str, phrase: str, template: str) -> None:
    """Preventing a recurrence, or its risk, says the notion happened (« prévention de la récidive
    d'ulcère »): a history, unlike the prevention or the risk of a first episode."""
    text = template.format(phrase)
    matcher = TABLES.concept(name)
    assert facts.concept_polarity(matcher, Concept(text=text))[0] is True, text
    if matcher.episodic:  # over by now: not the state on the day
        assert facts.concept_polarity(matcher, Concept(text=text), current=True)[0] is None, text
    assert facts.concept_polarity(matcher, Concept(text=template.replace("la récidive de ", "").replace(
        "récidive de ", "").replace("une rechute de ", "").replace("recurrence of ", "").replace("recurrent ", "")
        .format(phrase)))[0] is None, text  # a first episode's prevention or risk stays none


def test_a_recurrence_of_something_else_leaves_a_current_pregnancy_current() -> None:
    pregnancy = TABLES.concept("pregnancy")
    for text in ("Récidive de migraine enceinte de 8 SA", "Relapse of migraine now pregnant"):
        assert facts.concept_polarity(pregnancy, Concept(text=text), current=True)[0] is True, text


@pytest.mark.parametrize("text", ["Grossesse prolongée terme passé de 3 jours", "Enceinte terme passé",
                                  "Grossesse évolutive passée inaperçue jusqu'à 20 SA"])
def test_a_pregnancy_past_its_term_or_unnoticed_is_current(text: str) -> None:
    assert facts.concept_polarity(TABLES.concept("pregnancy"), Concept(text=text), current=True)[0] is True, text
