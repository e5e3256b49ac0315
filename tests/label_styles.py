"""Prescription-line writer: every commercialised BDPM specialty rewritten the way prescribers write it.

Used by tests/test_drugs_bdpm_coverage.py (one seeded style per specialty, cycling the styles) and
runnable for the full report (every style × every specialty, figures per style, worst misses):

    python -m tests.label_styles [--all-styles] [--seed N]

A reading is *right* when it names exactly the specialty's substances at rule confidence, *wrong*
when it names anything else at rule confidence (a substance missing or extra), an *abstention*
otherwise (reported to the prescriber as ID001, never used by the rules).
"""

from __future__ import annotations

import random
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from checker.drugs.index import DrugIndex, Specialty
from checker.model import RULE_CONFIDENCE

# Abbreviated forms as written on French prescriptions, by BDPM form (first match wins).
FORM_ABBREVIATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("libération prolongée", ("LP",)),
    ("capsule", ("caps", "capsule")),
    ("gélule", ("gél", "gel", "gélule")),
    ("comprimé", ("cp", "cpr", "comp")),
    ("suppositoire", ("suppo",)),
    ("sachet", ("sachet",)),
    ("poudre pour suspension buvable", ("susp buv",)),
    ("suspension buvable", ("susp buv",)),
    ("solution buvable", ("sol buv",)),
    ("injectable", ("inj",)),
    ("perfusion", ("inj",)),
    ("granulés", ("sachet",)),
)


