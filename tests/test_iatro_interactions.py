"""IX001 on hand-built records: levels, multi-level conditions, periods, statuses, class paths."""

from __future__ import annotations

from datetime import date

import pytest
from tests.test_iatro_support import AS_OF, condition, dose, line, random_unlisted_pairs, record, run

from checker.model import Coding, Concept, Condition, Dosage, MedicationOrder, Observation, Quantity
from checker.referentials import default_referentials


@pytest.mark.parametrize(
    ("a", "b", "level", "severity"),
    [
        ("simvastatine", "clarithromycine", "CI", "critical"),
        ("warfarine", "ibuprofene", "AD", "warning"),
        ("sildenafil", "dinitrate d isosorbide", "CI", "critical"),
        ("sildenafil", "isosorbide dinitrate", "CI", "critical"),
        ("colchicine", "clarithromycine", "CI", "critical"),
        ("citalopram", "hydroxyzine", "CI", "critical"),
        ("spironolactone", "potassium", "AD", "warning"),
        ("tramadol", "sertraline", "APEC", "info"),
    ],
)
def test_thesaurus_levels(a: str, b: str, level: str, severity: str) -> None:
    found = run("IX001", record(line("a", a), line("b", b)))
    assert [(f.level, f.severity.value) for f in found] == [(level, severity)]
    assert found[0].implicated == ("MedicationRequest/a", "MedicationRequest/b")
    assert found[0].source.edition == "2023-09"


@pytest.mark.parametrize(("a", "b"), [("clopidogrel", "omeprazole"), ("digoxine", "ciclosporine"),
                                      ("paracetamol", "amoxicilline")])
def test_pairs_absent_from_the_2023_edition_are_not_invented(a: str, b: str) -> None:
    assert run("IX001", record(line("a", a), line("b", b))) == []


def test_one_finding_per_pair_with_every_class_path() -> None:
    found = run("IX001", record(line("a", "simvastatine"), line("b", "clarithromycine")))
    assert len(found) == 1
    vias = [e["via"] for e in found[0].evidence["entries"]]
    assert [["clarithromycine", "inhibiteurs puissants du cyp3a4"], ["simvastatine"]] in vias
    assert any("substrats à risque du cyp3a4" in v[1] for v in vias)  # the APEC class entry is listed too


def test_clopidogrel_aspirin_unsettled_without_indication_keeps_highest_level() -> None:
    f = run("IX001", record(line("a", "clopidogrel"), line("b", "acide acetylsalicylique")))[0]
    assert (f.level, f.evidence["settled"], f.evidence["missing"]) == ("AD", False, ["acs-indication"])
    assert f.evidence["levels_in_entry"] == ["AD", "PE"]
    assert "syndrome coronarien aigu" in f.detail


def test_clopidogrel_aspirin_in_acute_coronary_syndrome_is_precaution() -> None:
    f = run("IX001", record(line("a", "clopidogrel"), line("b", "acide acetylsalicylique"),
                            conditions=(condition("I21.4"),)))[0]
    assert (f.level, f.severity.value, f.evidence["settled"]) == ("PE", "info", True)


def test_aspirin_dose_settles_the_anticoagulant_entry() -> None:
    low = line("b", "acide acetylsalicylique", dosages=(dose(75, "mg", 1),))
    high = line("b", "acide acetylsalicylique", dosages=(dose(1, "g", 3),))
    f = run("IX001", record(line("a", "warfarine"), high))[0]
    assert (f.level, f.evidence["settled"]) == ("CI", True)
    f = run("IX001", record(line("a", "warfarine"), low))[0]
    # antiplatelet dose: AD only with an ulcer history, which is not recorded → AD kept, ulcer named
    assert (f.level, f.evidence["missing"]) == ("AD", ["ulcer"])
    f = run("IX001", record(line("a", "warfarine"), low, conditions=(condition("K25.4"),)))[0]
    assert (f.level, f.evidence["settled"]) == ("AD", True)
    text_only = line("b", "acide acetylsalicylique")
    f = run("IX001", record(line("a", "warfarine"), text_only))[0]
    assert (f.level, f.evidence["missing"]) == ("CI", ["aspirin-dose"])


