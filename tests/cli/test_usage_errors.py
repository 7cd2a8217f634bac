"""Usage errors (unknown option or command, a bad value, a missing argument) are one line on
stderr with exit code 2, from the installed entry point as a user meets them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from clirun import Result

from regions_cli.cli.help import plain_usage_error

#: The ``regions`` fixture of tests/conftest.py: ``clirun.regions``.
Regions = Callable[..., Result]


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
def test_a_usage_error_is_one_line_and_exit_2(
    regions: Regions, args: tuple[str, ...], expected: str
) -> None:
    done = regions(*args)
    assert done.code == 2
    assert done.out == ""
    lines = done.err.splitlines()
    assert len(lines) == 1, done.err
    assert lines[0].startswith(expected)
    for leak in ("Value error", "Input should", "Invalid value for"):
        assert leak not in done.err


def test_bare_regions_shows_the_help(regions: Regions) -> None:
    done = regions()
    assert done.code == 2
    assert "Commands" in done.output and "verify" in done.output
    assert "Traceback" not in done.err


def test_version_and_success_exit_0(regions: Regions) -> None:
    done = regions("--version")
    assert (done.code, done.out.strip()) == (0, "regions " + _version())


def _version() -> str:
    from regions_cli import __version__

    return __version__


@pytest.mark.parametrize(
    ("message", "plain"),
    [
        # click's own wording (typer < 0.29)
        ("Invalid value for '--port': 70000 is not in the range 0<=x<=65535.",
         "--port must be at most 65535"),
        ("Invalid value for '--port': -1 is not in the range 0<=x<=65535.",
         "--port must be at least 0"),
        ("Invalid value for '-k' / '--top': 0 is not in the range x>=1.",
         "--top must be at least 1"),
        ("Invalid value for '--t': 0 is not in the range x>0.", "--t must be more than 0"),
        ("Invalid value for '--t': 3 is not in the range 1<x<3.", "--t must be less than 3"),
        ("Invalid value for '--n': 'abc' is not a valid integer.", "--n must be a whole number"),
        ("Invalid value for '--n': 'abc' is not a valid int.", "--n must be a whole number"),
        ("Invalid value for '--f': 'x' is not one of 'a', 'b'.", "--f: 'x' is not one of 'a', 'b'"),
        # pydantic's wording (typer 0.29)
        ("Invalid value for '--n': Input should be greater than or equal to 1",
         "--n must be at least 1"),
        ("Invalid value for '--f': Value error, 'x' is not one of 'a', 'b'.",
         "--f: 'x' is not one of 'a', 'b'"),
        ("No such option: --nope", "No such option: --nope"),
    ],
)  # fmt: skip
def test_validator_wording_reads_plainly(message: str, plain: str) -> None:
    assert plain_usage_error(message) == plain
