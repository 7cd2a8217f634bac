"""`CommandTool`: run a program per call, arguments as JSON on stdin, stdout as the result.

Safety, in the order a call meets it: the argv is run as is (never through a shell); the working
directory is the workflow's folder; the environment is ``PATH`` plus only the variables the
spec's ``env:`` names; the child leads a process group of its own, and a timeout or the caller's
cancellation (Ctrl-C) stops that whole group: SIGTERM, then SIGKILL after `KILL_GRACE` seconds.
stdout and stderr are read as they come: `OUTPUT_CAP` bytes of stdout are kept, the rest is read
and dropped (so the child never blocks on a full pipe), and the result says so. A call ends
when the program's stdout and stderr close and it exits: a program that leaves a background
process holding them open runs into its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from regions_cli.model.tools import CommandToolSpec
from regions_cli.tools.base import (
    OUTPUT_CAP,
    CheckedTool,
    ToolError,
    ToolResult,
    error_result,
    named_variables,
    truncation_note,
    working_folder,
)

#: Seconds between SIGTERM and SIGKILL when a command's process group is stopped.
KILL_GRACE = 2.0
#: Bytes of stderr kept (the last ones: the end of a traceback says what went wrong).
STDERR_TAIL = 4 * 1024
_READ_SIZE = 64 * 1024


class _Head:
    """The first `cap` bytes of a stream, and how many it had in all."""

    def __init__(self, cap: int) -> None:
        self.cap, self.data, self.total = cap, bytearray(), 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.cap - len(self.data)
        if room > 0:
            self.data += chunk[:room]


class _Tail:
    """The last `cap` bytes of a stream."""

    def __init__(self, cap: int) -> None:
        self.cap, self.data = cap, bytearray()

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        del self.data[: max(0, len(self.data) - self.cap)]


async def _drain(stream: asyncio.StreamReader | None, keep: _Head | _Tail) -> None:
    if stream is None:
        return
    while chunk := await stream.read(_READ_SIZE):
        keep.add(chunk)


async def _feed(stdin: asyncio.StreamWriter | None, data: bytes) -> None:
    """Write the arguments and close stdin; a child that exits without reading them is fine."""
    if stdin is None:
        return
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        stdin.write(data)
        await stdin.drain()
    stdin.close()  # as Process.communicate does: the transport flushes, then closes


def _signal_group(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)  # the child leads its own group: pgid == pid


async def stop_process_group(
    process: asyncio.subprocess.Process, grace: float = KILL_GRACE
) -> None:
    """SIGTERM the process group, wait up to `grace` seconds for its leader, then SIGKILL the
    group (members that ignored SIGTERM, or that outlived the leader, die too)."""
    _signal_group(process, signal.SIGTERM)
    exited = asyncio.ensure_future(process.wait())
    try:
        # asyncio.wait, not asyncio.timeout: this also runs in a task being cancelled (Ctrl-C),
        # where a timeout's expiry would surface as a second cancellation, not a TimeoutError.
        await asyncio.wait({exited}, timeout=grace)
    finally:  # also when cancelled again while waiting: never leave the group running
        _signal_group(process, signal.SIGKILL)
    await exited


class CommandTool(CheckedTool):
    """A `CommandToolSpec` ready to call, in `folder` with variables from `environ`.

    Raises `ToolError` if a variable the spec's ``env:`` names is not set in `environ`.
    """

    def __init__(
        self,
        spec: CommandToolSpec,
        *,
        folder: Path,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(spec.name, spec.description, spec.parameters)
        if not spec.command:
            raise ToolError(f"tool {spec.name!r}: command is empty")
        environ = os.environ if environ is None else environ
        self.spec = spec
        self.folder = working_folder(spec.name, folder)
        # Built once; the values never appear in a result, an error or a repr.
        self._env = {"PATH": environ.get("PATH", os.defpath)} | named_variables(
            spec.name, spec.env, environ
        )

    async def invoke(self, arguments: dict[str, Any]) -> ToolResult:
        program = self.spec.command[0]
        try:
            process = await asyncio.create_subprocess_exec(
                *self.spec.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=self.folder,
                env=self._env,
                start_new_session=True,
            )
        except FileNotFoundError:
            return error_result(f"{self.name}: command not found: {program}")
        except PermissionError:
            return error_result(f"{self.name}: not allowed to run {program}")
        except OSError as exc:
            return error_result(f"{self.name}: cannot run {program}: {exc.strerror or exc}")

        stdout, stderr = _Head(OUTPUT_CAP), _Tail(STDERR_TAIL)
        try:
            async with asyncio.timeout(self.spec.timeout):
                await asyncio.gather(
                    _feed(process.stdin, json.dumps(arguments).encode("utf-8")),
                    _drain(process.stdout, stdout),
                    _drain(process.stderr, stderr),
                )
                code = await process.wait()
        except TimeoutError:
            await stop_process_group(process)
            return error_result(
                f"{self.name}: timed out after {self.spec.timeout:g} s (the command was stopped)"
            )
        except BaseException:  # cancelled (Ctrl-C): the command must not outlive the call
            await stop_process_group(process)
            raise

        text = stdout.data.decode("utf-8", errors="replace")
        truncated = stdout.total > stdout.cap
        if truncated:
            text += truncation_note(stdout.cap, stdout.total)
        if code != 0:
            how = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
            tail = stderr.data.decode("utf-8", errors="replace").strip()
            return ToolResult(
                f"{self.name}: {program} {how}" + (f":\n{tail}" if tail else ""),
                is_error=True,
            )
        return ToolResult(text, truncated=truncated)
