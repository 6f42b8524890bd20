"""Check that the figures quoted in README.md and docs/*.md are what the commands beside them print now.

    python benchmarks/docs_figures.py                  # the cheap checks: the demos and commands on them
    python benchmarks/docs_figures.py --lfw lfw-dlib/ --data ../shared/data   # also the LFW figures

Two kinds of check, one table (doc, quoted figure, command, produced value, OK / DIFFERS):

* **transcripts**: every line ``$ faceaudit ...`` or ``$ flagaudit ...`` in a fenced block of the
  docs whose command reads only the demos' folders is run, in a scratch folder where
  ``faceaudit demo --out faceaudit-demo`` and ``flagaudit demo --out flagaudit-demo`` ran first
  (the docs' own commands), and each output line quoted under it must be a line the command
  prints now (``...`` in a quoted line stands for any text);
* **figures**: the figures quoted in sentences and tables (``FIGURES`` below: where, the quoted
  text, the command shown beside it, and how the figure is read from what the command prints or
  writes). A quoted text that is no longer in the doc is reported as ``NOT IN DOC``, so the list
  cannot silently go stale.

The LFW checks need an evaluation set embedded from LFW with dlib (``faceaudit embed
LFW/images --out lfw-dlib``; the LFW images are public) and the folder holding ``lfw/`` (for the
labels); without ``--lfw`` they are listed as ``SKIPPED`` with the reason. Exit status 0 when every
check run is OK, 1 otherwise. ``--only-cheap`` also skips the flagaudit demo (the test uses it).
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

FACE_DEMO = "faceaudit demo --out faceaudit-demo"
FLAG_DEMO = "flagaudit demo --out flagaudit-demo"
EXPLAIN_DEMO = "faceaudit explain --results faceaudit-demo --score 0.38 --gallery-size 1000000 --prior 0.5"


# ---------------------------------------------------------------- running commands

class Runner:
    """Runs commands in one scratch folder, each at most once; the demos first, as the docs do."""

    def __init__(self, workdir: Path, *, lfw: Path | None = None, data: Path | None = None,
                 flagaudit: bool = True) -> None:
        self.workdir = workdir
        self.lfw, self.data, self.flagaudit = lfw, data, flagaudit
        self.outputs: dict[str, str] = {}
        self.seconds: dict[str, float] = {}
        if lfw is not None:  # the docs' commands name the folder lfw-dlib
            link = workdir / "lfw-dlib"
            if not link.exists():
                link.symlink_to(lfw.resolve())

    def needs(self, command: str) -> str | None:
        """Why ``command`` cannot run here, or None."""
        if "flagaudit-demo" in command or command.startswith("flagaudit"):
            return None if self.flagaudit else "flagaudit demo not run (--only-cheap)"
        if "four.csv" in command:
            return None if self.data is not None else "needs --data (the LFW images)"
        if "lfw" in command:
            return None if self.lfw is not None and self.data is not None else "needs --lfw and --data"
        return None

    def __call__(self, command: str) -> str:
        if command in self.outputs:
            return self.outputs[command]
        for first in (FACE_DEMO, FLAG_DEMO):
            if command != first and first.split()[0] in command and first.split()[-1] in command:
                self(first)
        env = dict(os.environ)  # this Python's console scripts first (a venv run without activating it)
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        if self.data is not None:
            env["FACEAUDIT_DATA"] = str(self.data.resolve())
        shell_command = command
        if self.data is not None:  # the docs write the user's copy as path/to/lfw
            shell_command = command.replace("path/to/lfw", str((self.data / "lfw").resolve()))
        started = time.perf_counter()
        done = subprocess.run(shell_command, shell=True, cwd=self.workdir, env=env, capture_output=True, text=True, check=False,
                              timeout=3600)
        self.seconds[command] = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"`{command}` exited {done.returncode}: {done.stderr.strip()[-400:]}")
        self.outputs[command] = done.stdout
        return done.stdout

    def results(self, folder: str) -> dict:
        return json.loads((self.workdir / folder / "results.json").read_text())


# ---------------------------------------------------------------- the checks

@dataclass
class Check:
    doc: str       # path relative to the repository
    quote: str     # the figure as the doc quotes it
    command: str   # the command the doc shows beside it
    produced: str | None = None
    status: str = ""
    note: str = ""


def _search(pattern: str, text: str, fmt: Callable[..., str] | None = None) -> str:
    m = re.search(pattern, text, re.MULTILINE)
    if m is None:  # the command printed something else: show its first line
        first = text.strip().splitlines()[0] if text.strip() else ""
        return f"<not in the quoted form; printed: {first[:120]}>"
    return fmt(*m.groups()) if fmt else m.group(1)


def _pct(x: float) -> str:
    return f"{x:.3g}"


def _op(results: dict, target: float) -> dict:
    return next(p for p in results["identification"]["operating_points"] if p["target_fpir"] == target)


def _groups(results: dict) -> dict[str, dict]:
    """Per demographic group (over every ``--group-by``): its FPIR counts, ``{"errors", "trials"}``."""
    rows: dict[str, dict] = {}
    for analysis in results.get("demographics", {}).get("analyses", []):
        for group, rate in analysis.get("rates", {}).get("fpir", {}).items():
            rows.setdefault(str(group), rate)
    return rows


LFW_LABELS = ("python -c \"import pandas as pd; from faceaudit.data.datasets.lfw_labels import merge_into_manifest; "
              "merge_into_manifest(pd.read_csv('lfw-dlib/manifest.csv', dtype=str), "
              "'path/to/lfw').to_csv('lfw-labelled.csv', index=False)\"")
LFW_DEMOGRAPHICS = (LFW_LABELS + " && faceaudit audit --templates lfw-dlib/templates.npy --manifest lfw-labelled.csv "
                    "--failures lfw-dlib/failures.csv --score neg_euclidean --group-by gender --group-by race "
                    "--caveat 'race=classifier output (Kumar et al. 2009 attribute classifiers, binarised), not "
                    "self-reported identity' --caveat 'gender=hand-checked labels of perceived gender (Afifi and "
                    "Abdelhamed 2017), not self-reported' --out lfw-demo/")
LFW_SCALE = "faceaudit audit --evalset lfw-dlib --score neg_euclidean --scale --out lfw-audit/"
LFW_EXPLAIN = "faceaudit explain --results lfw-audit --distance 0.35 --gallery-size 1e6 --prior 0.5"


FAST_DETECT = ("faceaudit embed four.csv --no-cache --out a/ && faceaudit embed four.csv --no-cache --fast-detect "
               "--out b/  (four.csv: the first image of each of the first four LFW people)")


COMPARE = ("python compare-example.py (docs/compare.md's Python block) && "
           "faceaudit audit --templates a.npy --manifest manifest.csv --seed 0 --group-by sex --out audit-a && "
           "faceaudit audit --templates b.npy --manifest manifest.csv --seed 0 --group-by sex --out audit-b && "
           "faceaudit compare audit-a audit-b --name A --name B --out compare-ab")


def compare_rows(run: Runner) -> dict[str, str]:
    """docs/compare.md's worked example: its table rows as the commands' summary sentences give them now."""
    doc = (ROOT / "docs" / "compare.md").read_text()
    block = re.search(r"```python\n(.*?)```", doc, re.DOTALL).group(1)
    (run.workdir / "compare-example.py").write_text(block)
    out = run(COMPARE.replace(" (docs/compare.md's Python block)", ""))
    rows = {}
    for sentence in out.splitlines():
        m = re.match(r"(At FPIR (\S+) |With no threshold).*? (\S+)% for A and (\S+)% for B: .*?95% CI of A - B: (\S+) to "
                     r"(\S+) points; McNemar exact (p [<=] [\d.]+) \((\d+) searches wrong only for A, (\d+) only for B\)"
                     r"(?:.*?(?:re-estimated in every resample \(|allowing for that the interval is )(\S+) to (\S+) points)?",
                     sentence)
        if not m:
            continue
        _, fpir, a, b, lo, hi, p, wa, wb, rlo, rhi = m.groups()
        label = f"FNIR rank 1 at FPIR {fpir}" if fpir else "mate not at rank 1, no threshold"
        re_est = f"[{rlo}, {rhi}]" if rlo else ""
        rows[label] = (f"| {label} | {a}% | {b}% | {float(a) - float(b):+.2f} [{lo}, {hi}] | {re_est} | "
                       f"{p} ({wa}, {wb}) |").replace("| +", "| ").replace("|  |", "| |")
    return rows


GUIDE_TABLE = ("flagaudit demo --out d && python -c \"... ['rates']['false_flag']['functionality']['groups'] ...\" "
               "(docs/flagaudit_suite_guide.md)")


def guide_row(run: Runner, test: str) -> str:
    """A row of the suite guide's per-test table, as the guide's command prints it (rounded to 0.1%)."""
    run(FLAG_DEMO)
    v = run.results("flagaudit-demo")["rates"]["false_flag"]["functionality"]["groups"].get(test)
    if v is None:
        return "<no such test>"
    def pct(x: float) -> str:  # 0.1% steps; a lower end below that keeps two digits (never "0.0%" for a nonzero count)
        x = 100 * x
        if x == 0 or x >= 0.05:
            return f"{x:.1f}"
        return f"{x:.{1 - math.floor(math.log10(x))}f}"
    p = [pct(v[k]) for k in ("value", "ci_low", "ci_high")]
    return f"| `{test}` | {v['errors']} / {v['trials']} | {v['templates']} | {p[0]}% [{p[1]}%, {p[2]}%] |"


def figures(run: Runner) -> list[tuple[Check, Callable[[], str]]]:
    """Each quoted figure with the function that reads it from its command now."""
    demo = lambda: run.results("faceaudit-demo")
    claim01 = "faceaudit claim faceaudit-demo --fpir 0.1% --threshold 0.4092"
    flag = lambda: run(FLAG_DEMO)
    lfw_demo = lambda: (run(LFW_DEMOGRAPHICS), run.results("lfw-demo"))[1]
    lfw_scale = lambda: (run(LFW_SCALE), run.results("lfw-audit"))[1]

    def group_fpir(name: str) -> Callable[[], str]:
        def read() -> str:
            row = _groups(lfw_demo()).get(name)
            return "<no such group>" if row is None else f"({row['errors']:,}/{row['trials']:,})"
        return read

    def fast_detect() -> str:
        images = (run.data / "lfw" / "images" if (run.data / "lfw").is_dir() else run.data / "images").resolve()
        # resolved: four.csv is read from the work folder, where a relative --data names nothing
        people = sorted(p for p in images.iterdir() if p.is_dir())[:4]
        rows = ["image,subject_id"] + [f"{min(p.iterdir())},{p.name}" for p in people]
        (run.workdir / "four.csv").write_text("\n".join(rows) + "\n")
        run("rm -rf a b && " + FAST_DETECT.split("  (")[0])
        import numpy as np
        d = np.abs(np.load(run.workdir / "a" / "templates.npy") - np.load(run.workdir / "b" / "templates.npy"))
        v = [f"{x:.4f}".rstrip("0").rstrip(".") if x else "0" for x in sorted(d.max(axis=1))]
        return ", ".join(v[:-1]) + " and " + v[-1]

    out = [
        # README: the demo's operating point for FPIR 0.1%, used in the claim example
        (Check("README.md", "--threshold 0.4092", FACE_DEMO),
         lambda: _search(r"^FPIR \(target 0\.001\)\s+(\S+)", run(FACE_DEMO), lambda t: f"--threshold {t}")),
        (Check("README.md", "1,011 templates, 1,808 cases", FLAG_DEMO),
         lambda: _search(r"/([\d,]+) benign cases, ([\d,]+) templates\)", flag(), lambda c, t: f"{t} templates, {c} cases")),
        # claims.md: the worked example's operating point
        (Check("docs/claims.md", "point for FPIR 0.1% is at threshold 0.4092", FACE_DEMO),
         lambda: _search(r"^FPIR \(target 0\.001\)\s+(\S+)", run(FACE_DEMO),
                         lambda t: f"point for FPIR 0.1% is at threshold {t}")),
        (Check("docs/claims.md", "4 of 4,000 non-mated searches", FACE_DEMO + "  (results.json)"),
         lambda: "{errors} of {trials:,} non-mated searches".format(**_op(demo(), 0.001)["fpir"])),
        (Check("docs/claims.md", "(95% interval 0.0273% to 0.256%)", claim01),
         lambda: _search(r"95% interval (\S+ to \S+),", run(claim01), lambda i: f"(95% interval {i})")),
        (Check("docs/claims.md", "--threshold 0.40919116139411926", FACE_DEMO + "  (results.json)"),
         lambda: f"--threshold {_op(demo(), 0.001)['threshold']!r}"),
        (Check("README.md", "About 0.8%, 95% interval 0.5% to 5.7%", EXPLAIN_DEMO),
         lambda: _search(r"= about (\S+) \(95% interval (\S+ to \S+?)\)", run(EXPLAIN_DEMO),
                         lambda p, i: f"About {p}, 95% interval {i}")),
        # scale.md: explain on the demo (the README's example)
        (Check("docs/scale.md", "about 0.8% (95% interval 0.5% to 5.7%", EXPLAIN_DEMO),
         lambda: _search(r"= (about \S+ \(95% interval \S+ to \S+?)\)", run(EXPLAIN_DEMO))),
        (Check("docs/scale.md", "about 4.66 people who are not the person", EXPLAIN_DEMO),
         lambda: _search(r"(about [\d.,]+ people who are not the person)", run(EXPLAIN_DEMO))),
        # flagaudit.md: the demo's figures (the suite grows; the doc says when they were written)
        (Check("docs/flagaudit.md", "1,808 benign cases from 1,011 templates", FLAG_DEMO),
         lambda: _search(r"/([\d,]+) benign cases, ([\d,]+) templates\)", flag(),
                         lambda c, t: f"{c} benign cases from {t} templates")),
        (Check("docs/flagaudit.md", "13.83% [10.93%, 16.78%]", FLAG_DEMO),
         lambda: _search(r"false-flag rate: (\S+ \[\S+ \S+\])", flag())),
        (Check("docs/flagaudit.md", "5 of 210 templates (2.4% [0.8%, 5.5%])", FLAG_DEMO),
         lambda: _search(r"place in (\d+ of [\d,]+ templates \(\S+ \[\S+ \S+\]\))", flag())),
        (Check("docs/flagaudit.md", "10,920-16,766 posts", FLAG_DEMO),
         lambda: _search(r"flag between ([\d,]+) and ([\d,]+) posts", flag(), lambda a, b: f"{a}-{b} posts")),
        (Check("docs/flagaudit.md", "every one of the 50,000 accounts", FLAG_DEMO),
         lambda: _search(r"name (?:[\d,]+ to )?([\d,]+) distinct accounts within two hops \(100% of \1",
                         flag(), lambda n: f"every one of the {n} accounts")),
        # LFW (dlib): demographics.md and scale.md
        (Check("docs/demographics.md", "835 enrolled", LFW_DEMOGRAPHICS),
         lambda: f"{lfw_demo()['protocol']['gallery_size']:,} enrolled"),
        (Check("docs/demographics.md", "threshold -0.4301", LFW_DEMOGRAPHICS),
         lambda: f"threshold {lfw_demo()['demographics']['threshold']:.4f}"),
        (Check("docs/embedding.md", "0, 0.0053, 0.0119 and 0.0145", FAST_DETECT), fast_detect),
    ]
    guide = ROOT / "docs" / "flagaudit_suite_guide.md"
    guide_rows = [ln.strip() for ln in (guide.read_text().splitlines() if guide.exists() else [])
                  if re.match(r"\| `bt_\w+` \| \d+ / \d+ \|", ln)]
    for quoted in guide_rows:
        test = quoted.split("`")[1]
        out.append((Check("docs/flagaudit_suite_guide.md", quoted, GUIDE_TABLE),
                    lambda test=test: guide_row(run, test)))
    compare_doc = (ROOT / "docs" / "compare.md").read_text() if (ROOT / "docs" / "compare.md").exists() else ""
    for label in ("FNIR rank 1 at FPIR 10%", "FNIR rank 1 at FPIR 1%", "FNIR rank 1 at FPIR 0.1%",
                  "mate not at rank 1, no threshold"):
        quoted = next((ln.strip() for ln in compare_doc.splitlines() if ln.startswith(f"| {label} |")), f"| {label} |")
        out.append((Check("docs/compare.md", quoted, COMPARE),
                    lambda label=label: compare_rows(run).get(label, "<not printed>")))
    for group, quoted in [("female", "(9/1,957)"), ("male", "(74/6,351)"), ("asian", "(65/525)"),
                          ("black", "(2/342)"), ("white", "(9/5,955)")]:
        out.append((Check("docs/demographics.md", quoted, LFW_DEMOGRAPHICS + f"  (group {group}, FPIR)"),
                    group_fpir(group)))
    out += [
        (Check("docs/scale.md", "835\nenrolled people, 8,314 non-mated searches", LFW_SCALE),
         lambda: "{gallery_size:,}\nenrolled people, {n_nonmated_probes:,} non-mated searches".format(
             **lfw_scale()["protocol"])),
        (Check("docs/scale.md", "the 95% interval (for new people of the same kind) runs from 6.1% to 99.9%", LFW_EXPLAIN),
         lambda: (run(LFW_SCALE), _search(r"the 95% interval runs from (\S+) to (\S+?),", run(LFW_EXPLAIN),
                                          lambda lo, hi: "the 95% interval (for new people of the same kind) runs "
                                                         f"from {lo} to {hi}"))[1]),
    ]
    out.append((Check("docs/scale.md", "agrees in **8 of 8 bins**", LFW_SCALE + "  (results.json)"),
                lambda: "agrees in **{bins_agreeing} of {n} bins**".format(
                    n=len(lfw_scale()["explain_calibration"]["bins"]), **lfw_scale()["explain_calibration"])))
    for target, quoted in [(0.1, "| -0.5090 (FPIR 10%)"), (0.01, "| -0.4301 (FPIR 1%)"),
                           (0.001, "| -0.3799 (FPIR 0.1%)")]:
        out.append((Check("docs/scale.md", quoted, LFW_SCALE),
                    lambda target=target, quoted=quoted: quoted.replace(
                        quoted.split()[1], f"{_op(lfw_scale(), target)['threshold']:.4f}")))
    return out


def _matches(expected: str, lines: list[str]) -> bool:
    norm = " ".join(expected.split())
    parts = [re.escape(p.strip()) for p in norm.split("...")]
    pattern = re.compile(r"\s*.*?\s*".join(parts))
    return any(pattern.fullmatch(" ".join(line.split())) for line in lines)


def transcripts(doc_paths: list[Path]) -> list[tuple[str, str, list[str]]]:
    """``(doc, command, quoted output lines)`` for each ``$ faceaudit|flagaudit`` line in a fenced block."""
    found = []
    for path in doc_paths:
        in_block, current = False, None
        for line in path.read_text().splitlines():
            if line.startswith("```"):
                in_block, current = not in_block, None
                continue
            if not in_block:
                continue
            if line.startswith("$ "):
                current = (str(path.relative_to(ROOT)), line[2:].strip(), [])
                found.append(current)
            elif current is not None and line.strip():
                current[2].append(line.strip())
    return found


def cheap(command: str) -> bool:
    """A command that reads only the demos' results folders."""
    words = command.split()
    return (words[0] in ("faceaudit", "flagaudit") and words[1] not in ("audit", "embed", "benchmark", "query")
            and any(w in ("faceaudit-demo", "flagaudit-demo") for w in words))


