"""A finding's findings.ndjson line and findings.csv row written from the typed finding, against the
plain path they stand for (``orjson.dumps(f.to_dict())`` and ``csv.row(f.to_dict())``): seeded
findings with every kind of typed evidence and suggestion value (messages, localized texts, savings
with plain and typed figures, nested dicts, lists and tuples, ``1.0``, ``-0.0``, NaN, ``None``,
dataclasses and enums the typed walk leaves to the plain one), in both languages."""

from __future__ import annotations

import csv
import io
import random
import string
from datetime import date
from enum import Enum
from typing import Any

import orjson
import pytest

from checker.audit import outputs
from checker.findings import Amount, Finding, Localized, Message, Saving, Severity, Source, Word
from checker.formats import csv as csv_format
from checker.wording import LANGS, catalogue

SEED = 1718


class _Kind(str, Enum):
    A = "a"


class _Dict(dict):  # type: ignore[type-arg]
    """A dict subclass: the typed row leaves it to the plain one."""


def _codes(table: str) -> list[str]:
    return sorted(catalogue("fr")[table])


def _message(rng: random.Random, code: str) -> Message:
    """A message of ``code`` whose every field is given a text, a number or a typed value (now and
    then one is left out: wording it fails, the same way on both paths)."""
    names: dict[str, None] = {}
    for table in ("finding_summary", "finding_detail"):
        for suffix in ("", ".short"):
            template = catalogue("fr").get(table, {}).get(code + suffix) or ""
            names.update((n, None) for _, n, _, _ in string.Formatter().parse(template) if n)
    params: dict[str, Any] = {}
    for n in names:
        if rng.random() < 0.02:
            continue
        params[n] = rng.choice(["paracétamol", "Ibuprofène, 400 mg", 'a "b"', "x\ny", 3, 2.5,
                                Localized("rein", "kidney"), Amount(1.5, "EUR"), Word("severity", "info")])
    return Message(code, params)


