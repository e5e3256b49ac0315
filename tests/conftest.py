"""Shared test fixtures: repository paths and the optional ../shared corpus."""

from __future__ import annotations

from pathlib import Path

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