def check_all(run: Runner, doc_paths: list[Path] | None = None) -> list[Check]:
    doc_paths = doc_paths or DOCS
    texts = {str(p.relative_to(ROOT)): " ".join(p.read_text().split()) for p in doc_paths}
    checks: list[Check] = []
    for doc, command, quoted in transcripts(doc_paths):
        if not cheap(command):
            continue
        try:
            lines = run(command).splitlines()
        except (RuntimeError, OSError, KeyError, ValueError, StopIteration, subprocess.SubprocessError) as exc:  # a finding
            checks.append(Check(doc, command, command, f"<failed: {exc}>", "DIFFERS"))
            continue
        for q in quoted:
            ok = _matches(q, lines)
            close = difflib.get_close_matches(q, lines, n=1, cutoff=0.0)
            checks.append(Check(doc, q, command, q if ok else (close[0] if close else "<nothing printed>"),
                                "OK" if ok else "DIFFERS"))
    for check, read in figures(run):
        if check.doc not in texts:
            continue
        if " ".join(check.quote.split()) not in texts[check.doc]:
            check.status, check.note = "NOT IN DOC", "the quoted text is no longer in the doc: update FIGURES"
            checks.append(check)
            continue
        why = run.needs(check.command)
        if why:
            check.status, check.note = "SKIPPED", why
            checks.append(check)
            continue
        try:
            check.produced = read()
        except (RuntimeError, OSError, KeyError, ValueError, StopIteration, subprocess.SubprocessError) as exc:  # a finding
            check.produced = f"<failed: {exc}>"
        same = " ".join((check.produced or "").split()) == " ".join(check.quote.split())
        check.status = "OK" if same else "DIFFERS"
        checks.append(check)
    return checks


