"""Property-based fuzzing (hypothesis) of every parser of user files (issue #25).

The property, for each parser: whatever the file holds, the parser returns a valid result or raises
:class:`auditcore.errors.InputError` whose message is one non-empty line, with no empty field
(``file: : problem``) and numbers printed as plain numbers (never ``np.float64(nan)``); never any
other exception, never a hang (every parse is timed).

Inputs start from valid files and are mutated: columns dropped, renamed, duplicated or retyped;
cells set to NaN, inf, huge, negative, empty, non-UTF-8 or multi-line text; rows dropped or
duplicated; files truncated, prefixed with a BOM, emptied or replaced by random bytes; JSON lines
nested deeply; ``.npy`` files of objects (a pickle that must be refused without being unpickled),
of other dtypes and shapes, with damaged headers; corrupt Parquet and ``.npz``.

Runs are reproducible (``derandomize=True``) and bounded (``FUZZ_EXAMPLES`` examples per parser,
100 by default: 30-45 s for the file on two cores). To explore further, writing every failure found
to a file instead of stopping at the first (``FUZZ_MAX_SECONDS`` lowers the hang limit)::

    FUZZ_EXAMPLES=2000 FUZZ_COLLECT=/tmp/found.jsonl pytest tests/test_fuzz_parsers.py
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import time
import traceback
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import REPO, exact_evalset
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from auditcore.errors import InputError

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "100"))
COLLECT = os.environ.get("FUZZ_COLLECT")
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, print_blob=False,
                suppress_health_check=list(HealthCheck))
# where a failure is known and reported to the owner of the code, it is not shrunk (that takes a minute)
KNOWN = settings(FUZZ, phases=[Phase.explicit, Phase.reuse, Phase.generate])
MAX_SECONDS = float(os.environ.get("FUZZ_MAX_SECONDS", "10"))  # one parse of a small file: more is a hang


# ------------------------------------------------------------------------------------ the guard

_NUMPY_REPR = re.compile(r"\bnp\.[a-z_]+[0-9]*\(|\bnumpy\.(float|int|uint|bool|str)")
# ": :", "(have: )", "()" (not "f()" nor "shape ()")
_EMPTY_FIELD = re.compile(r"^\s*:|:\s+:\s|:\s*$|:\s*\)|(?<!shape )(?<!\w)\(\s*\)")


def message_problems(exc: InputError) -> list[str]:
    """What is wrong with an InputError's message (empty list: nothing)."""
    msg = str(exc)
    found = []
    if not msg.strip() or not str(exc.problem or "").strip():
        found.append("an empty message")
    if len(msg.splitlines()) > 1 or "\n" in msg or "\r" in msg:
        found.append("more than one line")
    if exc.path is not None and not exc.path.strip():
        found.append("an empty file name")
    if _EMPTY_FIELD.search(msg):
        found.append("an empty field")
    if _NUMPY_REPR.search(msg):
        found.append("a NumPy repr instead of a plain number")
    return found


def _shown(data) -> str:
    try:
        text = repr(data)
    except RecursionError:
        text = "(too deeply nested to show)"
    return text if len(text) <= 3000 else text[:3000] + "..."


def _record(what: str, kind: str, detail: str, data) -> None:
    with open(COLLECT, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"what": what, "kind": kind, "detail": detail[-1500:], "input": _shown(data)}) + "\n")


def parses(what: str, parse, *args, data=None, **kwargs):
    """``parse(*args, **kwargs)``: its result, or the InputError it raised (checked); the test fails,
    showing ``data`` (the file's content), on any other exception, a bad message or a hang."""
    start = time.perf_counter()
    try:
        out = parse(*args, **kwargs)
    except InputError as exc:
        bad = message_problems(exc)
        if bad:
            if COLLECT:
                _record(what, "message", f"{', '.join(bad)}: {str(exc)!r}", data)
            else:
                pytest.fail(f"{what}: InputError with {', '.join(bad)}: {str(exc)!r}\ninput: {_shown(data)}")
        out = exc
    except Exception as exc:  # noqa: BLE001 - what this test is about
        tb = traceback.format_exc()
        if COLLECT:
            _record(what, type(exc).__name__, tb, data)
            out = exc
        else:
            pytest.fail(f"{what}: {type(exc).__name__} instead of InputError: {exc}\n{tb}\ninput: {_shown(data)}")
    elapsed = time.perf_counter() - start
    if elapsed >= MAX_SECONDS:
        if COLLECT:
            _record(what, "slow", f"{elapsed:.1f} s", data)
        else:
            pytest.fail(f"{what}: took {elapsed:.1f} s (a hang)\ninput: {_shown(data)}")
    return out


def refused(out) -> bool:
    return isinstance(out, BaseException)


# ---------------------------------------------------------------------------- value generators

WEIRD_TEXT = ["", " ", "nan", "NaN", "NA", "null", "None", "inf", "-inf", "Infinity", "1e309", "-1e309", "-1", "0",
              "-0", "1.5", "2.0", "1e-320", "9" * 40, "-" + "9" * 40, "true", "False", "yes", '"', "'", ",", ";",
              "\t", "a\nb", "a\rb", "x\u2028y", "\x85", "é", "\u202e", "\x00", "#", "[1, 2]", "{}", '{"a": 1}',
              " padded ", "0x1F", "1_000", "∞", "gallery", "probe", "GALLERY ", "s1", "t0000", "p1", "g1", "0-1",
              "100-0", "1-1", "nan-nan", "x" * 300, "1" * 4400]  # (beyond Python's 4,300 digits for int())

weird_text = st.one_of(st.sampled_from(WEIRD_TEXT), st.text(max_size=12),
                       st.integers(-10**25, 10**25).map(str),
                       st.floats(allow_nan=True, allow_infinity=True).map(repr))


def _index(draw, n: int) -> int:
    return draw(st.integers(0, max(n - 1, 0)))


# -------------------------------------------------------------------------- text file mutations

TABLE_OPS = ("drop_col", "rename_col", "dup_col", "cell", "cell", "cell", "column_of", "drop_row", "dup_row",
             "short_row", "long_row", "no_rows", "swap_cols", "blank_line")


@st.composite
def mutated_table(draw, header: list, rows: list):
    """``header`` and ``rows`` (lists of text) after 0-4 structural mutations."""
    header, rows = list(header), [list(r) for r in rows]
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(TABLE_OPS))
        ncol = len(header)
        if op == "drop_col" and ncol:
            j = _index(draw, ncol)
            header.pop(j)
            for r in rows:
                if j < len(r):
                    r.pop(j)
        elif op == "rename_col" and ncol:
            header[_index(draw, ncol)] = draw(st.one_of(weird_text, st.sampled_from(header)))
        elif op == "dup_col" and ncol:
            j = _index(draw, ncol)
            header.append(header[j])
            for r in rows:
                r.append(r[j] if j < len(r) else "")
        elif op == "cell" and rows and ncol:
            r = rows[_index(draw, len(rows))]
            if r:
                r[_index(draw, len(r))] = draw(weird_text)
        elif op == "column_of" and rows and ncol:
            j, value = _index(draw, ncol), draw(weird_text)
            for r in rows:
                if j < len(r):
                    r[j] = value
        elif op == "drop_row" and rows:
            rows.pop(_index(draw, len(rows)))
        elif op == "dup_row" and rows:
            rows.insert(_index(draw, len(rows)), list(rows[_index(draw, len(rows))]))
        elif op == "short_row" and rows:
            r = rows[_index(draw, len(rows))]
            del r[_index(draw, len(r)):]
        elif op == "long_row" and rows:
            rows[_index(draw, len(rows))].extend(draw(st.lists(weird_text, min_size=1, max_size=3)))
        elif op == "no_rows":
            rows = []
        elif op == "swap_cols" and ncol > 1:
            i, j = _index(draw, ncol), _index(draw, ncol)
            header[i], header[j] = header[j], header[i]
        elif op == "blank_line" and rows:
            rows.insert(_index(draw, len(rows)), [])
    return header, rows


def csv_text(header: list, rows: list) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


BYTE_OPS = ("bom", "truncate", "insert_bad", "utf16", "empty", "garbage", "crlf", "nul", "latin1", "cut_line")


@st.composite
def mutated_bytes(draw, data: bytes, max_ops: int = 2):
    """``data`` after 0-``max_ops`` byte-level mutations (or, sometimes, replaced by random bytes)."""
    if draw(st.integers(0, 15)) == 0:
        return draw(st.binary(max_size=300))
    for _ in range(draw(st.integers(0, max_ops))):
        op = draw(st.sampled_from(BYTE_OPS))
        if op == "bom":
            data = b"\xef\xbb\xbf" + data
        elif op == "truncate":
            data = data[:_index(draw, len(data) + 1)]
        elif op == "insert_bad":
            i = _index(draw, len(data) + 1)
            data = data[:i] + draw(st.sampled_from([b"\xff", b"\xfe\xff", b"\xc3", b"\x80\x80", b"\xed\xa0\x80"])) + data[i:]
        elif op == "utf16":
            data = data.decode("utf-8", "replace").encode("utf-16")
        elif op == "empty":
            data = b""
        elif op == "garbage":
            data = data + draw(st.binary(min_size=1, max_size=40))
        elif op == "crlf":
            data = data.replace(b"\n", b"\r\n")
        elif op == "nul":
            i = _index(draw, len(data) + 1)
            data = data[:i] + b"\x00" + data[i:]
        elif op == "latin1":
            data = data.decode("utf-8", "replace").encode("latin-1", "replace") + "é".encode("latin-1")
        elif op == "cut_line":
            lines = data.split(b"\n")
            if len(lines) > 1:
                del lines[_index(draw, len(lines))]
            data = b"\n".join(lines)
    return data


@st.composite
def csv_file(draw, text: str):
    """A CSV file's bytes, mutated from the valid ``text``."""
    rows = list(csv.reader(io.StringIO(text)))
    header, body = draw(mutated_table(rows[0], rows[1:]))
    return draw(mutated_bytes(csv_text(header, body).encode("utf-8")))


