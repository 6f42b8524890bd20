"""The command-line guard both auditors share: one console, one-line errors, signals.

Every command of ``faceaudit`` and ``flagaudit`` runs inside :meth:`CommandLine.guarded`:

* bad input (an :class:`~auditcore.errors.InputError`) prints one line ``error: FILE: problem``
  on stderr and exits 2;
* an unexpected internal error prints one line saying it is a bug and where its full traceback
  was saved (``$<PROGRAM>_CACHE``, else ``~/.cache/<program>``, else the temporary folder), exit 1;
* Ctrl-C and SIGTERM stop the work (temporary files are removed by the writers' ``with``
  blocks), say so on one line, exit 130 or 143.

No traceback ever reaches the terminal. Progress and messages go to :data:`console` (stderr);
results go to stdout.
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import signal
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Callable

import typer
from rich.console import Console
from rich.markup import escape

from auditcore import run_then_exit
from auditcore.errors import InputError

console = Console(stderr=True)  # the one stderr console of either auditor: messages, progress, errors


def _click():
    """The click typer runs on: typer 0.17 and later carry their own copy (``typer._click``),
    whose exceptions are not ``click``'s."""
    from typer import core
    return getattr(core, "_click", None) or __import__("click")


class App(typer.Typer):
    """A typer app whose command-line mistakes read like every other error: one line.

    click prints a usage error as three lines (usage, a hint, a boxed message); here it is
    ``error: Invalid value for '--memory-mb': 0 is not in the range x>=1. (see 'faceaudit audit
    --help')``, exit 2. ``--help`` and a bare command (which shows the help) are unchanged.
    Only a real run goes through here (``app()``); test runners that invoke the click command
    directly see click's own output. ``styled``: as :class:`CommandLine`'s."""

    def __init__(self, *args, styled: bool = True, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.styled = styled

    def _error(self, message: str) -> None:
        red = "[bold red]error:[/]" if self.styled else "error:"
        console.print(f"{red} {escape(message) if self.styled else message}", highlight=False, soft_wrap=True,
                      markup=self.styled)

    def __call__(self, *args, **kwargs):
        click = _click()
        kwargs["standalone_mode"] = False
        try:
            outcome = super().__call__(*args, **kwargs)
        except click.exceptions.NoArgsIsHelpError as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.exceptions.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else self.info.name or ""
            hint = f" (see '{where} --help')" if where else ""
            self._error(f"{exc.format_message()}{hint}")
            sys.exit(exc.exit_code)
        except click.exceptions.ClickException as exc:
            self._error(exc.format_message())
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            raise KeyboardInterrupt from None
        sys.exit(outcome if isinstance(outcome, int) else 0)


class CommandLine:
    """The guard of one program (``faceaudit`` or ``flagaudit``).

    ``stop_note``: what a stopped run leaves behind, said after "interrupted; ";
    ``memory_hint``: what to do when memory runs out; ``styled``: ``error:`` in bold red in a
    terminal (faceaudit) or plain everywhere (flagaudit, whose lines are copied into reviews)."""

    def __init__(self, program: str, *, stop_note: str, memory_hint: str, styled: bool = True) -> None:
        self.program = program
        self.styled = styled
        self.stop_note = stop_note
        self.memory_hint = memory_hint
        self.console = console
        self._signal: int | None = None

    # ---------------------------------------------------------------- one-line outcomes
    def fail(self, message: str) -> None:
        """``error: <message>`` on stderr, exit status 2."""
        self.console.print(f"{self._red('error:')} {self._text(message)}", highlight=False, soft_wrap=True,
                           markup=self.styled)
        raise typer.Exit(code=2)

    def _red(self, text: str) -> str:
        return f"[bold red]{text}[/]" if self.styled else text

    def _text(self, text: str) -> str:
        """A message as printed: brackets in it (``[auth]``, a path) are text, never markup."""
        return escape(text) if self.styled else text

    def crash_file(self) -> Path:
        """Where an internal error's traceback goes: the cache folder, else the temp folder."""
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        name = f"{self.program}-crash-{stamp}-{os.getpid()}.txt"
        cache = os.environ.get(f"{self.program.upper()}_CACHE") or Path.home() / ".cache" / self.program
        for folder in (Path(cache), Path(tempfile.gettempdir())):
            try:
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / name
                path.write_text(traceback.format_exc())
                return path
            except OSError:
                continue
        return Path("(could not be saved)")

    def report_bug(self, exc: BaseException) -> None:
        """One line for an unexpected error; the traceback goes to a file, exit status 1."""
        path = self.crash_file()
        what = f"{exc.__class__.__name__}: {exc}".splitlines()[0][:300] if str(exc) else exc.__class__.__name__
        self.console.print(f"{self._red('internal error')} (a bug in {self.program}, not a problem with your input): "
                           f"{self._text(what)}. Full traceback saved to {path}; please include it in a bug report.",
                           highlight=False, soft_wrap=True, markup=self.styled)
        raise typer.Exit(code=1)

    def stopped(self) -> None:
        """Ctrl-C or SIGTERM: every temporary file is already gone; say so, exit 130 or 143."""
        terminated = self._signal == signal.SIGTERM
        self.console.print(f"{'terminated' if terminated else 'interrupted'}; {self.stop_note}", highlight=False,
                           markup=False)
        raise typer.Exit(code=143 if terminated else 130)

    # ---------------------------------------------------------------- wrapping commands
    def guarded(self, command: Callable) -> Callable:
        """Wrap a command: InputError -> one line, exit 2; any other error -> bug line, exit 1."""
        @functools.wraps(command)
        def run(*args, **kwargs):
            try:
                return command(*args, **kwargs)
            except InputError as exc:
                self.fail(str(exc))
            except KeyboardInterrupt:
                self.stopped()
            except (typer.Exit, typer.Abort, SystemExit):
                raise
            except MemoryError:
                self.fail(f"out of memory; {self.memory_hint}")
            except Exception as exc:  # noqa: BLE001 - the last line of defence
                self.report_bug(exc)
        return run

    def register(self, app: typer.Typer, commands: dict[str, Callable]) -> None:
        """Register each ``name: function`` on ``app`` as a guarded command."""
        for name, fn in commands.items():
            app.command(name)(self.guarded(fn))

    def _on_signal(self, signum, frame) -> None:  # noqa: ARG002
        self._signal = signum
        raise KeyboardInterrupt

    def main(self, app: typer.Typer, *, run: Callable[[Callable[[], object]], None] = run_then_exit) -> None:
        """Console entry point: SIGTERM like Ctrl-C, and no traceback ever reaches the user
        (errors raised while typer parses, outside any command, are guarded here too).
        ``run``: what runs the app and ends the process (:func:`auditcore.run_then_exit`)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            run(app)
        except typer.Exit as stop:
            sys.exit(stop.exit_code)
        except KeyboardInterrupt:
            self._exit(self.stopped)
        except InputError as exc:
            self._exit(self.fail, str(exc))
        except Exception as exc:  # noqa: BLE001
            self._exit(self.report_bug, exc)

    @staticmethod
    def _exit(outcome: Callable, *args) -> None:
        try:
            outcome(*args)
        except typer.Exit as stop:
            sys.exit(stop.exit_code)
