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
      # re: takes the rest of its line as a regular expression in Python's syntax and meaning
      # (case-insensitive), run on RE2 in time linear in the text (see "re: patterns on RE2");
      # a '#' after a plain term starts a comment, after re: it is part of the pattern

  A case's score is the sum of the weights of the entries that match it (each entry counts once);
  it is flagged when ``score >= threshold``.
* :class:`SkopsModel` (``--model FILE.skops``): a scikit-learn classifier or pipeline saved with
  ``skops.io.dump``, loaded only if every node of the file is on an explicit allow-list of
  estimator classes, arrays, data types and plain containers (no function, call or
  FunctionTransformer; see "skops model"; never pickle), and refused if it is not a classifier.
  ``predict`` gives the flags; ``predict_proba`` (positive class) or ``decision_function`` gives
  the score.
* :func:`read_flags` (``--flags FILE``): flags a system already produced, CSV or Parquet with
  ``case_id``, ``flagged`` (1/0, true/false, yes/no) and optionally ``score``: every suite case
  exactly once, nothing else.
* HTTP endpoints (``--endpoint URL --adapter FILE``): :mod:`flagaudit.endpoint`, through the face
  audit's runner (:mod:`auditcore.http_runner`).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import io
import json
import re
import zipfile
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

    def __init__(self, entries: list[tuple[str, object, float]], threshold: float = 1.0, source: str = "") -> None:
        self.entries = entries  # (as written, compiled pattern with .search(text), weight)
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
                if not pattern:
                    raise InputError(f"line {no}: empty term", source)
                compiled = compile_keyword_pattern(pattern, f"line {no}", source)
            else:
                term = line
                # A term is escaped literals, runs of whitespace and two one-character lookarounds:
                # Python's re matches that in time linear in the text (no nested or ambiguous
                # repetition to backtrack into), so terms stay on Python's re and match exactly as
                # they always have.
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


# ------------------------------------------------------------------------------- re: patterns on RE2
#
# A keyword file is input, and a backtracking engine (Python's re) can take minutes on one post for
# a pattern as plain as ^(\w+\s?)*$. So re: patterns run on RE2, whose running time is linear in the
# text whatever the pattern. RE2 is not Python's re, though: its \w, \d, \s and \b are ASCII, its
# case folding and its $ differ, and it has no backreferences or lookaround. Rather than change what
# a keyword file matches, each pattern is parsed by Python's own parser (so it means what it always
# meant) and written out again for RE2, every character position as an explicit set:
#
# * \w, \W, \d, \D, \s, \S are the exact sets of code points Python's re puts in them (found by
#   running Python's re over every code point once), so accented letters, Arabic, Devanagari or
#   Chinese count as word characters as before; under (?a) they are ASCII, as in Python.
# * Case-insensitive matching (always on) follows Python's own rules (its per-character lowercase
#   and its extra equivalences such as i/ı/İ and s/ſ), spelled out as sets; RE2 folds nothing.
# * \b and \B (a Unicode word boundary needs a look at the character before, which RE2 cannot do)
#   are moved onto their neighbours: where the pattern fixes both sides the boundary is simply true
#   or false (\bfight(ing)?\b: a letter inside); where one side may or may not be a letter, that
#   side is narrowed (in \bhate\b.*\bjews?\b the .* must start and end with a non-letter, or be
#   absent); at the start or end of the whole pattern the character just outside the match is
#   matched instead ((?:\A|[^\w])fight(?:ing)?(?:[^\w]|\z)). That finds a match in exactly the
#   texts Python finds one in. A boundary next to a repeated group that may match nothing (e.g.
#   (\bfoo\b\s*)+) cannot be moved this way, and the pattern is refused with its line number.
# * $ without (?m) matches at the end or before a final newline, as in Python, when nothing follows
#   it; ^, \A, \Z and the (?m) anchors map one to one.
# * Backreferences, lookahead/lookbehind, conditional groups, possessive quantifiers and atomic groups
#   are refused with the line number; so are repetition counts above 1000 (RE2's limit).
#
# Only whether a pattern matches a text counts (a case's score is the sum of matching entries'
# weights), which is what lets a neighbour be matched instead of looked at.

try:  # Python's own parser of its regular expressions (the tree re.compile would compile)
    from re import _constants as _sre
    from re import _parser as _sre_parse
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _sre
    import sre_parse as _sre_parse

_MAXCHAR = 0x10FFFF
# next to a position: a word character, anything else, nothing of the pattern (the match may start or
# end there), or nothing of the pattern but inside a repetition (the neighbour cannot be matched there)
_W, _N, _FREE, _BLOCKED = "w", "n", "free", "blocked"
_NEVER = r"[^\x00-\x{10ffff}]"  # a class no character is in
_CATEGORY_NAMES = {
    _sre.CATEGORY_WORD: ("word", False), _sre.CATEGORY_NOT_WORD: ("word", True),
    _sre.CATEGORY_DIGIT: ("digit", False), _sre.CATEGORY_NOT_DIGIT: ("digit", True),
    _sre.CATEGORY_SPACE: ("space", False), _sre.CATEGORY_NOT_SPACE: ("space", True),
}
_UNSUPPORTED_OPS = {
    _sre.GROUPREF: "a backreference (\\1 or (?P=name))",
    _sre.GROUPREF_EXISTS: "a conditional group ((?(1)yes|no))",
    _sre.ASSERT: "a lookahead or lookbehind ((?=...), (?<=...))",
    _sre.ASSERT_NOT: "a negative lookahead or lookbehind ((?!...), (?<!...))",
}
for _name in ("POSSESSIVE_REPEAT", "ATOMIC_GROUP"):  # Python >= 3.11
    if hasattr(_sre, _name):
        _UNSUPPORTED_OPS[getattr(_sre, _name)] = "a possessive quantifier (*+, ++, ?+) or atomic group ((?>...))"
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Unsupported(Exception):
    """A pattern RE2 cannot run with the meaning Python's re gives it; the message says what."""


