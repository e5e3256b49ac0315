"""Build ``referentials/thesaurus/ansm-thesaurus-2023-09.json.gz`` from the ANSM PDF text.

Run by a maintainer (never at run time)::

    python tools/build_thesaurus.py ../shared/data/ansm-thesaurus-2023-09

It reads the full text of the official PDF (``*.layout.txt``, the ground truth; the CSV extracted
from it loses levels of multi-level entries and truncates class lists) and writes, for every
entry "HEADER + INTERACTANT": the levels with their structured conditions, risk themes (codes, not
text), and the line of the PDF text it came from; for every class: its members and the "Voir
aussi" links. No sentence of the thesaurus is copied: only names, levels and codes.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))  # run from a checkout: import checker

import gzip
import json
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checker.text import fold

LEVEL_WORDS: dict[str, str] = {
    "CONTRE-INDICATION": "CI",
    "Association DECONSEILLEE": "AD",
    "Précaution d'emploi": "PE",
    "A prendre en compte": "APEC",
}
MULTI_TOKENS = {"CI": "CI", "ASDEC": "AD", "PE": "PE", "APEC": "APEC"}
LEVEL_RE = re.compile(
    r"(CONTRE-INDICATION|Association DECONSEILLEE|Précaution d'emploi|A prendre en compte"
    r"|(?:CI|ASDEC|APEC|PE)(?: - (?:CI|ASDEC|APEC|PE))+)\s*$"
)
LEVEL_ORDER = ("CI", "AD", "PE", "APEC")
PAGE_NUMBER = re.compile(r"^\s+\d{1,3}\s*$")
DANGLING = re.compile(r"(?:\bET|\bDE|\bDES|\bDU|\bLA|\bLE|\bÀ|\bOU|,)$")
SECTION_RE = re.compile(
    r"^\s*(contre[ -]?indications?|associations? d[ée]conseill[ée]es?|pr[ée]cautions? d.emploi|a prendre en compte)\b",
    re.IGNORECASE,
)
SECTION_LEVEL = {"c": "CI", "a": "AD", "p": "PE"}


def _section_level(word: str) -> str:
    w = fold(word)
    if w.startswith("contre"):
        return "CI"
    if w.startswith("association"):
        return "AD"
    if w.startswith("precaution"):
        return "PE"
    return "APEC"


# Risk themes: keyword (folded) → theme code. The labels shown to users are in the data file's
# "themes" table, written in our own words.
THEMES: list[tuple[str, tuple[str, ...]]] = [
    ("torsades", ("torsade",)),
    ("bleeding", ("hemorrag", "saignement")),
    ("hyperkalaemia", ("hyperkaliem",)),
    ("serotonin", ("serotoninergique",)),
    ("myopathy", ("rhabdomyolyse", "myopathie", "musculaire")),
    ("qt-rhythm", ("rythme ventriculaire", "troubles du rythme", "arythmi")),
    ("bradycardia", ("bradycard", "conduction", "auriculo ventriculaire")),
    ("hypotension", ("hypotension",)),
    ("sedation", ("sedati", "vigilance", "depression respiratoire", "depression centrale")),
    ("renal", ("insuffisance renale", "nephrotox", "fonction renale")),
    ("liver", ("hepatotox", "hepatique aigu", "hepatite")),
    ("haematological", ("hematolog", "myelotox", "agranulocyt", "neutropeni")),
    ("hypoglycaemia", ("hypoglycem",)),
    ("seizures", ("convuls", "epileptogene")),
    ("ischaemia", ("vasoconstrict", "ergotisme", "ischemi")),
    ("hyponatraemia", ("hyponatrem",)),
    ("lithium", ("lithem",)),
    ("digoxin", ("digoxinem",)),
    ("immunosuppression", ("immunodepression", "maladie vaccinale", "infectieux")),
    ("contraception", ("contracepti",)),
    ("increased-exposure", ("augmentation des concentrations", "augmentation de ses concentrations",
                            "augmentation des taux", "surdosage", "augmentation de l exposition")),
    ("decreased-efficacy", ("diminution des concentrations", "diminution de l efficacite", "moindre efficacite",
                            "baisse de l efficacite", "perte d efficacite")),
    ("absorption", ("absorption",)),
    ("additive", ("addition", "majoration", "potentialisation")),
]


def themes_of(text: str) -> list[str]:
    """Up to three risk-theme codes for a folded risk text (order = priority)."""
    t = fold(text)
    out = [code for code, words in THEMES if any(w in t for w in words)]
    return out[:3] or ["other"]


@dataclass
class Block:
    """One "+ INTERACTANT" paragraph of the PDF text."""

    header: str
    interactant: str
    line: int
    lines: list[str] = field(default_factory=list)


@dataclass
class Header:
    name: str
    line: int
    members_raw: str = ""
    see_also_raw: str = ""


def _clean(lines: list[str]) -> list[str]:
    out = []
    for ln in lines:
        if PAGE_NUMBER.match(ln) or "boulevard Anatole France" in ln:
            out.append("")
        else:
            out.append(ln.rstrip("\n"))
    return out


def parse_layout(path: Path) -> tuple[list[Header], list[Block]]:
    """Split the PDF text into entry headers (with member lists, see-also) and interaction blocks."""
    lines = _clean(path.read_text(encoding="utf-8").replace("\f", "").split("\n"))
    start = next(i for i, ln in enumerate(lines) if ln.startswith("ABATACEPT"))
    headers: list[Header] = []
    blocks: list[Block] = []
    i = start
    n = len(lines)
    header: Header | None = None
    block: Block | None = None
    while i < n:
        ln = lines[i]
        if ln and not ln[0].isspace() and not ln.startswith("+") and not ln.startswith("-"):
            name = ln.strip()
            while DANGLING.search(name) and i + 1 < n and lines[i + 1].strip() and not lines[i + 1].lstrip().startswith(("+", "(", "Voir")):
                i += 1
                name += " " + lines[i].strip()
            header = Header(name, i + 1)
            headers.append(header)
            block = None
            # header body: see-also and member list until the first "+" line or next header
            j = i + 1
            body: list[str] = []
            while j < n and not lines[j].startswith("+") and not (lines[j] and not lines[j][0].isspace()):
                body.append(lines[j])
                j += 1
            text = "\n".join(body)
            m = re.search(r"Voir aussi\s*:(.*?)(?:\n\s*\n|\n \(|\Z)", text, re.S)
            if m:
                header.see_also_raw = " ".join(m.group(1).split())
            m = re.search(r"(?m)^ \((.*)", text, re.S)
            if m:
                raw = m.group(1)
                depth, end = 1, None
                for k, ch in enumerate(raw):
                    depth += ch == "("
                    depth -= ch == ")"
                    if depth == 0:
                        end = k
                        break
                header.members_raw = " ".join((raw[:end] if end is not None else raw.split("\n\n")[0]).split())
            i = j
            continue
        if ln.startswith("+") and header is not None:
            name = ln[1:].strip()
            first_line = i + 1
            while DANGLING.search(name) and i + 1 < n and lines[i + 1].strip() and len(lines[i + 1]) - len(lines[i + 1].lstrip()) < 5:
                i += 1
                name += " " + lines[i].strip()
            block = Block(header.name, name, first_line)
            blocks.append(block)
            i += 1
            continue
        if block is not None:
            block.lines.append(ln)
        i += 1
    return headers, blocks


def split_columns(block: Block) -> tuple[str, list[str]]:
    """(risk text, right-column lines) of a block; the right column starts where the level is."""
    col = None
    for ln in block.lines:
        m = LEVEL_RE.search(ln)
        if m and m.start() > 40:
            col = m.start()
            break
    if col is None:
        raise ValueError(f"line {block.line}: no level found for {block.header} + {block.interactant}")
    left, right = [], []
    for ln in block.lines:
        cut = col - 3
        # a right-column line may start a little left of the level column
        m = re.match(r"^(.*?\S)?\s{2,}(\S.*)$", ln)
        if len(ln) > cut and ln[:cut].strip() == "":
            right.append(ln.strip())
        elif m and m.group(1) and len(ln) - len(m.group(2)) >= cut - 6:
            left.append(m.group(1).strip())
            right.append(m.group(2).strip())
        else:
            left.append(ln.strip())
    return " ".join(x for x in left if x), right


def levels_of(right: list[str]) -> list[str]:
    """The level codes announced at the head of the right column (in document order)."""
    for ln in right:
        m = LEVEL_RE.search(ln)
        if m:
            word = m.group(1)
            if word in LEVEL_WORDS:
                return [LEVEL_WORDS[word]]
            return [MULTI_TOKENS[t.strip()] for t in word.split(" - ")]
    raise ValueError("no level")


# --- conditions of multi-level entries -------------------------------------------------------

ASPIRIN_DOSES = (("anti inflammatoire", "anti-inflammatory"), ("antalgique", "analgesic"),
                 ("antiagreg", "antiplatelet"))


def _bullets(text: str) -> list[str]:
    parts = re.split(r"(?:^|\s)- ", " " + text)
    out = []
    for p in parts:
        # a bullet ends at its first sentence: what follows is conduct, not condition
        p = p.strip()
        if p:
            out.append(re.split(r"(?<=[a-z\)])\. ", p)[0])
    return out


def classify_condition(text: str, named: dict[str, list[str]], sides: tuple[set[str], set[str]] = (set(), set())) -> dict[str, Any]:
    """Structured condition of one level's section (``named``: folded member name → key).

    ``sides`` = (the entry's own substances, the members of its two sides): a clause is about
    *which* substance only when it names members of a side other than the entry's own substances
    (naming the entry's own substance, or a class unrelated to the pair, states another condition:
    dose, resistance …), unless it also names a route.
    """
    own, members = sides
    t = fold(text)
    if not t:
        return {"kind": "unstated"}
    if "acetylsalicylique" in t and any(w in t for w, _ in ASPIRIN_DOSES) or (
        "doses anti inflammatoires" in t or "doses antalgiques" in t or "doses antiagregantes" in t
    ):
        clauses = []
        for b in _bullets(text) or [text]:
            fb = fold(b)
            dose = next((code for w, code in ASPIRIN_DOSES if w in fb), None)
            if dose is None:
                continue
            ulcer = None
            if "absence d antecedent d ulcere" in fb:
                ulcer = False
            elif "antecedent d ulcere" in fb:
                ulcer = True
            clauses.append({"aspirin_dose": dose, "ulcer_history": ulcer})
        if clauses:
            return {"kind": "aspirin-dose", "any_of": clauses}
    if "syndromes coronariens aigus" in t or "syndrome coronarien aigu" in t:
        return {"kind": "acs-indication", "acs": "en dehors" not in t}
    clauses = []
    for b in _bullets(text):
        fb = fold(b)
        if fb.startswith(("avec les autres", "avec l autre", "avec d autres", "les autres")):
            clauses.append({"others": True})
            continue
        keys = sorted({k for name, ks in named.items() if re.search(rf"\b{re.escape(name)}\w?\b", fb) for k in ks})
        route = _route(fb)
        if members and not route:
            keys = [k for k in keys if k in members and k not in own]
        if keys and not fb.startswith(("si ", "en cas", "chez", "dans")):
            clause: dict[str, Any] = {"keys": keys}
            if route:
                clause["route"] = route
                # every route of the clause up to an exception ("le midazolam IV et sublingual"; not
                # "les sels de calcium IV, hormis supplémentation parentérale")
                routes = _routes_in(re.split(r"\b(?:hormis|sauf|hors)\b", _route_text(b))[0])
                if len(routes | {route}) > 1:
                    clause["routes"] = sorted(routes | {route})
            clauses.append(clause)
        elif not fb.startswith(("surveillance", "adaptation", "si ", "eviter", "respecter")):
            kind = _kind_of(fb)
            if kind != "other":  # a circumstance (dose, renal function …) the record may not state
                clauses.append({"unresolved": kind})
    if any("keys" in c or "others" in c for c in clauses):
        return {"kind": "substances", "any_of": clauses}
    route = _route(t)
    if route and len(t) < 120:
        return {"kind": "route", "route": route}
    return {"kind": _kind_of(t)}


CONDITION_WORDS = (
    ("renal-function", ("renal", "renaux")),
    ("hepatic-function", ("hepatique",)),
    ("elderly", ("age",)),
    ("dose", ("dose", "mg", "posologie")),
    ("indication", ("indication", "utilisation comme")),
    ("heart-function", ("ventriculaire gauche", "cardiaque")),
)


def _kind_of(t: str) -> str:
    """Kind of a non-substance condition, from keywords of its folded text."""
    for kind, words in CONDITION_WORDS:
        if any(re.search(rf"\b{w}", t) for w in words):
            return kind
    return "other"


def _route(t: str) -> str | None:
    iv = re.search(r"\b(iv|intraveineuse|parenterale)\b", t)
    oral = re.search(r"\b(per os|voie orale|orale)\b", t)
    if iv and oral:
        return None
    if re.search(r"\b(iv|intraveineuse|voie intraveineuse|parenterale)\b", t):
        return "iv"
    if re.search(r"\b(per os|voie orale|orale)\b", t):
        return "oral"
    return None


def conditions_of(right: list[str], levels: list[str], named: dict[str, list[str]],
                  sides: tuple[set[str], set[str]] = (set(), set())) -> list[dict[str, Any]]:
    """One ``{"level", "condition"}`` per level; single-level entries are unconditional."""
    if len(levels) == 1:
        return [{"level": levels[0], "condition": {"kind": "always"}}]
    sections: dict[str, list[str]] = {}
    current: str | None = None
    for ln in right:
        if LEVEL_RE.search(ln) and current is None and not sections:
            continue
        m = SECTION_RE.match(ln)
        if m:
            current = _section_level(m.group(1))
            rest = ln[m.end():].lstrip(" :")
            sections.setdefault(current, [])
            if rest:
                sections[current].append(rest)
            continue
        if current is not None:
            sections[current].append(ln)
    out: list[dict[str, Any]] = []
    for lv in levels:
        text = " ".join(sections.get(lv, []))
        # keep only the condition part (before a conduct sentence such as "Surveillance ...")
        out.append({"level": lv, "condition": classify_condition(text, named, sides)})
    # "the others" means: none of the substances named in this entry's other clauses
    named_keys = sorted({k for c in out if c["condition"]["kind"] == "substances"
                         for cl in c["condition"]["any_of"] for k in cl.get("keys", ())})
    for c in out:
        if c["condition"]["kind"] == "substances":
            for cl in c["condition"]["any_of"]:
                if cl.get("others"):
                    cl["except"] = named_keys
    return out


# --- names and classes -----------------------------------------------------------------------

EXTRAPOLATION = re.compile(r"^(.*?)\s*\(?\s*ET,? PAR EXTRAPOLATION,?\s*(.*?)\)?$")
INVERTED = re.compile(r"^(.+?) \(\s*([^()]+?)\s*\)$")
SALT_WORDS = {
    "sodique", "potassique", "calcique", "magnesique", "trometamol", "cilexetil", "medoxomil", "mesilate",
    "besilate", "maleate", "chlorhydrate", "bromhydrate", "sulfate", "phosphate", "tartrate", "citrate",
    "fumarate", "succinate", "acetate", "dipropionate", "propionate", "hemifumarate", "hyclate",
    "monohydrate", "dihydrate", "trihydrate", "anhydre", "betadex", "lysine", "arginine", "disodique",
}


def entity_keys(name: str) -> tuple[str, list[str]]:
    """(entity key, substance aliases) of a header/interactant name."""
    key = fold(name)
    aliases: list[str] = []
    m = EXTRAPOLATION.match(name)
    if m:
        for part in (m.group(1), m.group(2)):
            aliases.extend(_simple_aliases(part))
    else:
        aliases.extend(_simple_aliases(name))
    return key, sorted(set(a for a in aliases if a))


def _simple_aliases(name: str) -> list[str]:
    name = name.strip().strip("()").strip()
    m = INVERTED.match(name)
    if m:  # "SODIUM (BICARBONATE DE)" → "bicarbonate de sodium"; "VALPROÏQUE (ACIDE)" → "acide valproique"
        inner, outer = m.group(2), m.group(1)
        if inner.upper() in {"ACIDE"} or inner.upper().endswith(" DE") or inner.upper().endswith(" D'"):
            return [fold(f"{inner} {outer}"), fold(name)]
        return [fold(outer), fold(name)]
    return [fold(name)]


def member_aliases(member: str) -> list[str]:
    """A class member as written ("candesartan cilexetil") and its salt-free form ("candesartan")."""
    f = fold(member)
    words = [w for w in f.split() if w not in SALT_WORDS]
    out = [f]
    if words and " ".join(words) != f:
        out.append(" ".join(words))
    return out


def split_members(raw: str) -> list[str]:
    """Comma-separated member list, commas inside parentheses kept."""
    out, depth, cur = [], 0, ""
    for ch in raw:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return [m for m in out if m]


# Hand-encoded parts of the thesaurus (the local-route exceptions of page 2, the conditions of the
# multi-level entries stated in prose), each with its PDF line: referentials/thesaurus/hand-encoded.json.
HAND_ENCODED = Path(__file__).resolve().parents[1] / "referentials" / "thesaurus" / "hand-encoded.json"


def _hand_encoded(path: Path = HAND_ENCODED) -> tuple[dict[str, Any], dict[frozenset[str], dict[str, dict[str, Any]]]]:
    """``(local_routes, overrides)`` read from the hand-encoded data file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    local = {k: v for k, v in data["local_routes"].items() if k != "note"}
    overrides = {frozenset(e["pair"]): e["levels"] for e in data["multi_level_conditions"]["entries"]}
    return local, overrides


LOCAL_ROUTES, OVERRIDES = _hand_encoded()


# Single-level aspirin entries that the PDF limits, in their own text, to anti-inflammatory doses
# (>= 1 g per intake and/or >= 3 g a day) or analgesic/antipyretic doses (>= 500 mg per intake and/or
# < 3 g a day): ARBs l. 143 / 1271, deferasirox l. 193 / 5681, diuretics l. 203 / 6437, ACE inhibitors
# l. 244 / 10481. At other doses (antiplatelet) the entry does not concern the pair: a gate.
ASPIRIN_KEY = "acide acetylsalicylique"
_ASPIRIN_HIGH_DOSES = {"kind": "aspirin-dose", "any_of": [
    {"aspirin_dose": "anti-inflammatory", "ulcer_history": None},
    {"aspirin_dose": "analgesic", "ulcer_history": None}]}


def aspirin_dose_gate(a_key: str, b_key: str, levels: list[str], text: str) -> dict[str, Any] | None:
    """The aspirin-dose gate of a single-level aspirin entry whose text names both high-dose ranges."""
    if len(levels) != 1 or ASPIRIN_KEY not in (a_key, b_key):
        return None
    t = fold(text)
    if "pour des doses anti inflammatoires d acide acetylsalicylique" in t and "doses antalgiques" in t:
        return _ASPIRIN_HIGH_DOSES
    return None



# --- route gates -------------------------------------------------------------------------------
# An entry whose own text limits a side to a route ("avec l'amphotéricine B administrée par voie IV",
# "pour les sels de calcium administrés par voie orale", "+ SELS DE FER PAR VOIE INJECTABLE") does not
# concern the other routes of that side: the side gets a route gate on the routes its text names. The
# route words and the routes each names are data (hand-encoded.json, "route_phrases"). A side is named
# with a route when the route words follow one of its names (its heading, aliases or members), with
# only the words below between them (no other name, no clause punctuation), or precede it with "de/du"
# ("par voie orale ou rectale du sorbitol", "l'administration IV de quinine"). Every route the text
# names for a side counts (diltiazem "voie injectable" and "per os": both); the multi-level conditions
# still choose the level by route.
ROUTE_PHRASES: dict[str, Any] = json.loads(HAND_ENCODED.read_text(encoding="utf-8"))["route_phrases"]
_ROUTES_OF: dict[str, list[str]] = {w: p["routes"] for p in ROUTE_PHRASES["phrases"] for w in p["words"]}
_ROUTE_ALT = "|".join(sorted(map(re.escape, _ROUTES_OF), key=len, reverse=True))
_ROUTE_SPAN = re.compile(
    rf"(?:par |en )?(?:voies? )?\b(?:{_ROUTE_ALT})\b(?:,? (?:et |ou )+(?:par extrapolation, )?(?:par )?(?:voies? )?"
    rf"\b(?:{_ROUTE_ALT})\b)*")
_ROUTE_WORD = re.compile(rf"\b(?:{_ROUTE_ALT})\b")
_BETWEEN = r"(?:\(?seul ou associe\)? |administree?s? |utilisee?s? |a fortes doses et |\()*"
_NOT_LIMITING = tuple(ROUTE_PHRASES["not_limiting"])


def _route_text(text: str) -> str:
    """Lower case, no accents, clause punctuation kept; hyphens, apostrophes and slashes as spaces."""
    t = unicodedata.normalize("NFKD", text.replace("\u2019", "'"))
    t = "".join(c for c in t if not unicodedata.combining(c)).lower()
    return re.sub(r"\s+", " ", re.sub(r"[-'/]", " ", t)).strip()


def _routes_in(span: str) -> set[str]:
    return {r for w in _ROUTE_WORD.findall(span) for r in _ROUTES_OF[w]}


def name_routes(name: str) -> set[str]:
    """Routes a side's own name limits it to ("SELS DE FER PAR VOIE INJECTABLE"); "notamment" does not limit."""
    t = _route_text(name)
    out: set[str] = set()
    for m in _ROUTE_SPAN.finditer(t):
        if not t[:m.start()].rstrip(" ,(").endswith(_NOT_LIMITING):
            out |= _routes_in(m.group(0))
    return out


def text_routes(text: str, names: set[str]) -> set[str]:
    """Routes the entry's text names for a side known by ``names`` (folded)."""
    names = {n for n in names if len(n) >= 3}
    if not names:
        return set()
    alt = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    t = _route_text(text)
    out: set[str] = set()
    after = re.compile(rf"\b(?:{alt})\b {_BETWEEN}({_ROUTE_SPAN.pattern})")
    before = re.compile(rf"\b(?:par |l administration )({_ROUTE_SPAN.pattern}) d(?:e|u|es)(?: la| l)? (?:{alt})\b")
    for m in list(after.finditer(t)) + list(before.finditer(t)):
        out |= _routes_in(m.group(1))
    return out


def _side_names(key: str, entities: dict[str, dict[str, Any]]) -> set[str]:
    e = entities.get(key, {})
    names = {key, fold(e.get("name", key).split("(")[0]), *e.get("aliases", ())}
    for m in e.get("members", ()):
        names.update(member_aliases(m))
    return names


def route_gate(a_key: str, b_key: str, text: str, entities: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """The route gate(s) of an entry: one per side its name or its text limits to some routes."""
    gates = []
    for key in dict.fromkeys((a_key, b_key)):
        routes = name_routes(entities.get(key, {}).get("name", key)) | text_routes(text, _side_names(key, entities))
        if routes:
            gates.append({"kind": "route-gate", "keys": [key], "routes": sorted(routes)})
    if not gates:
        return None
    return gates[0] if len(gates) == 1 else {"kind": "all_of", "of": gates}


def _all_gates(*gates: dict[str, Any] | None) -> dict[str, Any] | None:
    """One gate holding every given gate (hand-encoded first)."""
    present = [g for g in gates if g]
    if not present:
        return None
    return present[0] if len(present) == 1 else {"kind": "all_of", "of": present}


_STOP = {"medicaments", "a", "de", "d", "l", "la", "le", "les", "du", "des", "et", "risque", "autres"}


def _shares_class_words(a: str, b: str) -> bool:
    """True when two folded class names share a content word ("angio oedeme", "hyponatremiants")."""
    return bool((set(a.split()) - _STOP) & (set(b.split()) - _STOP))


def _apply_override(a_key: str, b_key: str, levels: list[dict[str, Any]]) -> bool:
    spec = OVERRIDES.get(frozenset({a_key, b_key}))
    if spec is None:
        return False
    spec = {k: v for k, v in spec.items() if not k.startswith("_")}
    if sorted(spec) != sorted(lv["level"] for lv in levels):
        raise ValueError(f"override for {a_key} + {b_key} does not cover the levels {[lv['level'] for lv in levels]}")
    for lv in levels:
        lv["condition"] = spec[lv["level"]]
    return True


def build(folder: Path) -> dict[str, Any]:
    layout = next(folder.glob("*.layout.txt"))
    headers, blocks = parse_layout(layout)
    header_keys = {fold(h.name): h for h in headers}
    entities: dict[str, dict[str, Any]] = {}

    def entity(name: str, line: int) -> str:
        key, aliases = entity_keys(name)
        if key not in entities:
            entities[key] = {"name": name, "line": line, "aliases": aliases, "members": [], "see_also": []}
        return key

    for h in headers:
        key = entity(h.name, h.line)
        e = entities[key]
        raw = h.members_raw
        if raw and not raw.lower().startswith("voir aussi"):
            members = split_members(raw)
            if len(members) == 1 and fold(members[0]) == "anpu":  # truncated, non-drug (alcohol, grapefruit)
                members = []
            e["members"] = sorted({fold(m) for m in members})
            e["truncated"] = raw.count("(") > raw.count(")") or not raw
        if h.see_also_raw:
            e["see_also"] = sorted({fold(x) for x in re.split(r"\s+-\s+", h.see_also_raw) if x.strip()})
        if "(voir aussi" in raw.lower():
            e["see_also"] = sorted(set(e["see_also"]) | {fold(x) for x in re.findall(r'"([^"]+)"', raw)})
    # substances: every member and every header that is not a class
    substance_names: dict[str, str] = {}
    for key, e in entities.items():
        for m in e["members"]:
            for a in member_aliases(m):
                substance_names.setdefault(a, fold(m))
    entries = []
    for b in blocks:
        risk, right = split_columns(b)
        levels = levels_of(right)
        a_key = fold(b.header)
        inter = b.interactant
        other_of_same_class = False
        if inter.upper().startswith("AUTRES "):
            base = fold(inter[len("AUTRES "):])
            other_of_same_class = True
            # "AUTRES X" under X; when the wording differs from the heading ("MÉDICAMENTS BRADYKININE
            # ET ANGIO-ŒDÈME" + "AUTRES MÉDICAMENTS À RISQUE D'ANGIO-ŒDÈME"), the other members of the
            # heading's class are meant
            if base in header_keys or base in entities:
                b_key = base
            elif _shares_class_words(base, a_key):
                b_key = a_key
            else:  # a class of its own the PDF does not list: kept, matches nothing
                other_of_same_class = False
                b_key = entity(inter, b.line)
        else:
            b_key = entity(inter, b.line)
        named: dict[str, list[str]] = {}
        for k in (a_key, b_key):
            for m in _descendant_members(k, entities):
                for a in member_aliases(m):
                    named.setdefault(a, []).append(m)
            for a in entities.get(k, {}).get("aliases", []):
                named.setdefault(a, []).append(a)
        for k, e in entities.items():  # classes named inside a clause ("avec les macrolides")
            if e["members"] and len(k) > 5:
                named.setdefault(k, []).extend(e["members"])
                base = fold(e["name"].split("(")[0])
                if base != k and len(base) > 5:
                    named.setdefault(base, []).extend(e["members"])
        level_conditions = conditions_of(right, levels, named, _sides(a_key, b_key, entities))
        overridden = _apply_override(a_key, b_key, level_conditions)
        hand_gate = OVERRIDES.get(frozenset({a_key, b_key}), {}).get("_gate")
        gate = _all_gates(hand_gate, None if hand_gate else aspirin_dose_gate(a_key, b_key, levels, risk + " " + " ".join(right)),
                          route_gate(a_key, b_key, risk + " . " + " ".join(right), entities))
        entries.append({
            "a": a_key,
            "b": b_key,
            "others_only": other_of_same_class,
            "interactant": inter,
            "levels": level_conditions,
            "hand_encoded": overridden,
            **({"gate": gate} if gate else {}),
            "themes": themes_of(risk),
            "line": b.line,
        })
    return {
        "format": 1,
        "source": {
            "label": "ANSM, Thésaurus des interactions médicamenteuses, septembre 2023",
            "url": "https://ansm.sante.fr/documents/reference/thesaurus-des-interactions-medicamenteuses-1",
            "edition": "2023-09",
            "built_from": layout.name,
        },
        "local_routes": LOCAL_ROUTES,
        "entities": dict(sorted(entities.items())),
        "entries": entries,
    }


def _sides(a_key: str, b_key: str, entities: dict[str, dict[str, Any]]) -> tuple[set[str], set[str]]:
    """(the entry's own single substances, every member of either side) for clause checks."""
    own: set[str] = set()
    members: set[str] = set()
    for k in (a_key, b_key):
        e = entities.get(k, {})
        if e.get("members"):
            members |= set(e["members"])
        else:
            own |= {k, *e.get("aliases", [])}
            members |= {k, *e.get("aliases", [])}
    return own, members


def _descendant_members(key: str, entities: dict[str, dict[str, Any]]) -> set[str]:
    e = entities.get(key)
    if not e:
        return set()
    return set(e["members"])


def main(argv: list[str]) -> int:
    folder = Path(argv[1] if len(argv) > 1 else "../shared/data/ansm-thesaurus-2023-09")
    out = Path(argv[2] if len(argv) > 2 else "referentials/thesaurus/ansm-thesaurus-2023-09.json.gz")
    data = build(folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = json.dumps(data, ensure_ascii=False, sort_keys=False, separators=(",", ":")).encode("utf-8")
    with out.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
        f.write(payload)
    print(f"{out}: {len(data['entries'])} entries, {len(data['entities'])} entities")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
