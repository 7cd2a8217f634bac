"""Drive a journaled run in-process the way `regions_cli.runner` does (for fast tests)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from regions_cli.build import build_engine
from regions_cli.engine.events import Event, EventBus, RunFinished
from regions_cli.engine.journal import RunFile
from regions_cli.run_journal import RunJournal
from regions_cli.runner import RunOptions
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
    """Run (or continue) `workflow_file` with the journal; returns exit code, events, run file.

    `drop_chains` leaves chains of the first layer run out of the plan, as if they never ended;
    `die_at_barrier` stops before that barrier is committed and records nothing more, as if the
    process had been killed there.
    """
    workflow = load_workflow(workflow_file)
    options = RunOptions(workflow_file, run_file=run_file, resume=resume, **extra)
    journal = RunJournal.open(options, workflow)
    if drop_chains:  # simulate chains that never finish (a process killed mid-layer)
        index = journal.run_kwargs["start_layer"]
        plan = list(workflow.plan)
        chains = tuple(c for c in plan[index].chains if c.name not in drop_chains)
        plan[index] = dataclasses.replace(plan[index], chains=chains)
        workflow = dataclasses.replace(workflow, plan=tuple(plan))
    bus = EventBus()
    events: list[Event] = []
    journal.subscribe(bus)
    bus.subscribe(events.append)
    for subscriber in subscribers:
        bus.subscribe(subscriber)
    engine = build_engine(workflow, bus)
    journal.attach(engine)
    hook: Any = journal
    if die_at_barrier is not None:
        hook = _Dying(journal, die_at_barrier)
    try:
        result = await engine.run(barrier_hook=hook, **journal.run_kwargs)
    finally:
        await engine.aclose()
    if die_at_barrier is not None:
        journal.recorder._buffer.clear()  # the events after the "death"
        path = journal.path
        journal.close()
        return result.exit_code, events, path
    finished = [e for e in events if isinstance(e, RunFinished)]
    journal.finish(finished[-1] if finished else None, result.exit_code)
    path = journal.path
    journal.close()
    return result.exit_code, events, path


def traffic(path: Path) -> list[tuple[Any, ...]]:
    """The journal's effective traffic: what a comparison of two runs looks at."""
    with RunFile.open(path) as run:
        return [
            (m["id"], m["source"], m["destination"], m["role"], m["delivery"], m["recipient"])
            for m in run.messages()
        ]


class _Dying:
    def __init__(self, journal: RunJournal, layer: int) -> None:
        self.journal = journal
        self.layer = layer

    async def at_barrier(self, barrier: Any) -> Any:
        if barrier.next_layer == self.layer:  # what a killed process had not written is lost
            self.journal.recorder._buffer.clear()
            self.journal.recorder._pending_chains.clear()
            raise asyncio.CancelledError
        return await self.journal.at_barrier(barrier)
