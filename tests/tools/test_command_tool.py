"""Command tools on real subprocesses: results, errors, the environment, timeouts, process
groups, cancellation and output caps."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from regions_cli.model.tools import CommandToolSpec
from regions_cli.tools.base import OUTPUT_CAP, ToolError
from regions_cli.tools.command import KILL_GRACE, CommandTool

ANY_OBJECT: Mapping[str, Any] = {"type": "object"}
NUMBERS: Mapping[str, Any] = {
    "type": "object",
    "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
    "required": ["a", "b"],
}


def python_tool(
    folder: Path,
    code: str,
    *,
    parameters: Mapping[str, Any] = ANY_OBJECT,
    timeout: float = 30.0,
    env: tuple[str, ...] = (),
    environ: Mapping[str, str] | None = None,
) -> CommandTool:
    spec = CommandToolSpec(
        name="t",
        command=(sys.executable, "-c", code),
        parameters=parameters,
        timeout=timeout,
        env=env,
    )
    return CommandTool(spec, folder=folder, environ=environ)


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its reaper counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


class PidReports:
    """A Unix socket the children of a test connect to and write their pids on, so a test
    waits for "the child is running" on an event rather than by polling."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pids: asyncio.Queue[list[int]] = asyncio.Queue()

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.pids.put_nowait(json.loads(await reader.read()))
        writer.close()


# A child that reports its pid and its own child's pid, ignores SIGTERM (so does its child),
# then sleeps: only SIGKILL to the whole process group stops both.
STUBBORN = """
import json, os, signal, socket, subprocess, sys, time
args = json.load(sys.stdin)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"])
s = socket.socket(socket.AF_UNIX)
s.connect(args["socket"])
s.sendall(json.dumps([os.getpid(), grandchild.pid]).encode())
s.close()
time.sleep(120)
"""


@pytest.fixture
async def reports(tmp_path: Path) -> AsyncIterator[PidReports]:
    reports = PidReports(tmp_path / "pids.sock")
    server = await asyncio.start_unix_server(reports._on_connect, path=reports.path)
    async with server:
        yield reports


async def test_arguments_arrive_as_json_on_stdin_and_stdout_is_the_result(tmp_path: Path) -> None:
    tool = python_tool(
        tmp_path,
        "import json, sys; a = json.load(sys.stdin); print(a['a'] + a['b'])",
        parameters=NUMBERS,
    )
    result = await tool.call({"a": 2, "b": 3})
    assert (result.content, result.is_error, result.truncated) == ("5\n", False, False)
    assert result.duration > 0


async def test_the_working_directory_is_the_workflows_folder(tmp_path: Path) -> None:
    tool = python_tool(tmp_path, "import os; print(os.getcwd(), end='')")
    assert (await tool.call({})).content == str(tmp_path)


async def test_only_path_and_the_named_variables_reach_the_command(tmp_path: Path) -> None:
    environ = {"PATH": os.environ["PATH"], "NAMED_TOKEN": "s3cret-1", "OTHER_TOKEN": "s3cret-2"}
    tool = python_tool(
        tmp_path,
        "import json, os; print(json.dumps(dict(os.environ)))",
        env=("NAMED_TOKEN",),
        environ=environ,
    )
    seen = json.loads((await tool.call({})).content)
    # (the interpreter may add LC_CTYPE on its own; nothing of the caller's beyond these)
    assert seen["NAMED_TOKEN"] == "s3cret-1"
    assert seen["PATH"] == os.environ["PATH"]
    assert "OTHER_TOKEN" not in seen
    assert set(seen) - {"LC_CTYPE"} == {"PATH", "NAMED_TOKEN"}
    assert "s3cret" not in repr(tool)


def test_a_named_variable_that_is_not_set_is_a_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(
        ToolError, match=r"^tool 't': the variable API_KEY named in env: is not set$"
    ):
        python_tool(tmp_path, "pass", env=("API_KEY",), environ={"PATH": "/usr/bin"})


async def test_a_non_zero_exit_is_an_error_result_with_the_end_of_stderr(tmp_path: Path) -> None:
    code = "import sys; sys.stderr.write('noise ' * 5000 + 'THE REAL PROBLEM'); sys.exit(3)"
    result = await python_tool(tmp_path, code).call({})
    assert result.is_error
    assert "exited with status 3" in result.content
    assert result.content.endswith("THE REAL PROBLEM")
    assert len(result.content) < 5000  # only the tail


