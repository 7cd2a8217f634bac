"""View benchmarks: what watching a run costs.

The generated workflow of `bench_engine` (1,000 regions, 100 layers, scripted backend) runs
once with no view (the baseline, same process) and once with each view subscribed, writing
to ``os.devnull``: the live view (rich Live refreshing 4 times a second on its own thread),
plain lines, and ``--json`` lines. The ratio is the slowdown a user sees. The scripted model
answers instantly, so every second of the run is event handling: the worst case for a view
(with a real model the same events are spread over minutes). A last row times one frame of
the live view with every region in the table's pool: what each refresh costs.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_engine import generated_workflow  # noqa: E402
from common import Row, best_of  # noqa: E402
from rich.console import Console  # noqa: E402

from regions_cli.build import build_engine  # noqa: E402
from regions_cli.engine.events import Event, EventBus  # noqa: E402
from regions_cli.model import Workflow  # noqa: E402
from regions_cli.view.jsonl import JsonlView  # noqa: E402
from regions_cli.view.live import LiveView  # noqa: E402
from regions_cli.view.plain import PlainView  # noqa: E402


async def timed_run(workflow: Workflow, subscriber: Callable[[Event], None] | None) -> float:
    bus = EventBus()
    if subscriber is not None:
        bus.subscribe(subscriber)
    engine = build_engine(workflow, bus)
    start = time.perf_counter()
    result = await engine.run()
    elapsed = time.perf_counter() - start
    assert result.ok, result.error
    return elapsed


def best_run(repeats: int, workflow: Workflow, make_view: Callable[[Any], Any] | None) -> float:
    """Fastest of `repeats` runs, each with a fresh view writing to /dev/null."""
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        with open(os.devnull, "w", encoding="utf-8") as sink:
            if make_view is None:
                best = min(best, asyncio.run(timed_run(workflow, None)))
                continue
            with make_view(sink) as view:
                best = min(best, asyncio.run(timed_run(workflow, view)))
    return best


def terminal(sink: Any) -> Console:
    return Console(file=sink, width=120, height=40, force_terminal=True, color_system="truecolor")


def main(quick: bool = False) -> list[Row]:
    regions, layers = (100, 10) if quick else (1000, 100)
    workflow = generated_workflow(regions, layers, chains=10 if quick else 50)
    repeats = 1 if quick else 3
    size = f"{regions} regions x {layers} layers"

    bare = best_run(repeats, workflow, None)
    views: list[tuple[str, Callable[[Any], Any]]] = [
        ("live view (4 refreshes/s)", lambda sink: LiveView(terminal(sink))),
        ("plain lines", PlainView),
        ("--json lines", JsonlView),
    ]
    rows = []
    for label, make_view in views:
        figure = best_run(repeats, workflow, make_view)
        rows.append(
            Row(f"view: {size} with {label}", figure, "s", bare,
                note="vs the same run with no view; no target: a model-free worst case")
        )  # fmt: skip

    # One frame of the live view once every region has been busy (the table's whole pool).
    with open(os.devnull, "w", encoding="utf-8") as sink:
        console = terminal(sink)
        view = LiveView(console)
        asyncio.run(timed_run(workflow, view))
        frame = best_of(5 if quick else 20, lambda: console.print(view.render()))
    rows.append(
        Row(f"view: one live frame, {regions} regions", frame * 1e3, "ms", target=25.0,
            note="built and rendered; Live draws 4 per second")
    )  # fmt: skip
    return rows


if __name__ == "__main__":
    from common import render

    print(render(main(quick="--quick" in sys.argv)))
