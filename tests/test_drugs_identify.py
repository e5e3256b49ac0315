"""Identification of prescription lines: codes in order of trust, text (exact, fuzzy), ingredients."""

from __future__ import annotations

from pathlib import Path

import pytest

from checker.drugs import drug_index, identify, identify_text, substance_key
from checker.drugs.matcher import parse_strengths, tokenize
from checker.model import RULE_CONFIDENCE, Coding, Concept, Ingredient, MedicationOrder, Quantity

CIS = "http://data.esante.gouv.fr/ansm/medicament/codeCIS"
CIP13 = "http://data.esante.gouv.fr/ansm/medicament/codeCIP13"
UCD = "http://data.esante.gouv.fr/ansm/medicament/UCD"
ATC = "http://www.whocc.no/atc"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"


def order(text: str = "", *codings: Coding, ingredients: tuple[Ingredient, ...] = ()) -> MedicationOrder:
    return MedicationOrder(ref="MedicationRequest/t", status="active", intent="order",
                           medication=Concept(tuple(codings), text), ingredients=ingredients)


def test_cip13_identifies_product_presentation_and_group() -> None:
    ident = identify(order("", Coding(CIP13, "3400949497294")))
    assert ident.method == "cip13" and ident.confidence == 1.0
    assert ident.substance_keys == {"anastrozole"}
    assert ident.cis == "60002283" and ident.cip13 == "3400949497294"
    assert ident.product.startswith("ANASTROZOLE") and ident.prescribed_as == "code"
    assert ident.substances[0].strength == Quantity(1.0, "mg")
    assert "L02BG03" in ident.substances[0].atc


def test_bare_codes_are_recognised_whatever_the_system() -> None:
    by_cip = identify(order("", Coding("urn:oid:1.2.250.1.213.2.3.1", "3400949497294")))
    assert by_cip.method == "cip13" and by_cip.substance_keys == {"anastrozole"}
    by_cis = identify(order("", Coding("http://example.org/whatever", "60002283")))
    assert by_cis.method == "cis" and by_cis.cis == "60002283"
    by_cip7 = identify(order("", Coding("http://data.esante.gouv.fr/ansm/medicament/codeCIP7", "4949729")))
    assert by_cip7.method == "cip7" and by_cip7.cip13 == "3400949497294"


def test_cip_outranks_a_contradicting_text_and_keeps_how_it_was_written() -> None:
    ident = identify(order("Arimidex 1 mg", Coding(CIP13, "3400949497294")))
    assert ident.method == "cip13" and ident.substance_keys == {"anastrozole"}
    assert ident.prescribed_as == "brand"


def test_atc_and_rxnorm_ingredient_codes() -> None:
    atc = identify(order("", Coding(ATC, "C10AA05")))
    assert atc.method == "atc" and atc.substance_keys == {"atorvastatine"} and atc.confidence >= RULE_CONFIDENCE
    rx = identify(order("", Coding(RXNORM, "161")))  # RxNorm ingredient acetaminophen
    assert rx.method == "rxnorm" and rx.substance_keys == {"paracetamol"}


def test_unknown_ucd_falls_back_to_the_display_text() -> None:
    ident = identify(order("", Coding(UCD, "3400892169026", "DOLIPRANE 1 000 mg, cpr efferv")))
    assert ident.substance_keys == {"paracetamol"} and ident.method == "text-exact"
    assert ident.prescribed_as == "brand"


def test_snomed_display_is_used_with_its_method() -> None:
    ident = identify(order("", Coding(SNOMED, "387517004", "Paracetamol")))
    assert ident.method == "snomed" and ident.substance_keys == {"paracetamol"}


def test_rxnorm_clinical_drug_display_in_english() -> None:
    ident = identify(order("", Coding(RXNORM, "312961", "Simvastatin 20 MG Oral Tablet")))
    assert ident.substance_keys == {"simvastatine"} and ident.prescribed_as == "dci"
    assert ident.substances[0].strength == Quantity(20.0, "mg")
    assert ident.generic_group is not None  # every simvastatin 20 mg tablet is in one group


