"""The tool loop: inside one step of an LLM region, the model calls tools until it answers.

Every model call of an LLM region goes through `BaseRegion.complete`; when the region has a
`Toolbox` (its ``tools:``), `run_tool_loop` makes that call a loop:

1. the model is asked with the region's tools offered (`ToolDefinition`s; ``tool_choice``
   ``required`` on the first round when ``tool_loop.require_tool_call`` is set, else ``auto``);
2. if it answers with text and no calls, that text is the answer (stopped ``answered``);
3. otherwise it is one *iteration*: the calls it asked for run concurrently, each through the
   run's `ToolTape` (recorded, replayed or just run), each as a `ToolCalled` and a
   `ToolResulted` event; the assistant turn (with its ``tool_calls``) and one ``tool`` turn per
   result, in the model's order, are added to the chat, and the model is asked again.

A call that cannot run (arguments that are not JSON, not a JSON object or do not fit the tool's
schema, a tool the region does not have) and a call that fails (a timeout, a non-zero exit, an
MCP error) are *error results*: they go back to the model as ``error: ...`` and count as the
iteration they are in; they never fail the step.

The loop stops:

* ``answered`` -- the model answered with text;
* ``terminal_tool`` -- a round called a tool named in ``tool_loop.terminal_tools`` and it
  succeeded: the other calls of that round still run, and the terminal tool's result is the
  answer (the first such call in the model's order). A terminal call that failed does not end
  the loop: the model gets the error like any other and may try again;
* ``max_iterations`` -- ``tool_loop.max_iterations`` rounds of calls have run: the model is
  asked once more with ``tool_choice: none`` (the tools stay listed, so the chat makes sense to
  it) and that text is the answer; calls it asks for anyway are not run;
* ``error`` -- the model call failed (the step fails, as without tools) or the model gave
  neither text nor a call (no answer: the method keeps the request pending);
* with ``require_tool_call``, an answer given before any call is refused: the model is told to
  call a tool first, and that round counts as an iteration.

A step reports the most telling reason of its loops (one per model call it made):
``error`` > ``max_iterations`` > ``terminal_tool`` > ``answered`` (`summary_reason`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from regions_cli.engine.events import Event, ToolCalled, ToolResulted
from regions_cli.llm.base import (
    ChatMessage,
    Completion,
    CompletionRequest,
    ToolCall,
    ToolDefinition,
)
from regions_cli.model.tools import ToolLoopConfig
from regions_cli.tools.base import LiveTape, Tool, ToolResult, ToolTape

StopReason = Literal["answered", "terminal_tool", "max_iterations", "error"]

#: Most telling first: a step's reason is the first of these any of its loops stopped with.
STOP_ORDER: tuple[StopReason, ...] = ("error", "max_iterations", "terminal_tool", "answered")

#: What the model is told when it answers before calling a tool under ``require_tool_call``.
CALL_FIRST = "Call one of the tools before you answer."


def summary_reason(reasons: Sequence[str]) -> str | None:
    """The step's `stopped_reason`: the most telling of its loops' (None: no loop ran)."""
    for reason in STOP_ORDER:
        if reason in reasons:
            return reason
    return None


def handed_back(result: ToolResult) -> str:
    """A result as the model (or a ToolRegion's asker) reads it: an error says it is one."""
    return f"error: {result.content}" if result.is_error else result.content


@dataclass(frozen=True)
class Toolbox:
    """The tools a region may call (by name), how its loop is bounded, and the run's tape."""

    tools: Mapping[str, Tool]
    config: ToolLoopConfig = field(default_factory=ToolLoopConfig)
    tape: ToolTape = field(default_factory=LiveTape)

    @property
    def definitions(self) -> tuple[ToolDefinition, ...]:
        """The tools as offered to the model, in declaration order."""
        return tuple(
            ToolDefinition(tool.name, tool.description, tool.parameters)
            for tool in self.tools.values()
        )


def parse_arguments(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The model's argument text as an object, or why it is not one (blank means ``{}``)."""
    if not text.strip():
        return {}, None
    try:
        value = json.loads(text)
    except ValueError as exc:
        return None, f"the arguments are not valid JSON ({exc}): {text[:200]}"
    if not isinstance(value, dict):
        return None, f"the arguments must be a JSON object, not {type(value).__name__}"
    return value, None


async def run_call(
    toolbox: Toolbox,
    region: str,
    call: ToolCall,
    iteration: int,
    emit: Callable[[Event], None],
) -> ToolResult:
    """Run one call through the tape, with its `ToolResulted` event (its `ToolCalled` has been
    emitted). Never raises but for cancellation: every failure is an error result."""
    tool = toolbox.tools.get(call.name)
    arguments, problem = parse_arguments(call.arguments)
    if tool is None:
        known = ", ".join(toolbox.tools) or "none"
        result = ToolResult(f"there is no tool named {call.name!r} (tools: {known})", True)
    elif arguments is None:
        result = ToolResult(f"{call.name}: {problem}", is_error=True)
    else:
        parsed = arguments

        async def run() -> ToolResult:
            return await tool.call(parsed)

        result = await toolbox.tape.call(call.name, call.arguments, run)
    emit(
        ToolResulted(
            region=region,
            tool=call.name,
            call_id=call.id,
            content=handed_back(result),
            is_error=result.is_error,
            truncated=result.truncated,
            duration=result.duration,
        )
    )
    return result


def _with_ids(calls: Sequence[ToolCall], iteration: int) -> tuple[ToolCall, ...]:
    """`calls` with an id each, unique in the round (a backend may leave them blank)."""
    seen: set[str] = set()
    fixed: list[ToolCall] = []
    for index, call in enumerate(calls):
        call_id = call.id
        if not call_id or call_id in seen:
            call_id = f"call_{iteration}_{index + 1}"
        seen.add(call_id)
        fixed.append(call if call_id == call.id else ToolCall(call_id, call.name, call.arguments))
    return tuple(fixed)


async def run_round(
    toolbox: Toolbox,
    region: str,
    calls: Sequence[ToolCall],
    iteration: int,
    emit: Callable[[Event], None],
) -> list[ToolResult]:
    """Run a round's calls concurrently; the results in the calls' order. Every `ToolCalled`
    is emitted before the first call starts."""
    for call in calls:
        emit(
            ToolCalled(
                region=region,
                tool=call.name,
                call_id=call.id,
                arguments=call.arguments,
                iteration=iteration,
            )
        )
    if len(calls) == 1:
        return [await run_call(toolbox, region, calls[0], iteration, emit)]
    async with asyncio.TaskGroup() as group:
        tasks = [
            group.create_task(run_call(toolbox, region, call, iteration, emit)) for call in calls
        ]
    return [task.result() for task in tasks]


@dataclass(frozen=True)
class LoopEnd:
    """How a loop ended: the answer (None: none) and why it stopped."""

    text: str | None
    reason: StopReason


#: Asks the model once (the region records the call: event, budget); raises if the call fails.
Ask = Callable[[CompletionRequest], Awaitable[Completion]]


async def run_tool_loop(
    ask: Ask,
    toolbox: Toolbox,
    region: str,
    messages: Sequence[ChatMessage],
    *,
    purpose: str,
    json_schema: Mapping[str, Any] | None,
    emit: Callable[[Event], None],
) -> LoopEnd:
    """The loop described in the module docstring, from the chat `messages`. A failing model
    call propagates (the caller notes the ``error`` stop)."""
    config = toolbox.config
    offered = toolbox.definitions
    chat = list(messages)
    called = False

    async def ask_with(choice: Literal["auto", "required", "none"]) -> Completion:
        return await ask(
            CompletionRequest(
                messages=tuple(chat),
                json_schema=json_schema,
                purpose=purpose,
                tools=offered,
                tool_choice=choice,
            )
        )

    for iteration in range(1, config.max_iterations + 1):
        completion = await ask_with(
            "required" if config.require_tool_call and not called else "auto"
        )
        if not completion.tool_calls:
            if config.require_tool_call and not called:
                chat += [ChatMessage("assistant", completion.text), ChatMessage("user", CALL_FIRST)]
                continue
            text = completion.text.strip()
            return LoopEnd(text or None, "answered" if text else "error")
        called = True
        calls = _with_ids(completion.tool_calls, iteration)
        results = await run_round(toolbox, region, calls, iteration, emit)
        chat.append(ChatMessage("assistant", completion.text, tool_calls=calls))
        chat += [
            ChatMessage("tool", handed_back(result), tool_call_id=call.id)
            for call, result in zip(calls, results, strict=True)
        ]
        for call, result in zip(calls, results, strict=True):
            if call.name in config.terminal_tools and not result.is_error:
                return LoopEnd(result.content, "terminal_tool")
    final = await ask_with("none")
    return LoopEnd(final.text.strip() or None, "max_iterations")
