"""Engine benchmarks: routing cost per message hop, step cost per no-op method, and a generated
1,000-region, 100-layer workflow end to end with the scripted backend.

Baselines are measured in the same process: a bare ``asyncio.Queue`` hop (put + get) for a
hop, a bare coroutine call for a step.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import Row  # noqa: E402

from regions_cli.build import build_engine  # noqa: E402
from regions_cli.engine.events import EventBus  # noqa: E402
from regions_cli.engine.message import Message  # noqa: E402
from regions_cli.engine.postmaster import Postmaster  # noqa: E402
from regions_cli.engine.regions import make_region  # noqa: E402
from regions_cli.model import RegionConfig, Workflow  # noqa: E402
from regions_cli.workflow.convert import build_workflow  # noqa: E402


def best_of_each(
    repeats: int, makers: dict[str, Callable[[], Coroutine[Any, Any, float]]]
) -> dict[str, float]:
    """The smallest figure each coroutine maker gives over `repeats` rounds (seconds).

    The makers take turns within each round, so a baseline and the figure compared with it
    see the same load on a shared machine. The garbage collector is off while timing, as
    `timeit` does, so a collection triggered by earlier allocations lands on neither side.
    """
    best = dict.fromkeys(makers, float("inf"))
    for _ in range(repeats):
        for name, make in makers.items():
            gc.collect()
            gc.disable()
            try:
                best[name] = min(best[name], asyncio.run(make()))
            finally:
                gc.enable()
    return best


# -- a hop ---------------------------------------------------------------------------------


async def queue_hop(n: int) -> float:
    queue: asyncio.Queue[Message] = asyncio.Queue()
    message = Message("A", "B", "request", "hello")
    start = time.perf_counter()
    for _ in range(n):
        queue.put_nowait(message)
        await queue.get()
    return (time.perf_counter() - start) / n


async def task_hop(n: int) -> float:
    """A hop between two tasks (ping-pong over two queues): what a queue-based router with a
    task per region pays, the consumer being woken by the event loop."""
    ping: asyncio.Queue[Message] = asyncio.Queue()
    pong: asyncio.Queue[Message] = asyncio.Queue()
    message = Message("A", "B", "request", "hello")

    async def echo() -> None:
        for _ in range(n):
            pong.put_nowait(await ping.get())

    start = time.perf_counter()
    echoing = asyncio.create_task(echo())
    for _ in range(n):
        ping.put_nowait(message)
        await pong.get()
    await echoing
    return (time.perf_counter() - start) / (2 * n)


def _pair() -> tuple[dict[str, Any], Message]:
    regions = {
        "A": make_region(RegionConfig("A", "Region", connections={"B": ""})),
        "B": make_region(RegionConfig("B", "Region")),
    }
    return regions, Message("A", "B", "request", "hello")


async def postmaster_hop(n: int, bus: EventBus, after: Callable[[], None] = lambda: None) -> float:
    """One hop = check the rules, deliver into B's store, record it as an event."""
    regions, message = _pair()
    postmaster = Postmaster(regions, emit=bus.emit)
    sender = regions["A"]
    batch = [message]
    start = time.perf_counter()
    for _ in range(n):
        await postmaster.send(sender, batch)
    after()
    return (time.perf_counter() - start) / n


def journal_bus(folder: Path) -> tuple[EventBus, Callable[[], None]] | None:
    """An event bus journaled to a real run file, or None while the journal is missing."""
    try:
        from regions_cli.runs.recorder import Recorder
        from regions_cli.runs.store import RunFile, WorkflowRecord
    except ImportError:
        return None
    info = {"regions": {"A": "Region", "B": "Region"}, "plan": [], "inject": 0}
    record = WorkflowRecord("bench", str(folder / "bench.yaml"), "", "{}", "0", info)
    run = RunFile.create(folder / f"bench-{time.monotonic_ns()}.db", workflow=record)
    recorder = Recorder(run, run.begin_invocation("run"))
    bus = EventBus()
    bus.subscribe(recorder)
    return bus, recorder.flush


# -- a step --------------------------------------------------------------------------------


async def bare_call(n: int) -> float:
    async def noop() -> None:
        return None

    start = time.perf_counter()
    for _ in range(n):
        await noop()
    return (time.perf_counter() - start) / n


def noop_workflow(steps: int) -> Workflow:
    return build_workflow(
        {
            "version": 1,
            "name": "noop",
            "llms": {"default": {"backend": "scripted"}},
            "regions": {"A": {"type": "Region", "task": "t"}},
            "plan": [{"chains": {"main": ["A.clear_replies"] * steps}}],
        }
    )


