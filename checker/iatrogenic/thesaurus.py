"""The ANSM interaction thesaurus as a queryable model (entries + class graph).

The encoding (``referentials/thesaurus/ansm-thesaurus-2023-09.json.gz``, built by
``tools/build_thesaurus.py``) holds every entry "A + B" with its levels and their
conditions, and every class with its members and "Voir aussi" links. Classes form a directed
graph (networkx): an edge ``member → class`` for each listed member and each "Voir aussi" link, so
nested classes are followed transitively and partial classes ("MACROLIDES (SAUF SPIRAMYCINE)") are
separate nodes with their own explicit member list.
"""

from __future__ import annotations

import gzip
import json
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from checker.criteria import Node, from_thesaurus
from checker.drugs import build_index
from checker.drugs.names import clean, mineral_key, salt_candidates
from checker.referentials import ManifestEntry, ReferentialError, loader, verify_entry
from checker.referentials.drugs import entries as drug_entries
from checker.text import fold

LEVEL_RANK = {"CI": 3, "AD": 2, "PE": 1, "APEC": 0}
LEVEL_NAMES_FR = {
    "CI": "contre-indication",
    "AD": "association déconseillée",
    "PE": "précaution d'emploi",
    "APEC": "à prendre en compte",
}
LEVEL_NAMES_EN = {
    "CI": "contraindicated",
    "AD": "combination not recommended",
    "PE": "precaution for use",
    "APEC": "to be taken into account",
}

TOPICAL_ROUTE = "topique"
"""A local route that does not say which one (see :meth:`Thesaurus.local_only`)."""

# Substances the thesaurus does not list by name (not marketed in France, e.g. oral ketorolac) join a
# class by their ATC code, only for classes whose ATC groups match the thesaurus definition exactly.
# WHO ATC groups M01AA/AB/AC/AE/AG/AH = non-steroidal anti-inflammatory drugs (M01AX "other" left out).
ATC_CLASS_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "anti inflammatoires non steroidiens": ("M01AA", "M01AB", "M01AC", "M01AE", "M01AG", "M01AH"),
}

_SALT_WORDS = frozenset("""
sodique potassique calcique magnesique trometamol cilexetil medoxomil mesilate besilate maleate
chlorhydrate bromhydrate sulfate phosphate tartrate citrate fumarate succinate acetate dipropionate
propionate hemifumarate hyclate monohydrate dihydrate trihydrate anhydre betadex lysine arginine disodique
""".split())


