"""The compiled drug index: BDPM snapshot + substance tables, built once and cached by checksum.

Obtain it with ``refs.get("bdpm")`` (``refs.get("substances")`` returns the same object). API:

Specialties and presentations
    ``idx.specialty(cis) -> Specialty | None`` — ``cis, name, form, routes, marketed, amm_status,
    components`` (``Component``: ``key, name, code, strength, value, unit, per, element``),
    ``substance_keys``, ``generic_group``, ``generic_type`` (0 princeps, 1 générique,
    2 complémentarité posologique, 4 substituable), ``atc``, ``conditions`` (CIS_CPD), ``brand``,
    ``holders``, ``enhanced_monitoring``.
    ``idx.presentations(cis) -> list[Presentation]`` and ``idx.presentation(cip) -> Presentation |
    None`` (CIP13 or CIP7) — ``cip7, cip13, cis, label, units`` (units per pack parsed from the
    label, None when not parseable), ``reimbursement_rate`` (percent, None when not reimbursed),
    ``price`` (EUR, without dispensing fees), ``price_with_fees``, ``marketed``, ``shortage``
    (``Shortage(status_code, status, start, updated, back, url)`` from CIS_CIP_Dispo_Spec, or None).
    ``idx.prescribing_conditions(cis) -> tuple[str, ...]``.
Generic groups
    ``idx.generic_group(group_id) -> GenericGroup | None`` — ``id, label, members`` (tuples
    ``(cis, type, sort)``); ``idx.group_of(cis) -> str | None``.
    ``idx.specialties_with(keys: frozenset[str]) -> list[str]``: CIS whose substances are exactly
    ``keys``.
Substances (the model every rule compares on)
    ``idx.substance_key(name) -> str | None``: any spelling (salt, hydrate, English INN, synonym,
    thesaurus style "POTASSIUM (CHLORURE DE)") → moiety key, or None when unknown.
    ``idx.moiety_key(name) -> str``: same, but an unknown name gets its lexical moiety key
    instead of None (for referentials naming substances BDPM lacks).
    ``idx.substance_keys(name) -> tuple[str, ...]``: several keys for an association name.
    ``idx.substance(key) -> Substance | None`` — ``key, name`` (French DCI as BDPM spells it,
    accents kept: "paracétamol"), ``english`` (English/USAN names), ``atc`` (level-5 codes: BDPM
    CIS_MITM of single-substance products, plus ``referentials/substances/atc.tsv``),
    ``bdpm_codes``, ``rxnorm`` (ingredient CUIs), ``synonyms``.
    ``idx.substances_with_atc(prefix) -> set[str]``; ``idx.keys_for_rxnorm(cui)``;
    ``idx.keys_for_atc(code)``; ``idx.display_name(key)``; ``idx.edition`` (BDPM edition).
Combinations
    ``idx.combination_atc(keys, cis=None) -> tuple[str, ...]``: the ATC code of a product of several
    substances as a whole ("candesartan + hydrochlorothiazide" → C09DA06), never a component's code:
    the specialty's own CIS_MITM code, else the one code every BDPM specialty of the same substances
    (and, for a specialty, the same routes) carries in CIS_MITM; empty when BDPM gives none or
    several (see :attr:`checker.model.MedicationIdentity.product_atc`).
    ``idx.keys_for_combination_atc(code) -> tuple[str, ...]``: the reverse, when one set of
    substances holds the code in BDPM.

Keys: mineral salts fold to the ion the thesaurus names ("chlorure de potassium" → "potassium",
"sulfate ferreux" → "fer", "carbonate de lithium" → "lithium"), except sodium salts, which keep
their name ("chlorure de sodium" ≠ "bicarbonate de sodium"); organic salts, esters used as
prodrug carriers (etexilate, cilexetil…) and hydrates fold to the moiety; spellings differing only
by spaces or hyphens are one key ("pseudo-éphédrine" = "pseudoephedrine").
"""

from __future__ import annotations

import itertools
import pickle
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple
from pathlib import Path

from checker.drugs import names as N
from checker.drugs.bdpm import parse_price
from checker.outputs import write_atomic
from checker.text import fold

INDEX_FORMAT = 23  # bump when the compiled structure or its content rules change


class Component(NamedTuple):
    """One active substance of a specialty, with its strength as written in BDPM."""

    key: str
    name: str  # BDPM substance denomination (SA line)
    code: str  # BDPM substance code
    strength: str  # "1,00 mg"
    value: float | None  # 1.0
    unit: str  # "mg"
    per: str  # "un comprimé"
    element: str  # "comprimé"


