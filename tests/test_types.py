"""The package type-checks: ``mypy`` (configured in pyproject.toml's ``[tool.mypy]``) reports no error."""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_reports_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the configured files (checker, cli.py) are relative to the project root
    stdout, stderr, status = api.run(["--config-file", str(ROOT / "pyproject.toml"),
                                      "--cache-dir", str(tmp_path / "mypy_cache")])
    assert status == 0, f"mypy reported errors (exit {status}):\n{stdout}{stderr}"
