"""Tools: what calling through `regions_cli.tools` costs over calling the same thing directly.

* command: one `CommandTool.call` (arguments as JSON on stdin, stdout the result) against
  `subprocess.run` of the same command with the same input, in the same run; twice: ``cat``,
  the cheapest command there is, where the fixed overhead (asyncio's subprocess machinery, the
  process group, capped reads, argument validation) shows whole; and a small Python script, the
  usual kind of tool. Target: within 1.2x. A third row compares the ``cat`` call with asyncio's
  own ``create_subprocess_exec`` + ``communicate``: the share of the overhead that is ours.
* mcp: one call of ``get_current_time`` on the published `mcp-server-time` through `McpTool`
  (a server started by `McpServers`), against the MCP SDK's own `Client` calling a second
  instance of the same server directly. Target: within 1.2x.

Both sides run in alternating blocks (A B B A), so drift on a shared machine hits them alike;
each figure is the best block's time per call.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from asyncio.subprocess import PIPE
from collections.abc import Awaitable, Callable
from pathlib import Path

from common import Row
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client

from regions_cli.model.tools import CommandToolSpec, McpServerSpec
from regions_cli.tools.command import CommandTool
from regions_cli.tools.mcp import McpServers

ARGUMENTS = {"timezone": "UTC"}


async def _timed(calls: int, call: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        await call()
    return time.perf_counter() - start


async def _abba(
    rounds: int, calls: int, ours: Callable[[], Awaitable[object]],
    direct: Callable[[], Awaitable[object]],
) -> tuple[float, float]:  # fmt: skip
    """Seconds per call of `ours` and of `direct`: the best block of `calls` calls of each, over
    `rounds` rounds of A B B A blocks (the least disturbed by the machine's other work)."""
    await ours()  # warm both sides up once
    await direct()
    a, b = [], []
    for _ in range(rounds):
        a.append(await _timed(calls, ours))
        b.append(await _timed(calls, direct))
        b.append(await _timed(calls, direct))
        a.append(await _timed(calls, ours))
    return min(a) / calls, min(b) / calls


#: A tool as a workflow would write one: read the JSON arguments, print an answer.
SCRIPT = "import json, sys; print(json.load(sys.stdin)['timezone'])"


async def _command(
    command: tuple[str, ...], rounds: int, calls: int, *, baseline: str = "subprocess.run"
) -> tuple[float, float]:
    """Per call: `CommandTool.call`, and `baseline` (``subprocess.run``, or asyncio's own
    ``create_subprocess_exec`` + ``communicate``) running the same command the same way."""
    spec = CommandToolSpec(name="echo", command=command, parameters={"type": "object"})
    env = {"PATH": os.environ.get("PATH", os.defpath)}
    payload = b'{"timezone": "UTC"}'
    with tempfile.TemporaryDirectory() as folder:
        tool = CommandTool(spec, folder=Path(folder))

        async def ours() -> None:
            result = await tool.call(ARGUMENTS)
            assert not result.is_error, result.content

        async def direct() -> None:
            subprocess.run(command, input=payload, capture_output=True, cwd=folder, env=env)

        async def direct_asyncio() -> None:
            process = await asyncio.create_subprocess_exec(
                *command, stdin=PIPE, stdout=PIPE, stderr=PIPE, cwd=folder, env=env
            )
            await process.communicate(payload)

        other = direct if baseline == "subprocess.run" else direct_asyncio
        return await _abba(rounds, calls, ours, other)


async def _mcp(rounds: int, calls: int) -> tuple[float, float]:
    server = shutil.which("mcp-server-time", path=os.path.dirname(sys.executable))
    assert server, "mcp-server-time is in the dev extra"
    spec = McpServerSpec(name="clock", command=(server, "--local-timezone", "UTC"))
    parameters = StdioServerParameters(command=server, args=["--local-timezone", "UTC"])
    with tempfile.TemporaryDirectory() as folder, open(os.devnull, "w") as quiet:
        async with (
            McpServers([spec], folder=Path(folder)) as servers,
            Client(stdio_client(parameters, errlog=quiet)) as client,
        ):
            tool = next(t for t in servers.tools("clock") if t.name == "get_current_time")

            async def ours() -> None:
                result = await tool.call(ARGUMENTS)
                assert not result.is_error, result.content

            async def direct() -> None:
                result = await client.call_tool("get_current_time", ARGUMENTS)
                assert not result.is_error

            return await _abba(rounds, calls, ours, direct)


def main(quick: bool) -> list[Row]:
    rounds, calls = (1, 20) if quick else (5, 100)
    cat = shutil.which("cat")
    assert cat, "cat is on every POSIX machine"
    rows = []
    for what, command, scale, baseline in (
        ("cat", (cat,), 1, "subprocess.run"),
        ("cat", (cat,), 1, "asyncio's create_subprocess_exec + communicate"),
        ("a Python script", (sys.executable, "-c", SCRIPT), 10, "subprocess.run"),  # 20 ms each
    ):
        ours, direct = asyncio.run(
            _command(command, rounds, max(1, calls // scale), baseline=baseline)
        )
        rows.append(
            Row(
                f"tools: one command-tool call, {what} (baseline: {baseline} of the same command)",
                ours * 1e3,
                "ms",
                baseline=direct * 1e3,
                target=1.2,
            )
        )
    ours, direct = asyncio.run(_mcp(rounds, calls))
    rows.append(
        Row(
            "tools: one MCP call, mcp-server-time get_current_time (baseline: the MCP SDK's "
            "Client calling a second instance directly)",
            ours * 1e3,
            "ms",
            baseline=direct * 1e3,
            target=1.2,
        )
    )
    return rows
