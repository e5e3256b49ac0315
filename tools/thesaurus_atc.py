"""Look up, in a local copy of the WHO ATC/DDD index, the ATC codes of thesaurus substances the
drug index has none for, and print them as ``referentials/substances/atc.tsv`` rows (codes only:
the WHO table itself is not shipped). Matching is by name: the WHO English name spelled the French
way (checker.drugs.names.english_variants) must equal the substance key; review before adding.

    python tools/thesaurus_atc.py ../shared/data/who-atc-2026-04/WHO_ATC-DDD_2026-04-25.csv
"""

from __future__ import annotations

import csv
import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checker.drugs import drug_index, names as N  # noqa: E402
from checker.drugs.coverage import thesaurus_coverage  # noqa: E402
from checker.text import fold  # noqa: E402


def main(who_csv: str) -> None:
    idx = drug_index()
    missing = {row.key: row for row in thesaurus_coverage() if row.key and not row.atc and not row.excluded}
    by_name: dict[str, set[str]] = {}
    with open(who_csv, encoding="utf-8") as f:
        for r in csv.DictReader(f):
            code, name = r["atc_code"], fold(r["atc_name"])
            if len(code) != 7 or " and " in f" {name} " or "combination" in name:
                continue
            words = name.split()
            if len(words) > 3:
                continue
            for combo in itertools.product(*[list(N.english_variants(w)) for w in words]):
                by_name.setdefault(" ".join(combo), set()).add(code)
    for key in sorted(missing):
        sub = idx.substance(key)
        spellings = {key, *(fold(e) for e in (sub.english if sub else ()))}
        codes = sorted({c for s in spellings for c in by_name.get(s, ())})
        for code in codes:
            print(f"{key}\t{code}")


if __name__ == "__main__":
    main(sys.argv[1])
