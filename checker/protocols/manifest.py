"""Refresh the ``protocols`` entry of ``referentials/MANIFEST.json`` (file list and SHA-256).

Run ``python -m checker.protocols.manifest`` after adding or editing a protocol file. Only this
entry is touched; the rest of the manifest is kept as is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from checker.referentials import referentials_dir, sha256_file

ENTRY_ID = "protocols"

ENTRY_TEMPLATE = {
    "id": ENTRY_ID,
    "title": "Protocoles de pertinence (imagerie, biologie, médicaments) encodés d'après les recommandations HAS/ANAES/SFR/ANSM/SPILF",
    "publisher": "Pertinence project (encoding); each protocol cites its HAS, ANAES, SFR, ANSM or SPILF source",
    "edition": "2026-01",
    "licence": "Apache-2.0 (encoding, messages written by the project); facts from the cited public recommendations",
    "url": "https://www.has-sante.fr/",
    "notes": "One XML file per protocol, validated by schema/protocol.xsd. Sources (publisher, title, year, URL) are in each file's <source>. Refresh checksums with `python -m checker.protocols.manifest`.",
}


def refresh(root: Path | None = None) -> dict:
    """Rewrite this entry's file list (schema + every protocol file) with fresh checksums."""
    root = root or referentials_dir()
    path = root / "MANIFEST.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    files = [root / "schema" / "protocol.xsd", *sorted((root / "protocols").glob("*.xml"))]
    listed = [{"path": f.relative_to(root).as_posix(), "sha256": sha256_file(f)} for f in files]
    entries = data.setdefault("referentials", [])
    for entry in entries:
        if entry.get("id") == ENTRY_ID:
            entry["files"] = listed
            break
    else:
        entry = dict(ENTRY_TEMPLATE, files=listed)
        entries.append(entry)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return entry


if __name__ == "__main__":
    e = refresh(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    print(f"{ENTRY_ID}: {len(e['files'])} files")
