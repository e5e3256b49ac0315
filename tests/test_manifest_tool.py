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


def test_one_manifest_writer() -> None:
    """Only ``checker.referentials.manifest`` writes the manifest: the maintainer tool and the BDPM
    import both go through it (no second implementation of checksums or files lists)."""
    writers = []
    for path in [*(REPO / "checker").rglob("*.py"), *(REPO / "tools").glob("*.py"), REPO / "cli.py"]:
        text = path.read_text(encoding="utf-8")
        writes = any(w in text for w in ("write_atomic(", ".write_text(", ".write_bytes(", "json.dump("))
        if writes and ("MANIFEST.json" in text or "MANIFEST =" in text):
            writers.append(path.relative_to(REPO).as_posix())
    assert writers == ["checker/referentials/manifest.py"]


def test_bdpm_import_keeps_other_entries_and_refreshes_their_checksums(copy: Path, tmp_path: Path) -> None:
    """``referentials update --bdpm`` ends with the same refresh as the maintainer tool: it keeps
    every other entry and leaves no stale checksum behind."""
    from checker.drugs.bdpm import update_snapshot
    from tests.test_drugs_bdpm import write_download

    update_snapshot(write_download(tmp_path / "dl"), copy)
    data, changes = _tool().refresh(copy)
    assert changes == []
    ids = [e["id"] for e in data["referentials"]]
    assert ids == [e["id"] for e in json.loads((REPO / "referentials" / "MANIFEST.json").read_text())["referentials"]]
    bdpm = next(e for e in data["referentials"] if e["id"] == "bdpm")
    assert bdpm["edition"] == "2026-01"
