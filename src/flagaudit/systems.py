"""Systems under test: anything that turns a list of texts into flags (and optionally scores).

Each system returns a :class:`Flags`: ``flagged`` (bool per case) and ``score`` (float per case,
or None when the system gives none). A score ``>=`` the system's threshold is a flag.

* :class:`KeywordFlagger` (``--keywords FILE``): terms and regular expressions with optional
  weights and a threshold, the "broad criteria" kind. File format (UTF-8, one entry a line)::

      # comment lines and blank lines are ignored
      threshold: 2            # optional; default 1 (any single weight-1 match flags)
      kill                    # a term: case-insensitive, whole words (not inside another word)
      cut their throats       # a phrase is a term too
      [2] bomb                # optional weight in square brackets (default 1)
      [0.5] re:\\bdeport\\w*
      # re: takes the rest of its line as a Python regular expression (case-insensitive);
      # a '#' after a plain term starts a comment, after re: it is part of the pattern

  A case's score is the sum of the weights of the entries that match it (each entry counts once);
  it is flagged when ``score >= threshold``.
* :class:`SkopsModel` (``--model FILE.skops``): a scikit-learn pipeline saved with
  ``skops.io.dump``, loaded with ``skops.io.load`` after checking every type the file asks for
  (only scikit-learn, NumPy and SciPy types are trusted; never pickle). ``predict`` gives the
  flags; ``predict_proba`` (positive class) or ``decision_function`` gives the score.
* :func:`read_flags` (``--flags FILE``): flags a system already produced, CSV or Parquet with
  ``case_id``, ``flagged`` (1/0, true/false, yes/no) and optionally ``score``: every suite case
  exactly once, nothing else.
* HTTP endpoints (``--endpoint URL --adapter FILE``): :mod:`flagaudit.endpoint`, through the face
  audit's runner (:mod:`auditcore.http_runner`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from auditcore.errors import InputError


@dataclass
class Flags:
    flagged: np.ndarray            # bool, one per case
    score: np.ndarray | None       # float, one per case, or None
    threshold: float | None = None  # the system's own threshold on score, when known
    description: str = ""


_WEIGHT = re.compile(r"^\[\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*\]\s*(.*)$")
_THRESHOLD = re.compile(r"^threshold\s*:\s*(\S+)\s*$", re.IGNORECASE)


class KeywordFlagger:
    """Weighted terms and regular expressions (see the module docstring for the file format)."""

    def __init__(self, entries: list[tuple[str, re.Pattern, float]], threshold: float = 1.0, source: str = "") -> None:
        self.entries = entries
        self.threshold = float(threshold)
        self.source = source

    @classmethod
    def from_file(cls, path: str | Path) -> "KeywordFlagger":
        path = Path(path)
        if not path.is_file():
            raise InputError("keyword file not found", path)
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise InputError("keyword file is not UTF-8 text", path) from None
        return cls.from_lines(lines, source=str(path))

    @classmethod
    def from_lines(cls, lines, source: str = "<keywords>") -> "KeywordFlagger":
        entries, threshold = [], 1.0
        for no, raw in enumerate(lines, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not re.match(r"^(\[[^\]]*\]\s*)?re:", line):  # a '#' after a term or threshold starts a comment
                line = line.split(" #", 1)[0].strip()
            m = _THRESHOLD.match(line)
            if m:
                try:
                    threshold = float(m.group(1))
                except ValueError:
                    raise InputError(f"line {no}: threshold is not a number: {m.group(1)!r}", source) from None
                if not np.isfinite(threshold):
                    raise InputError(f"line {no}: threshold must be finite", source)
                continue
            weight = 1.0
            m = _WEIGHT.match(line)
            if m:
                weight, line = float(m.group(1)), m.group(2).strip()
            elif line.startswith("["):
                raise InputError(f"line {no}: a weight is a number in square brackets, e.g. [2] term", source)
            if line.startswith("re:"):
                pattern = line[3:].strip()
                try:
                    compiled = re.compile(pattern, re.IGNORECASE)
                except re.error as exc:
                    raise InputError(f"line {no}: regular expression does not compile ({exc}): {pattern}", source) from None
            else:
                term = line
                compiled = re.compile(r"(?<!\w)" + re.escape(term).replace(r"\ ", r"\s+") + r"(?!\w)", re.IGNORECASE)
                pattern = term
            if not pattern:
                raise InputError(f"line {no}: empty term", source)
            entries.append((pattern, compiled, weight))
        if not entries:
            raise InputError("keyword file lists no terms", source)
        return cls(entries, threshold, source)

    def scores(self, texts) -> np.ndarray:
        out = np.zeros(len(texts), dtype=np.float64)
        for _, compiled, weight in self.entries:
            hit = np.fromiter((compiled.search(t) is not None for t in texts), dtype=bool, count=len(texts))
            out += weight * hit
        return out

    def matches(self, text: str) -> list[str]:
        return [p for p, c, _ in self.entries if c.search(text)]

    def run(self, texts) -> Flags:
        s = self.scores(list(texts))
        return Flags(s >= self.threshold, s, self.threshold,
                     f"keyword flagger, {len(self.entries)} entries, threshold {self.threshold:g} ({self.source})")


# ------------------------------------------------------------------------------- skops model

TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.sparse.", "builtins.", "collections.")


def load_skops(path: str | Path, trusted_prefixes=TRUSTED_PREFIXES):
    """Load a skops file, trusting only types from scikit-learn, NumPy and SciPy sparse.

    Anything else the file asks for is refused with one line naming it (never unpickled).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("model file not found", path)
    try:
        import skops.io as sio
    except ImportError:
        raise InputError("reading a model needs skops: pip install 'faceaudit[flag-models]'", path) from None
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # a file that is not a skops archive: zip/json errors of many kinds
        raise InputError(f"not a skops model file ({exc.__class__.__name__}); save it with skops.io.dump", path) from None
    refused = [t for t in untrusted if not str(t).startswith(trusted_prefixes)]
    if refused:
        raise InputError(f"model asks for types outside scikit-learn/NumPy/SciPy, refused: {', '.join(refused[:5])}", path)
    try:
        return sio.load(path, trusted=list(untrusted))
    except Exception as exc:
        raise InputError(f"cannot load the model ({exc.__class__.__name__}: {exc})", path) from None


