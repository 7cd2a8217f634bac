"""`RegionTool`: another region as a tool (``tools: {critic: {region: Critic}}``).

A call ``{request: TEXT}`` made by region A asks region B at once, inside A's step:

* B's lock is taken first, so B is never in two steps at a time: if B is running a step in
  another chain, the call waits for it (the spec's ``timeout`` covers the wait and the answer);
* the request goes straight into B as a request from A (checked against B's ``input_schema``
  if it has one), alone: B's other pending requests are set aside while it runs, so its
  ``make_replies`` answers only this one, and they are back afterwards (with anything
  delivered to B meanwhile);
* the reply B posts in answer is the result (several replies, e.g. a FeedForwardRegion's one
  per connection, are one result: their distinct texts joined by blank lines). Nothing B posts
  during the call is delivered: the exchange is not a message of the run (no delivery number,
  so resuming a run never hands it back); it is recorded as A's ``tool_call``/``tool_result``
  and B's own events (its model calls, its tool calls);
* a B that gives no reply (a RouterRegion forwards instead of answering), fails (its step
  would fail: its state is rolled back) or runs out of time is an error result for A's model.

No deadlock is possible: a region's call waits only for regions it names, and the build
refuses region tools that call in a circle (A -> A, or A -> B -> A, where each would wait for
the other's lock), as ``verify`` does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from regions_cli.engine.regions.base import BaseRegion, Entry, Outcome, StepFailed
from regions_cli.model.tools import RegionToolSpec
from regions_cli.tools.base import CheckedTool, ToolError, ToolResult, error_result

PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "request": {"type": "string", "minLength": 1, "description": "What to ask, in words."}
    },
    "required": ["request"],
    "additionalProperties": False,
}


class RegionTool(CheckedTool):
    """`spec` as a tool of `caller`: each call asks `target` (see the module docstring)."""

    def __init__(self, spec: RegionToolSpec, caller: BaseRegion, target: BaseRegion) -> None:
        task = target.task.strip().split("\n", 1)[0]
        description = spec.description or f"Ask {target.name} ({task})"
        super().__init__(spec.name, description, PARAMETERS)
        answer: Callable[[], Awaitable[Outcome]] | None = getattr(target, "make_replies", None)
        if answer is None:
            raise ToolError(
                f"tool {spec.name!r}: a {target.type_name} has no make_replies to answer with"
            )
        self._answer = answer
        self.spec = spec
        self.caller = caller
        self.target = target
        self._calls = 0

    async def invoke(self, arguments: dict[str, Any]) -> ToolResult:
        self._calls += 1
        request = Entry(self.caller.name, str(arguments["request"]), self._request_id())
        contract = self.target.input_contract
        if contract is not None and (problem := contract.problem(request.content)) is not None:
            return error_result(
                f"{self.name}: the request does not match {contract.where}: {problem}"
            )
        try:
            async with asyncio.timeout(self.spec.timeout):
                async with self.target.lock:
                    return await self._ask(request)
        except TimeoutError:
            return error_result(
                f"{self.name}: {self.target.name} gave no answer within {self.spec.timeout:g} s"
            )

    def _request_id(self) -> str:
        o = self.caller.origin
        return f"tool:{self.caller.name}:{self.name}:{o.layer}.{o.chain}.{o.step}:{self._calls}"

    async def _ask(self, request: Entry) -> ToolResult:
        """Run the target's make_replies on `request` alone (the caller holds its lock)."""
        target = self.target
        target.capture()
        target.begin_step(self.caller.origin)
        others, target.requests = target.requests, [request]
        try:
            outcome = await self._answer()
        except asyncio.CancelledError:
            target.rollback()
            raise
        except Exception as exc:  # its step would fail: nothing of it stays
            target.rollback()
            why = str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}"
            return error_result(f"{self.name}: {target.name} failed: {why}")
        answers = [
            m.content
            for m in target.take_outbox()
            if m.role == "reply" and m.cause == request.cause
        ]
        target.requests = others + [e for e in target.requests if e.cause != request.cause]
        target.release()
        if not answers:
            return error_result(
                f"{self.name}: {target.name} gave no reply"
                + (f" ({outcome.detail})" if outcome.detail else "")
            )
        return ToolResult("\n\n".join(dict.fromkeys(answers)))
