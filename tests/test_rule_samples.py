"""The parametrised rule runner: every sample under fhir_samples/rules/<RULE>/ (see
docs/architecture.md, "Rule samples")."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from checker import check
from tests.conftest import SAMPLES

DEFAULT_AS_OF = "2026-01-15"


def _cases() -> list[Any]:
    cases = []
    for path in sorted((SAMPLES / "rules").glob("*/*.json")):
        if path.name.endswith(".expect.json"):
            continue
        rule = path.parent.name
        cases.append(pytest.param(rule, path, id=f"{rule}/{path.stem}"))
    return cases


def _expectation(path: Path) -> dict[str, Any]:
    exp = path.with_name(path.stem + ".expect.json")
    return orjson.loads(exp.read_bytes()) if exp.is_file() else {}


def subset(expected: Any, actual: Any) -> bool:
    """``expected`` is contained in ``actual`` (dicts as subsets, lists element-wise, else equal)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and subset(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(subset(e, a) for e, a in zip(expected, actual))
    if isinstance(expected, float) and isinstance(actual, (int, float)):
        return abs(expected - actual) < 1e-6
    return expected == actual


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
        assert len(found) == len(expected), f"{path.name}: expected {len(expected)} findings, got {found}"
        unmatched = list(found)
        for want in expected:
            hit = next((f for f in unmatched if subset(want, f)), None)
            assert hit is not None, f"{path.name}: no finding matches {want}; got {unmatched}"
            unmatched.remove(hit)
