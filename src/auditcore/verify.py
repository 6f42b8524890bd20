"""Re-checking a results folder: its inputs against their recorded hashes, and its figures
against a fresh run of the recorded command.

Generic over both auditors: the auditor passes a callable that re-runs its audit from the
recorded provenance into a folder it is given, and :func:`verify_folder` does the rest (a
temporary folder, never the folder being checked; the comparison; the reasons).

* :func:`check_inputs`: each recorded input that is missing or whose sha256 differs, named by
  role and path;
* :func:`diff_results`: every figure that differs between two results dicts, named by its JSON
  path (``identification.operating_points[0].fpir.errors``), old value against new. Exact: two
  floats are equal only when they are the same float (no tolerance; a results.json is meant to be
  byte-identical on any machine), an int is not a float, and a key present on one side only is a
  difference;
* :func:`explain_difference`: in plain words, what differs between two provenance blocks that
  could explain a difference in figures (another package version, another BLAS library or
  kernel, another Python or platform, a changed input, other options).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditcore.errors import InputError
from auditcore.provenance import environment, sha256_file, sha256_folder

IGNORED = ("created", "provenance")  # keys that legitimately differ between two runs of one audit


def _where(record: dict) -> Path:
    """The file a recorded input refers to: its resolved path if it still exists, else its path
    as given (relative to the current folder)."""
    resolved = record.get("resolved")
    if resolved and Path(resolved).exists():
        return Path(resolved)
    return Path(record.get("path") or resolved or "")


def check_inputs(provenance: dict) -> list[str]:
    """One sentence per recorded input that cannot be found or whose sha256 differs from the
    recorded one, naming its role and path; an empty list when every input is as recorded."""
    problems = []
    for record in (provenance or {}).get("inputs") or []:
        role, given = record.get("role", "input"), record.get("path")
        path = _where(record)
        expected = record.get("sha256")
        if not path.exists():
            problems.append(f"{role} {given}: not found (looked at {record.get('resolved') or given})")
            continue
        if expected is None:
            problems.append(f"{role} {given}: no hash was recorded (it did not exist when the audit ran)")
            continue
        actual = sha256_folder(path)[0] if path.is_dir() else sha256_file(path)
        if actual != expected:
            problems.append(f"{role} {given}: contents changed since the audit "
                            f"(sha256 {actual[:12]}..., recorded {expected[:12]}...)")
    return problems


def _path(parent: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    key = str(key)
    plain = key.replace("_", "").isalnum()
    if not parent:
        return key if plain else f"[{json.dumps(key)}]"
    return f"{parent}.{key}" if plain else f"{parent}[{json.dumps(key)}]"


def _show(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    text = json.dumps(value, sort_keys=True, allow_nan=True)
    return text if len(text) <= 80 else text[:77] + "..."


def _same(a: Any, b: Any) -> bool:
    """Exact equality of two JSON scalars: same type (bool, int, float, str, None) and value;
    NaN equals NaN (the same non-figure on both sides)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


def diff_results(old: dict, new: dict, ignore: Iterable[str] = IGNORED, limit: int | None = None) -> list[str]:
    """Every figure that differs between two results dicts: ``"<json path>: <old> -> <new>"``,
    one line each, in the order of ``old`` (then keys only in ``new``). Top-level keys in
    ``ignore`` are skipped. ``limit`` stops after that many lines (the last line then says how
    many more were not compared). An empty list means identical."""
    ignore = set(ignore)
    out: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in a:
                if not path and key in ignore:
                    continue
                if key not in b:
                    out.append(f"{_path(path, key)}: {_show(a[key])} -> (missing)")
                else:
                    walk(a[key], b[key], _path(path, key))
            for key in b:
                if key not in a and not (not path and key in ignore):
                    out.append(f"{_path(path, key)}: (missing) -> {_show(b[key])}")
            return
        if isinstance(a, list) and isinstance(b, list):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, _path(path, i))
            if len(a) != len(b):
                out.append(f"{path or '$'}: {len(a)} entries -> {len(b)} entries")
            return
        if isinstance(a, (dict, list)) or isinstance(b, (dict, list)) or not _same(a, b):
            out.append(f"{path or '$'}: {_show(a)} -> {_show(b)}")

    walk(old, new, "")
    if limit is not None and len(out) > limit:
        more = len(out) - limit
        out = out[:limit] + [f"... and {more:,} more"]
    return out


