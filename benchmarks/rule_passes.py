"""Per-rule CPU over several passes with the cyclic collector off: first pass and best later pass.

    python benchmarks/rule_passes.py INPUT [--passes 6] [--rules IX001,DU001,DU002]

One pass of ``benchmarks/rule_profile.py`` charges a rule for the collections that fall in it and for
what it is the first to compute on a record (a line's period, the memos by medication); here the
input is read and identified once, the collector is off while the rules run (a full collection
between passes), and each pass runs the chosen rules (all by default) on every record as the engine
dispatches them (the cost of the dispatch, one pass over a record's lines for every rule, in its own
row), with a fresh per-record share. The first pass shows the cold cost, the best later
pass the rules' own work.
"""

from __future__ import annotations

import argparse
import collections
import gc
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checker import fhir_input  # noqa: E402
from checker.api import identify_records  # noqa: E402
from checker.referentials import default_referentials  # noqa: E402
from checker.registry import RunSettings, all_rules, dispatch_of  # noqa: E402

AS_OF = date(2026, 1, 15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", type=Path)
    ap.add_argument("--passes", type=int, default=6)
    ap.add_argument("--rules", default="", help="comma-separated rule ids (default: every rule)")
    args = ap.parse_args()
    refs = default_referentials()
    wanted = {r for r in args.rules.split(",") if r}
    rules = [r for r in all_rules() if not wanted or r.id in wanted]
    for r in rules:
        for ref_id in r.referentials:
            if refs.has(ref_id):
                refs.get(ref_id)
    ing = fhir_input.read(str(args.input), as_of=AS_OF)
    identify_records(ing.records, refs)
    settings = RunSettings(as_of=AS_OF, jurisdiction="fr", lang="fr", severity_overrides=())
    dispatch = dispatch_of(r.trigger(refs) for r in rules)
    passes: list[collections.Counter[str]] = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(max(1, args.passes)):
            per_rule: collections.Counter[str] = collections.Counter()
            for record in ing.records:
                shared: dict[object, object] = {}
                start = time.process_time()
                fire = dispatch.firing_bits(record)
                per_rule["(dispatch)"] += time.process_time() - start
                for i, r in enumerate(rules):
                    start = time.process_time()
                    if fire >> i & 1:
                        list(r.run(record, settings, refs, shared))
                    per_rule[r.id] += time.process_time() - start
            passes.append(per_rule)
            gc.collect()
    finally:
        gc.enable()
    later = passes[1:] or passes
    print(f"{len(ing.records)} records, {len(passes)} passes, collector off; CPU s: first pass / best later pass")
    for rid in ["(dispatch)", *(r.id for r in rules)]:
        print(f"  {rid:6} {passes[0][rid]:7.3f} / {min(p[rid] for p in later):7.3f}")
    total = [sum(p.values()) for p in passes]
    print(f"  {'total':6} {total[0]:7.3f} / {min(total[1:] or total):7.3f}")


if __name__ == "__main__":
    main()
