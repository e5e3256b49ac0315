"""The tables the facts layer reads (validity windows, code lists, words), as data.

They ship in ``referentials/facts/clinical-facts.json`` (manifest id ``clinical-facts``, checked by
the referential store like any other); the loader registered here parses them, and callers hand
:class:`FactTables` to the facts functions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checker.facts.concepts import Code, ConceptSet
from checker.referentials import ManifestEntry, ReferentialError, loader


@dataclass(frozen=True, slots=True)
class ObservationCodes:
    system: str
    codes: frozenset[str]


@dataclass(frozen=True, slots=True)
class FactTables:
    """Validity windows (days), inferred-indication window, observation codes and concept sets."""

    validity_days: dict[str, int] = field(default_factory=dict)
    inferred_indication_days: int = 0
    observations: dict[str, ObservationCodes] = field(default_factory=dict)
    concepts: dict[str, ConceptSet] = field(default_factory=dict)

    def window(self, what: str) -> int | None:
        return self.validity_days.get(what)

    def concept(self, name: str) -> ConceptSet:
        return self.concepts[name]


def parse(data: dict[str, Any]) -> FactTables:
    """Build the tables from the JSON of ``clinical-facts.json`` (``ValueError`` when malformed)."""
    try:
        windows = {k: int(v["days"]) for k, v in data["validity_days"].items()}
        inferred = int(data["inferred_indication_days"]["days"])
        observations = {k: ObservationCodes(v["system"], frozenset(v["codes"])) for k, v in data["observations"].items()}
        concepts = {
            k: ConceptSet(tuple(Code(c["system"], c["code"], bool(c.get("prefix", False))) for c in v["codes"]),
                          tuple(re.compile(p) for p in v["patterns"]))
            for k, v in data["concepts"].items()}
    except (KeyError, TypeError, ValueError, re.error) as exc:
        raise ValueError(f"clinical-facts: malformed table ({exc})") from None
    return FactTables(windows, inferred, observations, concepts)


@loader("clinical-facts")
def load_clinical_facts(entry: ManifestEntry, root: Path) -> FactTables:
    """Validity windows, inferred-indication window, observation codes and concept sets."""
    path = root / entry.files[0][0]
    try:
        return parse(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ReferentialError(f"{path}: {exc}") from None
