"""The one way tests run the ``regions`` command.

``regions(*args)`` runs ``python -m regions_cli ARGS`` in a real process, as a user would, and
returns a :class:`Result` (exit code, stdout, stderr). ``in_process=True`` runs the same command
through typer's ``CliRunner`` instead: the same arguments and the same :class:`Result`, for the
large sets of parsing and validation cases where a process start per case would cost more than the
test. ``regions_argv`` is the argv for the tests that drive a live process themselves (signals,
stdin, reading lines as they come).

The environment is always this process's, with ``env`` laid over it: tests pass only the variables
they set (an API key, ``COLUMNS``).

Test modules import it (``from clirun import regions``): ``tests/`` is on ``sys.path`` because
``tests/conftest.py`` lives there. ``tests/conftest.py`` also offers it as the ``regions`` fixture.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from regions_cli.cli.app import app

TIMEOUT = 120  # seconds: a safety net for a broken build, never a wait for work


@dataclass(frozen=True)
class Result:
    """What one ``regions`` command did: its exit code and what it wrote."""

    code: int
    out: str
    err: str

    def __iter__(self) -> Iterator[int | str]:
        """``code, out, err = regions(...)``."""
        return iter((self.code, self.out, self.err))

    @property
    def lines(self) -> list[str]:
        """The lines of stdout."""
        return self.out.splitlines()


def regions_argv(*args: str | Path) -> list[str]:
    """The argv that runs ``regions ARGS`` with this interpreter (for ``subprocess.Popen``)."""
    return [sys.executable, "-m", "regions_cli", *map(str, args)]


def regions_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment with `env` laid over it (for ``subprocess.Popen``)."""
    return {**os.environ, **(env or {})}


def regions(
    *args: str | Path,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = TIMEOUT,
    in_process: bool = False,
) -> Result:
    """Run ``regions ARGS`` to its end and return what it did.

    In a real process by default; with `in_process`, through typer's ``CliRunner`` (`timeout` does
    not apply there, and an exception other than an exit propagates to the test instead of being
    turned into exit code 1, as a traceback in a real process would fail the test's checks).
    """
    if in_process:
        return _in_process([str(a) for a in args], cwd=cwd, env=env, stdin=stdin)
    done = subprocess.run(
        regions_argv(*args),
        capture_output=True,
        text=True,
        encoding="utf-8",
        input=stdin,
        timeout=timeout,
        env=regions_env(env),
        cwd=cwd,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def _in_process(
    args: list[str],
    *,
    cwd: Path | str | None,
    env: Mapping[str, str] | None,
    stdin: str | None,
) -> Result:
    with contextlib.chdir(cwd) if cwd is not None else contextlib.nullcontext():
        result = CliRunner().invoke(app, args, input=stdin, env=env, catch_exceptions=False)
    return Result(result.exit_code, result.stdout, result.stderr)
