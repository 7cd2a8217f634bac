"""Strings from a run file, a model or a server reach the terminal as text: never rich markup
(``[/x]`` crashed ``regions show``), never escape sequences (a window title, colours)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regions_cli.view.state import plain_text

NASTY = [
    "[/x] closes nothing",
    "[bold red]loud[/bold red] [link=http://127.0.0.1]click[/link]",
    "\x1b]0;PWNED TITLE\x07 sets the window title",
    "\x1b[31mred\x1b[0m and \x1b[2J clears the screen",
    "bell \x07 and backspace \x08 and C1 \x9b31m",
]


def regions(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "regions_cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200"},
        check=False,
    )


@pytest.fixture(scope="module")
def nasty_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run whose answers, errors and region names carry markup and escapes."""
    folder = tmp_path_factory.mktemp("nasty")
    reply = " | ".join(NASTY)
    (folder / "wf.yaml").write_text(
        "version: 1\nname: nasty\nllms:\n  default:\n    backend: scripted\n"
        "    rules:\n"
        f"      - {{match: 'second', error: {json.dumps(reply)}}}\n"
        f"    fallback: {json.dumps(reply)}\n"
        "regions:\n  A: {type: Region, task: Answer.}\n  B: {type: Region, task: Answer.}\n"
        "inject:\n"
        f"  - {{from: user, to: A, role: request, content: {json.dumps(NASTY[0])}}}\n"
        f"  - {{from: user, to: B, role: request, content: {json.dumps(NASTY[1] + ' second')}}}\n"
        "delivery: {undeliverable: drop}\n"
        "defaults: {on_failure: continue}\n"
        "plan: [{chains: {a: [A.make_replies], b: [B.make_replies]}}]\n",
        encoding="utf-8",
    )
    done = regions("run", "wf.yaml", "--run", "nasty.db", "--no-live", cwd=folder)
    assert done.returncode == 3, done.stderr  # B's model call fails with the nasty error
    return folder


def assert_safe(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    for char in ("\x1b", "\x07", "\x08", "\x9b"):
        assert char not in done.stdout and char not in done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("show", "nasty.db"),
        ("show", "nasty.db", "--region", "B"),
        ("replay", "nasty.db", "--no-live"),
        ("runs", "."),
    ],
    ids=["show", "show-region", "replay-plain", "runs"],
)
def test_commands_print_untrusted_text_as_text(nasty_run: Path, args: tuple[str, ...]) -> None:
    done = regions(*args, cwd=nasty_run)
    assert_safe(done)
    if args[0] != "runs":  # shown as written, not parsed
        assert "[/x] closes nothing" in done.stdout or "[bold red]loud[/bold red]" in done.stdout


def test_the_live_view_shows_untrusted_text_as_text(nasty_run: Path) -> None:
    """`regions replay` through the live view (forced onto a recorded terminal)."""
    code = (
        "import sys; from rich.console import Console; "
        "from regions_cli.runs.store import RunFile; "
        "from regions_cli.runs.codec import event_from_json; "
        "from regions_cli.view.live import LiveView; "
        "console = Console(file=sys.stdout, force_terminal=False, width=160, height=60); "
        "view = LiveView(console)\n"
        "with RunFile.open('nasty.db') as run:\n"
        "    events = [e for e in map(event_from_json, run.events()) if e]\n"
        "for e in events: view(e)\n"
        "console.print(view.render()); view.report()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=nasty_run, check=False
    )
    assert_safe(done)
    assert "[/x]" in done.stdout


@given(st.text(alphabet=st.sampled_from(list("[]/=ab \x1b\x07\x9b;0m\n\t")), max_size=60))
def test_plain_text_never_keeps_markup_meaning_or_control_characters(value: str) -> None:
    text = plain_text(value)
    assert not text.spans  # nothing was parsed as markup
    assert not any(c in text.plain for c in "\x1b\x07\x9b")
    assert (
        text.plain.replace("\t", "").replace("\n", "")
        == "".join(c for c in value if c not in "\x1b\x07\x9b\t\n").replace("\t", "")
        or "\x1b" in value
    )  # escapes drop their whole sequence
