"""What every tool is: the `Tool` protocol, its `ToolResult`, `ToolError`, and `CheckedTool`,
the shared base that validates arguments, times the call and turns failures into error results.
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

#: Bytes of a tool's output kept in its result; the rest is read and dropped (so a chatty child
#: never blocks on a full pipe) and a note says how much was cut. 64 KiB is about 16k tokens:
#: more than any model context wants from one call.
OUTPUT_CAP = 64 * 1024


class ToolError(Exception):
    """A tool that cannot be set up (a bad spec, a module that does not import, an MCP server
    that does not start), worded for the user in one line naming the tool.

    A failing *call* is not a `ToolError` for the caller: it is a `ToolResult` with
    ``is_error`` set, which goes back to the model.
    """


@dataclass(frozen=True)
class ToolResult:
    """What one call gave back: text for the model, whether it failed, whether it was cut."""

    content: str
    is_error: bool = False
    truncated: bool = False
    duration: float = 0.0  # seconds, argument validation included


@runtime_checkable
class Tool(Protocol):
    """Something a model can call: a name, a description, a JSON Schema of its arguments."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def parameters(self) -> Mapping[str, Any]:
        """The JSON Schema (an object schema) the call's arguments must validate against."""
        ...

    async def call(self, arguments: Mapping[str, Any]) -> ToolResult:
        """Run once. Never raises for a failed call (that is an error result); only
        cancellation propagates."""
        ...


@runtime_checkable
class ToolTape(Protocol):
    """Where tool results are recorded or replayed (``--record`` / ``--replay`` cassettes):
    the tool loop runs every call through it. Recording runs `run` and keeps its result;
    replaying returns the recorded result and never runs the tool; otherwise it just runs."""

    async def call(
        self, tool: str, arguments: str, run: Callable[[], Awaitable[ToolResult]]
    ) -> ToolResult: ...


class LiveTape:
    """The `ToolTape` of a run without a cassette: every call runs."""

    async def call(
        self, tool: str, arguments: str, run: Callable[[], Awaitable[ToolResult]]
    ) -> ToolResult:
        return await run()


def named_variables(tool: str, names: Sequence[str], environ: Mapping[str, str]) -> dict[str, str]:
    """The variables a spec's ``env:`` names, from `environ`; `ToolError` naming the first one
    that is not set (never its value: these are often secrets)."""
    if missing := [name for name in names if name not in environ]:
        raise ToolError(f"tool {tool!r}: the variable {missing[0]} named in env: is not set")
    return {name: environ[name] for name in names}


def working_folder(tool: str, folder: Path) -> Path:
    """`folder` (the workflow's), checked once so a call never fails for want of it."""
    if not folder.is_dir():
        raise ToolError(f"tool {tool!r}: the working folder {folder} is not a folder")
    return folder


def error_result(message: str) -> ToolResult:
    return ToolResult(message, is_error=True)


def truncation_note(kept: int, total: int) -> str:
    return f"\n[output truncated: kept the first {kept} of {total} bytes]"


def capped_result(text: str, *, is_error: bool = False) -> ToolResult:
    """`text` as a result, cut to `OUTPUT_CAP` bytes of UTF-8 with a visible note."""
    data = text.encode("utf-8")
    if len(data) <= OUTPUT_CAP:
        return ToolResult(text, is_error=is_error)
    kept = data[:OUTPUT_CAP].decode("utf-8", errors="ignore")
    note = truncation_note(OUTPUT_CAP, len(data))
    return ToolResult(kept + note, is_error=is_error, truncated=True)


def as_text(value: object) -> str:
    """A return value as text for the model: strings as they are, anything else as JSON
    (``str()`` for what JSON cannot say)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False, default=str)


def checked_schema(tool: str, schema: Mapping[str, Any]) -> Draft202012Validator:
    """A validator for `schema`, or `ToolError` if it is not a JSON Schema of an object."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ToolError(
            f"tool {tool!r}: its parameters are not a valid JSON Schema: {exc.message}"
        ) from None
    if schema.get("type", "object") != "object":
        raise ToolError(
            f"tool {tool!r}: its parameters must be an object schema "
            f"(type: object), not type: {schema.get('type')}"
        )
    return Draft202012Validator(schema)


def argument_problem(validator: Draft202012Validator, arguments: object) -> str | None:
    """Why `arguments` do not fit the schema (one line), or None when they do."""
    if not isinstance(arguments, Mapping):
        return f"the arguments must be a JSON object, not {type(arguments).__name__}"
    error = best_match(validator.iter_errors(dict(arguments)))
    if error is None:
        return None
    where = "/".join(str(part) for part in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


class CheckedTool(ABC):
    """The shared half of every tool kind: `call` validates the arguments against
    `parameters`, runs `invoke`, and hands back an error result instead of raising, with the
    call's duration. Subclasses set `name`, `description`, `parameters` and write `invoke`.
    """

    name: str
    description: str
    parameters: Mapping[str, Any]

    def __init__(self, name: str, description: str, parameters: Mapping[str, Any]) -> None:
        self.name = name
        self.description = description
        self.parameters = parameters
        self._validator = checked_schema(name, parameters)

    async def call(self, arguments: Mapping[str, Any]) -> ToolResult:
        start = time.perf_counter()
        problem = argument_problem(self._validator, arguments)
        if problem is not None:
            result = error_result(f"invalid arguments for {self.name}: {problem}")
        else:
            try:
                result = await self.invoke(dict(arguments))
            except ToolError as exc:
                result = error_result(str(exc))
            except Exception as exc:  # a bug of a tool kind must reach the model, not the run
                result = error_result(f"{self.name} failed: {type(exc).__name__}: {exc}")
        return replace(result, duration=time.perf_counter() - start)

    @abstractmethod
    async def invoke(self, arguments: dict[str, Any]) -> ToolResult:
        """Run with arguments that fit `parameters`."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
