"""Import structure: each command loads only what its phase needs (docs/engine.md, "Start-up").

Checked on ``sys.modules`` in a fresh interpreter (never on time): ``import faceaudit`` loads no
third-party library; building the command line loads typer and rich but none of the libraries
a command needs later (numpy included); the library modules of the
audit's phases load what that phase uses and nothing of the report's drawing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("numpy", "pandas", "pyarrow", "scipy", "numba", "llvmlite", "matplotlib", "PIL", "sklearn", "cv2",
         "dask", "distributed", "networkx", "rich", "typer", "pydantic")


def loaded_after(statement: str) -> set[str]:
    """The heavy top-level packages in ``sys.modules`` after ``statement`` in a fresh interpreter."""
    code = (f"import sys, json\n{statement}\n"
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(HEAVY)!r}))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_import_faceaudit_loads_no_library():
    assert loaded_after("import faceaudit") == set()
    assert loaded_after("import auditcore") == set()


def test_command_line_loads_no_heavy_library():
    loaded = loaded_after("import faceaudit.cli")
    assert {"numpy", "pandas", "pyarrow", "scipy", "numba", "matplotlib", "PIL", "pydantic"} & loaded == set()
    assert {"typer", "rich"} <= loaded  # what building the app needs: the check itself can fail


def test_public_names_load_their_own_stage_only():
    # the engine's counts type is a numpy dataclass: no numba, no pandas
    assert {"numba", "pandas", "matplotlib"} & loaded_after("import faceaudit as fa; fa.SearchResult") == set()
    # the audit's library (engine, metrics, analyses) draws nothing
    loaded = loaded_after("import faceaudit.audit")
    assert "matplotlib" not in loaded and "PIL" not in loaded
    assert {"numpy", "numba", "pandas"} <= loaded


@pytest.mark.parametrize("module", ["faceaudit.report.html", "faceaudit.report"])
def test_report_loads_no_engine(module):
    assert {"numba", "llvmlite"} & loaded_after(f"import {module}") == set()


def test_reading_results_loads_no_table_library():
    # `faceaudit report` re-renders from results.json alone: no pandas, no pyarrow, no numba
    loaded = loaded_after("import faceaudit.data.results, faceaudit.data.reading")
    assert {"pandas", "pyarrow", "numba", "matplotlib"} & loaded == set()


def test_reading_a_parquet_still_loads_pandas(tmp_path):
    # the import moved into the function that needs it: reading a table still works
    code = ("import sys, pyarrow as pa, pyarrow.parquet as pq\n"
            f"pq.write_table(pa.table({{'a': [1, 2]}}), {str(tmp_path / 't.parquet')!r})\n"
            "from faceaudit.data.reading import read_parquet\n"
            f"frame = read_parquet({str(tmp_path / 't.parquet')!r}, 'a table', ['a'])\n"
            "assert list(frame['a']) == [1, 2]")
    assert "pandas" in loaded_after(code)


def test_a_display_that_watches_no_compilation_loads_no_numba():
    """`faceaudit report` in a terminal shows a phase but runs no kernel: its display does not
    import numba to listen for compilations; a display that does watch them loads it."""
    show = ("from rich.console import Console; from faceaudit.cli.progress import Phases\n"
            "c = Console(force_terminal=True, file=open('/dev/null', 'w'))\n"
            "with Phases(c, compiles={flag}) as p, p.phase('rendering report'):\n    pass")
    assert "numba" not in loaded_after(show.format(flag=False))
    assert "numba" in loaded_after(show.format(flag=True))