@dataclass(frozen=True, slots=True)
class LevelRule:
    """One level of an entry and the condition under which it applies."""

    level: str  # CI, AD, PE, APEC
    condition: dict[str, Any]
    criterion: Node = field(init=False, compare=False, repr=False)
    """``condition`` in the criteria language (:mod:`checker.criteria`)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "criterion", from_thesaurus(self.condition))


@dataclass(frozen=True, slots=True)
class Entry:
    """One "A + B" paragraph of the thesaurus (as printed under A)."""

    a: str
    b: str
    interactant: str
    levels: tuple[LevelRule, ...]
    themes: tuple[str, ...]
    line: int
    others_only: bool = False  # "X + AUTRES X": two different members of the same class
    hand_encoded: bool = False  # conditions encoded by hand from the PDF prose (referentials/thesaurus/hand-encoded.json)
    gate: dict[str, Any] | None = None  # when it evaluates false the entry does not concern the pair
    gate_criterion: Node | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.gate is not None:
            object.__setattr__(self, "gate_criterion", from_thesaurus(self.gate))

    @property
    def highest(self) -> str:
        return max((lv.level for lv in self.levels), key=LEVEL_RANK.__getitem__)

    @property
    def multi_level(self) -> bool:
        return len(self.levels) > 1


@dataclass(frozen=True, slots=True)
class Match:
    """An entry that applies to a pair of substances, with the class paths explaining it."""

    entry: Entry
    first: str  # substance key on the entry's "A" side
    second: str  # substance key on the "B" side
    path_first: tuple[str, ...]  # substance node … → entry.a
    path_second: tuple[str, ...]


def _aliases(name: str) -> set[str]:
    """Folded spellings under which a thesaurus name may meet a prescription substance key."""
    f = fold(name)
    out = {f}
    words = [w for w in f.split() if w not in _SALT_WORDS]
    if words:
        out.add(" ".join(words))
    try:  # the drug referential's moiety folding (an odd spelling keeps the plain aliases)
        c = clean(name)
        out.add(c)
        m = mineral_key(c)
        if m:
            out.add(m)
        out.update(list(salt_candidates(c))[:3])
    except Exception:  # pragma: no cover - drug referential not available
        pass
    return {a for a in out if a}


class Thesaurus:
    """Entries and class graph of the thesaurus; ask :meth:`matches` for a pair of substances."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.source: dict[str, str] = data["source"]
        self.entities: dict[str, dict[str, Any]] = data["entities"]
        self.entries: list[Entry] = [
            Entry(
                a=e["a"], b=e["b"], interactant=e["interactant"],
                levels=tuple(LevelRule(lv["level"], lv["condition"]) for lv in e["levels"]),
                themes=tuple(e["themes"]), line=int(e["line"]), others_only=bool(e["others_only"]),
                hand_encoded=bool(e.get("hand_encoded", False)), gate=e.get("gate"),
            )
            for e in data["entries"]
        ]
        self.local_routes: dict[str, Any] = data.get("local_routes", {"routes": [], "exceptions": []})
        self.graph = nx.DiGraph()
        self.alias_index: dict[str, set[str]] = {}
        for key, ent in self.entities.items():
            self.graph.add_node(key, name=ent["name"], kind="class" if ent["members"] else "entity")
            for m in ent["members"]:
                self.graph.add_edge(m, key)
                self._alias(m, m)
            for cls in ent["see_also"]:
                target = self._entity_for(cls)
                if target and target != key:
                    self.graph.add_edge(key, target)
            if not ent["members"]:
                for a in ent["aliases"]:
                    self._alias(a, key)
                if "(voie" in ent["name"].lower():  # "ADRÉNALINE (VOIE …)" also answers to "adrenaline"
                    self._alias(ent["name"].split("(")[0], key)
        self.by_a: dict[str, list[Entry]] = {}
        for e in self.entries:
            self.by_a.setdefault(e.a, []).append(e)

    def _alias(self, name: str, node: str) -> None:
        for a in _aliases(name):
            self.alias_index.setdefault(a, set()).add(node)

    def _entity_for(self, folded: str) -> str | None:
        if folded in self.entities:
            return folded
        for key in self.entities:  # "Voir aussi" may shorten a class name
            if key.startswith(folded) or folded.startswith(key):
                return key
        return None

    # --- substance side -------------------------------------------------------------------
    def nodes_for(self, substance_key: str) -> frozenset[str]:
        """Thesaurus nodes a prescription substance key stands for (empty when unknown)."""
        return _nodes_for(self, substance_key)

    def closure(self, substance_key: str) -> dict[str, tuple[str, ...]]:
        """Every node reachable from the substance (itself, its classes, their classes…), each
        with the shortest path leading to it."""
        return _closure(self, substance_key)

    def closure_with_atc(self, substance_key: str, atc: tuple[str, ...] | frozenset[str] = ()) -> dict[str, tuple[str, ...]]:
        """:meth:`closure`, or for a substance the thesaurus does not name, the classes its ATC
        code places it in (:data:`ATC_CLASS_EXTENSIONS`) and their parents."""
        found = self.closure(substance_key)
        if found or not atc:
            return found
        cache: dict[tuple[Any, ...], dict[str, tuple[str, ...]]] = self.__dict__.setdefault("_atc_closure_cache", {})
        hit = cache.get((substance_key, atc))
        if hit is None:  # remembered (not to be changed): a CDS request's fresh lines ask it for each line and pair
            if len(cache) > 100_000:
                cache.clear()
            hit = cache[(substance_key, atc)] = self._closure_by_atc(substance_key, atc)
        return hit

    def _closure_by_atc(self, substance_key: str, atc: tuple[str, ...] | frozenset[str]) -> dict[str, tuple[str, ...]]:
        out: dict[str, tuple[str, ...]] = {}
        for cls, prefixes in ATC_CLASS_EXTENSIONS.items():
            if cls in self.entities and any(a.startswith(prefixes) for a in atc):
                out[cls] = (substance_key, cls)
                for nxt in nx.descendants(self.graph, cls):
                    out.setdefault(nxt, (substance_key, cls, nxt))
        if out:
            out[substance_key] = (substance_key,)
        return out

    def knows(self, substance_key: str) -> bool:
        return bool(self.nodes_for(substance_key))

    def substance_nodes(self) -> list[str]:
        """Every node that stands for a single substance (class members and member-less entries)."""
        members = {m for e in self.entities.values() for m in e["members"]}
        singles = {k for k, e in self.entities.items() if not e["members"]}
        return sorted(members | singles)

    def local_only(self, route: str | None, keys: frozenset[str], atc: frozenset[str]) -> bool:
        """True when a line given by a local route (eye drops, skin, nose …) is outside the scope of
        the thesaurus' systemic interactions, i.e. it is not one of the listed exceptions.

        ``route`` is one of the encoding's local routes or ``"topique"``: a surface route that does not
        say which (SNOMED CT "Topical route"), for which every exception counts whatever its route."""
        if route is None:
            return False
        r = fold(route)
        generic = r == TOPICAL_ROUTE
        if not generic and r not in self.local_routes["routes"]:
            return False
        for exc in self.local_routes["exceptions"]:
            if exc["routes"] and not generic and r not in exc["routes"]:
                continue
            if any(k in exc["keys"] for k in keys) or any(a.startswith(tuple(exc["atc"])) for a in atc if exc["atc"]):
                return False
        return True

    # --- pairs ------------------------------------------------------------------------------
    def matches(self, key_a: str, key_b: str, atc_a: tuple[str, ...] = (), atc_b: tuple[str, ...] = ()) -> list[Match]:
        """Entries that apply to substances ``key_a`` and ``key_b`` (either orientation); ATC codes
        place substances the thesaurus does not name (see :meth:`closure_with_atc`). Memoised: a
        pure function of its arguments, asked again for every pair of lines naming the same drugs."""
        if key_a == key_b:
            return []
        memo: dict[tuple[Any, ...], list[Match]] = self.__dict__.setdefault("_match_cache", {})
        args = (key_a, key_b, atc_a, atc_b)
        hit = memo.get(args)
        if hit is None:
            if len(memo) > 100_000:
                memo.clear()
            hit = memo[args] = self._matches(key_a, key_b, atc_a, atc_b)
        return list(hit)

    def _matches(self, key_a: str, key_b: str, atc_a: tuple[str, ...], atc_b: tuple[str, ...]) -> list[Match]:
        out: list[Match] = []
        ca, cb = self.closure_with_atc(key_a, atc_a), self.closure_with_atc(key_b, atc_b)
        if not ca or not cb:
            return []
        for first, second, c1, c2 in ((key_a, key_b, ca, cb), (key_b, key_a, cb, ca)):
            for node, path in c1.items():
                for e in self.by_a.get(node, ()):
                    if e.b in c2:
                        if e.others_only and (self.nodes_for(first) & self.nodes_for(second)):
                            continue
                        out.append(Match(e, first, second, path, c2[e.b]))
        return out


