"""Thesaurus entries that their own text limits to a route carry a route gate (every entry checked).

An entry such as "AMINOSIDES + AMPHOTERICINE B" (l. 783: "avec l'amphotéricine B administrée par voie
IV") or "BISPHOSPHONATES + CALCIUM" (l. 3261: "pour les sels de calcium administrés par voie orale")
does not concern the other routes of that side. The side names and the PDF text are scanned here with
rules of their own (not the builder's): a route word of ``route_phrases``
(``referentials/thesaurus/hand-encoded.json``) in a side's name, or shortly after one of the side's
names in the same clause, or just before it ("par voie orale ou rectale du sorbitol"), limits the side;
the compiled entry must gate that side on exactly the routes named. The name part runs on the shipped
encoding alone; the text part reads ../shared and skips when it is absent.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from checker.iatrogenic.thesaurus import Entry, Thesaurus
from checker.referentials import default_referentials
from checker.text import fold, fold_keeping_punctuation
from tests.conftest import REPO, SHARED

LAYOUT = SHARED / "data" / "ansm-thesaurus-2023-09" / "thesaurus_ansm_2023-09.layout.txt"
PHRASES = json.loads((REPO / "referentials" / "thesaurus" / "hand-encoded.json").read_text(encoding="utf-8"))["route_phrases"]
ROUTES_OF: dict[str, set[str]] = {w: set(p["routes"]) for p in PHRASES["phrases"] for w in p["words"]}
ROUTE_WORD = re.compile(r"\b(" + "|".join(sorted(map(re.escape, ROUTES_OF), key=len, reverse=True)) + r")\b")
NOT_LIMITING = tuple(PHRASES["not_limiting"])
LEVEL = re.compile(r"(CONTRE-INDICATION|Association DECONSEILLEE|Précaution d'emploi|A prendre en compte"
                   r"|(?:CI|ASDEC|APEC|PE)(?: - (?:CI|ASDEC|APEC|PE))+)\s*$")


@pytest.fixture(scope="module")
def th() -> Thesaurus:
    return default_referentials().get("ansm-thesaurus")


def normal(text: str) -> str:
    """Lower case, no accents, clause punctuation kept, hyphens/apostrophes/slashes as spaces."""
    t = fold_keeping_punctuation(text.replace("\u2019", "'"))
    t = re.sub(r"[-'/]", " ", t)
    return re.sub(r"\s+", " ", t).strip()


def route_words(text: str) -> set[str]:
    """The routes a (normalised) name names, "sous cutanee" not read as "cutanee"."""
    out: set[str] = set()
    for m in ROUTE_WORD.finditer(text):
        if not text[:m.start()].rstrip(" ,").endswith(NOT_LIMITING):
            out |= ROUTES_OF[m.group(1)]
    return out


def gated(entry: Entry) -> dict[str, set[str]]:
    """Side key → routes of the entry's route gates."""
    out: dict[str, set[str]] = {}

    def walk(g: Any) -> None:
        if isinstance(g, dict):
            if g.get("kind") == "route-gate":
                routes = set(g.get("routes") or [g["route"]])
                for k in g["keys"]:
                    out.setdefault(k, set()).update(routes)
            for v in g.values():
                walk(v)
        elif isinstance(g, list):
            for v in g:
                walk(v)

    walk(entry.gate)
    return out


def sides(entry: Entry) -> list[str]:
    return [entry.a] if entry.a == entry.b else [entry.a, entry.b]


def test_sides_whose_name_names_a_route_are_gated(th: Thesaurus) -> None:
    """Over every entry: "SELS DE FER PAR VOIE INJECTABLE", "SYMPATHOMIMÉTIQUES ALPHA ET BÊTA (VOIE IM
    ET IV)", "MÉDICAMENTS ADMINISTRÉS PAR VOIE ORALE" … are gated on the routes of their name."""
    offenders, checked = [], 0
    for e in th.entries:
        for key in sides(e):
            want = route_words(normal(th.entities[key]["name"]))
            if not want:
                continue
            checked += 1
            if gated(e).get(key) != want:
                offenders.append(f"l. {e.line} {e.a} + {e.b}: {key} gated {gated(e).get(key)}, name says {sorted(want)}")
    assert checked >= 20
    assert not offenders, f"{len(offenders)} entries:\n" + "\n".join(offenders)


