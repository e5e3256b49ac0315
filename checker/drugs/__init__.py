"""Drug referential (BDPM import, substance model, compiled index) and medication identification.

``identify(order, refs) -> MedicationIdentity`` is called for every order before the rules run.
``refs.get("bdpm")`` (or ``refs.get("substances")``) gives the :class:`~checker.drugs.index.DrugIndex`
whose API is documented in :mod:`checker.drugs.index`; :func:`substance_key` folds any substance
spelling to the moiety key every rule compares on.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from checker.drugs.matcher import Identifier
    from checker.drugs.index import DrugIndex
    from checker.model import MedicationIdentity, MedicationOrder
    from checker.referentials import Referentials

_identifiers: dict[int, tuple[DrugIndex, Identifier]] = {}
_lock = threading.Lock()


def drug_index(refs: Referentials | None = None) -> DrugIndex:
    """The compiled drug index of ``refs`` (the shipped referentials by default)."""
    if refs is None:
        from checker.referentials import default_referentials

        refs = default_referentials()
    return refs.get("bdpm")


def identifier(refs: Referentials | None = None) -> Identifier:
    """The (cached) identifier bound to the drug index of ``refs``."""
    idx = drug_index(refs)
    hit = _identifiers.get(id(idx))
    if hit is not None and hit[0] is idx:
        return hit[1]
    from checker.drugs.matcher import Identifier

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
