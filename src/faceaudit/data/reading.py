"""Reading a user's file so that whatever it holds ends in a result or one clear line.

A reader's message names the file and the problem on one line (:class:`auditcore.errors.InputError`);
what it quotes from the file, or from the library that failed to read it, goes through
:func:`shown` and :func:`reason`: one line, bounded, numbers as plain numbers.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from auditcore.errors import InputError

if TYPE_CHECKING:
    import pandas as pd


def shown(value, limit: int = 80) -> str:
    """``value`` (from a user's file) as a message quotes it: one line (line breaks and other control
    characters escaped, e.g. ``\\n``), at most ``limit`` characters, a NumPy number as a plain number."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, numbers.Integral)):
        value = float(value)
        text = f"{value:g}"
    else:
        text = str(value)
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def reason(exc: BaseException, limit: int = 200) -> str:
    """Why a library could not read a file, on one line: the first line of its message (its type
    when the message is empty)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return shown(lines[0], limit) if lines else exc.__class__.__name__


def check_unique_columns(frame: pd.DataFrame, columns, path) -> None:
    """InputError if one of ``columns`` names more than one column of ``frame``."""
    names = list(frame.columns)
    for col in columns:
        if names.count(col) > 1:
            raise InputError(f"column {col} appears {names.count(col)} times; give each column once", path)


def read_parquet(path: str | Path, what: str, columns: list | None = None) -> pd.DataFrame:
    """A Parquet file (or those of its ``columns``) as a DataFrame (``pandas.read_parquet``), or
    InputError ``cannot read <what>``: a damaged file, a column missing or named twice, text that
    is not UTF-8."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds for a damaged file
        raise InputError(f"cannot read {what} ({reason(exc)})", path) from None
    names = schema.names
    missing = [c for c in columns or () if c not in names]
    if missing:
        raise InputError(f"cannot read {what}: no column(s) {shown(', '.join(missing))}", path)
    for name in dict.fromkeys(columns or names):
        if names.count(name) > 1:
            raise InputError(f"cannot read {what}: column {shown(name)} appears {names.count(name)} times", path)
    import pandas as pd  # here, not at the top: reading results.json (report, explain) needs no pandas
    try:
        frame = pd.read_parquet(path, columns=columns)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"cannot read {what} ({reason(exc)})", path) from None
    for j in range(frame.shape[1]):
        array = frame.iloc[:, j].array
        if hasattr(array, "__arrow_array__"):  # text held by Arrow is checked only when read: check it now
            try:
                array.__arrow_array__().validate(full=True)
            except (pa.ArrowException, ValueError):
                raise InputError(f"cannot read {what}: column {shown(frame.columns[j])} holds text that is not "
                                 "UTF-8", path) from None
    binary = {f.name for f in schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)
              or pa.types.is_fixed_size_binary(f.type)}
    for j, name in enumerate(frame.columns):
        if name in binary:  # bytes are read as text where text is expected: they must be UTF-8
            for value in frame.iloc[:, j]:
                if isinstance(value, bytes):
                    try:
                        value.decode("utf-8")
                    except UnicodeDecodeError:
                        raise InputError(f"cannot read {what}: column {shown(name)} holds bytes that are not UTF-8 "
                                         "text", path) from None
    return frame
