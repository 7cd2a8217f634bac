"""`PythonTool`: call a Python function named ``"package.module:function"``.

The parameters' JSON Schema comes from the signature and type hints (`parameters_of`): ``int``,
``float``, ``str``, ``bool``, ``list[...]``, ``dict[str, ...]``, ``X | None``; a parameter with a
default is not required. An ``async def`` is awaited on the event loop; a plain function runs in
a worker thread, so it never blocks the run. The return value is the result (a string as is,
anything else as JSON); an exception is an error result naming it.

A timeout returns an error result at once. Python cannot stop a thread, so a plain function
that overruns is abandoned: it runs on in a daemon thread of its own, which never holds up the
end of the run (a thread of asyncio's default executor would: ``asyncio.run`` waits for it).
Long or risky work belongs in a command tool, whose process group is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import threading
import types
import typing
from collections.abc import Callable
from typing import Any

from regions_cli.model.tools import PythonToolSpec
from regions_cli.tools.base import CheckedTool, ToolError, ToolResult, as_text, capped_result

_SIMPLE: dict[object, str] = {
    int: "integer",
    float: "number",
    str: "string",
    bool: "boolean",
    list: "array",
    tuple: "array",
    dict: "object",
    type(None): "null",
}


def _type_schema(hint: object) -> dict[str, Any] | None:
    """The JSON Schema of a type hint, or None when it has none."""
    if hint is Any or hint is inspect.Parameter.empty:
        return {}
    if hint in _SIMPLE:
        return {"type": _SIMPLE[hint]}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [_type_schema(arg) for arg in args]
        if any(option is None for option in options):
            return None
        return {"anyOf": options}
    if origin in (list, tuple, set, frozenset) and len(set(args) - {Ellipsis}) <= 1:
        items = _type_schema(args[0]) if args else {}
        return None if items is None else {"type": "array", "items": items}
    if origin is dict:
        values = _type_schema(args[1]) if len(args) == 2 else {}
        if (args and args[0] is not str) or values is None:
            return None
        return {"type": "object", "additionalProperties": values}
    if origin is typing.Literal and all(isinstance(arg, str | int | bool) for arg in args):
        return {"enum": list(args)}
    return None


def parameters_of(name: str, function: Callable[..., object]) -> dict[str, Any]:
    """The JSON Schema of `function`'s keyword arguments; `ToolError` for a parameter that a
    JSON call cannot fill (a positional-only one, ``*args``, a type without a JSON Schema)."""
    try:
        signature = inspect.signature(function)
        hints = typing.get_type_hints(function)
    except (TypeError, ValueError, NameError) as exc:
        raise ToolError(f"tool {name!r}: cannot read the function's signature: {exc}") from None
    properties: dict[str, Any] = {}
    required: list[str] = []
    extra = False
    for param in signature.parameters.values():
        if param.kind is param.VAR_KEYWORD:
            extra = True
            continue
        if param.kind in (param.POSITIONAL_ONLY, param.VAR_POSITIONAL):
            raise ToolError(
                f"tool {name!r}: parameter {param.name!r} cannot be passed by name; "
                "a tool's arguments are a JSON object"
            )
        schema = _type_schema(hints.get(param.name, param.empty))
        if schema is None:
            raise ToolError(
                f"tool {name!r}: parameter {param.name!r} has the type "
                f"{hints[param.name]!r}, which has no JSON Schema (use int, float, str, bool, "
                "list, dict or X | None)"
            )
        if param.default is param.empty:
            required.append(param.name)
        properties[param.name] = schema
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": extra,
    }


def resolve(name: str, target: str) -> Callable[..., object]:
    """Import ``"package.module:attribute.path"``; `ToolError` saying what failed."""
    module_name, colon, attribute = target.partition(":")
    if not colon or not module_name or not attribute:
        raise ToolError(f"tool {name!r}: python: {target!r} is not 'package.module:function'")
    try:
        found: object = importlib.import_module(module_name)
    except Exception as exc:  # an import runs arbitrary code: any failure is the module's
        raise ToolError(
            f"tool {name!r}: cannot import {module_name}: {type(exc).__name__}: {exc}"
        ) from None
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise ToolError(f"tool {name!r}: {module_name} has no {attribute}") from None
    if not callable(found):
        raise ToolError(f"tool {name!r}: {target} is not callable")
    return found


def _summary(function: Callable[..., object]) -> str:
    doc = inspect.getdoc(function) or ""
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip()


def _in_daemon_thread(
    name: str, function: Callable[..., object], arguments: dict[str, Any]
) -> asyncio.Future[object]:
    """Call `function` in a new daemon thread; the future gets its value or its exception."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[object] = loop.create_future()

    def settle(value: object, error: BaseException | None) -> None:
        if future.done():  # the call timed out or was cancelled meanwhile
            return
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)

    def run() -> None:
        value: object = None
        error: BaseException | None = None
        try:
            value = function(**arguments)
        except BaseException as exc:  # handed to the caller, not raised in this thread
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting any more
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=run, name=f"tool {name}", daemon=True).start()
    return future


class PythonTool(CheckedTool):
    """A `PythonToolSpec` ready to call (the module is imported here, so errors show early)."""

    def __init__(self, spec: PythonToolSpec) -> None:
        function = resolve(spec.name, spec.target)
        super().__init__(
            spec.name,
            spec.description or _summary(function),
            parameters_of(spec.name, function),
        )
        self.spec = spec
        self.function = function
        self._is_async = inspect.iscoroutinefunction(function)

    async def invoke(self, arguments: dict[str, Any]) -> ToolResult:
        deadline = asyncio.timeout(self.spec.timeout)
        try:
            async with deadline:
                if self._is_async:
                    value = await self.function(**arguments)  # type: ignore[misc]
                else:
                    value = await _in_daemon_thread(self.name, self.function, arguments)
        except TimeoutError as exc:
            if not deadline.expired():  # the function's own TimeoutError
                return capped_result(f"{self.name}: TimeoutError: {exc}", is_error=True)
            return capped_result(
                f"{self.name}: timed out after {self.spec.timeout:g} s", is_error=True
            )
        except Exception as exc:
            return capped_result(f"{self.name}: {type(exc).__name__}: {exc}", is_error=True)
        return capped_result(as_text(value))
