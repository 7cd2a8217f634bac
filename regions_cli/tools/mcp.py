"""MCP servers as tools: `McpServers` starts each server once, lists its tools, shares them, and
stops every server at the end, even on failure.

    async with McpServers(specs, folder=workflow_folder) as servers:
        clock = servers.tools("clock")          # one McpTool per tool the server offers
        result = await clock[0].call({"timezone": "Europe/Paris"})

A server runs over stdio (``command:``, started in the workflow's folder in a process group of
its own; the MCP SDK stops the group at the end) or streamable HTTP (``url:``). Each server's
client lives in a task of its own, so starting several servers overlaps and a server that
crashes only fails its own calls: each gets an error result (with the end of the server's
stderr), never an exception in the run. A server's stderr goes to a temporary file, not the
terminal.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CONNECTION_CLOSED, CallToolResult, TextContent
from mcp.types import Tool as ToolInfo

from regions_cli.model.tools import McpServerSpec
from regions_cli.tools.base import (
    CheckedTool,
    ToolError,
    ToolResult,
    as_text,
    capped_result,
    error_result,
    named_variables,
    working_folder,
)

#: Bytes of a crashed server's stderr quoted in the error result.
STDERR_TAIL = 2 * 1024
#: Seconds a server has to start and list its tools (a spec's `timeout` bounds each call; a
#: server started with ``uvx`` or ``npx`` may first install itself).
START_TIMEOUT = 60.0


def _tail(log: IO[str] | None) -> str:
    """The end of what a server wrote to its stderr file (the child shares no offset with us:
    read by position)."""
    if log is None:
        return ""
    size = os.fstat(log.fileno()).st_size
    data = os.pread(log.fileno(), STDERR_TAIL, max(0, size - STDERR_TAIL))
    return data.decode("utf-8", errors="replace").strip()


def result_text(result: CallToolResult) -> str:
    """An MCP call's content as text for the model: text blocks joined, other blocks named,
    the structured content as JSON when there is no text."""
    parts = [
        block.text if isinstance(block, TextContent) else f"[{block.type} content]"
        for block in result.content
    ]
    if not parts and result.structured_content is not None:
        return as_text(result.structured_content)
    return "\n".join(parts)


class McpServer:
    """One MCP server: its client, its tools, and whether it is still running."""

    def __init__(self, spec: McpServerSpec, folder: Path, environ: Mapping[str, str]) -> None:
        self.spec = spec
        self.folder = working_folder(spec.name, folder) if spec.command else folder
        self._env = named_variables(spec.name, spec.env, environ)
        self.client: Client | None = None
        self.tools: tuple[McpTool, ...] = ()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stderr: IO[str] | None = None
        self.failure: str | None = None  # why the server stopped before the end, if it did

    def _transport(self) -> AbstractAsyncContextManager[Any]:
        if self.spec.url is not None:
            return streamable_http_client(self.spec.url)
        # Open for the server's whole life, past its end (a crash is explained from it); closed
        # in `stop`.
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        program, *args = self.spec.command
        parameters = StdioServerParameters(
            command=program, args=args, env=self._env, cwd=self.folder
        )
        return stdio_client(parameters, errlog=self._stderr)

    async def start(self) -> None:
        """Start the server and list its tools; `ToolError` if it does not answer."""
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A failure that comes after `start` gave up waiting is said by `stop`, not by asyncio.
        ready.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._task = asyncio.create_task(self._serve(ready), name=f"mcp server {self.spec.name}")
        try:
            async with asyncio.timeout(START_TIMEOUT):
                await asyncio.shield(ready)
        except TimeoutError:
            await self.stop()
            raise ToolError(
                f"tool {self.spec.name!r}: the MCP server did not start within {START_TIMEOUT:g} s"
            ) from None
        except BaseException:
            await self.stop()
            raise

    async def _serve(self, ready: asyncio.Future[None]) -> None:
        """The client's whole life, in this one task (the SDK's contexts must be entered and
        left by the same task)."""
        try:
            async with Client(self._transport()) as client:
                listed = await self._list(client)
                self.client = client
                self.tools = tuple(McpTool(self, info) for info in listed)
                ready.set_result(None)
                await self._stop.wait()
        except Exception as exc:
            why = self._describe(exc)
            if not ready.done():
                ready.set_exception(ToolError(f"tool {self.spec.name!r}: {why}"))
            else:
                self.failure = why
        finally:
            self.client = None
            if not ready.done():
                ready.cancel()

    @staticmethod
    async def _list(client: Client) -> list[ToolInfo]:
        found: list[ToolInfo] = []
        cursor: str | None = None
        while True:
            page = await client.list_tools(cursor=cursor)
            found.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                return found

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, FileNotFoundError):
            return f"cannot start the MCP server: command not found: {self.spec.command[0]}"
        if isinstance(exc, ToolError):
            return str(exc)
        text = str(exc) or type(exc).__name__
        if isinstance(exc, ExceptionGroup):
            text = "; ".join(str(inner) or type(inner).__name__ for inner in exc.exceptions)
        # One line for the user: the last line of stderr says most (the end of a traceback).
        last = _tail(self._stderr).rpartition("\n")[2]
        where = ""
        if self.spec.url is not None:  # the host only: a URL's userinfo may hold a password
            where = f" at {urlsplit(self.spec.url).netloc.rpartition('@')[2]}"
        return f"the MCP server{where} failed: {text}" + (
            f"; its stderr ends: {last}" if last else ""
        )

    def why_not_running(self) -> str:
        why = self.failure or _tail(self._stderr)
        return f"the MCP server {self.spec.name!r} is not running" + (
            f" (it stopped: {why})" if why else ""
        )

    async def stop(self) -> None:
        """Stop the server (the SDK closes stdin, then SIGTERM/SIGKILL the process group)."""
        self._stop.set()
        task = self._task
        if task is not None:
            if self.client is None and not task.done():
                # Still starting (a server that never answers): nothing to close gracefully.
                task.cancel()
            await asyncio.wait({task})  # its own end, whatever it was; our cancel propagates
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


class McpTool(CheckedTool):
    """One tool of a running MCP server (its own name, description and input schema)."""

    def __init__(self, server: McpServer, info: ToolInfo) -> None:
        super().__init__(info.name, info.description or "", info.input_schema)
        self.server = server

    async def invoke(self, arguments: dict[str, Any]) -> ToolResult:
        client = self.server.client
        if client is None:
            return error_result(f"{self.name}: {self.server.why_not_running()}")
        timeout = self.server.spec.timeout
        try:
            async with asyncio.timeout(timeout):
                result = await client.call_tool(self.name, arguments)
        except TimeoutError:
            return error_result(f"{self.name}: no answer from the MCP server within {timeout:g} s")
        except MCPError as exc:
            if exc.code == CONNECTION_CLOSED:
                return error_result(f"{self.name}: {self.server.why_not_running()}")
            return error_result(f"{self.name}: {exc}")
        return capped_result(result_text(result), is_error=result.is_error)


class McpServers:
    """Every MCP server of a workflow, started once on entering and stopped on leaving.

    Entering starts all servers concurrently; if one fails, those started are stopped and
    `ToolError` names the failing one.
    """

    def __init__(
        self,
        specs: Sequence[McpServerSpec],
        *,
        folder: Path,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        environ = os.environ if environ is None else environ
        self._servers = {spec.name: McpServer(spec, folder, environ) for spec in specs}

    def tools(self, server: str) -> tuple[McpTool, ...]:
        """The tools `server` offers (as listed when it started)."""
        return self._servers[server].tools

    async def __aenter__(self) -> McpServers:
        results = await asyncio.gather(
            *(server.start() for server in self._servers.values()), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await self.aclose()
            raise failures[0]
        return self

    async def aclose(self) -> None:
        """Stop every server (concurrently); safe to call twice."""
        await asyncio.gather(*(server.stop() for server in self._servers.values()))

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
