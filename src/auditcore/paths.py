"""Files named inside an input file stay inside the folder the user chose.

A manifest (or any table a third party may hand over) names files by path: ``faceaudit query``
reads each named image and *sends it to a remote endpoint*, ``faceaudit embed`` reads and decodes
each one. A path in such a table is therefore a request to read a file on the user's machine; an
absolute path or one with ``..`` could make a user send ``~/.ssh/id_rsa`` to a service without
noticing. :func:`resolve_under` is the one check both auditors use: a path from a table is taken
relative to a root folder the user named (``--images-root``; without one, the table's own folder)
and must stay inside it, after symbolic links are resolved; the user may lift the rule explicitly
(``--allow-images-outside``).

It imports neither auditor.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["resolve_under"]


def resolve_under(root, relative, *, allow_outside: bool = False, what: str = "image", source=None,
                  root_name: str = "images folder", flag: str = "--allow-images-outside") -> Path:
    """The file a table names, as an absolute path with every symbolic link resolved.

    ``root``: the folder the user chose (``--images-root``, or the table's own folder when there is
    none). ``relative``: the path as the table gives it. The result is
    ``realpath(root / relative)``; it must be ``realpath(root)`` or inside it. Refused with one
    :class:`~auditcore.errors.InputError` line naming ``source`` (the table, e.g. the manifest):

    * an absolute path ("is an absolute path"), and
    * a path that leads outside the root, by ``..`` or through a symbolic link anywhere along it,
      to a file or a folder ("leads outside the images folder ROOT").

    ``allow_outside=True`` (the user passed ``flag``) lifts both refusals: an absolute path is then
    taken as it is and a relative one from ``root``; the result is still resolved.

    ``what`` names the file in the message (``"image of t0001"`` reads ``image of t0001 '../x.jpg'
    leads outside ...``); ``root_name`` names the root folder (``"images folder"``); ``flag`` is the
    option the message offers to lift the rule. Existence is not checked (that is the reader's
    error, with its own message), and nothing is read. The check is on the path at the time of the
    call: open the returned path, not the table's, so that what was checked is what is read.

    Usage (``faceaudit embed`` reads images the same way ``faceaudit query`` does)::

        root = Path(images_root) if images_root else manifest_path.parent
        path = resolve_under(root, row["image"], allow_outside=allow_images_outside,
                             what=f"image of {row['template_id']}", source=manifest_path)
        data = path.read_bytes()
    """
    from auditcore.errors import InputError

    text = str(relative)
    given = Path(text)
    lift = f"; pass {flag} to allow it" if flag else ""
    try:
        root_real = Path(os.path.realpath(root))
        target = Path(os.path.realpath(root_real / given))  # an absolute ``given`` replaces the root
    except (ValueError, OSError) as exc:  # a NUL byte, a loop of links
        raise InputError(f"{what} {text!r} is not a usable path ({exc})", source) from None
    if allow_outside:
        return target
    if given.is_absolute():
        raise InputError(f"{what} {text!r} is an absolute path: paths are taken from the {root_name} {root} "
                         f"and must stay inside it{lift}", source)
    if target != root_real and root_real not in target.parents:
        raise InputError(f"{what} {text!r} leads outside the {root_name} {root} ('..' and symbolic links "
                         f"resolved){lift}", source)
    return target
