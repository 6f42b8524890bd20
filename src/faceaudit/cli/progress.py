"""Progress display for long work: one line per phase on stderr, only in a terminal.

The library reports progress through plain callbacks ``update(done, total)`` (the engine calls
one after each block); this module turns them into a rich display. Piped or redirected output
shows nothing, so scripts and logs stay clean.

>>> with Phases() as phases:                       # doctest: +SKIP
...     with phases.phase("searching", unit="probes") as update:
...         run_audit(..., progress=update)

A phase whose total is not known yet (``total=None``) shows a spinner with its elapsed time;
once ``update`` receives a total it shows a bar with counts, rate and time left. When a phase
ends, a line ``done searching: 6,000 probes in 3.2 s`` stays on screen.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from auditcore.cli import console as shared_console

Update = Callable[..., None]


class _CountColumn(ProgressColumn):
    """``1,234/6,000 probes`` (or ``1,234 probes`` while the total is unknown)."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "")
        done = int(task.completed)
        if task.total is None:
            return Text(f"{done:,} {unit}" if done else "", style="progress.download")
        return Text(f"{done:,}/{int(task.total):,} {unit}", style="progress.download")


class _RateColumn(ProgressColumn):
    """``2,310 probes/s``."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if not speed or task.total is None:
            return Text("")
        unit = task.fields.get("unit", "")
        return Text(f"{speed:,.0f} {unit}/s" if speed >= 10 else f"{speed:.2g} {unit}/s", style="progress.data.speed")


class _RemainingColumn(TimeRemainingColumn):
    def render(self, task: Task) -> Text:
        if task.total is None:
            return Text("")
        return Text("eta ") + super().render(task)


def _seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(int(round(s)), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


class Phases:
    """A progress display for a sequence of phases; silent unless stderr is a terminal."""

    def __init__(self, console: Optional[Console] = None, *, enabled: Optional[bool] = None) -> None:
        self.console = console or shared_console
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self._progress: Optional[Progress] = None

    def __enter__(self) -> "Phases":
        if self.enabled:
            self._progress = Progress(
                SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(bar_width=16),
                _CountColumn(), _RateColumn(), TimeElapsedColumn(), _RemainingColumn(),
                console=self.console, transient=True, refresh_per_second=8)
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    @contextmanager
    def phase(self, label: str, *, unit: str = "", total: Optional[int] = None) -> Iterator[Update]:
        """Show ``label`` while the block runs; yield ``update(done, total=None)``."""
        started = time.perf_counter()
        state = {"done": 0, "total": total}
        if self._progress is None:
            def update(done: int, total: Optional[int] = None) -> None:
                state["done"] = done
                if total is not None:
                    state["total"] = total
            yield update
            return
        progress = self._progress
        task = progress.add_task(label, total=total, unit=unit)

        def update(done: int, total: Optional[int] = None) -> None:
            state["done"] = done
            if total is not None:
                state["total"] = total
                progress.update(task, completed=done, total=total)
            else:
                progress.update(task, completed=done)

        try:
            yield update
        finally:
            progress.remove_task(task)
        elapsed = time.perf_counter() - started
        count = f": {state['done']:,} {unit}" if unit and state["done"] else ""
        self.console.print(f"[green]done[/] {label}{count} in {_seconds(elapsed)}", highlight=False)


@contextmanager
def no_phases() -> Iterator[Phases]:
    """A display that shows nothing (library use, tests)."""
    yield Phases(enabled=False)