# --- the entry's own text ---------------------------------------------------------------------------

def paragraphs() -> dict[int, tuple[str, str]]:
    """PDF line of each "+ INTERACTANT" → (left column text, right column text), columns cut where the
    level word starts."""
    lines = LAYOUT.read_text(encoding="utf-8").replace("\f", "").split("\n")
    start = next(i for i, ln in enumerate(lines) if ln.startswith("ABATACEPT"))
    out: dict[int, tuple[str, str]] = {}
    i = start
    while i < len(lines):
        if not lines[i].startswith("+ "):
            i += 1
            continue
        first = i + 1
        body = []
        i += 1
        while i < len(lines) and not lines[i].startswith("+ ") and not re.match(r"^[^\s]", lines[i]):
            body.append(lines[i])
            i += 1
        col = next((m.start() for ln in body for m in [LEVEL.search(ln)] if m and m.start() > 40), None)
        if col is None:
            continue
        left = " ".join(ln[:col - 3] for ln in body)
        right = " ".join(ln[col - 3:] for ln in body)
        out[first] = (normal(left), normal(right))
    return out


def side_names(th: Thesaurus, key: str) -> set[str]:
    ent = th.entities.get(key, {})
    names = {key, fold(ent.get("name", key).split("(")[0]), *ent.get("aliases", ()), *ent.get("members", ())}
    return {n for n in names if len(n) >= 4}


GAP = r"(?:[a-z()]+ ){0,4}?"  # up to four words, no clause punctuation
EXCEPT = re.compile(r"\b(hormis|sauf|exception|hors)\b")


def named_routes(text: str, names: set[str], others: set[str]) -> set[str]:
    """Routes the text names for a side: NAME + a few words + route words, or route words + "de/du" + NAME;
    the words between name no other substance (``others``: the other side's names)."""
    found: set[str] = set()
    if not names:
        return found
    alt = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    other = re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, others | names), key=len, reverse=True)) + r")\b")
    for m in re.finditer(rf"\b(?:{alt})\b ?(\(?{GAP})(?:par |en )?(?:voies? |administration )?{ROUTE_WORD.pattern}", text):
        if not EXCEPT.search(m.group(1)) and not other.search(m.group(1)):
            tail = text[m.start(2):m.start(2) + 80]
            found |= ROUTES_OF[m.group(2)]
            # "par voie orale, et par extrapolation, par voie injectable", "(voie im et iv)"
            for more in re.finditer(rf"^(?:[ ,]+(?:et|ou)(?: par extrapolation)?,? (?:par )?(?:voies? )?){ROUTE_WORD.pattern}",
                                    tail[len(m.group(2)):]):
                found |= ROUTES_OF[more.group(1)]
    for m in re.finditer(rf"{ROUTE_WORD.pattern}(?: (?:ou|et) {ROUTE_WORD.pattern})? d(?:e|u|es)(?: la| l)? (?:{alt})\b", text):
        found |= ROUTES_OF[m.group(1)] | (ROUTES_OF[m.group(2)] if m.group(2) else set())
    return found


def test_route_limits_stated_in_each_entry_text_are_gated(th: Thesaurus) -> None:
    """Over every paragraph of the PDF text: a side the text names with a route is gated on those routes."""
    if not LAYOUT.is_file():
        pytest.skip("../shared thesaurus text not available")
    paras = paragraphs()
    assert len(paras) == len(th.entries)
    offenders, limited = [], 0
    for e in th.entries:
        left, right = paras[e.line]
        for key in sides(e):
            others = set().union(*(side_names(th, k) for k in sides(e) if k != key))
            want = route_words(normal(th.entities[key]["name"])) | named_routes(left + " . " + right, side_names(th, key), others)
            if not want:
                continue
            limited += 1
            if not gated(e).get(key, set()) >= want:
                offenders.append(f"l. {e.line} {e.a} + {e.b}: {key} gated {sorted(gated(e).get(key, ()))}, text says {sorted(want)}")
    assert limited >= 40
    assert not offenders, f"{len(offenders)} of {limited} limited sides not gated:\n" + "\n".join(offenders)
