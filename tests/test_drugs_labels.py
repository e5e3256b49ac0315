"""Free-text labels (French and English, brands, DCI, typos, combinations) and the FHIR corpora.

``tests/data/drug_labels.tsv``: labels written from BDPM names with their expected substances;
``tests/data/drug_labels_synthea.tsv``: every RxNorm display text of the Synthea corpus with the
substances it names (written by hand from the display).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from checker.drugs import identify, identify_text
from checker.model import RULE_CONFIDENCE
from tests.conftest import REPO

DATA = REPO / "tests" / "data"


def read_labels(path: Path) -> list[tuple[str, frozenset[str], str]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        assert len(parts) >= 2, f"{path}:{n}: expected label<TAB>substances"
        rows.append((parts[0], frozenset(k.strip() for k in parts[1].split("+")), parts[2] if len(parts) > 2 else ""))
    return rows


LABELS = read_labels(DATA / "drug_labels.tsv")


def test_label_set_is_large_and_varied() -> None:
    kinds = Counter(k for _, _, k in LABELS)
    assert len(LABELS) >= 150
    assert {"brand", "dci", "en", "typo", "combo"} <= set(kinds), kinds
    assert kinds["typo"] >= 20 and kinds["en"] >= 30 and kinds["brand"] >= 60


def test_labels_top1_accuracy_and_no_confident_mistake() -> None:
    right, wrong_confident, misses = 0, [], []
    for text, want, _ in LABELS:
        ident = identify_text(text)
        got = ident.substance_keys if ident else frozenset()
        if got == want:
            right += 1
        else:
            misses.append((text, sorted(want), sorted(got)))
            if ident is not None and got and ident.confidence >= RULE_CONFIDENCE:
                wrong_confident.append((text, sorted(got), ident.confidence))
    assert right / len(LABELS) >= 0.95, misses
    assert wrong_confident == []


def test_low_confidence_is_reserved_for_typos() -> None:
    """Exact brand or DCI labels must reach rule-grade confidence; only typos may stay below."""
    low = [(t, k) for t, _, k in LABELS if (i := identify_text(t)) and i.confidence < RULE_CONFIDENCE]
    assert all(k == "typo" for _, k in low), low


@pytest.mark.corpus
def test_synthea_medication_requests_identified_to_the_right_substances(shared_dir: Path) -> None:
    """≥ 97 % of the Synthea MedicationRequests (bundles + bulk NDJSON) identified, at rule-grade
    confidence, to exactly the substances their RxNorm display names."""
    from checker import fhir_input

    expected = {t: w for t, w, _ in read_labels(DATA / "drug_labels_synthea.tsv")}
    total = right = 0
    misses: Counter[tuple[str, tuple[str, ...]]] = Counter()
    for folder in ("fhir/synthea/bundles", "fhir/synthea/bulk-ndjson"):
        for record in fhir_input.read(str(shared_dir / folder)).records:
            for o in record.medication_orders:
                total += 1
                display = o.medication.label() or (o.ingredients[0].concept.label() if o.ingredients else "")
                ident = identify(o)
                if display in expected and ident.substance_keys == expected[display] \
                        and ident.confidence >= RULE_CONFIDENCE:
                    right += 1
                else:
                    misses[(display, tuple(sorted(ident.substance_keys)))] += 1
    assert total > 3000
    assert right / total >= 0.97, misses.most_common(10)


@pytest.mark.corpus
def test_every_french_eprescription_line_is_identified_or_reported(shared_dir: Path) -> None:
    from checker import check

    report = check([str(shared_dir / "fhir" / "eprescription-fr" / "json")], as_of="2026-01-15", select=["ID001"])
    reported = {ref for f in report.findings for ref in f.implicated}
    from checker import fhir_input

    lines = 0
    for record in fhir_input.read(str(shared_dir / "fhir" / "eprescription-fr" / "json")).records:
        for o in record.medication_orders:
            lines += 1
            ident = identify(o)
            if not ident.substances or ident.confidence < RULE_CONFIDENCE:
                assert o.ref in reported, f"{o.ref} ({o.label!r}) is neither identified nor reported"
    assert lines >= 85


def test_bdpm_specialty_names_identify_their_own_substances() -> None:
    """Self-consistency: the names of marketed specialties (every 7th, about 1,900) read back as
    their BDPM composition; mismatches above the rule threshold stay rare (composition encodings
    that differ between specialties of one brand, nutrition bags)."""
    from checker.drugs import drug_index

    idx = drug_index()
    specs = [s for cis, s in sorted(idx.specialties.items()) if s.components and s.marketed][::7]
    right = wrong_confident = 0
    for s in specs:
        ident = identify_text(s.name)
        if ident is not None and ident.substance_keys == s.substance_keys:
            right += 1
        elif ident is not None and ident.substances and ident.confidence >= RULE_CONFIDENCE:
            wrong_confident += 1
    assert right / len(specs) >= 0.97
    assert wrong_confident / len(specs) <= 0.003


def _brand_sample() -> list[Any]:
    """Every 40th marketed single-substance specialty whose brand's first word has six letters or more
    (about 300, over the whole BDPM referential): the specialties the typo tests misspell."""
    from checker.drugs import drug_index

    specs = [s for cis, s in sorted(drug_index().specialties.items())
             if s.marketed and len(s.substance_keys) == 1 and "/" not in s.name and len(s.brand.split()[0]) >= 6]
    return specs[::40]


def test_one_letter_typos_of_brand_names_are_never_confidently_wrong() -> None:
    """Deterministic one-edit typos (deletion, substitution, insertion) of ~300 marketed
    single-substance specialty names: none is read as another substance above the rule threshold."""
    right = wrong_confident = total = 0
    for n, s in enumerate(_brand_sample()):
        word = s.brand.split()[0]
        i = 1 + n % (len(word) - 2)
        typo = (word[:i] + word[i + 1:], word[:i] + "x" + word[i + 1:], word[:i] + "e" + word[i:])[n % 3]
        if typo == word:
            continue
        total += 1
        ident = identify_text(typo)
        if ident is not None and ident.substance_keys == s.substance_keys:
            right += 1
        elif ident is not None and ident.substances and ident.confidence >= RULE_CONFIDENCE:
            wrong_confident += 1
    assert total >= 200
    assert wrong_confident == 0
    assert right / total >= 0.75


def test_two_swapped_letters_in_brand_names_read_like_other_one_letter_typos() -> None:
    """Two neighbouring letters swapped ("Dolipnare", the commonest slip at a keyboard), in ~300
    marketed single-substance specialty names, with or without the strength: never read as another
    substance above the rule threshold, and read right as often as a letter dropped or changed."""
    right = wrong_confident = total = 0
    for n, s in enumerate(_brand_sample()):
        word = s.brand.split()[0]
        i = 1 + n % (len(word) - 3)
        typo = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        if typo == word:
            continue
        strength = s.name.split(",")[0][len(s.brand):].strip() if n % 2 else ""
        total += 1
        ident = identify_text(f"{typo.title()} {strength}".strip())
        if ident is not None and ident.substance_keys == s.substance_keys and ident.confidence >= RULE_CONFIDENCE:
            right += 1
        elif ident is not None and ident.substances and ident.confidence >= RULE_CONFIDENCE \
                and ident.substance_keys != s.substance_keys:
            wrong_confident += 1
    assert total >= 200
    assert wrong_confident == 0
    assert right / total >= 0.75, f"{right}/{total}"
