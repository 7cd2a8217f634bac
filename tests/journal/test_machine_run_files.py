"""A state machine's run file as `show`, `runs`, `inject` and `step` read it: the current state,
visits, transitions and path, and a run that waits for a person.

The run files are real: `Run` drives a workflow built by `build_workflow` (the schema does not
take ``states:`` yet, so `regions run` cannot be used to make them); the commands that read them
run as a user runs them.
"""

from __future__ import annotations

import asyncio
import io
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from clirun import regions

from regions_cli.build import build_engine
from regions_cli.cli.options import inject_command
from regions_cli.cli.runner import RunOptions, _next_commands
from regions_cli.engine.events import EventBus, RunFinished
from regions_cli.engine.executor import Engine
from regions_cli.model import Workflow
from regions_cli.runs.run import Run
from regions_cli.runs.status import machine_info, next_wait, run_info, waiting_for
from regions_cli.runs.store import RunFile
from regions_cli.view.plain import PlainView
from regions_cli.view.runs import pending_lines
from regions_cli.workflow.convert import build_workflow

MACHINES = Path(__file__).parents[1] / "fixtures" / "machines"
#: A writer and a critic; each visit of review waits for a person before the critic judges.
LOOP = MACHINES / "review_wait.yaml"


@pytest.fixture
def loop_file(tmp_path: Path) -> Path:
    path = tmp_path / "loop.yaml"
    shutil.copyfile(LOOP, path)
    return path


def machine(path: Path) -> Workflow:
    return build_workflow(yaml.safe_load(path.read_text(encoding="utf-8")), source=path)


async def _build(workflow: Workflow, bus: EventBus) -> Engine:
    return build_engine(workflow, bus)


def drive(
    path: Path, *, run_file: Path | None = None, resume: Path | None = None, **extra: Any
) -> tuple[Run, RunFinished, str, list[str]]:
    """Run (or resume) the machine at `path` with its run file, watched by the plain view;
    returns the run, its end, what the view printed (without the report) and the commands
    `regions run`'s report would offer to go on with it."""
    out = io.StringIO()
    run = Run.open(machine(path), run_file=run_file, resume=resume, build=_build, **extra)
    view = PlainView(out)
    run.subscribe(view)
    options = RunOptions(workflow=path, resume=resume, kind=extra.get("kind"))

    async def execute() -> tuple[RunFinished, list[str]]:
        with run:
            finished = await run.execute()
            return finished, _next_commands(options, run, finished)

    finished, commands = asyncio.run(execute())
    return run, finished, out.getvalue(), commands


@pytest.fixture
def waiting(loop_file: Path, tmp_path: Path) -> Path:
    """A run of the loop that waits at review's first visit (nobody answered)."""
    run, finished, lines, _ = drive(loop_file, run_file=tmp_path / "loop-1.db")
    assert (finished.status, finished.exit_code) == ("waiting", 5)
    assert "waiting for Critic: Approve the draft?" in lines
    assert run.path is not None
    return run.path


def test_the_run_file_says_where_the_machine_waits(waiting: Path) -> None:
    with RunFile.open(waiting) as run:
        info = run_info(run)
        assert info["status"] == "waiting for Critic"
        assert info["position_text"] == "next layer 2/3 wait-Critic of state review"
        assert (info["position"], info["next_layer"]) == (1, 1)
        assert waiting_for(run) == next_wait(run)
        wait = waiting_for(run)
        assert wait is not None and (wait.region, wait.prompt) == ("Critic", "Approve the draft?")
        state = machine_info(run)
        assert state is not None
        assert (state["state"], state["visits"], state["transitions"]) == (
            "review",
            {"draft": 1, "review": 1},
            1,
        )
        assert state["path"] == ["draft", "review"]
        assert state["last_transition"]["reason"] == "always"