def test_aspirin_strength_times_count_of_tablets() -> None:
    tablets = line("b", "acide acetylsalicylique", dosages=(dose(1, "comprimé", 1),), strength=Quantity(100, "mg"))
    f = run("IX001", record(line("a", "ibuprofene"), tablets))[0]
    assert (f.level, f.evidence["settled"]) == ("APEC", True)


def test_route_settles_amiodarone_diltiazem() -> None:
    iv = line("b", "diltiazem", route="intraveineuse")
    oral = line("b", "diltiazem", route="orale")
    assert run("IX001", record(line("a", "amiodarone"), iv))[0].level == "AD"
    assert run("IX001", record(line("a", "amiodarone"), oral))[0].level == "PE"
    f = run("IX001", record(line("a", "amiodarone"), line("b", "diltiazem")))[0]
    assert (f.level, f.evidence["missing"]) == ("AD", ["route"])


def test_named_substance_clause_of_a_class_entry() -> None:
    # torsadogenic + torsadogenic: CI only for the substances the entry names (citalopram …)
    assert run("IX001", record(line("a", "sotalol"), line("b", "hydroxyzine")))[0].level == "CI"
    f = run("IX001", record(line("a", "sotalol"), line("b", "methadone")))[0]
    assert f.level == "AD"


def test_non_overlapping_periods_do_not_interact() -> None:
    a = line("a", "simvastatine", authored=date(2025, 11, 1), supply_days=30)
    b = line("b", "clarithromycine", authored=date(2026, 1, 10), supply_days=7)
    assert run("IX001", record(a, b)) == []
    a2 = line("a", "simvastatine", authored=date(2025, 12, 15), supply_days=30)
    assert len(run("IX001", record(a2, b))) == 1


@pytest.mark.parametrize("status", ["cancelled", "entered-in-error", "revoked"])
def test_lines_that_do_not_count(status: str) -> None:
    assert run("IX001", record(line("a", "simvastatine"), line("b", "clarithromycine", status=status))) == []


@pytest.mark.parametrize("status", ["stopped", "completed", "ended"])
def test_ended_lines_count_on_the_days_they_were_taken(status: str) -> None:
    """Written the same day as the simvastatin, an ended clarithromycin line was taken with it; a 7-day
    course ended before the simvastatin began was not."""
    assert len(run("IX001", record(line("a", "simvastatine"), line("b", "clarithromycine", status=status)))) == 1
    before = line("b", "clarithromycine", status=status, authored=date(2025, 12, 1), supply_days=7)
    assert run("IX001", record(line("a", "simvastatine"), before)) == []


def test_low_confidence_lines_are_left_out() -> None:
    b = line("b", "clarithromycine")
    b.identity = type(b.identity)(substances=b.identity.substances, method="text-fuzzy", confidence=0.5)
    assert run("IX001", record(line("a", "simvastatine"), b)) == []


def test_combination_product_pairs_each_substance() -> None:
    f = run("IX001", record(line("a", "tramadol", "paracetamol", label="Ixprim"), line("b", "sertraline")))
    assert len(f) == 1 and f[0].evidence["substances"] == ["sertraline", "tramadol"]


def test_english_messages() -> None:
    f = run("IX001", record(line("a", "simvastatine"), line("b", "clarithromycine")), lang="en")[0]
    assert f.summary.startswith("Contraindicated") and "What to do" in f.detail


def test_ketorolac_joins_nsaids_by_atc_only_when_unknown_to_the_thesaurus() -> None:
    f = run("IX001", record(line("a", "warfarine"), line("b", "ketorolac", atc=("M01AB15",))))
    assert [x.level for x in f] == ["AD"]
    assert run("IX001", record(line("a", "warfarine"), line("b", "ketorolac", atc=("S01BC05",)))) == []


def test_zero_false_interactions_on_200_unlisted_random_pairs() -> None:
    th = default_referentials().get("ansm-thesaurus")
    pairs = random_unlisted_pairs(th, 200)
    assert len(set(pairs)) == 200
    for a, b in pairs:
        assert run("IX001", record(line("a", a), line("b", b))) == [], (a, b)
    # control: the same machinery does find listed pairs
    listed = [(e.a, e.b) for e in th.entries if e.a in th.alias_index and e.b in th.alias_index][:20]
    assert listed and all(run("IX001", record(line("a", a), line("b", b))) for a, b in listed)