@st.composite
def text_file(draw, text: str):
    """A line-oriented text file's bytes: lines dropped, duplicated, replaced; then bytes mutated."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(("drop", "dup", "replace", "insert", "edit")))
        if op == "drop" and lines:
            lines.pop(_index(draw, len(lines)))
        elif op == "dup" and lines:
            lines.insert(_index(draw, len(lines)), lines[_index(draw, len(lines))])
        elif op == "replace" and lines:
            lines[_index(draw, len(lines))] = draw(weird_text)
        elif op == "insert":
            lines.insert(_index(draw, len(lines) + 1), draw(weird_text))
        elif op == "edit" and lines:
            i = _index(draw, len(lines))
            words = lines[i].split(" ")
            words[_index(draw, len(words))] = draw(weird_text)
            lines[i] = " ".join(words)
    return draw(mutated_bytes(("\n".join(lines) + "\n").encode("utf-8")))


# ------------------------------------------------------------------------------- JSON mutations

def _json_paths(value, prefix=()):
    yield prefix
    if len(prefix) > 12:  # not into deeply nested values
        return
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _json_paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _json_paths(v, prefix + (i,))


def _deep(depth: int):
    out = 1
    for _ in range(depth):
        out = [out]
    return out


json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30),
                        st.sampled_from([10**400, -10**400, float("nan"), float("inf"), -float("inf"), 0, -1, 1e308]),
                        st.floats(allow_nan=True, allow_infinity=True), weird_text)
json_value = st.recursive(json_scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                               st.dictionaries(weird_text, inner, max_size=3)),
                          max_leaves=6)


@st.composite
def mutated_json(draw, value, min_ops: int = 0):
    """A JSON-ready value with 0-4 of its nodes replaced, deleted or nested deeply."""
    value = json.loads(json.dumps(value))
    deep = False
    for _ in range(draw(st.integers(min_ops, 4))):
        if deep:  # a deeply nested value is mutation enough (and cannot be copied)
            break
        paths = list(_json_paths(value))
        depth = draw(st.sampled_from(sorted({len(p) for p in paths})))  # every level as often as the others
        paths = [p for p in paths if len(p) == depth]
        path = paths[_index(draw, len(paths))]
        op = draw(st.sampled_from(("set", "set", "delete", "deep", "wrap")))
        deep = op == "deep"
        if not path:
            if op in ("set", "deep"):
                value = draw(json_value) if op == "set" else _deep(draw(st.sampled_from([50, 500])))
            continue
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        if op == "set":
            parent[key] = draw(json_value)
        elif op == "delete":
            del parent[key]
        elif op == "deep":
            parent[key] = _deep(draw(st.sampled_from([50, 500])))
        else:
            parent[key] = [parent[key]]
    return value


def json_dumps(value) -> str:
    try:
        return json.dumps(value, default=str)
    except (RecursionError, ValueError):
        return "[" * 5000 + "]" * 5000


@st.composite
def jsonl_file(draw, records: list):
    """JSON Lines bytes from ``records``: records mutated, lines dropped/duplicated, bytes mutated."""
    recs = draw(mutated_json(records))
    lines = [json_dumps(r) for r in recs] if isinstance(recs, list) else [json_dumps(recs)]
    if draw(st.booleans()):
        lines.insert(_index(draw, len(lines) + 1), draw(st.sampled_from(
            ["{", "[]", "null", "1", '"text"', "{}", "[" * 5000, '{"candidates": ' + "[" * 5000 + "]" * 5000 + "}",
             '{"search_id": "s", "list_length": ' + "1" * 4400 + "}"])))
    return draw(mutated_bytes(("\n".join(lines) + "\n").encode("utf-8")))


# ---------------------------------------------------------------------------- Parquet mutations

def _arrow_column(draw, n: int):
    """A column of ``n`` values of an arbitrary Arrow type (often not the one expected)."""
    kind = draw(st.sampled_from(("int", "float", "weird_float", "bool", "null", "list", "struct", "binary",
                                 "timestamp", "dict", "text", "huge", "decimal")))
    if kind == "int":
        return pa.array(draw(st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n)), pa.int64())
    if kind == "float":
        return pa.array(draw(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=n, max_size=n)),
                        pa.float64())
    if kind == "weird_float":
        value = draw(st.sampled_from([float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 1e308, 2.5]))
        return pa.array([value] * n, pa.float64())
    if kind == "bool":
        return pa.array(draw(st.lists(st.one_of(st.booleans(), st.none()), min_size=n, max_size=n)), pa.bool_())
    if kind == "null":
        return pa.nulls(n)
    if kind == "list":
        return pa.array([[1.0, float("nan")]] * n, pa.list_(pa.float64()))
    if kind == "struct":
        return pa.array([{"a": 1, "b": "x"}] * n)
    if kind == "binary":
        return pa.array([b"\xff\x00"] * n, pa.binary())
    if kind == "timestamp":
        return pa.array([0] * n, pa.timestamp("s"))
    if kind == "dict":
        return pa.array(["a", "b"] * n, pa.string()).slice(0, n).dictionary_encode()
    if kind == "huge":
        return pa.array([2**64 - 1] * n, pa.uint64())
    if kind == "decimal":
        import decimal
        return pa.array([decimal.Decimal("1.5")] * n, pa.decimal128(5, 2))
    return pa.array(draw(st.lists(st.one_of(weird_text, st.none()), min_size=n, max_size=n)), pa.string())


PARQUET_OPS = ("drop_col", "rename_col", "dup_col", "retype", "retype", "cell", "drop_row", "dup_row", "no_rows")


@st.composite
def parquet_file(draw, frame: pd.DataFrame):
    """Parquet bytes of ``frame`` after 0-3 column/row mutations, sometimes corrupted."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    names, cols = list(table.column_names), [c.combine_chunks() for c in table.columns]
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(PARQUET_OPS))
        n = len(cols[0]) if cols else 0
        if op == "drop_col" and cols:
            j = _index(draw, len(cols))
            del cols[j], names[j]
        elif op == "rename_col" and cols:
            names[_index(draw, len(cols))] = draw(st.one_of(weird_text, st.sampled_from(names)))
        elif op == "dup_col" and cols:
            j = _index(draw, len(cols))
            cols.append(cols[j])
            names.append(names[j])
        elif op == "retype" and cols:
            cols[_index(draw, len(cols))] = _arrow_column(draw, n)
        elif op == "cell" and cols and n:
            j, i = _index(draw, len(cols)), _index(draw, n)
            values = cols[j].to_pylist()
            values[i] = None
            try:
                cols[j] = pa.array(values, cols[j].type)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                pass
        elif op == "drop_row" and n:
            i = _index(draw, n)
            cols = [pa.concat_arrays([c.slice(0, i), c.slice(i + 1)]) for c in cols]
        elif op == "dup_row" and n:
            i = _index(draw, n)
            cols = [pa.concat_arrays([c, c.slice(i, 1)]) for c in cols]
        elif op == "no_rows":
            cols = [c.slice(0, 0) for c in cols]
    buf = io.BytesIO()
    if cols:
        table = pa.Table.from_arrays(cols, names=names)
    else:
        table = pa.table({})
    pq.write_table(table, buf)
    data = buf.getvalue()
    if draw(st.integers(0, 5)) == 0:
        op = draw(st.sampled_from(("truncate", "flip", "empty", "magic")))
        if op == "truncate":
            data = data[:_index(draw, len(data))]
        elif op == "flip":
            i = _index(draw, len(data))
            data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
        elif op == "empty":
            data = b""
        else:
            data = b"PAR1" + draw(st.binary(max_size=60)) + b"PAR1"
    return data


# ------------------------------------------------------------------------- .npy and .npz files

class Tripwire:
    """Unpickling this creates a file: a pickle disguised as .npy must be refused unread."""

    def __init__(self, path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _npy_bytes(array: np.ndarray, allow_pickle=False, fortran=False) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asfortranarray(array) if fortran else array, allow_pickle=allow_pickle)
    return buf.getvalue()


NPY_DTYPES = ("float64", "float16", "int32", "uint8", "bool", "complex64", "<U4", "S4", "datetime64[s]",
              "timedelta64[s]", "V8", "f4,f4", ">f4", "object")


@st.composite
def npy_array(draw, valid: np.ndarray, tripwire: Path):
    """An array mutated from ``valid`` (dtype, shape, values), as numpy.save would write it."""
    x = np.array(valid)
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(("dtype", "shape", "value", "value", "zero_row", "rows", "cols")))
        if op == "dtype":
            dtype = draw(st.sampled_from(NPY_DTYPES))
            if dtype == "object":
                x = np.array([[Tripwire(tripwire)] * x.shape[-1]] * max(x.shape[0], 1) if x.ndim == 2
                             else [Tripwire(tripwire)], dtype=object)
            elif dtype in ("V8", "f4,f4"):
                x = np.zeros(x.shape, dtype)
            elif x.dtype.kind in "biufcmMUS":
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    try:
                        x = x.astype(dtype)
                    except Exception:  # noqa: BLE001 - a cast NumPy refuses: keep the array
                        pass
        elif op == "shape":
            shape = draw(st.sampled_from(("1d", "3d", "T", "empty_rows", "empty_cols", "scalar")))
            x = {"1d": lambda: x.ravel(), "3d": lambda: x.reshape(1, *x.shape) if x.ndim else x,
                 "T": lambda: x.T, "empty_rows": lambda: x[:0] if x.ndim else x, "empty_cols": lambda: x[:, :0] if x.ndim == 2 else x,
                 "scalar": lambda: np.array(x.ravel()[0]) if x.size else np.array(1.0)}[shape]()
        elif op == "value" and x.size and x.dtype.kind == "f":
            flat = x.reshape(-1).copy()
            flat[_index(draw, flat.size)] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 1e38, -1e38, 0.0, 1e-45]))
            x = flat.reshape(x.shape)
        elif op == "zero_row" and x.ndim == 2 and x.shape[0] and x.dtype.kind in "biufc":
            x = x.copy()
            x[_index(draw, x.shape[0])] = 0
        elif op == "rows" and x.ndim >= 1 and x.shape[0]:
            x = x[:_index(draw, x.shape[0])] if draw(st.booleans()) else np.concatenate([x, x[:1]])
        elif op == "cols" and x.ndim == 2 and x.shape[1]:
            x = x[:, :_index(draw, x.shape[1])]
    return x