class Shortage(NamedTuple):
    status_code: int  # 1 rupture, 2 tension, 3 arrêt de commercialisation, 4 remise à disposition
    status: str
    start: str
    updated: str
    back: str
    url: str


class Presentation(NamedTuple):
    cip7: str
    cip13: str
    cis: str
    label: str
    units: int | None
    reimbursement_rate: int | None
    price: float | None
    price_with_fees: float | None
    marketed: bool
    admin_status: str
    shortage: Shortage | None = None


class Specialty(NamedTuple):
    cis: str
    name: str
    form: str
    routes: tuple[str, ...]
    marketed: bool
    amm_status: str
    components: tuple[Component, ...]
    generic_group: str | None
    generic_type: int | None
    atc: tuple[str, ...]
    conditions: tuple[str, ...]
    brand: str  # folded name before the strength ("doliprane", "amlodipine biogaran")
    holders: str
    enhanced_monitoring: bool
    shortage: Shortage | None = None

    @property
    def substance_keys(self) -> frozenset[str]:
        return frozenset(c.key for c in self.components)


class GenericGroup(NamedTuple):
    id: str
    label: str
    members: tuple[tuple[str, int, int], ...]  # (cis, type, sort order)


class Substance(NamedTuple):
    key: str
    name: str
    english: tuple[str, ...] = ()
    atc: tuple[str, ...] = ()
    bdpm_codes: tuple[str, ...] = ()
    rxnorm: tuple[str, ...] = ()
    synonyms: tuple[str, ...] = ()


@dataclass(slots=True)
class DrugIndex:
    """Everything identification and the drug rules need, as plain dicts (pickled in the cache)."""

    edition: str = ""
    specialties: dict[str, Specialty] = field(default_factory=dict)
    by_cip: dict[str, Presentation] = field(default_factory=dict)  # CIP13 and CIP7
    pres_by_cis: dict[str, tuple[str, ...]] = field(default_factory=dict)  # CIS → CIP13s
    groups: dict[str, GenericGroup] = field(default_factory=dict)
    substances: dict[str, Substance] = field(default_factory=dict)
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)  # folded spelling → keys
    brands: dict[str, tuple[str, ...]] = field(default_factory=dict)  # folded brand → CIS
    foreign_brands: dict[str, tuple[str, ...]] = field(default_factory=dict)  # brand → keys
    by_keys: dict[frozenset[str], tuple[str, ...]] = field(default_factory=dict)
    atc_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    combination_codes: dict[tuple[frozenset[str], tuple[str, ...] | None], tuple[str, ...]] = field(
        default_factory=dict)  # (substances, routes or None for any) → the combination's own ATC
    combination_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)  # combination ATC → substances
    rxnorm_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
    code_keys: dict[str, str] = field(default_factory=dict)  # BDPM substance code → key
    vocabulary: tuple[str, ...] = ()  # every name and brand, for fuzzy matching
    compact: dict[str, tuple[str, ...]] = field(default_factory=dict)  # name without spaces → keys
    words: frozenset[str] = frozenset()  # every word of a specialty name or substance name (folded)

    # -- specialties / presentations ------------------------------------------------------------
    def specialty(self, cis: str) -> Specialty | None:
        return self.specialties.get(cis)

    def presentations(self, cis: str) -> list[Presentation]:
        return [self.by_cip[c] for c in self.pres_by_cis.get(cis, ())]

    def presentation(self, cip: str) -> Presentation | None:
        return self.by_cip.get(cip.strip())

    def prescribing_conditions(self, cis: str) -> tuple[str, ...]:
        s = self.specialties.get(cis)
        return s.conditions if s else ()

    def generic_group(self, group_id: str) -> GenericGroup | None:
        return self.groups.get(group_id)

    def group_of(self, cis: str) -> str | None:
        s = self.specialties.get(cis)
        return s.generic_group if s else None

    def specialties_with(self, keys: Iterable[str]) -> list[str]:
        return list(self.by_keys.get(frozenset(keys), ()))

    # -- substances -----------------------------------------------------------------------------
    def substance(self, key: str) -> Substance | None:
        return self.substances.get(key)

    def substance_key(self, name: str) -> str | None:
        """Moiety key of any substance spelling, or None if unknown (single substance only)."""
        keys = self.substance_keys(name)
        return keys[0] if len(keys) == 1 else None

    def moiety_key(self, name: str) -> str:
        """Like :meth:`substance_key` but never None: an unknown name gets its lexical moiety key
        (folded, parentheses inverted, hydrate and salt words dropped), so that two referentials
        naming a substance absent from BDPM still agree."""
        known = self.substance_key(name)
        if known:
            return known
        vocab = self.names
        return N.moiety(name, vocab)

    def substance_keys(self, name: str) -> tuple[str, ...]:
        """Keys of a name (several for an association name such as 'co-amoxiclav')."""
        if not name or not name.strip():
            return ()
        folded = fold(name)
        hit = self.names.get(folded) or self.compact.get(folded.replace(" ", ""))
        if hit:
            return hit
        cleaned = N.clean(name)
        for cand in (cleaned, N.mineral_key(cleaned) or "", *N.salt_candidates(cleaned),
                     *N.acid_candidates(cleaned)):
            if cand and cand in self.names:
                return self.names[cand]
        # English INN spelling → French DCI ("simvastatin" → "simvastatine", "epoetin alfa").
        words = cleaned.split()
        for cand in N.salt_candidates(cleaned):
            ws = cand.split()
            if not ws or len(ws) > 3:
                continue
            options = [list(N.english_variants(w)) if len(w) >= 4 else [w] for w in ws]
            for combo in itertools.product(*options):
                full = " ".join(combo)
                if full in self.names:
                    return self.names[full]
        if len(words) == 2 and words[1] in {"acid", "acide"}:
            for v in N.english_variants(words[0]):
                stem = v[:-2] + "ique" if v.endswith("ic") else v
                if f"acide {stem}" in self.names:
                    return self.names[f"acide {stem}"]
        return ()

    def substances_with_atc(self, prefix: str) -> set[str]:
        p = prefix.strip().upper()
        return {k for code, keys in self.atc_keys.items() if code.startswith(p) for k in keys}

    def keys_for_atc(self, code: str) -> tuple[str, ...]:
        return self.atc_keys.get(code.strip().upper(), ())

    def combination_atc(self, keys: Iterable[str], cis: str | None = None) -> tuple[str, ...]:
        """The ATC code(s) of a product of several substances as a whole (empty for one substance,
        or when BDPM gives no code or disagreeing codes for these substances)."""
        ks = frozenset(keys)
        if len(ks) < 2:
            return ()
        spec = self.specialties.get(cis) if cis else None
        if spec is not None and spec.substance_keys == ks:
            return spec.atc or self.combination_codes.get((ks, spec.routes), ())
        return self.combination_codes.get((ks, None), ())

    def keys_for_combination_atc(self, code: str) -> tuple[str, ...]:
        """The substances of a combination's ATC code (C09DA06 → candesartan, hydrochlorothiazide):
        those of every BDPM specialty CIS_MITM gives the code; empty when they differ."""
        return self.combination_keys.get(code.strip().upper(), ())

    def keys_for_rxnorm(self, cui: str) -> tuple[str, ...]:
        return self.rxnorm_keys.get(cui.strip(), ())

    def display_name(self, key: str) -> str:
        s = self.substances.get(key)
        return s.name if s else key


