"""What ``regions tools FILE`` reports: every tool each region of a workflow can call, as its
model sees it (name, description, JSON Schema of the arguments), and whether every tool answers.

Each ``tools:`` entry is set up as a run sets it up, without calling it: a command's program is
looked up and its ``env:`` variables read, a Python target is imported, an MCP server is started
(once) and asked for its tools, then stopped. A RAG store is not opened (that would embed its
documents): a rag tool is listed from its spec. Every entry that cannot be set up is one
problem, worded in one line; the others are still listed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regions_cli.model import Workflow
from regions_cli.model.tools import (
    REGION_TOOL_PARAMETERS,
    CommandToolSpec,
    McpServerSpec,
    PythonToolSpec,
    RagToolSpec,
    RegionToolSpec,
    ToolKind,
    ToolSpec,
    find_program,
)
from regions_cli.rag.base import Hit, RagError
from regions_cli.tools.base import ToolError
from regions_cli.tools.command import CommandTool
from regions_cli.tools.mcp import McpServers
from regions_cli.tools.python import PythonTool
from regions_cli.tools.rag import RagTool


@dataclass(frozen=True)
class OfferedTool:
    """One tool a region can call: the name its model calls, the ``tools:`` entry it comes
    from, and what the model is told about it (`parameters` is None when the entry could not
    be set up)."""

    name: str
    entry: str
    kind: ToolKind
    description: str
    parameters: Mapping[str, Any] | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entry": self.entry,
            "kind": self.kind,
            "description": self.description,
            "parameters": None if self.parameters is None else dict(self.parameters),
        }


@dataclass(frozen=True)
class Catalog:
    """Per region (those with tools, and ToolRegions) the tools it can call, and every
    problem found setting the tools up."""

    regions: Mapping[str, tuple[OfferedTool, ...]]
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "regions": {
                region: [tool.as_dict() for tool in tools] for region, tools in self.regions.items()
            },
            "problems": list(self.problems),
        }


class _StoreNotOpened:
    """The store a rag tool is listed over: `regions tools` never calls a tool, and opening the
    real store would embed its documents."""

    async def search(
        self,
        query: str,
        *,
        k: int | None = None,
        threshold: float = 0.0,
        actors: Sequence[str] | None = None,
    ) -> list[Hit]:
        raise RagError("the store is not opened by `regions tools`")

    async def update_chunk(
        self, chunk_id: int, content: str, actors: Sequence[str] | None = None
    ) -> int:
        raise RagError("the store is not opened by `regions tools`")

    async def delete_chunks(self, chunk_ids: Sequence[int]) -> int:
        raise RagError("the store is not opened by `regions tools`")

    async def add_text(
        self, content: str, actors: Sequence[str] = (), document: str | None = None
    ) -> list[int]:
        raise RagError("the store is not opened by `regions tools`")


def _program_problem(name: str, program: str, folder: Path) -> str:
    """Why a command's `program` cannot run (it was not found), in one line."""
    if "/" in program:
        return f"tool {name!r}: {program} is not an executable file in {folder}"
    return f"tool {name!r}: command not found on PATH: {program}"


def _offered_by(
    spec: ToolSpec, workflow: Workflow, environ: Mapping[str, str]
) -> tuple[OfferedTool, ...]:
    """What a non-MCP entry offers (one tool); `ToolError` when it cannot be set up."""
    folder = workflow.base_dir
    if isinstance(spec, CommandToolSpec):
        tool = CommandTool(spec, folder=folder, environ=environ)
        if find_program(spec.command[0], folder, environ.get("PATH", os.defpath)) is None:
            raise ToolError(_program_problem(spec.name, spec.command[0], folder))
        return (OfferedTool(spec.name, spec.name, spec.kind, tool.description, tool.parameters),)
    if isinstance(spec, PythonToolSpec):
        python = PythonTool(spec)
        return (
            OfferedTool(spec.name, spec.name, spec.kind, python.description, python.parameters),
        )
    if isinstance(spec, RagToolSpec):
        rag = RagTool(spec, _StoreNotOpened())
        return (OfferedTool(spec.name, spec.name, spec.kind, rag.description, rag.parameters),)
    if isinstance(spec, RegionToolSpec):
        asked = workflow.regions.get(spec.region)
        description = spec.description or (asked.task if asked is not None else "")
        return (OfferedTool(spec.name, spec.name, spec.kind, description, REGION_TOOL_PARAMETERS),)
    raise ToolError(f"tool {spec.name!r}: an MCP server is listed once it runs")


def _unavailable(spec: ToolSpec) -> OfferedTool:
    """An entry that could not be set up (a problem says why): listed without parameters."""
    return OfferedTool(spec.name, spec.name, spec.kind, spec.description, None)


async def _start(
    spec: McpServerSpec, stack: AsyncExitStack, folder: Path, environ: Mapping[str, str]
) -> McpServers:
    """One server started on `stack` (stopped when it closes); `ToolError` if it does not."""
    servers = McpServers([spec], folder=folder, environ=environ)
    return await stack.enter_async_context(servers)


async def catalog(workflow: Workflow, environ: Mapping[str, str] | None = None) -> Catalog:
    """Set up every tool of `workflow` (MCP servers started once, concurrently, and stopped
    before this returns) and list, per region, the tools it can call."""
    environ = os.environ if environ is None else environ
    offered: dict[str, tuple[OfferedTool, ...]] = {}
    failures: dict[str, str] = {}  # entry -> why it cannot be set up
    servers = [spec for spec in workflow.tools.values() if isinstance(spec, McpServerSpec)]
    async with AsyncExitStack() as stack:
        started = await asyncio.gather(
            *(_start(spec, stack, workflow.base_dir, environ) for spec in servers),
            return_exceptions=True,
        )
        for spec, result in zip(servers, started, strict=True):
            if isinstance(result, ToolError):
                failures[spec.name] = str(result)
                offered[spec.name] = (_unavailable(spec),)
            elif isinstance(result, BaseException):
                raise result
            else:
                offered[spec.name] = tuple(
                    OfferedTool(tool.name, spec.name, spec.kind, tool.description, tool.parameters)
                    for tool in result.tools(spec.name)
                )
        for other in workflow.tools.values():
            if isinstance(other, McpServerSpec):
                continue
            try:
                offered[other.name] = _offered_by(other, workflow, environ)
            except ToolError as exc:
                failures[other.name] = str(exc)
                offered[other.name] = (_unavailable(other),)
    regions = {
        name: tuple(
            tool for entry in _entries(region.tools, region.tool) for tool in offered[entry]
        )
        for name, region in workflow.regions.items()
        if region.tools or region.tool
    }
    problems = [failures[name] for name in workflow.tools if name in failures]
    return Catalog(regions, (*problems, *_clashes(regions)))


def _entries(tools: Sequence[str], tool: str | None) -> Iterator[str]:
    yield from tools
    if tool is not None:
        yield tool


def _clashes(regions: Mapping[str, tuple[OfferedTool, ...]]) -> Iterator[str]:
    """A region offered two tools of one name (an MCP server's tool named like another tool):
    its model could not tell them apart."""
    for region, tools in regions.items():
        seen: dict[str, str] = {}
        for tool in tools:
            if tool.parameters is None:
                continue
            if tool.name in seen:
                yield (
                    f"region {region!r}: two tools are called {tool.name!r} "
                    f"(from {seen[tool.name]} and {tool.entry})"
                )
            seen.setdefault(tool.name, tool.entry)
