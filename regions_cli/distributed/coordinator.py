"""The coordinator's side of a distributed run: connect to NATS, optionally start local
workers, check that workers with the needed labels are there, and send the engine's steps to
them (`RemoteSteps` + `Dispatcher`).

The coordinator keeps everything else as in one process: the plan, the postmaster, the run
file and the region states. `regions run --transport nats://HOST:PORT` (or ``transport:`` in
the workflow) uses it; ``--workers N`` also starts N ``regions worker`` processes here.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from regions_cli.distributed.jetstream import (
    Dispatcher,
    NatsSettings,
    TransportError,
    connect,
    labels_key,
)
from regions_cli.distributed.remote import EventDecoder, RemoteSteps
from regions_cli.engine.executor import Engine
from regions_cli.http.settings import strip_userinfo

#: Seconds to wait for workers to answer before a run is refused.
WORKER_WAIT = 10.0


@dataclass
class Coordinator:
    """A distributed run's connection, dispatcher and local workers; `aclose` ends them."""

    dispatcher: Dispatcher
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    async def aclose(self) -> None:
        await self.dispatcher.aclose()
        with contextlib.suppress(Exception):
            await self.dispatcher.client.close()
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                process.kill()


async def coordinate(
    engine: Engine,
    url: str,
    *,
    workflow_text: str,
    base_dir: Path,
    decode: EventDecoder,
    placement: Mapping[str, tuple[str, ...]] | None = None,
    workers: int = 0,
    wait: float = WORKER_WAIT,
    env: Mapping[str, str] | None = None,
    llm_overrides: tuple[str, ...] = (),
    replay: Path | None = None,
) -> Coordinator:
    """Send `engine`'s steps to workers on the NATS server at `url`. Raises `TransportError`
    (one line: the server, or the labels no worker has, and how to start one)."""
    settings = NatsSettings.from_env(url, env)
    client = await connect(settings, name="regions-coordinator")
    token = secrets.token_hex(6)  # namespaces this run's jobs and results
    dispatcher = Dispatcher(client, token)
    coordinator = Coordinator(dispatcher)
    try:
        await dispatcher.start(decode)
        coordinator.processes = [_spawn(url, f"local-{token}-{i}") for i in range(workers)]
        placement = dict(placement or {})
        needed = {labels_key(labels): labels for labels in placement.values()}
        if len(placement) < len(engine.regions):  # some regions go to any worker
            needed.setdefault("any", ())
        try:
            await dispatcher.require(needed.values(), wait)
        except TransportError as exc:
            labels = str(exc).removeprefix("no worker with labels ").removeprefix("no worker")
            flags = "".join(f" --label {label}" for label in labels.split("+") if label)
            shown = strip_userinfo(url)
            raise TransportError(
                f"{exc} on {shown} within {wait:g} s: start one with "
                f"`regions worker --nats {shown}{flags}`"
            ) from None
        steps = RemoteSteps(
            dispatcher.dispatch,
            run_id=token,
            workflow=workflow_text,
            base_dir=base_dir,
            decode=decode,
            placement=placement,
            llm_overrides=llm_overrides,
            replay=replay,
            inline=False,
        )
        await dispatcher.put_workflow(steps.workflow_hash, workflow_text)
        engine.steps = steps
        return coordinator
    except BaseException:
        await coordinator.aclose()
        raise


def _spawn(url: str, name: str) -> subprocess.Popen[bytes]:
    """A local ``regions worker`` process (same Python, same environment)."""
    return subprocess.Popen(
        [sys.executable, "-m", "regions_cli", "worker", "--nats", url, "--name", name],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
