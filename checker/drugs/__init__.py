"""Drug referential (BDPM import, substance model, compiled index) and medication identification.

``identify(order, refs) -> MedicationIdentity`` is called for every order before the rules run.
``refs.get("bdpm")`` (or ``refs.get("substances")``) gives the :class:`~checker.drugs.index.DrugIndex`
whose API is documented in :mod:`checker.drugs.index`; :func:`substance_key` folds any substance
spelling to the moiety key every rule compares on. This package registers the loaders of both
referentials (the index is compiled once and cached, see :func:`build_index`).
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from checker.drugs import index as I
from checker.drugs.bdpm import load_snapshot
from checker.drugs.index import DrugIndex
from checker.drugs.matcher import Identifier
from checker.model import MedicationIdentity, MedicationOrder
from checker.referentials import ManifestEntry, Referentials, cache_dir, default_referentials, loader, verify_entry
from checker.referentials.drugs import entries, substance_tables

_identifiers: dict[int, tuple[DrugIndex, Identifier]] = {}
_lock = threading.Lock()


def drug_index(refs: Referentials | None = None) -> DrugIndex:
    """The compiled drug index of ``refs`` (the shipped referentials by default)."""
    if refs is None:
        refs = default_referentials()
    return refs.get("bdpm")


def identifier(refs: Referentials | None = None) -> Identifier:
    """The (cached) identifier bound to the drug index of ``refs``."""
    idx = drug_index(refs)
    hit = _identifiers.get(id(idx))
    if hit is not None and hit[0] is idx:
        return hit[1]
    with _lock:
        hit = _identifiers.get(id(idx))  # another thread may have built it while we waited
        if hit is not None and hit[0] is idx:
            return hit[1]
        ident = Identifier(idx)
        _identifiers[id(idx)] = (idx, ident)
        return ident


def identify(order: MedicationOrder, refs: Referentials | None = None) -> MedicationIdentity:
    """What ``order`` prescribes: substances, product when known, method and confidence."""
    return identifier(refs).identify(order)


def identify_text(text: str, refs: Referentials | None = None) -> MedicationIdentity | None:
    """Identify a free-text label ("Doliprane 1000mg cp"); None when nothing matches."""
    return identifier(refs).from_text(text)


def substance_key(name: str, refs: Referentials | None = None) -> str | None:
    """Moiety key of a substance name (salts, hydrates, English INN, thesaurus spelling), or None."""
    return drug_index(refs).substance_key(name)


# --- the ``bdpm`` and ``substances`` referentials: one compiled index ----------------------------

_index_lock = threading.Lock()
_indexes: dict[str, DrugIndex] = {}


def build_index(root: Path, bdpm: ManifestEntry, substances: ManifestEntry) -> DrugIndex:
    """Load the compiled index from the cache or build (and cache) it.

    The cache file (in :func:`checker.referentials.cache_dir`) is named after the combined checksum
    of both entries' files and the index format: a changed source means a new name, hence a rebuild.
    """
    digest = hashlib.sha256(f"{I.INDEX_FORMAT}:{bdpm.digest}:{substances.digest}".encode()).hexdigest()[:24]
    if digest in _indexes:
        return _indexes[digest]
    with _index_lock:
        if digest in _indexes:
            return _indexes[digest]
        path = cache_dir() / f"drug-index-{digest}.pickle"
        idx = I.load(path) if path.is_file() else None
        if idx is None:
            tables = load_snapshot(root / "bdpm")
            st = substance_tables(root, substances)
            idx = I.build(tables, st["synonyms"], st["rxnorm"], st["foreign"], st["atc"], bdpm.edition)
            try:
                I.save(idx, path)
            except OSError:
                pass  # read-only cache: keep the in-memory index
        _indexes[digest] = idx
        return idx


@loader("bdpm")
def load_bdpm(entry: ManifestEntry, root: Path) -> DrugIndex:
    """The drug index (BDPM + substance tables)."""
    bdpm, subs = entries(root)
    verify_entry(subs, root)
    return build_index(root, bdpm, subs)


@loader("substances")
def load_substances(entry: ManifestEntry, root: Path) -> DrugIndex:
    """Same index as ``bdpm``: its substance model (``substance_key``, ``substances_with_atc``…)."""
    bdpm, subs = entries(root)
    verify_entry(bdpm, root)
    return build_index(root, bdpm, subs)
