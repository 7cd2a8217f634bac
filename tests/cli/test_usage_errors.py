"""Usage errors (unknown option or command, a bad value, a missing argument) are one line on
stderr with exit code 2, from the installed entry point as a user meets them."""

from __future__ import annotations

import subprocess
import sys

import pytest


def regions(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "regions_cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("verify", "--bogus"), "regions verify: error: No such option: --bogus (see --help)"),
        (("verify",), "regions verify: error: Missing argument 'FILE'. (see --help)"),
        (("nosuch",), "regions: error: No such command 'nosuch'. (see --help)"),
        (
            ("rag", "query", "w.yaml", "facts", "text", "-k", "0"),
            "regions rag query: error: Invalid value for '-k' / '--top': ",
        ),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(args: tuple[str, ...], expected: str) -> None:
    done = regions(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(expected)


def test_bare_regions_shows_the_help() -> None:
    done = regions()
    assert done.returncode == 2
    assert "Commands" in done.stdout + done.stderr and "verify" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_version_and_success_exit_0() -> None:
    done = regions("--version")
    assert (done.returncode, done.stdout.strip()) == (0, "regions " + _version())


def _version() -> str:
    from regions_cli import __version__

    return __version__
