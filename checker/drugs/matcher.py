"""Identification of a prescription line: codes first, then text (exact, then fuzzy).

Order of trust: CIP13/CIP7 → CIS → UCD (no UCD table in BDPM: its display text is used) → ATC →
RxNorm ingredient → SNOMED CT (display text) → free text. Confidence scale: a product code 1.0;
an RxNorm ingredient 0.97; an exact text match 0.95 (0.9 when candidates disagree); an ATC level-5
code 0.9; fuzzy text 0.5–0.95 depending on the similarity score and on how far the runner-up lies.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from rapidfuzz import fuzz, process
from rapidfuzz.distance import OSA, Levenshtein

from checker.drugs.index import DrugIndex, Specialty
from checker.model import Coding, Concept, Ingredient, MedicationIdentity, MedicationOrder, Quantity, SubstanceMatch

SYS_CIS = "http://data.esante.gouv.fr/ansm/medicament/codeCIS"
SYS_CIP13 = "http://data.esante.gouv.fr/ansm/medicament/codeCIP13"
SYS_UCD = "http://data.esante.gouv.fr/ansm/medicament/UCD"
SYS_ATC = "http://www.whocc.no/atc"
SYS_RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SYS_SNOMED = "http://snomed.info/sct"

_REFERENCE = re.compile(r"^(#\S*|urn:\S+|[A-Z][A-Za-z]+/[A-Za-z0-9\-.]+|https?://\S+)$")
_ATC5 = re.compile(r"^[A-Z]\d\d[A-Z][A-Z]\d\d$")

ABBREVIATIONS = {
    "cp": "comprime", "cpr": "comprime", "cps": "comprime", "comp": "comprime", "cpe": "comprime",
    "gelu": "gelule", "gell": "gelule", "caps": "capsule", "sol": "solution",
    "buv": "buvable", "inj": "injectable", "susp": "suspension", "sach": "sachet", "amp": "ampoule",
    "suppo": "suppositoire", "supp": "suppositoire", "pdre": "poudre", "disp": "dispersible",
    "orodisp": "orodispersible", "eff": "effervescent", "pellic": "pellicule", "fl": "flacon",
    "mcg": "ug", "microgrammes": "ug", "microgramme": "ug", "milligrammes": "mg", "milligramme": "mg",
    "grammes": "g", "gramme": "g", "gr": "g", "millilitres": "ml", "iu": "ui", "tab": "tablet",
    "tabs": "tablet", "cap": "capsule", "amox": "amoxicilline",
}
UNITS = {"mg", "g", "ug", "ml", "ui", "l", "mmol", "meq", "u", "ug/ml", "mg/ml", "%", "pct"}
STOPWORDS = frozenset("""
oral tablet tablets capsule capsules solution injection injectable mg ml g ug ui hr day days pack extended
release chewable topical cream metered dose inhaler actuat auto injector prefilled syringe system
transdermal vaginal ring intrauterine drug implant mucosal spray suspension comprime comprimes gelule
gelules pellicule pellicules secable dispersible orodispersible effervescent buvable sachet sachets poudre
pour de d a et en le la les du des boite flacon per x par jour jours fois matin soir midi lp sr xr er
film enrobe gastro resistant sublingual collyre creme pommade gel sirop goutte gouttes ampoule ampoules
suppositoire suppositoires patch dispositif unidose unidoses voie orale iv im sc and with nasal ophthalmic
otic rectal suppository lotion ointment shampoo powder granules granule kit mmol meq l u delayed
chewing gum lozenge pastille vial cartridge pen hour hours week weeks or ou au aux avec sans une un
microgramme microgrammes inhalation inhalee buccal bucco dispersible usp nf bp jet modified coated disintegrating
""".split())
FORM_START = frozenset("comprime comprimes gelule gelules capsule capsules poudre solution suspension sirop "
                       "creme pommade gel collyre granules granule pastille pastilles lyophilisat emulsion "
                       "dispositif film gomme emplatre mousse shampooing lotion ovule suppositoire spray "
                       "liquide sachet sachets solute microgranules comprime".split())
COMMON_WORDS = frozenset("daily ultra drill any art magne stimu cyclo glyco dermo regular human enfant adulte "
                         "nourrisson junior forte fort rapide retard conseil".split())
NOT_STRENGTH = frozenset("day days hr h jours jour j fois x actuat comprime comprimes gelule gelules sachet "
                         "sachets ampoule ampoules dose doses ch dh k".split())
FORM_WORDS = {
    "comprime": "comprim", "tablet": "comprim", "gelule": "gélule|capsule", "capsule": "gélule|capsule",
    "buvable": "buvable", "sirop": "sirop", "injectable": "inject", "injection": "inject",
    "suppositoire": "suppositoire", "creme": "crème", "cream": "crème", "pommade": "pommade",
    "collyre": "collyre", "sachet": "sachet", "patch": "transdermique", "transdermal": "transdermique",
    "effervescent": "effervescent", "orodispersible": "orodispersible", "dispersible": "dispersible",
}


@dataclass
class TextResult:
    keys: list[str] = field(default_factory=list)
    strengths: dict[str, Quantity] = field(default_factory=dict)
    method: str = ""
    confidence: float = 0.0
    candidates: tuple[str, ...] = ()  # CIS
    prescribed_as: str = "unknown"
    alternatives: tuple[str, ...] = ()
    note: str = ""


_THOUSANDS_SPACE = re.compile(r"(?<![\w.,])[1-9]\d{0,2}(?: (?:000|500))+(?!\d)")
"""Digits grouped by thousands with (non-breaking, after NFKD) spaces, the French way: one number
("1 000 mg", "100 000 UI", "12 500 UI"). Only groups of 000 or 500, and only after a word boundary,
as such strengths are written: "UMULINE PROFIL 30 100 UI/ml", "MIX25 100" or "D3 500 mg" are two numbers."""
_THOUSANDS_COMMA = re.compile(r"(?<![\w.,])([1-9]\d{0,2}(?:,\d{3})+)(?=\s*(?:MG|MCG|G|UNT|IU|ML)\b)")
"""Digits grouped by thousands with commas before an upper-case unit, the English/RxNorm way ("1,000 MG").
A comma before three digits otherwise stays a decimal comma, as French labels write it ("BETESIL 2,250 mg")."""


def tokenize(text: str) -> list[str]:
    """Normalised tokens: lower case, accents removed, decimal commas as dots, numbers split from
    units ('1000mg' → '1000', 'mg'), abbreviations expanded ('cp' → 'comprime')."""
    t = text.replace("œ", "oe").replace("Œ", "oe").replace("æ", "ae").replace("µ", "u").replace("μ", "u")
    t = unicodedata.normalize("NFKD", t)
    t = "".join(ch for ch in t if not unicodedata.combining(ch))
    t = _THOUSANDS_SPACE.sub(lambda m: m.group(0).replace(" ", ""), t)  # "1 000 mg", "100 000 UI"
    t = _THOUSANDS_COMMA.sub(lambda m: m.group(1).replace(",", ""), t).lower()  # "1,000 MG" (RxNorm style)
    t = re.sub(r"([a-z])-(\d),(\d)\b", r"\1 \2 \3", t)  # chemical locants: "dichloro-2,4 benzylique"
    t = re.sub(r"(\d),(\d)", r"\1.\2", t)
    t = re.sub(r"\bg(5|10|30)\b", r"glucose \1 %", t)  # hospital shorthand G5 = glucose 5 %
    t = re.sub(r"\b(alfa|beta)[ -](\d)([ab])\b", r"\1 \2\3", t)  # interferon alfa-2a, beta-1b
    raw = re.findall(r"[a-z]+\d+(?![\d.])|(?<=alfa )\d[ab]\b|(?<=beta )\d[ab]\b|\d+(?:\.\d+)?|[a-z]+|[/+%,]", t)
    return [ABBREVIATIONS.get(w, w) for w in raw]


def _num(tok: str) -> float | None:
    try:
        return float(tok)
    except ValueError:
        return None


def parse_strengths(tokens: list[str]) -> list[Quantity]:
    """Strength values in reading order ('37.5/325 mg' → 37.5 mg, 325 mg; '1 g' → 1 g)."""
    out: list[Quantity] = []
    i = 0
    while i < len(tokens):
        v = _num(tokens[i])
        if v is None:
            i += 1
            continue
        group = [v]
        j = i + 1
        while j + 1 < len(tokens) and tokens[j] == "/" and _num(tokens[j + 1]) is not None:
            group.append(float(tokens[j + 1]))
            j += 2
        unit = tokens[j] if j < len(tokens) and tokens[j] in UNITS else ""
        if unit == "pct":
            unit = "%"
        nxt = tokens[j] if j < len(tokens) else ""
        if unit or len(group) > 1:
            out.extend(Quantity(g, unit) for g in group if g > 0)  # a zero strength is a misreading
        elif v > 0 and nxt not in NOT_STRENGTH and (i == 0 or tokens[i - 1] not in {"x", "/"}):
            out.append(Quantity(v, ""))  # bare number after a name: a strength in the product's unit
        i = j + 1 if unit else j
    return out


def _to_mg(q: Quantity) -> tuple[float, str]:
    u = q.unit.split("/")[0].strip()
    if u == "g":
        return q.value * 1000, "mg"
    if u == "ug":
        return q.value / 1000, "mg"
    return q.value, u or "mg"


def _in_text_order(keys: tuple[str, ...], phrase: str) -> tuple[str, ...]:
    """The substances one phrase names, in the order the phrase writes them ("amoxicilline acide
    clavulanique 1 g/125 mg": the strengths follow that order); unseen names keep their place, last."""
    if len(keys) < 2:
        return keys
    return tuple(sorted(keys, key=lambda k: phrase.find(k) if k in phrase else len(phrase)))


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 0.011 * max(abs(a), abs(b), 1e-9)


class Identifier:
    """Identification against one :class:`DrugIndex` (stateless apart from the index)."""

    def __init__(self, idx: DrugIndex) -> None:
        self.idx = idx
        self._max_phrase = 6
        self._substance_names = tuple(n for n in idx.names if " " not in n and len(n) >= 5)
        self._words = tuple(sorted({w for n in idx.names for w in n.split() if len(w) >= 4 and w.isalpha()}))
        self._all_words = tuple(sorted(w for w in idx.words if len(w) >= 4 and w.isalpha()))
        self._near_cache: dict[str, tuple[str, ...]] = {}
        self._brand_heads: dict[str, set[frozenset[str]]] = {}  # first word of a longer brand → its substances
        for b, cis in idx.brands.items():
            if " " in b and cis and (spec := idx.specialties.get(cis[0])) is not None:
                self._brand_heads.setdefault(b.split()[0], set()).add(spec.substance_keys)

    # -- text ---------------------------------------------------------------------------------
    def scan(self, tokens: list[str]) -> tuple[list[tuple[int, tuple[str, ...]]], list[tuple[int, str]],
                                                list[tuple[int, tuple[str, ...]]], set[int]]:
        """Exact phrases: substance hits, brand hits, foreign-brand hits, covered token positions."""
        idx = self.idx
        subs: list[tuple[int, tuple[str, ...]]] = []
        brands: list[tuple[int, str]] = []
        foreign: list[tuple[int, tuple[str, ...]]] = []
        covered: set[int] = set()
        i = 0
        while i < len(tokens):
            if tokens[i] in {"/", "+", "%", ","} or _num(tokens[i]) is not None:
                i += 1
                continue
            found = False
            for n in range(min(self._max_phrase, len(tokens) - i), 0, -1):
                part = tokens[i:i + n]
                if any(p in {"/", "+"} for p in part) or part[-1] == ",":
                    continue
                part = [p for p in part if p != ","]  # "insulin, regular, human"
                phrase = " ".join(part)
                if n > 1 and _num(part[-1]) is not None and phrase not in idx.names \
                        and not re.fullmatch(r"\d{1,2}", part[-1]):
                    continue
                if n == 1 and (phrase in STOPWORDS or len(phrase) < 3):
                    break
                keys = idx.names.get(phrase)
                if phrase in idx.brands and (not keys or len(phrase.split()) > 1 and phrase not in idx.names):
                    brands.append((i, phrase))
                elif keys:
                    subs.append((i, _in_text_order(keys, phrase)))
                elif phrase in idx.foreign_brands:
                    foreign.append((i, idx.foreign_brands[phrase]))
                elif n <= 3 and len(phrase) >= 5 and all(p not in STOPWORDS for p in part):
                    keys = idx.substance_keys(phrase)
                    if not keys:
                        continue
                    subs.append((i, _in_text_order(keys, phrase)))
                else:
                    continue
                covered.update(range(i, i + n))
                i += n
                found = True
                break
            if not found:
                i += 1
        return subs, brands, foreign, covered

    def identify_text(self, text: str) -> TextResult | None:
        tokens = tokenize(text)
        if not tokens:
            return None
        fixed, notes = self._spelling(tokens)
        if fixed is not None:
            # one letter dropped, added or changed in a word no drug name has: read the corrected line
            res = self._identify_tokens(fixed)
            if res is not None and res.keys:
                res.method = "text-fuzzy"
                alone = sum(t.isalpha() for t in fixed) == 1  # one word, nothing else to confirm it
                trusted = all(n[2] for n in notes) and not (alone and any(
                    keys != frozenset(res.keys) for _, w, _ in notes for keys in self._brand_heads.get(w, ())))
                res.confidence = round(min(res.confidence, 0.88 if trusted else 0.8), 3)
                res.note = "; ".join([*(f"'{a}' read as '{b}'" for a, b, _ in notes), *([res.note] if res.note else [])])
                plain = self._identify_tokens(tokens)
                if plain is not None and set(plain.keys) == set(res.keys) and plain.confidence > res.confidence:
                    return plain  # the correction changes nothing read, and the line reads better as written
                return res
        return self._identify_tokens(tokens)

    def _spelling(self, tokens: list[str]) -> tuple[list[str] | None, list[tuple[str, str, bool]]]:
        """Tokens with each unknown word replaced by the one known word of a drug or substance name
        one edit away ("amlodpine" → "amlodipine"; two neighbouring letters swapped count as one edit,
        "amlodipnie"); (None, []) when there is nothing to correct. The
        bool says the correction is unique and the word long enough (≥ 6 letters, or 5 with a
        strength written) to trust; a lone
        corrected word that also opens brand names of other substances is not trusted either."""
        fixed = list(tokens)
        notes: list[tuple[str, str, bool]] = []
        for i, t in enumerate(tokens):
            if len(t) < 5 or not t.isalpha() or t in STOPWORDS or t in ABBREVIATIONS or t in self.idx.words \
                    or t in FORM_WORDS:
                continue
            near = tuple(w for w in self._near_words(t) if _same_first_letter(t, w))
            if not near or self.idx.substance_keys(t):
                continue  # nothing close, or a spelling the substance model reads ("simvastatin")
            fixed[i] = near[0]
            strength_written = any(_num(x) is not None for x in tokens)
            notes.append((t, near[0], len(near) == 1 and (len(t) >= 6 or strength_written)))
        return (fixed, notes) if notes else (None, [])

    def _near_words(self, word: str) -> tuple[str, ...]:
        hit = self._near_cache.get(word)
        if hit is None:
            found = process.extract(word, self._all_words, scorer=OSA.distance, score_cutoff=1, limit=4)
            hit = tuple(sorted(w for w, d, _ in found if d <= 1))
            if len(self._near_cache) > 50_000:
                self._near_cache.clear()
            self._near_cache[word] = hit
        return hit

    def _identify_tokens(self, tokens: list[str]) -> TextResult | None:
        subs, brands, foreign, covered = self.scan(tokens)
        comma = next((i for i, t in enumerate(tokens) if t == "," and i + 1 < len(tokens)
                      and tokens[i + 1] in FORM_START), None)
        if comma is not None:
            # BDPM style "NAME strength, form …": the form and excipients follow the comma
            # ("…, comprimé à croquer édulcoré au sorbitol")
            if any(i < comma for i, _ in [*subs, *brands, *foreign]):
                subs = [(i, k) for i, k in subs if i < comma]
                brands = [(i, b) for i, b in brands if i < comma]
                foreign = [(i, k) for i, k in foreign if i < comma]
                covered = {i for i in covered if i < comma}
        # a brand must open the label, or be a distinctive name further on ("Dafalgan", not "daily")
        brands = [(i, b) for i, b in brands if i == 0 or (len(b) >= 6 and b not in COMMON_WORDS)]
        # a generic named by its DCI ("VALSARTAN TEVA" in "AMLODIPINE/VALSARTAN TEVA") names its substance
        for i, b in brands:
            words = b.split()
            for n in range(len(words), 0, -1):
                dci_keys = self.idx.names.get(" ".join(words[:n]))
                if dci_keys:
                    subs.append((i, dci_keys))
                    break
        if brands and subs:
            # a word of the brand's own product names ("NICOPASS … MENTHE FRAICHEUR") is part of the
            # name, not an extra substance, unless those products contain it
            own_cis = [c for _, b in brands for c in self.idx.brands.get(b, ())]
            own_words = {w for c in own_cis for w in tokenize(self.idx.specialties[c].name)}
            own_keys = {k for c in own_cis for k in self.idx.specialties[c].substance_keys}
            name_words = [(i, ks) for i, ks in subs if tokens[i] in own_words and not set(ks) & own_keys]
            subs = [sub for sub in subs if sub not in name_words]
            covered -= {i for i, _ in name_words}
        strengths = parse_strengths(tokens)
        forms = {FORM_WORDS[t] for t in tokens if t in FORM_WORDS}
        res: TextResult | None = None
        if brands and not subs:
            unread = [t for i, t in enumerate(tokens) if i not in covered and t.isalnum() and not t.isdigit()]
            res = self._from_brands([b for _, b in brands], strengths, forms, unread)
            if res is not None and all(self._dci_named(b) for _, b in brands):
                res.prescribed_as = "dci"  # "AMLODIPINE BIOGARAN": a generic named by its DCI
        elif subs:
            keys: list[str] = []
            for _, ks in sorted(subs):
                for k in ks:
                    if k not in keys:
                        keys.append(k)
            for _, ks in foreign:
                keys.extend(k for k in ks if k not in keys)
            res = TextResult(keys=keys, method="text-exact", confidence=0.95, prescribed_as="dci")
            missing = self._unread_parts(tokens, covered)
            if missing:
                res.confidence = 0.75
                res.note = f"part of the association not identified: {', '.join(missing)}"
            if brands:
                # a DCI-named generic ("amlodipine biogaran") or brand + DCI ("Doliprane paracétamol")
                from_brand = self._from_brands([b for _, b in brands], strengths, forms)
                if from_brand and set(from_brand.keys) >= set(keys):
                    from_brand.prescribed_as = (
                        "dci" if all(self._dci_named(brand) for _, brand in brands) else "brand")
                    res = from_brand
                elif from_brand and from_brand.keys and brands[0][0] == 0:
                    # "Doliprane codéine": the brand's substances plus the named ones, not a known product
                    res.keys = [*from_brand.keys, *(k for k in keys if k not in from_brand.keys)]
                    res.prescribed_as = "brand"
                    res.confidence = 0.8
                    res.note = "brand name and extra substance(s) match no single product"
            self._assign_strengths(res, strengths)
        elif foreign:
            keys = []
            for _, ks in foreign:
                keys.extend(k for k in ks if k not in keys)
            res = TextResult(keys=keys, method="text-exact", confidence=0.93, prescribed_as="brand",
                             note="brand name outside BDPM")
        if res is not None and res.method == "text-exact":
            self._misspelt_components(res, tokens, covered)
        if res is None:
            res = self._fuzzy(tokens, covered, strengths, forms)
        if res is not None and not res.candidates and res.keys:
            self._product_for_keys(res, strengths, forms)
        return res

    def _misspelt_components(self, res: TextResult, tokens: list[str], covered: set[int]) -> None:
        """A word the referential does not know, one or two letters away from a substance name
        ("Irbesartan ydrochlorothiazide"), is that substance: added, with the fuzzy confidence;
        never a component silently dropped. Close to another word of a substance name ("Fsidate de
        sodium"), it keeps the reading below the rules' confidence."""
        for i, t in enumerate(tokens):
            if i in covered or len(t) < 5 or not t.isalpha() or t in STOPWORDS or t in self.idx.words:
                continue
            hit = process.extractOne(t, self._substance_names, scorer=fuzz.ratio, score_cutoff=85)
            if hit is None:
                near = process.extractOne(t, self._words, scorer=fuzz.ratio, score_cutoff=85)
                if near is not None:
                    # a misspelt word of some substance name, not placed: the reading may miss it
                    res.confidence = min(res.confidence, 0.8)
                    res.note = (res.note + "; " if res.note else "") + f"'{t}' unread (close to '{near[0]}')"
                continue
            keys = self.idx.names[hit[0]]
            if len(keys) != 1 or keys[0] in res.keys:
                continue
            res.keys.append(keys[0])
            res.method = "text-fuzzy"
            dist = Levenshtein.distance(t, hit[0])
            conf = 0.88 if dist == 1 and len(t) >= 7 else 0.5 + (hit[1] - 78) / 22 * 0.42
            res.confidence = round(min(res.confidence, conf), 3)
            res.note = (res.note + "; " if res.note else "") + f"'{t}' read as '{hit[0]}' (similarity {hit[1]:.0f}%)"
            res.candidates = ()
            res.strengths = {}

    @staticmethod
    def _unread_parts(tokens: list[str], covered: set[int]) -> list[str]:
        """Parts of an association ('A/B/C', 'A + B') whose words matched nothing."""
        parts: list[list[tuple[int, str]]] = [[]]
        for i, t in enumerate(tokens):
            nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
            # "/" separates substances ("A/B"), not units ("MG/ML") nor strengths ("37.5/325")
            if t == "+" or (t == "/" and nxt.isalpha() and nxt not in UNITS and nxt not in STOPWORDS):
                parts.append([])
            else:
                parts[-1].append((i, t))
        if len(parts) < 2:
            return []
        out = []
        for part in parts:
            words = [(i, t) for i, t in part if t.isalpha() and len(t) >= 4 and t not in STOPWORDS]
            if words and not any(i in covered for i, _ in part):
                out.append(" ".join(t for _, t in words))
        return out

    def _dci_named(self, brand: str) -> bool:
        """True when a specialty name starts with a substance name ("amlodipine biogaran")."""
        words = brand.split()
        return any(" ".join(words[:n]) in self.idx.names for n in range(1, len(words) + 1))

    def _assign_strengths(self, res: TextResult, strengths: list[Quantity]) -> None:
        with_unit = [q for q in strengths if q.unit]
        if with_unit and len(with_unit) == len(res.keys) and not res.strengths:
            res.strengths = dict(zip(res.keys, with_unit))
        elif len(res.candidates) >= 1 and not res.strengths:
            # every remaining candidate product has the same strengths: take them
            comps = {tuple((c.key, c.value, c.unit) for c in self.idx.specialties[x].components)
                     for x in res.candidates if x in self.idx.specialties}
            if len(comps) == 1:
                res.strengths = {k: Quantity(v, u) for k, v, u in next(iter(comps)) if v is not None}

    @staticmethod
    def _has_strengths(spec: Specialty, strengths: list[Quantity]) -> bool:
        """Every strength written (but percentages) is one of the specialty's."""
        have = [(c.value, c.unit.split("/")[0].strip()) for c in spec.components if c.value is not None]
        have_mg = [_to_mg(Quantity(v, u)) for v, u in have]
        return all(
            any(_same(q.value, v) for v, _ in have) if not q.unit
            else any(_same(w[0], h[0]) and w[1] == h[1] for h in have_mg)
            for w, q in ((_to_mg(q), q) for q in strengths if q.unit != "%")
        )

    def _filter(self, cis_list: list[str], strengths: list[Quantity], forms: set[str]) -> list[str]:
        specs = [s for c in cis_list if (s := self.idx.specialties.get(c))]
        if any(q.unit != "%" for q in strengths):
            f = [s for s in specs if self._has_strengths(s, strengths)]
            if f:
                specs = f
        if forms:
            # A stated form that no product has (ketorolac "oral tablet" when France only markets eye
            # drops) means the line is not any of these products: keep the substance, claim no product.
            # ("capsule" is written for hard and soft capsules alike: "gélule|capsule" accepts either)
            specs = [s for s in specs if any(w in s.form.lower() or w in s.name.lower()
                                             for fw in forms for w in fw.split("|"))]
        marketed = [s for s in specs if s.marketed]
        return [s.cis for s in (marketed or specs)]

    def _from_brands(self, brand_phrases: list[str], strengths: list[Quantity], forms: set[str],
                     words: list[str] | tuple[str, ...] = ()) -> TextResult | None:
        """The products of the brands named; ``words`` are the label's other words: those that
        belong to some of the brand's longer names narrow to those ("Orocal D3" is OROCAL VITAMINE
        D3, not OROCAL)."""
        cis_all: list[str] = []
        for b in brand_phrases:
            cis_all.extend(c for c in self.idx.brands.get(b, ()) if c not in cis_all)
        if not cis_all:
            return None
        exact = [c for c in cis_all if self.idx.specialties[c].brand in brand_phrases]
        brand_words = {c: set(self.idx.specialties[c].brand.split()) for c in cis_all} if words else {}
        named = {w for w in words if w not in STOPWORDS and w not in FORM_WORDS and w not in UNITS
                 and any(w in bw for bw in brand_words.values())}
        if named and any(named <= set(tokenize(self.idx.specialties[c].name))
                         and self._has_strengths(self.idx.specialties[c], strengths) for c in exact):
            named = set()  # the brand's own products already say these words ("HUMEX 5 % ADULTES …")
        if named:
            narrowed = [c for c in cis_all if named <= brand_words[c]]
            # only when the longer name also has the strengths written ("Nicopass 1,5 mg menthe" is not
            # NICOPASS 2,5 mg MENTHE FRAICHEUR)
            if narrowed and any(self._has_strengths(self.idx.specialties[c], strengths) for c in narrowed):
                exact = narrowed
        chosen = self._filter(exact or cis_all, strengths, forms)
        if not chosen and forms:
            # a form none of the brand's products has ("Néoral … capsule" of a solution-only list):
            # the brand still names its substances
            chosen = self._filter(exact or cis_all, strengths, set())
        sets = Counter(self.idx.specialties[c].substance_keys for c in chosen if self.idx.specialties[c].components)
        if not sets:
            return None
        given = len(strengths)
        if len(sets) > 1 and given:
            # "CLARADOL 500 mg" vs "CLARADOL 500 mg CAFEINE": one strength written → one substance
            fit = [c for c in chosen if len(self.idx.specialties[c].components) == given]
            if fit:
                chosen = fit
                sets = Counter(self.idx.specialties[c].substance_keys for c in chosen)
        (best, n), *others = sets.most_common()
        res = TextResult(method="text-exact", prescribed_as="brand", candidates=tuple(chosen))
        first = next(c for c in chosen if self.idx.specialties[c].substance_keys == best)
        res.keys = [c.key for c in self.idx.specialties[first].components]
        res.confidence = 0.95 if not others else 0.8
        self._assign_strengths(res, strengths)
        if others:
            res.alternatives = tuple(" + ".join(sorted(k)) for k, _ in others)
            res.note = "brand name covers products with different substances"
        return res

    def _product_for_keys(self, res: TextResult, strengths: list[Quantity], forms: set[str]) -> None:
        cis = self.idx.specialties_with(res.keys)
        if cis:
            res.candidates = tuple(self._filter(cis, strengths, forms)) if (strengths or forms) else ()

    def _fuzzy(self, tokens: list[str], covered: set[int], strengths: list[Quantity], forms: set[str]) -> TextResult | None:
        words = [(i, t) for i, t in enumerate(tokens)
                 if i not in covered and t.isalpha() and len(t) >= 4 and t not in STOPWORDS]
        if not words:
            return None
        queries: list[str] = [t for _, t in words]
        queries += [f"{a} {b}" for (i, a), (j, b) in zip(words, words[1:]) if j == i + 1]
        best: tuple[float, str, str] | None = None  # score, query, match
        runner_up = 0.0
        for q in queries:
            hits = process.extract(q, self.idx.vocabulary, scorer=fuzz.ratio, score_cutoff=78, limit=5)
            for match, score, _ in hits:
                if best is None or score > best[0]:
                    if best is not None and self._meaning(best[2]) != self._meaning(match):
                        runner_up = max(runner_up, best[0])
                    best = (score, q, match)
                elif self._meaning(match) != self._meaning(best[2]):
                    runner_up = max(runner_up, score)
        if best is None:
            return None
        score, query, match = best
        conf = 0.5 + (score - 78) / 22 * 0.42
        if score - runner_up >= 8:
            conf += 0.06
            if len(query) >= 5 and " " not in query and Levenshtein.distance(query, match) == 1 \
                    and _same_first_letter(query, match) \
                    and (match in self.idx.brands and len(query) >= 7 or strengths):
                conf = max(conf, 0.87)  # one letter dropped, added or changed, nothing else close
        if all(w in self.idx.words for w in query.split()):
            # correctly spelt words of some other drug name ("Hypericum perforatum …" is not HYPERIUM)
            conf = min(conf, 0.8)
        conf = round(min(conf, 0.92), 3)
        if match in self.idx.names:
            res = TextResult(keys=list(self.idx.names[match]), prescribed_as="dci")
            if any(keys != frozenset(res.keys) for keys in self._brand_heads.get(match, ())):
                conf = min(conf, 0.8)  # also the first word of brands of other substances
                res.alternatives = ("brand names starting with the same word",)
        elif match in self.idx.foreign_brands:
            res = TextResult(keys=list(self.idx.foreign_brands[match]), prescribed_as="brand")
        else:
            b = self._from_brands([match], strengths, forms)
            if b is None:
                return None
            res = b
        res.method = "text-fuzzy"
        res.confidence = min(conf, res.confidence or conf)
        res.note = f"'{query}' read as '{match}' (similarity {score:.0f}%)"
        if runner_up and score - runner_up < 8:
            res.alternatives = tuple(sorted({*res.alternatives, f"runner-up similarity {runner_up:.0f}%"}))
        self._assign_strengths(res, strengths)
        return res

    def _meaning(self, vocab_entry: str) -> tuple[str, ...]:
        idx = self.idx
        if vocab_entry in idx.names:
            return idx.names[vocab_entry]
        if vocab_entry in idx.foreign_brands:
            return idx.foreign_brands[vocab_entry]
        cis = idx.brands.get(vocab_entry, ())
        if cis:
            s = idx.specialties.get(cis[0])
            if s:
                return tuple(sorted(s.substance_keys))
        return (vocab_entry,)

    # -- codes --------------------------------------------------------------------------------
    def by_code(self, codings: tuple[Coding, ...]) -> MedicationIdentity | None:
        idx = self.idx
        ranked: list[tuple[int, Coding]] = []
        for c in codings:
            code, sys = c.code.strip(), c.system.lower()
            # a bare CIS/CIP13 is recognised whatever the system, unless the system is one whose
            # codes could collide with it (SNOMED CT, RxNorm, LOINC)
            other = any(s in sys for s in ("snomed", "rxnorm", "loinc"))
            if (re.fullmatch(r"34009\d{8}", code) and not other) or "cip13" in sys or ("cip" in sys and len(code) == 7):
                ranked.append((0, c))
            elif "codecis" in sys or sys.endswith("/cis") or (re.fullmatch(r"\d{8}", code) and not other):
                ranked.append((1, c))
            elif "ucd" in sys:
                ranked.append((2, c))
            elif "whocc" in sys or "atc" in sys or _ATC5.match(code):
                ranked.append((3, c))
            elif "rxnorm" in sys:
                ranked.append((4, c))
            elif "snomed" in sys:
                ranked.append((5, c))
        for rank, c in sorted(ranked, key=lambda x: x[0]):
            code = c.code.strip()
            if rank == 0:
                p = idx.presentation(code)
                if p:
                    return self._from_specialty(p.cis, "cip13" if len(code) == 13 else "cip7", cip13=p.cip13)
            elif rank == 1:
                if code in idx.specialties:
                    return self._from_specialty(code, "cis")
            elif rank == 3:
                keys = idx.keys_for_atc(code)
                if len(keys) == 1:
                    return self._identity(list(keys), {}, "atc", 0.9, prescribed_as="code")
                if len(keys) > 1:
                    return self._identity([keys[0]], {}, "atc", 0.6, prescribed_as="code",
                                          alternatives=tuple(keys[1:]), note=f"ATC {code} covers several substances")
            elif rank == 4:
                keys = idx.keys_for_rxnorm(code)
                if keys:
                    return self._identity(list(keys), {}, "rxnorm", 0.97, prescribed_as="code")
        return None

    def _by_combination_code(self, codings: tuple[Coding, ...]) -> MedicationIdentity | None:
        """A line coded with a fixed combination's ATC code (C09DA06) and nothing else that identifies
        it: the substances every BDPM specialty of that code holds (none when they differ)."""
        for c in codings:
            sys = c.system.lower()
            code = c.code.strip().upper()
            if "whocc" in sys or "atc" in sys or _ATC5.match(code):
                keys = self.idx.keys_for_combination_atc(code)
                if keys:
                    return self._identity(list(keys), {}, "atc", 0.9, prescribed_as="code",
                                          note=f"ATC {code}: fixed combination", product_atc=(code,))
        return None

    def _from_specialty(self, cis: str, method: str, cip13: str | None = None) -> MedicationIdentity | None:
        s = self.idx.specialties.get(cis)
        if s is None or not s.components:
            return None
        strengths = {c.key: Quantity(c.value, c.unit) for c in s.components if c.value is not None}
        return self._identity([c.key for c in s.components], strengths, method, 1.0, cis=cis, cip13=cip13,
                              prescribed_as="code")

    # -- result -------------------------------------------------------------------------------
    def _identity(self, keys: list[str], strengths: dict[str, Quantity], method: str, confidence: float, *,
                  cis: str | None = None, cip13: str | None = None, prescribed_as: str = "unknown",
                  alternatives: tuple[str, ...] = (), note: str = "",
                  candidates: tuple[str, ...] = (), product_atc: tuple[str, ...] | None = None) -> MedicationIdentity:
        idx = self.idx
        subs = tuple(
            SubstanceMatch(key=k, name=idx.display_name(k), strength=strengths.get(k),
                           atc=idx.substances[k].atc if k in idx.substances else ())
            for k in keys
        )
        spec = idx.specialties.get(cis) if cis else None
        group = gtype = None
        if spec is not None:
            group, gtype = spec.generic_group, spec.generic_type
        elif candidates:
            groups = {idx.specialties[c].generic_group for c in candidates if c in idx.specialties}
            if len(groups) == 1:
                group = next(iter(groups))
            if len(candidates) == 1:
                spec = idx.specialties.get(candidates[0])
                if spec is not None:
                    cis = spec.cis
                    group, gtype = spec.generic_group, spec.generic_type
        return MedicationIdentity(
            substances=subs, method=method, confidence=confidence, cis=cis, cip13=cip13,
            product=spec.name if spec else "", form=spec.form if spec else "",
            route=";".join(spec.routes) if spec else "", generic_group=group, generic_type=gtype,
            prescribed_as=prescribed_as, alternatives=alternatives, note=note,  # type: ignore[arg-type]
            product_atc=product_atc if product_atc is not None
            else idx.combination_atc(keys, cis) if len(set(keys)) > 1 else (),
        )

    def from_text(self, text: str, method_override: str | None = None) -> MedicationIdentity | None:
        if _REFERENCE.match(text.strip()):
            return None  # an unresolved reference ("#med-1", "Medication/12"), not a drug name
        r = self.identify_text(text)
        if r is None or not r.keys:
            return None
        return self._identity(r.keys, r.strengths, method_override or r.method, r.confidence,
                              prescribed_as=r.prescribed_as, alternatives=r.alternatives, note=r.note,
                              candidates=r.candidates)

    def identify(self, order: MedicationOrder) -> MedicationIdentity:
        concept = order.medication
        ident = self.by_code(concept.codings)
        if ident is not None:
            text = concept.text or ""
            if text:
                r = self.identify_text(text)
                if r is not None and r.prescribed_as in ("brand", "dci"):
                    from dataclasses import replace

                    ident = replace(ident, prescribed_as=r.prescribed_as)  # type: ignore[arg-type]
            return ident
        ing = self._from_ingredients(order.ingredients, concept) if order.ingredients else None
        texts: list[tuple[str, str | None]] = []
        if concept.text:
            texts.append((concept.text, None))
        for c in concept.codings:
            if c.display:
                texts.append((c.display, "snomed" if "snomed" in c.system.lower() else None))
        best: MedicationIdentity | None = None
        for text, override in texts:
            ident = self.from_text(text, override)
            if ident is not None and (best is None or ident.confidence > best.confidence):
                best = ident
        if ing is not None:
            # the structured ingredients win, unless the name says the same thing with more detail
            # (the brand and product of "DIPROSONE 0,05 %, crème" over the ingredient "BETAMETHASONE")
            if best is not None and best.substance_keys == ing.substance_keys and best.confidence >= ing.confidence:
                return best
            return ing
        if best is not None:
            return best
        combination = self._by_combination_code(concept.codings)
        if combination is not None:
            return combination
        label = order.label or ", ".join(f"{c.system}|{c.code}" for c in concept.codings)
        return MedicationIdentity(substances=(), method="none", confidence=0.0, note=f"not identified: {label!r}")

    def _from_ingredients(self, ingredients: tuple[Ingredient, ...], concept: Concept) -> MedicationIdentity | None:
        keys: list[str] = []
        strengths: dict[str, Quantity] = {}
        confs: list[float] = []
        methods: list[str] = []
        for ing in ingredients:
            sub = self.by_code(ing.concept.codings)
            if sub is None:
                for t in ing.concept.all_texts():
                    sub = self.from_text(t)
                    if sub is not None:
                        break
            if sub is None:
                continue
            confs.append(sub.confidence)
            methods.append(sub.method)
            for s in sub.substances:
                if s.key not in keys:
                    keys.append(s.key)
                    q = ing.strength or s.strength
                    if q is not None:
                        strengths[s.key] = q
        if not keys:
            return None
        if len(keys) == 1 and len(ingredients) == 1 and methods[0] in ("cis", "cip13", "cip7"):
            sub = self.by_code(ingredients[0].concept.codings)
            if sub is not None:
                return sub
        method = methods[0] if len(set(methods)) == 1 else "ingredients"
        return self._identity(keys, strengths, method, min(confs), prescribed_as="dci" if "text" in method else "code")


def _same_first_letter(typed: str, known: str) -> bool:
    """A misspelling keeps its first letter, or drops it: a changed first letter ("Vicodin", a US
    brand of hydrocodone, against DICODIN, dihydrocodeine) is another name, not a typo."""
    return typed[:1] == known[:1] or typed == known[1:]
