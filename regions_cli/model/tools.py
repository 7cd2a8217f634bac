"""The frozen types of a workflow's ``tools:``: one spec per kind of tool.

A spec says what to run and within which bounds; `regions_cli.tools` turns a spec into a callable
tool. Every spec has a `name` (the key under ``tools:``), a `description` for the model and a
`timeout` in seconds for one call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

ToolKind = Literal["command", "python", "mcp", "rag", "region"]

#: Seconds one call may take when the workflow does not say.
DEFAULT_TOOL_TIMEOUT = 30.0


@dataclass(frozen=True)
class CommandToolSpec:
    """``{command: [ARGV...], parameters: SCHEMA}``: run a program (never a shell).

    The call's arguments arrive as JSON on its stdin, its stdout is the result. Its environment
    is ``PATH`` plus the variables named in `env` (taken from the caller's environment).
    """

    name: str
    command: tuple[str, ...]
    parameters: Mapping[str, Any]
    description: str = ""
    timeout: float = DEFAULT_TOOL_TIMEOUT
    env: tuple[str, ...] = ()
    kind: ClassVar[ToolKind] = "command"


@dataclass(frozen=True)
class PythonToolSpec:
    """``{python: "package.module:function"}``: call a Python function (sync or async).

    Its parameters come from the function's signature and type hints; `description` defaults
    to the first paragraph of its docstring.
    """

    name: str
    target: str
    description: str = ""
    timeout: float = DEFAULT_TOOL_TIMEOUT
    kind: ClassVar[ToolKind] = "python"


@dataclass(frozen=True)
class McpServerSpec:
    """``{mcp: {command: [ARGV...]} | {url: URL}}``: every tool an MCP server offers.

    Exactly one of `command` (the server runs as a child process, spoken to over stdio) and
    `url` (streamable HTTP) is set. `env` names the variables passed to a stdio server on top of
    the MCP SDK's safe default set (``PATH``, ``HOME``, ...); `timeout` bounds each call.
    """

    name: str
    command: tuple[str, ...] = ()
    url: str | None = None
    description: str = ""
    timeout: float = DEFAULT_TOOL_TIMEOUT
    env: tuple[str, ...] = ()
    kind: ClassVar[ToolKind] = "mcp"

    def __post_init__(self) -> None:
        if bool(self.command) == (self.url is not None):
            raise ValueError(f"tools.{self.name}: an MCP server needs exactly one of command, url")


@dataclass(frozen=True)
class RagToolSpec:
    """``{rag: STORE}``: search a RAG store, ``{query, k?}`` -> the best chunks."""

    name: str
    store: str
    description: str = ""
    timeout: float = DEFAULT_TOOL_TIMEOUT
    max_results: int = 5
    kind: ClassVar[ToolKind] = "rag"


@dataclass(frozen=True)
class RegionToolSpec:
    """``{region: NAME}``: ask another region and wait for its reply (an agent as a tool).

    The call's ``{request}`` goes to the region as a request from the calling region; the
    region answers it at once (its ``make_replies``) and the reply is the result.
    """

    name: str
    region: str
    description: str = ""
    timeout: float = DEFAULT_TOOL_TIMEOUT
    kind: ClassVar[ToolKind] = "region"


@dataclass(frozen=True)
class ToolLoopConfig:
    """A region's ``tool_loop:``: how many rounds of calls a step may take, which tools end
    the loop when called, and whether the model must call a tool before it answers."""

    max_iterations: int = 6
    terminal_tools: tuple[str, ...] = ()
    require_tool_call: bool = False


ToolSpec = CommandToolSpec | PythonToolSpec | McpServerSpec | RagToolSpec | RegionToolSpec
