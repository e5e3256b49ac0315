"""Lines seen misread on real prescriptions (issue 15): each written as a prescriber writes it.

Every case states what a pharmacist expects: the substance read at rule confidence, under the key
the interaction thesaurus knows (one substance, one key whatever the source: BDPM, thesaurus,
INN, ATC, RxNorm), or a reading kept below the rules' threshold when part of the line is unread.
"""

from __future__ import annotations

import pytest

from checker.drugs import drug_index, identify, identify_text
from checker.model import RULE_CONFIDENCE, Coding, Concept, MedicationOrder
from checker.referentials import default_referentials

ATC = "http://www.whocc.no/atc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def thesaurus():  # type: ignore[no-untyped-def]
    return default_referentials().get("ansm-thesaurus")


def read(text: str) -> tuple[set[str], float]:
    ident = identify_text(text)
    assert ident is not None, f"{text!r} not identified"
    return set(ident.substance_keys), ident.confidence


def by_atc(code: str) -> tuple[set[str], float]:
    ident = identify(MedicationOrder(ref="MedicationRequest/t", status="active", intent="order",
                                     medication=Concept((Coding(ATC, code),), "")))
    return set(ident.substance_keys), ident.confidence


@pytest.mark.parametrize("text,key", [
    ("Néoral 100 mg capsule molle", "ciclosporine"),
    ("NEORAL 100 mg, capsule molle", "ciclosporine"),
    ("Avodart 0,5 mg caps", "dutasteride"),
    ("Toctino 30mg capsule", "alitretinoine"),
    ("Vyndaqel 20mg capsule", "tafamidis"),
    ("Navelbine 30 mg", "vinorelbine"),
    ("Valim 10 mg cp", "diazepam"),
    ("Zeclr 500 mg", "clarithromycine"),
])
def test_brands_written_the_usual_way_are_read_at_rule_confidence(text: str, key: str) -> None:
    keys, conf = read(text)
    assert keys == {key} and conf >= RULE_CONFIDENCE, (text, keys, conf)


def test_omacor_reads_omega_3_at_rule_confidence() -> None:
    keys, conf = read("Omacor 1000mg")
    assert len(keys) == 1 and "omega 3" in next(iter(keys)) and conf >= RULE_CONFIDENCE


@pytest.mark.parametrize("text,node", [
    ("Zyban LP 150 mg", "bupropion"),
    ("Pegasys 180 microgrammes", "peg interferon alfa 2a"),
    ("Botox 100 unités", "botulique toxine"),
    ("millepertuis", "millepertuis"),
    ("Mildac 300 mg", "millepertuis"),
])
def test_identified_substances_reach_their_thesaurus_entry(text: str, node: str) -> None:
    keys, conf = read(text)
    assert conf >= RULE_CONFIDENCE, (text, keys, conf)
    assert len(keys) == 1 and node in thesaurus().nodes_for(next(iter(keys))), (text, keys)


def test_every_botulinum_toxin_product_has_one_key() -> None:
    idx = drug_index()
    keys = {c.key for s in idx.specialties.values() for c in s.components if "botulinique" in c.name.lower()}
    assert len(keys) == 1 and "botulique toxine" in thesaurus().nodes_for(next(iter(keys)))


def test_salmon_calcitonin_products_reach_the_calcitonin_entry() -> None:
    """BDPM 2026-01 lists salmon calcitonin (CALCITONINE PHARMY II, marketed); the thesaurus's
    CALCITONINE (+ lithium, PE) must be reached from it."""
    idx = drug_index()
    keys = {c.key for s in idx.specialties.values() for c in s.components if "calcitonine" in c.name.lower()}
    assert keys and all("calcitonine" in thesaurus().nodes_for(k) for k in keys), keys
    (key,), conf = read("Calcitonine Pharmy II 100 UI/1 ml inj")
    assert conf >= RULE_CONFIDENCE
    (lithium,), _ = read("Teralithe 250 mg")
    assert "PE" in {lv.level for m in thesaurus().matches(key, lithium) for lv in m.entry.levels}