class SkopsModel:
    """A scikit-learn estimator/pipeline on raw texts; positive class = flagged."""

    def __init__(self, model, source: str = "") -> None:
        if not hasattr(model, "predict"):
            raise InputError("model has no predict()", source)
        self.model = model
        self.source = source

    @classmethod
    def from_file(cls, path: str | Path) -> "SkopsModel":
        return cls(load_skops(path), str(path))

    def _positive(self, labels) -> np.ndarray:
        labels = np.asarray(labels)
        if labels.dtype == bool:
            return labels
        if labels.dtype.kind in "iuf":
            return labels > 0 if labels.dtype.kind == "f" else labels == 1
        text = np.char.lower(labels.astype(str))
        return np.isin(text, ["1", "true", "flag", "flagged", "hateful", "threat", "positive", "yes"])

    def run(self, texts) -> Flags:
        texts = list(texts)
        n = len(texts)
        try:
            labels = np.asarray(self.model.predict(texts))
        except Exception as exc:
            raise InputError(f"model failed on the suite's texts ({exc.__class__.__name__}: {exc})", self.source) from None
        if labels.shape != (n,):
            raise InputError(f"model returned predictions of shape {labels.shape}, expected ({n},)", self.source)
        score, threshold = None, None
        if hasattr(self.model, "predict_proba"):
            proba = np.asarray(self.model.predict_proba(texts), dtype=float)
            if proba.ndim != 2 or proba.shape[0] != n or proba.shape[1] != 2:
                raise InputError(f"model returned probabilities of shape {proba.shape}, expected ({n}, 2)", self.source)
            score, threshold = proba[:, 1], 0.5
        elif hasattr(self.model, "decision_function"):
            dec = np.asarray(self.model.decision_function(texts), dtype=float)
            if dec.shape != (n,):
                raise InputError(f"model returned decision values of shape {dec.shape}, expected ({n},)", self.source)
            score, threshold = dec, 0.0
        return Flags(self._positive(labels), score, threshold, f"scikit-learn model ({self.source})")


# ------------------------------------------------------------------------------- flags import

_TRUE = {"1", "true", "t", "yes", "y", "1.0"}
_FALSE = {"0", "false", "f", "no", "n", "0.0"}


def read_flags(path: str | Path, case_ids) -> Flags:
    """Flags produced elsewhere for exactly the suite's cases, aligned with ``case_ids``."""
    path = Path(path)
    if not path.is_file():
        raise InputError("flags file not found", path)
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(path)
        else:
            df = pd.read_csv(path, dtype={"case_id": str, "flagged": str})
    except Exception as exc:
        raise InputError(f"cannot read flags file ({exc.__class__.__name__})", path) from None
    for col in ("case_id", "flagged"):
        if col not in df.columns:
            raise InputError(f"missing required column {col} (have: {', '.join(map(str, df.columns))})", path)
    ids = df["case_id"].astype(str).str.strip()
    dup = ids[ids.duplicated()]
    if len(dup):
        raise InputError(f"case {dup.iloc[0]} appears more than once (row {dup.index[0] + 2})", path)
    want = pd.Index(pd.Series(case_ids, dtype=str))
    extra = ids[~ids.isin(want)]
    if len(extra):
        raise InputError(f"{len(extra)} case id(s) not in the suite(s), first {extra.iloc[0]!r} (row {extra.index[0] + 2})", path)
    missing = want[~want.isin(ids)]
    if len(missing):
        raise InputError(f"{len(missing)} suite case(s) have no flag, first {missing[0]!r}", path)
    raw = df["flagged"]
    if raw.dtype == bool:
        flagged = raw.to_numpy()
    else:
        text = raw.astype(str).str.strip().str.lower()
        bad = ~(text.isin(_TRUE) | text.isin(_FALSE))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"row {i + 2}: flagged must be 1/0, true/false or yes/no, got {raw.iloc[i]!r}", path)
        flagged = text.isin(_TRUE).to_numpy()
    order = pd.Series(np.arange(len(ids)), index=ids.to_numpy()).loc[list(want)].to_numpy()
    score = None
    if "score" in df.columns:
        s = pd.to_numeric(df["score"], errors="coerce").to_numpy(dtype=float)
        if np.isnan(s).any():
            i = int(np.flatnonzero(np.isnan(s))[0])
            raise InputError(f"row {i + 2}: score is not a number: {df['score'].iloc[i]!r}", path)
        score = s[order]
    return Flags(flagged[order].astype(bool), score, None, f"flags imported from {path.name}")