# ---------------------------------------------------------------------------------------------
# Building

_DOSE_UNIT = re.compile(
    r"^(comprim|g[ée]lule|capsule|sachet|suppositoire|ovule|pastille|gomme|lyophilisat|dose|ampoule|"
    r"seringue|stylo|patch|dispositif|timbre|implant|anneau|r[ée]cipient|unit[ée]|film|applicateur|"
    r"pipette|cachet|tablette|[ée]ponge|compresse|pansement|emplâtre|emplatre)"
)
_CONTAINER = re.compile(r"^(flacon|tube|poche|cartouche|bouteille|pilulier|plaquette|blister|[ée]tui|bo[iî]te|"
                        r"bande|inhalateur|conditionnement|pot|bo[iî]tier|r[ée]cipient multidose)")
_COUNTED = re.compile(r"(\d+)\s*(?:\(\s*\d+\s*x\s*\d+\s*\)\s*)?([^\W\d_]+)")


def _segment_units(segment: str) -> tuple[int | None, bool]:
    """(units, counted in dose units) of one part of a presentation label."""
    multiplier = 1
    first_container: int | None = None
    for m in _COUNTED.finditer(segment):
        n, word = int(m.group(1)), m.group(2).lower()
        if _DOSE_UNIT.match(word):
            return multiplier * n, True
        if _CONTAINER.match(word):
            multiplier *= n
            if first_container is None:
                first_container = n
    return first_container, False


