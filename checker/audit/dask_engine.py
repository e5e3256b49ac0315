"""The Dask engine: the same audit on a Dask cluster.

Input files become a bag (one partition per file); every item is routed to its patient's shard
(:func:`checker.audit.pipeline.route_file`, the same function as the local engine), the bag is
shuffled by shard (``groupby``), and each shard is checked on a worker with the referentials
loaded once per worker process. Results come back to the client, which writes the same per-shard
result files as the local engine; the merge is shared, so outputs are identical.

Workers must be able to read the input paths (shared filesystem or object store mounted at the
same path); only results travel back to the client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from checker.audit import pipeline
from checker.audit.pipeline import AuditError, route_file
from checker.audit.worker import Settings, check_lines, load_medications, write_result
from checker.outputs import write_atomic


def _route_partition(part: Iterable[tuple[int, str]], n_shards: int,
                     limits: tuple[int | None, float | None] = (None, None)) -> list[tuple[str, bytes, bool]]:
    return [x for index, name in part for x in route_file(index, name, n_shards, *limits)]


def _check_group(group: tuple[str, list[tuple[str, bytes, bool]]], medications: dict[str, list[Any]],
                 settings: Settings) -> tuple[str, Any]:
    """Check one shard on a worker (referentials loaded once per worker process)."""
    if pipeline._WORKER_REFS is None:
        pipeline.init_worker()
    name, routed = group
    return name, check_lines((line for _, line, _ in routed), medications, settings, pipeline._WORKER_REFS)


def run_dask(files: list[str], n_shards: int, work: Path, settings: Settings, scheduler: str | None, jobs: int,
             progress: Any, on_done: Callable[[str], None] | None,
             limits: tuple[int | None, float | None] = (None, None)) -> None:
    """Partition and check on Dask, writing per-shard results under ``work`` (resumable)."""
    # Dask is an optional extra (pip install ".[dask]"): imported only when this engine runs.
    import dask.bag as db
    from distributed import Client, LocalCluster, as_completed

    if "-" in files:
        raise AuditError("the dask engine reads files, not standard input")
    results = work / "results"
    done = {p.name[: -len(".json")] for p in results.glob("*.json")}
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    try:
        routed = db.from_sequence(list(enumerate(files)), npartitions=max(len(files), 1)).map_partitions(
            _route_partition, n_shards, limits).persist()
        meds_lines = routed.filter(lambda t: t[2]).map(lambda t: t[1]).compute()
        medications = load_medications(meds_lines)
        meds_future = client.scatter([medications], broadcast=True)[0]  # a list: a dict would be scattered per key
        groups = routed.groupby(lambda t: t[0], shuffle="tasks").filter(lambda g: g[0] not in done)
        checked = groups.map(_check_group, meds_future, settings)
        futures = client.compute(checked.to_delayed())
        progress.start_check(len(futures))
        for fut in as_completed(futures):
            for name, result in fut.result():
                write_result(result, results, name)
                progress.shard_done(result.counts.resources)
                if on_done:
                    on_done(name)
            fut.release()  # results are on disk: let the cluster and the client forget them
        del futures
        write_atomic(work / "partition.done", b"ok\n")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