def test_as_of_closes_open_ended_lines() -> None:
    a = line("a", "simvastatine", authored=date(2026, 1, 1))
    b = line("b", "clarithromycine", authored=date(2026, 2, 1))
    assert run("IX001", record(a, b), as_of=AS_OF) == []  # b starts after "now"; a runs only up to now
    assert len(run("IX001", record(a, b), as_of=date(2026, 2, 10))) == 1


def test_cli_interactions_lookup() -> None:
    from click.testing import CliRunner

    from cli import main

    out = CliRunner().invoke(main, ["interactions", "simvastatine", "clarithromycine"])
    assert out.exit_code == 0 and "CI" in out.output and "INHIBITEURS PUISSANTS DU CYP3A4" in out.output
    out = CliRunner().invoke(main, ["interactions", "digoxine", "ciclosporine"])
    assert out.exit_code == 1 and "no entry" in out.output


def test_thesaurus_loader_reports_the_file(tmp_path) -> None:
    import gzip
    import json

    from checker.iatrogenic.thesaurus import load

    bad = tmp_path / "t.json.gz"
    bad.write_bytes(gzip.compress(json.dumps({"source": {}, "entities": {}, "entries": [
        {"a": "x", "b": "y", "levels": [{"level": "ZZ", "condition": {}}], "line": 7, "interactant": "Y",
         "themes": [], "others_only": False}]}).encode()))
    with pytest.raises(ValueError, match=r"t\.json\.gz: entry 0 \(PDF line 7\): unknown level 'ZZ'"):
        load(bad)
    bad.write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="unreadable"):
        load(bad)


def test_local_routes_do_not_interact_except_listed_substances() -> None:
    assert run("IX001", record(line("a", "warfarine"), line("b", "diclofenac", route="cutanée"))) == []
    assert len(run("IX001", record(line("a", "warfarine"), line("b", "diclofenac", route="orale")))) == 1
    assert len(run("IX001", record(line("a", "warfarine"), line("b", "miconazole", route="cutanée")))) == 1
    eye_bb = line("b", "timolol", atc=("S01ED01",), route="ophtalmique")
    assert len(run("IX001", record(line("a", "verapamil"), eye_bb))) == 1


@pytest.mark.parametrize(("a", "b", "level"), [
    ("fluindione", "enoxaparine", "PE"), ("apixaban", "enoxaparine", "CI"),
    ("zolpidem", "hydroxyzine", "APEC"), ("oxybate de sodium", "morphine", "CI"), ("oxybate de sodium", "zolpidem", "AD"),
    ("simvastatine", "gemfibrozil", "CI"), ("atorvastatine", "fenofibrate", "AD"),
    ("ramipril", "sacubitril", "CI"), ("ramipril", "sitagliptine", "APEC"), ("ramipril", "everolimus", "AD"),
    ("gentamicine", "amikacine", "CI"), ("amiodarone", "sotalol", "CI"),
])
def test_hand_encoded_multi_level_entries(a: str, b: str, level: str) -> None:
    found = run("IX001", record(line("a", a), line("b", b)))
    assert [(f.level, f.evidence["settled"]) for f in found] == [(level, True)]


def test_methotrexate_weekly_dose_decides_nsaid_and_aspirin_levels() -> None:
    low = line("b", "methotrexate", dosages=(dose(10, "mg", 1, period_unit="wk"),))
    high = line("b", "methotrexate", dosages=(dose(25, "mg", 1, period_unit="wk"),))
    assert run("IX001", record(line("a", "ibuprofene"), low))[0].level == "PE"
    assert run("IX001", record(line("a", "ibuprofene"), high))[0].level == "AD"
    asa = line("a", "acide acetylsalicylique", dosages=(dose(1, "g", 3),))
    assert run("IX001", record(asa, high))[0].level == "CI"
    assert run("IX001", record(asa, low))[0].level == "PE"
    f = run("IX001", record(line("a", "ibuprofene"), line("b", "methotrexate")))[0]
    assert (f.level, f.evidence["missing"]) == ("AD", ["weekly-dose"])


@pytest.mark.parametrize(("label", "route"), [
    ("Carbonate de calcium 500 mg comprimé", "oral"),
    ("Oméprazole 20 mg gélule gastrorésistante", "oral"),
    ("Paracetamol 500 mg tablet", "oral"),
    ("Gluconate de calcium 10 % solution injectable", None),
    ("Calcium", None),
])
def test_route_inferred_from_the_dose_form(label: str, route: str | None) -> None:
    from checker.iatrogenic.conditions import route_of

    assert route_of(line("a", "calcium", label=label)) == route


