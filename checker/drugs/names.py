"""Substance-name normalisation: salts, hydrates and spelling variants folded to one moiety key.

Keys are :func:`checker.text.fold`-ed French DCI names of the active moiety ("atorvastatine").
The rules here are purely lexical (word lists of French/English salt formers and hydrate words);
which stripped name is a real moiety is decided with the vocabulary built from the BDPM
composition (``SA`` → ``FT`` links) in :mod:`checker.drugs.index`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from collections.abc import Container, Iterator

from checker.text import fold

# Words describing hydration or physical form: never part of the moiety.
HYDRATE_WORDS = frozenset("""
anhydre anhydrous monohydrate monohydratee dihydrate dihydratee trihydrate trihydratee tetrahydrate
tetrahydratee pentahydrate pentahydratee hexahydrate hexahydratee heptahydrate heptahydratee
sesquihydrate sesquihydratee hemihydrate hemihydratee hydrate hydratee micronise micronisee amorphe
cristallise cristallisee dilue diluee base racemique element hemipentahydrate hemipentahydratee
""".split())

ENGLISH_ANIONS = {"chloride": "chlorure", "bromide": "bromure", "iodide": "iodure", "sulfate": "sulfate",
                  "carbonate": "carbonate", "bicarbonate": "bicarbonate", "citrate": "citrate",
                  "gluconate": "gluconate", "acetate": "acetate", "phosphate": "phosphate", "lactate": "lactate"}

# French salt formers written before the moiety: "chlorhydrate de X", "bésilate d'X".
SALT_PREFIXES = frozenset("""
chlorhydrate dichlorhydrate bromhydrate besilate mesilate dimesilate tosilate maleate hydrogenomaleate
fumarate hemifumarate tartrate hydrogenotartrate bitartrate succinate hemisuccinate citrate dihydrogenocitrate
sulfate hydrogenosulfate phosphate acetate propionate dipropionate valerate butyrate benzoate lactate
gluconate oxalate napadisilate pamoate embonate nitrate carbonate bicarbonate hydrogenocarbonate chlorure
bromure iodure fluorure hyclate hydroxyde stearate palmitate undecylenate edisilate furoate xinafoate
acetonide isethionate camsilate malate glycerophosphate pidolate aspartate ascorbate orotate lactobionate
mesylate besylate cipionate enantate decanoate hexanoate caproate laurate pivalate hydrogenosuccinate
solution benzathine digluconate diacetate
""".split())

# French/English salt formers written after the moiety: "X calcique", "X sodium".
SALT_SUFFIXES = frozenset("""
sodique disodique monosodique trisodique potassique dipotassique calcique magnesique lithique zincique
arginine lysine erbumine tert butylamine meglumine trometamol diolamine olamine
etexilate cilexetil medoxomil axetil pivoxil proxetil
hydrochloride dihydrochloride hydrobromide hcl sodium disodium potassium calcium magnesium maleate
succinate bitartrate besylate besilate mesylate mesilate citrate sulfate phosphate tartrate fumarate
propionate dipropionate furoate valerate acetate hyclate bromide chloride nitrate lactate gluconate
monohydrate anhydrous hydrate dihydrate trihydrate acide
""".split())

# Mineral cations whose salts count as the ion itself (the thesaurus names the ion: "POTASSIUM",
# "FER", "LITHIUM"…). Sodium is left out on purpose: the thesaurus tells sodium chloride and
# sodium bicarbonate apart.
MINERAL_IONS = {
    "potassium": "potassium", "kalium": "potassium", "lithium": "lithium", "calcium": "calcium",
    "magnesium": "magnesium", "zinc": "zinc", "strontium": "strontium", "aluminium": "aluminium",
    "fer": "fer", "ferreux": "fer", "ferrique": "fer", "ferrous": "fer", "ferric": "fer", "iron": "fer",
}
MINERAL_ANIONS = frozenset("""
chlorure carbonate bicarbonate hydrogenocarbonate gluconate sulfate citrate lactate acetate phosphate
glycerophosphate oxyde hydroxyde fumarate succinate ascorbate pidolate aspartate orotate tartrate
lactobionate chloride sulfate oxide hydroxide glycinate bisglycinate trisilicate
""".split())

# Ions whose salts keep their own key (sodium chloride ≠ sodium bicarbonate in the thesaurus).
KEEP_SALT_IONS = frozenset({"sodium", "natrium"})

_PAREN = re.compile(r"^(?P<head>[^()]*?)\s*\((?P<inner>[^()]*)\)\s*(?P<tail>.*)$")


# Words that never name a substance on their own ("pour solution injectable").
FORM_ONLY_WORDS = frozenset("pour solution solutions injectable injectables suspension buvable solvant poudre "
                            "comprime gelule emulsion perfusion creme pommade gel usage".split())


def invert_parentheses(name: str) -> str:
    """'POTASSIUM (CHLORURE DE)' → 'CHLORURE DE POTASSIUM'; 'CLAVULANIQUE (ACIDE)' → 'ACIDE
    CLAVULANIQUE'; other parenthesised qualifiers ('(SELS)', '(VOIE …)') are dropped."""
    m = _PAREN.match(name.strip())
    if not m:
        return name
    head, inner, tail = m["head"].strip(), m["inner"].strip(), m["tail"].strip()
    fi = fold(inner)
    if re.search(r"(^| )(de|d|du|des)$", fi) or inner.endswith("'") or inner.endswith("’"):
        joined = f"{inner} {head}" if not inner.endswith(("'", "’")) else f"{inner}{head}"
    elif fi in {"acide", "acid"}:
        joined = f"{inner} {head}"
    else:
        joined = head
    return f"{joined} {tail}".strip()


