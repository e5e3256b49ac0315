"""How the audit's results are encoded for a cheap merge, against what they stand for.

Result files of the audit and of the sharded ``check`` are merged by comparing their keys as bytes
(:func:`checker.audit.worker.sortable`): the byte order must be the order of the keys compared as
Python lists, on seeded keys made to trip it up (prefixes, empty texts, NUL, non-ASCII, astral
characters, lone surrogates, lists of every length, negative numbers). The CSV rows of findings.csv
are written without the csv module's character walk: byte for byte what the module writes, on
seeded rows and on the findings of a generated export."""

from __future__ import annotations

import random
from typing import Any

from pathlib import Path

import orjson

from checker.audit import outputs
from checker.formats import csv as csv_format
from checker.audit.worker import sortable
from tests.conftest import export_generator

ALPHABET = ["", "a", "b", "~", "\x00", "\x01", "é", "ÿ", "\u20ac", "\U0001f48a", "\ud800", "Patient/", "A", " ", "\t"]


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(4)))


def _finding_key(rng: random.Random) -> tuple[Any, ...]:
    return (_text(rng), -rng.randrange(4), _text(rng), tuple(_text(rng) for _ in range(rng.randrange(4))),
            _text(rng))


def _cmp(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def test_sortable_keys_sort_as_the_lists_they_encode() -> None:
    rng = random.Random(17)
    for _ in range(40):
        keys = [_finding_key(rng) for _ in range(200)]
        keys += [k[:3] + (k[3][:-1],) + k[4:] for k in keys[:30] if k[3]]  # lists and their prefixes
        keys += [(k[0] + "\x00",) + k[1:] for k in keys[:30]]  # texts and their extensions by NUL
        by_list = sorted(range(len(keys)), key=lambda i: (list(keys[i][:3]) + [list(keys[i][3])] + [keys[i][4]], i))
        by_bytes = sorted(range(len(keys)), key=lambda i: (sortable(keys[i]), i))
        assert by_list == by_bytes
        for a, b in zip(keys, reversed(keys)):
            assert _cmp(sortable(a), sortable(b)) == _cmp(list(a[:3]) + [list(a[3]), a[4]],
                                                         list(b[:3]) + [list(b[3]), b[4]])


def test_sortable_keys_are_one_line_of_hexadecimal() -> None:
    rng = random.Random(3)
    for _ in range(500):
        key = sortable(_finding_key(rng))
        assert key.isascii() and all(c in b"0123456789abcdef" for c in key)


def _location(rng: random.Random) -> str:
    """A location as errors write them: ``file``, ``file:3``, ``file:3 /pointer``, ``file /entry/2``,
    a rule's ``PR003 · Patient/x``, with digit runs of every length (some past 2**64)."""
    def name() -> str:
        return "".join(rng.choice(["part", "p", "/", "-", "é", "0", "7", "12", "009", str(10**25 + rng.randrange(9)),
                                   str(rng.randrange(10**3))]) for _ in range(rng.randrange(1, 5)))
    kind = rng.randrange(5)
    if kind == 0:
        return f"PR{rng.randrange(100, 999)} · Patient/{name()}"
    line = f":{rng.randrange(1, 40)}" if kind >= 2 else ""
    where = f" /entry/{rng.randrange(12)}/resource" if kind in (1, 4) else ""
    return name() + line + where


def test_error_keys_sort_in_input_order() -> None:
    from checker.audit.worker import error_sort_key
    from checker.findings import InputError

    rng = random.Random(5)
    errors = [InputError(_location(rng), rng.choice(["refused", "unreadable", ""]), rng.choice([None, "Patient"]))
              for _ in range(3000)]
    in_order = sorted(errors, key=lambda e: (e.order_key(), e.location, e.message, e.resource_type or ""))
    assert sorted(errors, key=error_sort_key) == in_order
    assert len({error_sort_key(e) for e in errors}) == len({(e.location, e.message, e.resource_type or "")
                                                             for e in errors})


CELLS = ["", " ", "a", '"', '""', ",", "\n", "\r", "\r\n", "\x00", "\t", ";", "'", "é", "\U0001f48a", "\ud800",
         "\x1e", "\\", "{", "}", "[1,2]", "a b"]


def _cell(rng: random.Random) -> Any:
    kind = rng.random()
    if kind < 0.7:
        return "".join(rng.choice(CELLS) for _ in range(rng.randrange(5)))
    return rng.choice([None, 0, -3, 10**30, 1.5, -0.0, 1e20, 3.14159, float("nan"), float("inf"), True, False,
                       ("a", "b")])


def _module_row(cells: list[Any]) -> bytes:
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(["" if v is None else v for v in cells])
    return buf.getvalue().encode("utf-8", "surrogatepass")


def test_csv_rows_are_the_csv_modules() -> None:
    rng = random.Random(23)
    for _ in range(20000):
        cells = [_cell(rng) for _ in range(rng.choice([0, 1, 1, 2, 3, 17]))]
        try:
            expected = _module_row(cells)
        except UnicodeEncodeError:
            continue
        try:
            got = outputs._csv_line(cells)
        except UnicodeEncodeError:  # a lone surrogate: refused by both
            continue
        assert got == expected, cells


def test_csv_rows_of_real_findings_are_the_csv_modules(tmp_path: Path) -> None:
    from checker import check
    from checker.formats import csv as csv_format

    export_generator().generate(tmp_path / "export", patients=40, per_patient=8, seed=6)
    report = check([str(tmp_path / "export")], as_of="2026-01-15")
    assert report.findings
    for finding in report.findings:
        row = csv_format.row(orjson.loads(orjson.dumps(finding.to_dict())))
        assert outputs._csv_line(row) == _module_row(row)


def test_csv_rows_made_from_the_findings_dicts_are_those_of_their_json(tmp_path: Path) -> None:
    """The worker makes a finding's row from its dict, the merge once parsed its JSON text."""
    from checker import check
    from tests.conftest import SAMPLES

    export_generator().generate(tmp_path / "export", patients=40, per_patient=8, seed=7)
    for lang in ("fr", "en"):
        report = check([str(tmp_path / "export"), str(SAMPLES)], as_of="2026-01-15", lang=lang)
        assert len(report.findings) > 100
        for finding in report.findings:
            data = finding.to_dict()
            body = orjson.dumps(data)
            assert outputs.finding_value(body, data) == outputs.finding_value(body)
            assert outputs.split_finding_value(outputs.finding_value(body, data)) == (
                body, outputs._csv_line(csv_format.row(orjson.loads(body))))  # the row from the ndjson line
