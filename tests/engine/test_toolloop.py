"""The tool loop inside a step: real command tools (subprocesses in a temporary folder), a
model that plays a script of tool calls, every way the loop stops and every error path."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import engine_for, workflow
from tool_helpers import (
    NUMBERS,
    Script,
    alive,
    asks,
    call,
    command,
    solver,
    tool_turns,
    with_tools,
    write_scripts,
)

from regions_cli.build import BuildError, build_engine
from regions_cli.engine.events import EventBus
from regions_cli.engine.executor import Engine, RunResult
from regions_cli.engine.toolloop import CALL_FIRST
from regions_cli.llm.base import LLMError
from regions_cli.model import Workflow
from regions_cli.model.tools import ToolLoopConfig
from regions_cli.runs.run import Run
from regions_cli.runs.store import RunFile
from regions_cli.tools.base import ToolResult


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_scripts(tmp_path)
    return tmp_path


def adder(folder: Path, loop: ToolLoopConfig | None = None, **timeouts: float) -> Workflow:
    tools = [
        command("add", "add.py", NUMBERS),
        command("fail", "fail.py"),
        command("slow", "slow.py", timeout=timeouts.get("slow", 0.5)),
    ]
    return with_tools(solver(), folder, tools, {"Solver": ["add", "fail", "slow"]}, loop)


async def run(wf: Workflow, model: Script) -> tuple[RunResult, Any]:
    engine, recorder = engine_for(wf, llms={"default": model})
    try:
        result = await engine.run()
    finally:
        await engine.aclose()
    return result, recorder


def answer_with_result(request: Any) -> str:
    return "The answer is " + tool_turns(request)[-1]


async def test_the_model_calls_a_command_tool_and_answers_with_its_result(folder: Path) -> None:
    model = Script(asks(call("add", {"a": 2, "b": 3}, "c1")), answer_with_result)
    result, recorder = await run(adder(folder), model)
    assert result.ok, result.error
    assert [m.content for m in result.outputs] == ["The answer is 5"]
    first, second = model.requests
    assert [t.name for t in first.tools] == ["add", "fail", "slow"]
    assert first.tools[0].parameters == NUMBERS
    assert first.tool_choice == "auto"
    # The second request holds the assistant turn with its call and the tool turn.
    assistant, tool = second.messages[-2:]
    assert assistant.role == "assistant" and assistant.tool_calls[0].name == "add"
    assert (tool.role, tool.tool_call_id, tool.content.strip()) == ("tool", "c1", "5")
    (called,) = recorder.of("tool_call")
    assert (called.region, called.tool, called.call_id, called.iteration) == (
        "Solver",
        "add",
        "c1",
        1,
    )
    assert called.arguments == '{"a": 2, "b": 3}'
    (resulted,) = recorder.of("tool_result")
    assert (resulted.content.strip(), resulted.is_error) == ("5", False)
    assert resulted.duration > 0
    (finished,) = recorder.of("step_finished")
    assert (finished.outcome, finished.stopped_reason) == ("ok", "answered")
    assert len(recorder.of("llm_call")) == 2
    assert all(e.error is None for e in recorder.of("llm_call"))


@pytest.mark.parametrize(
    ("asked", "expected"),
    [
        (call("add", '{"a": 2, "b":'), "add: the arguments are not valid JSON"),
        (call("add", "[1, 2]"), "add: the arguments must be a JSON object, not list"),
        (call("add", {"a": "two", "b": 3}), "invalid arguments for add: a: 'two' is not of type"),
        (call("add", {"a": 2}), "invalid arguments for add: 'b' is a required property"),
        (call("divide", {"a": 1}), "there is no tool named 'divide' (tools: add, fail, slow)"),
        (call("fail", {}), "fail: "),
        (call("slow", {}), "slow: timed out after 0.5 s (the command was stopped)"),
    ],
    ids=["malformed", "not-an-object", "wrong-type", "missing", "unknown", "failing", "timeout"],
)
async def test_a_bad_call_is_an_error_result_for_the_model_and_the_step_goes_on(
    folder: Path, asked: Any, expected: str
) -> None:
    model = Script(asks(asked), answer_with_result)
    result, recorder = await run(adder(folder), model)
    assert result.ok, result.error
    (resulted,) = recorder.of("tool_result")
    assert resulted.is_error
    assert resulted.content.startswith("error: " + expected), resulted.content
    # The model got the same text, and its answer after it is the step's answer.
    assert tool_turns(model.requests[1]) == [resulted.content]
    assert result.outputs[0].content == "The answer is " + resulted.content
    (finished,) = recorder.of("step_finished")
    assert (finished.outcome, finished.stopped_reason) == ("ok", "answered")


async def test_a_failing_command_hands_back_its_exit_status_and_stderr(folder: Path) -> None:
    model = Script(asks(call("fail", {})), "sorry")
    _, recorder = await run(adder(folder), model)
    (resulted,) = recorder.of("tool_result")
    assert "exited with status 3" in resulted.content
    assert "the disk is on fire" in resulted.content


async def test_several_calls_of_a_round_run_at_the_same_time(folder: Path) -> None:
    """The two calls meet at a FIFO: each blocks until the other opens it, so both succeed
    only when they run concurrently (one after the other, the first would time out)."""
    fifo = folder / "meeting"
    os.mkfifo(fifo)
    meet = command("meet", "meet.py", timeout=10)
    wf = with_tools(solver(), folder, [meet], {"Solver": ["meet"]})
    model = Script(
        asks(
            call("meet", {"side": "read", "fifo": str(fifo)}, "r"),
            call("meet", {"side": "write", "fifo": str(fifo)}, "w"),
        ),
        lambda request: " | ".join(t.strip() for t in tool_turns(request)),
    )
    result, recorder = await run(wf, model)
    assert result.outputs[0].content == "read hello | wrote"  # results in the model's order
    kinds = [e.kind for e in recorder.events if e.kind in ("tool_call", "tool_result")]
    assert kinds == ["tool_call", "tool_call", "tool_result", "tool_result"]
    assert not any(e.is_error for e in recorder.of("tool_result"))


async def test_rounds_go_on_until_the_model_answers(folder: Path) -> None:
    model = Script(
        asks(call("add", {"a": 1, "b": 1})),
        asks(call("add", {"a": 2, "b": 2}), call("add", {"a": 3, "b": 3})),
        "done",
    )
    result, recorder = await run(adder(folder), model)
    assert result.outputs[0].content == "done"
    assert [e.iteration for e in recorder.of("tool_call")] == [1, 2, 2]
    # Blank ids from the backend get one each, unique in the round.
    assert [e.call_id for e in recorder.of("tool_call")] == ["call_1_1", "call_2_1", "call_2_2"]
    assert [t.strip() for t in tool_turns(model.requests[2])] == ["2", "4", "6"]


async def test_max_iterations_ends_with_one_call_that_may_not_use_tools(folder: Path) -> None:
    model = Script(asks(call("add", {"a": 1, "b": 1})))  # calls forever
    model.answers.append(asks(call("add", {"a": 1, "b": 1})))
    model.answers.append(asks(call("add", {"a": 1, "b": 1})))
    model.answers.append(lambda request: "gave up" if request.tool_choice == "none" else None)
    loop = ToolLoopConfig(max_iterations=3)
    result, recorder = await run(adder(folder, loop), model)
    assert [r.tool_choice for r in model.requests] == ["auto", "auto", "auto", "none"]
    assert result.outputs[0].content == "gave up"
    assert len(recorder.of("tool_call")) == 3
    (finished,) = recorder.of("step_finished")
    assert (finished.outcome, finished.stopped_reason) == ("ok", "max_iterations")


async def test_max_iterations_without_a_final_answer_keeps_the_request(folder: Path) -> None:
    model = Script(asks(call("add", {"a": 1, "b": 1})))  # even with tool_choice none
    result, recorder = await run(adder(folder, ToolLoopConfig(max_iterations=2)), model)
    assert result.outputs == []
    (finished,) = recorder.of("step_finished")
    assert (finished.outcome, finished.stopped_reason) == ("false", "max_iterations")
    assert len(recorder.of("tool_call")) == 2  # the final call's calls are not run


async def test_a_terminal_tool_ends_the_loop_and_its_result_is_the_answer(folder: Path) -> None:
    loop = ToolLoopConfig(terminal_tools=("add",))
    model = Script(asks(call("fail", {}), call("add", {"a": 20, "b": 22})), "never asked")
    result, recorder = await run(adder(folder, loop), model)
    assert [m.content.strip() for m in result.outputs] == ["42"]
    assert len(model.requests) == 1
    assert len(recorder.of("tool_result")) == 2  # the round's other call ran too
    (finished,) = recorder.of("step_finished")
    assert finished.stopped_reason == "terminal_tool"


async def test_a_failed_terminal_call_goes_back_to_the_model(folder: Path) -> None:
    loop = ToolLoopConfig(terminal_tools=("add",))
    model = Script(asks(call("add", {"a": "x", "b": 1})), asks(call("add", {"a": 1, "b": 1})))
    result, recorder = await run(adder(folder, loop), model)
    assert [m.content.strip() for m in result.outputs] == ["2"]
    assert [e.is_error for e in recorder.of("tool_result")] == [True, False]
    assert recorder.of("step_finished")[0].stopped_reason == "terminal_tool"


async def test_require_tool_call_asks_for_a_call_first_and_refuses_an_early_answer(
    folder: Path,
) -> None:
    loop = ToolLoopConfig(require_tool_call=True)
    model = Script("I know it: 5", asks(call("add", {"a": 2, "b": 3})), answer_with_result)
    result, recorder = await run(adder(folder, loop), model)
    assert [r.tool_choice for r in model.requests] == ["required", "required", "auto"]
    assert model.requests[1].messages[-1].content == CALL_FIRST
    assert result.outputs[0].content == "The answer is 5"
    assert recorder.of("step_finished")[0].stopped_reason == "answered"


async def test_an_empty_answer_stops_with_error_and_keeps_the_request(folder: Path) -> None:
    result, recorder = await run(adder(folder), Script(""))
    assert result.outputs == []
    (finished,) = recorder.of("step_finished")
    assert (finished.outcome, finished.stopped_reason) == ("false", "error")


async def test_a_failing_model_call_inside_the_loop_fails_the_step(folder: Path) -> None:
    model = Script(
        asks(call("add", {"a": 2, "b": 3})), lambda request: LLMError("connection refused")
    )
    result, recorder = await run(adder(folder), model)
    assert not result.ok
    (finished,) = recorder.of("step_finished")
    assert (finished.outcome, finished.stopped_reason) == ("failed", "error")
    assert "connection refused" in (finished.error or "")


async def test_a_step_without_tools_reports_no_stopped_reason(folder: Path) -> None:
    result, recorder = await run(solver(), Script("5"))
    assert result.ok
    assert recorder.of("step_finished")[0].stopped_reason is None


async def test_typed_outputs_validate_the_answer_after_the_loop(folder: Path) -> None:
    schema = {"type": "object", "properties": {"sum": {"type": "number"}}, "required": ["sum"]}
    wf = with_tools(
        solver(output_schema=schema),
        folder,
        [command("add", "add.py", NUMBERS)],
        {"Solver": ["add"]},
    )
    model = Script(
        asks(call("add", {"a": 2, "b": 3})),
        lambda request: f'{{"sum": {tool_turns(request)[0].strip()}}}',
    )
    result, _ = await run(wf, model)
    assert result.ok, result.error
    assert result.outputs[0].content == '{"sum": 5}'
    assert model.requests[0].json_schema == schema


async def test_typed_outputs_repair_an_invalid_answer_without_tools(folder: Path) -> None:
    schema = {"type": "object", "required": ["sum"]}
    wf = with_tools(
        solver(output_schema=schema),
        folder,
        [command("add", "add.py", NUMBERS)],
        {"Solver": ["add"]},
    )
    model = Script("not json", '{"sum": 5}')
    result, _ = await run(wf, model)
    assert result.outputs[0].content == '{"sum": 5}'
    assert [r.purpose for r in model.requests] == ["make_replies", "repair"]
    assert model.requests[1].tools == ()


async def test_make_questions_runs_the_loop_too(folder: Path) -> None:
    base = workflow(
        {
            "Solver": {"type": "Region", "task": "Ask.", "connections": ["Helper"]},
            "Helper": {"type": "Region", "task": "Help."},
        },
        [{"chains": {"c": ["Solver.make_questions"]}}],
    )
    wf = with_tools(base, folder, [command("add", "add.py", NUMBERS)], {"Solver": ["add"]})
    model = Script(
        asks(call("add", {"a": 2, "b": 3})),
        lambda request: (
            f'[{{"source": "Helper", "question": "Is it {tool_turns(request)[0].strip()}?"}}]'
        ),
    )
    engine, recorder = engine_for(wf, llms={"default": model})
    try:
        result = await engine.run()
    finally:
        await engine.aclose()
    assert result.ok, result.error
    assert engine.regions["Helper"].requests[0].content == "Is it 5?"
    assert recorder.of("step_finished")[0].stopped_reason == "answered"


async def test_ctrl_c_kills_a_running_command_tools_process_group(folder: Path) -> None:
    fifo = folder / "pid"
    os.mkfifo(fifo)
    hang = command("hang", "hang.py", timeout=600)
    wf = with_tools(solver(), folder, [hang], {"Solver": ["hang"]})
    model = Script(asks(call("hang", {"fifo": str(fifo)})), "never")
    engine, recorder = engine_for(wf, llms={"default": model})
    task = asyncio.create_task(engine.run())
    pid = int(await asyncio.to_thread(fifo.read_text))  # the tool is running now
    assert alive(pid)
    task.cancel()
    try:
        result = await task
    finally:
        await engine.aclose()
    assert result.status == "interrupted"
    assert not alive(pid)
    assert recorder.of("tool_result") == []
    assert recorder.of("step_finished")[0].outcome == "cancelled"


async def test_secrets_reach_a_tool_only_when_its_env_names_them(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGIONS_TEST_SECRET", "hunter2")
    monkeypatch.setenv("REGIONS_TEST_NAMED", "fine")
    env = command("env", "env.py", env=("REGIONS_TEST_NAMED",))
    wf = with_tools(solver(), folder, [env], {"Solver": ["env"]})
    model = Script(asks(call("env", {})), lambda request: tool_turns(request)[0])
    result, _ = await run(wf, model)
    names = result.outputs[0].content.split()
    assert "REGIONS_TEST_NAMED" in names and "PATH" in names
    assert "REGIONS_TEST_SECRET" not in names


async def test_a_tool_env_naming_a_missing_variable_is_a_build_error(folder: Path) -> None:
    env = command("env", "env.py", env=("REGIONS_TEST_NOT_SET_ANYWHERE",))
    wf = with_tools(solver(), folder, [env], {"Solver": ["env"]})
    with pytest.raises(BuildError, match="REGIONS_TEST_NOT_SET_ANYWHERE named in env: is not set"):
        engine_for(wf, llms={"default": Script("x")})


async def test_a_region_naming_an_unknown_tool_is_a_build_error(folder: Path) -> None:
    wf = with_tools(solver(), folder, [], {"Solver": ["nope"]})
    with pytest.raises(BuildError, match=r"regions\.Solver\.tools: no tools entry named 'nope'"):
        engine_for(wf, llms={"default": Script("x")})


class Tape:
    """A `ToolTape` that replays canned results and never runs a tool; it keeps each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def call(
        self, tool: str, arguments: str, run: Callable[[], Awaitable[ToolResult]]
    ) -> ToolResult:
        self.calls.append((tool, arguments))
        return ToolResult(f"recorded {tool}")