def test_oral_calcium_with_digoxin_is_not_the_iv_contraindication() -> None:
    oral = run("IX001", record(line("a", "calcium", label="Carbonate de calcium 500 mg comprimé"), line("b", "digoxine")))
    assert [f.evidence["level"] for f in oral] == ["PE"]


def test_allergy_tokens_match_whole_words_only() -> None:
    from checker.rules.patient_risks import _word_hit

    assert not _word_hit("ains", "allergie a certains pollens et aux grains de sesame")
    assert _word_hit("ains", "allergie aux ains")
    assert _word_hit("penicill", "allergie a la penicilline")
    assert not _word_hit("penicill", "antipenicillinase")


# --- torsadogenic exceptions (ANSM thesaurus 2023, l. 18240-18256, 18318-18327, 18424-18438) -------

@pytest.mark.parametrize(("a", "b", "level"), [
    # spiramycin's CI bullet (l. 18430) names its routes, not a CI with every torsadogenic drug
    ("spiramycine", "methadone", "AD"), ("spiramycine", "haloperidol", "AD"),
    ("spiramycine", "hydroxychloroquine", "AD"), ("spiramycine", "amiodarone", "CI"),
    # crizotinib is one of the heading's exceptions (l. 18253) and its entry is AD (l. 18319, l. 5117)
    ("crizotinib", "amiodarone", "AD"), ("crizotinib", "spiramycine", "AD"), ("crizotinib", "citalopram", "CI"),
])
def test_torsadogenic_exceptions_follow_the_heading(a: str, b: str, level: str) -> None:
    found = run("IX001", record(line("a", a), line("b", b)))
    assert [f.level for f in found] == [level]


# --- aspirin entries limited to high doses (l. 143, 193, 203, 244 and their mirrors) ----------------

@pytest.mark.parametrize("partner", ["losartan", "ramipril", "furosemide", "deferasirox"])
def test_antiplatelet_aspirin_is_outside_the_high_dose_entries(partner: str) -> None:
    low = line("a", "acide acetylsalicylique", dosages=(dose(75, "mg", 1),))
    assert run("IX001", record(low, line("b", partner))) == []


@pytest.mark.parametrize(("partner", "level"), [("losartan", "PE"), ("ramipril", "PE"), ("furosemide", "PE"),
                                                ("deferasirox", "APEC")])
def test_analgesic_or_anti_inflammatory_aspirin_keeps_the_entry(partner: str, level: str) -> None:
    for asa in (line("a", "acide acetylsalicylique", dosages=(dose(1, "g", 3),)),
                line("a", "acide acetylsalicylique", dosages=(dose(500, "mg", 3),))):
        f = run("IX001", record(asa, line("b", partner)))
        assert [(x.level, x.evidence["settled"]) for x in f] == [(level, True)]


def test_unknown_aspirin_dose_keeps_the_entry_and_names_the_dose() -> None:
    f = run("IX001", record(line("a", "acide acetylsalicylique"), line("b", "losartan")))
    assert [(x.level, x.evidence["settled"], x.evidence["missing"]) for x in f] == [("PE", False, ["aspirin-dose"])]
    assert "posologie structurée d'acide acétylsalicylique" in f[0].detail
    f = run("IX001", record(line("a", "acide acetylsalicylique"), line("b", "losartan")), lang="en")
    assert "structured aspirin dosage" in f[0].detail


# --- an unrecorded condition is unknown, not absent -----------------------------------------------

def _refuted(code: str) -> Condition:
    return Condition(ref=f"Condition/refuted-{code}", code=Concept((Coding("http://hl7.org/fhir/sid/icd-10", code),)),
                     verification_status="refuted")


def _egfr(value: float) -> Observation:
    return Observation(ref="Observation/egfr", code=Concept((Coding("http://loinc.org", "62238-1"),)), value=value,
                       unit="mL/min", effective=date(2026, 1, 5))