def units_per_pack(label: str) -> int | None:
    """Units in one pack from a presentation label: dose units (tablets, capsules, sachets, doses,
    syringes…) times the containers that hold them ('3 plaquette(s) de 28 comprimé(s)' → 84,
    '1 flacon(s) de 28 comprimé(s)' → 28); parts joined by ' - ' that count the same kind of unit
    add up ('3 plaquettes de 24 comprimés - 3 plaquettes de 4 comprimés' → 84); without any dose
    unit, the number of containers ('1 flacon de 100 ml' → 1). None when the label gives no count."""
    text = label.replace("\u00a0", " ").split(" + ")[0]
    parts = [_segment_units(seg) for seg in re.split(r"\s+-\s+", text)]
    counted = [n for n, dose in parts if dose and n is not None]
    if counted and len(counted) == len(parts):
        return sum(counted)
    return parts[0][0]


def parse_strength(text: str) -> tuple[float | None, str]:
    """'1,00 mg' → (1.0, 'mg'); '500 mg/5 ml' → (500.0, 'mg/5 ml'); '' → (None, '')."""
    m = re.match(r"^\s*(\d+(?:[ .]\d{3})*(?:[,.]\d+)?)\s*(.*)$", text)
    if not m:
        return None, text.strip()
    num = m.group(1).replace(" ", "")
    if "," in num:
        num = num.replace(".", "").replace(",", ".")
    try:
        return float(num), fold_unit(m.group(2))
    except ValueError:
        return None, text.strip()


def fold_unit(unit: str) -> str:
    u = fold(unit.replace("µ", "u").replace("μ", "u"))
    u = re.sub(r"\bmicrogrammes?\b|\bmcg\b|\bug\b", "ug", u)
    u = re.sub(r"\bmilligrammes?\b", "mg", u)
    u = re.sub(r"\bgrammes?\b", "g", u)
    u = re.sub(r"\bmillilitres?\b", "ml", u)
    u = re.sub(r"\bunites? internationales?\b|\bu i\b|\biu\b", "ui", u)
    return u


# First words of specialty names that are not brands ("VACCIN …", "SOLUTION …").
GENERIC_WORDS = frozenset("vaccin vaccins solution serum huile extrait teinture poudre granules complexe "
                          "laboratoire gelule comprime sirop creme pommade collyre pastille dispositif "
                          "souche allergenes eau".split())


def brand_of(name: str) -> str:
    """Folded specialty name before its strength or form ('DOLIPRANE 1000 mg, comprimé' → 'doliprane')."""
    head = name.split(",")[0]
    words = []
    for w in fold(head).split():
        if w[0].isdigit():
            break
        words.append(w)
    return " ".join(words)


# Therapeutic fractions that state a content (mg of iodine, of gadolinium), not the substance given:
# the active substance (iobitridol, gadobutrol) is the key, as the thesaurus names it.
CONTENT_FRACTIONS = frozenset({"iode", "gadolinium"})


def thesaurus_aliases(name: str) -> set[str]:
    """Spellings under which the interaction thesaurus meets a substance key it prints as ``name``
    (its own lexical folding: accents, salt and hydrate words, inverted parentheses)."""
    c = N.clean(name)
    out = {fold(name), c, *list(N.salt_candidates(c))[:3]}
    ion = N.mineral_key(c)
    if ion:
        out.add(ion)
    return {a for a in out if a}


def thesaurus_spelling(name: str) -> str:
    """Class members are stored folded: 'sodium nitroprussiate de' is SODIUM (NITROPRUSSIATE DE),
    i.e. 'nitroprussiate de sodium'."""
    words = name.split()
    if len(words) >= 3 and words[-1] in {"de", "d", "du"}:
        return " ".join([*words[1:], words[0]])
    return name


def _resolve(name: str, keys: set[str], compact: dict[str, str]) -> str | None:
    """The key of ``keys`` an outside spelling (thesaurus, RxNorm, English INN) names, or None:
    same letters without spaces or hyphens, else an English → French DCI spelling of each word."""
    c = N.clean(name)
    for cand in (c, *N.salt_candidates(c), *N.acid_candidates(c)):
        if cand in keys:
            return cand
        hit = compact.get(cand.replace(" ", ""))
        if hit:
            return hit
    words = c.split()
    if 0 < len(words) <= 3:
        options = [list(N.english_variants(w)) if len(w) >= 4 else [w] for w in words]
        for combo in itertools.product(*options):
            full = " ".join(combo)
            if full in keys:
                return full
            hit = compact.get(full.replace(" ", ""))
            if hit:
                return hit
    return None