@st.composite
def npy_file(draw, valid: np.ndarray, tripwire: Path):
    """A .npy file's bytes: a mutated array, sometimes Fortran-ordered, a damaged header or data."""
    x = draw(npy_array(valid, tripwire))
    data = _npy_bytes(x, allow_pickle=x.dtype.hasobject, fortran=draw(st.integers(0, 5)) == 0)
    op = draw(st.sampled_from(("none", "none", "none", "truncate", "header", "magic", "version", "empty", "random",
                               "garbage")))
    if op == "truncate":
        data = data[:_index(draw, len(data))]
    elif op == "header":  # a byte of the header dict replaced
        i = draw(st.integers(10, 60))
        data = data[:i] + draw(st.sampled_from([b"'", b"{", b"}", b"(", b"\xff", b"x", b"9", b"-"])) + data[i + 1:]
    elif op == "magic":
        data = b"\x93NUMPX" + data[6:]
    elif op == "version":
        data = data[:6] + draw(st.sampled_from([b"\x02\x00", b"\x03\x00", b"\x09\x00", b"\x00\x00"])) + data[8:]
    elif op == "empty":
        data = b""
    elif op == "random":
        data = b"\x93NUMPY" + draw(st.binary(max_size=120))
    elif op == "garbage":
        data = data + draw(st.binary(min_size=1, max_size=40))
    return data


@st.composite
def npz_value(draw, valid: np.ndarray, tripwire: Path, key: str = ""):
    """An array for one key of scores.npz, mutated from the valid one. (Impostor counts of 10^9 per
    bin are left out: the tail fit then takes a minute, a known cost of faceaudit.metrics.tail.)"""
    op = draw(st.sampled_from(("object", "text", "float", "nan", "negative", "huge", "shape", "empty", "scalar",
                               "longer", "complex", "bool")))
    x = np.array(valid)
    if op == "object":
        return np.array([Tripwire(tripwire)] * max(x.size, 1), dtype=object)
    if op == "text":
        return np.array(["a"] * max(x.size, 1))
    if op == "float":
        return x.astype(float) + 0.5
    if op == "nan":
        return np.full(max(x.size, 1), draw(st.sampled_from([np.nan, np.inf, -np.inf])))
    if op == "negative":
        return -np.abs(x) - 1 if x.dtype.kind in "if" else x
    if op == "huge":
        values = [2**62, -2**62] if key == "impostor_count" else [2**62, 10**9, 2**31, -2**62]
        return np.full(max(x.size, 1), draw(st.sampled_from(values)), np.int64)
    if op == "shape":
        return x.reshape(1, -1) if x.ndim else x.reshape(1, 1)
    if op == "empty":
        return x.ravel()[:0]
    if op == "scalar":
        return np.array(x.ravel()[0] if x.size else 0)
    if op == "longer":
        return np.concatenate([x.ravel(), x.ravel()[:1]]) if x.size else np.zeros(3)
    if op == "complex":
        return x.astype(complex)
    return x.astype(bool)


@st.composite
def npz_file(draw, valid: dict, tripwire: Path):
    """scores.npz bytes: keys dropped, replaced (objects, text, NaN, out-of-range bins...), added; or a
    damaged archive."""
    arrays = dict(valid)
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(("drop", "replace", "replace", "replace", "junk")))
        key = draw(st.sampled_from(sorted(valid)))
        if op == "drop":
            arrays.pop(key, None)
        elif op == "replace":
            arrays[key] = draw(npz_value(valid[key], tripwire, key))
        else:
            arrays[draw(st.sampled_from(["junk", "x y", "é"]))] = draw(npz_value(valid[key], tripwire))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    data = buf.getvalue()
    op = draw(st.sampled_from(("none", "none", "none", "truncate", "flip", "empty", "random", "zip_of_text")))
    if op == "truncate":
        data = data[:_index(draw, len(data))]
    elif op == "flip":
        i = _index(draw, len(data))
        data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
    elif op == "empty":
        data = b""
    elif op == "random":
        data = draw(st.binary(max_size=200))
    elif op == "zip_of_text":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for key in arrays:
                z.writestr(f"{key}.npy", draw(st.sampled_from([b"", b"\x93NUMPY", b"not an array", b"\x93NUMPY\x01\x00"])))
        data = buf.getvalue()
    return data


# -------------------------------------------------------------------------------- valid inputs

_COUNTER = iter(range(10**9))


def fresh(root: Path, name: str, data: bytes | None = None) -> Path:
    """A new file (or folder, when ``data`` is None) for one example: never a file an earlier
    example's result may still map."""
    folder = root / f"x{next(_COUNTER)}"
    folder.mkdir(parents=True)
    path = folder / name
    if data is not None:
        path.write_bytes(data)
    return path


def copy_folder(root: Path, source: Path) -> Path:
    folder = fresh(root, source.name)
    shutil.copytree(source, folder)
    return folder


LIST_RECORDS = [
    {"search_id": "s1", "probe_id": "p1", "list_length": 3, "threshold": 0.5, "threshold_applied": True,
     "system": "sys", "system_version": "1.0", "score_scale": "0-1",
     "candidates": [{"rank": 1, "candidate_id": "g2", "score": 0.9, "decision": True},
                    {"rank": 2, "candidate_id": "g1", "score": 0.8, "decision": False}]},
    {"search_id": "s2", "probe_id": "p3", "list_length": 3, "threshold": 0.5, "threshold_applied": True,
     "system": "sys", "system_version": "1.0", "score_scale": "0-1", "candidates": []},
    {"search_id": "s3", "probe_id": "p4", "list_length": 3, "threshold": 0.5, "threshold_applied": True,
     "system": "sys", "system_version": "1.0", "score_scale": "0-1",
     "candidates": [{"rank": 1, "candidate_id": "g1b", "score": 0.6, "decision": False}]},
]
LIST_MANIFEST = pd.DataFrame({"template_id": ["g1", "g1b", "g2", "p1", "p3", "p4"],
                              "subject_id": ["A", "A", "B", "A", "C", "D"], "sex": ["F", "F", "M", "F", "M", "F"]})
LIST_PROTOCOL = pd.DataFrame({"template_id": ["g1", "g1b", "g2", "p1", "p3", "p4"],
                              "role": ["gallery", "gallery", "gallery", "probe", "probe", "probe"]})

REKOGNITION_BODY = {"FaceMatches": [{"Similarity": 99.5, "Face": {"FaceId": "f1", "ExternalImageId": "g1"}},
                                    {"Similarity": 91.0, "Face": {"FaceId": "f2", "ExternalImageId": "g2"}}],
                    "FaceModelVersion": "7.0"}
AZURE_BODY = [{"faceId": "x", "candidates": [{"personId": "P-B", "confidence": 0.7},
                                             {"personId": "P-A", "confidence": 0.6}]}]
NIST_BODY = {"candidates": [{"templateId": "g1", "score": 3.2, "isAssigned": True},
                            {"templateId": "", "score": 0, "isAssigned": False}]}
RESPONSES = [{"search_id": "s1", "probe_id": "p1", "request": {"maxNumOfCandidatesReturned": 2}, "response": AZURE_BODY},
             {"search_id": "s2", "probe_id": "p3", "request": {"maxNumOfCandidatesReturned": 2},
              "response": json.dumps([{"faceId": "y", "candidates": [{"personId": "P-A", "confidence": 0.65}]}])},
             {"search_id": "s3", "probe_id": "p4", "request": {"maxNumOfCandidatesReturned": 2},
              "response": [{"faceId": "z", "candidates": []}]}]
ID_MAP = "system_id,template_id\nP-A,g1\nP-B,g2\n"

KEYWORDS = ("# a keyword flagger\nthreshold: 2\nkill\ncut their throats\n[2] bomb\n[0.5] re:\\bdeport\\w*\n"
            "[1e-3] tiny # a comment\nre:\\d{3}-\\d{4}\n")
GRAPH = "# edges\nsource,target\na,b\nb c\nc,d\nd a\ne,a # comment\n"
HATECHECK = ("case_id,functionality,test_case,label_gold,target_ident,templ_id\n"
             "1,derog_neg_emote_h,I hate women.,hateful,women,1\n2,threat_dir_h,I will kill you Muslims.,hateful,Muslims,2\n"
             "3,ident_neutral_nh,We are a group of women.,non-hateful,women,3\n4,slur_h,You are a jew.,hateful,jewish people,\n")
PAIRS = "2\t2\nAbel\t1\t2\nAbel\t1\t3\nAbel\t1\tBob\t1\nCara\t2\tDan\t3\nBob\t1\t2\nBob\t2\t3\nAbel\t2\tDan\t1\nCara\t1\tBob\t2\n"


