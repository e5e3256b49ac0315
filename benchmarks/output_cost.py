"""What writing the findings costs: the CPU seconds of making a report's bytes, on findings not yet
worded (as a check leaves them), several passes in one process.

    python benchmarks/output_cost.py INPUT [--format json] [--lang fr] [--passes 4]

INPUT: an NDJSON file or a folder of them (a slice of the dense export, the file of
``ingest_bench.py``…). The input is checked once (not timed); each pass then copies the findings
with their words and messages unset (fresh messages: nothing remembered on them) and times what
``pertinence check --format FORMAT -o FILE`` does with them: rendering and encoding (``render_bytes``
where the code has it, ``render(...).encode()`` before). The first pass also fills the memory of
worded texts, as a run does; later passes find it filled, as the later chunks of a large run do.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checker import check  # noqa: E402
from checker.findings import LATER  # noqa: E402
from checker.formats import render  # noqa: E402

try:
    from checker.formats import render_bytes  # noqa: E402
except ImportError:  # the code before it: the command encoded the rendered text
    def render_bytes(report, fmt="text", *, lang=None):  # type: ignore[no-untyped-def]
        return render(report, fmt, lang=lang).encode("utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("input")
    parser.add_argument("--format", default="json")
    parser.add_argument("--lang", default="fr")
    parser.add_argument("--passes", type=int, default=4)
    args = parser.parse_args()
    report = check([args.input], as_of="2026-01-15", lang=args.lang)
    checked = report.findings
    times = []
    for _ in range(args.passes):
        report.findings = [replace(f, summary=LATER, detail=LATER,
                                   message=replace(f.message) if f.message is not None else None) for f in checked]
        gc.collect()
        start = time.process_time()
        data = render_bytes(report, args.format)
        times.append(time.process_time() - start)
    print(f"{len(checked)} findings, {len(data):,} bytes of {args.format}; CPU s per pass: "
          + " ".join(f"{t:.3f}" for t in times))


if __name__ == "__main__":
    main()
