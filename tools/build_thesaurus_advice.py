"""Encode what each ANSM thesaurus entry tells the prescriber to do, as codes and numbers only.

Reads the conduct column ("conduite") of the thesaurus table extracted from the September 2023 PDF
(``../shared/data/ansm-thesaurus-2023-09/thesaurus_ansm_2023-09.csv`` by default) and writes
``referentials/thesaurus/advice-2023-09.json``: for each entry (``"<substance key>|<folded
interactant>"``, the keys of the thesaurus encoding) the facts found by keyword — what to monitor
(codes), whether to adjust the dose, to avoid the combination, a dose not to exceed (number and
unit), a spacing of intakes in hours, a period after stopping (number and unit). No sentence is
copied; the catalogue words the codes (``ix_monitor`` …). Then run ``python tools/refresh_manifest.py``.

    python tools/build_thesaurus_advice.py [CSV]
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from checker.text import fold, fold_keeping_punctuation  # noqa: E402

DEFAULT_CSV = ROOT.parent / "shared" / "data" / "ansm-thesaurus-2023-09" / "thesaurus_ansm_2023-09.csv"
OUT = ROOT / "referentials" / "thesaurus" / "advice-2023-09.json"

# monitoring code -> pattern on the accent-free lower-case conduct text
MONITOR = {
    "inr": r"\binr\b",
    "kalaemia": r"kaliemi",
    "natraemia": r"natremi",
    "glycaemia": r"glycemi",
    "ecg": r"\becg\b|\bqt\b|electrocardiogram",
    "drug-levels": r"(?:surveillance|controle|dosages?|mesure)[^.]{0,40}(?:concentrations?|taux) plasmatiques?"
                   r"|dosages? plasmatiques?",
    "renal-function": r"fonction renale",
    "blood-pressure": r"pression arterielle|tension arterielle",
    "blood-count": r"hemogramme|numeration formule|\bnfs\b",
    "clinical": r"surveillance clinique",
}
ADJUST = r"adaptation (?:eventuelle )?de (?:la )?posologie|(?:reduire|diminuer|ajuster|adapter) (?:la )?posologie"
AVOID = r"(?:^|[.;] )eviter\b"
NUMBER = r"(\d+(?:[.,]\d+)?)"
DOSE_LIMIT = (rf"ne pas depasser (?:la (?:posologie|dose) de )?{NUMBER} ?(mg|g|µg|microgrammes?)(?:/| par )?(j|jour)?"
              r"(?: (?:de |d['’])([a-z]+))?")
SPACING = rf"(?:distance|intervalle|espac)[^.]{{0,60}}?{NUMBER} ?(?:h|heures?)\b"
AFTER_STOP = rf"{NUMBER} (jours?|semaines?|mois) (?:suivant|apres) (?:\S+ ){{0,2}}arret"
UNITS = {"jour": "d", "jours": "d", "semaine": "wk", "semaines": "wk", "mois": "mo"}


def facts_of(conduct: str) -> dict[str, object]:
    """The structured facts of one conduct text (empty when it states none the patterns know)."""
    t = fold_keeping_punctuation(conduct)
    out: dict[str, object] = {}
    monitor = [code for code, pat in MONITOR.items() if re.search(pat, t)]
    if monitor:
        out["monitor"] = monitor
    if re.search(ADJUST, t):
        out["adjust_dose"] = True
    if re.search(AVOID, t):
        out["avoid"] = True
    if m := re.search(DOSE_LIMIT, t):
        unit = "µg" if m.group(2).startswith("micro") else m.group(2)
        out["max_dose"] = {"value": float(m.group(1).replace(",", ".")), "unit": unit, "per_day": bool(m.group(3)),
                           "drug": m.group(4) or ""}
    if m := re.search(SPACING, t):
        out["spacing_h"] = float(m.group(1).replace(",", "."))
    if m := re.search(AFTER_STOP, t):
        out["after_stop"] = {"value": float(m.group(1).replace(",", ".")), "unit": UNITS[m.group(2)]}
    return out


def _entry_keys() -> set[str]:
    """The keys of the shipped thesaurus encoding: a table row that names no encoded entry is left out."""
    with gzip.open(ROOT / "referentials" / "thesaurus" / "ansm-thesaurus-2023-09.json.gz", "rt", encoding="utf-8") as f:
        return {f"{e['a']}|{fold(e['interactant'])}" for e in json.load(f)["entries"]}


def build(csv_path: Path) -> dict[str, object]:
    wanted = _entry_keys()
    entries: dict[str, object] = {}
    with csv_path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            facts = facts_of(row.get("conduite") or "")
            key = f"{fold(row['substance'])}|{fold(row['interactant'])}"
            if facts and key in wanted:
                entries[key] = facts
    return {"format": 1, "source": "ANSM, Thésaurus des interactions médicamenteuses, 2023-09 (conduct column)",
            "entries": dict(sorted(entries.items()))}


def main(argv: list[str]) -> int:
    csv_path = Path(argv[1]) if len(argv) > 1 else DEFAULT_CSV
    data = build(csv_path)
    OUT.write_text(json.dumps(data, ensure_ascii=False, indent=0, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(data['entries'])} entries with structured advice")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
