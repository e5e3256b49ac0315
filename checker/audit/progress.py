"""Progress display: a rich progress bar (resources/s, ETA) on a terminal, silence otherwise."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from collections.abc import Iterator
from typing import Any


class QuietProgress:
    """Counts without displaying anything (CI, logs, pipes, tests)."""

    def __init__(self) -> None:
        self.resources = 0
        self.started = time.monotonic()

    def items(self, n: int) -> None:
        self.resources += n

    def bytes_done(self, n: int) -> None:
        pass

    def start_check(self, shards: int) -> None:
        pass

    def shard_done(self, resources: int) -> None:
        pass

    def phase(self, name: str) -> None:
        pass


class RichProgress(QuietProgress):
    """Two bars: reading/partitioning (by bytes, resources/s) then checking (by shard, resources/s)."""

    def __init__(self, total_bytes: int) -> None:
        super().__init__()
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress(
            TextColumn("{task.description:<10}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            transient=False, console=None,
        )
        self.read_task = self.bar.add_task("lecture", total=max(total_bytes, 1), rate="")
        self.check_task: Any = None
        self.checked = 0
        self.check_started = 0.0

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()

    def _rate(self, n: int, since: float) -> str:
        dt = max(time.monotonic() - since, 1e-6)
        return f"{n / dt:,.0f} ressources/s ({n:,})"

    def items(self, n: int) -> None:
        super().items(n)
        self.bar.update(self.read_task, rate=self._rate(self.resources, self.started))

    def bytes_done(self, n: int) -> None:
        self.bar.advance(self.read_task, n)

    def start_check(self, shards: int) -> None:
        task = self.bar.tasks[self.read_task]
        self.bar.update(self.read_task, completed=task.total)
        self.check_task = self.bar.add_task("contrôle", total=max(shards, 1), rate="")
        self.check_started = time.monotonic()

    def shard_done(self, resources: int) -> None:
        self.checked += resources
        if self.check_task is not None:
            self.bar.update(self.check_task, advance=1, rate=self._rate(self.checked, self.check_started))


def interactive() -> bool:
    """True on an interactive terminal outside CI."""
    return sys.stderr.isatty() and not os.environ.get("CI")


@contextmanager
def make_progress(enabled: bool | None, total_bytes: int) -> Iterator[QuietProgress]:
    if enabled is None:
        enabled = interactive()
    if not enabled:
        yield QuietProgress()
        return
    with RichProgress(total_bytes) as p:
        yield p