def test_a_problem_list_silent_on_the_liver_does_not_settle_hepatic_function() -> None:
    # l. 2113: solifenacin + strong CYP3A4 inhibitor CI with moderate to severe hepatic impairment, else PE
    pair = (line("a", "solifenacine"), line("b", "clarithromycine"))
    f = run("IX001", record(*pair, conditions=(condition("I10"),), observations=(_egfr(95),)))[0]
    assert (f.level, f.evidence["settled"], f.evidence["missing"]) == ("CI", False, ["hepatic-function"])
    f = run("IX001", record(*pair, conditions=(condition("I10"), _refuted("K72.1")), observations=(_egfr(95),)))[0]
    assert (f.level, f.evidence["settled"]) == ("PE", True)
    f = run("IX001", record(*pair, conditions=(condition("K74.6"),), observations=(_egfr(95),)))[0]
    assert (f.level, f.evidence["settled"]) == ("CI", True)
    # a liver failure that has resolved is no present impairment: unknown again, not settled either way
    resolved = Condition(ref="Condition/old-liver", code=Concept((Coding("http://hl7.org/fhir/sid/icd-10", "K72.1"),)),
                         clinical_status="resolved")
    f = run("IX001", record(*pair, conditions=(resolved,), observations=(_egfr(95),)))[0]
    assert (f.level, f.evidence["settled"], f.evidence["missing"]) == ("CI", False, ["hepatic-function"])


def test_a_problem_list_silent_on_ulcers_does_not_settle_ulcer_history() -> None:
    # l. 152: antiplatelet aspirin + oral anticoagulant AD with an ulcer history, APEC otherwise
    low = line("b", "acide acetylsalicylique", dosages=(dose(75, "mg", 1),))
    f = run("IX001", record(line("a", "warfarine"), low, conditions=(condition("I48"),)))[0]
    assert (f.level, f.evidence["settled"], f.evidence["missing"]) == ("AD", False, ["ulcer"])
    f = run("IX001", record(line("a", "warfarine"), low, conditions=(condition("I48"), _refuted("K25.4"))))[0]
    assert (f.level, f.evidence["settled"]) == ("APEC", True)


# --- local routes however they are written (thesaurus p. 2, l. 39-45) -------------------------------

def _routed(key: str, text: str = "", system: str = "", code: str = "", label: str = "", atc: tuple[str, ...] = (),
            bdpm_route: str = "") -> MedicationOrder:
    codings = (Coding(system, code),) if code else ()
    return line("b", key, label=label, atc=atc, route=bdpm_route,
                dosages=(Dosage(text="1 application par jour", route=Concept(codings, text)),))


@pytest.mark.parametrize(("text", "system", "code"), [
    ("cutanée", "", ""), ("Voie cutanée", "", ""), ("VOIE CUTANEE", "", ""), ("Cutaneous use", "", ""),
    ("Topical route", "", ""), ("usage local", "", ""), ("application locale", "", ""), ("topique", "", ""),
    # EDQM Standard Terms 20003000 "Cutaneous use" (ANS ePrescription examples, "Voie cutanée")
    ("", "http://standardterms.edqm.eu", "20003000"),
    # SNOMED CT 6064005 "Topical route" (FHIR route-codes value set), 359540000 (HL7 R4 example 0329)
    ("", "http://snomed.info/sct", "6064005"), ("", "http://snomed.info/sct", "359540000"),
])
def test_skin_routes_in_any_wording_do_not_interact(text: str, system: str, code: str) -> None:
    assert run("IX001", record(line("a", "warfarine"), _routed("diclofenac", text, system, code))) == []


@pytest.mark.parametrize(("text", "system", "code"), [
    ("Voie sous-cutanée", "", ""), ("subcutaneous", "", ""), ("Voie transdermique", "", ""), ("Voie orale", "", ""),
    ("intradermique", "", ""), ("", "http://standardterms.edqm.eu", "20066000"),
    ("", "http://standardterms.edqm.eu", "20070000"), ("", "http://snomed.info/sct", "26643006"),
])
def test_systemic_routes_stay_systemic(text: str, system: str, code: str) -> None:
    found = run("IX001", record(line("a", "warfarine"), _routed("ketoprofene", text, system, code)))
    assert [f.level for f in found] == ["AD"]


@pytest.mark.parametrize("label", ["Kétoprofène 2,5 % gel", "Diclofenac Sodium 0.01 MG/MG Topical Gel [Voltaren]",
                                   "Ibuprofène 5 % crème", "Diclofénac 140 mg emplâtre médicamenteux",
                                   "Kétoprofène pommade"])
