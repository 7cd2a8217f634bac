"""The live view, rendered to a recording rich Console and compared with snapshots."""

from __future__ import annotations

import io
from collections.abc import Callable

import view_events as sample
from rich.console import Console

from regions_cli.engine.events import (
    Event,
    LayerFinished,
    LayerStarted,
    LLMCalled,
    MessageDelivered,
    RegionStatus,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
    TokenStreamed,
)
from regions_cli.engine.message import Message
from regions_cli.view.live import LiveView

Snapshot = Callable[[str, str], None]


def recording_console(width: int = 100, height: int = 30) -> Console:
    return Console(
        record=True,
        width=width,
        height=height,
        force_terminal=True,
        color_system=None,
        file=io.StringIO(),
    )


def feed(view: LiveView, events: list[Event]) -> None:
    for event in events:
        view(event)


def rendered(view: LiveView) -> str:
    view.console.print(view.render())
    return view.console.export_text(clear=True)


def test_mid_run_frame_matches_snapshot(snapshot: Snapshot) -> None:
    view = LiveView(recording_console(), clock=lambda: sample.T0 + 0.25)
    feed(view, sample.first_half())
    text = rendered(view)
    snapshot("live_mid_run.txt", text)
    # What the issue asks the frame to show, independent of the snapshot's exact layout:
    assert "layer 2/2 answer" in text  # the plan's progress
    assert "waiting for the LLM" not in text and "replying" in text  # Historian's state
    assert "Historian -> Facts" in text and "request" in text  # the feed of messages
    assert "Ada led the Zebras" in text  # tokens still streaming
    assert "0.250s" in text  # elapsed time from the injected clock


def test_final_frame_and_report_match_snapshot(snapshot: Snapshot) -> None:
    view = LiveView(recording_console(), clock=lambda: sample.T0 + 99)
    feed(view, sample.whole_run())
    view.console.print(view.render())
    view.report()
    text = view.console.export_text(clear=True)
    snapshot("live_final.txt", text)
    assert "0.304s" in text and "99" not in text  # a finished run shows its own duration
    assert "Ada led the Zebras in 1848.\n\nSource: Facts." in text  # the output in full


def test_every_region_state_is_shown(snapshot: Snapshot) -> None:
    start = RunStarted(
        t=sample.T0,
        run_id="r",
        workflow="states",
        workflow_hash="h",
        run_file=None,
        layers=[{"label": "only", "chains": {"c": ["A.make_replies"]}}],
        regions={name: "Region" for name in ("A", "B", "C", "D", "E")},
    )
    statuses = {"B": "waiting_llm", "C": "replying", "D": "done", "E": "failed"}
    events: list[Event] = [start]
    events += [RegionStatus(t=sample.T0, region=r, status=s) for r, s in statuses.items()]
    view = LiveView(recording_console(width=90, height=24), clock=lambda: sample.T0 + 1.5)
    feed(view, events)
    text = rendered(view)
    snapshot("live_states.txt", text)
    for label in ("idle", "waiting for the LLM", "replying", "done", "failed"):
        assert label in text


def test_many_regions_fit_the_terminal(snapshot: Snapshot) -> None:
    """A big workflow shows the active regions first and sums up the rest in one line."""
    names = [f"R{i:03d}" for i in range(200)]
    chains = {f"c{i}": [f"{names[i]}.make_replies"] for i in range(10)}
    events: list[Event] = [
        RunStarted(
            t=sample.T0,
            run_id="r",
            workflow="big",
            workflow_hash="h",
            run_file="big.db",
            layers=[{"label": "fan-out", "chains": chains}],
            regions=dict.fromkeys(names, "Region"),
        ),
        LayerStarted(t=sample.T0, layer=0, label="fan-out"),
    ]
    for i in range(10):
        region = names[i * 7]
        events.append(
            StepStarted(
                t=sample.T0, layer=0, chain=f"c{i}", step=0, region=region, method="make_replies"
            )
        )
        events.append(RegionStatus(t=sample.T0, region=region, status="waiting_llm"))
    height = 32
    view = LiveView(recording_console(width=100, height=height), clock=lambda: sample.T0)
    feed(view, events)
    text = rendered(view)
    snapshot("live_many_regions.txt", text)
    assert len(text.splitlines()) <= height
    assert "… 4 more chains" in text
    shown = [name for name in names if f"\n{name} " in text]
    assert {names[i * 7] for i in range(10)} <= set(shown)  # every active region is visible
    assert f"… {200 - len(shown)} more" in text


def test_model_output_cannot_drive_the_terminal() -> None:
    view = LiveView(recording_console(), clock=lambda: sample.T0)
    hostile = Message("Facts", "Historian", "reply", "\x1b[2J\x1b[31mred[/] [bold]x\x07")
    feed(view, [sample.started(), MessageDelivered(t=sample.T0, message=hostile)])
    view(TokenStreamed(t=sample.T0, region="Historian", text="\x1b]0;title\x07ok"))
    text = rendered(view)
    assert "\x1b" not in text and "\x07" not in text
    assert "red[/] [bold]x" in text  # shown literally, never read as rich markup


