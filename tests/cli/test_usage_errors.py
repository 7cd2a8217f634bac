"""Usage errors (unknown option or command, a bad value, a missing argument) are one line on
stderr with exit code 2, from the installed entry point as a user meets them."""

from __future__ import annotations

import pytest
from cli_helpers import regions


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("verify", "--bogus"), "regions verify: error: No such option: --bogus (see --help)"),
        (("verify",), "regions verify: error: Missing argument 'FILE'. (see --help)"),
        (("nosuch",), "regions: error: No such command 'nosuch'. (see --help)"),
        # A bad value: the option and what it must be, without the validator's wording.
        (
            ("rag", "query", "w.yaml", "facts", "text", "-k", "0"),
            "regions rag query: error: --top must be at least 1 (see --help)",
        ),
        (
            ("verify", "--format", "xml", "x.yaml"),
            "regions verify: error: --format: 'xml' is not one of 'text', 'json', 'sarif', "
            "'github' (see --help)",
        ),
        (("step", "--layers", "0", "x.yaml"), "regions step: error: --layers must be at least 1"),
        (("gui", "--port", "70000"), "regions gui: error: --port must be at most 65535"),
        (
            ("rag", "delete", "x.yaml", "s", "--chunk", "one"),
            "regions rag delete: error: --chunk must be a whole number",
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
    for leak in ("Value error", "Input should", "Invalid value for"):
        assert leak not in done.stderr


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
