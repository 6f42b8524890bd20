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

The engine's kernels are compiled by numba on the first run after install (and cached on disk
after that), which takes tens of seconds before the first block's counts arrive. While numba
compiles, a second line says so, with the kernels compiled so far and the seconds spent
(numba's own ``numba:compile`` events, which fire only on a compilation, never on a cache hit),
and a line ``done compiling the engine's kernels: 44 in 21.3 s`` stays afterwards. Once a phase's
count reaches its total, its line says the counts are complete and the figures are being computed.
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

COMPILING = "compiling the engine's kernels (first run after install only)"


class _CompileWatch:
    """Counts numba compilations while a display is open and shows them as one progress row.

    A numba ``Listener`` (registered for ``numba:compile``): ``on_start``/``on_end`` run in the
    compiling thread around each compilation (nested ones included: a kernel compiles the
    functions it calls). The row shows the kernels compiled so far; the elapsed column counts
    from the first compilation. It is removed when the phase's own counts arrive or it ends.
    """

    def __init__(self, progress: Progress, console: Console) -> None:
        self.progress = progress
        self.console = console
        self._shown = 0
        self.task = None
        self.depth = 0
        self.compiled = 0
        self.seconds = 0.0
        self._since = 0.0
        self._listener = None

    def install(self) -> _CompileWatch:
        try:
            from numba.core import event
        except ImportError:  # no numba: nothing is ever compiled
            return self
        watch = self

        class Listener(event.Listener):
            def on_start(self, ev) -> None:
                watch._start()

            def on_end(self, ev) -> None:
                watch._end()

        self._listener = Listener()
        event.register("numba:compile", self._listener)
        return self

    def uninstall(self) -> None:
        if self._listener is not None:
            from numba.core import event
            event.unregister("numba:compile", self._listener)
            self._listener = None

    def _start(self) -> None:
        if self.depth == 0:
            self._since = time.perf_counter()
        self.depth += 1
        if self.task is None:
            self.task = self.progress.add_task(COMPILING, total=None, unit="kernels compiled")

    def _end(self) -> None:
        self.depth = max(0, self.depth - 1)
        self.compiled += 1
        if self.depth == 0:
            self.seconds += time.perf_counter() - self._since
        if self.task is not None:
            self.progress.update(self.task, completed=self.compiled)

    def hide(self) -> None:
        """Remove the row (the phase's own counts have arrived, or the phase ended)."""
        if self.task is not None and self.depth == 0:
            self.progress.remove_task(self.task)
            self.task = None
            self.console.print(f"[green]done[/] compiling the engine's kernels: {self.compiled - self._shown} in "
                               f"{_seconds(self.seconds)} (cached for later runs)", highlight=False)
            self._shown, self.seconds = self.compiled, 0.0


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

    def __init__(self, console: Optional[Console] = None, *, enabled: Optional[bool] = None,
                 compiles: bool = True) -> None:
        """``compiles=False``: a command that runs no engine kernel does not watch numba (and so
        does not import it just to listen)."""
        self.console = console or shared_console
        self.enabled = self.console.is_terminal if enabled is None else enabled
        self.compiles = compiles
        self._progress: Optional[Progress] = None
        self._compiles: _CompileWatch | None = None

    def __enter__(self) -> "Phases":
        if self.enabled:
            self._progress = Progress(
                SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(bar_width=16),
                _CountColumn(), _RateColumn(), TimeElapsedColumn(), _RemainingColumn(),
                console=self.console, transient=True, refresh_per_second=8)
            self._progress.start()
            if self.compiles:
                self._compiles = _CompileWatch(self._progress, self.console).install()
        return self

    def __exit__(self, *exc) -> None:
        if self._compiles is not None:
            self._compiles.uninstall()
            self._compiles.depth = 0
            self._compiles.hide()
            self._compiles = None
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
        compiles = self._compiles
        task = progress.add_task(label, total=total, unit=unit)

        def update(done: int, total: Optional[int] = None) -> None:
            if compiles is not None and done:
                compiles.hide()
            state["done"] = done
            if total is not None:
                state["total"] = total
            if state["total"] is not None and done >= state["total"]:  # the work after the last count
                progress.update(task, completed=done, total=state["total"],
                                description=f"{label} (counts complete; computing the figures)")
            elif total is not None:
                progress.update(task, completed=done, total=total)
            else:
                progress.update(task, completed=done)

        try:
            yield update
        finally:
            progress.remove_task(task)
            if compiles is not None:
                compiles.hide()
        elapsed = time.perf_counter() - started
        count = f": {state['done']:,} {unit}" if unit and state["done"] else ""
        self.console.print(f"[green]done[/] {label}{count} in {_seconds(elapsed)}", highlight=False)


@contextmanager
def no_phases() -> Iterator[Phases]:
    """A display that shows nothing (library use, tests)."""
    yield Phases(enabled=False)
