"""Output folders: written atomically, and only ever replacing a folder faceaudit wrote itself.

The rule (stated in the README):

* Everything is written into a temporary folder beside the target (``.NAME.tmp-XXXX``), which is
  renamed into place only when complete: a failed or interrupted run leaves no half-written
  folder.
* A finished folder carries a marker file, :data:`MARKER`, listing the files faceaudit wrote.
  An existing target is replaced only if it carries that marker *and* holds nothing beyond what
  the marker lists (with ``overwrite=True``). An empty folder may be written into. Anything
  else (a non-empty folder faceaudit did not write, a folder to which the user added files, a
  file) is refused with one line, with or without ``overwrite``.
* Temporary folders carry their own marker (:data:`TMP_MARKER`, with the writing process's
  id); a stale one left by a killed run (its process no longer alive) is removed on the next
  run into the same place. Nothing else is ever deleted.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from auditcore.errors import InputError

MARKER = ".faceaudit-output.json"
TMP_MARKER = ".faceaudit-tmp"


def _os_problem(exc: OSError) -> str:
    reason = exc.strerror or exc.__class__.__name__
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write here ({reason})"
    if exc.errno == errno.ENOTDIR:
        return "cannot write here (a part of the path is a file, not a folder)"
    if exc.errno == errno.ENOSPC:
        return "cannot write here (no space left on the device)"
    return f"cannot write here ({reason})"


def written_by_faceaudit(folder: str | Path) -> bool:
    """True if ``folder`` carries faceaudit's output marker."""
    return (Path(folder) / MARKER).is_file()


def _unexpected_entries(folder: Path) -> list[str]:
    """Entries of ``folder`` that its marker does not list (everything if the marker is unreadable)."""
    try:
        listed = set(json.loads((folder / MARKER).read_text()).get("files", []))
    except (OSError, ValueError, AttributeError):
        listed = set()
    return sorted(p.name for p in folder.iterdir() if p.name != MARKER and p.name not in listed)


def check_target(out: str | Path, *, overwrite: bool, program: str = "faceaudit") -> None:
    """Raise :class:`InputError` unless ``out`` may be written (see the module rule).

    Called before any long work, so that a refused folder costs the user nothing. ``program``
    names the auditor in the messages (both auditors share the marker: each replaces a folder
    either of them wrote).
    """
    out = Path(out)
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise InputError("output path exists and is not a folder; choose another --out", out)
    parent = out.parent
    probe = parent
    while not probe.exists():  # the first existing ancestor must be a writable folder
        probe = probe.parent
    if not probe.is_dir():
        raise InputError("cannot write here (a part of the path is a file, not a folder)", out)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError("cannot write here (permission denied)", out)
    if not out.exists():
        return
    try:
        entries = [p for p in out.iterdir()]
    except OSError as exc:
        raise InputError(_os_problem(exc), out) from None
    if not entries:
        return
    if not written_by_faceaudit(out):
        raise InputError(f"folder exists, is not empty and was not written by {program}; {program} "
                         "never replaces it (choose a new or empty folder)", out)
    extra = _unexpected_entries(out)
    if extra:
        raise InputError(f"folder was written by {program} but now also holds {', '.join(extra[:3])}"
                         f"{' ...' if len(extra) > 3 else ''}; {program} will not replace it "
                         "(move those files, or choose another folder)", out)
    if not overwrite:
        raise InputError(f"folder exists and is not empty; it was written by {program} (use --overwrite to replace it)",
                         out)
    if not os.access(out, os.W_OK | os.X_OK) or not os.access(parent, os.W_OK | os.X_OK):
        raise InputError("cannot replace this folder (permission denied)", out)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _dead_writer(folder: Path) -> bool:
    """True if ``folder`` carries the temporary marker of a process that is gone."""
    marker = folder / TMP_MARKER
    if not folder.is_dir() or folder.is_symlink() or not marker.is_file():
        return False
    try:
        pid = int(marker.read_text().strip() or 0)
    except (OSError, ValueError):
        return False
    return not (pid and _pid_alive(pid) and pid != os.getpid())


