"""Referentials: encoded data (drugs, interactions, prices, protocols) kept outside the code.

``referentials/MANIFEST.json`` lists every source with its publisher, edition date, licence and
the SHA-256 of each file. Files are verified when first used; a missing or altered file raises
:class:`ReferentialError` naming the file. A *loader* is registered per referential id, with
:func:`loader`: by the knowledge package that parses it (``checker.drugs``, ``checker.iatrogenic``,
``checker.protocols``), or, for plain tables, by a module of this package. :class:`Referentials`
loads each one once per process, lazily and thread-safely. This store imports no clinical package
(docs/architecture.md, layers).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checker.findings import ReferentialInfo
from checker.memo import relaxed_gc


class ReferentialError(Exception):
    """A referential is missing, altered or malformed; the message names the file."""


def referentials_dir() -> Path:
    """Where the shipped referentials live.

    ``$PERTINENCE_REFERENTIALS`` wins; then the copy installed inside the package (wheel); then
    the source checkout's top-level ``referentials/`` (editable install, tests).
    """
    env = os.environ.get("PERTINENCE_REFERENTIALS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent.parent
    installed = here / "_referentials"
    if (installed / "MANIFEST.json").is_file():
        return installed
    return here.parent / "referentials"


def cache_dir() -> Path:
    """Where compiled indexes are cached (``$PERTINENCE_CACHE`` or the user cache directory)."""
    env = os.environ.get("PERTINENCE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pertinence"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One referential source as declared in the manifest."""

    id: str
    title: str
    publisher: str
    edition: str
    licence: str
    url: str
    files: tuple[tuple[str, str], ...]  # (relative path, sha256)
    notes: str = ""

    def paths(self, root: Path) -> list[Path]:
        return [root / p for p, _ in self.files]

    @property
    def digest(self) -> str:
        """One checksum for the whole entry (combines its file checksums)."""
        return _digest(self.files)


@functools.lru_cache(maxsize=256)
def _digest(files: tuple[tuple[str, str], ...]) -> str:
    """:attr:`ManifestEntry.digest`, computed once per list of files (every report cites its
    referentials: a CDS request would otherwise hash thousands of checksums)."""
    return hashlib.sha256("".join(s for _, s in files).encode()).hexdigest()


_REQUIRED = ("id", "title", "publisher", "edition", "licence", "url", "files")


