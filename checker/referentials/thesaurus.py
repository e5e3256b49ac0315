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
        return load(path)
    except ValueError as exc:
        raise ReferentialError(str(exc)) from None
