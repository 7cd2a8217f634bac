"""Every command's help, as a user reads it: ``regions CMD --help`` (and ``-h``) in a real
process, for every command of the click tree behind `regions_cli.cli.app`.

A help page shows metavars (``FILE``, ``N``, ``NAME=URL``), never Python types (``<bool>``,
``<list[Path]>``, ``<int range>``), its brackets balance (no ``[[DIR]]``, ``{file}``), and each
command shows an example of its use.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from clirun import regions

from regions_cli.cli.app import app

#: What a Python type looks like on a help page.
PYTHON_TYPES = re.compile(
    r"<(bool|str|int|float|path|text|list|int range|float range)\b|list\[|\bPath\b|"
    r"\b(INTEGER|FLOAT|BOOLEAN)\b|\[x[<>]=|\bx>=|NoneType|typing\."
)
PAIRS = {")": "(", "]": "[", "}": "{"}
WIDTH = {"COLUMNS": "100"}


def commands(command: Any = None, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    command = command or typer.main.get_command(app)
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from commands(sub, (*path, name))


ALL = list(commands())


def balanced(text: str) -> bool:
    stack: list[str] = []
    for char in text:
        if char in "([{":
            stack.append(char)
        elif char in PAIRS and (not stack or stack.pop() != PAIRS[char]):
            return False
    return not stack


def test_the_tree_is_walked() -> None:
    assert {("run",), ("rag", "query"), ("cache", "clear"), ()} <= set(ALL)


@pytest.mark.parametrize("path", ALL, ids=lambda p: " ".join(p) or "regions")
def test_help_is_written_for_people(path: tuple[str, ...]) -> None:
    long = regions(*path, "--help", env=WIDTH)
    assert long.code == 0 and long.err == ""
    text = long.out
    assert text.startswith(f"Usage: {' '.join(('regions', *path))} [OPTIONS]")
    found = PYTHON_TYPES.search(text)
    assert found is None, f"a Python type on the help page: {found.group(0)!r}\n{text}"
    assert balanced(text), f"unbalanced brackets:\n{text}"
    assert "[[" not in text and "{FILE}" not in text and "{file}" not in text
    assert re.search(r"^  Examples?:\n\n    regions ", text, re.M), f"no example:\n{text}"
    # -h is --help.
    short = regions(*path, "-h", env=WIDTH)
    assert (short.code, short.out) == (0, text)


def test_run_help_lists_the_exit_codes() -> None:
    text = regions("run", "--help", env=WIDTH).out
    for code, meaning in [("0", "ran"), ("1", "invalid"), ("2", "usage"), ("3", "step failed")]:
        assert re.search(rf"^\s+{code}\s+.*{meaning}", text, re.M), code
    assert re.search(r"^\s+130\s+interrupted", text, re.M)