def test_nsaid_skin_forms_without_a_route_do_not_interact(label: str) -> None:
    nsaid = line("b", "ketoprofene", label=label)
    assert run("IX001", record(line("a", "warfarine"), nsaid)) == []


@pytest.mark.parametrize("label", ["Kétoprofène 100 mg gélule", "Kétoprofène 2,5 % gel buccal", "Kétoprofène"])
def test_nsaid_lines_without_a_skin_form_stay_systemic(label: str) -> None:
    found = run("IX001", record(line("a", "warfarine"), line("b", "ketoprofene", label=label)))
    assert [f.level for f in found] == ["AD"]


def test_other_gels_without_a_route_stay_systemic() -> None:
    # testosterone gels are transdermal (BDPM: ANDROGEL, FORTIGEL "transdermique"): systemic
    found = run("IX001", record(line("a", "warfarine"), line("b", "testosterone", label="Testostérone 50 mg gel")))
    assert [f.level for f in found] == ["PE"]
    transdermal = _routed("testosterone", "Topical route", label="Androgel 50 mg gel en sachet",
                          bdpm_route="transdermique")
    assert [f.level for f in run("IX001", record(line("a", "warfarine"), transdermal))] == ["PE"]


def test_identified_skin_product_with_a_worded_route() -> None:
    # BDPM route "cutanée" and a prescriber's "Voie cutanée" (VOLTARENE EMULGEL)
    gel = _routed("diclofenac", "Voie cutanée", label="VOLTARENE EMULGEL 1 %, gel", bdpm_route="cutanée")
    assert run("IX001", record(line("a", "warfarine"), gel)) == []


def test_eye_drops_keep_the_beta_blocker_exception_whatever_the_coding() -> None:
    for text, system, code in (("", "http://snomed.info/sct", "54485002"), ("Topical route", "", ""),
                               ("voie ophtalmique", "", ""), ("", "http://standardterms.edqm.eu", "20051000")):
        drops = _routed("timolol", text, system, code, label="Timolol 0,5 % collyre", atc=("S01ED01",))
        assert [f.level for f in run("IX001", record(line("a", "verapamil"), drops))] == ["AD"], (text, code)
    # a local route the exceptions do not name: ear drops of an NSAID-free product with warfarin are out
    ear = _routed("ketoprofene", "", "http://standardterms.edqm.eu", "20001000")
    assert run("IX001", record(line("a", "warfarine"), ear)) == []


def test_every_nsaid_skin_form_of_the_bdpm_is_cutaneous() -> None:
    """The ground for reading an NSAID gel, cream, ointment or plaster with no route as cutaneous."""
    from checker.drugs import drug_index
    from checker.iatrogenic.conditions import skin_form
    from checker.model import MedicationIdentity, SubstanceMatch
    from checker.rules.interactions import NSAIDS

    th = default_referentials().get("ansm-thesaurus")
    idx = drug_index()
    seen = []
    for spec in idx.specialties.values():
        atc = {c.key: idx.substances[c.key].atc if c.key in idx.substances else () for c in spec.components}
        if not atc or not all(NSAIDS in th.closure_with_atc(k, a) for k, a in atc.items()):
            continue
        ident = MedicationIdentity(substances=tuple(SubstanceMatch(key=k, name=k, atc=a) for k, a in atc.items()),
                                   method="test", confidence=1.0, form=spec.form)
        as_text = MedicationOrder(ref="MedicationRequest/x", status="active", intent="order",
                                  medication=Concept(text=spec.name), identity=ident)
        if skin_form(as_text):
            seen.append(spec.name)
            assert spec.routes == ("cutanée",), (spec.name, spec.routes)
    assert len(seen) >= 40


@pytest.mark.parametrize(("route", "expected"), [("orale", []), ("intraveineuse", ["APEC"])])
def test_gold_with_an_ace_inhibitor_only_for_intravenous_gold_salts(route: str, expected: list[str]) -> None:
    """The 2023 thesaurus limits OR + IEC to gold salts given IV (l. 14835): oral trace-dose gold
    (oligotherapy) is not concerned."""
    rec = record(line("gold", "or", route=route), line("ace", "ramipril", atc=("C09AA05",)))
    assert sorted(f.level for f in run("IX001", rec)) == expected