@functools.cache
def _category(name: str, ascii: bool) -> tuple[tuple[int, int], ...]:
    """The code points Python's re puts in \\w, \\d or \\s, as sorted ranges (found by running it)."""
    every = "".join(map(chr, range(_MAXCHAR + 1)))
    rx = re.compile({"word": r"\w+", "digit": r"\d+", "space": r"\s+"}[name], re.ASCII if ascii else 0)
    return tuple((m.start(), m.end() - 1) for m in rx.finditer(every))


def _merge(ranges) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _complement(ranges) -> list[tuple[int, int]]:
    out, nxt = [], 0
    for lo, hi in _merge(ranges):
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= _MAXCHAR:
        out.append((nxt, _MAXCHAR))
    return out


def _overlaps(a, b) -> bool:
    a, b, i, k = _merge(a), _merge(b), 0, 0
    while i < len(a) and k < len(b):
        if a[i][1] < b[k][0]:
            i += 1
        elif b[k][1] < a[i][0]:
            k += 1
        else:
            return True
    return False


def _category_ranges(category, ascii: bool) -> list[tuple[int, int]]:
    name, negated = _CATEGORY_NAMES[category]
    ranges = list(_category(name, ascii))
    return _complement(ranges) if negated else ranges


def _char(c: int) -> str:
    ch = chr(c)
    return ch if ch.isascii() and (ch.isalnum() or ch == "_") else f"\\x{{{c:x}}}"


def _class_body(ranges) -> str:
    """RE2 class items for ``ranges``, without the surrogates (not in any UTF-8 text)."""
    parts = []
    for lo, hi in _merge(ranges):
        for a, b in ((lo, min(hi, 0xD7FF)), (max(lo, 0xE000), hi)):
            if a <= b:
                parts.append(_char(a) if a == b else f"{_char(a)}-{_char(b)}")
    return "".join(parts)


class _NeedsOuter(Exception):
    """A word boundary's neighbour lies outside the part being rewritten (``after``: on its right)."""

    def __init__(self, after: bool) -> None:
        super().__init__("after" if after else "before")
        self.after = after


# The rewriter's own small tree: a pattern is a tuple of elements, each one of these.
@dataclass(frozen=True)
class _Set:  # one character out of ``ranges``: exactly the characters Python's re would accept there
    ranges: tuple


@dataclass(frozen=True)
class _Alt:
    alternatives: tuple  # of element tuples


@dataclass(frozen=True)
class _Rep:
    lo: int
    hi: int  # _sre.MAXREPEAT: no limit
    lazy: bool
    body: tuple


@dataclass(frozen=True)
class _At:  # zero-width: start, mstart, end, mend, dollar (Python's $), b/B (Unicode), ab/aB (ASCII)
    kind: str


@dataclass(frozen=True)
class _Edge:  # the character just outside the match (or the text's edge, counted as "n") is of ``kinds``
    side: str  # "before" or "after"
    kinds: frozenset


@dataclass(frozen=True)
class _Never:
    pass


