"""One audit at a time per output folder: an advisory lock held for the whole run.

The lock is ``fcntl.flock`` on ``<out>/.pertinence-audit.lock`` (the kernel releases it when the
process ends, however it ends, so a killed run leaves no lock behind: only its note, which the next
run reports as stale and replaces). The file holds who has the lock (pid, host, start time) so that a
second audit can name the holder. A clean finish removes the file while still holding the lock; a
run that locked a file since removed (its path now names another file, or none) tries again, so two
runs never hold two different files.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

LOCK_NAME = ".pertinence-audit.lock"
log = logging.getLogger("pertinence.audit")


class AuditLocked(Exception):
    """Another audit is writing into the same output folder (message names it)."""


class AuditLock:
    """``with AuditLock(out):`` — raises :class:`AuditLocked` when another process holds it."""

    def __init__(self, out: Path) -> None:
        self.path = Path(out) / LOCK_NAME
        self._fd: int | None = None
        self.stale: dict[str, Any] | None = None  # the note of a run that ended without finishing

    def __enter__(self) -> AuditLock:
        try:
            import fcntl
        except ImportError:  # not a POSIX system (Windows): no advisory lock, said once per run
            log.warning("no advisory lock on this system: never run two audits into %s at once", self.path.parent)
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_note(fd)
                os.close(fd)
                raise AuditLocked(f"another audit is writing into {self.path.parent} ({_describe(holder)}); wait "
                                  f"for it to finish or choose another --out") from None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder finished and removed this file meanwhile: lock the current one
        previous = _read_note(fd)
        if previous:
            self.stale = previous
            log.warning("a previous audit into %s stopped without finishing (%s); its lock is stale and taken over",
                        self.path.parent, _describe(previous))
        note = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, orjson.dumps(note) + b"\n", 0)
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        import fcntl

        try:
            if exc_type is None:
                self.path.unlink(missing_ok=True)  # finished; an interrupted run leaves its note (stale)
        except OSError:
            pass
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _read_note(fd: int) -> dict[str, Any] | None:
    try:
        data = os.pread(fd, 4096, 0)
        note = orjson.loads(data) if data.strip() else None
    except (OSError, orjson.JSONDecodeError):
        return None
    return note if isinstance(note, dict) else None


def _describe(note: dict[str, Any] | None) -> str:
    if not note:
        return "holder unknown"
    return f"pid {note.get('pid')} on {note.get('host')}, started {note.get('started')}"
