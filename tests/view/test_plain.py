"""The plain view: one line per event off a terminal, then the output and the summary."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import view_events as sample

from regions_cli.engine.events import Event, MessageDelivered, StepFinished, TokenStreamed
from regions_cli.engine.message import Message
from regions_cli.view.plain import PlainView

Snapshot = Callable[[str, str], None]


def run_plain(events: list[Event]) -> str:
    out = io.StringIO()
    with PlainView(out) as view:
        for event in events:
            view(event)
        view.report()
    return out.getvalue()


def test_whole_run_matches_snapshot(snapshot: Snapshot) -> None:
    text = run_plain(sample.whole_run())
    snapshot("plain_run.txt", text)
    token_events = sum(isinstance(e, TokenStreamed) for e in sample.whole_run())
    event_lines = text.split("\n\n")[0].splitlines()
    assert len(event_lines) == len(sample.whole_run()) - token_events  # one line per event


def test_lines_are_written_as_events_arrive() -> None:
    out = io.StringIO()
    view = PlainView(out)
    view(sample.started())
    assert out.getvalue() == (
        "   0.000s run lookup: 2 layers, 3 regions, run file " + sample.RUN_FILE + "\n"
    )


def test_failed_step_shows_its_error_in_the_line_and_the_summary() -> None:
    failed = StepFinished(
        t=sample.T0 + 2,
        layer=1,
        chain="main",
        step=1,
        region="Historian",
        method="make_replies",
        outcome="timeout",
        duration=2.0,
        error="step timed out after 2.0s\nTraceback: never shown",
    )
    text = run_plain([*sample.first_half(), failed])
    assert (
        "   2.000s step answer/main#2 Historian.make_replies timeout 2.000s:"
        " step timed out after 2.0s (+1 line)\n" in text
    )
    assert (
        "failed     answer/main Historian.make_replies (timeout): step timed out after 2.0s\n"
        in text
    )
    # No run_finished came (the runner normally supplies one): the summary says so and is
    # built from the events instead.
    assert "\nstatus     unknown: the run did not report its end\n" in text
    assert "\nsteps      3 ok, 1 failed\n" in text and "\nwall time  2.000s\n" in text


def test_an_unknown_event_kind_still_gets_one_line() -> None:
    @dataclass(kw_only=True, slots=True)
    class BudgetWarning(Event):
        kind: ClassVar[str] = "budget_warning"
        used: int

    out = io.StringIO()
    view = PlainView(out)
    view(sample.started())
    view(BudgetWarning(t=sample.T0 + 1, used=90))
    assert out.getvalue().splitlines()[-1] == "   1.000s budget_warning {'used': 90}"


def test_control_characters_never_reach_the_log() -> None:
    hostile = Message("Facts", "user", "reply", "\x1b[2Jhi\x00 there\r\nline two\x1b[0m")
    text = run_plain([sample.started(), MessageDelivered(t=sample.T0, message=hostile)])
    assert "\x1b" not in text and "\x00" not in text and "\r" not in text
    assert "message Facts -> user reply: hi there (+1 line)" in text


def test_a_stdout_that_cannot_encode_everything_gets_question_marks() -> None:
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="ascii")
    with PlainView(out) as view:
        for event in sample.whole_run():
            view(event)
        view.report()
    out.flush()
    text = raw.getvalue().decode("ascii")
    assert "?? Historian -> user (reply)\nAda led the Zebras in 1848.\n" in text  # "──" -> "??"
    assert text.rstrip().endswith("run file   " + sample.RUN_FILE)
