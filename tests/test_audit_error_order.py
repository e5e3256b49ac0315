"""The audit's errors.ndjson lists the input errors in input order, as ``pertinence check`` does
(``InputError.order_key``: digit runs of file names and line numbers read as numbers), whatever
shard each error fell into: ``file:9`` before ``file:10``, ``part2`` before ``part10``. The
merge used to order them by the location *text*."""

from __future__ import annotations

import json
from pathlib import Path

import orjson

from checker import check
from checker.audit import AuditOptions, run_audit

AS_OF = "2026-01-15"


def _line(n: int, patient: str, status: object) -> str:
    return json.dumps({"resourceType": "MedicationRequest", "id": f"m{n}", "status": status, "intent": "order",
                       "subject": {"reference": f"Patient/{patient}"},
                       "medicationCodeableConcept": {"text": "Doliprane 1000 mg comprimé"}})


def test_audit_errors_come_in_input_order(tmp_path: Path) -> None:
    lines = [_line(n, f"p{n}", "active") for n in range(1, 9)]
    lines += [_line(9, "p9", 7), _line(10, "p10", 7)]  # lines 9 and 10 refused (a status that is not text)
    export = tmp_path / "export.ndjson"
    export.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    run_audit([str(export)], AuditOptions(out=out, jobs=1, as_of=AS_OF, shards=3, progress=False))
    audited = [orjson.loads(x)["location"] for x in (out / "errors.ndjson").read_bytes().splitlines()]
    checked = [e.location for e in check(str(export), as_of=AS_OF).errors]
    assert len(audited) == 2
    assert audited == checked, f"audit {audited} / check {checked}"


def test_audit_errors_follow_file_names_and_lines_read_as_numbers(tmp_path: Path) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    for part in (2, 10):
        lines = [_line(n, f"q{part}-{n}", 7 if n % 4 == 0 else "active") for n in range(1, 25)]
        (inputs / f"part{part}.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    run_audit([str(inputs)], AuditOptions(out=out, jobs=1, as_of=AS_OF, shards=5, progress=False))
    audited = [orjson.loads(x)["location"] for x in (out / "errors.ndjson").read_bytes().splitlines()]
    checked = [e.location for e in check(str(inputs), as_of=AS_OF).errors]
    assert len(audited) == 12
    assert audited == checked
