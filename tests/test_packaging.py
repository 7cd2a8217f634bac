"""`pip install .` (a wheel, not the editable checkout) ships everything the package reads at
run time, and the installed CLI works outside the repository.

The wheel is built offline (``--no-build-isolation``: the setuptools of the dev extra) from a
copy of the package, so the checkout is left untouched.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from clirun import regions

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "regions_cli"


def _run(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("setuptools", minversion="70.1")  # bdist_wheel built in
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    shutil.copytree(PACKAGE, src / "regions_cli", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    built = _run(
        "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
        "-w", str(out), str(src),
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (path,) = out.glob("regions_cli-*.whl")
    return path


def test_the_wheel_ships_every_data_file(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    data = {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc")
    }
    assert "regions_cli/workflow/workflow.schema.json" in data
    assert "regions_cli/gui_dist/index.html" in data
    assert any(name.startswith("regions_cli/llm/prompts/") for name in data)
    assert data <= names, f"missing from the wheel: {sorted(data - names)}"
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "regions = regions_cli.cli.app:main" in text


def test_the_installed_cli_works_outside_the_repository(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    installed = _run(
        "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target),
        str(wheel),
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    example = elsewhere / "hello.yaml"
    shutil.copy2(ROOT / "workflows" / "hello.yaml", example)
    env = {**os.environ, "PYTHONPATH": str(target)}  # the wheel's copy wins over the checkout
    wheel_first = {"PYTHONPATH": str(target)}

    where = _run("-c", "import regions_cli; print(regions_cli.__file__)", cwd=elsewhere, env=env)
    assert Path(where.stdout.strip()).is_relative_to(target), where.stdout + where.stderr
    schema = regions("schema", cwd=elsewhere, env=wheel_first)
    assert schema.code == 0 and '"title": "regions workflow"' in schema.out
    verify = regions("verify", "hello.yaml", cwd=elsewhere, env=wheel_first)
    assert (verify.code, verify.out) == (0, "No problems found in 1 file.\n")
    prompts = _run(
        "-c",
        "from regions_cli.engine.prompts import default_template; "
        "print(default_template('make_replies'))",
        cwd=elsewhere,
        env=env,
    )
    assert prompts.returncode == 0 and "$question" in prompts.stdout, prompts.stderr