def remove_stale_temporaries(out: str | Path) -> list[Path]:
    """Clean up after earlier, killed runs into ``out``; return the folders removed.

    * A temporary folder (``.NAME.tmp-XXXX``) whose process is gone is removed; so is the
      temporary marker left in ``out`` by a run killed just after renaming its folder into place.
    * A replacement interrupted by a kill leaves ``.NAME.old-XXXX`` holding the previous
      results (``x``). If ``out`` is missing, the kill came between the two renames: the previous
      results are put back as ``out`` (nothing is lost). If ``out`` is there, the replacement
      had finished and the previous results are removed, as the run would have done.

    Only folders carrying faceaudit's temporary marker of a dead process are touched, and in an
    old folder only previous results that carry the output marker."""
    out = Path(out)
    removed = []
    if not out.parent.is_dir():
        return removed
    for cand in out.parent.glob(f".{out.name}.tmp-*"):
        if _dead_writer(cand):
            shutil.rmtree(cand, ignore_errors=True)
            removed.append(cand)
    if written_by_faceaudit(out) and _dead_writer(out):
        (out / TMP_MARKER).unlink()  # killed just after its rename: the results are whole
    for cand in out.parent.glob(f".{out.name}.old-*"):
        if not _dead_writer(cand):
            continue
        previous = cand / "x"
        others = [p.name for p in cand.iterdir() if p.name not in ("x", TMP_MARKER)]
        if others or (previous.exists() and (previous.is_symlink() or not written_by_faceaudit(previous))):
            continue  # not the shape this module leaves: never delete what it did not write
        if previous.exists() and not os.path.lexists(out):
            os.replace(previous, out)  # the kill came between the two renames: restore
        else:
            shutil.rmtree(cand, ignore_errors=True)
            removed.append(cand)
            continue
        shutil.rmtree(cand, ignore_errors=True)
    return removed


@contextmanager
def atomic_folder(out: str | Path, *, overwrite: bool = False, kind: str = "results") -> Iterator[Path]:
    """Yield a temporary folder to write into; on success it replaces ``out`` atomically.

    Stale folders of killed runs are cleaned up first (:func:`remove_stale_temporaries`: an
    interrupted replacement is restored), then ``out`` is checked (:func:`check_target`). On any exception, ``KeyboardInterrupt``
    and SIGTERM (see :mod:`faceaudit.cli`) included, the temporary folder is removed and
    ``out`` is left as it was. OS errors (permissions, a full disk) become :class:`InputError`.
    """
    out = Path(out)
    program = "flagaudit" if kind.startswith("flagaudit") else "faceaudit"
    remove_stale_temporaries(out)
    check_target(out, overwrite=overwrite, program=program)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        (tmp / TMP_MARKER).write_text(str(os.getpid()))
    except OSError as exc:
        raise InputError(_os_problem(exc), out) from None
    try:
        yield tmp
        # the temporary marker stays until the results are in place: a kill at any point
        # leaves a folder the next run recognises as a dead run's (remove_stale_temporaries)
        files = sorted(p.name for p in tmp.iterdir() if p.name != TMP_MARKER)
        (tmp / MARKER).write_text(json.dumps({"written_by": "faceaudit", "kind": kind, "files": files}, indent=1))
        os.chmod(tmp, 0o755)
        if out.exists():
            check_target(out, overwrite=overwrite, program=program)  # nothing changed in it meanwhile
            if any(out.iterdir()):
                old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
                (old / TMP_MARKER).write_text(str(os.getpid()))  # a kill from here on is undone next time
                os.replace(out, old / "x")
                os.replace(tmp, out)
                shutil.rmtree(old, ignore_errors=True)
            else:
                out.rmdir()
                os.replace(tmp, out)
        else:
            os.replace(tmp, out)
        (out / TMP_MARKER).unlink()
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise InputError(_os_problem(exc), out) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_file_into(folder: str | Path, name: str, writer) -> Path:
    """Write (or rewrite) one file ``name`` inside an existing output folder, atomically.

    An existing file is replaced only if the folder carries faceaudit's marker (so a file of the
    user's is never overwritten); the marker then lists the file. ``writer(path)`` writes to a
    temporary path beside the target.
    """
    folder = Path(folder)
    target = folder / name
    marked = written_by_faceaudit(folder)
    if target.exists() and not marked:
        raise InputError(f"{name} exists in a folder faceaudit did not write; it will not be replaced", folder)
    tmp = folder / f".{name}.tmp-{os.getpid()}"
    try:
        writer(tmp)
        os.replace(tmp, target)
        if marked:
            info = json.loads((folder / MARKER).read_text())
            if name not in info.get("files", []):
                info["files"] = sorted([*info.get("files", []), name])
                marker_tmp = folder / f".{MARKER}.tmp-{os.getpid()}"
                marker_tmp.write_text(json.dumps(info, indent=1))
                os.replace(marker_tmp, folder / MARKER)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(_os_problem(exc), target) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def write_json_folder(out: str | Path, name: str, data: dict, *, kind: str, overwrite: bool = False,
                      summary: list | None = None, pages: tuple = ()) -> Path:
    """A small results folder, atomically (:func:`atomic_folder`): ``name`` (the JSON, ``data``
    as it is: already JSON-safe), ``summary.txt`` (one line each, when given) and each page of
    ``pages``, ``(file name, render(data) -> HTML text)``, written as UTF-8 from the JSON written beside it."""
    with atomic_folder(out, overwrite=overwrite, kind=kind) as tmp:
        with open(tmp / name, "w") as fh:
            json.dump(data, fh, indent=1, allow_nan=False)
        if summary is not None:
            (tmp / "summary.txt").write_text("\n".join(summary) + "\n")
        for page, render in pages:
            (tmp / page).write_text(render(data), encoding="utf-8")
    return Path(out)
