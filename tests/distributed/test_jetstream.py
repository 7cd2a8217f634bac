"""Jobs over a real nats-server (JetStream work queue): the same transcript as in-process,
placement labels respected, no worker refused, two runs sharing workers."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from natsserver import NatsServer
from transcripts import engine_with_events, of_events

from regions_cli.distributed.jetstream import (
    Dispatcher,
    NatsSettings,
    TransportError,
    connect,
    serve,
)
from regions_cli.distributed.jobs import Job, JobResult
from regions_cli.distributed.remote import RemoteSteps
from regions_cli.distributed.worker import Worker
from regions_cli.engine.events import Event
from regions_cli.runs.codec import event_from_json

FIXTURES = Path(__file__).resolve().parents[1] / "journal" / "fixtures"


@asynccontextmanager
async def workers(
    server: NatsServer, count: int, labels: tuple[str, ...] = ()
) -> AsyncIterator[list[tuple[Job, JobResult, str]]]:
    """`count` workers serving jobs (each with its own connection); yields what they ran."""
    ran: list[tuple[Job, JobResult, str]] = []
    tasks, clients, made = [], [], []
    for i in range(count):
        client = await connect(NatsSettings(server.url), name=f"w{i}")
        worker = Worker(f"w{i}")
        ready = asyncio.Event()
        task = asyncio.create_task(
            serve(client, worker, labels=labels, ran=lambda j, r, n=f"w{i}": ran.append((j, r, n)),
                  ready=ready)
        )  # fmt: skip
        await ready.wait()
        tasks.append(task)
        clients.append(client)
        made.append(worker)
    try:
        yield ran
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            await client.close()
        for worker in made:
            await worker.aclose()


async def run(
    path: Path,
    server: NatsServer | None,
    run_id: str = "r1",
    placement: dict[str, tuple[str, ...]] | None = None,
) -> tuple[Any, list[Event]]:
    engine, events = await engine_with_events(path)
    dispatcher = None
    if server is not None:
        client = await connect(NatsSettings(server.url), name="coordinator")
        dispatcher = Dispatcher(client, run_id)
        await dispatcher.start(event_from_json)
        await dispatcher.require([tuple(v) for v in (placement or {}).values()] or [()], 10)
        engine.steps = RemoteSteps(
            dispatcher.dispatch,
            run_id=run_id,
            workflow=path.read_text(encoding="utf-8"),
            base_dir=path.parent,
            decode=event_from_json,
            placement=placement,
        )
    try:
        result = await engine.run()
    finally:
        await engine.aclose()
        if dispatcher is not None:
            await dispatcher.aclose()
            await dispatcher.client.close()
    return result, events


@pytest.fixture
def loop(tmp_path: Path) -> Path:
    path = tmp_path / "loop.yaml"
    shutil.copy(FIXTURES / "loop.yaml", path)
    return path


@pytest.mark.parametrize("count", [1, 2, 4])
async def test_a_machine_through_workers_gives_the_in_process_transcript(
    nats_server: NatsServer, loop: Path, count: int
) -> None:
    local, local_events = await run(loop, None)
    async with workers(nats_server, count) as ran:
        remote, remote_events = await run(loop, nats_server)
    assert remote.status == local.status == "ok"
    assert of_events(remote_events) == of_events(local_events)
    assert remote.tokens == local.tokens
    assert len(ran) == local.counts["steps_ok"]  # every step ran on a worker, once
    assert len({job.id for job, _, _ in ran}) == len(ran)


async def test_placement_sends_a_regions_steps_only_to_workers_with_its_labels(
    nats_server: NatsServer, loop: Path
) -> None:
    async with workers(nats_server, 1) as plain, workers(nats_server, 1, ("gpu",)) as gpu:
        result, _ = await run(loop, nats_server, placement={"Critic": ("gpu",)})
    assert result.status == "ok"
    critic = [job for job, _, _ in gpu if job.region == "Critic"]
    assert critic and all(job.region != "Critic" for job, _, _ in plain)
    assert len(critic) == 4  # review is visited four times


async def test_no_worker_with_the_labels_is_said_plainly(
    nats_server: NatsServer, loop: Path
) -> None:
    client = await connect(NatsSettings(nats_server.url), name="coordinator")
    dispatcher = Dispatcher(client, "r")
    await dispatcher.start(event_from_json)
    try:
        async with workers(nats_server, 1):
            with pytest.raises(TransportError, match=r"^no worker with labels gpu$"):
                await dispatcher.require([("gpu",)], 0.5)
            await dispatcher.require([()], 5)  # the plain one is there
    finally:
        await client.close()


async def test_two_runs_share_the_workers_without_crosstalk(
    nats_server: NatsServer, loop: Path, tmp_path: Path
) -> None:
    other = tmp_path / "ask_answer.yaml"
    shutil.copy(FIXTURES / "ask_answer.yaml", other)
    _, alone_a = await run(loop, None)
    _, alone_b = await run(other, None)
    async with workers(nats_server, 2):
        (a, events_a), (b, events_b) = await asyncio.gather(
            run(loop, nats_server, "run-a"), run(other, nats_server, "run-b")
        )
    assert a.status == b.status == "ok"
    assert of_events(events_a) == of_events(alone_a)
    assert of_events(events_b) == of_events(alone_b)


async def test_bad_credentials_are_one_line(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "js", args=("--user", "regions", "--pass", "right")).start()
    try:
        with pytest.raises(TransportError) as caught:
            await connect(
                NatsSettings(server.url, user="regions", password="wrong"), name="coordinator"
            )
        message = str(caught.value)
        assert message.startswith(f"cannot connect to NATS at {server.url}: ")
        assert "\n" not in message and "wrong" not in message
        client = await connect(
            NatsSettings(server.url, user="regions", password="right"), name="coordinator"
        )
        await client.close()
    finally:
        server.stop()


async def test_tokens_stream_back_live_while_a_worker_runs_the_step(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    path = tmp_path / "stream.yaml"
    path.write_text(
        "version: 1\nname: stream\nllms: {default: {backend: scripted, stream: true}}\n"
        "regions: {A: {type: Region, task: Answer.}}\n"
        "inject: [{from: user, to: A, content: 'Tell me three things about rain.'}]\n"
        "plan: [{chains: {a: [A.make_replies]}}]\n",
        encoding="utf-8",
    )
    async with workers(nats_server, 1):
        result, events = await run(path, nats_server)
    assert result.status == "ok"
    kinds = [e.kind for e in events]
    assert kinds.count("token") >= 3  # piece by piece, from the worker
    last_token = len(kinds) - 1 - kinds[::-1].index("token")
    assert last_token < kinds.index("step_finished")  # live: before the step's result
    streamed = "".join(e.text for e in events if e.kind == "token")  # type: ignore[attr-defined]
    (output,) = [e for e in events if e.kind == "message" and e.delivery == "output"]  # type: ignore[attr-defined]
    assert output.message.content.strip() == streamed.strip()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key (openssl, as an operator would make one)."""
    cert, key = folder / "server.pem", folder / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_and_a_token_from_the_environment(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server = NatsServer(
        tmp_path / "js",
        args=("--tls", "--tlscert", str(cert), "--tlskey", str(key), "--auth", "s3cret-token"),
    ).start()
    try:
        good = NatsSettings.from_env(
            server.url, {"NATS_TOKEN": "s3cret-token", "NATS_CA": str(cert)}
        )
        client = await connect(good, name="coordinator")
        assert client.is_connected
        await client.close()
        for env in ({"NATS_TOKEN": "wrong", "NATS_CA": str(cert)}, {"NATS_TOKEN": "s3cret-token"}):
            with pytest.raises(TransportError) as caught:
                await connect(NatsSettings.from_env(server.url, env), name="coordinator")
            message = str(caught.value)
            assert message.startswith(f"cannot connect to NATS at {server.url}: ")
            assert "\n" not in message and "s3cret" not in message and "wrong" not in message
        assert "s3cret" not in repr(good)
    finally:
        server.stop()