def _value(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.randrange(15 if depth < 3 else 8)
    if pick == 0:
        return rng.choice(["x", "é", "a,b", 'q"q', "l\nl", "\r", 1, 2.5, 1.0, -0.0, 0.0, True, False, None, 10**20,
                           float("nan"), float("inf")])
    if pick == 1:
        return date(2026, 1, rng.randrange(1, 28))
    if pick == 2:
        return _message(rng, rng.choice(_codes("finding_detail")))
    if pick == 3:
        return Localized("rein", "kidney") if rng.random() < 0.85 else Localized(Localized("a", "b"), "c")  # type: ignore[arg-type]
    if pick == 4:
        return _saving(rng)
    if pick == 5:
        return rng.choice([Amount(1.5, "EUR"), Source("ANSM", "u", "2023"), _Kind.A, Word("severity", "info")])
    if pick == 6:
        return rng.choice(["plain", ""])
    if pick == 7:
        return rng.choice([{}, [], ()])
    if pick in (8, 9, 10):
        return {f"k{rng.randrange(6)}": _value(rng, depth + 1) for _ in range(rng.randrange(4))}
    if pick in (11, 12):
        return [_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if pick == 13:
        return tuple(_value(rng, depth + 1) for _ in range(rng.randrange(3)))
    return rng.choice([{1: "int key"}, _Dict(a=Localized("a", "b"))])


def _saving(rng: random.Random) -> Saving:
    extra = rng.choice([(), (("per_unit", 0.12),), (("text", Localized("a", "b")),), (("days", 30),),
                        (("amount", 9.0),), (("period", Localized("an", "year")),), (("note", [1.0, -0.0]),)])
    return Saving(rng.choice([None, 12.5, 0.0, -0.0, 1.0, float("nan")]), rng.choice(["EUR", "MAD", ""]),
                  rng.choice(["year", "month", ""]), rng.choice([None, 30.0, 0.0]), extra)


def _suggestion(rng: random.Random) -> Any:
    pick = rng.randrange(9)
    if pick == 0:
        return None
    if pick == 1:
        return {}
    if pick in (2, 3, 4):
        return {"saving": _saving(rng), "alternative": _value(rng)}
    if pick == 5:
        return {"saving": rng.choice([None, {"amount": 2.0, "currency": "EUR"}, {"amount": Localized("a", "b")},
                                      "text", 0, [], Localized("", "")]), "with": _value(rng)}
    if pick == 6:
        return {"with": _value(rng), "label": Localized("fr", "en")}
    if pick == 7:
        return _Dict(saving=_saving(rng))
    return rng.choice([[1, 2], "text", Localized("a", "b")])


def _findings(n: int, seed: int) -> list[Finding]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        evidence: Any = {f"e{k}": _value(rng) for k in range(rng.randrange(5))}
        if rng.random() < 0.05:
            evidence = rng.choice([None, [1, 2], _Dict(a=1)])
        out.append(Finding.worded_from(
            _message(rng, rng.choice(_codes("finding_summary"))), rng.choice(LANGS), rule=rng.choice(["DU001", "CG001"]),
            category="duplicate", severity=rng.choice(list(Severity)),
            source=Source(rng.choice(["S", "ANSM, RCP"]), "https://s", rng.choice(["", "2026"])),
            patient=rng.choice([None, f"Patient/{i % 7}", ""]),
            implicated=tuple(f"MedicationRequest/{i}-{k}" for k in range(rng.randrange(3))),
            level=rng.choice([None, "CI", ""]), suggestion=_suggestion(rng), evidence=evidence, key=str(i)))
    return out


def _outcome(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a finding that cannot be written fails the same way on both paths
        return f"!{type(exc).__name__}"


@pytest.mark.parametrize("seed", [SEED, SEED + 1, SEED + 2])
def test_a_findings_typed_cells_are_those_of_its_plain_data(seed: int) -> None:
    fs = _findings(600, seed)
    typed = plain = 0
    for f in fs:
        expected = _outcome(lambda: csv_format.row(f.to_dict()))
        got = _outcome(csv_format.finding_row, f)
        assert repr(got) == repr(expected), f  # repr: NaN cells and -0.0 compared as written
        if type(f.suggestion) in (dict, type(None)) and type(f.evidence) is dict:
            typed += 1
        else:
            plain += 1
    assert typed > 400 and plain > 20  # both paths taken


@pytest.mark.parametrize("seed", [SEED + 10, SEED + 11])
def test_a_findings_result_value_made_from_the_finding_equals_the_plain_paths(seed: int) -> None:
    """The worker's (typed JSON line, typed cells) against (plain dict dumped, its cells)."""
    written = 0
    for f in _findings(600, seed):
        expected = _outcome(lambda: outputs.finding_value(orjson.dumps(f.to_dict()), f.to_dict()))
        got = _outcome(lambda: outputs.finding_value(f.to_json(), cells=csv_format.finding_row(f)))
        assert got == expected, f
        written += isinstance(expected, bytes)
    assert written > 200


def test_the_csv_format_writes_the_plain_rows() -> None:
    """``check --format csv`` with the typed rows: what the csv module wrote of the plain rows."""
    from checker.findings import InputCounts, Report

    for lang in LANGS:
        fs = [f.worded(lang) for f in _findings(400, SEED + 20)
              if isinstance(_outcome(lambda: csv_format.row(f.to_dict())), list)]
        report = Report("pertinence", "0", (), "2026-01-15", "fr", InputCounts(), fs, [], lang=lang)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(csv_format.COLUMNS)
        for f in report.sorted_findings():
            writer.writerow(csv_format.row(f.to_dict()))
        assert csv_format.render(report) == buf.getvalue()


def test_a_findings_sort_key_is_the_sortable_key_of_its_parts() -> None:
    from dataclasses import replace

    from checker.audit.worker import finding_sort_key, sortable

    rng = random.Random(SEED + 30)
    texts = ["", "~", "a", "\x00", "é", "\U0001f48a", "Patient/1", "MedicationRequest/2"]
    fs = [f for f in _findings(300, SEED + 30) if isinstance(_outcome(lambda: (f.summary, f.detail)), tuple)]
    fs += [replace(f, patient=rng.choice([None, *texts]), rule=rng.choice(texts),
                   implicated=tuple(rng.choice(texts) for _ in range(rng.randrange(4)))) for f in fs[:200]]
    fs += [replace(fs[0], implicated=(3, 1)), replace(fs[1], implicated=["b", "a"])]  # type: ignore[arg-type]
    for f in fs:
        assert _outcome(finding_sort_key, f) == _outcome(lambda: sortable(
            (f.patient or "~", -f.severity.rank, f.rule, f.implicated, f.fingerprint)))


def test_a_row_of_plain_cells_is_written_and_any_other_row_refused() -> None:
    """The worker writes a finding's row from its cells only when each is what the JSON text gives
    back (``None``, text, an integer, a finite number): else the row comes from the parsed text."""
    import math

    from tests.test_audit_merge_encoding import _cell, _module_row

    rng = random.Random(SEED + 40)
    refused = 0
    for _ in range(20000):
        cells = [_cell(rng) for _ in range(rng.choice([1, 1, 2, 3, 17, 17]))]
        plain = all(c is None or type(c) in (str, int) or (type(c) is float and math.isfinite(c)) for c in cells)
        try:
            expected = _module_row(cells).decode("utf-8", "surrogatepass") if plain else None
        except UnicodeEncodeError:
            continue
        assert outputs._row_text(cells, True) == expected, cells
        refused += expected is None
    assert 1000 < refused < 19000
