"""Refresh the SHA-256 of every file listed in ``referentials/MANIFEST.json`` (maintainers only).

The one way to refresh the manifest after editing, adding or removing a referential file::

    python tools/refresh_manifest.py            # rewrite checksums; add new files of known folders
    python tools/refresh_manifest.py --check    # exit 1 if anything is stale or unlisted (CI-friendly)

Metadata (title, publisher, edition, licence, url, notes) is written by hand in the manifest; this
script only maintains each entry's ``files`` list, through ``checker.referentials.manifest`` (the
same code ``pertinence referentials update`` ends with). A new file is added to the entry that already
owns every other listed file of its folder (a new protocol XML joins ``protocols``); a file in a
folder no entry owns, or owned by several, is an error: write its entry first.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from checker.referentials import manifest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1] / "referentials"


def refresh(root: Path = ROOT) -> tuple[dict, list[str]]:
    """Return the refreshed manifest and the list of changes (or errors, prefixed ``error:``)."""
    return manifest.refresh(root)


def main(argv: list[str]) -> int:
    check = "--check" in argv[1:]
    data, changes = refresh()
    for line in changes:
        print(line)
    if any(c.startswith("error:") for c in changes):
        return 2
    if check:
        return 1 if changes else 0
    manifest.write(ROOT, data)
    print(f"{len(changes)} change(s) written to {ROOT / manifest.MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
