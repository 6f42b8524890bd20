"""Build hook: the wheel carries the engine's kernels compiled for the machine that builds it.

Everything else about the package is in pyproject.toml. After setuptools has copied the package
into the build folder, ``python -m faceaudit.engine.precompile`` runs on that copy and numba
writes its cache beside ``faceaudit/engine/_kernel.py`` (``__pycache__``), which goes into the
wheel; so the first command after ``pip install .`` loads compiled kernels instead of compiling
them (about 10 CPU-seconds). numba keys its cache by CPU, numba version and source: on any other
machine the entries are ignored and the kernels compile on first use, as without this hook. If
compiling fails here (no numba in the build environment, an unusual platform), the build goes on
without the cache and says so. ``FACEAUDIT_NO_PRECOMPILE=1`` skips it; an editable install
(``pip install -e .``) never runs it (numba caches beside the source on first use).
"""

from __future__ import annotations

import os
import subprocess
import sys

from setuptools import setup
from setuptools.command.build_py import build_py


class build_py_with_kernels(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False) or os.environ.get("FACEAUDIT_NO_PRECOMPILE"):
            return
        env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_CACHE_DIR", "NUMBA_DISABLE_JIT")}
        # the built package first, then whatever this process sees (pip's isolated build environment
        # reaches the backend through its own path entries: numpy, numba and pandas are there)
        env["PYTHONPATH"] = os.pathsep.join([os.path.abspath(self.build_lib), *filter(None, sys.path)])
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        cmd = [sys.executable, "-m", "faceaudit.engine.precompile"]
        try:
            proc = subprocess.run(cmd, check=False, env=env, cwd=self.build_lib, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.SubprocessError) as e:
            print(f"faceaudit: kernels not compiled ahead of time ({e}); they compile on first use", file=sys.stderr)
            return
        if proc.returncode:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            print(f"faceaudit: kernels not compiled ahead of time ({tail[0]}); they compile on first use",
                  file=sys.stderr)
        else:
            print(proc.stdout.strip())


setup(cmdclass={"build_py": build_py_with_kernels})
