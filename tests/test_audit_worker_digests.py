"""The audit worker's patients for the HTML report: digests made only for the patients among the
top once the shard is checked, against every patient digested and the top cut afterwards."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from checker.audit import worker
from checker.audit.pipeline import AuditOptions, _prepare_state, expand_inputs, partition_local
from checker.formats import html
from checker.referentials import default_referentials
from tests.conftest import export_generator


class _Silent:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


@pytest.fixture(scope="module")
def shard_lines(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    root = tmp_path_factory.mktemp("digests")
    export_generator().generate(root / "export", patients=90, per_patient=7, seed=19, practitioners=5)
    work = root / "out" / ".pertinence-audit"
    files = expand_inputs([str(root / "export")])
    state = _prepare_state(files, AuditOptions(out=root / "out", jobs=1, as_of="2026-01-15"), work)
    partition_local(files, 1, work, _Silent())
    assert state["n_shards"] >= 1
    return [line for p in sorted((work / "shards").glob("*.ndjson")) if p.stem != "medications"
            for line in p.read_bytes().splitlines(keepends=True)]


def _top(lines: list[bytes], lang: str, top: int) -> worker.ShardResult:
    settings = worker.Settings(as_of="2026-01-15", lang=lang, top_patients=top)
    result = worker.ShardResult()
    for items, borrowed in worker.shard_chunks(lines, {}, max_patients=6):  # many chunks: patients leave the top
        worker.check_chunk(items, borrowed, settings, default_referentials(), result)
        assert len(result.undigested) <= top  # only the patients still among the top are remembered
    result.make_digests()
    return result


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_top_patients_digests_are_those_of_every_patient_digested_then_cut(shard_lines: list[bytes], lang: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[bytes] = []

    def digest(record: Any, findings: Any, lang: str) -> dict[str, Any]:
        made.append(orjson.dumps(html.patient_digest(record, findings, lang)))
        return html.patient_digest(record, findings, lang)

    monkeypatch.setattr(worker, "patient_digest", digest)
    everyone = _top(shard_lines, lang, 10**6)
    n_everyone = len(made)
    assert n_everyone == len(everyone.top) > 30
    made.clear()
    few = _top(shard_lines, lang, 4)
    expected = sorted(everyone.top, key=lambda t: t[0])[:4]  # stable: ties keep the order patients came in
    assert orjson.dumps(few.top) == orjson.dumps(expected)
    assert len(made) == 4  # a digest per patient kept, not per patient entering the top on the way