class World(dict):
    """The valid inputs (shown as ``world`` in a falsifying example, not in full)."""

    def __repr__(self) -> str:
        return "world"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Valid files of every kind, written once; each test mutates them."""
    from faceaudit.audit import run_audit, write_results
    from faceaudit.blackbox.audit import audit_lists, write_blackbox_results
    from faceaudit.data.candidates import records_to_lists, write_lists
    from faceaudit.data.protocol import generate_protocol
    root = tmp_path_factory.mktemp("fuzz")
    w = World(root=root, tripwire=root / "UNPICKLED")
    es = exact_evalset(n_subjects=8, per_subject=3, dim=8, duplicates=0)
    manifest = es.manifest.assign(sex=np.resize(["F", "M", "X"], es.n))
    w["templates"], w["manifest"] = es.templates, manifest
    w["templates_npy"] = root / "templates.npy"
    np.save(w["templates_npy"], es.templates)
    w["manifest_csv"] = root / "manifest.csv"
    manifest.to_csv(w["manifest_csv"], index=False)
    w["manifest_text"] = w["manifest_csv"].read_text()
    from faceaudit.data.evalset import validate
    w["evalset"] = validate(es.templates, manifest)
    proto = generate_protocol(w["evalset"], seed=0)
    roles = pd.DataFrame({"template_id": np.concatenate([es.template_ids[proto.gallery], es.template_ids[proto.probes]]),
                          "role": ["gallery"] * proto.gallery.size + ["probe"] * proto.probes.size})
    w["protocol"] = roles
    w["protocol_text"] = roles.to_csv(index=False)
    w["failures"] = manifest.iloc[:3].assign(image=["a.jpg", "b.jpg", "c.jpg"], reason=["no face", "no face", "blurred"])
    w["failures_text"] = w["failures"].to_csv(index=False)
    audit = run_audit(w["evalset"], proto)
    w["results"] = write_results(audit, root / "results", report=False)
    lists = records_to_lists(LIST_RECORDS)
    for suffix in ("csv", "parquet", "jsonl"):
        w[f"lists_{suffix}"] = write_lists(lists, root / f"lists.{suffix}")
    w["lists_text"] = w["lists_csv"].read_text()
    w["lists_frame"] = pd.read_parquet(w["lists_parquet"])
    bb = audit_lists(lists, LIST_MANIFEST, ["g1", "g1b", "g2"], thresholds=[0.5])
    w["bb_results"] = write_blackbox_results(bb, root / "bb_results", report=False)
    with np.load(w["results"] / "scores.npz") as npz:
        w["scores"] = {k: npz[k] for k in npz.files}
    return w


def _as_text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


# ============================================================================ evaluation sets

def _check_evalset(es, n_rows=None) -> None:
    assert es.templates.ndim == 2 and es.templates.dtype == np.float32 and es.templates.size
    assert np.isfinite(es.templates).all()
    assert len(es.manifest) == es.n
    assert es.manifest["template_id"].is_unique
    for col in ("template_id", "subject_id"):
        assert all(isinstance(v, str) for v in es.manifest[col])


@FUZZ
@given(data=st.data())
def test_manifest_csv(world, data):
    from faceaudit.data.evalset import load_evaluation_set
    raw = data.draw(csv_file(world["manifest_text"]))
    path = fresh(world["root"], "manifest.csv", raw)
    out = parses("load_evaluation_set (manifest.csv)", load_evaluation_set, world["templates_npy"], path, data=raw)
    if not refused(out):
        _check_evalset(out)


@FUZZ
@given(data=st.data())
def test_manifest_parquet(world, data):
    from faceaudit.data.evalset import load_evaluation_set
    raw = data.draw(parquet_file(world["manifest"]))
    path = fresh(world["root"], "manifest.parquet", raw)
    out = parses("load_evaluation_set (manifest.parquet)", load_evaluation_set, world["templates_npy"], path, data=raw)
    if not refused(out):
        _check_evalset(out)


@FUZZ
@given(data=st.data())
def test_templates_npy(world, data):
    from faceaudit.data.evalset import load_evaluation_set
    raw = data.draw(npy_file(world["templates"], world["tripwire"]))
    path = fresh(world["root"], "templates.npy", raw)
    out = parses("load_evaluation_set (templates.npy)", load_evaluation_set, path, world["manifest_csv"], data=raw)
    assert not world["tripwire"].exists(), "a pickle in a .npy file was unpickled"
    if not refused(out):
        _check_evalset(out)


@FUZZ
@given(data=st.data())
def test_templates_parquet(world, data):
    from faceaudit.data.evalset import load_evaluation_set
    x = world["templates"]
    if data.draw(st.booleans()):
        frame = pd.DataFrame(x, columns=[f"d{j}" for j in range(x.shape[1])])
    else:
        frame = pd.DataFrame({"template": list(x.astype(float))})
    raw = data.draw(parquet_file(frame))
    path = fresh(world["root"], "templates.parquet", raw)
    out = parses("load_evaluation_set (templates.parquet)", load_evaluation_set, path, world["manifest_csv"], data=raw)
    if not refused(out):
        _check_evalset(out)


@st.composite
def mutated_frame(draw, frame: pd.DataFrame):
    """An in-memory DataFrame with columns dropped, duplicated, renamed (to non-text too) or
    replaced by columns of arbitrary Python objects."""
    frame = frame.copy()
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(("drop", "dup", "rename", "objects", "cell")))
        cols = list(frame.columns)
        if not cols:
            break
        j = _index(draw, len(cols))
        if op == "drop":
            frame = frame.drop(columns=[cols[j]])
        elif op == "dup":
            frame = pd.concat([frame, frame.iloc[:, [j]]], axis=1)
        elif op == "rename":
            new = draw(st.one_of(weird_text, st.integers(), st.none(), st.just(("a", "b"))))
            frame.columns = [new if i == j else c for i, c in enumerate(cols)]
        elif op == "objects":
            frame.isetitem(j, draw(st.lists(json_value, min_size=len(frame), max_size=len(frame))))
        elif op == "cell" and len(frame):
            values = list(frame.iloc[:, j])
            values[_index(draw, len(values))] = draw(json_value)
            frame.isetitem(j, pd.Series(values, index=frame.index, dtype=object))
    return frame


@FUZZ
@given(data=st.data())
def test_validate_in_memory(world, data):
    from faceaudit.data.evalset import validate
    x = data.draw(npy_array(world["templates"], world["tripwire"]))
    frame = data.draw(mutated_frame(world["manifest"]))
    out = parses("validate", validate, x, frame, data=(x, frame))
    if not refused(out):
        _check_evalset(out)


# ================================================================================== protocols

@FUZZ
@given(data=st.data(), suffix=st.sampled_from(["csv", "parquet"]))
def test_protocol_file(world, data, suffix):
    from faceaudit.data.protocol import load_protocol
    raw = data.draw(csv_file(world["protocol_text"]) if suffix == "csv" else parquet_file(world["protocol"]))
    path = fresh(world["root"], f"protocol.{suffix}", raw)
    out = parses("load_protocol", load_protocol, world["evalset"], path, data=raw)
    if not refused(out):
        assert out.gallery.size and out.mated.size and out.nonmated.size
        assert not np.intersect1d(out.gallery, out.probes).size


# =================================================================================== failures

@FUZZ
@given(data=st.data())
def test_failures_file(world, data):
    from faceaudit.data.evalset import read_failures
    raw = data.draw(csv_file(world["failures_text"]))
    path = fresh(world["root"], "failures.csv", raw)
    out = parses("read_failures", read_failures, path, data=raw)
    if not refused(out):
        assert "subject_id" in out.columns
        assert all(isinstance(v, str) and v for v in out["subject_id"])


@FUZZ
@given(data=st.data())
def test_distractors_file(world, data):
    from faceaudit.cli.audit import _read_distractors
    raw = data.draw(npy_file(world["templates"], world["tripwire"]))
    path = fresh(world["root"], "distractors.npy", raw)
    parses("_read_distractors", _read_distractors, path, data=raw)
    assert not world["tripwire"].exists(), "a pickle in a .npy file was unpickled"


# ============================================================================= candidate lists

def _check_lists(lists) -> None:
    assert lists.n_searches >= 1
    assert lists.searches["search_id"].is_unique and lists.searches["probe_id"].is_unique
    assert (lists.searches["list_length"] >= 1).all()
    c = lists.candidates
    assert c["rank"].dtype == np.int64 and (c["rank"] >= 1).all()
    assert c["score"].dtype == np.float64 and not np.isinf(c["score"]).any()


@FUZZ
@given(data=st.data())
def test_candidate_lists_csv(world, data):
    from faceaudit.data.candidates import read_lists
    raw = data.draw(csv_file(world["lists_text"]))
    path = fresh(world["root"], "lists.csv", raw)
    out = parses("read_lists (.csv)", read_lists, path, data=raw)
    if not refused(out):
        _check_lists(out)


@FUZZ
@given(data=st.data())
def test_candidate_lists_parquet(world, data):
    from faceaudit.data.candidates import read_lists
    raw = data.draw(parquet_file(world["lists_frame"]))
    path = fresh(world["root"], "lists.parquet", raw)
    out = parses("read_lists (.parquet)", read_lists, path, data=raw)
    if not refused(out):
        _check_lists(out)


@FUZZ
@given(data=st.data())
def test_candidate_lists_jsonl(world, data):
    from faceaudit.data.candidates import read_lists
    raw = data.draw(jsonl_file(LIST_RECORDS))
    path = fresh(world["root"], "lists.jsonl", raw)
    out = parses("read_lists (.jsonl)", read_lists, path, data=raw)
    if not refused(out):
        _check_lists(out)


@FUZZ
@given(records=mutated_json(LIST_RECORDS))
def test_records_to_lists(records):
    from faceaudit.data.candidates import records_to_lists
    out = parses("records_to_lists", records_to_lists, records, data=records)
    if not refused(out):
        _check_lists(out)


@FUZZ
@given(data=st.data())
def test_from_frame(world, data):
    from faceaudit.data.candidates import from_frame
    frame = data.draw(mutated_frame(world["lists_frame"]))
    out = parses("from_frame", from_frame, frame, data=frame)
    if not refused(out):
        _check_lists(out)


# ====================================================================== service response adapters

def toml_text(value) -> str:
    """A small TOML writer (tables of tables, inline values), enough for adapter files."""
    def scalar(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int):
            return str(v)
        if isinstance(v, float):
            return "nan" if v != v else ("inf" if v == float("inf") else "-inf" if v == -float("inf") else repr(v))
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(scalar(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(str(k))} = {scalar(x)}" for k, x in v.items()) + "}"
        return json.dumps(str(v))

    lines = []
    for k, v in value.items():
        if not isinstance(v, dict):
            lines.append(f"{json.dumps(str(k))} = {scalar(v)}")
    for k, v in value.items():
        if isinstance(v, dict):
            lines.append(f"[{json.dumps(str(k))}]")
            lines.extend(f"{json.dumps(str(kk))} = {scalar(vv)}" for kk, vv in v.items())
    return "\n".join(lines) + "\n"


def _tomlable(v):
    """``v`` with what TOML cannot hold (null, integers beyond 64 bits) replaced by text."""
    if v is None:
        return "null"
    if isinstance(v, int) and not isinstance(v, bool) and not -2**63 <= v < 2**63:
        return str(v)
    if isinstance(v, list):
        return [_tomlable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _tomlable(x) for k, x in v.items()}
    return v


@st.composite
def toml_file(draw, path: Path):
    """An adapter TOML file's bytes: the valid file's tables with keys dropped or set to values of
    any TOML type; or its text mutated line by line."""
    import tomllib
    text = path.read_text()
    if draw(st.booleans()):
        return draw(text_file(text))
    if draw(st.integers(0, 10)) == 0:
        return (text + draw(st.sampled_from(["deep = " + "[" * 5000 + "]" * 5000, "huge = " + "1" * 4400])) + "\n").encode()
    table = draw(mutated_json(tomllib.loads(text), min_ops=1))
    if not isinstance(table, dict):
        return json_dumps(table).encode("utf-8")  # not a TOML document at all
    try:
        return toml_text(_tomlable(table)).encode("utf-8")
    except RecursionError:
        return text.encode("utf-8")


ADAPTERS = sorted((REPO / "docs" / "adapters").glob("fixture-*.toml"))


@FUZZ
@given(data=st.data(), source=st.sampled_from(ADAPTERS))
def test_response_spec_file(world, data, source):
    from faceaudit.blackbox.adapters import load_spec, parse_response
    raw = data.draw(toml_file(source))
    path = fresh(world["root"], "adapter.toml", raw)
    spec = parses("load_spec", load_spec, str(path), data=raw)
    if not refused(spec):  # a spec that loads reads any body without anything but InputError
        body = data.draw(mutated_json(REKOGNITION_BODY if "rekognition" in source.name else NIST_BODY))
        parses("parse_response", parse_response, spec, body, {"MaxFaces": 5, "candidateListLength": 2},
               data=(raw, body))


@FUZZ
@given(table=mutated_json({"candidates": "FaceMatches", "id": "Face.ExternalImageId", "score": "Similarity",
                           "score_scale": "0-100", "version": "FaceModelVersion", "list_length_param": "MaxFaces",
                           "threshold_param": "FaceMatchThreshold", "default_list_length": 80,
                           "default_threshold": 80.0, "threshold_always": False, "system": "x", "valid": "ok",
                           "decision": "d"}),
       body=mutated_json(REKOGNITION_BODY))
def test_spec_from_table(table, body):
    from faceaudit.blackbox.adapters import parse_response, records_to_lists, spec_from_table
    spec = parses("spec_from_table", spec_from_table, table, "custom", "adapter.toml", data=table)
    if not refused(spec):
        rec = parses("parse_response", parse_response, spec, body, {}, data=(table, body))
        if not refused(rec):
            parses("records_to_lists", records_to_lists, [{"search_id": "s", "probe_id": "p", **rec}],
                   data=(table, body))


@FUZZ
@given(data=st.data(), name=st.sampled_from(["rekognition", "azure", "nist"]))
def test_parse_response(data, name):
    from faceaudit.blackbox.adapters import BUILTIN, parse_response, records_to_lists
    body = data.draw(mutated_json({"rekognition": REKOGNITION_BODY, "azure": AZURE_BODY, "nist": NIST_BODY}[name]))
    request = data.draw(mutated_json({"MaxFaces": 5, "FaceMatchThreshold": 90, "maxNumOfCandidatesReturned": 3,
                                      "confidenceThreshold": 0.5, "candidateListLength": 2}))
    rec = parses("parse_response", parse_response, BUILTIN[name], body, request, data=(body, request))
    if not refused(rec):
        parses("records_to_lists", records_to_lists, [{"search_id": "s", "probe_id": "p", **rec}],
               data=(body, request))


@FUZZ
@given(data=st.data())
def test_id_map(world, data):
    from faceaudit.blackbox.adapters import read_id_map
    raw = data.draw(csv_file(ID_MAP))
    path = fresh(world["root"], "idmap.csv", raw)
    out = parses("read_id_map", read_id_map, path, data=raw)
    if not refused(out):
        assert all(isinstance(k, str) and k and isinstance(v, str) and v for k, v in out.items())


@FUZZ
@given(data=st.data())
def test_import_responses(world, data):
    from faceaudit.blackbox.adapters import import_responses
    raw = data.draw(jsonl_file(RESPONSES))
    path = fresh(world["root"], "responses.jsonl", raw)
    out = parses("import_responses", import_responses, path, "azure", id_map={"P-A": "g1", "P-B": "g2"}, data=raw)
    if not refused(out):
        _check_lists(out)


# ================================================================ black-box manifest and gallery

@FUZZ
@given(data=st.data(), suffix=st.sampled_from(["csv", "parquet"]))
def test_blackbox_manifest(world, data, suffix):
    from faceaudit.engine.observed import read_manifest
    raw = data.draw(csv_file(LIST_MANIFEST.to_csv(index=False)) if suffix == "csv" else parquet_file(LIST_MANIFEST))
    path = fresh(world["root"], f"manifest.{suffix}", raw)
    out = parses("read_manifest", read_manifest, path, data=raw)
    if not refused(out):
        assert out["template_id"].is_unique
        assert all(isinstance(v, str) for v in out["template_id"]) and all(isinstance(v, str) for v in out["subject_id"])


@FUZZ
@given(data=st.data(), suffix=st.sampled_from(["csv", "parquet"]))
def test_blackbox_gallery(world, data, suffix):
    from faceaudit.engine.observed import read_gallery
    raw = data.draw(csv_file(LIST_PROTOCOL.to_csv(index=False)) if suffix == "csv" else parquet_file(LIST_PROTOCOL))
    path = fresh(world["root"], f"protocol.{suffix}", raw)
    out = parses("read_gallery", read_gallery, path, LIST_MANIFEST, data=raw)
    if not refused(out):
        assert out.size and set(out) <= set(LIST_MANIFEST["template_id"])


# ========================================== query adapter files (auditcore.http_runner, flagaudit.endpoint)

@FUZZ
@given(data=st.data(), source=st.sampled_from(ADAPTERS))
def test_query_adapter_file(world, data, source):
    from faceaudit.blackbox.query import load_adapter
    raw = data.draw(toml_file(source))
    path = fresh(world["root"], "adapter.toml", raw)
    parses("faceaudit load_adapter", load_adapter, path, data=raw)


@FUZZ
@given(data=st.data())
def test_flag_adapter_file(world, data):
    from flagaudit.endpoint import load_flag_adapter
    raw = data.draw(toml_file(REPO / "docs" / "adapters" / "flagger-example.toml"))
    path = fresh(world["root"], "flagger.toml", raw)
    parses("flagaudit load_flag_adapter", load_flag_adapter, path, data=raw)


# ====================================================================== flagaudit's user files

@FUZZ
@given(data=st.data())
def test_keyword_file(world, data):
    from flagaudit.systems import KeywordFlagger
    raw = data.draw(text_file(KEYWORDS))
    path = fresh(world["root"], "keywords.txt", raw)
    flagger = parses("KeywordFlagger.from_file", KeywordFlagger.from_file, path, data=raw)
    if not refused(flagger):  # a file that loads flags texts
        assert flagger.entries and np.isfinite(flagger.threshold)
        parses("KeywordFlagger.run", flagger.run, ["I will kill you", "deport them", "555-1234", "a bomb!"], data=raw)


FLAG_CASES = [f"benign-traps:t{i}-1" for i in range(4)]
FLAGS = pd.DataFrame({"case_id": FLAG_CASES, "flagged": ["1", "0", "true", "no"], "score": [0.9, 0.1, 0.8, 0.2]})


@FUZZ
@given(data=st.data(), suffix=st.sampled_from(["csv", "parquet"]))
def test_flags_file(world, data, suffix):
    from flagaudit.systems import read_flags
    raw = data.draw(csv_file(FLAGS.to_csv(index=False)) if suffix == "csv" else parquet_file(FLAGS))
    path = fresh(world["root"], f"flags.{suffix}", raw)
    out = parses("read_flags", read_flags, path, FLAG_CASES, data=raw)
    if not refused(out):
        assert out.flagged.shape == (len(FLAG_CASES),) and out.flagged.dtype == bool


@FUZZ
@given(data=st.data())
def test_graph_file(world, data):
    from flagaudit.network import network_section
    raw = data.draw(text_file(GRAPH))
    path = fresh(world["root"], "graph.txt", raw)
    out = parses("network_section (graph file)", network_section, path, n_seeds=20, data=raw)
    if not refused(out):
        assert out["n_nodes"] >= 1 and all(np.isfinite(h["mean"]) for h in out["hops"].values())


@FUZZ
@given(data=st.data(), suite=st.sampled_from(["hatecheck", "mhc-spanish"]))
def test_hatecheck_files(world, data, suite):
    from flagaudit.suites import load_suites
    text = HATECHECK if suite == "hatecheck" else HATECHECK.replace("case_id", "mhc_case_id", 1)
    raw = data.draw(csv_file(text))
    folder = fresh(world["root"], "data")
    name = "test_suite_cases.csv" if suite == "hatecheck" else "multilingual/hatecheck_cases_final_spanish.csv"
    (folder / "hatecheck" / name).parent.mkdir(parents=True)
    (folder / "hatecheck" / name).write_bytes(raw)
    out = parses("load_suites", load_suites, [suite], folder, data=raw)
    if not refused(out):
        cases, _ = out
        assert cases["case_id"].is_unique and set(cases["role"]) <= {"benign", "threat", "hateful"}


# ================================================================================ LFW pairs file

@FUZZ
@given(data=st.data())
def test_lfw_pairs_file(world, data):
    from faceaudit.data.datasets.lfw import read_pairs
    raw = data.draw(text_file(PAIRS))
    path = fresh(world["root"], "pairs.txt", raw)
    out = parses("read_pairs", read_pairs, path, data=raw)
    if not refused(out):
        assert out.left.size == out.right.size == out.same.size == out.fold.size


# ============================================================================== results folders

@st.composite
def results_json(draw, folder: Path):
    """results.json bytes: the valid one with nodes replaced or deleted, or its bytes mutated."""
    valid = json.loads((folder / "results.json").read_text())
    if draw(st.integers(0, 3)) == 0:
        return draw(mutated_bytes((folder / "results.json").read_bytes()))
    if draw(st.integers(0, 10)) == 0:
        return draw(st.sampled_from([b"[" * 5000 + b"]" * 5000, b'{"identification": ' + b"[" * 5000,
                                     b'{"faceaudit_version": ' + b"1" * 4400 + b', "identification": {}}']))
    return json_dumps(draw(mutated_json(valid, min_ops=1))).encode("utf-8")


@st.composite
def mutated_folder(draw, world, source: Path):
    """A copy of a results folder with 1-2 of its files mutated (or removed)."""
    folder = copy_folder(world["root"], source)
    files = ["results.json", "scores.npz", "searches.parquet", "candidates.parquet"]
    for _ in range(draw(st.integers(1, 2))):
        name = draw(st.sampled_from([f for f in files if (source / f).exists()]))
        path = folder / name
        op = draw(st.sampled_from(("mutate", "mutate", "mutate", "remove")))
        if op == "remove":
            path.unlink(missing_ok=True)
        elif name == "results.json":
            path.write_bytes(draw(results_json(source)))
        elif name == "scores.npz":
            path.write_bytes(draw(npz_file(world["scores"], world["tripwire"])))
        else:
            path.write_bytes(draw(parquet_file(pd.read_parquet(source / name))))
    return folder


@FUZZ
@given(data=st.data())
def test_results_json(world, data):
    from faceaudit.data.results import load_results
    raw = data.draw(results_json(world["results"]))
    folder = fresh(world["root"], "results")
    folder.mkdir()
    (folder / "results.json").write_bytes(raw)
    out = parses("load_results", load_results, folder, data=raw)
    if not refused(out):
        assert isinstance(out, dict) and "identification" in out


@settings(FUZZ, max_examples=max(EXAMPLES // 4, 1))  # each explains a score (a bootstrap): the loading is
@given(data=st.data())                               # fuzzed on its own below, in full
def test_explain_results_folder(world, data):
    from faceaudit.analyses.explain import explain_from_results
    folder = data.draw(mutated_folder(world, world["results"]))
    score = data.draw(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]))
    parses("explain_from_results", explain_from_results, folder, score, 1000, data=folder)
    assert not world["tripwire"].exists(), "a pickle in scores.npz was unpickled"


@FUZZ
@given(data=st.data())
def test_score_model_from_results(world, data):
    from faceaudit.analyses.explain import ScoreModel
    folder = fresh(world["root"], "results")
    shutil.copytree(world["results"], folder)
    raw = data.draw(npz_file(world["scores"], world["tripwire"]))
    (folder / "scores.npz").write_bytes(raw)
    model = parses("ScoreModel.from_results", ScoreModel.from_results, folder, data=raw)
    assert not world["tripwire"].exists(), "a pickle in scores.npz was unpickled"
    if not refused(model):
        assert np.isfinite(model.genuine).all() and model.genuine.size >= 2
        assert (model.impostor_hist >= 0).all() and model.impostor_hist.sum() >= 2


@FUZZ
@given(data=st.data(), blackbox=st.booleans())
def test_compare_folders(world, data, blackbox):
    from faceaudit.analyses.compare import compare
    source = world["bb_results"] if blackbox else world["results"]
    folder = data.draw(mutated_folder(world, source))
    pair = [source, folder] if data.draw(st.booleans()) else [folder, source]
    parses("compare", compare, pair, n_boot=20, data=folder)


@settings(KNOWN, max_examples=max(EXAMPLES // 2, 1))
@given(data=st.data())
def test_report_of_results_folder(world, data):
    """faceaudit report on a damaged results.json: one error line, exit 2 (never an internal error)."""
    from faceaudit.cli import app
    raw = data.draw(results_json(world["results"]))
    folder = fresh(world["root"], "results")
    shutil.copytree(world["results"], folder)
    (folder / "results.json").write_bytes(raw)
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code in (0, 2), (result.output, _shown(raw))
    if result.exit_code == 2:
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), result.output


# ===================================================================== the defects found, one by one
# Each test below failed on the code before the fix it names (an exception other than InputError,
# a message on two lines, or a damaged file accepted).

def refuses(parse, *args, words: str = "", **kwargs) -> InputError:
    """``parse`` raises InputError whose message passes :func:`message_problems` (and holds ``words``)."""
    with pytest.raises(InputError) as caught:
        parse(*args, **kwargs)
    assert message_problems(caught.value) == [], str(caught.value)
    assert words in str(caught.value), str(caught.value)
    return caught.value


def _results_copy(world) -> Path:
    return copy_folder(world["root"], world["results"])


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_explain_refuses_a_pickled_scores_npz(world):
    from faceaudit.analyses.explain import ScoreModel, explain_from_results
    folder = _results_copy(world)
    (folder / "scores.npz").write_bytes(_npz(**{**world["scores"], "genuine": np.array([Tripwire(world["tripwire"])])}))
    refuses(explain_from_results, folder, 0.5, 1000, words="never unpickles")
    refuses(ScoreModel.from_results, folder, words="scores.npz: holds Python objects")
    assert not world["tripwire"].exists()


def _scores_with(world, **changes) -> bytes:
    arrays = {**world["scores"], **changes}
    return _npz(**{k: v for k, v in arrays.items() if v is not None})


SCORES_DAMAGED = {
    "empty file": lambda w: b"",
    "not a zip": lambda w: b"hello, world",
    "one array (.npy), not an archive": lambda w: _npy_bytes(np.zeros(3)),
    "truncated": lambda w: _scores_with(w)[:300],
    "no genuine": lambda w: _scores_with(w, genuine=None),
    "bins out of range": lambda w: _scores_with(w, impostor_bin=w["scores"]["impostor_bin"] + 2**40),
    "bins of NaN scores": lambda w: _scores_with(w, impostor_bin=np.zeros_like(w["scores"]["impostor_bin"])),
    "bins as text": lambda w: _scores_with(w, impostor_bin=w["scores"]["impostor_bin"].astype(str)),
    "bins and counts of other lengths": lambda w: _scores_with(w, impostor_count=w["scores"]["impostor_count"][:2]),
    "negative counts": lambda w: _scores_with(w, impostor_count=-w["scores"]["impostor_count"]),
    "gallery size as a list": lambda w: _scores_with(w, gallery_size=np.array([4, 4])),
    "NaN genuine scores": lambda w: _scores_with(w, genuine=np.full(8, np.nan), mate_score=None),
}


@pytest.mark.parametrize("case", sorted(SCORES_DAMAGED))
def test_damaged_scores_npz_is_one_line(world, case):
    from faceaudit.analyses.explain import ScoreModel
    folder = _results_copy(world)
    (folder / "scores.npz").write_bytes(SCORES_DAMAGED[case](world))
    refuses(ScoreModel.from_results, folder, words=str(folder / "scores.npz"))


@pytest.mark.parametrize("content", [b"{", b'{"faceaudit_version": "0", "identification": {}, "input": []}',
                                     b"\xff\xfe{}"])
def test_explain_with_a_damaged_results_json(world, content):
    from faceaudit.analyses.explain import explain_from_results
    folder = _results_copy(world)
    (folder / "results.json").write_bytes(content)
    if content.startswith(b'{"'):  # a results.json whose input is not a table: as if it said nothing
        out = explain_from_results(folder, 0.5, 1000)
        assert out["audited"] == {} and out["score_kind"] is None
    else:
        refuses(explain_from_results, folder, 0.5, 1000, words="results.json: not valid JSON")


def test_explain_ignores_candidate_tables_it_cannot_use(world):
    """candidates.parquet is optional for explain: one whose ranks are not whole numbers is as if absent."""
    from faceaudit.analyses.explain import explain_from_results
    bad, none = _results_copy(world), _results_copy(world)
    cand = pd.read_parquet(bad / "candidates.parquet")
    cand["rank"] = [[r] for r in cand["rank"]]
    cand.to_parquet(bad / "candidates.parquet")
    (none / "candidates.parquet").unlink()
    assert explain_from_results(bad, 0.5, 1000)["headline"] == explain_from_results(none, 0.5, 1000)["headline"]


DEEP = "[" * 5000 + "]" * 5000


def test_deeply_nested_json_is_one_line(world, tmp_path):
    from faceaudit.blackbox.adapters import import_responses, load_spec
    from faceaudit.data.candidates import read_lists
    from faceaudit.data.results import load_results
    (tmp_path / "results.json").write_text(DEEP)
    refuses(load_results, tmp_path, words="nested too deeply")
    (tmp_path / "lists.jsonl").write_text(json.dumps(LIST_RECORDS[0]) + "\n" + DEEP + "\n")
    refuses(read_lists, tmp_path / "lists.jsonl", words="line 2: not valid JSON (nested too deeply)")
    (tmp_path / "responses.jsonl").write_text(DEEP + "\n")
    refuses(import_responses, tmp_path / "responses.jsonl", "azure", words="line 1")
    (tmp_path / "responses.jsonl").write_text(json.dumps({"search_id": "s", "probe_id": "p", "response": DEEP}) + "\n")
    refuses(import_responses, tmp_path / "responses.jsonl", "azure", words="line 1")
    (tmp_path / "adapter.toml").write_text("a = " + DEEP + "\n")
    refuses(load_spec, str(tmp_path / "adapter.toml"), words="cannot read adapter file")


def test_an_integer_of_5000_digits_is_one_line(tmp_path):
    """Python refuses to read an integer of more than 4,300 digits with a ValueError that has no ``msg``."""
    from faceaudit.blackbox.adapters import import_responses, load_spec
    from faceaudit.data.candidates import read_lists
    huge = "1" * 5000
    (tmp_path / "lists.jsonl").write_text('{"search_id": ' + huge + "}\n")
    refuses(read_lists, tmp_path / "lists.jsonl", words="line 1: not valid JSON (Exceeds the limit")
    (tmp_path / "responses.jsonl").write_text('{"response": ' + huge + "}\n")
    refuses(import_responses, tmp_path / "responses.jsonl", "azure", words="line 1")
    (tmp_path / "adapter.toml").write_text("a = " + huge + "\n")
    refuses(load_spec, str(tmp_path / "adapter.toml"), words="cannot read adapter file")


TOO_MANY_FIELDS = "template_id,subject_id,role\nt0000,s000,gallery\nt0001,s000,probe,extra,fields\n"


def _read_with(reader: str, world, path: Path):
    from faceaudit.blackbox.adapters import read_id_map
    from faceaudit.cli.audit import _read_failures
    from faceaudit.data.candidates import read_lists
    from faceaudit.data.evalset import load_evaluation_set
    from faceaudit.data.protocol import load_protocol
    from faceaudit.engine.observed import read_gallery, read_manifest
    return {"manifest": lambda: load_evaluation_set(world["templates_npy"], path),
            "protocol": lambda: load_protocol(world["evalset"], path),
            "id map": lambda: read_id_map(path),
            "candidate lists": lambda: read_lists(path),
            "black-box manifest": lambda: read_manifest(path),
            "black-box protocol": lambda: read_gallery(path, LIST_MANIFEST),
            "failures": lambda: _read_failures(path)}[reader]()


READERS = ["manifest", "protocol", "id map", "candidate lists", "black-box manifest", "black-box protocol", "failures"]


@pytest.mark.parametrize("reader", READERS)
def test_csv_parser_errors_are_one_line(world, tmp_path, reader):
    """pandas ends its tokenizer's message with a newline: it was printed as two lines."""
    path = tmp_path / "file.csv"
    path.write_text(TOO_MANY_FIELDS)
    refuses(_read_with, reader, world, path, words="Expected 3 fields in line 3, saw 5")