class _Rewriter:
    """One pattern, parsed by Python, rewritten for RE2 (see the notes above).

    Word boundaries are removed one by one. A boundary whose two sides the pattern fixes is true or
    false. Otherwise the side that can be either is narrowed: the character next to it is limited
    to word (or non-word) characters, a repetition next to it is split into its first (last) round
    and the rest, an optional part into "present" and "absent", and at the start or end of the
    whole pattern the neighbour outside the match is matched instead (an ``_Edge``). Only whether a
    text has a match counts, which is what makes matching the neighbour allowed.
    """

    _BUDGET = 5_000  # rewriting steps before a pattern is called too tangled to rewrite

    def __init__(self, pattern: str) -> None:
        self.tree = _sre_parse.parse(pattern, re.IGNORECASE)
        self.steps = 0

    def rewrite(self) -> str:
        items = self._convert(self.tree, self.tree.state.flags)
        free = frozenset({_FREE})
        try:
            items = self._resolve(items, free, free)
        except _NeedsOuter:  # pragma: no cover - the whole pattern has free neighbours
            raise _Unsupported(_TANGLED) from None
        return self._emit(items)

    # -- Python's tree -> elements
    def _convert(self, items, flags) -> tuple:
        out = []
        for op, av in items:
            if op in _UNSUPPORTED_OPS:
                raise _Unsupported(_UNSUPPORTED_OPS[op])
            if op is _sre.LITERAL:
                out.append(_Set(_literal_ranges(av, flags)))
            elif op is _sre.NOT_LITERAL:
                out.append(_Set(tuple(_complement(_literal_ranges(av, flags)))))
            elif op is _sre.ANY:
                out.append(_Set(((0, _MAXCHAR),) if flags & re.DOTALL else ((0, 9), (11, _MAXCHAR))))
            elif op is _sre.IN:
                out.append(self._class(av, flags))
            elif op is _sre.BRANCH:
                out.append(_Alt(tuple(self._convert(alt, flags) for alt in av[1])))
            elif op is _sre.SUBPATTERN:  # a group only groups (captures do not matter); case is in each _Set
                out.extend(self._convert(av[3], (flags | av[1]) & ~av[2]))
            elif op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
                lo, hi, item = av
                out.append(_Rep(lo, hi, op is _sre.MIN_REPEAT, self._convert(item, flags)))
            elif op is _sre.AT:
                out.append(_At(self._anchor(av, flags)))
            else:  # pragma: no cover - the parser makes nothing else
                raise _Unsupported(f"an element RE2 cannot express ({op})")
        return tuple(out)

    @staticmethod
    def _class(items, flags) -> _Set:
        negate, cats, lits = False, [], []
        ascii = bool(flags & re.ASCII)
        for op, av in items:
            if op is _sre.NEGATE:
                negate = True
            elif op is _sre.LITERAL:
                lits.append((av, av))
            elif op is _sre.RANGE:
                lits.append(tuple(av))
            elif op is _sre.CATEGORY:
                cats.extend(_category_ranges(av, ascii))
            else:  # pragma: no cover - the parser puts nothing else in a class
                raise _Unsupported(f"a character class item RE2 cannot express ({op})")
        ranges = _class_ranges(lits, cats, flags)
        return _Set(tuple(_complement(ranges) if negate else ranges))

    @staticmethod
    def _anchor(code, flags) -> str:
        multiline, ascii = bool(flags & re.MULTILINE), bool(flags & re.ASCII)
        return {_sre.AT_BEGINNING: "mstart" if multiline else "start", _sre.AT_BEGINNING_STRING: "start",
                _sre.AT_END: "mend" if multiline else "dollar", _sre.AT_END_STRING: "end",
                _sre.AT_BOUNDARY: "ab" if ascii else "b", _sre.AT_NON_BOUNDARY: "aB" if ascii else "B"}[code]

    # -- what may be next to a position
    def _edge(self, items, first: bool) -> tuple[set, bool]:
        """Kinds of the first (last) character ``items`` can match, and whether it can match nothing."""
        kinds, nullable, _ = self._edge3(items, first)
        return kinds, nullable

    def _edge3(self, items, first: bool) -> tuple[set, bool, bool]:
        """As :meth:`_edge`, and whether a zero-width assertion may be passed on the way through."""
        kinds: set = set()
        saw = False
        for e in (items if first else reversed(items)):
            k, nullable, s = self._element_edge(e, first)
            kinds |= k
            saw |= s
            if not nullable:
                return kinds, False, saw
        return kinds, True, saw

    def _element_edge(self, e, first: bool) -> tuple[set, bool, bool]:
        if isinstance(e, _Set):
            return _set_kinds(e), False, False
        if isinstance(e, _Alt):
            parts = [self._edge3(a, first) for a in e.alternatives]
            return set().union(*(p[0] for p in parts)), any(p[1] for p in parts), any(p[2] for p in parts)
        if isinstance(e, _Rep):
            if e.hi == 0:
                return set(), True, False
            kinds, nullable, saw = self._edge3(e.body, first)
            return kinds, nullable or e.lo == 0, saw
        if isinstance(e, _At):  # ^ and \A fix what is before them, $ and \Z what is after
            if e.kind in (("end", "mend", "dollar") if first else ("start", "mstart")):
                return {_N}, False, False
            return set(), True, True
        if isinstance(e, _Edge):
            if e.side == ("after" if first else "before"):
                return set(e.kinds), False, False
            return set(), True, True
        return set(), False, False  # _Never

    def _beside(self, items, i, outer: frozenset, before: bool) -> frozenset:
        """What may be next to position ``i`` on one side. Reaching the free edge of the pattern
        past an assertion gives "blocked": a neighbour matched there would come after the assertion
        in RE2's pattern, one character off."""
        kinds, nullable, saw = self._edge3(items[:i] if before else items[i + 1:], first=not before)
        if not nullable:
            return frozenset(kinds)
        return frozenset(kinds) | (_blocked(outer) if saw else outer)

    # -- removing the word boundaries
    def _tick(self) -> None:
        self.steps += 1
        if self.steps > self._BUDGET:
            raise _Unsupported(_TANGLED)

    def _resolve(self, items, left: frozenset, right: frozenset) -> tuple:
        items = tuple(items)
        while True:
            i = next((k for k, e in enumerate(items) if isinstance(e, _At) and e.kind in ("b", "B")), None)
            if i is None:
                break
            self._tick()
            items = self._boundary(items, i, left, right)
        j = 0
        while j < len(items):
            e = items[j]
            try:
                if isinstance(e, _Alt):
                    lc, rc = self._beside(items, j, left, True), self._beside(items, j, right, False)
                    e = _Alt(tuple(self._resolve(a, lc, rc) for a in e.alternatives))
                elif isinstance(e, _Rep) and e.hi != 0:
                    lc, rc = self._beside(items, j, left, True), self._beside(items, j, right, False)
                    if e.hi == _sre.MAXREPEAT or e.hi > 1:  # later rounds sit next to earlier ones
                        lc = _blocked(lc) | frozenset(self._edge(e.body, first=False)[0])
                        rc = _blocked(rc) | frozenset(self._edge(e.body, first=True)[0])
                    try:
                        e = _Rep(e.lo, e.hi, e.lazy, self._resolve(e.body, lc, rc))
                    except _NeedsOuter:
                        raise _Unsupported(_TANGLED) from None
                elif isinstance(e, _At) and e.kind == "dollar" and (j + 1 < len(items) or right != {_FREE}):
                    raise _Unsupported("$ with more of the pattern after it (use \\Z, or (?m) for line ends)")
            except _NeedsOuter as need:
                # an alternative's boundary needs what follows (precedes) the alternation: move that
                # into each alternative and start again
                self._tick()
                if need.after and j + 1 < len(items):
                    items = items[:j] + (_Alt(tuple(a + items[j + 1:] for a in e.alternatives)),)
                elif not need.after and j > 0:
                    items = (_Alt(tuple(items[:j] + a for a in e.alternatives)),) + items[j + 1:]
                    j = 0
                else:
                    raise
                continue
            items = items[:j] + (e,) + items[j + 1:]
            j += 1
        return items

    def _boundary(self, items, i, left, right) -> tuple:
        """``items`` without the boundary at ``i``, its meaning moved onto its neighbours."""
        want = items[i].kind == "b"
        before, after = self._beside(items, i, left, True), self._beside(items, i, right, False)
        one = ({_W}, {_N})
        if before in one and after in one:
            return items[:i] + (() if (before != after) == want else (_Never(),)) + items[i + 1:]
        if before in one:  # the next character must be of the kind that makes (or avoids) a boundary
            need = {_N} if (before == {_W}) == want else {_W}
            return items[:i] + self._restrict(items[i + 1:], need, right, first=True)
        if after in one:
            need = {_N} if (after == {_W}) == want else {_W}
            return self._restrict(items[:i], need, left, first=False) + items[i + 1:]
        cases = [({_W}, {_N}), ({_N}, {_W})] if want else [({_W}, {_W}), ({_N}, {_N})]
        return (_Alt(tuple(self._restrict(items[:i], b, left, first=False) + self._restrict(items[i + 1:], a, right, first=True)
                           for b, a in cases)),)

    def _restrict(self, items, need: set, outer, first: bool) -> tuple:
        """``items`` with its first (last) character, or the one beyond it, limited to ``need``."""
        self._tick()
        items = tuple(items)
        if not items:
            if outer is None:  # pragma: no cover - only non-empty parts are passed without an outside
                raise AssertionError("restricting beyond a part that cannot be empty")
            if outer == {_FREE}:
                return (_Edge("after" if first else "before", frozenset(need)),)
            if outer <= {_W, _N}:
                if outer <= need:
                    return ()
                if not outer & need:
                    return (_Never(),)
            raise _NeedsOuter(first)
        e, rest = (items[0], items[1:]) if first else (items[-1], items[:-1])

        def join(new, others):
            return tuple(new) + tuple(others) if first else tuple(others) + tuple(new)

        if isinstance(e, _Set):
            return join((_narrow(e, need),), rest)
        if isinstance(e, _Never):
            return items
        if isinstance(e, _At):
            if e.kind in (("end", "mend", "dollar") if first else ("start", "mstart")):
                return items if _N in need else (_Never(),)  # a line end or the text's edge is there
            return join((e,), self._restrict(rest, need, outer, first))  # zero-width: look past it
        if isinstance(e, _Edge):
            if e.side == ("after" if first else "before"):
                return join((_Edge(e.side, e.kinds & frozenset(need)),), rest)
            return join((e,), self._restrict(rest, need, outer, first))
        if isinstance(e, _Alt):
            if not any(self._edge(a, first)[1] for a in e.alternatives):
                return join((_Alt(tuple(self._restrict(a, need, None, first) for a in e.alternatives)),), rest)
            return (_Alt(tuple(self._restrict(join(a, rest), need, outer, first) for a in e.alternatives)),)
        if isinstance(e, _Rep):
            if e.hi == 0:
                return self._restrict(rest, need, outer, first)
            if self._edge(e.body, first)[1]:
                raise _Unsupported(_TANGLED)
            one = self._restrict(e.body, need, None, first)
            hi = e.hi if e.hi == _sre.MAXREPEAT else e.hi - 1
            more = (_Rep(max(e.lo - 1, 0), hi, e.lazy, e.body),) if hi != 0 else ()
            taken = join(one, more)
            if e.lo >= 1:
                return join(taken, rest)
            return (_Alt((join(taken, rest), self._restrict(rest, need, outer, first))),)
        raise AssertionError(f"unknown element {e!r}")  # pragma: no cover

    # -- elements -> RE2 syntax
    def _emit(self, items) -> str:
        return "".join(self._emit_one(e) for e in items)

    def _emit_one(self, e) -> str:
        if isinstance(e, _Set):
            return _emit_set(e)
        if isinstance(e, _Alt):
            return "(?:" + "|".join(self._emit(a) for a in e.alternatives) + ")"
        if isinstance(e, _Rep):
            if e.hi == _sre.MAXREPEAT:
                quant = {0: "*", 1: "+"}.get(e.lo, f"{{{e.lo},}}")
            else:
                quant = "?" if (e.lo, e.hi) == (0, 1) else f"{{{e.lo}}}" if e.lo == e.hi else f"{{{e.lo},{e.hi}}}"
            return "(?:" + self._emit(e.body) + ")" + quant + ("?" if e.lazy else "")
        if isinstance(e, _At):
            return {"start": r"\A", "mstart": "(?m:^)", "end": r"\z", "mend": "(?m:$)", "dollar": r"\n?\z",
                    "ab": r"\b", "aB": r"\B"}[e.kind]
        if isinstance(e, _Edge):
            w = _emit_set(_Set(_category("word", False)))
            nw = _emit_set(_Set(tuple(_complement(_category("word", False)))))
            if e.kinds == {_W}:
                return w
            if e.kinds == {_N}:
                return rf"(?:\A|{nw})" if e.side == "before" else rf"(?:{nw}|\z)"
            return "" if e.kinds else _NEVER
        return _NEVER


