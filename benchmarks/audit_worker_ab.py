"""CPU of the audit's check phase (``check_lines`` over every shard, summaries made) for two source
trees, alternated in one process: each round loads one tree's ``checker`` afresh and checks the
same partitioned shards, so both trees meet the same machine load (min and all rounds printed).

    python benchmarks/audit_worker_ab.py EXPORT_DIR BEFORE_TREE AFTER_TREE [--rounds 4]

The export is partitioned once (with BEFORE_TREE's code, one shard per the audit's default size);
the references are loaded by each tree's own ``init_worker``.
"""

from __future__ import annotations

import argparse
import gc
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any


class _Silent:
    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def _load(tree: str, trees: list[str]) -> tuple[ModuleType, ModuleType]:
    """``checker.audit.worker`` and ``checker.audit.pipeline`` of ``tree`` (earlier loads dropped)."""
    for name in [m for m in sys.modules if m == "checker" or m.startswith("checker.")]:
        del sys.modules[name]
    sys.path[:] = [tree] + [p for p in sys.path if p not in trees]
    import checker.audit.pipeline as pipeline
    import checker.audit.worker as worker
    return worker, pipeline


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export")
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--as-of", default="2026-01-15")
    args = ap.parse_args()
    trees = [str(Path(args.before).resolve()), str(Path(args.after).resolve())]
    root = Path(tempfile.mkdtemp(prefix="audit-ab-"))
    work = root / ".pertinence-audit"
    try:
        worker, pipeline = _load(trees[0], trees)
        files = pipeline.expand_inputs([args.export])
        state = pipeline._prepare_state(files, pipeline.AuditOptions(out=root, jobs=1, as_of=args.as_of), work)
        pipeline.partition_local(files, state["n_shards"], work, _Silent())
        shards = sorted(p for p in (work / "shards").glob("*.ndjson") if p.stem != pipeline.MEDICATIONS)
        meds_path = work / "shards" / f"{pipeline.MEDICATIONS}.ndjson"
        cpu: dict[str, list[float]] = {t: [] for t in trees}
        for _ in range(args.rounds):
            for tree in trees:
                worker, pipeline = _load(tree, trees)
                settings = pipeline.settings_of(state)
                pipeline.init_worker()
                meds: dict[str, Any] = {}
                if meds_path.is_file():
                    with meds_path.open("rb") as f:
                        meds = worker.load_medications(f)
                gc.collect()
                start = time.process_time()
                for path in shards:
                    with path.open("rb") as f:
                        worker.check_lines(f, meds, settings, pipeline._WORKER_REFS, worker.RunShared()).summary()
                cpu[tree].append(time.process_time() - start)
        for tree in trees:
            print(f"{tree}: check CPU s {' '.join(f'{x:.2f}' for x in cpu[tree])} (min {min(cpu[tree]):.2f})")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