def test_show_names_the_state_the_path_and_how_to_answer(waiting: Path) -> None:
    code, out, err = regions("show", str(waiting))
    assert code == 0, err
    rows = {
        line.split("  ", 1)[0].strip(): line.split("  ", 1)[-1].strip()
        for line in out.splitlines()
        if line.strip()
    }
    assert rows["status"] == "waiting for Critic"
    assert rows["plan"] == "next layer 2/3 wait-Critic of state review"
    assert rows["state"] == "review (visit 1)"
    assert rows["visits"] == "draft 1, review 1"
    assert rows["transitions"] == "1 (last: draft -> review: always)"
    assert rows["path"] == "draft → review"
    assert rows["waiting"] == "for Critic: Approve the draft?"
    assert inject_command(waiting, "Critic") in out
    resume = f"regions run {waiting.parent / 'loop.yaml'} --resume {waiting}"
    assert out.index(inject_command(waiting, "Critic")) < out.index(resume)


def test_runs_lists_a_waiting_machine(waiting: Path) -> None:
    code, out, err = regions("runs", str(waiting.parent))
    assert code == 0, err
    row = next(line for line in out.splitlines() if str(waiting) in line)
    assert "waiting for Critic" in row and "1 run" in row and "waiting (exit 5)" in row


def test_inject_answers_and_resume_ends_the_loop(waiting: Path, loop_file: Path) -> None:
    code, out, err = regions("inject", "--run", str(waiting), "--to", "Critic", "APPROVED")
    assert code == 0, err
    assert f"the run waits for Critic: go on with regions run {loop_file} --resume {waiting}" in out
    # show: the answer is queued, so only the resume is left to do
    code, out, _ = regions("show", str(waiting))
    assert "for Critic: Approve the draft?; an answer is queued" in out
    assert "regions inject" not in out and f"--resume {waiting}" in out
    _, finished, lines, commands = drive(loop_file, resume=waiting)
    assert (finished.status, finished.exit_code) == ("ok", 0)
    assert "transition review -> end: Critic says /APPROVED/" in lines
    assert commands == []  # nothing left to do
    with RunFile.open(waiting) as run:
        assert run.finished and waiting_for(run) is None
        state = machine_info(run)
        assert state is not None and state["path"] == ["draft", "review", "end"]
        assert run_info(run)["position_text"] == "finished (3/3 layers, 3 run)"
    code, out, _ = regions("show", str(waiting))
    assert "draft → review → end" in out and "run:waiting, resume:ok" in out
    assert not any(line.startswith(("waiting", "continue")) for line in out.splitlines())


def test_the_runner_offers_the_inject_then_the_resume(waiting: Path, loop_file: Path) -> None:
    """`regions run`'s report at a wait: the commands, in order (resumed here, waiting again
    after a second visit of review whose answer was not approval)."""
    with RunFile.open(waiting) as file:
        file.add_injection("user", "Critic", "request", "Not yet.")
    _, finished, _, commands = drive(loop_file, resume=waiting)
    assert finished.status == "waiting"
    assert commands == [
        inject_command(waiting, "Critic"),
        f"regions run {loop_file} --resume {waiting}",
    ]
    with RunFile.open(waiting) as file:
        state = machine_info(file)
        assert state is not None and state["path"] == ["draft", "review", "draft", "review"]
        assert state["visits"] == {"draft": 2, "review": 2}


def test_pending_lines_after_a_step_at_a_wait(waiting: Path, loop_file: Path) -> None:
    with RunFile.open(waiting) as run:
        answer = inject_command(waiting, "Critic")
        lines = pending_lines(run, loop_file, (), answer)
    assert "Waiting for Critic: Approve the draft?" in lines
    assert f"  answer: {answer}" in lines
    assert lines[-1] == (
        f"Next: layer 2/3 wait-Critic of state review: regions step {loop_file} --run {waiting}"
    )


def test_a_stepped_machine_shows_the_plan_index_not_the_position(
    loop_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "stepped.db"
    _, finished, _, commands = drive(loop_file, run_file=path, max_layers=1, kind="step")
    assert finished.status == "ok" and commands == []  # a step says it in its own way
    with RunFile.open(path) as run:
        assert waiting_for(run) is None  # stopped before the wait, not at it
        wait = next_wait(run)
        assert wait is not None and wait.region == "Critic"
        lines = pending_lines(run, loop_file)
    assert not any(line.startswith("Waiting") for line in lines)
    assert lines[-1].startswith("Next: layer 2/3 wait-Critic of state review: ")
