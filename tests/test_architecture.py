"""The layout: the import contracts hold and catch a breach; the public API; the model registry
with its plug-ins; the command-line guard both auditors share."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))


def _lint(root: Path, src: Path, *contracts: str) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(src), "PATH": str(Path(sys.executable).parent)}
    only = [a for c in contracts for a in ("--contract", c)]
    return subprocess.run([LINT, "--no-cache", "--config", str(root / "pyproject.toml"), *only], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


needs_linter = pytest.mark.skipif(not Path(LINT).exists(), reason="import-linter is not installed ('.[test]')")


@needs_linter
def test_the_contracts_hold_on_this_tree():
    run = _lint(REPO, REPO / "src")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "0 broken" in run.stdout


@needs_linter
@pytest.mark.parametrize("where, line, contract", [
    # a metric reaching up to the orchestrator, and into the engine's implementation
    ("faceaudit/metrics/paired.py", "from faceaudit.audit import run_audit", "faceaudit-stages"),
    ("faceaudit/metrics/tail.py", "from faceaudit.engine.local import search", "metrics-read-counts"),
    # the data layer reaching up to the engine
    ("faceaudit/data/protocol.py", "from faceaudit.engine import counts", "faceaudit-stages"),
    # the report computing, inside a function (lazy imports count too)
    ("faceaudit/report/plots.py", "def f():\n    from faceaudit.metrics import identification", "report-reads-results"),
    # the shared core importing an auditor; the auditors importing each other
    ("auditcore/intervals.py", "import flagaudit.volume", "core-imports-neither-auditor"),
    ("flagaudit/volume.py", "from faceaudit.data import evalset", "auditors-independent"),
    ("flagaudit/suites/__init__.py", "from flagaudit import metrics", "flagaudit-stages"),
    # a cycle inside one folder (the adapters' old circle: base -> embed -> base)
    ("faceaudit/models/base.py", "from faceaudit.models import embed", "no-cycles"),
    # the hot loop used outside the engine
    ("faceaudit/blackbox/scale.py", "from faceaudit.engine import _kernel", "kernel-isolated"),
])
def test_a_breach_is_caught(tmp_path, where, line, contract):
    shutil.copytree(REPO / "src", tmp_path / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    before = _lint(tmp_path, tmp_path / "src", contract)
    assert before.returncode == 0 and "1 kept, 0 broken" in before.stdout, before.stdout + before.stderr
    with open(tmp_path / "src" / where, "a") as fh:
        fh.write("\n" + line + "\n")
    after = _lint(tmp_path, tmp_path / "src", contract)
    assert after.returncode != 0 and "0 kept, 1 broken" in after.stdout, after.stdout + after.stderr


def test_the_public_api_resolves_every_name_to_its_one_home():
    import faceaudit
    from auditcore.errors import InputError
    from faceaudit.analyses.explain import explain
    from faceaudit.audit import run_audit
    from faceaudit.models.registry import load_adapter

    assert faceaudit.InputError is InputError
    assert faceaudit.run_audit is run_audit and faceaudit.explain is explain and faceaudit.load_adapter is load_adapter
    for name in faceaudit.__all__:
        assert getattr(faceaudit, name) is not None, name
    with pytest.raises(AttributeError):
        faceaudit.no_such_name  # noqa: B018


def test_old_paths_are_gone():
    """One name for each thing: the pre-restructuring module paths no longer import."""
    for old in ("faceaudit.evalset", "faceaudit.engine.search", "faceaudit.counts", "faceaudit.errors",
                "faceaudit.outdir", "faceaudit.metrics.intervals", "faceaudit.cli_embed", "faceaudit.embed"):
        run = subprocess.run([sys.executable, "-c", f"import {old}"], capture_output=True, text=True)
        assert run.returncode != 0, old


def test_import_faceaudit_stays_cheap():
    """The public API is lazy: importing the package loads neither numba nor pandas."""
    code = "import sys, faceaudit; print(sorted(m for m in ('numba', 'pandas', 'pyarrow') if m in sys.modules))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "[]"


# ---------------------------------------------------------------- the model registry
def _plugin(tmp_path: Path, name: str, body: str) -> Path:
    """An installed package (a module and its dist-info) declaring ``name`` in faceaudit.models
    (its module is named after the test's folder: each test imports its own)."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    module = f"fake_plugin_{tmp_path.name.replace('-', '_')}"
    (site / f"{module}.py").write_text(textwrap.dedent(body))
    info = site / "fake_plugin-0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[faceaudit.models]\n{name} = {module}:Adapter\n")
    return site


PLUGIN = """
    import numpy as np
    from faceaudit.models.base import Box, ModelAdapter

    class Adapter(ModelAdapter):
        name = "fake"
        score = "neg_euclidean"

        def __init__(self, **options):
            self.version = "0.1"
            self.seen = options

        def detect(self, image):
            return [Box(0, 0, image.shape[1], image.shape[0])]

        def align(self, image, box):
            return image

        def embed(self, chip):
            return np.asarray(chip, np.float32).mean(axis=(0, 1))
"""


