"""MCP servers as tools: a server written with the MCP SDK for these tests (stdio and streamable
HTTP) and the published `mcp-server-time`, started, called, crashed and stopped for real."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from test_command_tool import alive

from regions_cli.model.tools import McpServerSpec
from regions_cli.tools.base import OUTPUT_CAP, ToolError
from regions_cli.tools.mcp import McpServers, McpTool

FIXTURE_SERVER = Path(__file__).resolve().parent / "fixtures" / "mcp_fixture_server.py"


def fixture_spec(timeout: float = 30.0, env: tuple[str, ...] = ()) -> McpServerSpec:
    return McpServerSpec(
        name="fixture", command=(sys.executable, str(FIXTURE_SERVER)), timeout=timeout, env=env
    )


def by_name(servers: McpServers, server: str) -> dict[str, McpTool]:
    return {tool.name: tool for tool in servers.tools(server)}


@pytest.fixture
async def fixture(tmp_path: Path) -> AsyncIterator[dict[str, McpTool]]:
    async with McpServers([fixture_spec(timeout=10)], folder=tmp_path) as servers:
        yield by_name(servers, "fixture")


async def test_the_servers_tools_are_listed_with_their_schemas(
    fixture: dict[str, McpTool],
) -> None:
    assert set(fixture) == {"add", "pid", "env_names", "fail", "slow", "crash", "big"}
    add = fixture["add"]
    assert add.description == "Add two numbers."
    assert add.parameters["required"] == ["a", "b"]
    assert set(add.parameters["properties"]) == {"a", "b"}


async def test_a_call_returns_the_servers_text(fixture: dict[str, McpTool]) -> None:
    result = await fixture["add"].call({"a": 2, "b": 3})
    assert (result.content, result.is_error) == ("5.0", False)


async def test_a_tool_error_on_the_server_is_an_error_result(fixture: dict[str, McpTool]) -> None:
    result = await fixture["fail"].call({"reason": "nope"})
    assert result.is_error
    assert "fail" in result.content


async def test_invalid_arguments_never_reach_the_server(fixture: dict[str, McpTool]) -> None:
    result = await fixture["add"].call({"a": "two"})
    assert result.is_error
    assert result.content.startswith("invalid arguments for add: ")


async def test_a_slow_call_times_out_and_the_server_keeps_serving(tmp_path: Path) -> None:
    async with McpServers([fixture_spec(timeout=0.5)], folder=tmp_path) as servers:
        tools = by_name(servers, "fixture")
        slow = await tools["slow"].call({"seconds": 30})
        after = await tools["add"].call({"a": 1, "b": 1})
    assert slow.is_error
    assert slow.content == "slow: no answer from the MCP server within 0.5 s"
    assert after.content == "2.0"


async def test_a_cancelled_call_leaves_the_server_serving(fixture: dict[str, McpTool]) -> None:
    call = asyncio.create_task(fixture["slow"].call({"seconds": 30}))
    await asyncio.sleep(0.2)  # let the request reach the server
    call.cancel()  # Ctrl-C during the step
    with pytest.raises(asyncio.CancelledError):
        await call
    result = await fixture["add"].call({"a": 1, "b": 2})
    assert (result.content, result.is_error) == ("3.0", False)


async def test_a_long_answer_is_capped(fixture: dict[str, McpTool]) -> None:
    result = await fixture["big"].call({"size": OUTPUT_CAP * 2})
    assert result.truncated
    assert "[output truncated" in result.content


async def test_a_server_crashing_mid_call_fails_its_calls_not_the_run(tmp_path: Path) -> None:
    async with McpServers([fixture_spec(timeout=10)], folder=tmp_path) as servers:
        tools = by_name(servers, "fixture")
        pid = int((await tools["pid"].call({})).content)
        crashed = await tools["crash"].call({})
        later = await tools["add"].call({"a": 1, "b": 2})
    assert crashed.is_error
    assert "the MCP server 'fixture' is not running" in crashed.content
    assert "crashing on purpose" in crashed.content  # the end of the server's stderr
    assert later.is_error
    assert "the MCP server 'fixture' is not running" in later.content
    assert not alive(pid)


async def test_servers_are_stopped_at_the_end_even_on_failure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="the run failed"):
        async with McpServers([fixture_spec()], folder=tmp_path) as servers:
            pid = int((await by_name(servers, "fixture")["pid"].call({})).content)
            assert alive(pid)
            raise RuntimeError("the run failed")
    assert not alive(pid)


async def test_only_the_named_variables_reach_a_stdio_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MCP_NAMED_TOKEN", "t1")
    monkeypatch.setenv("MCP_OTHER_TOKEN", "t2")
    async with McpServers([fixture_spec(env=("MCP_NAMED_TOKEN",))], folder=tmp_path) as servers:
        names = (await by_name(servers, "fixture")["env_names"].call({})).content.split("\n")
    assert "MCP_NAMED_TOKEN" in names
    assert "MCP_OTHER_TOKEN" not in names


async def test_a_server_that_cannot_start_is_a_one_line_tool_error(tmp_path: Path) -> None:
    missing = McpServerSpec(name="ghost", command=("no-such-mcp-server-5e1b",))
    with pytest.raises(
        ToolError,
        match=r"^tool 'ghost': cannot start the MCP server: command "
        r"not found: no-such-mcp-server-5e1b$",
    ):
        async with McpServers([missing], folder=tmp_path):
            pass


async def test_a_server_that_exits_at_once_is_a_tool_error_with_its_stderr(
    tmp_path: Path,
) -> None:
    code = "import sys; sys.exit('bad config: no database')"
    broken = McpServerSpec(name="broken", command=(sys.executable, "-c", code), timeout=10)
    with pytest.raises(ToolError, match=r"its stderr ends: bad config: no database$") as caught:
        async with McpServers([broken, fixture_spec()], folder=tmp_path):
            pass
    assert str(caught.value).startswith("tool 'broken': the MCP server failed: ")
    assert "\n" not in str(caught.value)


async def test_an_http_server_that_does_not_answer_is_a_tool_error(tmp_path: Path) -> None:
    port = free_port()
    spec = McpServerSpec(name="remote", url=f"http://user:pw@127.0.0.1:{port}/mcp")
    with pytest.raises(
        ToolError,
        match=rf"^tool 'remote': the MCP server at 127.0.0.1:{port} "
        "failed: ",
    ) as caught:
        async with McpServers([spec], folder=tmp_path):
            pass
    assert "pw" not in str(caught.value)


def test_a_variable_named_for_a_server_must_be_set(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="the variable MCP_UNSET_9 named in env: is not set"):
        McpServers([fixture_spec(env=("MCP_UNSET_9",))], folder=tmp_path, environ={})


async def test_the_published_time_server(tmp_path: Path) -> None:
    command = shutil.which("mcp-server-time", path=os.path.dirname(sys.executable))
    assert command, "mcp-server-time is in the dev extra"
    spec = McpServerSpec(name="clock", command=(command, "--local-timezone", "UTC"))
    async with McpServers([spec], folder=tmp_path) as servers:
        tools = by_name(servers, "clock")
        now = await tools["get_current_time"].call({"timezone": "Europe/Paris"})
        converted = await tools["convert_time"].call(
            {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
        )
        unknown = await tools["get_current_time"].call({"timezone": "Mars/Olympus_Mons"})
    assert not now.is_error and "Europe/Paris" in now.content
    assert not converted.is_error and "21:00" in converted.content
    assert unknown.is_error


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_server_over_streamable_http(tmp_path: Path) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(FIXTURE_SERVER), "--http", str(port),
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        async with asyncio.timeout(30):  # uvicorn says when it listens
            while b"Uvicorn running" not in await process.stderr.readline():
                pass
        spec = McpServerSpec(name="remote", url=f"http://127.0.0.1:{port}/mcp")
        async with McpServers([spec], folder=tmp_path) as servers:
            result = await by_name(servers, "remote")["add"].call({"a": 20, "b": 22})
        assert (result.content, result.is_error) == ("42.0", False)
    finally:
        process.kill()
        await process.wait()


async def test_cancelling_while_a_server_is_still_starting_stops_it_at_once(
    tmp_path: Path,
) -> None:
    """A server that never answers, its start cancelled from the library (a run's task
    cancelled): the start ends promptly and the server's process goes with it."""
    pid_file = tmp_path / "pid"
    silent = McpServerSpec(
        name="silent",
        command=(
            sys.executable,
            "-c",
            f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
            "time.sleep(600)",
        ),
    )

    async def open_servers() -> None:
        async with McpServers([silent], folder=tmp_path):
            raise AssertionError("the silent server cannot have started")

    opening = asyncio.create_task(open_servers())
    async with asyncio.timeout(30):  # the child writes its pid once it runs
        while not pid_file.exists() or not pid_file.read_text():
            await asyncio.sleep(0.05)
    opening.cancel()
    async with asyncio.timeout(10):
        with pytest.raises(asyncio.CancelledError):
            await opening
    pid = int(pid_file.read_text())
    async with asyncio.timeout(10):
        while alive(pid):
            await asyncio.sleep(0.05)


def test_ctrl_c_while_a_server_is_still_starting_ends_regions_tools(tmp_path: Path) -> None:
    """Ctrl-C in `regions tools` while an MCP server never answers: exit 130 within the SDK's
    shutdown grace (it waited forever: stopping waited for a start that never ended)."""
    import signal
    import subprocess
    import time

    from clirun import regions_argv, regions_env

    pid_file = tmp_path / "pid"
    (tmp_path / "w.yaml").write_text(
        "version: 1\nname: w\nllms: {default: {backend: scripted}}\n"
        "tools:\n  silent:\n    mcp:\n      command: ["
        + repr(sys.executable)
        + ", -c, "
        + repr(
            f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
            "time.sleep(600)"
        )
        + "]\n"
        "regions: {A: {type: Region, task: Answer., tools: [silent]}}\n"
        "inject: [{from: user, to: A, content: hi}]\nplan: [{chains: {a: [A.make_replies]}}]\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        regions_argv("tools", "w.yaml"), cwd=tmp_path, env=regions_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)  # the server is up (and will never answer)
    process.send_signal(signal.SIGINT)
    try:
        _, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("regions tools did not stop on Ctrl-C") from None
    assert process.returncode == 130, err
    assert not alive(int(pid_file.read_text()))
