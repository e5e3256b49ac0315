"""Batch audits of prescription exports: ``run_audit(inputs, AuditOptions(out=...))``.

See :mod:`checker.audit.pipeline` for the phases and the local engine, :mod:`checker.audit.dask_engine`
for the Dask engine, :mod:`checker.audit.indicators` for the prescriber indicators and
``docs/scaling.md`` for running it at national scale.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from checker.audit.dask_engine import run_dask
from checker.audit.merge import merge_outputs
from checker.audit.pipeline import (WORK_DIR, AuditError, AuditOptions, _prepare_state, check_local, expand_inputs,
                                    input_bytes, parse_size, partition_local, pending_shards, settings_of)
from checker.audit.progress import make_progress

__all__ = ["AuditError", "AuditOptions", "expand_inputs", "parse_size", "run_audit"]


def run_audit(inputs: Sequence[str | Path], opts: AuditOptions) -> dict[str, Any]:
    """Audit ``inputs`` into ``opts.out``; returns the summary (also written as summary.json)."""
    if opts.engine not in ("local", "dask"):
        raise AuditError(f"unknown engine {opts.engine!r}: use local or dask")
    if opts.jobs < 1:
        raise AuditError("--jobs must be at least 1")
    files = expand_inputs(inputs, exclude=Path(opts.out))
    if not files:
        raise AuditError("no FHIR resource found: no FHIR file in the inputs (.json, .ndjson, .jsonl, .xml, "
                         "optionally .gz)")
    out = Path(opts.out)
    work = out / WORK_DIR
    state = _prepare_state(files, opts, work)
    settings = settings_of(state)
    with make_progress(opts.progress, input_bytes(files)) as progress:
        if opts.engine == "dask":
            if not (work / "partition.done").is_file() or pending_shards(work):
                run_dask(files, state["n_shards"], work, settings, opts.scheduler, opts.jobs, progress,
                         opts.on_shard_done)
        else:
            if not (work / "partition.done").is_file():
                partition_local(files, state["n_shards"], work, progress)
            check_local(work, settings, opts.jobs, progress, opts.on_shard_done)
        progress.phase("merge")
        summary = merge_outputs(work, out, settings)
    shutil.rmtree(work, ignore_errors=True)
    return summary