def table(checks: list[Check]) -> str:
    def cut(s: str, n: int) -> str:
        s = " ".join(str(s).split())
        return s if len(s) <= n else s[: n - 3] + "..."
    rows = [f"{'doc':<22} {'status':<10} {'quoted':<44} {'produced now':<44} command"]
    for c in checks:
        rows.append(f"{c.doc:<22} {c.status:<10} {cut(c.quote, 44):<44} {cut(c.produced or c.note, 44):<44} "
                    f"{cut(c.command, 70)}")
    counts = {s: sum(c.status == s for c in checks) for s in ("OK", "DIFFERS", "NOT IN DOC", "SKIPPED")}
    rows.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lfw", type=Path, help="an evaluation set from `faceaudit embed LFW/images --out lfw-dlib` (dlib)")
    ap.add_argument("--data", type=Path, help="the folder holding lfw/ (labels for the demographics figures)")
    ap.add_argument("--only-cheap", action="store_true", help="skip the flagaudit demo too")
    ap.add_argument("--workdir", type=Path, help="an empty scratch folder, kept (default: a temporary one)")
    ap.add_argument("--json", type=Path, help="also write the table as JSON here")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="docs-figures-") as tmp:
        workdir = a.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        if any(workdir.iterdir()):  # the docs' commands write fixed folder names and refuse to overwrite
            ap.error(f"--workdir {workdir} is not empty")
        run = Runner(workdir, lfw=a.lfw, data=a.data, flagaudit=not a.only_cheap)
        checks = check_all(run)
        print(table(checks))
        for command, seconds in run.seconds.items():
            print(f"ran in {seconds:.1f} s: {command[:100]}")
        if a.json:
            a.json.write_text(json.dumps([c.__dict__ for c in checks], indent=1))
    return 0 if all(c.status in ("OK", "SKIPPED") for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