def explain_difference(old: dict | None, new: dict | None,
                       ignore_options: Iterable[str] = ("out", "overwrite")) -> list[str]:
    """What differs between two provenance blocks (the recorded run's, the re-run's) that could
    change a figure, one plain sentence each: a package's version, the BLAS library, version or
    kernel (OpenBLAS picks its kernels by CPU, which can change the last digit of a float sum),
    OPENBLAS_CORETYPE, Python, platform or machine, a changed input (by hash), an option (except
    ``ignore_options``: where a re-run writes differs by design). Empty when nothing recorded
    differs."""
    old, new = old or {}, new or {}
    reasons: list[str] = []
    env_a, env_b = old.get("environment") or {}, new.get("environment") or {}
    pk_a, pk_b = env_a.get("packages") or {}, env_b.get("packages") or {}
    for name in sorted(set(pk_a) | set(pk_b)):
        a, b = pk_a.get(name), pk_b.get(name)
        if a != b:
            reasons.append(f"another version of {name}: {a or 'not installed'} when recorded, "
                           f"{b or 'not installed'} now")
    blas_a, blas_b = env_a.get("blas") or {}, env_b.get("blas") or {}
    for key, word in (("library", "BLAS library"), ("version", "BLAS version"), ("kernel", "BLAS kernel"),
                      ("OPENBLAS_CORETYPE", "OPENBLAS_CORETYPE")):
        if blas_a.get(key) != blas_b.get(key):
            reasons.append(f"another {word}: {blas_a.get(key)} when recorded, {blas_b.get(key)} now")
    for key, word in (("python", "Python"), ("platform", "platform"), ("machine", "machine")):
        if env_a.get(key) != env_b.get(key):
            reasons.append(f"another {word}: {env_a.get(key)} when recorded, {env_b.get(key)} now")
    by_role_b = {(r.get("role"), r.get("path")): r for r in new.get("inputs") or []}
    for record in old.get("inputs") or []:
        other = by_role_b.get((record.get("role"), record.get("path")))
        if other is not None and other.get("sha256") != record.get("sha256"):
            reasons.append(f"a changed input: {record.get('role')} {record.get('path')} "
                           f"(sha256 {str(record.get('sha256'))[:12]}... when recorded, "
                           f"{str(other.get('sha256'))[:12]}... now)")
    opt_a, opt_b = old.get("options") or {}, new.get("options") or {}
    for key in sorted(set(opt_a) | set(opt_b)):
        if key in ignore_options:
            continue
        if key in opt_a and key in opt_b and opt_a[key] != opt_b[key]:
            reasons.append(f"another value of the option {key}: {_show(opt_a[key])} when recorded, "
                           f"{_show(opt_b[key])} now")
    return reasons


@dataclass
class Verification:
    """What :func:`verify_folder` found. ``identical`` when every figure is the same;
    ``input_problems`` (missing or changed inputs), ``differences`` (JSON path: old -> new) and
    ``reasons`` (plain words, from the two provenance blocks) otherwise."""

    folder: Path
    input_problems: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    rerun: bool = False

    @property
    def identical(self) -> bool:
        return self.rerun and not self.differences and not self.input_problems

    def lines(self) -> list[str]:
        """The verdict in lines for a terminal."""
        out = []
        if self.input_problems:
            out.append("inputs that differ from the recorded ones:")
            out += [f"  {p}" for p in self.input_problems]
        else:
            out.append("inputs: every recorded input found with the recorded sha256")
        if not self.rerun:
            out.append("not re-run: the inputs the audit needs are missing")
        elif self.differences:
            out.append(f"figures that differ ({len(self.differences):,}), recorded -> re-run:")
            out += [f"  {d}" for d in self.differences]
        else:
            out.append("figures: every figure identical on re-running the recorded command")
        if self.reasons and (self.differences or self.input_problems):
            out.append("what differs between the recorded run and this one:")
            out += [f"  {r}" for r in self.reasons]
        elif self.differences:
            out.append("nothing recorded differs (inputs, options, versions, BLAS): the difference is "
                       "unexplained (another CPU with the same kernel name, or a results.json edited by hand)")
        return out


def load_results_json(folder: str | Path) -> dict:
    """results.json of a folder, or a one-line InputError."""
    path = Path(folder) / "results.json"
    if not Path(folder).is_dir():
        raise InputError("not a folder", folder)
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no results.json here: not a results folder", folder) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read results.json ({exc})", path) from None
    if not isinstance(results, dict):
        raise InputError("results.json is not a JSON object", path)
    return results


def check_program(results: dict, program: str, folder: str | Path) -> None:
    """One line unless ``results`` was written by ``program`` (its ``<program>_version`` key),
    naming the program that did write it."""
    if f"{program}_version" not in results:
        other = next((k[: -len("_version")] for k in ("faceaudit_version", "flagaudit_version") if k in results), None)
        raise InputError(f"not a {program} results folder" + (f": {other} wrote it (use '{other} verify')" if other else ""),
                         Path(folder) / "results.json")


def verify_folder(folder: str | Path, rerun: Callable[[dict, Path], dict], *,
                  ignore: Iterable[str] = IGNORED, limit: int | None = 200,
                  compare_files: Callable[[Path, Path], list[str]] | None = None,
                  program: str | None = None) -> Verification:
    """Check a results folder: its recorded inputs (:func:`check_inputs`), then ``rerun(provenance,
    tmp)`` (the auditor's own: re-run the recorded audit writing into the empty temporary folder
    ``tmp``, and return the new results dict), then :func:`diff_results` and
    :func:`explain_difference`; ``compare_files(folder, tmp)``, when given, compares the other
    files of the two folders (tables, arrays) while ``tmp`` still exists and returns one line per
    difference. The folder checked is only read. A results.json without a
    provenance block (written before schema 2) is refused with one line, and so is one written by
    another program than ``program`` (no ``<program>_version`` key), naming the one that wrote it."""
    folder = Path(folder)
    results = load_results_json(folder)
    if program is not None:
        check_program(results, program, folder)
    provenance = results.get("provenance")
    if not isinstance(provenance, dict):
        raise InputError("results.json records no provenance (written by an older version): "
                         "nothing to re-run", folder / "results.json")
    found = Verification(folder=folder, input_problems=check_inputs(provenance))
    missing = [p for p in found.input_problems if ": not found" in p]
    if missing:
        found.reasons = ["an input file is missing, so the audit cannot be re-run"]
        return found
    with tempfile.TemporaryDirectory(prefix="verify-") as tmp:
        new = rerun(provenance, Path(tmp))
        files = compare_files(folder, Path(tmp)) if compare_files is not None else []
    found.rerun = True
    found.differences = diff_results(results, new, ignore=ignore, limit=limit) + files
    new_prov = new.get("provenance") if isinstance(new, dict) else None
    if new_prov is None:
        new_prov = {"environment": environment()}
    found.reasons = explain_difference(provenance, new_prov)
    return found
