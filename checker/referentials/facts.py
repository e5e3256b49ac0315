"""Loader of the facts layer's tables (referential ``clinical-facts``)."""

from __future__ import annotations

import json
from pathlib import Path

from checker.facts.tables import FactTables, parse
from checker.referentials import ManifestEntry, ReferentialError, loader


@loader("clinical-facts")
def load_clinical_facts(entry: ManifestEntry, root: Path) -> FactTables:
    """Validity windows, inferred-indication window, observation codes and concept sets."""
    path = root / entry.files[0][0]
    try:
        return parse(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise ReferentialError(f"{path}: {exc}") from None
