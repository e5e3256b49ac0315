"""Batch audits of prescription exports: ``run_audit(inputs, AuditOptions(out=...))``.

See :mod:`checker.audit.pipeline` for the phases and the local engine, :mod:`checker.audit.dask_engine`
for the Dask engine, :mod:`checker.audit.indicators` for the prescriber indicators and
``docs/scaling.md`` for running it at national scale.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from checker.audit.dask_engine import run_dask
from checker.audit.lock import AuditLock, AuditLocked
from checker.audit.merge import OUTPUT_FILES, merge_outputs
from checker.audit.pipeline import (WORK_DIR, AuditError, AuditOptions, _prepare_state, check_local, expand_inputs,
                                    input_bytes, parse_size, partition_local, partition_parallel, pending_shards,
                                    settings_of, start_pool)
from checker.audit.progress import make_progress
from checker.audit.timeline import span
from checker.fhir_input import display_name
from checker.findings import Message
from checker.referentials import default_referentials

__all__ = ["AuditError", "AuditOptions", "expand_inputs", "parse_size", "run_audit"]


def run_audit(inputs: Sequence[str | Path], opts: AuditOptions) -> dict[str, Any]:
    """Audit ``inputs`` into ``opts.out``; returns the summary (also written as summary.json)."""
    if opts.engine not in ("local", "dask"):
        raise AuditError(f"unknown engine {opts.engine!r}: use local or dask")
    if opts.jobs < 1:
        raise AuditError("--jobs must be at least 1")
    default_referentials().verify_all()  # an altered referential stops the audit before anything is read
    files = expand_inputs(inputs, exclude=Path(opts.out))
    if not files:
        error = AuditError(Message("no-fhir-file").text("en", "input_error"))
        error.code = Message("no-fhir-file")
        raise error
    out = Path(opts.out)
    try:
        with AuditLock(out):
            return _run_locked(files, out, opts)
    except AuditLocked as exc:
        raise AuditError(str(exc)) from None
    except OSError as exc:  # disk full, quota, I/O error: outputs untouched, the work folder kept
        if exc.errno not in _WRITE_ERRORS and not _under(exc.filename, out):
            raise  # not a failure to write the audit (e.g. an input that cannot be read)
        where = f" ({display_name(str(exc.filename))})" if exc.filename else ""
        raise AuditError(f"cannot write the audit: {exc.strerror or exc}{where}. The output files were left as "
                         f"they were; once the problem is fixed (e.g. space freed), run the same command with "
                         f"--resume to continue from the completed steps") from None


_WRITE_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def _under(filename: object, out: Path) -> bool:
    """True when ``filename`` lies in the output folder (where the audit writes)."""
    if not isinstance(filename, (str, bytes, os.PathLike)):
        return False
    try:
        return Path(os.fsdecode(filename)).resolve().is_relative_to(out.resolve())
    except (OSError, ValueError):
        return False


def _run_locked(files: list[str], out: Path, opts: AuditOptions) -> dict[str, Any]:
    work = out / WORK_DIR
    state = _prepare_state(files, opts, work)
    settings = settings_of(state)
    with make_progress(opts.progress, input_bytes(files)) as progress:
        if opts.engine == "dask":
            if not (work / "partition.done").is_file() or pending_shards(work):
                run_dask(files, state["n_shards"], work, settings, opts.scheduler, opts.jobs, progress,
                         opts.on_shard_done, (opts.max_decompressed, opts.max_expansion))
        else:
            partitioned = (work / "partition.done").is_file()
            if opts.jobs > 1 and "-" not in files and (not partitioned or len(pending_shards(work)) > 1):
                with start_pool(opts.jobs) as pool:  # the workers partition the files, then check the shards
                    if not partitioned:
                        with span("partition"):
                            partition_parallel(files, state["n_shards"], work, pool, opts.jobs, progress,
                                               opts.max_decompressed, opts.max_expansion)
                    with span("check"):
                        check_local(work, settings, opts.jobs, progress, opts.on_shard_done, pool)
            else:
                if not partitioned:
                    with span("partition"):
                        partition_local(files, state["n_shards"], work, progress, opts.max_decompressed,
                                        opts.max_expansion)
                with span("check"):
                    check_local(work, settings, opts.jobs, progress, opts.on_shard_done)
        progress.phase("merge")
        staged = work / "outputs"  # all outputs written here first: a failure leaves none half-replaced
        shutil.rmtree(staged, ignore_errors=True)
        with span("merge"):
            summary = merge_outputs(work, staged, settings)
    for name in OUTPUT_FILES:
        if (staged / name).is_file():
            os.replace(staged / name, out / name)
    shutil.rmtree(work, ignore_errors=True)
    return summary
