"""Therapeutic classes for duplication (DU002): WHO ATC chemical subgroups (level 4), their scope
and the standard combinations inside one subgroup that are not duplicates.

Loaded from ``referentials/iatrogenic/atc-level4.tsv`` (codes and WHO names of the subgroups DU002
reports) and ``referentials/iatrogenic/class-duplicates.json`` (scope, exceptions with their sources).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.findings import Source
from checker.model import MedicationOrder
from checker.referentials import ManifestEntry, ReferentialError, loader


@dataclass(frozen=True, slots=True)
class Side:
    """One side of an exception: level-5 ATC codes, and whether the line must be taken as needed."""

    atc: frozenset[str]
    as_needed: bool = False

    def holds(self, order: MedicationOrder, atc: str) -> bool:
        if atc not in self.atc:
            return False
        return not self.as_needed or (bool(order.dosages) and all(d.as_needed for d in order.dosages))


@dataclass(frozen=True, slots=True)
class ClassException:
    """Two members of one subgroup that form a standard combination."""

    id: str
    subgroup: str
    a: Side
    b: Side
    reason_fr: str
    reason_en: str
    source: Source

    def covers(self, x: MedicationOrder, ax: str, y: MedicationOrder, ay: str) -> bool:
        return (self.a.holds(x, ax) and self.b.holds(y, ay)) or (self.a.holds(y, ay) and self.b.holds(x, ax))


@dataclass(frozen=True, slots=True)
class TherapeuticClasses:
    names: dict[str, str]
    exceptions: tuple[ClassException, ...]
    basis: Source

    def subgroup(self, atc: str) -> str | None:
        """The level-4 subgroup of a level-5 code when DU002 reports it, else ``None``."""
        return atc[:5] if len(atc) == 7 and atc[:5] in self.names else None

    def exception(self, x: MedicationOrder, ax: str, y: MedicationOrder, ay: str) -> ClassException | None:
        return next((e for e in self.exceptions if e.subgroup == ax[:5] == ay[:5] and e.covers(x, ax, y, ay)), None)


def _side(d: dict[str, Any], where: str) -> Side:
    codes = d.get("atc")
    if not codes or any(len(c) != 7 for c in codes):
        raise ValueError(f"{where}: 'atc' must list level-5 ATC codes")
    return Side(frozenset(codes), bool(d.get("as_needed", False)))


def _source(d: dict[str, Any], where: str) -> Source:
    if not all(d.get(k) for k in ("label", "url", "edition")):
        raise ValueError(f"{where}: a source needs label, url and edition")
    return Source(d["label"], d["url"], d["edition"])


def load(root: Path, files: list[str]) -> TherapeuticClasses:
    tsv = next(root / f for f in files if f.endswith("atc-level4.tsv"))
    js = next(root / f for f in files if f.endswith("class-duplicates.json"))
    names: dict[str, str] = {}
    header = False
    for n, line in enumerate(tsv.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cells = line.split("\t")
        if not header:
            if cells != ["code", "name"]:
                raise ValueError(f"{tsv}:{n}: expected the header 'code<TAB>name'")
            header = True
            continue
        if len(cells) != 2 or len(cells[0]) != 5 or not cells[1]:
            raise ValueError(f"{tsv}:{n}: expected a level-4 ATC code and its name")
        names[cells[0]] = cells[1]
    try:
        raw = json.loads(js.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{js}:{exc.lineno}: {exc.msg}") from None
    out = []
    for i, e in enumerate(raw.get("exceptions", [])):
        where = f"{js}: exception {e.get('id', i)}"
        a, b = _side(e["a"], where), _side(e["b"], where)
        if e["subgroup"] not in names or any(c[:5] != e["subgroup"] for c in a.atc | b.atc):
            raise ValueError(f"{where}: codes must belong to a subgroup of atc-level4.tsv")
        if not e.get("reason_fr") or not e.get("reason_en"):
            raise ValueError(f"{where}: a reason in French and English is required")
        out.append(ClassException(e["id"], e["subgroup"], a, b, e["reason_fr"], e["reason_en"],
                                  _source(e["source"], where)))
    return TherapeuticClasses(names, tuple(out), _source(raw["basis"], f"{js}: basis"))


@loader("therapeutic-classes")
def load_therapeutic_classes(entry: ManifestEntry, root: Path) -> TherapeuticClasses:
    """The ATC chemical subgroups DU002 reports and the standard combinations it spares."""
    try:
        return load(root, [p for p, _ in entry.files])
    except (ValueError, KeyError) as exc:
        raise ReferentialError(str(exc)) from None
