"""Keyword files' ``re:`` patterns run on RE2: linear time, and the same matches as Python's re.

A pattern such as ``^(\\w+\\s?)*$`` used to make flagaudit run for minutes on one ordinary post
(Python's re backtracks). ``re:`` patterns now run on RE2, rewritten so that every pattern matches
exactly the texts Python's re matched (word characters, word boundaries and case-insensitivity in
Python's Unicode sense, so accented Spanish and Portuguese words count as words). A construct RE2
cannot run (backreferences, lookaround, ...) is refused with one line naming the file's line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, shared_data
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import flagaudit
from auditcore.errors import InputError
from flagaudit.systems import KeywordFlagger

DEMO = REPO / "src" / "flagaudit" / "data" / "demo_keywords.txt"
SRC = Path(flagaudit.__file__).resolve().parents[1]  # the flagaudit under test, for subprocesses
CATASTROPHIC = [r"^(\w+\s?)*$", r"^(\w+\s?)+$"]


def compile_keyword_pattern(pattern: str):
    """The compiled form of ``re:PATTERN`` in a keyword file (what the flagger searches with)."""
    return KeywordFlagger.from_lines([f"re:{pattern}"], source="pattern").entries[0][1]


# ----------------------------------------------------------------------------- no more hangs

def test_catastrophic_patterns_finish_quickly_with_the_right_answer(tmp_path):
    """Python's re takes 2^n steps on these for an n-word text that does not end in a word; the
    subprocess would time out (it did: minutes for a 30-word text). RE2 answers at once."""
    kw = tmp_path / "kw.txt"
    kw.write_text("threshold: 1\n" + "".join(f"re:{p}\n" for p in CATASTROPHIC), encoding="utf-8")
    script = textwrap.dedent(f"""
        from flagaudit.systems import KeywordFlagger
        kw = KeywordFlagger.from_file({str(kw)!r})
        texts = ["word " * 5000 + "!", "a" * 100000 + "!", "ação " * 2000 + "?", "hola mundo", "niño pequeño ",
                 "deportación\\n", ""]
        print(kw.scores(texts).tolist())
    """)
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60, env=env)
    assert proc.returncode == 0, proc.stderr
    # the same answers Python's re gives where it can answer (short texts): both patterns match
    # whole texts made of words with single spaces (and a final newline), nothing else; the first
    # also matches the empty text
    assert proc.stdout.strip() == str([0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 1.0]), proc.stdout
    for p in CATASTROPHIC:
        for text, hit in [("hola mundo", True), ("niño pequeño ", True), ("deportación\n", True), ("", p.endswith("*$")),
                          ("word word !", False)]:
            assert (re.search(p, text, re.IGNORECASE) is not None) == hit


def test_catastrophic_keyword_file_through_the_cli(tmp_path):
    """The whole audit with those patterns finishes (flagaudit audit, benign-traps)."""
    kw = tmp_path / "kw.txt"
    kw.write_text("".join(f"re:{p}\n" for p in CATASTROPHIC) + "kill\n", encoding="utf-8")
    out = tmp_path / "res"
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.run([sys.executable, "-m", "flagaudit", "audit", "--suite", "benign-traps", "--keywords", kw,
                           "--out", out, "--n-boot", "50"], capture_output=True, text=True, check=False, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert (out / "results.json").is_file()


# ----------------------------------------------------------------------------- refused patterns

REFUSED = {
    r"(a)\1": "backreference",
    r"(?P<x>a)(?P=x)": "backreference",
    r"foo(?=bar)": "lookahead",
    r"foo(?!bar)": "negative lookahead",
    r"(?<=a)b": "lookahead or lookbehind",
    r"(?<!a)b": "negative lookahead or lookbehind",
    r"(a)?(?(1)b|c)": "conditional group",
    r"a{1001}": "RE2",
}
if sys.version_info >= (3, 11):
    REFUSED.update({r"a++b": "possessive", r"(?>ab)c": "atomic group"})


@pytest.mark.parametrize("pattern", list(REFUSED))
def test_pattern_re2_cannot_run_is_one_line_naming_the_line(tmp_path, pattern):
    kw = tmp_path / "kw.txt"
    kw.write_text(f"# my list\nkill\n[2] re:{pattern}\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        KeywordFlagger.from_file(kw)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{kw}: line 3: ") and REFUSED[pattern] in message and pattern in message, message


def test_refused_pattern_through_the_cli_is_one_stderr_line(tmp_path):
    kw = tmp_path / "kw.txt"
    kw.write_text("kill\nre:(a)\\1\n", encoding="utf-8")
    out = tmp_path / "res"
    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.run([sys.executable, "-m", "flagaudit", "audit", "--suite", "benign-traps", "--keywords", kw,
                           "--out", out], capture_output=True, text=True, check=False, timeout=300, env=env)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "line 2" in lines[0], proc.stderr
    assert not out.exists()


def test_python_syntax_errors_keep_their_message():
    with pytest.raises(InputError, match=r"line 1: regular expression does not compile \(missing \), unterminated"):
        KeywordFlagger.from_lines(["re:(unclosed"], source="k.txt")


# ----------------------------------------------------------------------------- the same matches

SAME = [
    (r"\bfight(ing)?\b", ["fight", "FIGHTING now", "fighter", "prizefight", "fighté", "éfight", "fight_", "a fight.\n"]),
    (r"\bdetain\w*|\bdetengan\b|\bdetención\b", ["detención", "DETENCIÓN!", "detenciónes", "la detención\n",
                                                 "detainees", "predetain", "detengan ya", "detenganlos"]),
    (r"\bárbol\b", ["árbol", "el árbol", "ÁRBOL", "xárbol", "árbolé", "árbol_", "árbol-"]),
    (r"\bódio\b", ["ódio", "Ódio aos", "o ódio", "códio", "ódios"]),
    (r"ção\b", ["ação", "AÇÃO!", "ações", "nação_"]),
    (r"\bniñ[oa]s?\b", ["niño", "NIÑAS", "niñera", "el niño."]),
    (r"\bmat[aá]r\b", ["matar", "matár", "MATÁR", "matarlo"]),
    (r"\w+ción\b", ["deportación", "ción", "x ción"]),
    (r"\bhate\b.*\bjews?\b", ["I hate jews", "hate-jews", "hatejews", "I hate all of the jews.", "hatred jews",
                              "hate jewsé", "hate é jew"]),
    (r"\bkill\b\W*\b(?:him|her|them)\b", ["kill him", "kill, them!", "killhim", "kill himself", "KILL HER"]),
    (r"\Bing\b", ["running", "ing", "king", "ing."]),
    (r"\bun\B", ["unhappy", "un", "un.", "fun"]),
    (r"[^\W\d_]{6,}", ["abcdef", "ñañañá", "12345678", "a_b_c_d_e_f", "ΣΊΣΥΦΟΣ"]),
    (r"\bistanbul\b", ["İstanbul", "istanbul", "ıstanbul", "ISTANBUL"]),
    (r"straße|\bſ", ["STRASSE", "Straße", "ſ", "S"]),
    (r"(?a)\bfight\b", ["fight", "éfight", "fighté"]),
    (r"(?m)^kill$", ["kill", "a\nkill\nb", "kill\n"]),
    (r"kill$", ["kill", "kill\n", "kill\n\n", "killer"]),
    (r"\b", ["", " ", "a", "é", "!"]),
    (r"\B", ["", " ", "a", "ab", "!!"]),
    (r"(?s)hate.*die", ["hate\ndie", "hate die", "HATE... DIE"]),
    (r"^\s*$", ["", "  ", "\u00a0\u2003", " x "]),
    (r"\d+", ["12", "٣", "x", "²"]),
]


@pytest.mark.parametrize("pattern, texts", SAME, ids=[p for p, _ in SAME])
def test_rewritten_pattern_matches_what_python_matches(pattern, texts):
    linear = compile_keyword_pattern(pattern)
    python = re.compile(pattern, re.IGNORECASE)
    for text in texts:
        assert (linear.search(text) is not None) == (python.search(text) is not None), (pattern, text)


def _suite_texts():
    from flagaudit.suites import load_suites

    names = ["benign-traps"]
    data = shared_data()
    if data is not None and (data / "hatecheck" / "test_suite_cases.csv").is_file():
        names += ["hatecheck", "mhc"]
    return load_suites(names, data)[0]["text"].tolist()


def test_bundled_and_test_keyword_lists_flag_exactly_as_before():
    """Figures must not change: every entry of the bundled demo list and of the lists the tests
    use gives, on every suite available offline, the same hits as Python's re gave."""
    texts = _suite_texts()
    lists = [DEMO.read_text(encoding="utf-8").splitlines(),
             ["kill", "[2] bomb", "shoot", "deport", "re:\\bfight\\w*", "burn", "storm", "jihad", "threshold: 1"],
             ["threshold: 1.5", "kill", "[0.5] ICE", "[0.5] re:\\bdeport\\w*", "cut their throats", "[2] bomb"]]
    for lines in lists:
        kw = KeywordFlagger.from_lines(lines, source="list")
        for pattern, compiled, _ in kw.entries:
            python = compiled if isinstance(compiled, re.Pattern) else re.compile(pattern, re.IGNORECASE)
            got = [compiled.search(t) is not None for t in texts]
            assert got == [python.search(t) is not None for t in texts], pattern


