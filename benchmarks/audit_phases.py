"""CPU and wall time of each phase of ``pertinence audit``, in one process (``--jobs 1``).

    python benchmarks/audit_phases.py EXPORT_DIR [--work DIR] [--as-of 2026-01-15] [--profile PREFIX]

Runs the partition, the check of every shard and the merge one after the other in this process
and prints one JSON object with each phase's CPU seconds (user + system of this process) and wall
seconds. ``--profile PREFIX`` writes a cProfile file per phase (``PREFIX.partition`` …). The
partition and the merge run on one core in a real audit, the check on ``--jobs`` cores; the rules
are most of the check, so the partition, the merge and what the check spends outside the rules are
the audit's own cost.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checker.audit.merge import merge_outputs  # noqa: E402
from checker.audit.pipeline import (AuditOptions, _prepare_state, check_local, expand_inputs,  # noqa: E402
                                    partition_local, settings_of)
from checker.referentials import default_referentials  # noqa: E402


class _Silent:
    """Progress sink: every call does nothing."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export", type=Path)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--as-of", default="2026-01-15")
    ap.add_argument("--profile")
    args = ap.parse_args()
    root = args.work or Path(tempfile.mkdtemp(prefix="audit-phases-"))
    work = root / ".pertinence-audit"
    shutil.rmtree(work, ignore_errors=True)
    opts = AuditOptions(out=root, jobs=1, as_of=args.as_of)
    files = expand_inputs([str(args.export)])
    state = _prepare_state(files, opts, work)
    settings = settings_of(state)
    default_referentials().verify_all()
    progress = _Silent()
    figures: dict[str, Any] = {"shards": state["n_shards"]}

    def phase(name: str, run: Callable[[], Any]) -> None:
        profile = cProfile.Profile() if args.profile else None
        cpu, wall = time.process_time(), time.perf_counter()
        if profile:
            profile.enable()
        run()
        if profile:
            profile.disable()
            profile.dump_stats(f"{args.profile}.{name}")
        figures[name] = {"cpu_s": round(time.process_time() - cpu, 2), "wall_s": round(time.perf_counter() - wall, 2)}

    phase("partition", lambda: partition_local(files, state["n_shards"], work, progress))
    phase("check", lambda: check_local(work, settings, 1, progress, None))
    phase("merge", lambda: merge_outputs(work, work / "outputs", settings))
    print(json.dumps(figures))
    if not args.work:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
