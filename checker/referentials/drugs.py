"""Loaders of the drug referentials: ``bdpm`` (BDPM snapshot) and ``substances`` (substance tables).

Both return the same :class:`checker.drugs.index.DrugIndex`, compiled from the two entries and
cached in :func:`checker.referentials.cache_dir` under the combined checksum of their files (a
changed source means a new file name, hence a rebuild).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import TypedDict

from checker.referentials import ManifestEntry, ReferentialError, cache_dir, load_manifest, loader, verify_entry

_lock = threading.Lock()
_memo: dict[str, object] = {}


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


class _SubstanceTables(TypedDict):
    synonyms: list[tuple[str, ...]]  # (spelling, key, language); language "" when absent
    rxnorm: list[tuple[str, str]]
    foreign: list[tuple[str, str]]
    atc: list[tuple[str, str]]


def _substance_tables(root: Path, entry: ManifestEntry) -> _SubstanceTables:
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
    import gzip
    import json

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


def build_index(root: Path, bdpm: ManifestEntry, substances: ManifestEntry,
                thesaurus: ManifestEntry | None = None):  # -> DrugIndex
    """Load the compiled index from the cache or build (and cache) it."""
    from checker.drugs import index as I
    from checker.drugs.bdpm import load_snapshot

    th_digest = thesaurus.digest if thesaurus is not None else "-"
    digest = hashlib.sha256(
        f"{I.INDEX_FORMAT}:{bdpm.digest}:{substances.digest}:{th_digest}".encode()).hexdigest()[:24]
    if digest in _memo:
        return _memo[digest]
    with _lock:
        if digest in _memo:
            return _memo[digest]
        path = cache_dir() / f"drug-index-{digest}.pickle"
        idx = I.load(path) if path.is_file() else None
        if idx is None:
            tables = load_snapshot(root / "bdpm")
            st = _substance_tables(root, substances)
            idx = I.build(tables, st["synonyms"], st["rxnorm"], st["foreign"], st["atc"], bdpm.edition,
                          thesaurus_names=thesaurus_substances(root, thesaurus))
            try:
                I.save(idx, path)
            except OSError:
                pass  # read-only cache: keep the in-memory index
        _memo[digest] = idx
        return idx


def _entries(root: Path) -> tuple[ManifestEntry, ManifestEntry, ManifestEntry | None]:
    manifest = load_manifest(root)
    try:
        return manifest["bdpm"], manifest["substances"], manifest.get("ansm-thesaurus")
    except KeyError as exc:
        raise ReferentialError(f"{root / 'MANIFEST.json'}: no referential {exc.args[0]!r}") from None


@loader("bdpm")
def load_bdpm(entry: ManifestEntry, root: Path):  # -> DrugIndex
    """The drug index (BDPM + substance tables)."""
    bdpm, subs, th = _entries(root)
    verify_entry(subs, root)
    if th is not None:
        verify_entry(th, root)
    return build_index(root, bdpm, subs, th)


@loader("substances")
def load_substances(entry: ManifestEntry, root: Path):  # -> DrugIndex
    """Same index as ``bdpm``: its substance model (``substance_key``, ``substances_with_atc``…)."""
    bdpm, subs, th = _entries(root)
    verify_entry(bdpm, root)
    if th is not None:
        verify_entry(th, root)
    return build_index(root, bdpm, subs, th)
