"""An allergy written with a brand name (« Allergie : Augmentin ») reaches the brand's class as its
substance written by name does (« Allergie : amoxicilline » flags any penicillin: cross-reactivity
within the class, the allergy-class rows of referentials/iatrogenic/patient-risks.tsv). Over a
seeded sample of the commercialised BDPM brands whose substance belongs to an allergy class."""

from __future__ import annotations

import random

import pytest

from checker.drugs import drug_index, identify_text
from checker.model import RULE_CONFIDENCE
from checker.referentials import default_referentials
from checker.text import fold
from tests.test_allergen_brand_names import _pr001

# a line of two members of each class: the one that is not the brand's own substance is prescribed
CLASS_LINES = {
    "penicillins": ["Phénoxyméthylpénicilline 1 MUI comprimé", "Pivmécillinam 200 mg comprimé"],
    "cephalosporins": ["Céfalexine 500 mg gélule", "Cefpodoxime 100 mg comprimé"],
    "nsaid": ["Kétoprofène 100 mg gélule", "Naproxène 500 mg comprimé"],
}


def _class_brands(per_class: int, seed: int = 23) -> list[tuple[str, str, str]]:
    """(class, brand word, line of another member) for up to ``per_class`` marketed brands a class."""
    rows = {r.id: r for r in default_referentials().get("iatrogenic-rules").kind("allergy-class")}
    idx = drug_index()
    rng = random.Random(seed)
    specs = [s for _, s in sorted(idx.specialties.items()) if s.marketed and s.components]
    out: list[tuple[str, str, str]] = []
    count = dict.fromkeys(CLASS_LINES, 0)
    members = {c: {k for p in rows[c].atc for k in idx.substances_with_atc(p)} for c in CLASS_LINES}
    seen: set[str] = set()
    for s in rng.sample(specs, len(specs)):
        word = s.brand.split()[0] if s.brand else ""
        if len(word) < 5 or not word.isalpha() or word.lower() in seen:
            continue
        cls = next((c for c in CLASS_LINES if count[c] < per_class and any(
            fold(k).startswith(t) for k in s.substance_keys for t in rows[c].allergens if not t.startswith("sct "))), None)
        if cls is None or not s.substance_keys & members[cls]:
            continue  # a member of the class by its ATC code, not only by a stem of its name
        ident = identify_text(word.title())
        if ident is None or ident.confidence < RULE_CONFIDENCE or ident.prescribed_as != "brand" \
                or ident.substance_keys != s.substance_keys:
            continue
        other = [line for line in CLASS_LINES[cls]
                 if not (identify_text(line) and identify_text(line).substance_keys & s.substance_keys)]  # type: ignore[union-attr]
        if not other:
            continue
        seen.add(word.lower())
        count[cls] += 1
        out.append((cls, word.title(), other[0]))
    return out


SAMPLE = _class_brands(8)


def test_the_sample_covers_every_class() -> None:
    assert {c for c, _, _ in SAMPLE} == set(CLASS_LINES), SAMPLE


@pytest.mark.parametrize("cls, brand, line", SAMPLE)
def test_an_allergy_named_by_a_brand_flags_another_member_of_its_class(cls: str, brand: str, line: str) -> None:
    assert _pr001(f"Allergie : {brand}", line) == ["critical"], (cls, brand, line)


@pytest.mark.parametrize("cls, brand, line", SAMPLE[:6])
def test_a_brand_denied_reaches_no_class(cls: str, brand: str, line: str) -> None:
    assert _pr001(f"Pas d'allergie au {brand}", line) == []