def test_live_refreshes_on_a_timer_not_per_event() -> None:
    """Events only update the state: the terminal is written by Live's timer, not by events."""
    out = io.StringIO()
    console = Console(file=out, width=100, height=30, force_terminal=True, color_system=None)
    view = LiveView(console, refresh_per_second=0.01, clock=lambda: sample.T0)
    with view:
        written = len(out.getvalue())  # Live draws once when it starts
        for _ in range(200):
            feed(view, sample.first_half())
        assert len(out.getvalue()) == written
    assert len(out.getvalue()) > written  # and once more when it stops: the final frame
    assert view.state.messages == 400


def test_live_context_leaves_the_final_frame_on_screen() -> None:
    console = recording_console()
    view = LiveView(console, refresh_per_second=0.01, clock=lambda: sample.T0)
    with view:
        feed(view, sample.whole_run())
    view.report()
    text = console.export_text()
    assert "regions run lookup  ok  0.304s" in text
    assert text.rstrip().endswith("run file   " + sample.RUN_FILE)


def test_a_narrow_terminal_crops_lines_instead_of_wrapping() -> None:
    wide = LiveView(recording_console(width=100), clock=lambda: sample.T0 + 0.25)
    narrow = LiveView(recording_console(width=40), clock=lambda: sample.T0 + 0.25)
    for view in (wide, narrow):
        feed(view, sample.first_half())
    wide_lines, narrow_lines = rendered(wide).splitlines(), rendered(narrow).splitlines()
    assert len(narrow_lines) == len(wide_lines)  # same rows: nothing wrapped
    assert max(len(line) for line in narrow_lines) <= 40
    assert "messages" in narrow_lines  # a short line is untouched
    assert any(line.endswith("…") for line in narrow_lines)  # long ones end in an ellipsis


def test_a_failed_run_shows_where_it_stopped(snapshot: Snapshot) -> None:
    timeout = StepFinished(
        t=sample.T0 + 2.2,
        layer=1,
        chain="main",
        step=1,
        region="Historian",
        method="make_replies",
        outcome="timeout",
        duration=2.0,
        error="timed out after 2.0 s",
    )
    end = [
        timeout,
        RegionStatus(t=sample.T0 + 2.2, region="Historian", status="failed"),
        LayerFinished(t=sample.T0 + 2.3, layer=1, label="answer", ok=False, duration=2.1),
        RunFinished(
            t=sample.T0 + 2.3,
            status="failed",
            exit_code=3,
            layers_run=2,
            steps_ok=3,
            steps_failed=1,
            messages=2,
            prompt_tokens=320,
            completion_tokens=30,
            duration=2.3,
            run_file=sample.RUN_FILE,
            llm_calls=2,
            cached_calls=0,
        ),
    ]
    view = LiveView(recording_console(), clock=lambda: sample.T0 + 5)
    feed(view, sample.first_half() + end)
    view.console.print(view.render())
    view.report()
    text = view.console.export_text()
    snapshot("live_failed.txt", text)
    assert "regions run lookup  failed  2.300s" in text
    assert "2/2 timeout" in text  # the chain's bar says how it ended
    assert "failed     answer/main Historian.make_replies (timeout): timed out after 2.0 s" in text
    assert "Ada led the Zebras" not in text  # a failed step's stream is gone, not output


def test_paused_frees_the_terminal_and_resumes_with_the_events_meanwhile() -> None:
    """`regions run --interactive` prompts inside `paused()`: nothing is drawn while it waits,
    and the view goes on afterwards with what arrived meanwhile."""
    out = io.StringIO()
    console = Console(file=out, width=100, height=30, force_terminal=True, color_system=None)
    view = LiveView(console, refresh_per_second=0.01, clock=lambda: sample.T0)
    with view:
        with view.paused():
            written = len(out.getvalue())
            out.write("prompt> ")  # what the prompt writes stays as it is
            feed(view, sample.first_half())
            assert out.getvalue()[written:] == "prompt> "
        assert "2 messages" in out.getvalue()[written:]  # drawn again, with the new events
    assert view.state.messages == 2
    with view.paused():  # outside the `with`: nothing to pause, no error
        pass


def test_answers_from_the_response_cache_are_marked() -> None:
    cached = [
        LLMCalled(
            t=sample.T0 + 0.2 + i / 100,
            region="Historian",
            llm="default",
            purpose="make_questions",
            prompt_tokens=0,
            completion_tokens=0,
            duration=0.001,
            cached=True,
        )
        for i in range(2)
    ]
    view = LiveView(recording_console(width=140), clock=lambda: sample.T0 + 1)
    feed(view, sample.first_half()[:3] + cached)
    view.console.print(view.render())
    text = view.console.export_text()
    (row,) = [line for line in text.splitlines() if line.lstrip().startswith("Historian")]
    assert "2 (2 cached)" in row and "cached" in row.split("2 (2 cached)")[1]
