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
from checker.model import RULE_CONFIDENCE, MedicationIdentity, MedicationOrder
from checker.referentials import ManifestEntry, Referentials, cache_dir, default_referentials, loader, verify_entry
from checker.referentials.drugs import entries, substance_tables, thesaurus_substances

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


def build_index(root: Path, bdpm: ManifestEntry, substances: ManifestEntry,
                thesaurus: ManifestEntry | None = None) -> DrugIndex:
    """Load the compiled index from the cache or build (and cache) it.

    The cache file (in :func:`checker.referentials.cache_dir`) is named after the combined checksum
    of both entries' files and the index format: a changed source means a new name, hence a rebuild.
    """
    th_digest = thesaurus.digest if thesaurus is not None else "-"
    digest = hashlib.sha256(
        f"{I.INDEX_FORMAT}:{bdpm.digest}:{substances.digest}:{th_digest}".encode()).hexdigest()[:24]
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
            idx = I.build(tables, st["synonyms"], st["rxnorm"], st["foreign"], st["atc"], bdpm.edition,
                          thesaurus_names=thesaurus_substances(root, thesaurus))
            try:
                I.save(idx, path)
            except OSError:
                pass  # read-only cache: keep the in-memory index
        _indexes[digest] = idx
        return idx


def _whole_index(root: Path) -> DrugIndex:
    """The one index both entries answer with, once every file it is built from is verified."""
    bdpm, subs, th = entries(root)
    for entry in (bdpm, subs, th):
        if entry is not None:
            verify_entry(entry, root)
    return build_index(root, bdpm, subs, th)


@loader("bdpm")
def load_bdpm(entry: ManifestEntry, root: Path) -> DrugIndex:
    """The drug index (BDPM + substance tables)."""
    return _whole_index(root)


@loader("substances")
def load_substances(entry: ManifestEntry, root: Path) -> DrugIndex:
    """Same index as ``bdpm``: its substance model (``substance_key``, ``substances_with_atc``…)."""
    return _whole_index(root)


def explain_text(text: str, refs: Referentials | None = None) -> dict[str, object]:
    """What identification understood of a label, for people: substances with strengths, product
    (CIS/CIP13) when known, generic group, route/form, method, confidence, alternatives, and why a
    reading was refused (below the rules' confidence, or nothing matched)."""
    ident = identify_text(text, refs)
    if ident is None:
        return {"text": text, "identified": False, "substances": [], "confidence": 0.0, "method": "none",
                "refused": "no substance, brand or code of the drug referential matches this text"}
    idx = drug_index(refs)
    refused = ""
    if ident.confidence < RULE_CONFIDENCE:
        refused = (f"confidence {ident.confidence:.2f} below the {RULE_CONFIDENCE:.2f} the rules require"
                   + (f" ({ident.note})" if ident.note else ""))
    return {
        "text": text, "identified": True,
        "substances": [{"key": s.key, "name": s.name, "atc": list(s.atc),
                        "strength": f"{s.strength.value:g} {s.strength.unit}".strip() if s.strength else None}
                       for s in ident.substances],
        "cis": ident.cis, "cip13": ident.cip13 or (idx.pres_by_cis.get(ident.cis, ("",))[0] or None
                                                   if ident.cis and len(idx.pres_by_cis.get(ident.cis, ())) == 1 else None),
        "product": ident.product or None, "generic_group": ident.generic_group,
        "route": ident.route or None, "form": ident.form or None, "prescribed_as": ident.prescribed_as,
        "method": ident.method, "confidence": ident.confidence, "used_by_rules": not refused,
        "alternatives": list(ident.alternatives), "note": ident.note or None, "refused": refused or None,
    }
