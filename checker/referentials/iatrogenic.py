"""Loader of the iatrogenic rule data (referential ``iatrogenic-rules``)."""

from __future__ import annotations

from pathlib import Path

from checker.referentials import ManifestEntry, ReferentialError, loader


@loader("iatrogenic-rules")
def load_iatrogenic(entry: ManifestEntry, root: Path):  # -> checker.iatrogenic.risks.IatrogenicRules
    """Load duplicate classes, patient-specific risk rows and the STOPP v2 subset."""
    from checker.iatrogenic.risks import load

    try:
        return load(root, [p for p, _ in entry.files])
    except ValueError as exc:
        raise ReferentialError(str(exc)) from None


@loader("therapeutic-classes")
def load_therapeutic_classes(entry: ManifestEntry, root: Path):  # -> checker.iatrogenic.classes.TherapeuticClasses
    """Load the ATC chemical subgroups DU002 reports and the standard combinations it spares."""
    from checker.iatrogenic.classes import load

    try:
        return load(root, [p for p, _ in entry.files])
    except (ValueError, KeyError) as exc:
        raise ReferentialError(str(exc)) from None
