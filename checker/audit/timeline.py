"""When each phase and each shard of an audit ran, for measuring where an audit's wall clock goes.

Off unless the environment names a file (``PERTINENCE_AUDIT_TIMELINE=FILE``): then every span
appends one JSON line ``{"what", "name", "pid", "start", "end", "cpu"}`` (seconds since the epoch,
so that the worker processes' spans line up with the main process's; ``cpu``: the process's CPU
seconds in the span, to tell work from waiting). ``benchmarks/audit_bench.py`` sets
it and prints the timeline: busy and idle cores, the phases that run on one core.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import orjson

ENV = "PERTINENCE_AUDIT_TIMELINE"


@contextmanager
def span(what: str, name: str = "") -> Iterator[None]:
    """Record the wall-clock span of the block (when the environment asks for a timeline)."""
    path = os.environ.get(ENV)
    if not path:
        yield
        return
    start, cpu = time.time(), time.process_time()
    try:
        yield
    finally:
        record(path, what, name, start, time.time(), time.process_time() - cpu)


def record(path: str, what: str, name: str, start: float, end: float, cpu: float) -> None:
    """Append one span (a single small ``O_APPEND`` write: lines of several processes do not mix)."""
    line = orjson.dumps({"what": what, "name": name, "pid": os.getpid(), "start": start, "end": end,
                         "cpu": cpu}) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
