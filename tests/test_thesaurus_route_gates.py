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
    return {n for n in names if len(n) >= 3}


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


# --- every gate, on generated pairs -------------------------------------------------------------------

# How a line states each route (BDPM route wording, as the drug referential gives it)
ROUTE_WORDING = {"oral": "orale", "iv": "intraveineuse", "im": "intramusculaire", "sc": "sous-cutanée",
                 "rectal": "rectale", "transdermal": "transdermique", "inhaled": "inhalée",
                 "sublingual": "sublinguale", "intra-articular": "intra-articulaire", "nasal": "nasale",
                 "dental": "bucco-dentaire", "vaginal": "vaginale"}
LOCAL = {"nasal", "dental", "vaginal", "cutaneous", "ocular"}  # dropped before pairing (thesaurus p. 2)
OTHER_ROUTES = ("oral", "iv", "rectal", "im", "sc", "transdermal", "inhaled")


def _substances(th: Thesaurus, key: str) -> list[str]:
    members = th.entities.get(key, {}).get("members") or [key]
    return [m for m in members if th.knows(m)]


def gated_sides() -> list[Any]:
    th = default_referentials().get("ansm-thesaurus")
    out = []
    for e in th.entries:
        for key, routes in sorted(gated(e).items()):
            out.append(pytest.param(e.line, key, id=f"l{e.line}-{key[:30]}"))
    return out


def _clean_pair(th: Thesaurus, e: Entry, key: str, rng: Any) -> tuple[str, str] | None:
    """A substance of the gated side and one of the other side that meet in this entry (and its mirror)
    only, so that the finding speaks of this entry alone; None when there is none."""
    mine = _substances(th, key) if key in (e.a, e.b) else [key]
    other_side = e.b if key == e.a else e.a
    theirs = _substances(th, other_side)
    rng.shuffle(mine)
    rng.shuffle(theirs)
    pair = {e.a, e.b}
    for x in mine[:12]:
        for y in theirs[:12]:
            found = th.matches(x, y)
            if found and all({m.entry.a, m.entry.b} == pair for m in found):
                return x, y
    return None


def test_every_route_gate_on_generated_pairs(th: Thesaurus) -> None:
    """Seeded, over every route gate of the shipped thesaurus: a pair given by a gated route gets the
    finding; by another known route, none; by an unknown route, the finding with the route named as
    the missing datum (the level kept, never dropped, never asserted)."""
    import random

    from tests.test_iatro_support import line, record, run

    rng = random.Random(20230915)
    lines_of = {}
    for e in th.entries:
        lines_of.setdefault(frozenset((e.a, e.b)), set()).add(e.line)
    tried, skipped, problems = 0, [], []
    for e in th.entries:
        for key, routes in sorted(gated(e).items()):
            pair = _clean_pair(th, e, key, rng)
            usable = sorted((routes - LOCAL) & (level_routes(e) or routes))
            if pair is None or not usable:
                skipped.append(f"l. {e.line} {key}")
                continue
            tried += 1
            x, y = pair
            mine_lines = lines_of[frozenset((e.a, e.b))]
            other = next(r for r in OTHER_ROUTES if r not in routes)

            def findings(route: str) -> list[Any]:
                return [f for f in run("IX001", record(line("x", x, route=ROUTE_WORDING.get(route, ""), label="spécialité X"),
                                               line("y", y)))
                        if {en["pdf_line"] for en in f.evidence["entries"]} & mine_lines]

            on = findings(rng.choice(usable))
            off = findings(other)
            unknown = findings("")
            if len(on) != 1:
                problems.append(f"l. {e.line} {x} + {y}: gated route gives {len(on)} findings")
            if off:
                problems.append(f"l. {e.line} {x} ({other}) + {y}: another route still gives {off[0].level}")
            if len(unknown) != 1 or "route" not in unknown[0].evidence.get("missing", ()):
                problems.append(f"l. {e.line} {x} (no route) + {y}: {[f.evidence.get('missing') for f in unknown]}")
            elif on and unknown[0].level != on[0].level and not on[0].evidence.get("levels_in_entry"):
                problems.append(f"l. {e.line}: unknown route changed the level {on[0].level} → {unknown[0].level}")
    assert tried >= 80, (tried, skipped)
    assert not problems, f"{len(problems)} problems over {tried} gates:\n" + "\n".join(problems)


def level_routes(e: Entry) -> set[str]:
    """Routes the levels of a multi-level entry name (they choose the level among the gate's routes:
    "le diltiazem IV" / "le diltiazem per os")."""
    text = json.dumps([lv.condition for lv in e.levels])
    return {r for r in ROUTE_WORDING if f'"{r}"' in text}


