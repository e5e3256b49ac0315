"""Shared test fixtures: repository paths and the optional ../shared corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "fhir_samples"
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The third-party corpus beside the repository; tests using it skip when it is absent."""
    if not (SHARED / "README.md").is_file():
        pytest.skip("../shared corpus not present")
    return SHARED


def subset(expected: Any, actual: Any) -> bool:
    """``expected`` is contained in ``actual`` (dicts as subsets, lists element-wise, else equal)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and subset(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(subset(e, a) for e, a in zip(expected, actual))
    if isinstance(expected, float) and isinstance(actual, (int, float)):
        return abs(expected - actual) < 1e-6
    return expected == actual


def match_one_to_one(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    """Problems found when pairing expected findings (field subsets) with actual ones; [] = match."""
    left = list(actual)
    problems = []
    for e in expected:
        hit = next((a for a in left if subset(e, a)), None)
        if hit is None:
            problems.append(f"expected finding not produced: {e}")
        else:
            left.remove(hit)
    problems += [f"unexpected finding: {a['rule']} {a['summary']}" for a in left]
    return problems