# Insulin preparation words (origin, crystal form, NPH/soluble): the moiety stays "insuline humaine",
# "insuline lispro"…
INSULIN_WORDS = frozenset("recombinante biosynthetique hemisynthetique d origine porcine isophane biphasique "
                          "biphasiqu neutre soluble zinc cristalline".split())


# Herbal preparations ("MILLEPERTUIS (SOMMITÉ FLEURIE) (EXTRAIT SEC DE)", "EXTRAIT SEC DE FEUILLE DE
# LIERRE"): the preparation, its qualifiers and the plant part are not the substance; the thesaurus
# names the plant ("MILLEPERTUIS"). Allergen extracts keep their full name.
HERBAL_PREPARATIONS = frozenset("extrait extraits teinture poudre".split())
HERBAL_WORDS = frozenset("""
sec secs seche fluide mou aqueux aqueuse hydroalcoolique alcoolique titre titree standardise standardisee
quantifie quantifiee sommite sommites fleurie fleuries fleur fleurs feuille feuilles racine racines ecorce
fruit fruits graine graines partie parties aerienne aeriennes souterraine pistil la le les de d du des
""".split())
HERBAL_KEEP = frozenset("allergenique allergeniques pollen pollens mere".split())  # (teinture mère: homeopathic stock)


def herbal_moiety(words: list[str]) -> list[str]:
    """The plant named by a herbal preparation ('millepertuis extrait sec de' → 'millepertuis')."""
    if not any(w in HERBAL_PREPARATIONS for w in words) or any(w in HERBAL_KEEP for w in words):
        return words
    plant = [w for w in words if w not in HERBAL_PREPARATIONS and w not in HERBAL_WORDS]
    return plant or words


@lru_cache(maxsize=32768)
def clean(name: str) -> str:
    """Fold a raw substance name, invert parentheses and drop hydrate/physical-form words."""
    base = fold(invert_parentheses(name))
    if " pour " in f" {base} " and "homeopathique" not in base:
        base = f" {base} ".split(" pour ")[0].strip() or base  # "… pour solution injectable"
    words = herbal_moiety([w for w in base.split() if w not in HYDRATE_WORDS])
    if len(words) > 1 and words[0] == "insuline":
        words = [words[0], *(w for w in words[1:] if w not in INSULIN_WORDS)]
    return " ".join(words)


def salt_candidates(folded: str) -> Iterator[str]:
    """Moiety candidates for a cleaned name, most specific first (the name itself first)."""
    yield folded
    words = folded.split()
    # "chlorhydrate de X", "bromure d ipratropium"
    if len(words) >= 2 and words[0] in SALT_PREFIXES:
        # "chlorhydrate de X", "sulfate sodique de X", "tartrate acide de X"
        j = 1
        while j < len(words) and (words[j] in SALT_SUFFIXES or words[j] in {"de", "d", "du", "acide"}):
            j += 1
        if j < len(words):
            yield " ".join(words[j:])
    # "X calcique", "X tert butylamine", "X hydrochloride"
    # "potassium chlorure", "sodium chlorure" (hospital labels) → "chlorure de potassium"
    if len(words) == 2 and words[0] not in SALT_PREFIXES:
        anion = ENGLISH_ANIONS.get(words[1], words[1])
        if anion in SALT_PREFIXES:
            yield f"{anion} de {words[0]}"
    w = list(words)
    while len(w) >= 2 and w[-1] in SALT_SUFFIXES and w[-2] not in {"de", "d", "du"}:
        w.pop()
        if len(w) >= 2 and w[-1] == "tert":
            w.pop()
        yield " ".join(w)
    # English prefix salts are rare; "X acetate" handled above.