def build(tables: dict, synonyms: list[tuple[str, ...]], rxnorm: list[tuple[str, str]],
          foreign: list[tuple[str, str]], atc_extra: list[tuple[str, str]], edition: str,
          thesaurus_names: Iterable[tuple[str, bool]] = ()) -> DrugIndex:
    """Compile the index from parsed BDPM tables and the substance tables.

    One substance, one key: every thesaurus, RxNorm or English spelling of a BDPM substance is a
    name of the BDPM key ("bupropion" → "bupropione"; the thesaurus loader links each thesaurus
    entry to that key); thesaurus substances BDPM lacks become keys of their own (reachable by name,
    and by ATC through ``atc.tsv``). ``thesaurus_names`` are (printed name, is a class member):
    a member-less entry without ATC code may be a class ("AUTRES …"), never made a key."""
    thesaurus_names = list(thesaurus_names)
    atc_named = {fold(k) for k, _ in atc_extra}
    idx = DrugIndex(edition=edition)
    compo = tables["CIS_COMPO_bdpm"].rows
    # 1. moiety vocabulary: FT names, then every SA name, cleaned.
    ft_of_sa: dict[str, Counter[str]] = defaultdict(Counter)
    by_link: dict[tuple[str, str], list[tuple[str, ...]]] = defaultdict(list)
    for r in compo:
        by_link[(r[0], r[7])].append(r)
    for rows in by_link.values():
        fts = [r for r in rows if r[6] == "FT"]
        sas = [r for r in rows if r[6] == "SA"]
        if len(fts) == 1 and len(sas) == 1:
            ft_of_sa[N.clean(sas[0][3])][N.clean(fts[0][3])] += 1
    vocab: set[str] = set()
    for r in compo:
        c = N.clean(r[3])
        if r[6] == "FT" or not any(w in N.SALT_PREFIXES or w in N.SALT_SUFFIXES for w in c.split()):
            vocab.add(c)
    for _, name in rxnorm:
        vocab.add(N.clean(name))
    for _, key, *_ in synonyms:
        vocab.update(k.strip() for k in key.split("+"))

    alias: dict[str, str] = {}
    for spelling, key, *_ in synonyms:
        f = fold(spelling)
        if "+" not in key and f != key:
            alias[f] = key

    memo: dict[str, str] = {}

    def key_of(raw: str) -> str:
        k = memo.get(raw)
        if k is None:
            k = memo[raw] = key_for(_key_of(raw))
        return k

    def _key_of(raw: str) -> str:
        c = N.clean(raw)
        ion = N.mineral_key(c)
        if ion:
            return ion
        ft = ft_of_sa.get(c)
        if ft:
            target = ft.most_common(1)[0][0]
            if target not in N.KEEP_SALT_IONS and target not in CONTENT_FRACTIONS and N.related(c, target):
                return N.moiety(target, vocab)
        return N.moiety(raw, vocab)

    # One substance, one key within BDPM: spellings filed under one BDPM substance code
    # ("CARBOCYSTÉINE"/"CARBOCISTÉINE", "SOMATOTROPINE"/"SOMATROPINE") take the most used one; a
    # key filed under several codes ("sodium") is never folded this way.
    keys_by_code: dict[str, Counter[str]] = defaultdict(Counter)
    for r in compo:
        if r[6] == "SA" and r[2]:
            keys_by_code[r[2]][_key_of(r[3])] += 1
    codes_of_key = Counter(k for counts in keys_by_code.values() for k in counts)
    decided = set(alias) | set(alias.values())  # the synonyms table decides for these
    for counts in keys_by_code.values():
        if len(counts) > 1 and not decided & set(counts):
            main = max(counts, key=lambda k: (counts[k], -len(k), k))
            for k in counts:
                if k != main and codes_of_key[k] == 1 and k not in N.MINERAL_IONS.values() \
                        and k not in N.KEEP_SALT_IONS and k not in N.NOT_MOIETY:
                    alias.setdefault(k, main)

    # Keys that differ only by spaces ("pseudo ephedrine" from BDPM's "PSEUDO-ÉPHÉDRINE",
    # "pseudoephedrine" from the thesaurus) are one substance: keep the one with fewest spaces.
    raw_keys = {_key_of(n) for n in {r[3] for r in compo}} | {_key_of(n) for _, n in rxnorm}
    raw_keys |= {k.strip() for _, key, *_ in synonyms for k in key.split("+")}
    by_compact: dict[str, set[str]] = defaultdict(set)
    for k in raw_keys:
        by_compact[alias.get(k, k).replace(" ", "")].add(alias.get(k, k))
    for ks in by_compact.values():
        if len(ks) > 1:
            canon = min(ks, key=lambda k: (k.count(" "), k))
            for k in ks:
                if k != canon:
                    alias.setdefault(k, canon)

    def key_for(k: str) -> str:
        """The key ``k`` stands for, following the aliases."""
        seen = {k}
        while k in alias and alias[k] not in seen:
            k = alias[k]
            seen.add(k)
        return k

    # One substance, one key: a thesaurus spelling the thesaurus' own folding would not meet
    # ("bupropion", "BOTULIQUE (TOXINE)") is a name of the BDPM key; thesaurus substances BDPM lacks
    # (clopamide, isépamicine) get keys of their own.
    known = {key_for(_key_of(n)) for n in {r[3] for r in compo}}
    compact_known = {k.replace(" ", ""): k for k in sorted(known, key=lambda k: (k.count(" "), k))}
    # RxNorm's (English or thesaurus) spellings of BDPM substances: the BDPM key ("bupropion" →
    # "bupropione").
    for _, name in rxnorm:
        k = key_for(_key_of(name))
        if k not in known:
            target = _resolve(name, known, compact_known)
            if target is not None and target != k:
                alias[k] = target
    bdpm_known = set(known)
    known |= {key_for(k) for k in raw_keys}
    thesaurus_only: dict[str, str] = {}  # thesaurus key → printed name, for substances BDPM lacks
    thesaurus_key: dict[str, str] = {}  # printed name → key
    for printed, member in sorted(set(thesaurus_names)):
        printed = thesaurus_spelling(printed)
        tkey = fold(printed)
        lex = thesaurus_aliases(printed)
        if lex & known:
            thesaurus_key[printed] = min(lex & known, key=lambda k: (k not in bdpm_known, k != N.clean(printed), k))
            continue  # the thesaurus meets the BDPM key as it is
        syn_key = alias.get(tkey) or alias.get(N.clean(printed))
        target = key_for(syn_key) if syn_key else _resolve(printed, known, compact_known)
        if target is not None:
            if target != tkey:
                alias.setdefault(tkey, target)
            thesaurus_key[printed] = target
        elif member or tkey in atc_named:
            thesaurus_only[tkey] = printed
            thesaurus_key[printed] = tkey
    memo.clear()

    names: dict[str, set[str]] = defaultdict(set)
    subs: dict[str, Substance] = {}
    display: dict[str, Counter[str]] = defaultdict(Counter)
    codes: dict[str, set[str]] = defaultdict(set)

    def add_name(spelling: str, keys: Iterable[str]) -> None:
        f = fold(spelling)
        if f and not all(w in N.FORM_ONLY_WORDS for w in f.split()):
            names[f].update(keys)

    # 2. specialties' components (one per SA/FT link: the FT when present, it is the moiety).
    comps: dict[str, list[Component]] = defaultdict(list)
    for (cis, _link), rows in sorted(by_link.items()):
        fts = [r for r in rows if r[6] == "FT"]
        sas = [r for r in rows if r[6] == "SA"]
        for r in sas:
            k = key_of(r[3])
            add_name(r[3], [k])
            add_name(N.clean(r[3]), [k])
            codes[k].add(r[2])
            if r[2]:
                idx.code_keys.setdefault(r[2], k)
            _display(display, k, r[3], 0)
        # one component per therapeutic fraction (a complex such as sacubitril-valsartan has two),
        # else per active substance
        if len(fts) == 1 and sas and N.clean(fts[0][3]) in CONTENT_FRACTIONS:
            fts = []  # "IODE" of an iodinated contrast medium: the substance is the SA (iobitridol)
        for chosen in (fts or sas[:1] or rows[:1]):
            k = key_of(chosen[3])
            if fts:
                add_name(chosen[3], [k])
                add_name(N.clean(chosen[3]), [k])
            _display(display, k, chosen[3], 1)
            value, unit = parse_strength(chosen[4])
            if value is None and fts and sas:
                value, unit = parse_strength(sas[0][4])
            comp = Component(k, chosen[3], chosen[2], chosen[4], value, unit, chosen[5], chosen[1])
            if all(x.key != k for x in comps[cis]):
                comps[cis].append(comp)
    for k in list(display):
        add_name(k, [k])  # (form-only keys such as a bare "solution" stay out of the name index)
    # 3. other tables
    atc_by_cis: dict[str, list[str]] = defaultdict(list)
    for r in tables["CIS_MITM"].rows:
        if r[1] not in atc_by_cis[r[0]]:
            atc_by_cis[r[0]].append(r[1].upper())
    conds: dict[str, list[str]] = defaultdict(list)
    for r in tables["CIS_CPD_bdpm"].rows:
        conds[r[0]].append(r[1])
    group_rows: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    for r in tables["CIS_GENER_bdpm"].rows:
        group_rows[r[0]].append(r)
    group_of: dict[str, tuple[str, int]] = {}
    for gid, rows in group_rows.items():
        members = tuple(sorted((r[2], int(r[3]), int(r[4]) if r[4].isdigit() else 0) for r in rows))
        idx.groups[gid] = GenericGroup(gid, rows[0][1], members)
        for cis, typ, _ in members:
            group_of[cis] = (gid, typ)
    shortages: dict[str, Shortage] = {}
    for r in sorted(tables["CIS_CIP_Dispo_Spec"].rows, key=lambda r: (r[0], r[1], r[5][6:] + r[5][3:5] + r[5][:2])):
        s = Shortage(int(r[2]), r[3], r[4], r[5], r[6], r[7])
        shortages[r[1] or r[0]] = s  # latest update wins
    for r in tables["CIS_bdpm"].rows:
        cis = r[0]
        g = group_of.get(cis)
        spec = Specialty(
            cis=cis, name=r[1], form=r[2], routes=tuple(x.strip() for x in r[3].split(";") if x.strip()),
            marketed=r[6] == "Commercialisée", amm_status=r[4], components=tuple(comps.get(cis, ())),
            generic_group=g[0] if g else None, generic_type=g[1] if g else None,
            atc=tuple(atc_by_cis.get(cis, ())), conditions=tuple(conds.get(cis, ())), brand=brand_of(r[1]),
            holders=r[10].strip(), enhanced_monitoring=r[11].lower() == "oui", shortage=shortages.get(cis),
        )
        idx.specialties[cis] = spec
    pres_by_cis: dict[str, list[str]] = defaultdict(list)
    for r in tables["CIS_CIP_bdpm"].rows:
        rate = re.match(r"\s*(\d+)", r[8])
        p = Presentation(
            cip7=r[1], cip13=r[6], cis=r[0], label=r[2], units=units_per_pack(r[2]),
            reimbursement_rate=int(rate.group(1)) if rate else None,
            price=parse_price(r[9]) if r[9] else None, price_with_fees=parse_price(r[10]) if r[10] else None,
            marketed=r[3] == "Présentation active" and r[4] == "Déclaration de commercialisation",
            admin_status=r[3], shortage=shortages.get(r[6]) or shortages.get(r[0]),
        )
        idx.by_cip[r[6]] = p
        idx.by_cip.setdefault(r[1], p)
        pres_by_cis[r[0]].append(r[6])
    idx.pres_by_cis = {k: tuple(sorted(v)) for k, v in pres_by_cis.items()}
    # 4. substance ATC: single-substance specialties' MITM codes.
    atc_sets: dict[str, set[str]] = defaultdict(set)
    for spec in idx.specialties.values():
        if len(spec.components) == 1 and spec.atc:
            atc_sets[spec.components[0].key].update(a for a in spec.atc if len(a) == 7)
    for key, code in atc_extra:
        atc_sets[key_for(fold(key))].add(code.upper())
    idx.combination_codes = _combination_codes(idx.specialties.values())
    keysets: dict[str, set[frozenset[str]]] = defaultdict(set)
    for spec in idx.specialties.values():
        if len(spec.substance_keys) > 1:
            for code in spec.atc:
                keysets[code].add(spec.substance_keys)
    idx.combination_keys = {code: tuple(sorted(next(iter(ks)))) for code, ks in keysets.items() if len(ks) == 1}
    # 5. substance tables
    rx: dict[str, set[str]] = defaultdict(set)
    for cui, name in rxnorm:
        k = key_of(name)
        rx[k].add(cui)
        add_name(name, [k])
        idx.rxnorm_keys.setdefault(cui, (k,))
        _display(display, k, name, 0)
    english: dict[str, set[str]] = defaultdict(set)
    syn: dict[str, set[str]] = defaultdict(set)
    for printed, key in thesaurus_key.items():
        add_name(printed, [key_for(key)])
        add_name(N.clean(printed), [key_for(key)])
        _display(display, key_for(key), printed if key in thesaurus_only else key, 0)
    for spelling, key, *rest in synonyms:
        keys = [key_for(k.strip()) for k in key.split("+")]
        add_name(spelling, keys)
        for k in keys:
            display[k][k] += 0
        if len(keys) == 1:
            (english if rest and rest[0] == "en" else syn)[keys[0]].add(spelling)
    for brand, key in foreign:
        brand_keys = tuple(key_for(k.strip()) for k in key.split("+"))
        idx.foreign_brands[fold(brand)] = brand_keys
    for k, spellings in display.items():
        named = {sp: n for sp, n in spellings.items() if fold(sp) == k}
        best = max(named.items(), key=lambda kv: (kv[1], kv[0] != k, kv[0]))[0] if named else k
        subs[k] = Substance(
            key=k, name=best, atc=tuple(sorted(atc_sets.get(k, ()))),
            bdpm_codes=tuple(sorted(c for c in codes.get(k, ()) if c)), rxnorm=tuple(sorted(rx.get(k, ()))),
            synonyms=tuple(sorted(syn.get(k, ()))), english=tuple(sorted(english.get(k, ()))),
        )
    idx.substances = subs
    idx.names = {n: tuple(sorted(ks)) for n, ks in names.items()}
    compact: dict[str, set[str]] = defaultdict(set)
    for n, name_keys in idx.names.items():
        compact[n.replace(" ", "")].update(name_keys)
    # "pseudoephedrine" (thesaurus) = "pseudo-éphédrine" (BDPM); only unambiguous spellings
    idx.compact = {c: tuple(sorted(ks)) for c, ks in compact.items() if len(ks) == 1}
    atck: dict[str, set[str]] = defaultdict(set)
    for k, sub in subs.items():
        for a in sub.atc:
            atck[a].add(k)
    idx.atc_keys = {a: tuple(sorted(ks)) for a, ks in atck.items()}
    # 6. brands and exact-substance-set lookup
    brands: dict[str, list[str]] = defaultdict(list)
    by_keys: dict[frozenset[str], list[str]] = defaultdict(list)
    substance_words = {w for k in subs for w in k.split()}
    for cis, spec in sorted(idx.specialties.items()):
        if spec.brand:
            brands[spec.brand].append(cis)
            first = spec.brand.split()[0]
            # "DOLIPRANE VITAMINE C" is also reachable as "doliprane"; not so generic words ("alfa")
            if len(first) >= 5 and first != spec.brand and first not in substance_words \
                    and first not in GENERIC_WORDS:
                brands.setdefault(first, [])
                brands[first].append(cis)
        if spec.components:
            by_keys[spec.substance_keys].append(cis)
    idx.brands = {b: tuple(v) for b, v in brands.items()}
    idx.by_keys = {k: tuple(v) for k, v in by_keys.items()}
    idx.vocabulary = tuple(sorted(set(idx.names) | set(idx.brands) | set(idx.foreign_brands)))
    idx.words = frozenset(w for text in (*(s.name for s in idx.specialties.values()), *idx.names)
                          for w in fold(text).split())
    return idx


