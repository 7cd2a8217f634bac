"""How the views show a state machine: its path, state and visits, transitions, and a wait.

The events are hand-made (`view_events.machine_*`): a review loop ``draft -> review -> draft ->
review`` whose second review either waits for the critic or ends with its approval.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import view_events as sample
from rich.console import Console

from regions_cli.engine.events import (
    Event,
    LayerStarted,
    RunStarted,
    StateEntered,
    StepFinished,
    StepStarted,
    TransitionTaken,
)
from regions_cli.view.jsonl import JsonlView
from regions_cli.view.live import LiveView
from regions_cli.view.plain import PlainView
from regions_cli.view.quiet import QuietView
from regions_cli.view.report import STATUS_TEXT, report_lines
from regions_cli.view.state import RunState, StatePath

Snapshot = Callable[[str, str], None]

NEXT = [
    "regions inject --run loop-1 --to Critic 'your answer'",
    "regions run loop.yaml --resume loop-1",
]


def folded(events: list[Event]) -> RunState:
    state = RunState()
    for event in events:
        state.apply(event)
    return state


def test_the_state_follows_the_machine() -> None:
    state = folded(sample.machine_ends())
    assert state.is_machine
    assert state.path.text() == "draft → review → draft → review → end"
    assert state.visits == {"draft": 2, "review": 2}
    assert (state.current_state, state.visit, state.transitions) == ("review", 2, 4)
    assert state.last_transition is not None
    assert state.last_transition.reason == "Critic says /APPROVED/"
    assert state.waiting is None
    # positions 0..5 mapped onto the plan's three layers: each ran, none is left pending
    assert [layer.state for layer in state.layers] == ["ok", "ok", "ok"]
    assert [len(chain.done) for chain in state.layers[2].chains.values()] == [1]
    assert (state.steps_ok, state.messages, state.outputs) == (4, 4, [sample.APPROVAL])


def test_a_layer_run_again_starts_over_and_its_steps_land_on_the_plan_layer() -> None:
    events = sample.machine_two_visits()
    state = folded(events)
    write = state.layers[0]
    assert write.state == "ok"  # its second visit ended (position 3)
    # review was entered again: its layers from the first visit are pending once more
    assert [state.layers[1].state, state.layers[2].state] == ["pending", "pending"]
    assert len(state.layers[2].chains["c"].done) == 0
    # a step of position 5 (the judge layer, plan index 2) that fails is named by its label
    state.apply(LayerStarted(t=sample.T0 + 1, layer=5, label="judge", index=2))
    state.apply(
        StepStarted(t=sample.T0 + 1, layer=5, chain="c", step=0, region="Critic", method="m")
    )
    assert state.layers[2].chains["c"].current == "Critic.m"
    state.apply(
        StepFinished(
            t=sample.T0 + 2,
            layer=5,
            chain="c",
            step=0,
            region="Critic",
            method="m",
            outcome="failed",
            duration=1.0,
            error="boom",
        )
    )
    assert state.layers[2].chains["c"].failure == "failed"
    assert [(f.layer, f.chain) for f in state.failures] == [("judge", "c")]


def test_a_plain_plan_keeps_position_as_its_index_even_without_a_recorded_index() -> None:
    """Run files written before `LayerStarted.index` existed say index 0 for every layer."""
    state = folded(sample.first_half())
    assert not state.is_machine and not state.path
    assert state.current_layer == 1 and state.layers[0].state == "ok"


def test_a_resumed_machine_goes_on_in_the_state_of_its_first_layer() -> None:
    started = sample.machine_started()
    started.resumed_from_layer = 4  # a position: four layers ran in earlier invocations
    state = folded([started, LayerStarted(t=sample.T0, layer=4, label="wait-Critic", index=1)])
    assert [layer.state for layer in state.layers] == ["pending", "running", "pending"]
    assert (state.current_state, state.visit, state.path.text()) == ("review", 0, "review")
    out = io.StringIO()
    PlainView(out)(started)
    assert "3 layers in 2 states, 2 regions, resumed after 4 layers run" in out.getvalue()


def test_a_long_loop_keeps_its_path_small() -> None:
    state = folded([sample.machine_started()])
    for visit in range(1, 1001):
        for name in ("draft", "review"):
            state.apply(StateEntered(state=name, visit=visit, layer=0))
            state.apply(
                TransitionTaken(
                    state=name, visit=visit, to="x", rule=0, reason="always", transitions=visit
                )
            )
    text = state.path.text()
    assert text == (
        "draft → review → draft → review → … 1992 more … → draft → review → draft → review"
    )
    assert len(state.path.head) + len(state.path.tail) == 8 and state.path.count == 2000


def test_state_path_short_and_empty() -> None:
    path = StatePath(head=2, tail=2)
    assert not path and path.text() == ""
    for name in ("a", "b", "c", "d"):
        path.add(name)
    assert path.text() == "a → b → c → d"  # nothing left out: no "0 more"
    path.add("e")
    assert path.text() == "a → b → … 1 more … → d → e"


def test_plain_lines_of_a_machine_that_waits(snapshot: Snapshot) -> None:
    out = io.StringIO()
    with PlainView(out) as view:
        for event in sample.machine_waits():
            view(event)
        view.report(next_commands=NEXT)
    text = out.getvalue()
    snapshot("plain_machine_waiting.txt", text)
    assert "state review entered (visit 2)\n" in text
    assert "transition review -> draft: always\n" in text
    assert "layer 1/3 write started" in text and "layer 4/3" not in text  # plan index, not run
    assert "waiting for Critic: Approve the draft?\n" in text
    summary = text.split("Summary\n")[1]
    assert summary.splitlines()[:3] == [
        "status     waiting for input",
        "layers     4 run",
        "states     draft → review → draft → review (3 transitions)",
    ]
    assert summary.endswith(
        f"waiting    for Critic: Approve the draft?\ncontinue   {NEXT[0]}\n           {NEXT[1]}\n"
    )


def test_plain_lines_of_a_machine_that_ends(snapshot: Snapshot) -> None:
    out = io.StringIO()
    with PlainView(out) as view:
        for event in sample.machine_ends():
            view(event)
        view.report()
    text = out.getvalue()
    snapshot("plain_machine.txt", text)
    assert "transition review -> end: Critic says /APPROVED/\n" in text
    assert "states     draft → review → draft → review → end (4 transitions)" in text
    assert "waiting" not in text and "continue" not in text


def recording_console() -> Console:
    return Console(
        record=True,
        width=100,
        height=30,
        force_terminal=True,
        color_system=None,
        file=io.StringIO(),
    )


def test_live_view_shows_the_state_and_the_path(snapshot: Snapshot) -> None:
    view = LiveView(recording_console(), clock=lambda: sample.T0 + 0.5)
    events = sample.machine_ends()
    for event in events[: events.index(sample.machine_two_visits()[-1]) + 4]:
        view(event)  # up to the start of the judge layer in review's second visit
    view.console.print(view.render())
    mid = view.console.export_text(clear=True)
    for event in events[events.index(sample.machine_two_visits()[-1]) + 4 :]:
        view(event)
    view.console.print(view.render())
    view.report()
    text = mid + "\n" + view.console.export_text(clear=True)
    snapshot("live_machine.txt", text)
    header = mid.splitlines()[0]
    assert "state review (visit 2)" in header and "layer 2/2 judge" in header
    assert "path draft → review → draft → review  (3 transitions)" in mid
    assert "regions run loop  ok  0.290s" in text
    assert "path draft → review → draft → review → end  (4 transitions)" in text


def test_live_view_of_a_run_that_waits(snapshot: Snapshot) -> None:
    view = LiveView(recording_console(), clock=lambda: sample.T0 + 0.5)
    for event in sample.machine_waits():
        view(event)
    view.console.print(view.render())
    view.report(next_commands=NEXT)
    text = view.console.export_text()
    snapshot("live_machine_waiting.txt", text)
    assert "regions run loop  waiting for Critic  0.210s" in text
    assert "0/2 waiting for Critic" in text
    assert "status     waiting for input" in text and f"continue   {NEXT[0]}" in text


def test_quiet_view_says_what_to_do_at_a_wait_and_no_error() -> None:
    out, err = io.StringIO(), io.StringIO()
    with QuietView(out, err) as view:
        for event in sample.machine_waits():
            view(event)
        view.report(next_commands=NEXT)
    assert out.getvalue() == ""  # no output message yet
    assert err.getvalue() == (f"waiting for Critic: Approve the draft?\n  {NEXT[0]}\n  {NEXT[1]}\n")
    assert "error" not in err.getvalue()


def test_quiet_view_of_a_machine_that_ends_writes_its_output_only() -> None:
    out, err = io.StringIO(), io.StringIO()
    with QuietView(out, err) as view:
        for event in sample.machine_ends():
            view(event)
        view.report()
    assert (out.getvalue(), err.getvalue()) == ("APPROVED: Rain on the tin roof.\n", "")


def test_json_lines_carry_the_state_transition_and_wait_events() -> None:
    out = io.StringIO()
    with JsonlView(out) as view:
        for event in sample.machine_waits():
            view(event)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == len(sample.machine_waits())
    entered = [(d["state"], d["visit"], d["layer"]) for d in lines if d["kind"] == "state_entered"]
    assert entered == [("draft", 1, 0), ("review", 1, 1), ("draft", 2, 3), ("review", 2, 4)]
    transition = next(d for d in lines if d["kind"] == "transition")
    assert transition == {
        "kind": "transition",
        "t": sample.T0 + 0.05,
        "state": "draft",
        "visit": 1,
        "to": "review",
        "rule": 0,
        "reason": "always",
        "transitions": 1,
    }
    wait = next(d for d in lines if d["kind"] == "wait")
    assert (wait["region"], wait["prompt"], wait["layer"]) == ("Critic", "Approve the draft?", 4)
    started = next(d for d in lines if d["kind"] == "layer_started" and d["layer"] == 3)
    assert started["index"] == 0  # the plan index beside the position
    assert lines[-1]["status"] == "waiting" and lines[-1]["exit_code"] == 5


def test_report_of_a_plain_plan_is_unchanged_by_the_machine_lines() -> None:
    state = folded(sample.whole_run())
    texts = [line.text for line in report_lines(state, next_commands=["regions run x"])]
    assert "layers     2 of 2 run" in texts
    assert not any(t.startswith(("states", "waiting")) for t in texts)
    assert texts[-1] == "continue   regions run x"
    assert STATUS_TEXT["waiting"] == "waiting for input"


def test_a_started_event_of_a_machine_marks_nothing_skipped() -> None:
    started = RunStarted(
        run_id="r",
        workflow="w",
        workflow_hash="h",
        run_file=None,
        layers=[{"label": "a", "chains": {}, "state": "s"}],
        regions={},
        resumed_from_layer=7,
    )
    assert [layer.state for layer in folded([started]).layers] == ["pending"]