def load_manifest(root: Path | None = None) -> dict[str, ManifestEntry]:
    """Parse and check the manifest's shape (not the file checksums: see :func:`verify_entry`)."""
    root = root or referentials_dir()
    path = root / "MANIFEST.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReferentialError(f"{path}: referential manifest not found") from None
    except json.JSONDecodeError as exc:
        raise ReferentialError(f"{path}:{exc.lineno}: manifest is not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("referentials"), list):
        raise ReferentialError(f"{path}: expected an object with a 'referentials' list")
    out: dict[str, ManifestEntry] = {}
    for i, item in enumerate(data["referentials"]):
        where = f"{path}: referentials[{i}]"
        if not isinstance(item, dict):
            raise ReferentialError(f"{where}: expected an object")
        missing = [k for k in _REQUIRED if k not in item]
        if missing:
            raise ReferentialError(f"{where}: missing {', '.join(missing)}")
        files = item["files"]
        if not isinstance(files, list) or not all(isinstance(f, dict) and {"path", "sha256"} <= f.keys() for f in files):
            raise ReferentialError(f"{where}: 'files' must be a list of {{path, sha256}}")
        if item["id"] in out:
            raise ReferentialError(f"{where}: duplicate id {item['id']!r}")
        out[item["id"]] = ManifestEntry(
            id=item["id"],
            title=item["title"],
            publisher=item["publisher"],
            edition=item["edition"],
            licence=item["licence"],
            url=item["url"],
            files=tuple((f["path"], f["sha256"]) for f in files),
            notes=item.get("notes", ""),
        )
    return out


_VERIFIED: dict[tuple[str, str], tuple[int, int]] = {}
_VERIFIED_LOCK = threading.Lock()


def verify_entry(entry: ManifestEntry, root: Path) -> None:
    """Check every file of ``entry`` exists and matches its checksum.

    A file is hashed once per process (then only its size and modification time are compared):
    every run, request or shard worker verifies before checking, at the cost of a ``stat``.
    """
    for rel, expected in entry.files:
        path = root / rel
        try:
            st = path.stat()
        except OSError:
            raise ReferentialError(f"{path}: file of referential {entry.id!r} is missing") from None
        if not stat.S_ISREG(st.st_mode):
            raise ReferentialError(f"{path}: file of referential {entry.id!r} is missing")
        key, stamp = (str(path), expected), (st.st_size, st.st_mtime_ns)
        if _VERIFIED.get(key) == stamp:
            continue
        actual = sha256_file(path)
        if actual != expected:
            raise ReferentialError(
                f"{path}: checksum mismatch for referential {entry.id!r}: expected sha256 {expected}, "
                f"found {actual}; the file was altered or damaged: re-import it (never edit the manifest "
                f"by hand to make it pass)"
            )
        with _VERIFIED_LOCK:
            _VERIFIED[key] = stamp


Loader = Callable[[ManifestEntry, Path], Any]
_LOADERS: dict[str, Loader] = {}


def loader(ref_id: str) -> Callable[[Loader], Loader]:
    """Register the loader of referential ``ref_id`` (called once per process)."""

    def register(func: Loader) -> Loader:
        _LOADERS[ref_id] = func
        return func

    return register


class Referentials:
    """Lazy, thread-safe access to loaded referentials: ``refs.get("bdpm")``."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or referentials_dir()
        self.manifest = load_manifest(self.root)
        self._loaded: dict[str, Any] = {}
        self._lock = threading.RLock()
        self._verified = False

    def get(self, ref_id: str) -> Any:
        value = self._loaded.get(ref_id)
        if value is not None:
            return value
        with self._lock:
            if ref_id not in self._loaded:
                _import_loaders()
                entry = self.manifest.get(ref_id)
                if entry is None:
                    raise ReferentialError(f"{self.root / 'MANIFEST.json'}: no referential {ref_id!r}")
                load = _LOADERS.get(ref_id)
                if load is None:
                    raise ReferentialError(f"no loader registered for referential {ref_id!r} (it registers when "
                                           "the package that parses it is imported; `import checker` does)")
                verify_entry(entry, self.root)
                # Loading builds many long-lived objects: the collector, triggered every 700 allocations,
                # would rescan them all again and again (a fifth of a single-file check's start-up).
                with relaxed_gc():
                    self._loaded[ref_id] = load(entry, self.root)
            return self._loaded[ref_id]

    def verify_all(self) -> None:
        """Verify every referential of the manifest (raises :class:`ReferentialError` on the first
        missing or altered file). Runs start with it: one altered file stops the run before anything is
        checked, since a rule left without its data would otherwise read as an all-clear.

        Once per instance: a referential is verified again when it is loaded (:meth:`get`), and loaded
        data do not change with the file, so a service request or an audit chunk costs no ``stat``."""
        if self._verified:
            return
        for entry in self.manifest.values():
            verify_entry(entry, self.root)
        self._verified = True

    def has(self, ref_id: str) -> bool:
        return ref_id in self.manifest

    def info(self, ids: list[str] | None = None) -> tuple[ReferentialInfo, ...]:
        """Citation data for the given referentials (all by default)."""
        chosen = ids if ids is not None else sorted(self.manifest)
        return tuple(
            ReferentialInfo(e.id, e.title, e.edition, e.digest)
            for e in (self.manifest[i] for i in chosen if i in self.manifest)
        )


def _import_loaders() -> None:
    """Import every module of this package: each registers the loaders of its plain tables (they
    import this module, so it can only find them once it is loaded)."""
    import importlib
    import pkgutil

    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")

_default: Referentials | None = None
_default_lock = threading.Lock()


def default_referentials() -> Referentials:
    """The process-wide referentials (shipped copy), created on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Referentials()
    return _default