def test_ingredients_of_a_contained_medication() -> None:
    ings = (Ingredient(Concept(text="PARACETAMOL"), Quantity(500, "mg")),
            Ingredient(Concept(text="CODEINE"), Quantity(30, "mg")))
    ident = identify(order("", ingredients=ings))
    assert ident.substance_keys == {"paracetamol", "codeine"}
    assert ident.substances[0].strength == Quantity(500, "mg")


@pytest.mark.parametrize(
    "text, keys, prescribed_as",
    [
        ("Doliprane 1000mg cp", {"paracetamol"}, "brand"),
        ("amoxicilline 1 g cp dispersible", {"amoxicilline"}, "dci"),
        ("Simvastatin 20 MG Oral Tablet", {"simvastatine"}, "dci"),
        ("tramadol/paracétamol 37.5/325", {"tramadol", "paracetamol"}, "dci"),
        ("AMLODIPINE BIOGARAN 5 mg gélule", {"amlodipine"}, "dci"),
        ("CLARADOL 500 mg, cpr séc", {"paracetamol"}, "brand"),
    ],
)
def test_text_identification(text: str, keys: set[str], prescribed_as: str) -> None:
    ident = identify_text(text)
    assert ident is not None and ident.substance_keys == keys
    assert ident.confidence >= RULE_CONFIDENCE and ident.prescribed_as == prescribed_as


def test_brand_with_strength_and_form_pins_the_specialty() -> None:
    ident = identify_text("Eliquis 5 mg")
    assert ident is not None and ident.product.startswith("ELIQUIS 5 mg") and ident.cis is not None
    assert ident.generic_type in (0, None)


def test_typo_is_fuzzy_and_explicit() -> None:
    ident = identify_text("amoxicilinne 500 mg")
    assert ident is not None and ident.substance_keys == {"amoxicilline"}
    assert ident.method == "text-fuzzy" and "amoxicilinne" in ident.note


def test_unidentifiable_line_has_no_substance_and_names_the_text() -> None:
    ident = identify(order("Zorblaxine 10 mg cp"))
    assert not ident.substances and ident.confidence == 0.0 and "Zorblaxine" in ident.note
    assert identify(order("#med-1")).substances == ()  # an unresolved reference is not a name


def test_tokenizer_normalises_units_decimals_and_abbreviations() -> None:
    toks = tokenize("Paracétamol 0,5g cpr + Codéine 30mg")
    assert toks == ["paracetamol", "0.5", "g", "comprime", "+", "codeine", "30", "mg"]
    assert parse_strengths(tokenize("37,5/325 mg")) == [Quantity(37.5, "mg"), Quantity(325.0, "mg")]


@pytest.mark.parametrize(
    "name, key",
    [
        ("ATORVASTATINE CALCIQUE TRIHYDRATÉE", "atorvastatine"),
        ("POTASSIUM (CHLORURE DE)", "potassium"),
        ("CHLORURE DE POTASSIUM", "potassium"),
        ("SODIUM (CHLORURE DE)", "chlorure de sodium"),
        ("SODIUM (BICARBONATE DE)", "bicarbonate de sodium"),
        ("VALPROÏQUE (ACIDE)", "acide valproique"),
        ("valproate de sodium", "acide valproique"),
        ("CLAVULANATE DE POTASSIUM", "acide clavulanique"),
        ("BÉSILATE D'AMLODIPINE", "amlodipine"),
        ("Simvastatin", "simvastatine"),
        ("acetaminophen", "paracetamol"),
        ("aspirin", "acide acetylsalicylique"),
        ("cyclosporine", "ciclosporine"),
        ("CARBONATE DE LITHIUM", "lithium"),
        ("sulfate ferreux", "fer"),
        ("DABIGATRAN ETEXILATE", "dabigatran"),
        ("cholécalciférol", "colecalciferol"),
        ("epoetin alfa", "epoetine alfa"),
    ],
)
def test_substance_key_folds_salts_spellings_and_languages(name: str, key: str) -> None:
    assert substance_key(name) == key


def test_substance_key_of_unknown_name_is_none() -> None:
    assert substance_key("zorblaxine") is None
    assert substance_key("") is None