def mineral_key(folded: str) -> str | None:
    """The ion key of a mineral salt ('chlorure de potassium' → 'potassium', 'sulfate ferreux' →
    'fer'), or None when the name is not a simple mineral salt."""
    words = folded.split()
    if not words:
        return None
    if len(words) == 1:
        return MINERAL_IONS.get(words[0]) if words[0] not in {"ferreux", "ferrique"} else None
    ions = [MINERAL_IONS[w] for w in words if w in MINERAL_IONS]
    others = [w for w in words if w not in MINERAL_IONS and w not in {"de", "d", "du"}]
    if len(set(ions)) == 1 and others and all(w in MINERAL_ANIONS for w in others):
        return ions[0]
    return None


# Salt cations of organic acids: "valproate de sodium" → "acide valproïque".
ACID_CATIONS = frozenset("sodium potassium calcium magnesium lithium zinc sodique potassique calcique "
                         "magnesique disodique dipotassique".split())
# What may remain after stripping a salt former without being a moiety ("fumarate de diméthyle").
NOT_MOIETY = frozenset("methyle ethyle dimethyle diethyle propyle butyle sodium natrium".split())


def acid_candidates(folded: str) -> Iterator[str]:
    """'valproate de sodium' / 'mycophenolate sodique' → 'acide valproique' / 'acide mycophenolique'."""
    words = folded.split()
    if len(words) == 2 and words[1] == "acide" and words[0].endswith("ate"):
        yield f"acide {words[0][:-3]}ique"  # "alendronate acide"
    if words and words[-1] in ACID_CATIONS and words[0].endswith("ate") and len(words[0]) > 5:
        rest = [w for w in words[1:-1] if w not in {"de", "d"}]
        if not rest:
            yield f"acide {words[0][:-3]}ique"


def related(salt: str, fraction: str) -> bool:
    """Whether a BDPM therapeutic fraction names the moiety of a salt (shared stem of 5+ letters:
    'clavulanate de potassium' → 'acide clavulanique'), not a mere content expressed in another
    substance ('iohexol' → 'iode', 'lymecycline' → 'tetracycline')."""
    if fraction == salt:
        return True
    sw = [w for w in salt.split() if len(w) >= 5]
    fw = [w for w in fraction.split() if len(w) >= 5]
    return any(a[:5] == b[:5] for a in sw for b in fw)


def moiety(raw: str, vocabulary: Container[str]) -> str:
    """The moiety key of a raw substance name: the first salt-stripped candidate that the
    vocabulary knows as a moiety; else the salt-stripped name when a salt former was found;
    else the cleaned name itself."""
    folded = clean(raw)
    ion = mineral_key(folded)
    if ion:
        return ion
    cands = [c for c in list(salt_candidates(folded))[1:] if c not in MINERAL_IONS]
    for cand in [*cands, *acid_candidates(folded)]:
        if cand in vocabulary and cand not in KEEP_SALT_IONS:
            return cand
    for cand in cands:
        if len(cand) >= 4 and cand not in NOT_MOIETY and cand.split()[-1] not in NOT_MOIETY:
            return cand
    return folded


# English → French DCI spelling transforms, tried when an English name is not in the vocabulary.
_EN_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("cillin", "cilline"), ("mycin", "mycine"), ("oxacin", "oxacine"), ("cycline", "cycline"),
    ("statin", "statine"), ("idine", "idine"), ("in", "ine"), ("en", "ene"), ("ide", "ide"),
    ("ole", "ole"), ("an", "ane"), ("ate", "ate"), ("one", "one"), ("il", "il"), ("ine", "ine"),
    ("am", "am"), ("ol", "ol"), ("yl", "yle"), ("um", "um"), ("ir", "ir"), ("ab", "ab"),
)


def english_variants(word: str) -> Iterator[str]:
    """French spellings an English INN may take ('simvastatin' → 'simvastatine', 'cyclosporine'
    → 'ciclosporine', 'naproxen' → 'naproxene')."""
    seen: set[str] = set()
    bases = [word]
    if "y" in word:
        bases.append(word.replace("y", "i"))
    if "ph" in word:
        bases.append(word.replace("ph", "f"))
    if word.endswith("e"):
        bases.append(word[:-1])
    for base in bases:
        for cand in (base, *(base[: -len(en)] + fr for en, fr in _EN_SUFFIXES if base.endswith(en))):
            if cand not in seen:
                seen.add(cand)
                yield cand
        if base + "e" not in seen:
            seen.add(base + "e")
            yield base + "e"
