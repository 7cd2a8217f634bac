"""The one way tests run the ``regions`` command.

``regions(*args)`` runs ``python -m regions_cli ARGS`` in a real process, as a user would, and
returns a :class:`Result` (exit code, stdout, stderr). ``in_process=True`` runs the same command
through typer's ``CliRunner`` instead: the same arguments and the same :class:`Result`, for the
large sets of parsing and validation cases where a process start per case would cost more than the
test. ``regions_argv`` is the argv for the tests that drive a live process themselves (signals,
stdin, reading lines as they come).

The environment is this process's, with ``env`` laid over it: tests pass only the variables they
set (an API key, ``COLUMNS``); ``inherit_env=False`` gives the command ``env`` alone.

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

    @property
    def output(self) -> str:
        """Stdout, then stderr: for checks that do not mind which stream a line went to."""
        return self.out + self.err


def regions_argv(*args: str | Path) -> list[str]:
    """The argv that runs ``regions ARGS`` with this interpreter (for ``subprocess.Popen``)."""
    return [sys.executable, "-m", "regions_cli", *map(str, args)]


def regions_env(env: Mapping[str, str] | None = None, *, inherit: bool = True) -> dict[str, str]:
    """This process's environment with `env` laid over it (for ``subprocess.Popen``); with
    `inherit` false, `env` alone."""
    return {**(os.environ if inherit else {}), **(env or {})}


def regions(
    *args: str | Path,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float = TIMEOUT,
    inherit_env: bool = True,
    in_process: bool = False,
) -> Result:
    """Run ``regions ARGS`` to its end and return what it did.

    The process sees this process's environment with `env` laid over it; with `inherit_env`
    false, `env` alone (for the tests that must know every variable the command can see).

    In a real process by default; with `in_process`, through typer's ``CliRunner`` (`timeout` does
    not apply there, and an exception other than an exit propagates to the test instead of being
    turned into exit code 1, as a traceback in a real process would fail the test's checks).
    """
    if in_process:
        if not inherit_env:
            raise ValueError("in_process runs share this process's environment")
        return _in_process([str(a) for a in args], cwd=cwd, env=env, stdin=stdin)
    done = subprocess.run(
        regions_argv(*args),
        capture_output=True,
        encoding="utf-8",  # text mode, whatever the locale
        input=stdin,
        timeout=timeout,
        env=regions_env(env, inherit=inherit_env),
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
