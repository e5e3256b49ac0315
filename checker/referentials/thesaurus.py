"""Loader of the ANSM interaction thesaurus encoding (referential ``ansm-thesaurus``)."""

from __future__ import annotations

from pathlib import Path

from checker.referentials import ManifestEntry, ReferentialError, loader


@loader("ansm-thesaurus")
def load_thesaurus(entry: ManifestEntry, root: Path):  # -> checker.iatrogenic.thesaurus.Thesaurus
    """Load the thesaurus encoding declared in the manifest."""
    from checker.iatrogenic.thesaurus import load

    path = root / entry.files[0][0]
    try:
        th = load(path)
    except ValueError as exc:
        raise ReferentialError(str(exc)) from None
    link_drug_keys(th, root)
    return th


def link_drug_keys(th, root: Path) -> None:  # th: checker.iatrogenic.thesaurus.Thesaurus
    """One substance, one key: each thesaurus substance also answers to the key the drug index
    gives its name ("BUPROPION" → "bupropione", "BOTULIQUE (TOXINE)" → "toxine botulinique"), so a
    line identified from any source meets its thesaurus entry. Skipped without a drug index."""
    from checker.referentials import verify_entry
    from checker.referentials.drugs import _entries, build_index

    try:
        bdpm, subs, th_entry = _entries(root)
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
