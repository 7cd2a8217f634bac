"""Scale-out over NATS JetStream (a real nats-server with JetStream, on loopback).

1. Dispatch overhead: a step with no model (``clear_replies``) sent as a job to a worker and
   answered, per step, against a bare nats-py request/reply on the same server, side by side
   (target: within 3x). The responder of the request/reply runs in its own process, as a
   worker does; for reference, the same request/reply answered in the benchmark's process,
   and the floor of the job protocol itself (nats-py alone: a JetStream work-queue publish,
   a pull by another process, a reply and an ack) with no `regions` code on either side.
2. 64 chains, each one call to a loopback OpenAI-compatible server that takes 100 ms, run by
   1, 2 and 4 worker processes (``regions worker --concurrency 1``): the speed-up over one
   worker (targets: 1.9x with 2, 3.5x with 4).
3. CPU-bound steps: 8 chains, each a ``ToolRegion`` whose command tool burns about 0.25 s of
   CPU, over 1 and 2 worker processes on this 2-core machine (target: 1.8x).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

sys.path.insert(0, str(HERE.parent / "tests" / "distributed"))

from bench_llm import _ServerProcess  # noqa: E402
from common import Row  # noqa: E402
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig  # noqa: E402
from natsserver import NatsServer  # noqa: E402  (the tests' real nats-server on a free port)

from regions_cli.build import build_engine_async  # noqa: E402
from regions_cli.distributed.coordinator import coordinate  # noqa: E402
from regions_cli.distributed.jetstream import NatsSettings, connect  # noqa: E402
from regions_cli.engine.events import EventBus  # noqa: E402
from regions_cli.runs.codec import event_from_json  # noqa: E402
from regions_cli.workflow.api import load  # noqa: E402

BURN = "import time\nend = time.process_time() + 0.25\nwhile time.process_time() < end:\n    pass\nprint('burnt')\n"  # noqa: E501


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


async def _timed_run(path: Path, url: str | None, workers: int, repeats: int = 1) -> float:
    """Seconds of `Engine.run` for the workflow at `path` (the fastest of `repeats`), its steps
    sent to `workers` worker processes over `url` (started and ready before the clock
    starts), or run here."""
    loaded = load(path)
    assert loaded.workflow is not None, loaded.errors
    engine = await build_engine_async(loaded.workflow, EventBus())
    coordinator = None
    if url is not None:
        coordinator = await coordinate(
            engine, url, workflow_text=path.read_text(encoding="utf-8"),
            base_dir=path.parent, decode=event_from_json, workers=workers, wait=60,
        )  # fmt: skip
    try:
        await engine.run()  # warm-up: the workers build the workflow once
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            result = await engine.run(inject_initial=True)
            best = min(best, time.perf_counter() - start)
            assert result.status == "ok", result.error
        return best
    finally:
        await engine.aclose()
        if coordinator is not None:
            await coordinator.aclose()


def main(quick: bool = False) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        nats = NatsServer(root / "js").start()
        try:
            rows += asyncio.run(_dispatch(root, nats.url, 50 if quick else 300))
            llm = _ServerProcess(0.1)
            try:
                rows += _scaling(root, nats.url, llm.base_url, quick)
            finally:
                llm.close()
            rows += _cpu(root, nats.url, quick)
        finally:
            nats.stop()
    return rows


async def _dispatch(root: Path, url: str, steps: int) -> list[Row]:
    workflow = _write(root, "noop.yaml", (
        "version: 1\nname: noop\nllms: {default: {backend: scripted}}\n"
        "regions: {W: {type: Region, task: Work.}}\n"
        "plan:\n" + "  - chains: {c: [W.clear_replies]}\n" * steps
    ))  # fmt: skip
    here = await _timed_run(workflow, None, 0, repeats=3)
    there = await _timed_run(workflow, url, 1, repeats=3)
    per_step = (there - here) / steps
    client = await connect(NatsSettings(url), name="requester")
    await client.jetstream().add_stream(
        StreamConfig(name="BENCH", subjects=["bench.jobs"],
                     retention=RetentionPolicy.WORK_QUEUE, storage=StorageType.FILE)
    )  # fmt: skip
    await client.jetstream().add_consumer(
        "BENCH",
        ConsumerConfig(durable_name="bench", ack_policy=AckPolicy.EXPLICIT, ack_wait=30,
                       max_ack_pending=-1),
    )  # fmt: skip
    responder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", RESPONDER, url, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert responder.stdout is not None
        await responder.stdout.readline()  # subscribed
        other_process = await _request_reply(client, "bench.echo", steps)
        floor = await _job_floor(client, steps)
    finally:
        responder.terminate()
        await responder.wait()

    async def echo(msg: Any) -> None:
        await client.publish(msg.reply, msg.data)

    await client.subscribe("bench.here", cb=echo)
    same_process = await _request_reply(client, "bench.here", steps)
    await client.close()
    same = f"{same_process * 1e3:.3f} ms"
    return [
        Row("distributed: dispatch per step through JetStream", per_step * 1e3, "ms",
            other_process * 1e3, target=3.0,
            note=f"a no-model step's extra time vs a bare nats-py request/reply to another "
                 f"process; {steps} steps; answered in the same process it takes {same}"),
        Row("distributed: the job protocol's floor (nats-py alone)", floor * 1e3, "ms",
            other_process * 1e3,
            note="a work-queue publish, a pull by another process, its reply and ack; "
                 "no regions code"),
    ]  # fmt: skip


#: A bare nats-py responder in its own process: echoes ``bench.echo``; answers the jobs of
#: the ``BENCH`` work-queue stream as a worker would (pull one, reply, ack), with nothing else.
RESPONDER = """
import asyncio, sys, nats
async def main():
    client = await nats.connect(sys.argv[1])
    async def echo(msg):
        await client.publish(msg.reply, msg.data)
    await client.subscribe("bench.echo", cb=echo)
    await client.flush()
    print("ready", flush=True)
    pull = await client.jetstream().pull_subscribe_bind(durable="bench", stream="BENCH")
    while True:
        try:
            messages = await pull.fetch(1, timeout=30)
        except TimeoutError:
            continue
        for message in messages:
            await client.publish(message.headers["Bench-Reply"], message.data)
            await message.ack()
