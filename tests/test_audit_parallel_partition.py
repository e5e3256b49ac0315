"""The audit's partition run by the worker processes, several input files at once: every shard
holds the same lines as when one process partitions the inputs (each group of files writes shard
files of its own, read one after the other), and the shards check to the same result files."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from checker.audit import pipeline, worker
from tests.conftest import export_generator


class _Silent:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("parts")
    export_generator().generate(root / "export", patients=50, per_patient=5, seed=29, practitioners=6, file_lines=40)
    extra = root / "export" / "Medication.x.ndjson"
    extra.write_bytes(orjson.dumps({"resourceType": "Medication", "id": "m1", "code": {"text": "PARACETAMOL"}})
                      + b"\n" + b'{"resourceType": "MedicationRequest", "id": "broken"\n')
    files = pipeline.expand_inputs([str(root / "export")])
    assert len(files) > 6
    return files


def _lines(work: Path) -> dict[str, Counter[bytes]]:
    names = {p.name[: -len(".ndjson")] for p in (work / "shards").rglob("*.ndjson")}
    return {n: Counter(line for p in pipeline.shard_files(work, n) for line in p.read_bytes().splitlines())
            for n in names}


def test_the_parallel_partition_writes_the_lines_of_the_serial_one(inputs: list[str], tmp_path: Path) -> None:
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    for work in (serial, parallel):
        (work / "shards").mkdir(parents=True)
        (work / "results").mkdir()
    pipeline.partition_local(inputs, 7, serial, _Silent())
    (parallel / "shards" / f"{pipeline.PART}009").mkdir()  # left by an interrupted partition: wiped
    (parallel / "shards" / f"{pipeline.PART}009" / "00001.ndjson").write_bytes(b"stale\n")
    (parallel / "shards" / "00002.ndjson").write_bytes(b"stale\n")
    with pipeline.start_pool(2) as pool:
        pipeline.partition_parallel(inputs, 7, parallel, pool, 2, _Silent())
    assert len(list((parallel / "shards").glob(f"{pipeline.PART}*"))) == 4  # two groups per worker
    assert not list((parallel / "shards").glob("*.ndjson"))
    assert _lines(parallel) == _lines(serial)
    assert (parallel / "partition.done").is_file()
    assert set(pipeline.pending_shards(parallel)) == set(pipeline.pending_shards(serial))
    settings = worker.Settings(as_of="2026-01-15")
    for work in (serial, parallel):
        for name in pipeline.pending_shards(work):
            pipeline.run_shard(str(work), name, settings)
    results = sorted(p.name for p in (serial / "results").iterdir())
    assert results == sorted(p.name for p in (parallel / "results").iterdir())
    for name in results:
        assert (serial / "results" / name).read_bytes() == (parallel / "results" / name).read_bytes(), name


@pytest.mark.parametrize("seed", range(5))
def test_file_groups_hold_every_file_once_in_input_order(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    files = []
    for i in range(rng.randrange(1, 15)):
        path = tmp_path / f"f{i:02d}.ndjson"
        path.write_bytes(b"x" * rng.choice([0, 1, 10, 1000, 5000]))
        files.append(str(path))
    n = rng.randrange(1, 6)
    groups = pipeline.file_groups(files, n)
    assert sorted(f for g in groups for f in g) == list(enumerate(files))
    assert all(g == sorted(g) for g in groups) and 1 <= len(groups) <= n
    sizes = sorted(sum(max(Path(f).stat().st_size, 1) for _, f in g) for g in groups)
    biggest = max(max(Path(f).stat().st_size, 1) for f in files)
    assert sizes[-1] - sizes[0] <= biggest  # no group heavier than another by more than one file


def test_an_input_gone_before_its_part_is_read_is_reported_as_by_one_process(inputs: list[str],
                                                                             tmp_path: Path) -> None:
    """The worker's error comes back to the main process whole (its message code)."""
    from checker.fhir_input.errors import InputNotFound

    gone = tmp_path / "gone"
    gone.mkdir()
    (tmp_path / "w" / "shards").mkdir(parents=True)
    with pipeline.start_pool(2) as pool, pytest.raises(InputNotFound) as raised:
        pipeline.partition_parallel([inputs[0], str(gone / "x.ndjson")], 3, tmp_path / "w", pool, 2, _Silent())
    assert raised.value.code.code == "no-such-input"