def test_builtin_models_and_an_unknown_name():
    from auditcore.errors import InputError
    from faceaudit.models import registry

    assert list(registry.BUILTIN) == ["dlib", "sface", "onnx"]
    assert registry.get("dlib").score == "neg_euclidean" and registry.get("sface").score == "cosine"
    with pytest.raises(InputError, match="unknown model 'resnet' \\(choose dlib, sface or onnx"):
        registry.get("resnet")
    opts = registry.options_for("sface", {"yunet_threshold": 0.8, "jitter": 3})
    assert opts == {"score_threshold": 0.8}
    assert registry.options_for("onnx", {"onnx_path": Path("m.onnx")})["onnx_path"] == "m.onnx"


def test_a_plugin_package_adds_a_model(tmp_path, monkeypatch):
    from faceaudit.models import registry

    monkeypatch.syspath_prepend(str(_plugin(tmp_path, "fakeface", PLUGIN)))
    assert "fakeface" in registry.models()
    entry = registry.get("fakeface")
    assert entry.score == "neg_euclidean" and "fake-plugin" in entry.source
    adapter = registry.load_adapter("fakeface", threshold=1)
    assert adapter.name == "fake" and adapter.seen == {"threshold": 1}


def test_a_plugin_cannot_take_a_builtin_name(tmp_path, monkeypatch):
    from faceaudit.models import registry
    from faceaudit.models.dlib_adapter import DlibAdapter

    monkeypatch.syspath_prepend(str(_plugin(tmp_path, "dlib", PLUGIN)))
    assert registry.get("dlib").adapter_class() is DlibAdapter
    assert registry.shadowed() == ["dlib"]


def test_a_broken_plugin_is_one_line(tmp_path, monkeypatch):
    from auditcore.errors import InputError
    from faceaudit.models import registry

    monkeypatch.syspath_prepend(str(_plugin(tmp_path, "broken", "raise ImportError('no weights here')\n")))
    with pytest.raises(InputError, match="model 'broken' .* cannot be loaded: ImportError: no weights here"):
        registry.get("broken")


def test_embed_uses_a_plugin_from_the_command_line(tmp_path):
    """``faceaudit embed --model NAME`` with a plug-in installed: enrols, and prints its score kind."""
    from PIL import Image

    site = _plugin(tmp_path, "fakeface", PLUGIN)
    for person in ("a", "b"):
        (tmp_path / "img" / person).mkdir(parents=True)
        for k in range(2):
            Image.new("RGB", (8, 8), (10 * k + (person == "b") * 100, 20, 30)).save(tmp_path / "img" / person / f"{k}.png")
    env = {"PYTHONPATH": f"{site}{':' + str(REPO / 'src')}", "PATH": str(Path(sys.executable).parent),
           "FACEAUDIT_CACHE": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-m", "faceaudit", "embed", str(tmp_path / "img"), "--model", "fakeface",
                          "--out", str(tmp_path / "es"), "--workers", "1", "--no-cache"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "enrolled 4 of 4 images" in run.stdout and "--score neg_euclidean" in run.stdout
    assert (tmp_path / "es" / "templates.npy").is_file()


# ---------------------------------------------------------------- the shared guard
def test_flagaudit_reports_a_bug_in_one_line_like_faceaudit(tmp_path, monkeypatch):
    """flagaudit's commands run inside the same guard: an internal error is one line, exit 1,
    with the traceback saved to the cache folder, never on the terminal."""
    code = textwrap.dedent("""
        import sys
        import flagaudit.audit
        def boom(*a, **k):
            raise RuntimeError("something impossible")
        flagaudit.audit.run_audit = boom
        from flagaudit.cli import main
        sys.argv = ["flagaudit", "demo", "--out", sys.argv[1]]
        main()
    """)
    env = {"PYTHONPATH": str(REPO / "src"), "FLAGAUDIT_CACHE": str(tmp_path / "cache"),
           "PATH": str(Path(sys.executable).parent)}
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "out")], capture_output=True, text=True,
                         env=env, timeout=300)
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 1 and len(lines) == 1, run.stderr
    assert "internal error" in lines[0] and "a bug in flagaudit" in lines[0] and "Traceback" not in run.stderr
    crash = list((tmp_path / "cache").iterdir())
    assert len(crash) == 1 and crash[0].name.startswith("flagaudit-crash-")
    assert "something impossible" in crash[0].read_text() and not (tmp_path / "out").exists()


def test_no_command_catches_input_error_itself():
    """Commands leave InputError to the guard: one place prints errors."""
    cli = REPO / "src" / "faceaudit" / "cli"
    for path in [*cli.glob("*.py"), REPO / "src" / "flagaudit" / "cli.py"]:
        text = path.read_text()
        assert "except InputError" not in text, path
        assert "Console(stderr=True)" not in text, path
