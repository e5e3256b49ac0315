"""Loader of the ``protocols`` referential: every protocol file listed in the manifest entry."""

from __future__ import annotations

from pathlib import Path

from checker.referentials import ManifestEntry, ReferentialError, loader


@loader("protocols")
def load(entry: ManifestEntry, root: Path):  # -> checker.protocols.ProtocolSet
    """Validate (XSD + decision graphs) and load the protocols; errors name file:line."""
    from checker.protocols import ProtocolError, load_protocols

    files = [root / p for p, _ in entry.files if p.endswith(".xml")]
    schema = next((root / p for p, _ in entry.files if p.endswith(".xsd")), None)
    if schema is None:
        raise ReferentialError(f"{root / 'MANIFEST.json'}: the 'protocols' entry must list the protocol XSD")
    try:
        return load_protocols(files, schema=schema)
    except ProtocolError as exc:
        raise ReferentialError("invalid protocol file(s):\n" + "\n".join(exc.problems)) from None