async def engine_step(n: int) -> float:
    """A step of a no-op method (clear_replies with nothing to clear) run by the executor."""
    engine = build_engine(noop_workflow(n), EventBus())
    start = time.perf_counter()
    result = await engine.run()
    elapsed = time.perf_counter() - start
    assert result.counts["outcome_nothing"] == n
    return elapsed / n


# -- the generated workflow ----------------------------------------------------------------


def generated_workflow(regions: int = 1000, layers: int = 100, chains: int = 50) -> Workflow:
    """`regions` LLM regions in a ring (each connected to the next). Every layer runs `chains`
    concurrent chains of five steps (ask the next region, it answers, answer the injected
    request, summarise, prune), each over a different pair of regions, so with the defaults
    every region works in 10 of the 100 layers: 25,000 steps, 23,000 model calls."""
    names = [f"R{i:04d}" for i in range(regions)]
    spec = {
        name: {
            "type": "Region",
            "task": f"Expert number {i}",
            "connections": [names[(i + 1) % regions]],
        }
        for i, name in enumerate(names)
    }
    plan = []
    for k in range(layers):
        layer: dict[str, list[str]] = {}
        for c in range(chains):
            i = (k * chains + c) % regions
            me, peer = names[i], names[(i + 1) % regions]
            layer[f"c{c}"] = [
                f"{me}.make_questions",
                f"{peer}.make_replies",
                f"{me}.make_replies",
                f"{me}.summarize_replies",
                f"{me}.keep_last_reply_per_source",
            ]
        plan.append({"chains": layer})
    inject = [
        {"from": "user", "to": names[i], "role": "request", "content": f"Question {i}"}
        for i in range(regions)
    ]
    return build_workflow(
        {
            "version": 1,
            "name": "generated",
            "llms": {"default": {"backend": "scripted"}},
            "regions": spec,
            "plan": plan,
            "inject": inject,
        }
    )


async def run_generated(workflow: Workflow) -> tuple[float, dict[str, int]]:
    engine = build_engine(workflow, EventBus())
    start = time.perf_counter()
    result = await engine.run()
    elapsed = time.perf_counter() - start
    assert result.ok, result.error
    return elapsed, result.counts


def main(quick: bool = False) -> list[Row]:
    hops = 2_000 if quick else 50_000
    steps = 500 if quick else 10_000
    repeats = 2 if quick else 15  # many short rounds: a quiet moment for every side
    rows: list[Row] = []

    with tempfile.TemporaryDirectory() as folder:
        makers: dict[str, Callable[[], Coroutine[Any, Any, float]]] = {
            "queue": lambda: queue_hop(hops),
            "tasks": lambda: task_hop(hops),
            "journal off": lambda: postmaster_hop(hops, EventBus()),
            "bare call": lambda: bare_call(steps),
            "step": lambda: engine_step(steps),
        }
        journaled = journal_bus(Path(folder))
        if journaled is not None:
            bus, flush = journaled
            makers["journal on"] = lambda: postmaster_hop(hops, bus, flush)
        best = best_of_each(repeats, makers)
    baselines = {
        "vs asyncio.Queue put+get in one task": best["queue"],
        "vs asyncio.Queue hop between two tasks": best["tasks"],
    }
    for label, target in (("journal off", 5.0), ("journal on", 20.0)):
        if label not in best:
            continue
        for versus, baseline in baselines.items():
            rows.append(
                Row(f"engine: routing per message hop, {label}", best[label] * 1e6, "us",
                    baseline * 1e6, target, note=versus)
            )  # fmt: skip
    rows.append(
        Row("engine: step per no-op method", best["step"] * 1e6, "us", best["bare call"] * 1e6,
            note="vs bare coroutine call; no target")
    )  # fmt: skip

    regions, layers = (100, 10) if quick else (1000, 100)
    workflow = generated_workflow(regions, layers, chains=10 if quick else 50)
    gc.collect()
    elapsed, counts = asyncio.run(run_generated(workflow))
    tracemalloc.start()
    asyncio.run(run_generated(workflow))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    steps_run = counts["steps_ok"] + counts["steps_failed"]
    rows.append(
        Row(
            f"engine: {regions} regions x {layers} layers end to end",
            elapsed,
            "s",
            target=10.0,
            note=f"{steps_run} steps, {counts['messages']} messages, scripted",
        )
    )
    rows.append(
        Row(
            f"engine: {regions} regions x {layers} layers peak memory",
            peak / 2**20,
            "MiB",
            note="tracemalloc, engine run only",
        )
    )
    return rows


if __name__ == "__main__":
    from common import render

    print(render(main(quick="--quick" in sys.argv)))