asyncio.run(main())
"""


async def _per_call(call: Callable[[], Awaitable[object]], count: int) -> float:
    """Seconds per awaited `call`, one after another: 20 to warm up, then the fastest of three
    rounds of `count`."""
    for _ in range(20):
        await call()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(count):
            await call()
        best = min(best, (time.perf_counter() - start) / count)
    return best


async def _request_reply(client: Any, subject: str, count: int) -> float:
    """Seconds per bare request/reply of 512 bytes."""
    return await _per_call(lambda: client.request(subject, b"x" * 512, timeout=5), count)


async def _job_floor(client: Any, count: int) -> float:
    """Seconds per job through the ``BENCH`` work queue (file storage, explicit acks) to the
    responder process and back, publishing and listening at once as `Dispatcher` does."""
    js = client.jetstream()
    waiting: dict[bytes, asyncio.Future[None]] = {}

    async def answered(msg: Any) -> None:
        future = waiting.pop(msg.data[:12], None)
        if future is not None:
            future.set_result(None)

    await client.subscribe("bench.answers", cb=answered)
    serial = itertools.count()

    async def one() -> None:
        key = f"{next(serial):012d}".encode()
        future = waiting[key] = asyncio.get_running_loop().create_future()
        headers = {"Bench-Reply": "bench.answers", "Nats-Msg-Id": key.decode()}
        publishing = asyncio.ensure_future(
            js.publish("bench.jobs", key + b"x" * 500, headers=headers)
        )
        await future
        await publishing

    return await _per_call(one, count)


def _fan(root: Path, name: str, chains: int, region: str, extra: str) -> Path:
    names = [f"R{i}" for i in range(chains)]
    regions = "".join(f"  {n}: {region}\n" for n in names)
    inject = "".join(f"  - {{from: user, to: {n}, content: 'Question {i}?'}}\n"
                     for i, n in enumerate(names))  # fmt: skip
    chains_text = ", ".join(f"c{i}: [{n}.make_replies]" for i, n in enumerate(names))
    return _write(root, name, (
        f"version: 1\nname: {name.removesuffix('.yaml')}\n{extra}"
        f"regions:\n{regions}inject:\n{inject}plan:\n  - chains: {{{chains_text}}}\n"
    ))  # fmt: skip


def _scaling(root: Path, url: str, llm_url: str, quick: bool) -> list[Row]:
    chains = 16 if quick else 64
    workflow = _fan(
        root, "fan.yaml", chains, "{type: Region, task: Reply.}",
        f"llms: {{default: {{backend: openai, base_url: '{llm_url}', max_concurrency: 64}}}}\n",
    )  # fmt: skip
    times = {n: asyncio.run(_timed_run(workflow, url, n)) for n in (1, 2, 4)}
    return [
        Row(f"distributed: {chains} chains x 100 ms LLM, {n} workers", times[1], "s", times[n],
            target=target, higher_is_better=True,
            note=f"speed-up over 1 worker ({times[n]:.2f} s vs {times[1]:.2f} s), concurrency 1")
        for n, target in ((2, 1.9), (4, 3.5))
    ]  # fmt: skip


def _cpu(root: Path, url: str, quick: bool) -> list[Row]:
    (root / "burn.py").write_text(BURN, encoding="utf-8")
    chains = 4 if quick else 8
    workflow = _fan(
        root, "cpu.yaml", chains, "{type: ToolRegion, tool: burn}",
        "tools:\n  burn:\n    command: [python3, burn.py]\n"
        "    parameters: {type: object}\n    description: Burn CPU.\n",
    )  # fmt: skip
    one = asyncio.run(_timed_run(workflow, url, 1))
    two = asyncio.run(_timed_run(workflow, url, 2))
    return [
        Row(f"distributed: {chains} CPU-bound ToolRegion steps, 2 workers", one, "s", two,
            target=1.8, higher_is_better=True,
            note=f"speed-up over 1 worker process ({two:.2f} s vs {one:.2f} s), 2 cores")
    ]  # fmt: skip
