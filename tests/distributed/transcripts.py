"""What two runs are compared on: every message, with its id (its content and cause chained),
who sent it where, and how it was delivered; from a run's events or from its run file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from regions_cli.build import build_engine_async
from regions_cli.engine.events import Event, EventBus
from regions_cli.engine.executor import Engine
from regions_cli.runs.store import RunFile
from regions_cli.workflow.api import load


async def engine_with_events(path: Path) -> tuple[Engine, list[Event]]:
    """The engine of the workflow at `path`, and the list its events go to as they happen."""
    loaded = load(path)
    assert loaded.workflow is not None, loaded.errors
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    return await build_engine_async(loaded.workflow, bus), events


def of_events(events: list[Event]) -> list[tuple[Any, ...]]:
    return [
        (e.message.id, e.message.source, e.message.destination, e.message.content, e.delivery)  # type: ignore[attr-defined]
        for e in events
        if e.kind == "message"
    ]


def of_run_file(path: Path) -> list[tuple[Any, ...]]:
    with RunFile.open(path) as run:
        return [
            (m["id"], m["source"], m["destination"], m["content"], m["delivery"])
            for m in run.messages()
        ]