def test_substance_model_and_index_api() -> None:
    idx = drug_index()
    atorva = idx.substance("atorvastatine")
    assert atorva is not None and "C10AA05" in atorva.atc and atorva.bdpm_codes
    assert "atorvastatine" in idx.substances_with_atc("C10AA")
    assert idx.keys_for_rxnorm("161") == ("paracetamol",)
    pres = idx.presentation("3400949497294")
    assert pres is not None and pres.units == 30 and pres.price == pytest.approx(24.34)
    assert pres.reimbursement_rate == 100 and pres.marketed
    assert [p.cip13 for p in idx.presentations("60002283")].count("3400949497294") == 1
    spec = idx.specialty("60002283")
    assert spec is not None and spec.generic_group is not None
    group = idx.generic_group(spec.generic_group)
    assert group is not None and any(c == "60002283" for c, _, _ in group.members)
    assert {t for _, t, _ in group.members} <= {0, 1, 2, 4}
    assert "60002283" in idx.specialties_with({"anastrozole"})


@pytest.mark.corpus
def test_thesaurus_spellings_resolve_to_the_keys_drugs_carry(shared_dir: Path) -> None:
    """Every thesaurus substance name that the substance model knows resolves to a key that BDPM
    products carry, and most single substances are known (the others get a lexical moiety key)."""
    import csv

    idx = drug_index()
    path = shared_dir / "data" / "ansm-thesaurus-2023-09" / "thesaurus_ansm_2023-09.csv"
    with path.open(encoding="utf-8") as f:
        names = {n for r in csv.DictReader(f) for n in (r["substance"], r["interactant"])}
    resolved = {n: k for n in names if (k := idx.substance_key(n))}
    assert all(k in idx.substances for k in resolved.values())
    assert len(resolved) >= 350
    assert idx.substance_key("POTASSIUM") == idx.substance_key("CHLORURE DE POTASSIUM") == "potassium"
    assert idx.substance_key("SODIUM (CHLORURE DE)") != idx.substance_key("SODIUM (BICARBONATE DE)")
    assert idx.substance_key("IOHEXOL") == "iohexol"  # a contrast agent is not "iode"
    assert idx.moiety_key("SODIUM (NITROPRUSSIATE DE)") == "nitroprussiate de sodium"


def test_an_eight_digit_snomed_code_is_not_taken_for_a_cis() -> None:
    ident = identify(order("", Coding(SNOMED, "60002283")))
    assert ident.method != "cis" and not ident.substances


def test_substance_tables_point_at_known_substances() -> None:
    from checker.referentials.drugs import read_tsv
    from tests.conftest import REPO

    idx = drug_index()
    atc = read_tsv(REPO / "referentials" / "substances" / "atc.tsv", 2)
    assert atc, "atc.tsv is empty"
    for key, code, *_ in atc:
        assert key in idx.substances, key
        assert len(code) == 7 and code in idx.substance(key).atc
    for _, keys, *_ in read_tsv(REPO / "referentials" / "substances" / "synonyms.tsv", 2):
        for k in keys.split("+"):
            assert k.strip() in idx.substances, k


def test_index_survives_the_cache(tmp_path, monkeypatch) -> None:
    """A cold build writes the cache; a second load reads the same content back."""
    from checker.drugs import index as I
    from checker import drugs
    from checker.referentials import Referentials

    monkeypatch.setenv("PERTINENCE_CACHE", str(tmp_path))
    monkeypatch.setattr(drugs, "_indexes", {})
    refs = Referentials()
    first = refs.get("bdpm")
    cached = list(tmp_path.glob("drug-index-*.pickle"))
    assert len(cached) == 1
    again = I.load(cached[0])
    assert again is not None and again.specialty("60002283") == first.specialty("60002283")
    assert refs.get("substances") is first


def test_named_product_with_matching_ingredients_keeps_the_brand() -> None:
    ings = (Ingredient(Concept(text="BETAMETHASONE")),)
    ident = identify(order("DIPROSONE 0,05 %, crème", ingredients=ings))
    assert ident.substance_keys == {"betamethasone"} and ident.prescribed_as == "brand"
    other = identify(order("Doliprane 1000 mg", ingredients=ings))  # contradicting name: ingredients win
    assert other.substance_keys == {"betamethasone"}