async def test_every_call_goes_through_the_runs_tape(folder: Path) -> None:
    """What a replay does: the tape answers, the (failing) command never runs. Calls the loop
    answers itself (an unknown tool, malformed arguments) never reach the tape."""
    model = Script(
        asks(call("fail", {}), call("nope", {}), call("add", "{oops")),
        lambda request: " | ".join(tool_turns(request)),
    )
    tape = Tape()
    engine, _ = engine_for(adder(folder), llms={"default": model})
    toolbox = engine.regions["Solver"].context.toolbox
    assert toolbox is not None
    engine.regions["Solver"].context.toolbox = replace(toolbox, tape=tape)
    try:
        result = await engine.run()
    finally:
        await engine.aclose()
    assert tape.calls == [("fail", "{}")]
    first, second, third = result.outputs[0].content.split(" | ")
    assert first == "recorded fail"
    assert second.startswith("error: there is no tool named 'nope'")
    assert third.startswith("error: add: the arguments are not valid JSON")


async def test_the_run_file_keeps_the_tool_events_and_the_stopped_reason(folder: Path) -> None:
    model = Script(asks(call("add", {"a": 2, "b": 3}, "c1")), answer_with_result)
    source = folder / "adder.yaml"  # a run file records the file its workflow came from
    source.write_text("name: test\n", encoding="utf-8")
    wf = replace(adder(folder), source=source)

    async def build(workflow: Workflow, bus: EventBus) -> Engine:
        return build_engine(workflow, bus, llms={"default": model})

    run = Run.open(wf, run_file=folder / "run.db", build=build)
    with run:
        finished = await run.execute()
    assert finished.exit_code == 0
    stored = RunFile.open(folder / "run.db")
    try:
        events = list(stored.events())
    finally:
        stored.close()
    by_kind = {e["kind"]: e for e in events}
    assert by_kind["tool_call"]["arguments"] == '{"a": 2, "b": 3}'
    assert by_kind["tool_result"]["content"].strip() == "5"
    assert by_kind["step_finished"]["stopped_reason"] == "answered"
