"""`WorkflowRegion`: answers each request by running another workflow (``workflow:``).

For each pending request, `make_replies` loads and verifies the sub-workflow file (a file with
errors fails the step with its first one), builds it with the same builder as the enclosing
run (the same LLM options: ``--replay``, ``--record``, ``--cache``; nothing else is shared: its
own regions, models, stores and budget), and runs it to its end in-process:

* what it starts with: the request, injected as a request from this region's name to
  ``entry:`` (default: the destination of its first ``inject:`` item, else its first region),
  after its own ``inject:`` messages except the requests to ``entry``, which the request
  replaces (so a part can carry a sample request for running it alone; its other injected
  messages, e.g. context for a region, are kept). This region's name is an external address
  inside the sub-workflow: what the sub-workflow says to it (or to any external address) is
  its output;
* the reply: the sub-run's output (its messages to external addresses, joined by blank lines)
  goes to the asker, as the reply to the request. A sub-run with no output is answered with a
  reply saying so and the step reports ``false``; a sub-run that fails (or stops over its
  budget, or waits for a person) fails the step with its reason, so the step's ``retries`` and
  ``on_failure`` apply and the requests stay pending.

A sub-run writes no run file: resuming the enclosing run runs an interrupted step's sub-runs
again from the start. Its warnings and errors come out as notices of this region; its model
calls count against this region in the enclosing budget. The step's ``timeout`` covers all of
its sub-runs. A workflow may not run itself, directly or through others: `verify` refuses the
cycle, and `make_replies` refuses it again at run time (and refuses nesting deeper than
`MAX_DEPTH`).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

from regions_cli.engine.events import Event, EventBus, LLMCalled, Notice
from regions_cli.engine.message import Message, Origin
from regions_cli.engine.regions.base import BaseRegion, Entry, Outcome
from regions_cli.llm.base import Usage
from regions_cli.text import plural

if TYPE_CHECKING:
    from regions_cli.engine.executor import Engine, RunResult
    from regions_cli.model import Workflow

#: How deeply workflows may run one another (a guard beside the cycle check).
MAX_DEPTH = 8
#: The reply to a request whose sub-run said nothing to an external address.
NO_OUTPUT = "The sub-workflow {name} produced no output."


class SubWorkflowError(Exception):
    """A sub-workflow cannot be loaded, would recurse, or its run failed; one line."""


class SubWorkflows(Protocol):
    """How a WorkflowRegion loads and builds the workflows it runs (`regions_cli.build`
    provides it). `lineage` is the files of the workflows enclosing the region, outermost
    first, its own last."""

    @property
    def lineage(self) -> tuple[Path, ...]: ...

    def load(self, path: Path) -> Workflow:
        """The verified workflow at `path`; `SubWorkflowError` if it has errors."""
        ...

    async def build(self, workflow: Workflow, bus: EventBus) -> Engine:
        """A ready engine for `workflow`, reporting to `bus`."""
        ...


def entry_of(workflow: Workflow, entry: str | None) -> str:
    """The region a request goes to: `entry`, else the first ``inject:`` item's destination,
    else the first region."""
    if entry:
        return entry
    if workflow.inject:
        return workflow.inject[0].destination
    return next(iter(workflow.regions), "")


class WorkflowRegion(BaseRegion):
    """Answers each request with the output of a run of another workflow."""

    type_name: ClassVar[str] = "WorkflowRegion"
    default_task: ClassVar[str] = "Answer each request by running a sub-workflow."

    async def make_replies(self) -> Outcome:
        """Run the sub-workflow once per pending request, in arrival order, and reply with
        its output (see the module docstring)."""
        if not self.requests:
            return Outcome.nothing("no incoming requests")
        workflow = self._load()
        pending, self.requests = self.requests, []
        silent = 0
        for request in pending:
            outputs = await self._run(workflow, request)
            text = "\n\n".join(m.content for m in outputs)
            if not text:
                silent += 1
                text = NO_OUTPUT.format(name=workflow.name)
            self.post(request.source, "reply", text, cause=request.cause)
        summary = f"ran {workflow.name} for {plural(len(pending), 'request')}"
        if silent:
            return Outcome.false(f"{summary}; {silent} produced no output")
        return Outcome.ok(summary)

    def _load(self) -> Workflow:
        runner = self.context.subworkflows
        path = self.config.workflow
        if runner is None or path is None:
            raise SubWorkflowError(f"{self.name}: no sub-workflow to run (`workflow:` not set)")
        path = path.resolve()
        lineage = [p.resolve() for p in runner.lineage]
        if path in lineage:
            chain = " -> ".join(p.name for p in [*lineage[lineage.index(path) :], path])
            raise SubWorkflowError(f"{self.name}: a workflow may not run inside itself: {chain}")
        if len(lineage) >= MAX_DEPTH:
            raise SubWorkflowError(
                f"{self.name}: sub-workflows nested more than {MAX_DEPTH} deep: {path.name}"
            )
        workflow = runner.load(path)
        entry = entry_of(workflow, self.config.entry)
        if entry not in workflow.regions:
            raise SubWorkflowError(f"{self.name}: {path.name} has no region {entry!r} (entry)")
        if self.name in workflow.regions:
            raise SubWorkflowError(
                f"{self.name}: {path.name} has a region named {self.name} too, so its answers "
                "would not reach this region: rename one of them"
            )
        return workflow

    async def _run(self, workflow: Workflow, request: Entry) -> list[Message]:
        """Run `workflow` for one request; its output, or `SubWorkflowError` if it failed."""
        from regions_cli.engine.executor import initial_messages  # the executor imports us

        assert self.context.subworkflows is not None  # `_load` checked
        bus = EventBus()
        bus.subscribe(self._forward)
        engine = await self.context.subworkflows.build(workflow, bus)
        entry = entry_of(workflow, self.config.entry)
        try:
            messages = [
                m
                for m in initial_messages(workflow)
                if m.role != "request" or m.destination != entry
            ]
            messages.append(
                Message(
                    source=self.name,
                    destination=entry,
                    role="request",
                    content=request.content,
                    origin=Origin(ordinal=len(workflow.inject), injected=True),
                    cause=request.cause,
                )
            )
            await engine.inject(messages)
            result = await engine.run(inject_initial=False)
        finally:
            await engine.aclose()
        return self._outputs(workflow, result)

    def _outputs(self, workflow: Workflow, result: RunResult) -> list[Message]:
        if result.status == "interrupted":  # this step was cancelled (a timeout, Ctrl-C)
            raise asyncio.CancelledError
        if result.status != "ok":
            reason = result.error or result.status
            raise SubWorkflowError(f"sub-workflow {workflow.name} ended {result.status}: {reason}")
        return result.outputs

    def _forward(self, event: Event) -> None:
        """A sub-run's model calls count against this region; its warnings and errors are
        this region's notices."""
        if isinstance(event, LLMCalled):
            usage = Usage(event.prompt_tokens, event.completion_tokens)
            self.context.record_usage(self.name, usage, event.cached)
        elif isinstance(event, Notice) and event.level in ("warning", "error"):
            self.notice(event.level, f"sub-workflow: {event.text}")
