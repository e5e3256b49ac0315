"""Where `check`'s time goes, rule by rule, as CPU seconds and ratios to plain orjson parsing.

    python benchmarks/rule_profile.py INPUT

INPUT: an NDJSON file or a folder of them (e.g. a slice of the dense export:
``python /work/shared/bench/dense_export.py DIR 200000``, or ``benchmarks/generate_export.py``).
Prints the CPU time of plain parsing, of reading (``fhir_input.read``), of identifying the lines,
and of each rule run on every record, in one process; referentials are loaded before timing.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from datetime import date
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checker import fhir_input  # noqa: E402
from checker.api import identify_records  # noqa: E402
from checker.referentials import default_referentials  # noqa: E402
from checker.registry import RunSettings, all_rules  # noqa: E402

AS_OF = date(2026, 1, 15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", type=Path)
    args = ap.parse_args()
    files = sorted(args.input.rglob("*.ndjson")) if args.input.is_dir() else [args.input]
    start = time.process_time()
    for path in files:
        with path.open("rb") as f:
            for line in f:
                if line.strip():
                    orjson.loads(line)
    parse = time.process_time() - start
    refs, rules = default_referentials(), all_rules()
    for r in rules:
        for ref_id in r.referentials:
            if refs.has(ref_id):
                refs.get(ref_id)
    start = time.process_time()
    ing = fhir_input.read(str(args.input), as_of=AS_OF)
    read = time.process_time() - start
    start = time.process_time()
    identify_records(ing.records, refs)
    ident = time.process_time() - start
    settings = RunSettings(as_of=AS_OF, jurisdiction="fr", lang="fr", severity_overrides=())
    per_rule: collections.Counter[str] = collections.Counter()
    triggers = [r.trigger(refs) for r in rules]
    for record in ing.records:
        shared: dict[object, object] = {}
        for r, trigger in zip(rules, triggers):
            start = time.process_time()
            if trigger is None or trigger.fires(record):  # as the engine dispatches (time to decide included)
                list(r.run(record, settings, refs, shared))
            per_rule[r.id] += time.process_time() - start
    total = sum(per_rule.values())
    print(f"plain parse {parse:.2f} s CPU; reading {read:.2f} s ({read / parse:.1f}x); identification {ident:.2f} s "
          f"({ident / parse:.1f}x); rules {total:.2f} s ({total / parse:.1f}x)")
    for rule_id, seconds in per_rule.most_common():
        print(f"  {rule_id:6} {seconds:6.2f} s  {seconds / parse:5.1f}x  {seconds / total:4.0%}")


if __name__ == "__main__":
    main()
