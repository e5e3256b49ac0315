"""The audit's per-shard result files, read back by the merge: a finding's CSV row stored raw on
one line, and the top patients' digests kept apart from the shard summary (the merge parses only
the digests of the patients it keeps), against the plain forms they replace, on seeded values."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from checker.audit import merge, outputs, worker

PIECES = ["", "a", ",", '"', "\n", "\r", "\r\n", "\t", "\x00", "\\", "\\n", "r", "j", "é", "\u20ac",
          "\U0001f48a", "\ud800", " ", "{\"k\": [1]}", "\x7f", "\u2028"]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(PIECES) for _ in range(rng.randrange(12)))


def _plain_split(value: bytes) -> tuple[bytes, bytes]:
    """How the merge read a value when the row was stored as a JSON string."""
    body, _, row = value.partition(b"\t")
    return body, orjson.loads(row).encode("utf-8")


@pytest.mark.parametrize("seed", range(4))
def test_a_row_stored_raw_reads_back_as_the_row(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(5000):
        row = _text(rng) + "\n"
        body = orjson.dumps({"t": _text(rng).replace("\ud800", "")})
        try:
            plain = _plain_split(body + b"\t" + orjson.dumps(row))
        except orjson.JSONEncodeError:  # a lone surrogate: refused, as before
            with pytest.raises(orjson.JSONEncodeError):
                outputs.row_field(row)
            continue
        field = outputs.row_field(row)
        value = body + b"\t" + field
        assert b"\n" not in value  # one line of the result file
        assert outputs.split_finding_value(value) == plain == (body, row.encode("utf-8"))
        assert field[:1] != b"\x00" or "\x00" in row or row[:1] == "\n"  # JSON only when it must
        assert outputs.line_row(field + b"\n") == row.encode("utf-8")


def test_result_lines_with_raw_rows_come_back_through_the_merge(tmp_path: Path) -> None:
    """Sorted result files of seeded values, merged: the same values in key order."""
    rng = random.Random(5)
    expected: list[tuple[bytes, int, int, tuple[bytes, bytes]]] = []
    paths = []
    for shard in range(5):
        lines = []
        for n in range(rng.randrange(300)):
            key = worker.sortable((_text(rng).replace("\ud800", ""), -rng.randrange(3), "R"))
            row = _text(rng).replace("\ud800", "") + "\n"
            body = orjson.dumps([shard, n])
            lines.append((key, n, body + b"\t" + outputs.row_field(row)))
            expected.append((key, shard, n, (body, row.encode("utf-8"))))
        lines.sort(key=lambda t: t[0])
        path = tmp_path / f"{shard:05d}.findings.ndjson"
        path.write_bytes(b"".join(k + b"\t" + v + b"\n" for k, _, v in lines))
        paths.append(path)
    expected.sort(key=lambda t: t[0])  # stable: equal keys in shard order, then in each shard's order
    got = [outputs.split_finding_value(v) for v in worker.merge_sorted(paths)]
    assert got == [e[3] for e in expected]


@pytest.mark.parametrize("seed", range(4))
def test_merged_values_keep_their_line_feed_when_asked(tmp_path: Path, seed: int) -> None:
    """Seeded sorted files with equal keys across and within files, empty files, tabs in values:
    the values with their line feed are those of the plain read followed by one."""
    rng = random.Random(seed)
    paths = []
    for i in range(rng.choice([1, 2, 5, 17])):
        keys = sorted(worker.sortable((rng.choice(["a", "b", "", "ab"]), rng.randrange(3)))
                      for _ in range(rng.choice([0, 1, 3, 40, 200])))
        lines = [k + b"\t" + f"{i}:{n}".encode() + rng.choice([b"", b"\tx", b"\t\ty\t"]) for n, k in enumerate(keys)]
        path = tmp_path / f"{i:03d}.ndjson"
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        paths.append(path)
    plain = list(worker.merge_sorted(paths))
    assert len(plain) == sum(len(p.read_bytes().splitlines()) for p in paths)
    assert list(worker.merge_sorted(paths, line_feed=True)) == [v + b"\n" for v in plain]


def _digest(rng: random.Random) -> dict[str, Any]:
    return {"patient": _text(rng).replace("\ud800", ""), "orders": [{"label": _text(rng).replace("\ud800", "")}
                                                                    for _ in range(rng.randrange(3))]}


@pytest.mark.parametrize("seed", range(3))
def test_the_top_patients_read_apart_are_those_of_the_summaries_holding_their_digests(tmp_path: Path,
                                                                                    seed: int) -> None:
    rng = random.Random(seed)
    limit = rng.choice([1, 3, 10, 40])
    names = [f"{i:05d}" for i in range(rng.randrange(1, 9))] + ["common"]
    plain: list[tuple[list[Any], dict[str, Any]]] = []
    top: list[tuple[list[Any], str, int]] = []
    for name in names:
        result = worker.ShardResult()
        for _ in range(rng.randrange(limit + 5)):  # scores with ties (same key in several shards)
            score = [-rng.randrange(2), -rng.randrange(3), -rng.randrange(4), rng.choice(["~", "Patient/a", "P/b"])]
            result.top.append((score, _digest(rng)))
        result.top.sort(key=lambda t: t[0])
        del result.top[limit:]
        worker.write_result(result, tmp_path, name)
        summary = orjson.loads((tmp_path / f"{name}.json").read_bytes())
        # the plain way: every digest in the summary, the top cut after each shard
        plain.extend((k, d) for k, d in orjson.loads(orjson.dumps([[k, d] for k, d in result.top])))
        plain.sort(key=lambda t: t[0])
        del plain[limit:]
        merge.add_top(top, name, summary["top"], limit)
    got = merge.top_digests(tmp_path, [(n, i) for _, n, i in top])
    assert orjson.dumps(got) == orjson.dumps([d for _, d in plain])
    assert [k for k, _, _ in top] == [k for k, _ in plain]


@pytest.mark.parametrize("seed", range(4))
def test_tallies_added_from_their_json_are_those_read_then_merged(seed: int) -> None:
    from checker.audit import indicators

    rng = random.Random(seed)
    plain: indicators.Tally = {}
    fast: indicators.Tally = {}
    for _ in range(rng.randrange(1, 8)):
        shard = {(rng.choice("ABC"), rng.choice(["*", "Practitioner/1", "Practitioner/2", "", "é"])):
                 [rng.randrange(5), rng.randrange(1, 9)] for _ in range(rng.randrange(30))}
        data = orjson.loads(orjson.dumps(indicators.tally_to_json(shard)))
        indicators.merge(plain, indicators.tally_from_json(data))
        indicators.merge_json(fast, data)
    assert list(fast.items()) == list(plain.items())  # same cells, same order
