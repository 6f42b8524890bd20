"""Loaders for public evaluation data (read by path, never copied): LFW, BLUFR, ORL."""

from __future__ import annotations

import os
from pathlib import Path


def shared_data_dir() -> Path | None:
    """``$FACEAUDIT_DATA``, else ``../shared/data`` beside the repository; None if absent."""
    env = os.environ.get("FACEAUDIT_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[5] / "shared" / "data"
    return path if path.is_dir() else None