@pytest.mark.parametrize("reader", READERS)
def test_csv_text_not_utf8_is_one_line(world, tmp_path, reader):
    path = tmp_path / "file.csv"
    path.write_bytes(b"template_id,subject_id,role,system_id\nt0000,s\xff000,gallery,P-\xff\n")
    refuses(_read_with, reader, world, path, words=str(path))


@pytest.mark.parametrize("reader", ["manifest", "protocol", "black-box manifest", "black-box protocol"])
def test_values_quoted_from_files_stay_on_one_line(world, tmp_path, reader):
    """A quoted CSV field may hold a line break; a message quoting it shows it as \\n."""
    path = tmp_path / "file.csv"
    rows = "".join(f"t{i},s{i},probe\n" for i in range(22))  # 24 rows, as many as the templates
    path.write_text('template_id,subject_id,role\n"t\n1",s1,"gal\nlery"\n"t\n1",s1,"gal\nlery"\n' + rows)
    error = refuses(_read_with, reader, world, path)
    assert "\\n" in str(error)


def test_candidate_values_stay_on_one_line(tmp_path):
    from faceaudit.data.candidates import read_lists
    path = tmp_path / "lists.csv"
    path.write_text('search_id,probe_id,rank,candidate_id,list_length\n"s\n1",p1,"1\n2",g1,3\n')
    refuses(read_lists, path, words="rank is not a number: '1\\n2'")