def test_nautamine_reaches_its_thesaurus_entry() -> None:
    """NAUTAMINE (BDPM 2026-01, marketed) holds DI(ACÉFYLLINE) DIPHÉNHYDRAMINE, a member of the
    thesaurus's sedative class: the brand line must reach that substance."""
    (key,), conf = read("Nautamine cp sécable")
    assert conf >= RULE_CONFIDENCE
    assert "di acefylline diphenhydramine" in thesaurus().nodes_for(key), key


def test_bupropion_plus_tramadol_is_found_from_a_brand_line() -> None:
    (zyban,), _ = read("Zyban LP 150 mg")
    (tramadol,), _ = read("tramadol 50 mg gél")
    levels = {lv.level for m in thesaurus().matches(zyban, tramadol) for lv in m.entry.levels}
    assert "AD" in levels


def test_one_key_from_bdpm_thesaurus_inn_and_rxnorm_spellings() -> None:
    idx = drug_index()
    assert idx.substance_key("bupropione") == idx.substance_key("bupropion") == idx.substance_key("BUPROPION")
    assert idx.substance_key("CHLORHYDRATE DE BUPROPIONE") == idx.substance_key("bupropion")
    rx = identify(MedicationOrder(ref="MedicationRequest/t", status="active", intent="order",
                                  medication=Concept((Coding(RXNORM, "42347"),), "")))
    assert rx.substance_keys == {idx.substance_key("bupropione")}


def test_a_combination_with_a_misspelt_component_is_not_read_as_one_substance() -> None:
    keys, conf = read("Irbesartan ydrochlorothiazide Teva 300 mg/25 mg")
    assert keys == {"irbesartan", "hydrochlorothiazide"} or conf < RULE_CONFIDENCE, (keys, conf)
    assert keys != {"irbesartan"} or conf < RULE_CONFIDENCE


def test_iodinated_contrast_medium_is_its_own_substance_not_iodine() -> None:
    keys, conf = read("Xenetix 350")
    assert conf >= RULE_CONFIDENCE and keys != {"iode"}
    (key,) = keys
    assert "produits de contraste iodes" in thesaurus().closure(key)


def test_st_johns_wort_by_atc() -> None:
    keys, conf = by_atc("N06AX25")
    assert conf >= RULE_CONFIDENCE and len(keys) == 1
    assert "millepertuis" in thesaurus().nodes_for(next(iter(keys)))


def test_isepamicin_by_atc_and_by_name() -> None:
    for keys, conf in (by_atc("J01GB11"), read("isépamicine")):
        assert conf >= RULE_CONFIDENCE and len(keys) == 1
        assert "aminosides" in thesaurus().closure(next(iter(keys)))


def test_clopamide_is_not_loperamide() -> None:
    for keys, conf in (by_atc("C03BA03"), read("clopamide")):
        assert conf >= RULE_CONFIDENCE and keys and "loperamide" not in keys
        (key,) = keys
        assert "diuretiques thiazidiques et apparentes" in thesaurus().closure(key)


def test_an_english_form_word_is_not_a_typo_that_lowers_a_clear_reading() -> None:
    """'modified' (RxNorm: modified release) is no misspelt drug word: the ciclosporin line of the
    HL7 PDDI digoxin + cyclosporine scenario stays at rule confidence."""
    keys, conf = read("cyclosporine, modified 50 MG Oral Capsule")
    assert keys == {"ciclosporine"} and conf >= RULE_CONFIDENCE


def test_a_first_letter_is_not_corrected_into_another_brand() -> None:
    """'Vicodin' (hydrocodone + paracetamol, a US brand) is one letter from DICODIN (dihydrocodeine):
    reading it so at rule confidence would be a wrong identification, worse than none."""
    ident = identify_text("Vicodin 5/500 Oral Tablet")
    assert ident is None or ident.confidence < RULE_CONFIDENCE or "dihydrocodeine" not in ident.substance_keys