async def test_a_missing_command_is_an_error_result(tmp_path: Path) -> None:
    spec = CommandToolSpec(name="t", command=("no-such-command-7f3a",), parameters=ANY_OBJECT)
    result = await CommandTool(spec, folder=tmp_path).call({})
    assert result.is_error
    assert result.content == "t: command not found: no-such-command-7f3a"


async def test_invalid_arguments_are_an_error_result_and_nothing_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    tool = python_tool(tmp_path, f"open({str(marker)!r}, 'w')", parameters=NUMBERS)
    wrong_type = await tool.call({"a": "two", "b": 3})
    missing = await tool.call({"a": 1})
    not_an_object = await tool.call([1, 2])  # type: ignore[arg-type]
    assert wrong_type.is_error and "a: 'two' is not of type 'number'" in wrong_type.content
    assert missing.is_error and "'b' is a required property" in missing.content
    assert not_an_object.is_error and "must be a JSON object, not list" in not_an_object.content
    assert not marker.exists()


async def test_a_timeout_stops_the_command(tmp_path: Path) -> None:
    result = await python_tool(tmp_path, "import time; time.sleep(60)", timeout=0.3).call({})
    assert result.is_error
    assert result.content == "t: timed out after 0.3 s (the command was stopped)"
    assert result.duration < 0.3 + KILL_GRACE


async def test_a_timeout_kills_a_group_that_ignores_sigterm(
    tmp_path: Path, reports: PidReports
) -> None:
    tool = python_tool(tmp_path, STUBBORN, timeout=4.0)
    result = await tool.call({"socket": str(reports.path)})
    child, grandchild = reports.pids.get_nowait()
    assert result.is_error and "timed out" in result.content
    assert result.duration >= 4.0 + KILL_GRACE * 0.9  # SIGTERM ignored: SIGKILL after grace
    assert not alive(child)
    assert not alive(grandchild)


async def test_cancelling_the_call_kills_the_process_group(
    tmp_path: Path, reports: PidReports
) -> None:
    tool = python_tool(tmp_path, STUBBORN)
    call = asyncio.create_task(tool.call({"socket": str(reports.path)}))
    child, grandchild = await asyncio.wait_for(reports.pids.get(), 20)
    assert alive(child) and alive(grandchild)
    call.cancel()  # what Ctrl-C does to the step running the tool
    with pytest.raises(asyncio.CancelledError):
        await call
    assert not alive(child)
    assert not alive(grandchild)


async def test_100_mb_on_stdout_is_capped_and_never_blocks_the_child(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "block = b'x' * (1 << 20)\n"
        "for _ in range(100):\n"
        "    sys.stdout.buffer.write(block)\n"
        "    sys.stderr.buffer.write(block)\n"  # both pipes at once: neither may fill up
    )
    result = await python_tool(tmp_path, code, timeout=60).call({})
    assert not result.is_error
    assert result.truncated
    assert result.content.startswith("x" * OUTPUT_CAP)
    note = f"\n[output truncated: kept the first {OUTPUT_CAP} of {100 << 20} bytes]"
    assert result.content == "x" * OUTPUT_CAP + note


async def test_a_command_that_does_not_read_its_stdin_is_fine(tmp_path: Path) -> None:
    tool = python_tool(tmp_path, "print('ok')", parameters=ANY_OBJECT)
    result = await tool.call({"blob": "b" * (1 << 20)})  # more than a pipe buffer, never read
    assert (result.content, result.is_error) == ("ok\n", False)


async def test_a_command_killed_by_a_signal_says_so(tmp_path: Path) -> None:
    code = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    result = await python_tool(tmp_path, code).call({})
    assert result.is_error
    assert "killed by signal 9" in result.content


def test_an_empty_command_or_a_bad_schema_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="command is empty"):
        CommandTool(CommandToolSpec("t", (), ANY_OBJECT), folder=tmp_path)
    with pytest.raises(ToolError, match="not a valid JSON Schema"):
        CommandTool(CommandToolSpec("t", ("true",), {"type": 7}), folder=tmp_path)
    with pytest.raises(ToolError, match="must be an object schema"):
        CommandTool(CommandToolSpec("t", ("true",), {"type": "string"}), folder=tmp_path)
    with pytest.raises(ToolError, match=r"the working folder .*/gone is not a folder"):
        CommandTool(CommandToolSpec("t", ("true",), ANY_OBJECT), folder=tmp_path / "gone")