_TANGLED = ("\\b or \\B in a place RE2 cannot check (next to a repeated optional part, or one that needs "
            "too many rewritings); put it next to a letter or a plain character")


def _blocked(kinds: frozenset) -> frozenset:
    """Inside a repetition a neighbour outside the match would be matched once per round: no."""
    return frozenset(_BLOCKED if k == _FREE else k for k in kinds)


def _intersect(a, b) -> list[tuple[int, int]]:
    return _complement(_complement(a) + _complement(b))


@functools.lru_cache(maxsize=2)
def _case_tables(ascii: bool):
    """Python's re's own case rules: its per-character lowercase, which characters it counts as
    cased, its extra equivalences (i/ı, s/ſ, µ/μ, ...) and, for speed, lowercase -> characters."""
    import _sre

    tolower = _sre.ascii_tolower if ascii else _sre.unicode_tolower
    iscased = _sre.ascii_iscased if ascii else _sre.unicode_iscased
    lower = np.fromiter((tolower(i) for i in range(_MAXCHAR + 1)), dtype=np.int32, count=_MAXCHAR + 1)
    if ascii:
        fixes = {}
    else:
        try:
            from re._casefix import _EXTRA_CASES as fixes
        except ImportError:  # pragma: no cover - Python 3.10
            from sre_compile import _ignorecase_fixes as fixes
    changed = np.flatnonzero(lower != np.arange(_MAXCHAR + 1))
    inverse: dict[int, list[int]] = {}
    for x in changed.tolist():
        inverse.setdefault(int(lower[x]), []).append(x)
    return lower, iscased, dict(fixes), inverse