def _candidates(key: str) -> list[str]:
    f = fold(key)
    out = [f]
    words = [w for w in f.split() if w not in _SALT_WORDS]
    if words:
        out.append(" ".join(words))
    parts = f.split()
    if len(parts) == 2:  # English order "isosorbide dinitrate" → "dinitrate d isosorbide"
        a, b = parts
        out.append(f"{b} d {a}" if a[0] in "aeiouyh" else f"{b} de {a}")
    try:  # the drug referential's moiety folding (an odd spelling keeps the plain candidates)
        c = clean(key)
        m = mineral_key(c)
        out.extend([c, *([m] if m else []), *salt_candidates(c)])
    except Exception:  # pragma: no cover
        pass
    return list(dict.fromkeys(out))


def _nodes_for(th: Thesaurus, key: str) -> frozenset[str]:
    cache: dict[str, frozenset[str]] = th.__dict__.setdefault("_node_cache", {})
    hit = cache.get(key)
    if hit is not None:
        return hit
    found: set[str] = set()
    for c in _candidates(key):
        found |= th.alias_index.get(c, set())
        if found:
            break
    cache[key] = frozenset(found)
    return cache[key]


def _closure(th: Thesaurus, key: str) -> dict[str, tuple[str, ...]]:
    cache: dict[str, dict[str, tuple[str, ...]]] = th.__dict__.setdefault("_closure_cache", {})
    hit = cache.get(key)
    if hit is not None:
        return hit
    paths: dict[str, tuple[str, ...]] = {}
    queue: deque[str] = deque()
    for n in sorted(th.nodes_for(key)):
        paths[n] = (n,)
        queue.append(n)
    while queue:
        n = queue.popleft()
        if n not in th.graph:
            continue
        for nxt in sorted(th.graph.successors(n)):
            if nxt not in paths:
                paths[nxt] = paths[n] + (nxt,)
                queue.append(nxt)
    cache[key] = paths
    return paths


