"""``faceaudit verify DIR``: re-check a results folder.

1. every input recorded in ``results.json["provenance"]["inputs"]`` is found and has the recorded
   sha256 (a changed or missing file is named with its role and path);
2. the recorded command (``demo``, ``audit`` or ``audit-lists``) is re-run from the recorded
   options (``provenance.options``, every option's value, defaults included) into a temporary
   folder, in the recorded working folder when it still exists (else with each input's recorded
   absolute path); ``DIR`` is only read;
3. every figure of the new results.json is compared with the recorded one, exactly (floats bit
   for bit), and so are searches.parquet, candidates.parquet, lists.parquet (cell by cell) and
   scores.npz (array by array); each difference is printed with its JSON path (or file and
   column), and what differs between the two runs
   (an input's hash, a package's version, the BLAS library or kernel, Python, the platform) is
   named as the likely reason.

Exit status: 0 when every figure is identical and every input as recorded, 1 when something
differs, 2 on bad input (not a results folder, no provenance, a command verify cannot re-run).
The generic part (hashes, the diff, the reasons) is :mod:`auditcore.verify`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from auditcore.cli import console
from auditcore.errors import InputError

RERUNNABLE = ("demo", "audit", "audit-lists")


def _resolved_options(provenance: dict) -> dict:
    """The recorded options with every input path replaced by its recorded absolute path, so
    that the re-run reads the same files from any working folder."""
    options = dict(provenance.get("options") or {})
    by_path = {}
    for record in provenance.get("inputs") or []:
        if record.get("path") is not None and record.get("resolved"):
            by_path[str(record["path"])] = record["resolved"]
    for name, value in options.items():
        if isinstance(value, str) and value in by_path:
            options[name] = by_path[value]
    return options


def _as_paths(options: dict, names: tuple[str, ...]) -> dict:
    return {**options, **{n: Path(options[n]) for n in names if options.get(n) is not None}}


def rerun(provenance: dict, tmp: Path) -> dict:
    """Re-run the recorded command into ``tmp`` and return the new results dict (read back from
    the results.json it wrote, so that both sides went through the same JSON writer)."""
    command = provenance.get("command") or []
    if len(command) < 2 or command[1] not in RERUNNABLE:
        what = " ".join(command[:2]) if command else "a library call (no command recorded)"
        raise InputError(f"verify re-runs `faceaudit demo`, `audit` or `audit-lists`; this folder was written by {what}")
    name = command[1]
    cwd = provenance.get("working_directory")
    here = Path(cwd) if cwd and Path(cwd).is_dir() else None
    options = dict(provenance.get("options") or {}) if here is not None else _resolved_options(provenance)
    options.pop("score_reason", None)
    out = tmp / "results"
    options["out"] = out
    options["overwrite"] = False
    missing = [k for k in _expected(name) if k not in options]
    if missing:
        raise InputError(f"the recorded options lack {', '.join(missing)} (written by another faceaudit version?); "
                         "re-run the recorded command by hand: " + str(provenance.get("command_line")))
    unknown = [k for k in options if k not in _expected(name)]
    for key in unknown:
        options.pop(key)
    argv = list(command)  # the re-run records the command it re-ran
    with _working_directory(here):
        _run(name, options, argv)
    return json.loads((out / "results.json").read_text(encoding="utf-8"))


@contextmanager
def _working_directory(folder: Path | None) -> Iterator[None]:
    """Run in the recorded working folder when it still exists (relative paths in the recorded
    options then name the same files, and results.json's ``input.source`` reads the same);
    elsewhere the recorded options use each input's absolute path."""
    if folder is None:
        yield
        return
    before = os.getcwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def _run(name: str, options: dict, argv: list[str]) -> None:
    if name == "demo":
        from faceaudit.cli.audit import run_demo_command
        run_demo_command(options, argv)
    elif name == "audit":
        from faceaudit.cli.audit import run_audit_command
        run_audit_command(_as_paths(options, ("templates", "manifest", "evalset", "protocol", "failures",
                                              "distractors")), argv)
    else:
        from faceaudit.cli.blackbox import run_audit_lists_command
        run_audit_lists_command(_as_paths(options, ("lists", "manifest", "protocol")), argv)


DATA_FILES = ("searches.parquet", "candidates.parquet", "lists.parquet", "scores.npz")


def compare_files(folder: Path, tmp: Path) -> list[str]:
    """The data files beside results.json (per-search and candidate tables, the imported lists,
    the exact scores), recorded against re-run, by content: a table cell by cell (NaN equal to
    NaN), an array member by member with its dtype. One line per file that differs."""
    import numpy as np
    import pandas as pd
    new_dir = tmp / "results"
    out = []
    for name in DATA_FILES:
        old, new = Path(folder) / name, new_dir / name
        if not old.exists() and not new.exists():
            continue
        if old.exists() != new.exists():
            out.append(f"{name}: {'present' if old.exists() else 'absent'} -> {'present' if new.exists() else 'absent'}")
            continue
        if name.endswith(".parquet"):
            try:
                a, b = pd.read_parquet(old), pd.read_parquet(new)
            except (OSError, ValueError) as exc:
                out.append(f"{name}: cannot be read ({exc.__class__.__name__})")
                continue
            if list(a.columns) != list(b.columns) or a.shape != b.shape:
                out.append(f"{name}: {a.shape[0]:,} rows x {a.shape[1]} columns -> {b.shape[0]:,} x {b.shape[1]}")
            elif not a.equals(b):
                cols = [c for c in a.columns if not a[c].equals(b[c])]
                out.append(f"{name}: values differ in column(s) {', '.join(map(str, cols))}")
            continue
        with np.load(old, allow_pickle=False) as a, np.load(new, allow_pickle=False) as b:
            for member in sorted(set(a.files) | set(b.files)):
                if member not in a.files or member not in b.files:
                    out.append(f"{name}[{member}]: only in the {'re-run' if member in b.files else 'recorded'} folder")
                    continue
                x, y = a[member], b[member]
                same = x.dtype == y.dtype and x.shape == y.shape and np.array_equal(
                    x, y, equal_nan=x.dtype.kind in "fc")
                if not same:
                    out.append(f"{name}[{member}]: differs ({x.dtype}{list(x.shape)} -> {y.dtype}{list(y.shape)})")
    return out


def _expected(name: str) -> list[str]:
    """The options the command takes now (its function's parameters)."""
    import inspect

    from faceaudit.cli import audit as audit_cli
    from faceaudit.cli import blackbox as blackbox_cli
    fn = {"demo": audit_cli.demo, "audit": audit_cli.audit, "audit-lists": blackbox_cli.audit_lists}[name]
    return list(inspect.signature(fn).parameters)


def verify(results_dir: Path = typer.Argument(..., help="A results folder written by faceaudit demo, audit or audit-lists."),
           limit: int = typer.Option(200, min=1, help="Print at most this many differing figures.")) -> None:
    """Re-check a results folder: its inputs' hashes, then re-run its command and compare every figure."""
    from auditcore.verify import check_program, load_results_json, verify_folder
    results = load_results_json(results_dir)
    check_program(results, "faceaudit", results_dir)  # before "re-running" is printed
    provenance = results.get("provenance")
    if not isinstance(provenance, dict):
        raise InputError("results.json records no provenance (written by an older version): nothing to re-run",
                         Path(results_dir) / "results.json")
    if provenance.get("command_line"):
        console.print(f"re-running: {provenance['command_line']}", highlight=False, soft_wrap=True, markup=False)
    found = verify_folder(results_dir, rerun, limit=limit, compare_files=compare_files, program="faceaudit")
    for line in found.lines():
        print(line)
    if found.identical:
        print(f"verified: {results_dir} is reproduced exactly")
        raise typer.Exit(code=0)
    print(f"not verified: {results_dir} is not reproduced exactly (see above)")
    raise typer.Exit(code=1)