def _ranges_of(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.view(np.int8), [0]))))
    return [(int(lo), int(hi) - 1) for lo, hi in zip(edges[::2], edges[1::2])]


def _mask_of(ranges) -> np.ndarray:
    mask = np.zeros(_MAXCHAR + 1, dtype=bool)
    for lo, hi in ranges:
        mask[lo:hi + 1] = True
    return mask


def _literal_ranges(c: int, flags) -> tuple:
    """What one character of a pattern matches in Python's re (IGNORECASE: by its own rules)."""
    if not flags & re.IGNORECASE:
        return ((c, c),)
    lower, iscased, fixes, inverse = _case_tables(bool(flags & re.ASCII))
    if not iscased(c):
        return ((c, c),)
    lows = {int(lower[c]), *fixes.get(int(lower[c]), ())}  # a character matches if its lowercase is one of these
    chars = {x for lo in lows for x in inverse.get(lo, [])} | {lo for lo in lows if lower[lo] == lo}
    return tuple(_merge((x, x) for x in chars))


def _class_ranges(lits, cats, flags) -> list[tuple[int, int]]:
    """What ``[...]`` (before any ^) matches in Python's re: under IGNORECASE with a cased member,
    a character matches if its lowercase is in the lowercased members or the categories."""
    if not flags & re.IGNORECASE:
        return _merge(lits + cats)
    lower, iscased, fixes, _ = _case_tables(bool(flags & re.ASCII))
    members = _mask_of(lits)
    if not any(iscased(x) for lo, hi in lits for x in range(lo, min(hi, 0xFFFF) + 1)) and \
            not any(hi > 0xFFFF for _, hi in lits):
        return _merge(lits + cats)  # nothing cased: Python matches the characters as they are
    lowered = np.zeros(_MAXCHAR + 1, dtype=bool)
    lowered[lower[members]] = True
    for lo, extra in fixes.items():
        if lowered[lo]:
            lowered[list(extra)] = True
    lowered |= _mask_of(cats)
    return _ranges_of(lowered[lower])


def _set_kinds(s: _Set) -> set:
    return set(_kinds_of(s.ranges))


@functools.lru_cache(maxsize=4096)
def _kinds_of(ranges: tuple) -> frozenset:
    word = _category("word", False)
    return frozenset(({_W} if _overlaps(ranges, word) else set()) | ({_N} if _overlaps(ranges, _non_word()) else set()))


@functools.lru_cache(maxsize=1)
def _non_word() -> tuple:
    return tuple(_complement(_category("word", False)))


def _narrow(s: _Set, need: set):
    """``s`` limited to word (``{"w"}``) or non-word (``{"n"}``) characters."""
    if need >= {_W, _N}:
        return s
    word = list(_category("word", False))
    ranges = _intersect(s.ranges, word if need == {_W} else _complement(word)) if need else []
    return _Set(tuple(ranges)) if ranges else _Never()


def _emit_set(s: _Set) -> str:
    body = _class_body(s.ranges)
    if not body:
        return _NEVER
    if len(s.ranges) == 1 and s.ranges[0][0] == s.ranges[0][1]:
        return _char(s.ranges[0][0])
    return f"[{body}]"


