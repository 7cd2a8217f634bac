"""ToolRegion (a region that runs its tool on each request), a region as a tool, and MCP
servers wired into a run: real command tools, a real MCP server over stdio."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import FakeModel, FakeStore, engine_for, workflow
from tool_helpers import (
    NUMBERS,
    Script,
    alive,
    asks,
    call,
    command,
    tool_turns,
    with_tools,
    write_scripts,
)

from regions_cli.build import BuildError, build_engine_async
from regions_cli.engine.events import EventBus
from regions_cli.model import Chain, Step, Workflow
from regions_cli.model.tools import McpServerSpec, PythonToolSpec, RagToolSpec, RegionToolSpec

FIXTURE_SERVER = (
    Path(__file__).resolve().parents[1] / "tools" / "fixtures" / "mcp_fixture_server.py"
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_scripts(tmp_path)
    return tmp_path


def runner(folder: Path, *requests: str, tool: str = "add") -> Workflow:
    wf = workflow(
        {"Runner": {"type": "ToolRegion"}},
        [{"chains": {"c": ["Runner.make_replies"]}}],
        llms={},
        inject=[{"from": "user", "to": "Runner", "content": text} for text in requests],
    )
    tools = [
        command("add", "add.py", NUMBERS),
        command("echo", "echo.py"),
        command("fail", "fail.py"),
    ]
    return with_tools(wf, folder, tools, {"Runner": [tool]})


async def run(
    wf: Workflow, stores: dict[str, Any] | None = None, **llms: Any
) -> tuple[Any, Any, Any]:
    engine, recorder = engine_for(wf, llms=llms, stores=stores)
    try:
        result = await engine.run()
    finally:
        await engine.aclose()
    return engine, result, recorder


# -- ToolRegion ---------------------------------------------------------------------------


async def test_a_tool_region_runs_its_tool_with_a_json_request_as_the_arguments(
    folder: Path,
) -> None:
    _, result, recorder = await run(runner(folder, '{"a": 2, "b": 3}', '{"a": 10, "b": 0.5}'))
    assert result.ok, result.error
    assert [(m.source, m.content.strip()) for m in result.outputs] == [
        ("Runner", "5"),
        ("Runner", "10.5"),
    ]
    calls = recorder.of("tool_call")
    assert [(c.region, c.tool, c.arguments, c.iteration) for c in calls] == [
        ("Runner", "add", '{"a": 2, "b": 3}', 1),
        ("Runner", "add", '{"a": 10, "b": 0.5}', 1),
    ]
    # The call id is the request's message id: its reply carries it as the cause.
    assert [c.call_id for c in calls] == [m.cause for m in result.outputs]
    assert recorder.of("step_finished")[0].outcome == "ok"


async def test_a_tool_region_hands_text_to_its_tool_as_input(folder: Path) -> None:
    _, result, recorder = await run(runner(folder, "hello there", "[1, 2]", tool="echo"))
    assert [m.content.strip() for m in result.outputs] == ["HELLO THERE", "[1, 2]"]
    assert recorder.of("tool_call")[0].arguments == '{"input": "hello there"}'


async def test_a_failed_call_is_replied_as_an_error_and_the_step_reports_false(
    folder: Path,
) -> None:
    _, result, recorder = await run(runner(folder, '{"a": 2, "b": 3}', '{"a": "x"}'))
    first, second = (m.content for m in result.outputs)
    assert first.strip() == "5"
    assert second.startswith("error: invalid arguments for add: ")
    (finished,) = recorder.of("step_finished")
    assert finished.outcome == "false"
    assert "1 failed: invalid arguments for add" in (finished.detail or "")
    assert finished.stopped_reason is None


async def test_a_tool_region_with_nothing_to_do_says_so(folder: Path) -> None:
    _, _, recorder = await run(runner(folder))
    assert recorder.of("step_finished")[0].outcome == "nothing"


async def test_a_tool_region_naming_an_mcp_server_of_several_tools_is_a_build_error(
    folder: Path,
) -> None:
    wf = runner(folder)
    server = McpServerSpec(name="fixture", command=(sys.executable, str(FIXTURE_SERVER)))
    wf = with_tools(wf, folder, [*wf.tools.values(), server], {"Runner": ["fixture"]})
    with pytest.raises(BuildError, match=r"regions\.Runner\.tool: a ToolRegion runs one tool"):
        engine = await build_engine_async(wf, EventBus())
        await engine.aclose()


# -- a region as a tool -------------------------------------------------------------------


def asker_and_critic(folder: Path, *, critic_requests: tuple[str, ...] = ()) -> Workflow:
    wf = workflow(
        {
            "Asker": {"type": "Region", "task": "Write, then ask the critic."},
            "Critic": {
                "type": "Region",
                "task": "Judge a line.\nSay GOOD or BAD.",
                "llm": "critic",
            },
        },
        [{"chains": {"c": ["Asker.make_replies"]}}],
        llms={"default": {"backend": "scripted"}, "critic": {"backend": "scripted"}},
        inject=[
            {"from": "user", "to": "Asker", "content": "Write a line about rain."},
            *({"from": "user", "to": "Critic", "content": text} for text in critic_requests),
        ],
    )
    return with_tools(
        wf, folder, [RegionToolSpec(name="critic", region="Critic")], {"Asker": ["critic"]}
    )


async def test_a_region_tool_asks_the_region_and_its_reply_is_the_result(folder: Path) -> None:
    asker = Script(
        asks(call("critic", {"request": "Rain taps the glass."}, "k1")),
        lambda request: "Final: " + tool_turns(request)[0],
    )
    critic = FakeModel(
        lambda request: "GOOD" if "Rain taps" in request.messages[1].content else "?"
    )
    engine, result, recorder = await run(
        asker_and_critic(folder, critic_requests=("an older question",)),
        default=asker,
        critic=critic,
    )
    assert result.ok, result.error
    assert [m.content for m in result.outputs] == ["Final: GOOD"]
    assert asker.requests[0].tools[0].name == "critic"
    assert asker.requests[0].tools[0].description == "Ask Critic (Judge a line.)"
    # The critic answered only the tool's request; its own pending request is still there.
    assert len(critic.requests) == 1
    assert [e.content for e in engine.regions["Critic"].requests] == ["an older question"]
    # Its model call is recorded as the critic's; the exchange is no message of the run.
    assert [e.region for e in recorder.of("llm_call")] == ["Asker", "Critic", "Asker"]
    delivered = {(e.message.source, e.message.destination) for e in recorder.of("message")}
    assert ("Asker", "Critic") not in delivered and ("Critic", "Asker") not in delivered
    (resulted,) = recorder.of("tool_result")
    assert (resulted.tool, resulted.content, resulted.is_error) == ("critic", "GOOD", False)


async def test_a_region_tool_whose_region_fails_is_an_error_result(folder: Path) -> None:
    from regions_cli.llm.base import LLMError

    asker = Script(
        asks(call("critic", {"request": "Rain."})), lambda request: tool_turns(request)[0]
    )
    critic = FakeModel(LLMError("the critic's server is down"))
    engine, result, _ = await run(
        asker_and_critic(folder, critic_requests=("kept",)), default=asker, critic=critic
    )
    assert result.ok, result.error
    assert result.outputs[0].content == (
        "error: critic: Critic failed: LLMError: the critic's server is down"
    )
    assert [e.content for e in engine.regions["Critic"].requests] == ["kept"]  # rolled back


async def test_a_region_tool_waits_for_a_region_busy_in_another_chain(folder: Path) -> None:
    """The Critic runs a step of its own in another chain of the layer and is inside its model
    call when the Asker's call comes: the call waits for the Critic's lock (the critic's model
    never answers two things at once), then gets its answer."""
    wf = asker_and_critic(folder, critic_requests=("first",))
    layer = wf.plan[0]
    chains = (Chain("critic", (Step("Critic", "make_replies"),)), *layer.chains)
    wf = replace(wf, plan=(replace(layer, chains=chains),))
    called = asyncio.Event()
    inside = overlaps = 0

    class Critic(FakeModel):
        async def complete(self, request: Any, on_token: Any = None) -> Any:
            nonlocal inside, overlaps
            inside += 1
            overlaps = max(overlaps, inside)
            try:
                if not self.requests:  # its own step: hold the lock until the call comes
                    await called.wait()
                return await super().complete(request, on_token)
            finally:
                inside -= 1

    asker = Script(asks(call("critic", {"request": "Rain."})), lambda r: tool_turns(r)[0])
    critic = Critic(lambda request: request.messages[1].content[-5:])
    engine, _ = engine_for(wf, llms={"default": asker, "critic": critic})
    engine.bus.subscribe(lambda event: called.set() if event.kind == "tool_call" else None)
    try:
        result = await engine.run()
    finally:
        await engine.aclose()
    assert result.ok, result.error
    assert overlaps == 1
    assert len(critic.requests) == 2
    assert {(m.source, m.content) for m in result.outputs} == {
        ("Critic", "first"),
        ("Asker", "Rain."),
    }


async def test_region_tools_that_ask_in_a_circle_are_a_build_error(folder: Path) -> None:
    wf = asker_and_critic(folder)
    wf = with_tools(
        wf,
        folder,
        [
            RegionToolSpec(name="critic", region="Critic"),
            RegionToolSpec(name="asker", region="Asker"),
        ],
        {"Asker": ["critic"], "Critic": ["asker"]},
    )
    with pytest.raises(
        BuildError, match=r"region tools ask in a circle \(Asker -> Critic -> Asker\)"
    ):
        engine_for(wf, llms={"default": Script("x"), "critic": Script("y")})


async def test_a_region_may_not_ask_itself(folder: Path) -> None:
    wf = with_tools(
        asker_and_critic(folder),
        folder,
        [RegionToolSpec(name="me", region="Asker")],
        {"Asker": ["me"]},
    )
    with pytest.raises(BuildError, match=r"\(Asker -> Asker\)"):
        engine_for(wf, llms={"default": Script("x"), "critic": Script("y")})


# -- MCP servers in a run -----------------------------------------------------------------


async def test_an_mcp_servers_tools_are_offered_called_and_the_server_stopped_at_the_end(
    folder: Path,
) -> None:
    wf = workflow(
        {"Solver": {"type": "Region", "task": "Use the server."}},
        [{"chains": {"c": ["Solver.make_replies"]}}],
        inject=[{"from": "user", "to": "Solver", "content": "2 + 3, and your pid?"}],
    )
    server = McpServerSpec(name="fixture", command=(sys.executable, str(FIXTURE_SERVER)))
    wf = with_tools(
        wf, folder, [server, command("echo", "echo.py")], {"Solver": ["fixture", "echo"]}
    )
    model = Script(
        asks(call("add", {"a": 2, "b": 3}), call("pid", {})),
        lambda request: " ".join(tool_turns(request)),
    )
    bus = EventBus()
    engine = await build_engine_async(wf, bus, llms={"default": model})
    try:
        assert len(fixture_servers()) == 1  # started once, before the run
        result = await engine.run()
    finally:
        await engine.aclose()
    assert fixture_servers() == []
    assert result.ok, result.error
    offered = [t.name for t in model.requests[0].tools]
    assert {"add", "pid", "slow", "echo"} <= set(offered)
    total, pid = result.outputs[0].content.split()
    assert total == "5.0"
    assert not alive(int(pid))  # stopped with the engine


async def test_a_server_that_does_not_start_is_a_one_line_build_error(folder: Path) -> None:
    wf = workflow(
        {"Solver": {"type": "Region", "task": "Use the server."}},
        [{"chains": {"c": ["Solver.make_replies"]}}],
    )
    server = McpServerSpec(name="ghost", command=("regions-no-such-mcp-server",))
    wf = with_tools(wf, folder, [server], {"Solver": ["ghost"]})
    with pytest.raises(BuildError, match=r"^tools\.ghost: .*command not found"):
        await build_engine_async(wf, EventBus())


async def test_the_sync_builder_refuses_mcp_servers(folder: Path) -> None:
    wf = workflow({"Solver": {"type": "Region", "task": "x"}}, [])
    server = McpServerSpec(name="fixture", command=(sys.executable, str(FIXTURE_SERVER)))
    wf = with_tools(wf, folder, [server], {"Solver": ["fixture"]})
    with pytest.raises(BuildError, match="started by build_engine_async"):
        engine_for(wf, llms={"default": Script("x")})


# -- the other kinds, wired by the build ----------------------------------------------------


async def test_a_rag_tool_searches_the_store_the_workflow_names(folder: Path) -> None:
    store = FakeStore({1: ("The Zebras were led by Stripes.", ()), 2: ("Bananas.", ())})
    store.scores = {1: 0.9, 2: 0.1}
    wf = workflow(
        {"Solver": {"type": "Region", "task": "Look it up."}},
        [{"chains": {"c": ["Solver.make_replies"]}}],
        rags={"facts": {"path": "facts.db"}},
        inject=[{"from": "user", "to": "Solver", "content": "Who led the Zebras?"}],
    )
    wf = with_tools(wf, folder, [RagToolSpec(name="search", store="facts")], {"Solver": ["search"]})
    model = Script(asks(call("search", {"query": "Zebras", "k": 1})), lambda r: tool_turns(r)[0])
    _, result, _ = await run(wf, {"facts": store}, default=model)
    assert result.outputs[0].content.startswith("[1] untitled (score 0.900)\nThe Zebras were led")
    assert store.calls[0][0] == "search"


async def test_a_python_tool_calls_the_function(folder: Path) -> None:
    wf = with_tools(
        workflow(
            {"Solver": {"type": "Region", "task": "Tidy the text."}},
            [{"chains": {"c": ["Solver.make_replies"]}}],
            inject=[{"from": "user", "to": "Solver", "content": "tidy it"}],
        ),
        folder,
        [PythonToolSpec(name="dedent", target="textwrap:dedent")],
        {"Solver": ["dedent"]},
    )
    model = Script(asks(call("dedent", {"text": "    a\n    b"})), lambda r: tool_turns(r)[0])
    _, result, _ = await run(wf, default=model)
    assert result.outputs[0].content == "a\nb"


def fixture_servers() -> list[int]:
    """The pids of running fixture MCP servers started by this process."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if parent == os.getpid() and FIXTURE_SERVER.name.encode() in command:
            found.append(int(stat.parent.name))
    return [pid for pid in found if alive(pid)]


async def test_a_build_that_fails_after_the_servers_started_stops_them(folder: Path) -> None:
    wf = workflow(
        {
            "Solver": {"type": "Region", "task": "Use the server."},
            "Other": {"type": "Region", "task": "x"},
        },
        [{"chains": {"c": ["Solver.make_replies"]}}],
    )
    server = McpServerSpec(name="fixture", command=(sys.executable, str(FIXTURE_SERVER)))
    wf = with_tools(wf, folder, [server], {"Solver": ["fixture"], "Other": ["missing"]})
    assert fixture_servers() == []
    with pytest.raises(BuildError, match="no tools entry named 'missing'"):
        await build_engine_async(wf, EventBus())
    assert fixture_servers() == []
