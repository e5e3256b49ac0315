"""Build ``referentials/iatrogenic/atc-level4.tsv``: the WHO ATC chemical subgroups (level 4) that
therapeutic duplication (DU002) can report, with their WHO names.

Run by a maintainer (never at run time)::

    python tools/build_atc_level4.py ../shared/data/who-atc-2026-04/WHO_ATC-DDD_2026-04-25.csv

The WHO ATC/DDD index is licensed CC BY-NC-SA and may be looked up, not redistributed: only the
level-4 codes and names DU002 needs are kept, i.e. the subgroups holding at least two substances
of the drug index (BDPM CIS_MITM + ``referentials/substances/atc.tsv``) and inside the scope of
``class-duplicates.json``. No DDD, no level-5 row, no other level is copied.
"""

from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))  # run from a checkout: import checker

import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

from checker.drugs import drug_index

ROOT = Path(__file__).resolve().parents[1] / "referentials" / "iatrogenic"


def main(who_csv: str) -> None:
    scope = json.loads((ROOT / "class-duplicates.json").read_text(encoding="utf-8"))["scope"]
    excluded = tuple(scope["excluded_prefixes"])
    members: dict[str, set[str]] = defaultdict(set)
    for code, keys in drug_index().atc_keys.items():
        if len(code) == 7:
            members[code[:5]].update(keys)
    other = scope["exclude_other_subgroups"]
    wanted = {c for c, keys in members.items() if len(keys) >= 2 and not c.startswith(excluded)
              and not (other and "X" in c[3:5])}
    names: dict[str, str] = {}
    named_other: set[str] = set()
    with open(who_csv, encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            name = row["atc_name"].strip()
            if row["atc_code"] not in wanted:
                continue
            if other and name.lower().startswith("other ") and row["atc_code"] not in scope["keep_other_named"]:
                named_other.add(row["atc_code"])
            else:
                names[row["atc_code"]] = name
    missing = sorted(wanted - set(names) - named_other)
    with open(ROOT / "atc-level4.tsv", "w", encoding="utf-8") as out:
        out.write("# WHO ATC chemical subgroups (level 4) DU002 reports, with their WHO names (WHO ATC/DDD index "
                  "2026, looked up; codes and names only). Built by tools/build_atc_level4.py.\n")
        out.write("code\tname\n")
        for code in sorted(names):
            out.write(f"{code}\t{names[code]}\n")
    print(f"{len(names)} subgroups written; 'other' subgroups left out: {sorted(named_other)}; "
          f"not in the WHO file: {missing}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1])