def to_re2(pattern: str) -> str:
    """``pattern`` (Python syntax, case-insensitive) as an RE2 pattern matching the same texts.

    Raises ``re.error`` if Python cannot compile it and ``_Unsupported`` if RE2 cannot run it.
    """
    re.compile(pattern, re.IGNORECASE)  # Python's own errors first, as they always were
    return _Rewriter(pattern).rewrite()


class LinearPattern:
    """A keyword file's ``re:`` pattern running on RE2 (time linear in the text); ``search`` as re's."""

    def __init__(self, pattern: str, re2_pattern: str, compiled, empty_match) -> None:
        self.pattern = pattern
        self.re2_pattern = re2_pattern
        self._compiled = compiled
        # Python's answer (a match or None) for the empty text, which it finds at once (nothing to
        # backtrack over); RE2's can differ there (\B never matches an empty text in Python)
        self._empty_match = empty_match

    def search(self, text: str):
        if not text:
            return self._empty_match
        try:
            return self._compiled.search(text)
        except UnicodeEncodeError:  # a lone surrogate (not UTF-8): as U+FFFD, also no letter
            return self._compiled.search(_SURROGATE.sub("\ufffd", text))

    def __repr__(self) -> str:
        return f"LinearPattern({self.pattern!r})"


def compile_keyword_pattern(pattern: str, where: str = "pattern", source: str | None = None) -> LinearPattern:
    """Compile a keyword file's ``re:`` pattern for RE2, or raise one :class:`InputError` line."""
    try:
        import re2
    except ImportError:  # pragma: no cover - a declared dependency
        raise InputError("keyword patterns (re:) need google-re2: pip install google-re2", source) from None
    try:
        rewritten = to_re2(pattern)
        empty_match = re.compile(pattern, re.IGNORECASE).search("")
    except re.error as exc:
        raise InputError(f"{where}: regular expression does not compile ({exc}): {pattern}", source) from None
    except _Unsupported as exc:
        raise InputError(f"{where}: pattern uses {exc}, which RE2 (the linear-time engine keyword patterns "
                         f"run on) does not support: {pattern}", source) from None
    except RecursionError:  # a pattern nested too deeply for Python's parser, or to rewrite
        raise InputError(f"{where}: pattern uses {_TANGLED}, which RE2 (the linear-time engine keyword patterns "
                         f"run on) does not support: {pattern}", source) from None
    options = re2.Options()
    options.log_errors = False  # RE2 would print to stderr; its error comes back as one line instead
    options.max_mem = 64 << 20
    try:
        compiled = re2.compile(rewritten, options)
    except re2.error as exc:
        reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise InputError(f"{where}: RE2 (the linear-time engine keyword patterns run on) cannot compile it "
                         f"({reason}): {pattern}", source) from None
    return LinearPattern(pattern, rewritten, compiled, empty_match)


# ------------------------------------------------------------------------------- skops model
#
# A skops file is a zip whose schema.json is a tree of nodes. Each node names a type or function
# (``__module__`` + ``__class__``) and how skops rebuilds it (``__loader__``); rebuilding imports the
# name and, for most loaders, calls it with data from the file (a list's "type" is called on the
# items, a dict's key types on the keys, a ConstructorFromReduceNode's name on any arguments). The
# names therefore decide what runs while the model loads, and what the model calls later in
# predict() (a FunctionTransformer calls whatever function it holds). Trusting name prefixes let in
# builtins.eval, exec, open, __import__ and getattr, every NumPy function and every scikit-learn one.
#
# flagaudit reads the tree itself before skops builds anything, and loads a file only if every node
# is one of the kinds below with one of the names below: estimator classes rebuilt without running
# their __init__, arrays, data types and plain containers. No node may be a function, a method, a
# call, a partial or an operator: no name in the file can ever be called on data from the file, and
# nothing the model holds is a callable beyond plain data types (str, numpy.float64, ...).

_CONTAINERS = {  # loader -> names; skops calls the name with the node's items (or nothing)
    "DictNode": {"builtins.dict", "collections.OrderedDict"},
    "ListNode": {"builtins.list"},
    "TupleNode": {"builtins.tuple"},
    "SetNode": {"builtins.set", "builtins.frozenset"},
    # the name of these is not used to rebuild them (json.loads, bytes, slice, dtype, ma.MaskedArray)
    "JsonNode": {"builtins.str", "builtins.int", "builtins.float", "builtins.bool", "builtins.NoneType"},
    "BytesNode": {"builtins.bytes"},
    "BytearrayNode": {"builtins.bytearray"},
    "SliceNode": {"builtins.slice"},
    "DTypeNode": {"numpy.dtype"},
    "MaskedArrayNode": {"numpy.ma.core.MaskedArray"},
    # RandomState() then set_state(state from the file): an estimator's random_state
    "RandomStateNode": {"numpy.random.mtrand.RandomState"},
}
# types a model may hold as values (e.g. a vectorizer's dtype, a dict's key types); calling one on
# data makes a number or a string
_DATA_TYPES = {"builtins.str", "builtins.int", "builtins.float", "builtins.bool", "builtins.complex",
               "builtins.bytes"}
