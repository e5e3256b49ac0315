"""The one way to refresh the referential manifest: ``tools/refresh_manifest.py``."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _tool():
    spec = importlib.util.spec_from_file_location("refresh_manifest", REPO / "tools" / "refresh_manifest.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_manifest_is_fresh() -> None:
    _, changes = _tool().refresh(REPO / "referentials")
    assert changes == [], f"run python tools/refresh_manifest.py: {changes}"


@pytest.fixture()
def copy(tmp_path: Path) -> Path:
    root = tmp_path / "referentials"
    shutil.copytree(REPO / "referentials", root)
    return root


def test_stale_checksum_new_file_and_orphan_are_reported(copy: Path) -> None:
    tool = _tool()
    (copy / "protocols" / "zz-new.xml").write_text("<protocol/>", encoding="utf-8")
    with (copy / "economics" / "mte-substances.json").open("a", encoding="utf-8") as f:
        f.write("\n")
    (copy / "nowhere").mkdir()
    (copy / "nowhere" / "x.tsv").write_text("a\tb\n", encoding="utf-8")
    data, changes = tool.refresh(copy)
    assert "added protocols/zz-new.xml to protocols" in changes
    assert "checksum of economics/mte-substances.json (mte-substances)" in changes
    assert any(c.startswith("error: nowhere/x.tsv") for c in changes)
    protocols = next(e for e in data["referentials"] if e["id"] == "protocols")
    assert "protocols/zz-new.xml" in [f["path"] for f in protocols["files"]]
    json.dumps(data)  # still serialisable