def test_damaged_npy_header_is_one_line(world, tmp_path):
    """A header whose Python literal does not parse raised tokenize.TokenError."""
    from faceaudit.cli.audit import _read_distractors
    from faceaudit.data.evalset import load_evaluation_set
    data = bytearray(world["templates_npy"].read_bytes())
    data[10] = ord("}")  # the header's opening brace
    path = tmp_path / "templates.npy"
    path.write_bytes(bytes(data))
    refuses(load_evaluation_set, path, world["manifest_csv"], words="damaged .npy header")
    refuses(_read_distractors, path, words="damaged .npy header")


def _parquet(path: Path, columns: dict) -> Path:
    pq.write_table(pa.Table.from_arrays(list(columns.values()), names=[k.split("#")[0] for k in columns]), path)
    return path


NOT_UTF8 = pa.array([b"t\xff"] * 24, pa.binary())
PARQUET_DAMAGED = {
    "a column named twice": {"template_id": pa.array([f"t{i}" for i in range(24)]), "subject_id": pa.array(["s"] * 24),
                             "template_id#2": pa.array(["x"] * 24)},
    "text that is not UTF-8": {"template_id": NOT_UTF8.view(pa.string()), "subject_id": pa.array(["s"] * 24)},
    "bytes that are not UTF-8": {"template_id": NOT_UTF8, "subject_id": pa.array(["s"] * 24)},
}