# scikit-learn helpers that are not estimators but are held by estimators flagaudit accepts
_SKLEARN_HELPERS = ("sklearn.calibration._CalibratedClassifier",)
# the Cython loss objects SGDClassifier and others hold (skops' LossNode calls the class with
# numbers from the file, as pickle would)
_LOSSES = tuple(f"sklearn._loss._loss.{n}" for n in (
    "CyHalfSquaredError", "CyAbsoluteError", "CyPinballLoss", "CyHuberLoss", "CyHalfPoissonLoss", "CyHalfGammaLoss",
    "CyHalfTweedieLoss", "CyHalfTweedieLossIdentity", "CyHalfBinomialLoss", "CyExponentialLoss",
    "CyHalfMultinomialLoss")) + tuple(f"sklearn.linear_model._sgd_fast.{n}" for n in (
        "Hinge", "SquaredHinge", "ModifiedHuber", "Log", "SquaredLoss", "Huber", "EpsilonInsensitive",
        "SquaredEpsilonInsensitive"))
# classes that exist to call a function they hold: never loaded, whatever the function
_CALLS_FUNCTIONS = ("sklearn.preprocessing._function_transformer.FunctionTransformer",)
_SKLEARN_MODULE = re.compile(r"sklearn(\.[A-Za-z_][A-Za-z0-9_]*)*")
_NOT_MODELS = ("test", "_test", "conftest", "_mocking")  # module parts that hold no model classes


def _resolve(dotted: str):
    """The object ``dotted`` names, importing only its module (a name this file controls), or None."""
    module, _, name = dotted.rpartition(".")
    try:
        return vars(importlib.import_module(module)).get(name)
    except Exception:
        return None


@functools.lru_cache(maxsize=1)
def _allowed_names() -> dict[str, frozenset]:
    """Names by use, built from flagaudit's own lists (never from a file): NumPy's scalar types,
    SciPy's sparse matrix and array classes, scikit-learn's loss classes and helpers."""
    import scipy.sparse as sp

    scalars = {f"{t.__module__}.{t.__name__}" for t in set(np.sctypeDict.values()) if issubclass(t, np.generic)}
    sparse = {f"{c.__module__}.{c.__name__}" for c in vars(sp).values()
              if inspect.isclass(c) and issubclass(c, (sp.spmatrix, sp.sparray)) and c not in (sp.spmatrix, sp.sparray)}
    losses = {n for n in _LOSSES if inspect.isclass(_resolve(n))}
    helpers = {n for n in _SKLEARN_HELPERS if inspect.isclass(_resolve(n))}
    return {"scalars": frozenset(scalars), "sparse": frozenset(sparse), "losses": frozenset(losses),
            "helpers": frozenset(helpers)}


@functools.lru_cache(maxsize=4096)
def _is_estimator_class(dotted: str) -> bool:
    """Whether ``dotted`` is a scikit-learn estimator class flagaudit rebuilds: the name is resolved
    by importing its module (only ``sklearn.*`` modules, never tests) and must be a class derived
    from ``BaseEstimator``, not one that exists to call a function it holds."""
    from sklearn.base import BaseEstimator

    if dotted in _allowed_names()["helpers"]:
        return True
    module = dotted.rpartition(".")[0]
    if not _SKLEARN_MODULE.fullmatch(module) or any(p.startswith(_NOT_MODELS) for p in module.split(".")[1:]):
        return False
    cls = _resolve(dotted)
    if not (inspect.isclass(cls) and issubclass(cls, BaseEstimator)):
        return False
    return not any(issubclass(cls, bad) for bad in map(_resolve, _CALLS_FUNCTIONS) if inspect.isclass(bad))


def _node_allowed(loader: str, dotted: str) -> bool:
    names = _allowed_names()
    if loader in _CONTAINERS:
        return dotted in _CONTAINERS[loader]
    if loader == "ObjectNode":  # cls.__new__(cls), then the attributes from the file: no __init__ runs
        return _is_estimator_class(dotted)
    if loader == "NdArrayNode":  # np.load(allow_pickle=False); a scalar type is called on the array
        return dotted == "numpy.ndarray" or dotted in names["scalars"]
    if loader == "TypeNode":  # the type itself, as a value
        return dotted in _DATA_TYPES or dotted in names["scalars"]
    if loader == "SparseMatrixNode":  # scipy.sparse.load_npz, which never unpickles
        return dotted in names["sparse"]
    if loader == "LossNode":
        return dotted in names["losses"]
    # FunctionNode, MethodNode, PartialNode, OperatorFuncNode, ConstructorFromReduceNode (a call),
    # DefaultDictNode (its factory is called), RandomGeneratorNode (a class name hidden in its state),
    # TreeNode (raw node indices scikit-learn trusts, see skops' own note), CachedNode, anything new
    return False


def audit_skops_schema(schema) -> tuple[list[str], set[str]]:
    """(names flagaudit refuses, names it accepts) in a parsed schema.json, every node visited.

    Every dict holding ``__loader__`` anywhere in the tree is checked as a node, including ones
    skops would reach only through another node's content, so no node can be hidden from the check.
    Raises ``ValueError`` for a tree that is not a skops schema.
    """
    if not isinstance(schema, dict) or "__loader__" not in schema:
        raise ValueError("no skops node at the top")
    refused, accepted = set(), set()
    stack = [schema]
    while stack:
        obj = stack.pop()
        if isinstance(obj, dict):
            if "__loader__" in obj:
                loader, module, name = obj.get("__loader__"), obj.get("__module__"), obj.get("__class__")
                if not (isinstance(loader, str) and isinstance(module, str) and isinstance(name, str)):
                    raise ValueError("a node without a loader, module and class name")
                dotted = f"{module}.{name}"
                (accepted if _node_allowed(loader, dotted) else refused).add(dotted)
            stack.extend(obj.values())
        elif isinstance(obj, list):
            stack.extend(obj)
    return sorted(refused), accepted


