"""The ORL (AT&T) face database: ``att_faces/sN/M.pgm``, 40 subjects x 10 images, 92x112 grey.

Taken with consent at the Olivetti Research Laboratory, Cambridge, 1992-94.
"""

from __future__ import annotations

from pathlib import Path

from auditcore.errors import InputError


def list_images(root: str | Path) -> list[tuple[str, str]]:
    """(relative path ``sN/M.pgm``, subject ``sN``), in subject then image order."""
    root = Path(root)
    if not root.is_dir():
        raise InputError("ORL folder not found", root)
    found = [(p.relative_to(root).as_posix(), p.parent.name) for p in root.glob("s*/*.pgm")]
    return sorted(found, key=lambda r: (int(r[1][1:]), int(Path(r[0]).stem)))
