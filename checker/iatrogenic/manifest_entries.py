"""Maintainer helper: add or refresh this package's entries in ``referentials/MANIFEST.json``.

Run after rebuilding a referential file::

    python -m checker.iatrogenic.manifest_entries

Only the entries whose id is listed in :data:`ENTRIES` are touched; the rest of the manifest
(other families' entries) is kept as is, in place.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from checker.referentials import referentials_dir, sha256_file

ENTRIES: list[dict[str, Any]] = [
    {
        "id": "ansm-thesaurus",
        "title": "Thésaurus des interactions médicamenteuses (encodage des entrées, niveaux, conditions et classes)",
        "publisher": "ANSM (Agence nationale de sécurité du médicament et des produits de santé)",
        "edition": "2023-09",
        "licence": "ANSM public information: facts reused with source and date cited (CRPA art. L. 321-1 et seq.); no sentence copied",
        "url": "https://ansm.sante.fr/documents/reference/thesaurus-des-interactions-medicamenteuses-1",
        "files": ["thesaurus/ansm-thesaurus-2023-09.json.gz"],
        "notes": "Built by checker/iatrogenic/build_thesaurus.py from the full text of the September 2023 PDF "
                 "(15 septembre 2023). Holds names, levels (CI, AD, PE, APEC), structured conditions of "
                 "multi-level entries, class member lists and 'Voir aussi' links, PDF line numbers, and risk-theme "
                 "codes derived by keyword; no risk or conduct sentence is reproduced. Two truncated class lists of "
                 "the PDF text (alcohol, grapefruit: 'anpu') are left empty (not medicines). The conditions of 12 "
                 "multi-level entries stated in prose are encoded by hand (OVERRIDES, flagged hand_encoded); the "
                 "local-route exceptions of page 2 are encoded by hand (local_routes). The eight single-level aspirin "
                 "entries whose text limits them to analgesic or anti-inflammatory doses carry an aspirin-dose "
                 "gate. Checked entry by entry "
                 "against the PDF text by tests/test_iatro_thesaurus_corpus.py.",
    },
    {
        "id": "iatrogenic-rules",
        "title": "Règles iatrogènes : classes en doublon, sujet âgé, grossesse, fonction rénale, doses maximales, "
                 "allergies croisées, cumul de classes à risque ; sous-ensemble STOPP/START v2",
        "publisher": "Pertinence (encodage) d'après ANSM, STOPP/START v2 (O'Mahony 2015; codage Huibers 2019), "
                     "Laroche 2007, RCP (BDPM)",
        "edition": "2026-01",
        "licence": "patient-risks.tsv: facts with their sources (our encoding); stopp-v2-subset.json: derived from "
                   "the LGPL-3.0 coded STOPP/START v2 XML (MichielCM/stoppstart, commit 8fdc1ac), attribution kept",
        "url": "https://github.com/MichielCM/stoppstart",
        "files": ["iatrogenic/patient-risks.tsv", "iatrogenic/stopp-v2-subset.json"],
        "notes": "Each row of patient-risks.tsv names its own source (label, URL, edition). The STOPP subset is "
                 "built by checker/iatrogenic/build_stopp.py (criteria A3, B10, C1, C7, D5, D14, E1-E6, J1, K1, K4, "
                 "M) and keeps ATC codes, thresholds and CKD ICD-10 codes only.",
    },
]


def update(root: Path | None = None) -> None:
    root = root or referentials_dir()
    path = root / "MANIFEST.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    items: list[dict[str, Any]] = data["referentials"]
    for spec in ENTRIES:
        entry = dict(spec)
        entry["files"] = [{"path": p, "sha256": sha256_file(root / p)} for p in spec["files"]]
        for i, item in enumerate(items):
            if item.get("id") == entry["id"]:
                items[i] = entry
                break
        else:
            items.append(entry)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    update(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
