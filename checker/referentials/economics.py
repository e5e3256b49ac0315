"""Loaders of the economic referentials: the MTE substance list, biosimilar groups, cheaper strategies.

Each file is JSON; :func:`_json` reports a syntax error as ``file:line`` and every loader checks the
shape of what it reads, naming the file and the item at fault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.findings import Source
from checker.referentials import ManifestEntry, ReferentialError, loader
from checker.text import fold_keeping_punctuation as fold

MTE_ID = "mte-substances"
BIOSIMILARS_ID = "biosimilar-groups"
STRATEGIES_ID = "cheaper-strategies"


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReferentialError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise ReferentialError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None


def _source(obj: Any, where: str) -> Source:
    if not isinstance(obj, dict) or not obj.get("label") or not obj.get("url"):
        raise ReferentialError(f"{where}: a source needs a label and a url")
    return Source(str(obj["label"]), str(obj["url"]), str(obj.get("edition", "")))


def _require(item: Any, keys: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise ReferentialError(f"{where}: expected an object")
    missing = [k for k in keys if k not in item]
    if missing:
        raise ReferentialError(f"{where}: missing {', '.join(missing)}")
    return item


# --- MTE ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MteList:
    """Narrow-therapeutic-margin substances (arrêté du 12 novembre 2019 as amended)."""

    keys: frozenset[str]  # folded names and aliases
    names: dict[str, str]  # folded key → display name
    justifications: dict[str, str]  # code → meaning
    efg_max_age_years: int
    source: Source

    def covers(self, substance_key: str) -> bool:
        """True when a substance (folded DCI, salts tolerated) is on the list."""
        k = fold(substance_key)
        return k in self.keys or any(k.startswith(m + " ") or m.startswith(k + " ") for m in self.keys)


@loader(MTE_ID)
def load_mte(entry: ManifestEntry, root: Path) -> MteList:
    path = entry.paths(root)[0]
    data = _require(_json(path), ("substances", "justifications", "source", "efg_max_age_years"), str(path))
    keys: set[str] = set()
    names: dict[str, str] = {}
    for i, s in enumerate(data["substances"]):
        s = _require(s, ("key", "name"), f"{path}: substances[{i}]")
        for k in [s["key"], *s.get("aliases", [])]:
            keys.add(fold(k))
            names[fold(k)] = s["name"]
    just = data["justifications"]
    if not isinstance(just, dict) or set(just) != {"MTE", "EFG", "CIF"}:
        raise ReferentialError(f"{path}: justifications must be exactly MTE, EFG, CIF")
    return MteList(frozenset(keys), names, dict(just), int(data["efg_max_age_years"]),
                   _source(data["source"], f"{path}: source"))


# --- biosimilars ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BiosimilarGroup:
    substance: str  # folded
    name: str
    reference_products: tuple[str, ...]  # folded brand names
    biosimilars_named: tuple[str, ...]
    source: Source

    def is_reference(self, product: str) -> bool:
        p = fold(product)
        return any(p == r or p.startswith(r + " ") for r in self.reference_products)


@loader(BIOSIMILARS_ID)
def load_biosimilars(entry: ManifestEntry, root: Path) -> dict[str, BiosimilarGroup]:
    """Biosimilar groups by folded substance."""
    path = entry.paths(root)[0]
    data = _require(_json(path), ("groups",), str(path))
    out: dict[str, BiosimilarGroup] = {}
    for i, g in enumerate(data["groups"]):
        where = f"{path}: groups[{i}]"
        g = _require(g, ("substance", "name", "reference_products", "source"), where)
        key = fold(g["substance"])
        if key in out:
            raise ReferentialError(f"{where}: substance {key!r} listed twice")
        out[key] = BiosimilarGroup(key, g["name"], tuple(fold(r) for r in g["reference_products"]),
                                   tuple(fold(b) for b in g.get("biosimilars_named", [])),
                                   _source(g["source"], f"{where}.source"))
    return out


# --- cheaper strategies ---------------------------------------------------------------------------


STRATEGY_KINDS = ("class-switch", "same-dose-level", "drop-cotherapy", "large-pack")


@dataclass(frozen=True, slots=True)
class Strategy:
    """A cheaper strategy of comparable efficacy and the condition that makes it apply.

    ``kind`` says how EQ005 evaluates it: ``class-switch`` (another class at initiation, no amount:
    the source gives no dose correspondence), ``same-dose-level`` (a cheaper substance at the same
    dose level of ``dose_levels``), ``drop-cotherapy`` (a co-prescription the source calls
    unjustified under stated conditions) or ``large-pack`` (a larger, cheaper pack for long
    treatments). ``prescribed_atc`` are ATC prefixes (``*`` = any); ``params`` keeps the other
    conditions as written in the file (ICD-10 prefixes required/excluded, ATC of excluding
    allergies, prior treatments or co-therapies, ages, durations).
    """

    id: str
    kind: str
    title: str
    prescribed_atc: tuple[str, ...]
    preferred: tuple[dict[str, Any], ...]
    applies_when: str
    evidence: str
    source: Source
    params: dict[str, Any]
    title_en: str = ""
    applies_when_en: str = ""
    evidence_en: str = ""

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def text(self, field: str, lang: str) -> str:
        """``title``, ``applies_when`` or ``evidence`` in ``lang`` (English when the file gives it, else French)."""
        if lang == "en":
            english = getattr(self, f"{field}_en")
            if english:
                return str(english)
        return str(getattr(self, field))


@loader(STRATEGIES_ID)
def load_strategies(entry: ManifestEntry, root: Path) -> tuple[Strategy, ...]:
    path = entry.paths(root)[0]
    data = _require(_json(path), ("strategies",), str(path))
    out: list[Strategy] = []
    seen: set[str] = set()
    fixed = ("id", "kind", "title", "prescribed_atc", "preferred", "applies_when", "evidence", "source")
    english = ("title_en", "applies_when_en", "evidence_en")  # optional English wording
    for i, s in enumerate(data["strategies"]):
        where = f"{path}: strategies[{i}]"
        s = _require(s, fixed, where)
        if s["id"] in seen:
            raise ReferentialError(f"{where}: duplicate strategy id {s['id']!r}")
        seen.add(s["id"])
        if s["kind"] not in STRATEGY_KINDS:
            raise ReferentialError(f"{where}: kind {s['kind']!r} is not one of {', '.join(STRATEGY_KINDS)}")
        if not s["prescribed_atc"] or not s["preferred"]:
            raise ReferentialError(f"{where}: prescribed_atc and preferred must not be empty")
        for j, p in enumerate(s["preferred"]):
            _require(p, ("substance", "atc"), f"{where}.preferred[{j}]")
        if s["kind"] == "same-dose-level" and not isinstance(s.get("dose_levels"), dict):
            raise ReferentialError(f"{where}: a same-dose-level strategy needs dose_levels")
        out.append(Strategy(
            id=s["id"], kind=s["kind"], title=s["title"], prescribed_atc=tuple(s["prescribed_atc"]),
            preferred=tuple(s["preferred"]), applies_when=s["applies_when"], evidence=s["evidence"],
            source=_source(s["source"], f"{where}.source"),
            params={k: v for k, v in s.items() if k not in fixed and k not in english},
            **{k: str(s[k]) for k in english if s.get(k)},
        ))
    return tuple(out)
