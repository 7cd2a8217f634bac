"""State machines through the run file: stepping, resuming mid-visit, waits across processes,
and a process killed with SIGKILL in the middle of a loop's third visit."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from clirun import regions, regions_argv, regions_env
from journal_helpers import FIXTURES, drive, traffic

from regions_cli.engine.events import StateEntered, TransitionTaken
from regions_cli.runs.store import RunFile

#: The states a whole run of loop.yaml passes through (the critic never approves).
PATH = ["draft", "review"] * 4 + ["draft", "publish"]


def where(run: RunFile) -> dict[str, object]:
    """A run's cursor without its clock (the active seconds differ from run to run)."""
    cursor = run.cursor()
    assert cursor is not None
    return {key: value for key, value in cursor.items() if key != "elapsed"}


@pytest.fixture
def loop(tmp_path: Path) -> Path:
    target = tmp_path / "loop.yaml"
    shutil.copy(FIXTURES / "loop.yaml", target)
    return target


async def test_a_whole_run_records_visits_and_transitions(loop: Path, tmp_path: Path) -> None:
    code, events, path = await drive(loop, run_file=tmp_path / "whole.db")
    assert code == 0
    assert [e.state for e in events if isinstance(e, StateEntered)] == PATH
    last = [e for e in events if isinstance(e, TransitionTaken)][-2]
    assert (last.state, last.to, last.reason) == ("draft", "publish", "review exhausted (4 visits)")
    with RunFile.open(path) as run:
        assert run.finished and run.position == len(PATH)
        cursor = run.cursor()
        assert cursor is not None
        assert cursor["visits"] == {"draft": 5, "review": 4, "publish": 1}
        assert cursor["layer"] == 3  # past the plan's three layers: the end
        kinds = [e["kind"] for e in run.events()]
        assert kinds.count("state_entered") == len(PATH)


async def test_stepping_through_a_machine_equals_one_run(loop: Path, tmp_path: Path) -> None:
    _, _, whole = await drive(loop, run_file=tmp_path / "whole.db")
    stepped = tmp_path / "stepped.db"
    code, _, _ = await drive(loop, run_file=stepped, max_layers=1, kind="step")
    steps = 1
    while True:
        with RunFile.open(stepped) as run:
            if run.finished:
                break
        code, _, _ = await drive(loop, resume=stepped, max_layers=1, kind="step")
        assert code == 0
        steps += 1
    assert steps == len(PATH)
    assert traffic(stepped) == traffic(whole)
    with RunFile.open(whole) as a, RunFile.open(stepped) as b:
        assert a.states() == b.states()
        assert where(a) == where(b)
        entered = [e["state"] for e in b.events() if e["kind"] == "state_entered"]
    assert entered == PATH  # each transition journaled once, however the run was cut


def _events_until(process: subprocess.Popen[str], done: object) -> list[dict[str, object]]:
    """Read `--json` lines until `done(events)` holds."""
    assert process.stdout is not None
    events: list[dict[str, object]] = []
    for line in process.stdout:
        events.append(json.loads(line))
        if done(events):  # type: ignore[operator]
            return events
    raise AssertionError(f"the run ended first: {events[-3:]}")


def test_sigkill_in_a_loops_third_visit_then_resume(loop: Path, tmp_path: Path) -> None:
    whole = regions("run", loop, "--run", tmp_path / "whole.db", "-q", cwd=tmp_path)
    assert whole.code == 0, whole.err
    killed = tmp_path / "killed.db"
    slow = loop.read_text(encoding="utf-8").replace("latency: 0\n", "latency: 0.5\n")
    loop.write_text(slow, encoding="utf-8")  # the same workflow (latency changes no answer)
    process = subprocess.Popen(
        regions_argv("run", loop, "--run", killed, "--json"),
        cwd=tmp_path, env=regions_env(), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:

        def in_third_review(events: list[dict[str, object]]) -> bool:
            visits = [e for e in events if e["kind"] == "state_entered"]
            third = bool(visits) and visits[-1] == {**visits[-1], "state": "review", "visit": 3}
            return third and events[-1]["kind"] == "step_started"

        _events_until(process, in_third_review)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    with RunFile.open(killed) as run:
        assert not run.finished
        cursor = run.cursor()
        assert cursor is not None and (cursor["state"], cursor["visits"]["review"]) == ("review", 3)
    resumed = regions("run", loop, "--resume", killed, "--force", "-q", cwd=tmp_path)
    assert resumed.code == 0, resumed.err
    assert traffic(killed) == traffic(tmp_path / "whole.db")
    with RunFile.open(killed) as run:
        entered = [e["state"] for e in run.events() if e["kind"] == "state_entered"]
        assert entered == PATH
        with RunFile.open(tmp_path / "whole.db") as whole_run:
            assert where(run) == where(whole_run)


def test_a_wait_inject_resume_round_trip_across_processes(tmp_path: Path) -> None:
    workflow = _asking(tmp_path)
    run = tmp_path / "ask.db"
    first = regions("run", workflow, "--run", run, "--no-live", cwd=tmp_path)
    assert first.code == 5, first.output
    assert "What do you need?" in first.out
    assert regions("inject", "--run", run, "--to", "Desk", "A new lamp.", cwd=tmp_path).code == 0
    second = regions("run", workflow, "--resume", run, "-q", cwd=tmp_path)
    assert second.code == 0, second.output
    assert second.out.strip() == "Echo: A new lamp."
    with RunFile.open(run) as opened:
        assert opened.finished
        ended = [(i["kind"], i["status"], i["exit_code"]) for i in opened.invocations()]
        assert ended == [("run", "waiting", 5), ("resume", "ok", 0)]
        labels = [e["label"] for e in opened.events() if e["kind"] == "layer_started"]
        assert labels == ["wait-Desk", "layer-1"]  # the wait passed once the answer was there


def _asking(tmp_path: Path) -> Path:
    workflow = tmp_path / "ask.yaml"
    workflow.write_text(
        "version: 1\nname: ask\nllms: {default: {backend: scripted}}\n"
        "regions:\n  Desk: {type: Region, task: Answer.}\n"
        "plan:\n"
        "  - wait: {for: Desk, prompt: What do you need?}\n"
        "  - chains: {d: [Desk.make_replies]}\n",
        encoding="utf-8",
    )
    return workflow


def test_interactive_asks_at_a_wait_and_goes_on_with_the_answer(tmp_path: Path) -> None:
    run = tmp_path / "ask.db"
    # continue at the first barrier, then the wait's answer, then continue to the end
    stdin = "c\nA new lamp.\nc\nc\n"
    result = regions(
        "run", _asking(tmp_path), "--run", run, "--interactive", "--no-live", "-q", stdin=stdin
    )
    assert result.code == 0, result.output
    assert "What do you need? (for Desk; empty line: pause) > " in result.err
    assert result.out.strip() == "Echo: A new lamp."
    with RunFile.open(run) as opened:
        assert opened.finished
        (queued,) = opened.injections()
        assert (queued.message.destination, queued.message.content) == ("Desk", "A new lamp.")


def test_interactive_with_an_empty_answer_pauses_at_the_wait(tmp_path: Path) -> None:
    run = tmp_path / "ask.db"
    result = regions(
        "run", _asking(tmp_path), "--run", run, "--interactive", "--no-live", stdin="c\n\n"
    )
    assert result.code == 5, result.output
    assert "paused; continue with: " in result.err
    with RunFile.open(run) as opened:
        assert not opened.finished and opened.injections() == []
