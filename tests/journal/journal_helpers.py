"""Drive a journaled run in-process through the library's `Run` (for fast tests)."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from regions_cli.build import build_engine
from regions_cli.engine.barrier import Barrier
from regions_cli.engine.events import Event, EventBus, RunFinished
from regions_cli.engine.executor import Engine
from regions_cli.engine.message import Message
from regions_cli.model import Workflow
from regions_cli.runs.run import Run
from regions_cli.runs.store import RunFile
from regions_cli.workflow.api import load_workflow

FIXTURES = Path(__file__).parent / "fixtures"


async def drive(
    workflow_file: Path,
    *,
    run_file: Path | None = None,
    resume: Path | None = None,
    drop_chains: frozenset[str] = frozenset(),
    die_at_barrier: int | None = None,
    subscribers: Sequence[Callable[[Event], None]] = (),
    **extra: Any,
) -> tuple[int, list[Event], Path]:
    """Run (or continue) `workflow_file` with its run file; returns exit code, events, run file.

    `drop_chains` leaves chains of the first layer run out of the plan, as if they never ended;
    `die_at_barrier` stops before that barrier is committed and records nothing more, as if the
    process had been killed there.
    """
    workflow = load_workflow(workflow_file)
    cls = _DyingRun if die_at_barrier is not None else Run
    start: list[int] = []  # the layer the run starts at, once it is open
    build = _builder(drop_chains, start)
    run = cls.open(workflow, run_file=run_file, resume=resume, build=build, **extra)
    start.append(run.point.start_layer)
    if isinstance(run, _DyingRun):
        run.die_at = die_at_barrier
    events: list[Event] = []
    run.subscribe(events.append)
    for subscriber in subscribers:
        run.subscribe(subscriber)
    with run:
        finished = await run.execute()
    if run.failure is not None:  # as the CLI says it
        print(f"error: {run.failure}", file=sys.stderr)
    assert isinstance(finished, RunFinished) and run.path is not None
    return finished.exit_code, events, run.path


def _builder(drop_chains: frozenset[str], start: list[int]) -> Callable[[Workflow, EventBus], Any]:
    async def build(workflow: Workflow, bus: EventBus) -> Engine:
        if drop_chains:  # simulate chains that never finish (a process killed mid-layer)
            plan = list(workflow.plan)
            index = start[0]
            chains = tuple(c for c in plan[index].chains if c.name not in drop_chains)
            plan[index] = dataclasses.replace(plan[index], chains=chains)
            workflow = dataclasses.replace(workflow, plan=tuple(plan))
        return build_engine(workflow, bus)

    return build


class _DyingRun(Run):
    """A run whose process is "killed" just before the barrier before layer `die_at`: what it
    had not written is lost, and the end of the invocation is never recorded."""

    die_at: int | None = None

    async def at_barrier(self, barrier: Barrier) -> Sequence[Message]:
        if barrier.next_layer == self.die_at:
            assert self._recorder is not None
            self._recorder._buffer.clear()
            self._recorder._pending_chains.clear()
            self._dead = True
            raise asyncio.CancelledError
        return await super().at_barrier(barrier)

    def finish(self, finished: RunFinished, exit_code: int) -> None:
        if getattr(self, "_dead", False):
            assert self._recorder is not None
            self._recorder._buffer.clear()  # the events after the "death"
            return
        super().finish(finished, exit_code)


def traffic(path: Path) -> list[tuple[Any, ...]]:
    """The journal's effective traffic: what a comparison of two runs looks at."""
    with RunFile.open(path) as run:
        return [
            (m["id"], m["source"], m["destination"], m["role"], m["delivery"], m["recipient"])
            for m in run.messages()
        ]
