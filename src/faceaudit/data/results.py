"""Reading a results folder that an audit wrote (the input of ``explain``, ``compare`` and ``report``)."""

from __future__ import annotations

import json
from pathlib import Path

from auditcore.errors import InputError
from faceaudit.data.reading import reason


def load_results(results_dir: str | Path) -> dict:
    """Read and check ``results.json`` from a results folder (InputError if it is not one)."""
    folder = Path(results_dir)
    if not folder.is_dir():
        raise InputError("results folder not found" if not folder.exists() else
                         "expected a results folder written by faceaudit, got a file", folder)
    path = folder / "results.json"
    if not path.exists():
        raise InputError("no results.json here; is this a faceaudit results folder?", folder)
    try:
        with open(path, encoding="utf-8") as fh:
            results = json.load(fh)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc.__class__.__name__}: {reason(exc)}); is this a faceaudit results.json?",
                         path) from None
    except RecursionError:
        raise InputError("not valid JSON (nested too deeply); is this a faceaudit results.json?", path) from None
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror or reason(exc)})", path) from None
    if not isinstance(results, dict) or "faceaudit_version" not in results or "identification" not in results:
        raise InputError("not a faceaudit results.json (no faceaudit_version / identification entries)", path)
    return results
