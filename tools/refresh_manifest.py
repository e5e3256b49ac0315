"""Refresh the SHA-256 of every file listed in ``referentials/MANIFEST.json`` (maintainers only).

The one way to refresh the manifest after editing, adding or removing a referential file::

    python tools/refresh_manifest.py            # rewrite checksums; add new files of known folders
    python tools/refresh_manifest.py --check    # exit 1 if anything is stale or unlisted (CI-friendly)

Metadata (title, publisher, edition, licence, url, notes) is written by hand in the manifest; this
script only maintains each entry's ``files`` list. A new file is added to the entry that already
owns every other listed file of its folder (a new protocol XML joins ``protocols``); a file in a
folder no entry owns, or owned by several, is an error: write its entry first.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[1] / "referentials"
MANIFEST = "MANIFEST.json"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def refresh(root: Path = ROOT) -> tuple[dict, list[str]]:
    """Return the refreshed manifest and the list of changes (or errors, prefixed ``error:``)."""
    data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    entries = data["referentials"]
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


def main(argv: list[str]) -> int:
    check = "--check" in argv[1:]
    data, changes = refresh()
    for line in changes:
        print(line)
    if any(c.startswith("error:") for c in changes):
        return 2
    if check:
        return 1 if changes else 0
    (ROOT / MANIFEST).write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"{len(changes)} change(s) written to {ROOT / MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
