"""The benchmarks stay runnable as the code moves: every module imports, and the cheap ones run
at their smallest sizes (the figures themselves are for `python benchmarks/run.py`)."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
MODULES = sorted(path.stem for path in BENCHMARKS.glob("bench_*.py"))


@pytest.mark.parametrize("name", MODULES)
def test_every_benchmark_module_imports(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    module = importlib.import_module(name)
    assert callable(module.main)


def run_quick(name: str) -> subprocess.CompletedProcess[str]:
    """``python run.py --quick --only NAME`` in benchmarks/."""
    return subprocess.run(
        [sys.executable, "run.py", "--quick", "--only", name],
        cwd=BENCHMARKS,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_runs_benchmark_runs_at_its_smallest_size() -> None:
    done = run_quick("runs")
    assert done.returncode == 0, done.stderr
    assert "runs: 100 regions x 10 layers with the journal on" in done.stdout


def test_the_tools_benchmark_runs_at_its_smallest_size() -> None:
    done = run_quick("tools")
    # (exit 1 would only mean a ratio missed its target on a loaded machine: the figures are
    # for `python benchmarks/run.py`; here every row must be measured)
    assert done.returncode in (0, 1), done.stderr
    assert "tools: one command-tool call, cat" in done.stdout
    assert "tools: one command-tool call, a Python script" in done.stdout
    assert "tools: one MCP call, mcp-server-time get_current_time" in done.stdout
