"""Writing ``referentials/MANIFEST.json``: the one implementation of a manifest refresh.

Metadata (title, publisher, edition, licence, url, notes) is written by hand, or by an importer
for the entry it owns (:func:`set_entry`); checksums and ``files`` lists are only ever written by
:func:`refresh`. ``tools/refresh_manifest.py`` (maintainers) and ``pertinence referentials update``
both end with :func:`refresh` then :func:`write`.

A new file is added to the entry that already owns every other listed file of its folder (a new
protocol XML joins ``protocols``); a file in a folder no entry owns, or owned by several, is an
error (``error:`` change): its entry must be written first.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Any

from checker.outputs import write_atomic
from checker.referentials import ReferentialError, sha256_file

MANIFEST = "MANIFEST.json"


def read(root: Path) -> dict[str, Any]:
    """The manifest as JSON data; an empty one when the folder has none yet."""
    path = root / MANIFEST
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"about": "Referentials shipped with Pertinence.", "referentials": []}
    except json.JSONDecodeError as exc:
        raise ReferentialError(f"{path}:{exc.lineno}: manifest is not valid JSON ({exc.msg})") from None
    return data


def set_entry(data: dict[str, Any], entry: dict[str, Any]) -> None:
    """Insert or replace the metadata of one entry (its ``files`` list is kept; :func:`refresh`
    fills it)."""
    items = data.setdefault("referentials", [])
    for i, item in enumerate(items):
        if item.get("id") == entry["id"]:
            items[i] = {**entry, "files": entry.get("files", item.get("files", []))}
            return
    items.append({**entry, "files": entry.get("files", [])})


def refresh(root: Path, data: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Recompute every checksum, drop files that are gone and list new files with their owner.

    Returns the refreshed manifest and the changes (errors prefixed ``error:``)."""
    data = read(root) if data is None else data
    entries = data.get("referentials", [])
    changes: list[str] = []
    owners: dict[str, set[str]] = defaultdict(set)
    listed: set[str] = set()
    for entry in entries:
        kept = []
        for item in entry.get("files", []):
            path = root / item["path"]
            if not path.is_file():
                changes.append(f"removed {item['path']} from {entry['id']} (file gone)")
                continue
            digest = sha256_file(path)
            if digest != item.get("sha256"):
                changes.append(f"checksum of {item['path']} ({entry['id']})")
            kept.append({"path": item["path"], "sha256": digest})
            listed.add(item["path"])
            owners[str(PurePosixPath(item["path"]).parent)].add(entry["id"])
        entry["files"] = kept
    by_id = {e["id"]: e for e in entries}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel == MANIFEST or rel in listed or path.name.startswith("."):
            continue
        folder = owners.get(str(PurePosixPath(rel).parent), set())
        if len(folder) != 1:
            changes.append(f"error: {rel} is in no entry and its folder has {len(folder)} owners: write its entry")
            continue
        owner = by_id[next(iter(folder))]
        owner["files"].append({"path": rel, "sha256": sha256_file(path)})
        owner["files"].sort(key=lambda f: f["path"])
        changes.append(f"added {rel} to {owner['id']}")
    return data, changes


def write(root: Path, data: dict[str, Any]) -> None:
    """Write the manifest atomically, in the shipped layout (2-space JSON, UTF-8, final newline)."""
    write_atomic(root / MANIFEST, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
