"""What the audit worker spends per finding outside the rules: the CPU seconds of wording each
finding, writing its findings.ndjson line, its findings.csv cells, its result value and its sort key
(what ``checker.audit.worker.check_chunk`` does for each finding of a chunk), several passes in one
process.

    python benchmarks/finding_output_cost.py INPUT [--lang fr] [--passes 3]

INPUT: an NDJSON file or a folder of them (the 20,000-line audit export, a dense slice…). The input
is checked once (not timed); each pass copies the findings with their words unset and fresh
top-level messages (as a chunk's check leaves them; the typed values, phrases and sentences rules
share between findings stay shared), empties the remembered wording (as each chunk's check does),
then times each part on its own and the whole per-finding work together. Run it from the
repository whose code is measured (its ``checker`` comes first on the path).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

_HERE = Path.cwd() if (Path.cwd() / "checker").is_dir() else Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_HERE))

from checker import check  # noqa: E402
from checker.audit.outputs import finding_value  # noqa: E402
from checker.audit.worker import finding_sort_key  # noqa: E402
from checker.findings import LATER, Finding, forget_wording  # noqa: E402
from checker.formats.csv import finding_row  # noqa: E402


def _fresh(checked: list[Finding]) -> list[Finding]:
    forget_wording()
    out = [replace(f, summary=LATER, detail=LATER, message=replace(f.message) if f.message is not None else None)
           for f in checked]
    gc.collect()
    return out


def _timed(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input")
    parser.add_argument("--lang", default="fr")
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    checked = check([args.input], as_of="2026-01-15", lang=args.lang).findings
    print(f"{len(checked)} findings; CPU s per pass (code from {_HERE})")
    for _ in range(args.passes):
        fs = _fresh(checked)
        word = _timed(lambda: [(f.summary, f.detail) for f in fs])
        line = _timed(lambda: [f.to_json() for f in fs])
        cells = [finding_row(f) for f in fs]
        row = _timed(lambda: [finding_row(f) for f in fs])
        lines = [f.to_json() for f in fs]
        value = _timed(lambda: [finding_value(j, cells=c) for j, c in zip(lines, cells)])
        key = _timed(lambda: [finding_sort_key(f) for f in fs])
        fs = _fresh(checked)
        whole = _timed(lambda: [(finding_sort_key(f), finding_value(f.to_json(), cells=finding_row(f))) for f in fs])
        print(f"wording {word:.3f}  line {line:.3f}  cells {row:.3f}  value {value:.3f}  sort key {key:.3f}"
              f"  | all together {whole:.3f}")


if __name__ == "__main__":
    main()
