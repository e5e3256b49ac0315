"""An allergy written with a brand name (« Allergie : Augmentin », "Bactrim allergy") is an allergy to
the brand's substances: over a seeded sample of commercialised BDPM brand names, a line naming one of
its substances by its DCI is flagged; the same brand denied, or a relative's, is not."""

from __future__ import annotations

import random
from typing import Any

import pytest

from checker.drugs import drug_index, identify_text
from checker.model import RULE_CONFIDENCE
from tests.test_facts_negation import AS_OF, findings
from tests.test_facts_point_in_time import bundle, med


def _brands(n: int, seed: int = 19) -> list[tuple[str, str]]:
    """(brand word, DCI of one of its substances) for ``n`` marketed brands read back from their word alone."""
    idx = drug_index()
    rng = random.Random(seed)
    specs = [s for _, s in sorted(idx.specialties.items()) if s.marketed and s.components]
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for s in rng.sample(specs, len(specs)):
        word = s.brand.split()[0] if s.brand else ""
        if len(word) < 5 or not word.isalpha() or word.lower() in seen:
            continue
        ident = identify_text(word.title())
        if ident is None or ident.confidence < RULE_CONFIDENCE or ident.prescribed_as != "brand" \
                or ident.substance_keys != s.substance_keys:
            continue
        seen.add(word.lower())
        out.append((word.title(), idx.display_name(min(s.substance_keys))))
        if len(out) == n:
            break
    return out


BRANDS = _brands(40)


def _allergy(text: str) -> dict[str, Any]:
    return {"resourceType": "AllergyIntolerance", "id": "al", "patient": {"reference": "Patient/pit"},
            "code": {"text": text}}


def _pr001(allergen: str, line: str) -> list[str]:
    data = bundle(med("m", line, "2026-01-10", days=7), _allergy(allergen))
    return [f["severity"] for f in findings(data, AS_OF, "PR001")]


def test_the_sample_is_large() -> None:
    assert len(BRANDS) == 40


@pytest.mark.parametrize("brand, dci", BRANDS)
def test_an_allergy_named_by_a_brand_flags_a_line_of_its_substance(brand: str, dci: str) -> None:
    assert _pr001(f"Allergie : {brand}", dci) == ["critical"]


@pytest.mark.parametrize("brand, dci", BRANDS[:15])
@pytest.mark.parametrize("template", ["Pas d'allergie à {}", "Allergie {} niée", "Mère allergique au {}"])
def test_a_brand_denied_or_a_relatives_is_no_allergy(brand: str, dci: str, template: str) -> None:
    assert _pr001(template.format(brand), dci) == []


@pytest.mark.parametrize("allergen, line, expected", [
    ("Allergie : Augmentin", "Amoxicilline 1 g comprimé", ["critical"]),
    ("Augmentin", "Amoxicilline 1 g comprimé", ["critical"]),
    ("Allergie aux fraises", "Amoxicilline 1 g comprimé", []),
    ("Allergie : Doliprane", "Amoxicilline 1 g comprimé", []),
])
def test_brand_allergens_by_hand(allergen: str, line: str, expected: list[str]) -> None:
    assert _pr001(allergen, line) == expected
