"""Reading of the drug referentials' plain tables: the ``substances`` TSV files and the pair of
manifest entries (``bdpm``, ``substances``) that the drug index is compiled from. The loaders of
both ids are registered by :mod:`checker.drugs`, which compiles the index.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import TypedDict

from checker.referentials import ManifestEntry, ReferentialError, load_manifest


def read_tsv(path: Path, ncols: int, header: bool = False) -> list[tuple[str, ...]]:
    """Tab-separated rows (``#`` comments and blank lines skipped); wrong shapes raise file:line."""
    rows: list[tuple[str, ...]] = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#") or (header and n == 1):
                continue
            parts = line.split("\t")
            if len(parts) < ncols or not all(p.strip() for p in parts[:ncols]):
                raise ReferentialError(f"{path}:{n}: expected {ncols} non-empty tab-separated columns")
            rows.append(tuple(p.strip() for p in parts))
    return rows


class SubstanceTables(TypedDict):
    synonyms: list[tuple[str, ...]]  # (spelling, key, language); language "" when absent
    rxnorm: list[tuple[str, str]]
    foreign: list[tuple[str, str]]
    atc: list[tuple[str, str]]


def substance_tables(root: Path, entry: ManifestEntry) -> SubstanceTables:
    files = {Path(p).name: root / p for p, _ in entry.files}

    def need(name: str) -> Path:
        if name not in files:
            raise ReferentialError(f"{root / 'MANIFEST.json'}: referential 'substances' lacks {name}")
        return files[name]

    synonyms: list[tuple[str, ...]] = [(r[0], r[1], r[2] if len(r) > 2 else "")
                                       for r in read_tsv(need("synonyms.tsv"), 2)]
    rxnorm = [(r[1], r[0]) for r in read_tsv(need("rxnorm_ansm.tsv"), 2, header=True) if r[1] != "NA"]
    foreign = [(r[0], r[1]) for r in read_tsv(need("brands_foreign.tsv"), 2)]
    atc = [(r[0], r[1]) for r in read_tsv(need("atc.tsv"), 2)]
    return {"synonyms": synonyms, "rxnorm": rxnorm, "foreign": foreign, "atc": atc}


def thesaurus_substances(root: Path, entry: ManifestEntry | None) -> list[tuple[str, bool]]:
    """Substance names of the interaction thesaurus (class members and member-less entries, as
    printed), so that the drug index gives each the thesaurus' own key; [] without the thesaurus."""
    if entry is None:
        return []
    path = next((root / p for p, _ in entry.files if p.endswith(".json.gz")), None)
    if path is None:
        return []
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            entities = json.load(f)["entities"]
    except (OSError, ValueError, KeyError) as exc:
        raise ReferentialError(f"{path}: unreadable thesaurus encoding ({exc})") from None
    members = {(m, True) for e in entities.values() for m in e["members"]}
    singles = {(e["name"], False) for e in entities.values() if not e["members"]}
    return sorted(members | singles)


def entries(root: Path) -> tuple[ManifestEntry, ManifestEntry, ManifestEntry | None]:
    manifest = load_manifest(root)
    try:
        return manifest["bdpm"], manifest["substances"], manifest.get("ansm-thesaurus")
    except KeyError as exc:
        raise ReferentialError(f"{root / 'MANIFEST.json'}: no referential {exc.args[0]!r}") from None