@pytest.mark.parametrize("label, key, strength", [
    ("Paracétamol 1 000 mg", "paracetamol", Quantity(1000.0, "mg")),            # French thousands with a space
    ("Doliprane 1\u00a0000 mg cp", "paracetamol", Quantity(1000.0, "mg")),      # ... a non-breaking space
    ("Uvedose 100\u202f000 UI ampoule", "colecalciferol", Quantity(100000.0, "ui")),  # ... a narrow one
    ("Acetaminophen 1,000 MG Oral Tablet", "paracetamol", Quantity(1000.0, "mg")),  # RxNorm-style commas
    ("BETESIL 2,250 mg, emplâtre médicamenteux", "betamethasone", Quantity(2.25, "mg")),  # a French decimal comma
    ("Hemigoxine 0,125 mg", "digoxine", Quantity(0.125, "mg")),
])
def test_grouped_thousands_are_one_number(label: str, key: str, strength: Quantity) -> None:
    """"1 000 mg" was read as 1 mg then 0 mg, so an 8 g/day paracetamol line escaped the dose check."""
    ident = identify_text(label)
    assert ident is not None and ident.substance_keys == {key}
    assert ident.substances[0].strength == strength


def test_a_zero_strength_is_never_read() -> None:
    assert parse_strengths(tokenize("paracetamol 0 mg")) == []
    assert parse_strengths(tokenize("x 0 / 5 mg")) == [Quantity(5.0, "mg")]


@pytest.mark.parametrize("label", ["amoxicilline acide clavulanique 1 g/125 mg",
                                   "amoxicilline/acide clavulanique 1 g/125 mg",
                                   "amoxicilline + acide clavulanique 1 g/125 mg"])
def test_strengths_follow_the_order_the_substances_are_written(label: str) -> None:
    ident = identify_text(label)
    assert ident is not None
    assert {s.key: s.strength for s in ident.substances} == {
        "amoxicilline": Quantity(1.0, "g"), "acide clavulanique": Quantity(125.0, "mg")}


@pytest.mark.parametrize("label", ["Orocal D3", "Cacit D3"])
def test_a_word_of_a_longer_brand_name_narrows_to_it(label: str) -> None:
    """"Orocal D3" is OROCAL VITAMINE D3 (calcium + colecalciferol), not OROCAL (calcium alone)."""
    ident = identify_text(label)
    assert ident is not None and ident.substance_keys == {"calcium", "colecalciferol"}
    plain = identify_text(label.split()[0])
    assert plain is not None and plain.substance_keys == {"calcium"}


@pytest.mark.parametrize("label, tokens", [
    ("CACIT VITAMINE D3 500 mg/1000 U.I.", ["d3", "500", "mg"]),
    ("UMULINE PROFIL 30 100 UI/mL", ["30", "100", "ui"]),
    ("Humalog MIX25 100 UI/ml", ["mix25", "100"]),
    ("PIPORTIL L4 100 mg/4 ml", ["l4", "100", "mg"]),
    ("CALCIPARINE 12 500 UI/0,5 ml", ["12500", "ui"]),
    ("Vitamine D3 100 000 UI", ["d3", "100000", "ui"]),
])
def test_separate_numbers_are_not_taken_for_thousands(label: str, tokens: list[str]) -> None:
    """Found in review: a number glued to a word ("D3", "L4") or a pair like "30 100" is two numbers."""
    got = tokenize(label)
    assert any(got[i:i + len(tokens)] == tokens for i in range(len(got))), got


def test_a_word_narrows_a_brand_only_to_products_of_the_strength_written() -> None:
    """"Nicopass 1,5 mg menthe" is not NICOPASS MENTHE FRAICHEUR 2,5 mg (the only brand name with "menthe")."""
    ident = identify_text("Nicopass 1,5 mg menthe")
    assert ident is not None and ident.cis != "67185182"
    assert ident.substances[0].strength == Quantity(1.5, "mg")
    assert identify_text("Nicopass menthe 2,5 mg").cis == "67185182"  # type: ignore[union-attr]