def strip_accents(text: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


def brand_and_strength(spec: Specialty) -> tuple[str, str]:
    """('DOLIPRANE', '1000 mg') from 'DOLIPRANE 1000 mg, comprimé'."""
    head = spec.name.split(",")[0].strip()
    m = re.search(r"\s\d", head)
    if not m:
        return head, ""
    return head[: m.start()].strip(), head[m.start():].strip()


def form_abbreviation(spec: Specialty, rng: random.Random) -> str:
    form = spec.form.lower()
    for marker, abbrevs in FORM_ABBREVIATIONS:
        if marker in form:
            return rng.choice(abbrevs)
    return ""


def dci_text(spec: Specialty, idx: DrugIndex) -> str:
    return " / ".join(idx.display_name(c.key) for c in spec.components)


def component_strengths(spec: Specialty) -> str:
    return "/".join(c.strength for c in spec.components if c.strength) if len(spec.components) <= 3 else ""


def glue(strength: str) -> str:
    return re.sub(r"(\d)\s+(mg|g|ml|µg|microgrammes|UI|%)", r"\1\2", strength)


def drop_letter(word: str, rng: random.Random) -> str:
    letters = [i for i, ch in enumerate(word) if ch.isalpha()]
    if len(letters) < 6:
        return word
    i = rng.choice(letters[1:-1])
    return word[:i] + word[i + 1:]


Style = Callable[[Specialty, DrugIndex, random.Random], str]


def s_label(spec: Specialty, idx: DrugIndex, rng: random.Random) -> str:
    return spec.name


def s_brand_form(spec: Specialty, idx: DrugIndex, rng: random.Random) -> str:
    brand, strength = brand_and_strength(spec)
    return " ".join(p for p in (brand.title(), strength, form_abbreviation(spec, rng)) if p)


def s_dci(spec: Specialty, idx: DrugIndex, rng: random.Random) -> str:
    return " ".join(p for p in (dci_text(spec, idx), component_strengths(spec), form_abbreviation(spec, rng)) if p)


def s_lower_plain(spec: Specialty, idx: DrugIndex, rng: random.Random) -> str:
    return strip_accents(s_brand_form(spec, idx, rng)).lower()


def s_glued(spec: Specialty, idx: DrugIndex, rng: random.Random) -> str:
    brand, strength = brand_and_strength(spec)
    return " ".join(p for p in (brand, glue(strength), form_abbreviation(spec, rng)) if p)


def s_decimal_point(spec: Specialty, idx: DrugIndex, rng: random.Random) -> str:
    brand, strength = brand_and_strength(spec)
    return " ".join(p for p in (brand.title(), re.sub(r"(\d),(\d)", r"\1.\2", strength),
                                form_abbreviation(spec, rng)) if p)


def s_typo(spec: Specialty, idx: DrugIndex, rng: random.Random) -> str:
    brand, strength = brand_and_strength(spec)
    words = brand.split()
    if words:
        j = max(range(len(words)), key=lambda k: len(words[k]))
        words[j] = drop_letter(words[j], rng)
    return " ".join(p for p in (" ".join(words).title(), strength, form_abbreviation(spec, rng)) if p)


STYLES: dict[str, Style] = {
    "bdpm-label": s_label, "brand+form": s_brand_form, "dci+strength": s_dci, "lower-no-accents": s_lower_plain,
    "glued-units": s_glued, "decimal-point": s_decimal_point, "dropped-letter": s_typo,
}


@dataclass(frozen=True)
class Outcome:
    style: str
    cis: str
    text: str
    expected: frozenset[str]
    found: frozenset[str]
    confidence: float
    # compositions of the commercialised specialties bearing the very same name and strength
    # ("DAFLON 500 mg" is filed once as diosmine + hesperidine, once as their purified fraction):
    # the text cannot tell them apart, so reading any of them is right
    same_name: frozenset[frozenset[str]] = frozenset()

    @property
    def verdict(self) -> str:
        if self.confidence < RULE_CONFIDENCE or not self.found:
            return "abstain"
        return "right" if self.found == self.expected or self.found in self.same_name else "wrong"


def specialties(idx: DrugIndex) -> list[Specialty]:
    """Every commercialised specialty with a known composition, in CIS order."""
    return [s for _, s in sorted(idx.specialties.items()) if s.marketed and s.components]


def lines(idx: DrugIndex, seed: int = 15, all_styles: bool = False) -> Iterator[tuple[str, Specialty, str]]:
    """(style, specialty, line): one style per specialty, cycling, or every style for each."""
    rng = random.Random(seed)
    names = list(STYLES)
    for n, spec in enumerate(specialties(idx)):
        for style in (names if all_styles else [names[n % len(names)]]):
            yield style, spec, STYLES[style](spec, idx, rng)


def run(idx: DrugIndex, read: Callable[[str], tuple[frozenset[str], float]], seed: int = 15,
        all_styles: bool = False) -> list[Outcome]:
    by_name: dict[str, set[frozenset[str]]] = defaultdict(set)
    for spec in specialties(idx):
        by_name[" ".join(spec.name.split(",")[0].lower().split())].add(spec.substance_keys)
    out = []
    for style, spec, text in lines(idx, seed, all_styles):
        found, conf = read(text)
        same = frozenset(by_name[" ".join(spec.name.split(",")[0].lower().split())])
        out.append(Outcome(style, spec.cis, text, spec.substance_keys, found, conf, same))
    return out


def summary(outcomes: list[Outcome]) -> dict[str, Counter[str]]:
    by: dict[str, Counter[str]] = defaultdict(Counter)
    for o in outcomes:
        by[o.style][o.verdict] += 1
        by["all"][o.verdict] += 1
    return by


def report(outcomes: list[Outcome], worst: int = 20) -> str:
    rows = ["style               right   wrong  abstain      n"]
    for style, c in sorted(summary(outcomes).items(), key=lambda kv: kv[0] == "all"):
        n = sum(c.values())
        rows.append(f"{style:<18} {100 * c['right'] / n:6.2f}% {100 * c['wrong'] / n:6.2f}% "
                    f"{100 * c['abstain'] / n:7.2f}% {n:6d}")
    misses = [o for o in outcomes if o.verdict == "wrong"]
    misses += [o for o in outcomes if o.verdict == "abstain"]
    rows.append(f"\n{worst} worst misses (wrong first, then abstentions):")
    for o in misses[:worst]:
        rows.append(f"  [{o.verdict}] {o.style}: {o.text!r} → {sorted(o.found)} ({o.confidence:.2f}); "
                    f"expected {sorted(o.expected)}")
    return "\n".join(rows)


def reader() -> Callable[[str], tuple[frozenset[str], float]]:
    from checker.drugs import identify_text

    def read(text: str) -> tuple[frozenset[str], float]:
        ident = identify_text(text)
        return (frozenset(ident.substance_keys), ident.confidence) if ident else (frozenset(), 0.0)

    return read


if __name__ == "__main__":  # pragma: no cover
    import sys

    from checker.drugs import drug_index

    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 15
    print(report(run(drug_index(), reader(), seed, all_styles="--all-styles" in sys.argv)))
