"""The ``faceaudit`` command line: a thin layer over the library API.

One module per command group, each command parses its options, makes one library call and
prints; this module builds the app from them, in one place, and every command runs inside the
guard both auditors share (:class:`auditcore.cli.CommandLine`: one-line errors, exit 2 for bad
input, 1 for a bug with its traceback saved to a file, 130/143 for Ctrl-C/SIGTERM).

* :mod:`~faceaudit.cli.audit`: ``demo``, ``audit``, ``explain``, ``report``;
* :mod:`~faceaudit.cli.embed`: ``embed``;
* :mod:`~faceaudit.cli.blackbox`: ``import-lists``, ``audit-lists``, ``query``;
* :mod:`~faceaudit.cli.compare`: ``compare``;
* :mod:`~faceaudit.cli.quality`: ``quality``;
* :mod:`~faceaudit.cli.verify`: ``verify``;
* :mod:`~faceaudit.cli.claim`: ``claim``;
* :mod:`~faceaudit.cli.benchmark`: ``benchmark lfw``, ``benchmark blufr``;
* :mod:`~faceaudit.cli.progress`: the progress display (stderr, only in a terminal).

May import anything in faceaudit; nothing imports it.
"""

from __future__ import annotations

import typer

from auditcore import run_then_exit
from auditcore.cli import App, CommandLine
from faceaudit.cli import (
    audit,
    benchmark,
    blackbox,
    claim,
    compare,
    embed,
    quality,
    verify,
)

guard = CommandLine("faceaudit", memory_hint="lower --memory-mb or use a smaller evaluation set",
                    stop_note="nothing was written (no results folder, no temporary files; a query's journal "
                              "is kept so that the same command resumes)")

app = App(add_completion=False, no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
          help="Audit face identification (1:N search) systems: FPIR, FNIR, CMC, DET, with intervals.")
guard.register(app, {
    "demo": audit.demo,
    "audit": audit.audit,
    "embed": embed.embed,
    "explain": audit.explain,
    "report": audit.report,
    "import-lists": blackbox.import_lists,
    "audit-lists": blackbox.audit_lists,
    "query": blackbox.query,
    "compare": compare.compare,
    "verify": verify.verify,
    "claim": claim.claim,
    "quality": quality.quality,
})

benchmark_app = typer.Typer(no_args_is_help=True, help=(
    "Published benchmarks (LFW View 2, BLUFR) on any system's templates whose template_id is an LFW "
    "image name (Name/Name_NNNN.jpg)."))
guard.register(benchmark_app, {"lfw": benchmark.lfw, "blufr": benchmark.blufr})
app.add_typer(benchmark_app, name="benchmark")


def main() -> None:
    """Console entry point (``faceaudit``): the guarded app, ended through :func:`run_then_exit`."""
    guard.main(app, run=run_then_exit)
