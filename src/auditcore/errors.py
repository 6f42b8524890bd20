"""Errors that faceaudit reports to the user as one clear line."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input: names the file (when there is one) and the problem, in one line.

    The CLI prints ``str(error)`` and exits with status 2; library callers can catch it.
    """

    def __init__(self, problem: str, path: str | Path | None = None) -> None:
        self.problem = problem
        self.path = None if path is None else str(path)
        message = problem if path is None else f"{path}: {problem}"
        super().__init__(message)