def _combination_codes(specialties: Iterable[Specialty]
                       ) -> dict[tuple[frozenset[str], tuple[str, ...] | None], tuple[str, ...]]:
    """ATC codes of multi-substance products as a whole, learnt from the CIS_MITM codes of the
    specialties of the same substances (with the same routes, or with any routes): kept only where
    every coded specialty agrees, so that a code is never guessed between two candidates."""
    seen: dict[tuple[frozenset[str], tuple[str, ...] | None], set[tuple[str, ...]]] = defaultdict(set)
    for spec in specialties:
        if len(spec.substance_keys) > 1 and spec.atc:
            codes = tuple(sorted(spec.atc))
            seen[(spec.substance_keys, spec.routes)].add(codes)
            seen[(spec.substance_keys, None)].add(codes)
    return {key: next(iter(codes)) for key, codes in seen.items() if len(codes) == 1}


def _display(display: dict[str, Counter[str]], key: str, raw: str, weight: int) -> None:
    """Record a display spelling of ``key`` ("paracétamol") when a raw name is the moiety itself."""
    spelled = " ".join(N.invert_parentheses(raw).lower().split())
    if fold(spelled) == key:
        display[key][spelled] += weight
    else:
        display[key][key] += 0


def save(idx: DrugIndex, path: Path) -> None:
    write_atomic(path, pickle.dumps((INDEX_FORMAT, idx), protocol=pickle.HIGHEST_PROTOCOL))


def load(path: Path) -> DrugIndex | None:
    import gc

    enabled = gc.isenabled()
    gc.disable()  # ~100k small objects: the cyclic collector would run many times for nothing
    try:
        fmt, idx = pickle.loads(path.read_bytes())
    except Exception:  # noqa: BLE001 — a stale or corrupt cache is simply rebuilt
        return None
    finally:
        if enabled:
            gc.enable()
    return idx if fmt == INDEX_FORMAT and isinstance(idx, DrugIndex) else None
