"""The docs' figures against the commands beside them (benchmarks/docs_figures.py), on the demo.

Runs ``faceaudit demo --out faceaudit-demo`` and the ``faceaudit claim faceaudit-demo ...`` lines
that docs/claims.md and README.md quote, and checks every quoted output line and figure. The LFW
figures (docs/demographics.md, docs/scale.md) need an evaluation set embedded from all of LFW
(about 12 minutes of dlib on 2 cores): they are listed as skipped here, with the reason, and run
with ``python benchmarks/docs_figures.py --lfw lfw-dlib --data ../shared/data``. The flagaudit demo's
figures are checked by the script without ``--only-cheap``.
"""

from __future__ import annotations

import io
import re

from conftest import REPO as ROOT
from conftest import load_benchmark


def _script():
    return load_benchmark("docs_figures")


df = _script()


def test_transcript_parsing_and_wildcards(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("text\n```\n$ faceaudit claim faceaudit-demo --fpir 1%\n- FPIR at most 1%: ... (4 errors)\n\n"
                   "$ faceaudit audit --templates t.npy --out r\n```\n$ not in a block\n")
    df.ROOT = tmp_path
    try:
        found = df.transcripts([doc])
    finally:
        df.ROOT = ROOT
    assert found == [("x.md", "faceaudit claim faceaudit-demo --fpir 1%", ["- FPIR at most 1%: ... (4 errors)"]),
                     ("x.md", "faceaudit audit --templates t.npy --out r", [])]
    assert df.cheap(found[0][1]) and not df.cheap(found[1][1])
    assert df._matches("- FPIR at most 1%: ... (4 errors)", ["- FPIR at most 1%: SUPPORTED, measured (4 errors)"])
    assert not df._matches("- FPIR at most 1%: ... (4 errors)", ["- FPIR at most 1%: SUPPORTED, measured (5 errors)"])
    assert not df._matches("- FPIR at most 1%", ["- FPIR at most 1% and more"])  # a whole line, not a prefix


class _FakeRun(df.Runner):
    """Commands answered from a dict: checks the comparison logic without running anything."""

    def __init__(self, outputs):
        self.outputs, self.seconds, self.lfw, self.data, self.flagaudit = outputs, {}, None, None, True

    def __call__(self, command):
        return self.outputs[command]


def test_a_changed_figure_is_reported(tmp_path):
    (tmp_path / "README.md").write_text("Try `faceaudit claim faceaudit-demo --threshold 0.4092`.\n")
    df.ROOT = tmp_path
    try:
        demo_now = "FPIR (target 0.001)   0.4100   0.10% (4/4,000)\n"
        checks = df.check_all(_FakeRun({df.FACE_DEMO: demo_now}), [tmp_path / "README.md"])
    finally:
        df.ROOT = ROOT
    (c,) = [c for c in checks if c.quote == "--threshold 0.4092"]
    assert (c.status, c.produced) == ("DIFFERS", "--threshold 0.4100")
    assert "DIFFERS" in df.table(checks)


def test_a_quote_gone_from_the_doc_is_reported(tmp_path):
    (tmp_path / "README.md").write_text("nothing quoted here\n")
    df.ROOT = tmp_path
    try:
        checks = df.check_all(_FakeRun({}), [tmp_path / "README.md"])
    finally:
        df.ROOT = ROOT
    statuses = [c.status for c in checks if c.doc == "README.md"]
    assert len(statuses) >= 3 and set(statuses) == {"NOT IN DOC"}


def test_docs_figures_on_the_demo(tmp_path):
    """Every cheap figure in the docs is what its command prints now; the LFW ones say why they skip."""
    run = df.Runner(tmp_path, flagaudit=False)
    checks = df.check_all(run)
    report = df.table(checks)
    ran = [c for c in checks if c.status != "SKIPPED"]
    assert len(ran) >= 12, report  # the claims.md transcripts and the demo figures
    assert all(c.status == "OK" for c in ran), report
    skipped = {c.note for c in checks if c.status == "SKIPPED"}
    assert skipped <= {"needs --lfw and --data", "needs --data (the LFW images)",
                       "flagaudit demo not run (--only-cheap)"}, skipped
    assert any(c.doc == "docs/demographics.md" for c in checks if c.status == "SKIPPED")


def test_progress_names_numba_compilation():
    """While numba compiles, the display says so and counts the kernels; then one 'done' line."""
    import numba
    from rich.console import Console

    from faceaudit.cli.progress import COMPILING, Phases

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=200)
    seen = []
    with Phases(console, enabled=True) as phases, phases.phase("searching", unit="probes") as update:
        @numba.njit(cache=False)
        def add(a, b):
            return a + b
        assert add(1, 2) == 3  # compiled now, never cached
        watch = phases._compiles
        seen.append((watch.compiled, [t.description for t in phases._progress.tasks]))
        update(10, 10)
        seen.append([t.description for t in phases._progress.tasks])
    assert seen[0][0] >= 1 and COMPILING in seen[0][1]
    assert COMPILING not in seen[1] and "searching (counts complete; computing the figures)" in seen[1]
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())
    assert "done compiling the engine's kernels: " in text and "done searching: 10 probes" in text
