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


def smooth_eta(elapsed: float, done: float, total: float, since_update: float) -> float | None:
    """Seconds left, counting down between updates: the mean rate so far predicts the remaining
    work, less the time spent since the last update (never below zero). ``None`` before any work."""
    if done <= 0 or total <= 0 or elapsed <= 0:
        return None
    if done >= total:
        return 0.0
    at_update = elapsed - since_update
    if at_update <= 0:
        return None
    return max((total - done) * at_update / done - since_update, 0.0)


def _eta_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class SmoothEta(ProgressColumn):
        """An ETA that moves every refresh (a shard finishing is a step, the countdown is not)."""

        max_refresh = 0.5

        def render(self, task: Any) -> Text:
            started = task.fields.get("started")
            updated = task.fields.get("updated")
            if started is None or updated is None:
                return Text("-:--:--")
            now = time.monotonic()
            left = smooth_eta(now - started, task.completed, task.total or 0, now - updated)
            if left is None:
                return Text("-:--:--")
            m, sec = divmod(int(left + 0.5), 60)
            h, m = divmod(m, 60)
            return Text(f"{h}:{m:02d}:{sec:02d}")

    return SmoothEta()


class RichProgress(QuietProgress):
    """Two bars: reading/partitioning (by bytes, resources/s) then checking (by shard, resources/s)."""

    def __init__(self, total_bytes: int) -> None:
        super().__init__()
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("{task.description:<10}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), _eta_column(),
            transient=False, console=None,
        )
        now = time.monotonic()
        self.read_task = self.bar.add_task("lecture", total=max(total_bytes, 1), rate="", started=now, updated=now)
        self.check_task: Any = None
        self.by_resources = False
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
        self.bar.update(self.read_task, advance=n, updated=time.monotonic())

    def start_check(self, shards: int) -> None:
        """The check bar counts resources (the shards' sizes differ), its ETA counting down between shards."""
        task = self.bar.tasks[self.read_task]
        self.bar.update(self.read_task, completed=task.total)
        now = time.monotonic()
        total = self.resources if self.resources > 0 else shards
        self.by_resources = self.resources > 0
        self.check_task = self.bar.add_task("contrôle", total=max(total, 1), rate="", started=now, updated=now)
        self.check_started = now

    def shard_done(self, resources: int) -> None:
        self.checked += resources
        if self.check_task is not None:
            self.bar.update(self.check_task, advance=resources if self.by_resources else 1,
                            rate=self._rate(self.checked, self.check_started), updated=time.monotonic())


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