def load(path: Path) -> Thesaurus:
    """Read the gzip JSON encoding (clear error naming the file when malformed)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: unreadable thesaurus encoding ({exc})") from None
    for i, e in enumerate(data.get("entries", [])):
        missing = {"a", "b", "levels", "line", "interactant", "themes", "others_only"} - e.keys()
        if missing:
            raise ValueError(f"{path}: entry {i}: missing {', '.join(sorted(missing))}")
        for lv in e["levels"]:
            if lv.get("level") not in LEVEL_RANK:
                raise ValueError(f"{path}: entry {i} (PDF line {e['line']}): unknown level {lv.get('level')!r}")
    if "entities" not in data or "source" not in data:
        raise ValueError(f"{path}: missing 'entities' or 'source'")
    return Thesaurus(data)


@loader("ansm-thesaurus")
def load_thesaurus(entry: ManifestEntry, root: Path) -> Thesaurus:
    """Load the thesaurus encoding declared in the manifest (referential ``ansm-thesaurus``)."""
    path = root / entry.files[0][0]
    try:
        th = load(path)
    except ValueError as exc:
        raise ReferentialError(str(exc)) from None
    link_drug_keys(th, root)
    return th


def link_drug_keys(th: Thesaurus, root: Path) -> None:
    """One substance, one key: each thesaurus substance also answers to the key the drug index
    gives its name ("BUPROPION" → "bupropione", "BOTULIQUE (TOXINE)" → "toxine botulinique"), so a
    line identified from any source meets its thesaurus entry. Skipped without a drug index."""
    try:
        bdpm, subs, th_entry = drug_entries(root)
    except ReferentialError:
        return  # no drug referential beside this thesaurus
    verify_entry(bdpm, root)
    verify_entry(subs, root)
    idx = build_index(root, bdpm, subs, th_entry)
    for node, ent in th.entities.items():
        for name in (ent["members"] or [ent["name"]]):
            key = idx.substance_key(name)
            if key:
                th.alias_index.setdefault(key, set()).add(name if ent["members"] else node)


@dataclass(frozen=True, slots=True)
class Advice:
    """What a thesaurus entry's conduct asks, as codes and numbers (referential
    ``ansm-thesaurus-advice``, built by tools/build_thesaurus_advice.py): monitoring codes, dose
    adjustment, avoidance, a dose not to exceed, a spacing of intakes, a period after stopping."""

    monitor: tuple[str, ...] = ()
    adjust_dose: bool = False
    avoid: bool = False
    max_dose: dict[str, Any] | None = None  # value, unit, per_day, drug
    spacing_h: float | None = None
    after_stop: dict[str, Any] | None = None  # value, unit (d, wk, mo)


class ThesaurusAdvice:
    """The encoded conduct of the thesaurus entries, looked up by entry."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._entries: dict[str, dict[str, Any]] = data["entries"]

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[str]:
        return list(self._entries)

    def raw(self, key: str) -> dict[str, Any]:
        return self._entries[key]

    def of(self, entry: Entry) -> Advice | None:
        raw = self._entries.get(f"{entry.a}|{fold(entry.interactant)}")
        if raw is None:
            return None
        return Advice(tuple(raw.get("monitor", ())), bool(raw.get("adjust_dose")), bool(raw.get("avoid")),
                      raw.get("max_dose"), raw.get("spacing_h"), raw.get("after_stop"))


@loader("ansm-thesaurus-advice")
def load_advice(entry: ManifestEntry, root: Path) -> ThesaurusAdvice:
    """Load the encoded conduct of the thesaurus entries (referential ``ansm-thesaurus-advice``)."""
    path = root / entry.files[0][0]
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["entries"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReferentialError(f"{path}: unreadable thesaurus advice ({exc})") from None
    if not isinstance(entries, dict):
        raise ReferentialError(f"{path}: 'entries' is not an object")
    return ThesaurusAdvice(data)