def _one_line(exc: BaseException) -> str:
    return " ".join(f"{exc.__class__.__name__}: {exc}".split())


def load_skops(path: str | Path):
    """Load a skops file only if every node in it is one flagaudit trusts (see the notes above).

    Anything else is refused with one line naming the file and a few of the names it asked for,
    before skops builds anything; the bytes checked are the bytes loaded.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("model file not found", path)
    try:
        import skops.io as sio
    except ImportError:
        raise InputError("reading a model needs skops: pip install 'faceaudit[flag-models]'", path) from None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the model file ({exc.strerror})", path) from None
    not_skops = "not a skops model file ({}); save it with skops.io.dump"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            schema = json.loads(z.read("schema.json"))
        refused, accepted = audit_skops_schema(schema)
    except Exception as exc:  # zip, JSON and tree errors of many kinds
        raise InputError(not_skops.format(exc.__class__.__name__), path) from None
    if refused:
        more = f" and {len(refused) - 6} more" if len(refused) > 6 else ""
        raise InputError("model asks for types flagaudit never loads (it loads scikit-learn estimator classes, "
                         "NumPy/SciPy arrays and plain data only; no functions, calls or FunctionTransformer), "
                         f"refused: {', '.join(refused[:6])}{more}", path)
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise InputError(not_skops.format(exc.__class__.__name__), path) from None
    unexpected = sorted(set(map(str, untrusted)) - accepted)
    if unexpected:  # skops sees a name the tree walk did not (a name inside a node's state)
        raise InputError(f"model asks for types flagaudit never loads, refused: {', '.join(unexpected[:6])}", path)
    try:
        return sio.loads(data, trusted=list(untrusted))
    except Exception as exc:
        raise InputError(f"cannot load the model ({_one_line(exc)})", path) from None


def _require_classifier(model, source: str) -> None:
    """A flagger labels each text flag/no flag: a regressor's predict() gives numbers, and every
    positive number would count as a flag, so anything but a classifier is refused."""
    from sklearn.base import is_classifier, is_regressor
    from sklearn.pipeline import Pipeline

    final = model
    try:
        while isinstance(final, Pipeline):
            final = final.steps[-1][1]
        ok, regressor = is_classifier(final), is_regressor(final)
    except Exception as exc:
        raise InputError(f"cannot tell whether the model is a classifier ({_one_line(exc)})", source) from None
    if not ok:
        what = "a regressor" if regressor else "not a classifier"
        step = "the model" if final is model else "its final step"
        raise InputError(f"model is not a classifier ({step}, {type(final).__name__}, is {what}); flagaudit audits "
                         "classifiers, whose predict() gives a flag/no-flag label per text", source)


class SkopsModel:
    """A scikit-learn classifier (or a pipeline ending in one) on raw texts; positive class = flagged."""

    def __init__(self, model, source: str = "") -> None:
        if not hasattr(model, "predict"):
            raise InputError("model has no predict()", source)
        self.model = model
        self.source = source

    @classmethod
    def from_file(cls, path: str | Path) -> "SkopsModel":
        model = cls(load_skops(path), str(path))
        _require_classifier(model.model, str(path))
        return model

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
            raise InputError(f"model failed on the suite's texts ({_one_line(exc)})", self.source) from None
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
    try:
        return _read_flags(path, case_ids)
    except InputError:
        raise
    except (UnicodeDecodeError, TypeError, ValueError) as exc:
        # a column holding values a flags file never holds (bytes that are not text, lists): the
        # file's fault, one line
        raise InputError(f"cannot read flags file (a column holds values of another kind: {exc.__class__.__name__})",
                         path) from None


def _read_flags(path: str | Path, case_ids) -> Flags:
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
            have = ", ".join(str(c) if str(c).isprintable() else repr(str(c)) for c in df.columns)
            raise InputError(f"missing required column {col} ({'have: ' + have if have else 'the file has no columns'})",
                             path)
    try:
        ids = df["case_id"].astype(str).str.strip()
    except UnicodeDecodeError:
        raise InputError("case_id holds bytes that are not UTF-8 text", path) from None
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
            value = raw.iloc[i]
            shown = "it is empty" if pd.isna(value) else f"got {str(value)[:60]!r}"
            raise InputError(f"row {i + 2}: flagged must be 1/0, true/false or yes/no ({shown})", path)
        flagged = text.isin(_TRUE).to_numpy()
    order = pd.Series(np.arange(len(ids)), index=ids.to_numpy()).loc[list(want)].to_numpy()
    score = None
    if "score" in df.columns:
        s = pd.to_numeric(df["score"], errors="coerce").to_numpy(dtype=float)
        if np.isnan(s).any():
            i = int(np.flatnonzero(np.isnan(s))[0])
            value = df["score"].iloc[i]
            shown = "it is empty" if pd.isna(value) else f"got {str(value)[:60]!r}"
            raise InputError(f"row {i + 2}: score is not a number ({shown})", path)
        score = s[order]
    return Flags(flagged[order].astype(bool), score, None, f"flags imported from {path.name}")
