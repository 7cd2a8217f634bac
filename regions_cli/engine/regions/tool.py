"""`ToolRegion`: no model; it answers each request by running its tool (``tool:``).

`make_replies` takes the pending requests in arrival order, one call each: a request whose
content is a JSON object is the call's arguments; any other content (text, or JSON that is not
an object) becomes ``{"input": CONTENT}``. The call runs through the run's `ToolTape` (so
``--replay`` runs nothing) as a `ToolCalled` (iteration 1, the request's message id as the
call id) and a `ToolResulted` event. The reply to the asker is the result; a failed call (an
error result) is answered too, with ``error: ...``, and the step reports ``false`` with the
first failure. With the control flow of a state machine this makes "write, run, fix" loops.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from regions_cli.engine.regions.base import BaseRegion, Entry, Outcome
from regions_cli.engine.toolloop import handed_back, run_round
from regions_cli.llm.base import ToolCall
from regions_cli.text import plural


def call_arguments(content: str) -> str:
    """A request's content as the JSON text of a call's arguments (see the module docstring)."""
    try:
        value: Any = json.loads(content)
    except ValueError:
        value = None
    if isinstance(value, dict):
        return content
    return json.dumps({"input": content}, ensure_ascii=False)


class ToolRegion(BaseRegion):
    """Answers each request with the result of its tool."""

    type_name: ClassVar[str] = "ToolRegion"
    default_task: ClassVar[str] = "Answer each request by running a tool."

    async def make_replies(self) -> Outcome:
        """Run the tool once per pending request, in arrival order, and reply with the result."""
        if not self.requests:
            return Outcome.nothing("no incoming requests")
        toolbox = self.context.toolbox
        if toolbox is None or len(toolbox.tools) != 1:
            return Outcome.false(f"no tool to run (`tool:` of {self.name} not built)")
        (name,) = toolbox.tools
        pending, self.requests = self.requests, []
        failures: list[str] = []
        for index, request in enumerate(pending):
            call = ToolCall(self._call_id(request, index), name, call_arguments(request.content))
            (result,) = await run_round(toolbox, self.name, [call], 1, self.context.emit)
            if result.is_error:
                failures.append(result.content)
            self.post(request.source, "reply", handed_back(result), cause=request.cause)
        ran = f"ran {name} for {plural(len(pending), 'request')}"
        if failures:
            return Outcome.false(f"{ran}; {len(failures)} failed: {failures[0][:200]}")
        return Outcome.ok(ran)

    def _call_id(self, request: Entry, index: int) -> str:
        return request.cause or f"{self.name}-{self.origin.layer}-{index + 1}"