@pytest.mark.parametrize("case", sorted(PARQUET_DAMAGED))
def test_parquet_with_a_repeated_column_or_text_not_utf8(world, tmp_path, case):
    from faceaudit.data.evalset import load_evaluation_set
    from faceaudit.data.protocol import load_protocol
    from faceaudit.engine.observed import read_manifest
    path = _parquet(tmp_path / "table.parquet", PARQUET_DAMAGED[case])
    words = "appears 2 times" if "twice" in case else "not UTF-8"
    refuses(load_evaluation_set, world["templates_npy"], path, words=words)
    refuses(read_manifest, path, words=words)
    refuses(load_protocol, world["evalset"], path, words=words if "twice" in case else "")


def test_validate_refuses_repeated_columns_and_non_numbers(world):
    from faceaudit.data.evalset import validate
    twice = pd.concat([world["manifest"], world["manifest"][["template_id"]]], axis=1)
    refuses(validate, world["templates"], twice, words="column template_id appears 2 times")
    refuses(validate, np.zeros((24, 8), "f4,f4"), world["manifest"], words="templates must be real numbers")
    refuses(validate, np.full((24, 8), Tripwire(world["tripwire"]), object), world["manifest"],
            words="templates must be real numbers")


def test_candidate_records_and_frames_of_the_wrong_shape():
    from faceaudit.data.candidates import from_frame, records_to_lists
    refuses(records_to_lists, None, words="expected a list of searches")
    refuses(records_to_lists, [[1]], words="line 1: expected an object")
    refuses(records_to_lists, [{**LIST_RECORDS[0], "candidates": 5}], words="'candidates' must be a list")
    huge = [{**LIST_RECORDS[0], "candidates": [{"candidate_id": "g", "score": 10**400}]}]
    refuses(records_to_lists, huge, words="score is not a number")
    refuses(records_to_lists, [{**LIST_RECORDS[1], "list_length": 10**12}], words="list_length 1000000000000 is too large")
    flat = pd.DataFrame({"search_id": ["s"], "probe_id": ["p"], "rank": [1], "candidate_id": ["g"], "list_length": [3]})
    refuses(from_frame, pd.concat([flat, flat[["rank"]]], axis=1), words="column rank appears 2 times")
    refuses(from_frame, flat.iloc[:0], words="no searches")


def test_response_spec_values_are_checked():
    from faceaudit.blackbox.adapters import load_spec, spec_from_table
    good = {"candidates": "matches", "id": "id"}
    refuses(spec_from_table, ["candidates"], "x", words="[response] must be a table")
    refuses(spec_from_table, {**good, "score": 5}, "x", words="'score' must be text")
    refuses(spec_from_table, {**good, "default_list_length": "ten"}, "x", words="'default_list_length' must be")
    refuses(spec_from_table, {**good, "default_threshold": float("nan")}, "x", words="'default_threshold' must be")
    refuses(spec_from_table, {**good, "threshold_always": "yes"}, "x", words="'threshold_always' must be")
    refuses(load_spec, "adapter\x00.toml", words="unknown adapter 'adapter\\x00.toml'")


def test_parse_response_with_odd_requests_and_scores(tmp_path):
    from faceaudit.blackbox.adapters import BUILTIN, import_responses, parse_response
    nist = BUILTIN["nist"]
    refuses(parse_response, nist, {"candidates": [{"templateId": "g", "score": 10**400}]}, {"candidateListLength": 1},
            words="candidate 1's score is not a finite number")
    refuses(parse_response, nist, NIST_BODY, [1], words="the request parameters must be an object")
    path = tmp_path / "responses.jsonl"
    path.write_text(json.dumps({**RESPONSES[0], "request": "ab"}) + "\n")
    refuses(import_responses, path, "azure", words="line 1: 'request' must be an object")


def test_id_map_with_text_not_utf8_or_empty_ids(tmp_path):
    from faceaudit.blackbox.adapters import read_id_map
    path = tmp_path / "idmap.csv"
    path.write_bytes(b"system_id,template_id\nP-\xff,g1\n")
    refuses(read_id_map, path, words="cannot read id map")
    path.write_text("system_id,template_id\nP-A,g1\nP-B,\n")
    refuses(read_id_map, path, words="line 3: empty template_id")


