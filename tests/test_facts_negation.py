"""The facts layer reads clinical wording: denied, refuted, resolved, hypothetical and family-history
facts are not the patient's present disease, in French and in English; unknown names the datum."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import pytest

from checker import facts
from checker.model import Concept, Condition, Patient, PatientRecord
from checker.referentials import default_referentials
from tests.test_facts_point_in_time import bundle, condition, findings, med

TABLES: facts.FactTables = default_referentials().get("clinical-facts")


@pytest.mark.parametrize("text, expected", [
    ("Pas d'antécédent d'ulcère gastrique", False),
    ("pas d'antecedent d'ulcere gastroduodenal", False),
    ("Absence d'ulcère gastrique à la fibroscopie", False),
    ("Sans ulcère gastrique connu", False),
    ("Ulcère gastrique : non", False),
    ("No history of gastric ulcer", False),
    ("Denies peptic ulcer", False),
    ("Peptic ulcer ruled out", False),
    ("Recherche d'ulcère gastrique négative", False),
    ("Ulcère gastrique écarté", False),
    ("Antécédents familiaux d'ulcère gastrique", None),
    ("Family history of peptic ulcer", None),
    ("Ulcère gastrique chez sa mère", None),
    ("Suspicion d'ulcère gastrique", None),
    ("Possible peptic ulcer", None),
    ("Ulcère gastrique en 2019", True),
    ("Pas de fièvre, ulcère gastrique", True),
    ("Gastric ulcer", True),
    ("Hypertension artérielle", None),
])
def test_ulcer_wording(text: str, expected: bool | None) -> None:
    ulcer = TABLES.concept("peptic-ulcer")
    assert facts.concept_polarity(ulcer, Concept(text=text))[0] is expected


@pytest.mark.parametrize("text, expected", [
    ("Pas de grossesse en cours", False),
    ("Pregnancy ruled out", False),
    ("Not pregnant", False),
    ("Test de grossesse négatif", False),
    ("Grossesse en cours", True),
    ("Enceinte de 12 semaines", True),
    ("Pregnant", True),
    ("Suspicion de grossesse", None),
])
def test_pregnancy_wording(text: str, expected: bool | None) -> None:
    assert facts.concept_polarity(TABLES.concept("pregnancy"), Concept(text=text))[0] is expected


@pytest.mark.parametrize("text, expected", [
    # « ne … pas / plus / jamais » around a verb, and English contractions
    ("N'est pas enceinte", False),
    ("Elle n'est pas enceinte", False),
    ("La patiente n'est plus enceinte", False),
    ("N'a jamais été enceinte", False),
    ("Jamais de grossesse", False),
    ("She is not pregnant", False),
    ("She isn't pregnant", False),
    ("Never pregnant", False),
    # a wish, a plan or an unlikely pregnancy is no pregnancy yet, nor a denial
    ("Désir de grossesse", None),
    ("Projet de grossesse", None),
    ("Souhait de grossesse en 2026", None),
    ("Wishes for a pregnancy", None),
    ("Planned pregnancy at 12 weeks", True),  # a pregnancy that was planned is a pregnancy
    ("Ne fume plus depuis qu'elle est enceinte", True),  # the verb is denied, not what comes later
    ("N'a pas arrêté le tabac pendant la grossesse", True),
    ("Grossesse improbable", None),
    ("Grossesse peu probable", None),
    ("Pregnancy unlikely", None),
    ("Grossesse à confirmer", None),
    # still affirmed
    ("Enceinte, ne fume pas", True),
    ("Grossesse de 8 semaines, pas de saignement", True),
])
def test_pregnancy_wording_with_verbs_wishes_and_doubts(text: str, expected: bool | None) -> None:
    assert facts.concept_polarity(TABLES.concept("pregnancy"), Concept(text=text))[0] is expected


@pytest.mark.parametrize("text, expected, suspected", [
    ("N'a pas eu d'ulcère gastrique", False, False),
    ("N'a pas présenté d'ulcère gastrique", False, False),
    ("Hasn't had a peptic ulcer", False, False),
    ("Doesn't have a peptic ulcer", False, False),
    ("Patient didn't report any peptic ulcer", False, False),
    ("N'est actuellement pas enceinte", False, False),
    ("Planning a pregnancy", None, True),
    ("Souhaite une grossesse", None, True),
    ("Wishes to become pregnant", None, True),
    ("Grossesse prévue en 2027", None, True),
    ("Grossesse désirée, 12 SA", True, True),
    ("Grossesse : à confirmer", None, True),
    ("Grossesse (à confirmer)", None, True),
    ("Grossesse : peu probable", None, True),
    ("Pregnancy (unconfirmed)", None, True),
    ("Pregnancy? to be confirmed", None, True),
    ("Pregnancy to be ruled out", None, True),
    ("Grossesse à éliminer", None, True),
    ("Test de grossesse à faire", None, True),
    ("Suspicion de grossesse écartée", None, False),
    ("Contraception efficace, arrêt du valproate si grossesse", None, None),
])
def test_wording_read_by_the_second_review(text: str, expected: bool | None, suspected: bool | None) -> None:
    """``expected``: what the text states; ``suspected``: what it states when a suspicion counts
    (``None``: not even a suspicion, e.g. an instruction for a case that may come)."""
    concept = TABLES.concept("peptic-ulcer" if "ulc" in text.lower() else "pregnancy")
    assert facts.concept_polarity(concept, Concept(text=text))[0] is expected
    if suspected is not None and expected is None:
        assert facts.concept_polarity(concept, Concept(text=text), suspected=True)[0] is suspected
    if suspected is None:
        assert facts.concept_polarity(concept, Concept(text=text), suspected=True)[0] is None


@pytest.mark.parametrize("text, expected", [
    ("N'a pas d'ulcère gastrique", False),
    ("Ne présente pas d'ulcère gastrique", False),
    ("N'a jamais eu d'ulcère gastrique", False),
    ("Has never had a peptic ulcer", False),
    ("Ulcère gastrique improbable", None),
    ("Ulcère gastrique, ne fume plus", True),
    ("Ne prend plus d'AINS depuis son ulcère gastrique", True),
    ("Patient doesn't tolerate NSAIDs due to peptic ulcer", True),
    ("Never took NSAIDs again after his peptic ulcer", True),
])
def test_ulcer_wording_with_verbs_and_doubts(text: str, expected: bool | None) -> None:
    assert facts.concept_polarity(TABLES.concept("peptic-ulcer"), Concept(text=text))[0] is expected


AS_OF = "2026-01-15"


def _aspirin_warfarin(*conditions: dict[str, Any], day: str = "2026-01-05") -> dict[str, Any]:
    return bundle(*conditions,
                  med("asp", "Acide acétylsalicylique 75 mg sachet", day, dose=75, unit="mg"),
                  med("war", "Warfarine 5 mg comprimé", day))


def test_denied_ulcer_history_does_not_settle_aspirin_and_vka_at_the_ulcer_level() -> None:
    got = findings(_aspirin_warfarin(condition("c", "Pas d'antécédent d'ulcère gastrique")), AS_OF, "IX001")
    assert len(got) == 1
    assert got[0]["level"] == "APEC" and got[0]["evidence"]["settled"] is True


def test_family_history_of_ulcer_leaves_the_ulcer_question_open() -> None:
    got = findings(_aspirin_warfarin(condition("c", "Antécédents familiaux d'ulcère gastrique")), AS_OF, "IX001")
    assert len(got) == 1
    assert got[0]["evidence"]["settled"] is False and "ulcer" in got[0]["evidence"]["missing"]


def test_an_ulcer_stated_after_a_past_combination_does_not_settle_it() -> None:
    # both lines ran 2025-11-01 .. 2025-11-30; the ulcer was first stated in January
    later = condition("c", "Ulcère gastrique", onset="2026-01-10", recorded="2026-01-10")
    got = findings(_aspirin_warfarin(later, day="2025-11-01"), AS_OF, "IX001")
    assert len(got) == 1 and got[0]["evidence"]["settled"] is False


def test_an_ulcer_stated_while_the_combination_is_still_taken_settles_it_today() -> None:
    later = condition("c", "Ulcère gastrique", onset="2026-01-10", recorded="2026-01-10")
    got = findings(_aspirin_warfarin(later), AS_OF, "IX001")
    assert len(got) == 1 and got[0]["level"] == "AD" and got[0]["evidence"]["settled"] is True


def test_a_healed_ulcer_is_still_a_history_of_ulcer() -> None:
    healed = condition("c", "Ulcère gastrique", onset="2019-01-01", abatement="2019-03-01", clinical="resolved")
    got = findings(_aspirin_warfarin(healed), AS_OF, "IX001")
    assert len(got) == 1 and got[0]["level"] == "AD" and got[0]["evidence"]["settled"] is True


def _valproate(*conditions: dict[str, Any]) -> dict[str, Any]:
    return bundle(*conditions, med("v", "Valproate de sodium 500 mg comprimé gastro-résistant", "2026-01-05"),
                  sex="female", birth="1995-01-01")


@pytest.mark.parametrize("text", ["Pas de grossesse en cours", "Pregnancy ruled out", "Grossesse chez sa soeur"])
def test_denied_or_someone_elses_pregnancy_is_no_pregnancy_on_valproate(text: str) -> None:
    assert not findings(_valproate(condition("g", text)), AS_OF, "PR004")


@pytest.mark.parametrize("text", ["Suspicion de grossesse", "Grossesse peu probable", "Possible pregnancy",
                                  "Grossesse à confirmer", "Désir de grossesse"])
def test_a_pregnancy_raised_but_not_settled_names_the_missing_status(text: str) -> None:
    """Not a pregnancy (no critical finding), not an all-clear either: the record asks the question."""
    got = findings(_valproate(condition("g", text)), AS_OF, "PR004")
    assert [(f["severity"], f["evidence"]["pregnancy"], f["evidence"]["missing"]) for f in got] == \
        [("info", "evoked", "pregnancy-status")]


@pytest.mark.parametrize("text", ["Grossesse : à confirmer", "Grossesse (à confirmer)", "Grossesse : peu probable",
                                  "Pregnancy (unconfirmed)", "Pregnancy? to be confirmed", "Pregnancy to be ruled out",
                                  "Grossesse à éliminer", "Test de grossesse à faire"])
def test_a_doubted_pregnancy_in_problem_list_wording_is_a_note_not_critical(text: str) -> None:
    got = findings(_valproate(condition("g", text)), AS_OF, "PR004")
    assert [(f["severity"], f["evidence"]["pregnancy"]) for f in got] == [("info", "evoked")]


@pytest.mark.parametrize("text", ["Épilepsie : contraception obligatoire, arrêt du valproate si grossesse",
                                  "Epilepsy: stop valproate if pregnant"])
def test_an_instruction_for_a_pregnancy_to_come_raises_none(text: str) -> None:
    assert not findings(_valproate(condition("g", text)), AS_OF, "PR004")


def test_a_possible_pregnancy_status_observation_is_a_note() -> None:
    status = {"resourceType": "Observation", "id": "ps", "status": "final",
              "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]}, "effectiveDateTime": "2026-01-04",
              "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "102874004",
                                                   "display": "Possible pregnancy"}]}}
    got = findings(_valproate(status), AS_OF, "PR004")
    assert [(f["severity"], f["evidence"]["pregnancy"], f["evidence"]["evoked_by"]) for f in got] == \
        [("info", "evoked", "Observation/ps")]


def test_a_raised_pregnancy_settled_by_a_status_observation_is_no_note() -> None:
    status = {"resourceType": "Observation", "id": "ps", "status": "final",
              "code": {"coding": [{"system": "http://loinc.org", "code": "82810-3"}]}, "effectiveDateTime": "2026-01-04",
              "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "60001007"}]}}
    assert not findings(_valproate(condition("g", "Suspicion de grossesse"), status), AS_OF, "PR004")


def test_a_refuted_pregnancy_is_no_pregnancy() -> None:
    assert not findings(_valproate(condition("g", "Grossesse", verification="refuted")), AS_OF, "PR004")


def test_a_current_pregnancy_on_valproate_is_critical() -> None:
    got = findings(_valproate(condition("g", "Grossesse en cours", onset="2025-11-01")), AS_OF, "PR004")
    assert got and got[0]["severity"] == "critical"


def test_unknown_names_the_missing_datum() -> None:
    record = PatientRecord(patient=Patient("Patient/x", sex="female"))
    fact = facts.pregnancy_on(record, date(2026, 1, 5), TABLES)
    assert fact.value is None and fact.missing == "pregnancy-status"
    ulcer = facts.stated(record, date(2026, 1, 5), TABLES.concept("peptic-ulcer"), history=True, missing="ulcer")
    assert ulcer.value is None and ulcer.missing == "ulcer"


def test_conditions_on_a_day_follow_onset_abatement_and_status() -> None:
    c = [Condition("Condition/a", Concept(text="x"), "resolved", onset=date(2025, 1, 1), abatement=date(2025, 6, 1)),
         Condition("Condition/b", Concept(text="y"), "active", onset=date(2025, 7, 1)),
         Condition("Condition/c", Concept(text="z"), "active", verification_status="entered-in-error"),
         Condition("Condition/d", Concept(text="w"), "resolved")]
    record = PatientRecord(patient=None, conditions=c)
    assert [x.ref for x in facts.conditions_on(record, date(2025, 3, 1))] == ["Condition/a"]
    assert [x.ref for x in facts.conditions_on(record, date(2025, 8, 1))] == ["Condition/b"]
    assert [x.ref for x in facts.history_on(record, date(2025, 8, 1))] == ["Condition/a", "Condition/b", "Condition/d"]


def test_one_negation_and_one_concept_matcher() -> None:
    from checker.iatrogenic import conditions
    from checker.protocols import engine, negation

    assert negation.affirmed is facts.affirmed
    assert engine.concept_matches is facts.concept_matches
    assert not hasattr(conditions, "concept_matches")
    assert re  # the module reads patterns as regular expressions


def test_weight_is_read_within_its_window_and_unit() -> None:
    from checker.model import Coding, Observation

    def w(value: float, unit: str, day: date) -> Observation:
        return Observation("Observation/w", Concept((Coding("http://loinc.org", "29463-7"),)), value=value, unit=unit,
                           effective=day)
    rec = PatientRecord(patient=None, observations=[w(70, "kg", date(2025, 12, 1))])
    assert facts.weight_on(rec, date(2026, 1, 5), TABLES).what == "70 kg"
    assert facts.weight_on(rec, date(2027, 1, 5), TABLES).missing == "weight"  # older than the window
    assert facts.weight_on(rec, date(2025, 11, 5), TABLES).missing == "weight"  # measured after the day
    rec = PatientRecord(patient=None, observations=[w(70000, "g", date(2025, 12, 1))])
    assert facts.weight_on(rec, date(2026, 1, 5), TABLES).what == "70 kg"


def _literal_phrases() -> list[Any]:
    """Every text pattern of every concept set of the shipped tables that is a plain phrase."""
    out = []
    for name, cs in sorted(TABLES.concepts.items()):
        for p in cs.patterns:
            phrase = p.pattern.replace("\\b", "")
            if re.fullmatch(r"[a-z ]+", phrase) and len(phrase) > 3:
                out.append(pytest.param(name, phrase, id=f"{name}:{phrase}"))
    return out


@pytest.mark.parametrize("name, phrase", _literal_phrases())
@pytest.mark.parametrize("template, expected", [
    ("{}", True), ("Antécédent de {}", True), ("{} en 2019", True),
    ("Pas de {}", False), ("Pas d'antécédent de {}", False), ("Absence de {}", False), ("Sans {}", False),
    ("No {}", False), ("Denies {}", False), ("{} ruled out", False), ("{} : non", False), ("{} écarté", False),
    ("Antécédents familiaux de {}", None), ("Family history of {}", None), ("{} chez sa mère", None),
    ("Suspicion de {}", None), ("Possible {}", None),
    # verbs, clause words, doubts, instructions (the readings added with past-line judgement)
    ("N'a pas eu de {}", False), ("N'a jamais présenté de {}", False), ("Hasn't had {}", False),
    ("Pas d'AINS depuis {}", True), ("Traitement arrêté en raison de {}", True), ("Stopped because of {}", True),
    ("{} : à confirmer", None), ("{} (unconfirmed)", None), ("{} peu probable", None), ("{} to be ruled out", None),
    ("Arrêt du traitement si {}", None), ("Stop if {}", None),
])
def test_every_phrase_of_the_tables_reads_the_same_way(name: str, phrase: str, template: str,
                                                        expected: bool | None) -> None:
    """Over the whole table: each wording of each notion, affirmed, denied, hypothetical or a relative's."""
    text = template.format(phrase)
    assert facts.concept_polarity(TABLES.concept(name), Concept(text=text))[0] is expected, text


@pytest.mark.parametrize("text, level, settled", [
    ("Pas d'insuffisance hépatique", "PE", True),   # denied: the CI level is ruled out
    ("Cirrhose hépatique", "CI", True),
    ("Antécédents familiaux de cirrhose", "CI", False),  # a relative's: still unknown, highest level kept
    ("Suspicion de cirrhose", "CI", False),
])
def test_hepatic_function_of_a_multi_level_entry_is_settled_through_the_facts(text: str, level: str,
                                                                            settled: bool) -> None:
    """Solifenacin + clarithromycin (thesaurus l. 2113): CI with hepatic impairment, else PE."""
    from checker.model import Coding, Observation
    from tests.test_iatro_support import line, record, run

    egfr = Observation("Observation/e", Concept((Coding("http://loinc.org", "62238-1"),)), value=95, unit="mL/min",
                       effective=date(2025, 12, 20))
    cond = Condition("Condition/h", Concept(text=text), "active")
    f = run("IX001", record(line("a", "solifenacine"), line("b", "clarithromycine"), conditions=(cond,),
                            observations=(egfr,)))[0]
    assert (f.level, f.evidence["settled"]) == (level, settled)
