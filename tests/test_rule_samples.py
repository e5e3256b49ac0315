"""The parametrised rule runner: every sample under fhir_samples/rules/<RULE>/ (see
docs/architecture.md, "Rule samples")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from checker import check
from tests.conftest import SAMPLES, match_one_to_one

DEFAULT_AS_OF = "2026-01-15"


def _cases() -> list[Any]:
    cases = []
    for path in sorted((SAMPLES / "rules").glob("*/*.json")):
        rule = path.parent.name
        cases.append(pytest.param(rule, path, id=f"{rule}/{path.stem}"))
    return cases


def _expectation(path: Path) -> dict[str, Any]:
    exp = path.with_name(path.stem + ".expect")
    return orjson.loads(exp.read_bytes()) if exp.is_file() else {}


@pytest.mark.parametrize("rule, path", _cases())
def test_rule_sample(rule: str, path: Path) -> None:
    exp = _expectation(path)
    report = check(
        [str(path)],
        as_of=exp.get("as_of", DEFAULT_AS_OF),
        jurisdiction=exp.get("jurisdiction", "fr"),
        select=[rule],
    )
    assert not report.errors, f"sample {path.name} has input errors: {report.errors}"
    found = [f.to_dict() for f in report.findings if f.rule == rule]
    if path.name.startswith("pass-"):
        assert not found, f"{rule} must stay silent on {path.name}, got: {[f['summary'] for f in found]}"
        return
    assert path.name.startswith("fail-"), f"sample names start with fail- or pass-: {path.name}"
    assert found, f"{rule} must fire on {path.name}"
    expected = exp.get("findings")
    if expected is not None:
        problems = match_one_to_one(expected, found)
        assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_every_expectation_sits_beside_its_sample() -> None:
    orphans = [str(p.relative_to(SAMPLES)) for p in SAMPLES.rglob("*.expect") if not p.with_suffix(".json").is_file()]
    assert not orphans, f"expectation files without their sample: {orphans}"


def test_the_whole_samples_folder_is_one_clean_input() -> None:
    """``pertinence check fhir_samples`` reads FHIR only, and each sample file keeps its patients to
    itself (a patient id shared by two samples would merge their prescriptions into one record)."""
    from checker.fhir_input import RawResource, iter_raw

    files_of: dict[str, set[str]] = {}
    for item in iter_raw(str(SAMPLES)):
        if isinstance(item, RawResource) and item.resource_type == "Patient":
            files_of.setdefault(str(item.resource.get("id")), set()).add(item.location.file)
    shared = {pid: sorted(files) for pid, files in files_of.items() if len(files) > 1}
    assert not shared, f"patient ids used by several sample files: {shared}"
    report = check(str(SAMPLES), as_of=DEFAULT_AS_OF)
    assert not report.errors, report.errors[:3]
    assert report.inputs.balanced() and report.inputs.rejected == 0