# random patterns and texts: the rewritten pattern agrees with Python's re on every text

ALPHABET = ["a", "b", "e", "é", "É", "ñ", "i", "İ", "ı", "s", "ſ", "k", "\u212a", "ç", "ã", " ", "\n", ".", "-", "_",
            "1", "٣", "ι", "\u0345", "Σ", "ς", "中", "!"]
ATOMS = ["a", "b", "é", "É", "ñ", "i", "İ", "s", "k", "ç", " ", "\\.", "-", "_", "1", "ι", "Σ", "中", ".", "\\w", "\\W",
         "\\d", "\\D", "\\s", "\\S", "[aé]", "[^a ]", "[a-z]", "[\\w-]", "[^\\W\\d]", "[\\W_]", "[^\\s]", "[İı]",
         "[à-ÿ]", "[^K]", "(?-i:K)", "(?-i:[a-z])", "(?-i:É\\w)"]
ANCHORS = ["\\b", "\\B", "^", "$", "\\A", "\\Z"]
QUANTIFIERS = ["", "", "", "?", "*", "+", "{0,2}", "{1,2}", "*?", "{2}"]


def _patterns():
    atom = st.one_of(st.sampled_from(ATOMS), st.sampled_from(ANCHORS))
    piece = st.tuples(atom, st.sampled_from(QUANTIFIERS)).map(
        lambda t: t[0] + t[1] if t[0] not in ANCHORS else t[0])
    seq = st.lists(piece, min_size=1, max_size=5).map("".join)
    group = st.one_of(seq, st.lists(seq, min_size=2, max_size=3).map(lambda alts: "(?:" + "|".join(alts) + ")"),
                      st.tuples(seq, st.sampled_from(QUANTIFIERS)).map(lambda t: f"(?:{t[0]}){t[1]}"))
    body = st.lists(group, min_size=1, max_size=3).map("".join)
    flags = st.sampled_from(["", "", "", "(?s)", "(?m)", "(?a)"])
    return st.tuples(flags, body).map("".join)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=_patterns(), texts=st.lists(st.text(st.sampled_from(ALPHABET), max_size=8), min_size=1, max_size=12))
def test_random_patterns_match_as_in_python(pattern, texts):
    pattern = pattern.strip()  # as a keyword file's line is read
    assume(pattern)
    try:
        python = re.compile(pattern, re.IGNORECASE)
    except re.error:
        assume(False)
    try:
        linear = compile_keyword_pattern(pattern)
    except InputError as exc:  # only constructs the docs name as refused
        assert "RE2" in str(exc), str(exc)
        assume(False)
    for text in texts:
        assert (linear.search(text) is not None) == (python.search(text) is not None), (pattern, text)