def test_every_route_gate_settles_its_entry(th: Thesaurus) -> None:
    """Seeded, over every route gate, at the entry itself (pairs that other entries also concern
    included): gated route → the entry concerns the pair; another known route → dropped; unknown →
    kept, unsettled, the route named as missing."""
    import random

    from checker.iatrogenic.conditions import PairContext, settle
    from tests.test_iatro_support import AS_OF, line, record

    refs = default_referentials()
    tables, bands = refs.get("clinical-facts"), refs.get("iatrogenic-rules").aspirin_bands
    rng = random.Random(20230915)
    tried, skipped, problems = 0, [], []
    for e in th.entries:
        for key, routes in sorted(gated(e).items()):
            mine = _substances(th, key) if key in (e.a, e.b) else [key]
            theirs = _substances(th, e.b if key == e.a else e.a)
            match = next((m for x in rng.sample(mine, min(8, len(mine))) for y in rng.sample(theirs, min(8, len(theirs)))
                          for m in th.matches(x, y) if m.entry is e), None)
            if match is None:
                skipped.append(f"l. {e.line} {key}")
                continue
            tried += 1
            gated_first = key == e.a or key in th.closure(match.first)
            if e.a == e.b:
                gated_first = True

            def settled(route: str) -> Any:
                here = line("x", match.first, route=ROUTE_WORDING[route] if gated_first and route else "", label="spécialité X")
                there = line("y", match.second, route=ROUTE_WORDING[route] if not gated_first and route else "",
                             label="spécialité Y")
                ctx = PairContext(th, record(here, there), AS_OF, match.first, match.second, here, there, tables,
                                  AS_OF, bands)
                return settle(e, ctx)

            usable = sorted(routes & set(ROUTE_WORDING) & (level_routes(e) or routes))
            other = next(r for r in OTHER_ROUTES if r not in routes)
            on, off, unknown = settled(rng.choice(usable)), settled(other), settled("")
            if on.dropped:
                problems.append(f"l. {e.line} {match.first} + {match.second}: dropped on its own route")
            if not off.dropped:
                problems.append(f"l. {e.line} {match.first} + {match.second}: kept by route {other}")
            if unknown.dropped or unknown.settled or "route" not in unknown.missing:
                problems.append(f"l. {e.line} {match.first} + {match.second}: unknown route gives {unknown}")
    assert tried == sum(len(gated(e)) for e in th.entries) - len(skipped)
    assert not skipped, skipped
    assert not problems, f"{len(problems)} problems over {tried} gates:\n" + "\n".join(problems)


@pytest.mark.parametrize(("route", "level"), [("sublinguale", "PE"), ("intraveineuse", "PE"), ("orale", "AD"),
                                              ("rectale", None)])
def test_midazolam_routes_with_a_strong_cyp3a4_inhibitor(route: str, level: str | None) -> None:
    """L. 11253: AD with oral midazolam, PE with IV and sublingual midazolam; other routes not concerned."""
    from tests.test_iatro_support import line, record, run

    found = run("IX001", record(line("a", "itraconazole"), line("b", "midazolam", route=route)))
    assert len(found) == 1  # other entries (e.g. an APEC class entry) may concern the pair too
    entry_levels = {en["level"] for en in found[0].evidence["entries"] if en["pdf_line"] in (11253, 13509)}
    assert entry_levels == ({level} if level else set())
    if level:
        assert found[0].level == level


def test_route_clauses_naming_no_substance_are_gated(th: Thesaurus) -> None:
    """A clause of the risk text that names routes but no substance ("en cas d'utilisation prolongée par
    voie orale ou inhalée", l. 5100), or excludes routes ("à l'exception des voies inhalées et locales",
    l. 8679), cannot be attached to a side by the builder: such entries carry a gate encoded by hand."""
    if not LAYOUT.is_file():
        pytest.skip("../shared thesaurus text not available")
    paras = paragraphs()
    roman = re.compile(r"\bclasses? [ivx]+ (?:ou|a|et) iv\b")  # NYHA class IV is no route
    offenders, seen = [], 0
    for e in th.entries:
        left, _ = paras[e.line]
        names = set().union(*(side_names(th, k) for k in sides(e)))
        alt = re.compile(r"\b(?:" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")\b")
        clauses = [c for c in re.split(r"[.:]", roman.sub(" ", left)) if route_words(c)]
        if any(not alt.search(c) for c in clauses) or re.search(r"exception des voies|\b(?:sauf|hors) voies?\b", left):
            seen += 1
            if not gated(e):
                offenders.append(f"l. {e.line} {e.a} + {e.b}")
    assert seen >= 4
    assert not offenders, offenders


@pytest.mark.parametrize(("label", "expected"), [
    # ANS ePrescription example HAS-17 (../shared/fhir/eprescription-fr): a nebulised corticoid, no route stated
    ("Budésonide 1 mg/2 ml (0,5 mg/ml) suspension pour inhalation par nébuliseur en récipient unidose", []),
    ("Budésonide 3 mg gélule", ["PE"]),
    ("Budésonide", ["PE"]),
])
def test_the_dose_form_tells_an_inhaled_corticoid(label: str, expected: list[str]) -> None:
    """L. 1525: glucocorticoids by the systemic and rectal routes only; a product made for inhalation
    is inhaled even when the line states no route; a bare name stays unknown (finding kept, route missing)."""
    from tests.test_iatro_support import line, record, run

    found = run("IX001", record(line("a", "fluindione"), line("b", "budesonide", label=label)))
    assert [f.level for f in found] == expected
    if label == "Budésonide":
        assert found[0].evidence["missing"] == ["route"]