@pytest.mark.parametrize("content,words", [
    (b"2\t1\nAbel\t1\t2\n\xff\n", "not UTF-8"),
    ("1\t1\nAbel\t\u00b2\t2\nAbel\t1\tBob\t1\n".encode(), "line 2: image numbers must be whole numbers"),
    (b"-1\t-1\nAbel\t1\t2\nAbel\t1\tBob\t1\n", "two positive numbers"),
])
def test_lfw_pairs_file_errors(tmp_path, content, words):
    from faceaudit.data.datasets.lfw import read_pairs
    path = tmp_path / "pairs.txt"
    path.write_bytes(content)
    refuses(read_pairs, path, words=words)


def test_failures_file_errors(tmp_path):
    from faceaudit.data.evalset import read_failures
    path = tmp_path / "failures.csv"
    path.write_text("template_id,subject_id\nt1,s1\nt2,\n")
    refuses(read_failures, path, words="line 3: empty subject_id")
    path.write_bytes(b"")
    assert list(read_failures(path).columns) == ["subject_id"] and len(read_failures(path)) == 0


def _compare_damaged(world, case: str) -> Path:
    folder = _results_copy(world)
    results = json.loads((folder / "results.json").read_text())
    searches = pd.read_parquet(folder / "searches.parquet")
    if case == "input not a table":
        results["input"] = []
    elif case == "protocol not a table":
        results["protocol"] = [1]
    elif case == "threshold not a number":
        results["identification"]["operating_points"][0]["threshold"] = "abc"
    elif case == "mated as text":
        searches["mated"] = searches["mated"].astype(str)
    elif case == "scores as text":
        searches["mate_score"] = "high"
    elif case == "empty template_id":
        searches.loc[0, "template_id"] = None
    (folder / "results.json").write_text(json.dumps(results))
    searches.to_parquet(folder / "searches.parquet")
    return folder


@pytest.mark.parametrize("case", ["input not a table", "protocol not a table", "threshold not a number",
                                  "mated as text", "scores as text", "empty template_id"])
def test_compare_refuses_malformed_folders(world, case):
    from faceaudit.analyses.compare import compare
    refuses(compare, [world["results"], _compare_damaged(world, case)], n_boot=20)


def test_results_folder_named_by_its_path(tmp_path, monkeypatch):
    """``load_results("")`` named the folder as it was given: an empty field (``: no results.json here``)."""
    from faceaudit.data.results import load_results
    monkeypatch.chdir(tmp_path)
    refuses(load_results, "", words="no results.json here")


# ============================================================================= through the CLI

def _cli_case(case: str, world, tmp: Path) -> tuple:
    """(program, arguments) of a command given one representative bad file."""
    out = tmp / "out"
    if case == "explain, pickled scores.npz":
        folder = _results_copy(world)
        (folder / "scores.npz").write_bytes(_npz(genuine=np.array([Tripwire(world["tripwire"])] * 3)))
        return "faceaudit", ["explain", "--results", folder, "--score", "0.5", "--gallery-size", "1000"]
    if case == "audit, manifest a tokenizer refuses":
        (tmp / "m.csv").write_text(TOO_MANY_FIELDS)
        return "faceaudit", ["audit", "--templates", world["templates_npy"], "--manifest", tmp / "m.csv", "--out", out]
    if case == "audit, damaged .npy header":
        data = bytearray(world["templates_npy"].read_bytes())
        data[10] = ord("}")
        (tmp / "t.npy").write_bytes(bytes(data))
        return "faceaudit", ["audit", "--templates", tmp / "t.npy", "--manifest", world["manifest_csv"], "--out", out]
    if case == "audit, failures not UTF-8":
        (tmp / "f.csv").write_bytes(b"template_id,subject_id\nt1,s\xff1\n")
        return "faceaudit", ["audit", "--templates", world["templates_npy"], "--manifest", world["manifest_csv"],
                             "--failures", tmp / "f.csv", "--out", out]
    if case == "audit-lists, deeply nested JSON line":
        (tmp / "l.jsonl").write_text(DEEP + "\n")
        LIST_MANIFEST.to_csv(tmp / "m.csv", index=False)
        LIST_PROTOCOL.to_csv(tmp / "p.csv", index=False)
        return "faceaudit", ["audit-lists", "--lists", tmp / "l.jsonl", "--manifest", tmp / "m.csv",
                             "--protocol", tmp / "p.csv", "--out", out]
    if case == "import-lists, id map not UTF-8":
        (tmp / "r.jsonl").write_text("\n".join(json.dumps(r) for r in RESPONSES) + "\n")
        (tmp / "map.csv").write_bytes(b"system_id,template_id\nP-\xff,g1\n")
        return "faceaudit", ["import-lists", tmp / "r.jsonl", "--adapter", "azure", "--id-map", tmp / "map.csv",
                             "--out", tmp / "l.parquet"]
    if case == "compare, results.json of another shape":
        return "faceaudit", ["compare", world["results"], _compare_damaged(world, "input not a table"), "--out", out]
    if case == "report, deeply nested results.json":
        folder = _results_copy(world)
        (folder / "results.json").write_text(DEEP)
        return "faceaudit", ["report", folder]
    if case == "flagaudit, graph not UTF-8":
        (tmp / "g.txt").write_bytes(b"a b\n\xff c\n")
        (tmp / "k.txt").write_text(KEYWORDS)
        return "flagaudit", ["audit", "--suite", "benign-traps", "--keywords", tmp / "k.txt", "--graph", tmp / "g.txt",
                             "--out", out]
    raise AssertionError(case)


CLI_CASES = ["explain, pickled scores.npz", "audit, manifest a tokenizer refuses", "audit, damaged .npy header",
             "audit, failures not UTF-8", "audit-lists, deeply nested JSON line", "import-lists, id map not UTF-8",
             "compare, results.json of another shape", "report, deeply nested results.json",
             "flagaudit, graph not UTF-8"]


@pytest.mark.parametrize("case", CLI_CASES)
def test_bad_files_through_the_command_line(world, tmp_path, case):
    """Exit status 2 and exactly one line on stderr, ``error: <file>: <problem>``; nothing written."""
    program, args = _cli_case(case, world, tmp_path)
    if program == "faceaudit":
        from faceaudit.cli import app
    else:
        from flagaudit.cli import app
    result = CliRunner().invoke(app, [str(a) for a in args])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
    assert not world["tripwire"].exists()


# ============ found in parsers other engineers own, and fixed by them (8f05bb6): their reproducers stay

@pytest.mark.parametrize("table", ['search = "x"', "enrol = 5"])
def test_reported_query_adapter_with_a_table_that_is_not_one(tmp_path, table):
    from faceaudit.blackbox.query import load_adapter
    text = (REPO / "docs" / "adapters" / "fixture-nist.toml").read_text()
    key = table.split(" ")[0]
    start = text.index(f"[{key}]")
    end = text.index("\n[", text.index(f"[{key}.body]"))  # the table and its body
    (tmp_path / "a.toml").write_text(table + "\n" + text[:start] + text[end + 1:])
    refuses(load_adapter, tmp_path / "a.toml")


@pytest.mark.parametrize("text", ["a = " + DEEP, "a = " + "1" * 5000])
def test_reported_adapter_toml_nested_deeply_or_with_a_huge_integer(tmp_path, text):
    from flagaudit.endpoint import load_flag_adapter
    (tmp_path / "a.toml").write_text((REPO / "docs" / "adapters" / "flagger-example.toml").read_text() + text + "\n")
    refuses(load_flag_adapter, tmp_path / "a.toml")


@pytest.mark.parametrize("case", ["score missing", "no columns", "case ids not UTF-8"])
def test_reported_read_flags_messages(tmp_path, case):
    from flagaudit.systems import read_flags
    if case == "score missing":  # printed as 'score is not a number: np.float64(nan)'
        path = tmp_path / "flags.csv"
        path.write_text("case_id,flagged,score\nc1,1\nc2,0,0.5\n")
    elif case == "no columns":  # printed as 'missing required column case_id (have: )'
        path = tmp_path / "flags.parquet"
        pd.DataFrame(index=range(3)).to_parquet(path)
    else:  # UnicodeDecodeError
        path = _parquet(tmp_path / "flags.parquet", {"case_id": pa.array([b"c1", b"\xff"], pa.binary()),
                                                     "flagged": pa.array([True, False])})
    refuses(read_flags, path, ["c1", "c2"])


def test_reported_report_of_a_results_json_of_another_shape(world):
    from faceaudit.cli import app
    folder = _results_copy(world)
    results = json.loads((folder / "results.json").read_text())
    results["input"] = []
    (folder / "results.json").write_text(json.dumps(results))
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 2 and result.stderr.startswith("error:"), result.output


@pytest.mark.parametrize("table", ["binary flagged", "case ids not UTF-8 as text", "list scores"])
def test_flags_file_cells_of_another_kind_are_one_line(tmp_path, table):
    """Found at 1,000 examples: bytes, invalid UTF-8 and list cells in a flags file."""
    from flagaudit.systems import read_flags
    cols = {
        "binary flagged": {"case_id": pa.array(["c1", "c2"]), "flagged": pa.array([b"\xff", b"1"], pa.binary())},
        "case ids not UTF-8 as text": {"case_id": pa.array([b"c1", b"\xff"], pa.binary()).view(pa.string()),
                                       "flagged": pa.array([True, False])},
        "list scores": {"case_id": pa.array(["c1", "c2"]), "flagged": pa.array([True, False]),
                        "score": pa.array([[1.0, float("nan")], [2.0]])},
    }[table]
    path = tmp_path / "flags.parquet"
    pq.write_table(pa.table(cols), path)
    refuses(read_flags, path, ["c1", "c2"])


def test_limits_key_with_a_control_character_is_one_line(tmp_path):
    from flagaudit.endpoint import load_flag_adapter
    text = (REPO / "docs" / "adapters" / "flagger-example.toml").read_text()
    text = text.replace("[limits]", '[limits]\n"a\\u001cb" = 1', 1) if "[limits]" in text else text + '\n[limits]\n"a\\u001cb" = 1\n'
    (tmp_path / "a.toml").write_text(text)
    refuses(load_flag_adapter, tmp_path / "a.toml")
