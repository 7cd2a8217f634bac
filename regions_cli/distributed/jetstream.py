"""Jobs over NATS JetStream: the coordinator's dispatcher and the worker's loop.

Subjects (``regions.`` is the prefix):

* ``regions.jobs.<labels>.<run>``: a job, in the work-queue stream ``REGIONS_JOBS`` (file
  storage: a restarted server loses nothing). ``<labels>`` is the sorted ``+``-joined labels a
  region's ``placement`` asks for (``any`` without); ``<run>`` namespaces it by run. One durable
  pull consumer per ``<labels>`` is shared by every worker that has those labels: each job goes
  to one worker; one not acknowledged within the ack wait (a worker killed mid-step) goes to
  another. Jobs carry ``Nats-Msg-Id`` (the job id), so a job published twice is stored once.
* ``regions.results.<run>``: a worker's answers to a run's jobs: events streamed while a step
  runs (tokens), then the result. The coordinator uses the first result of a job id and
  ignores repeats (a redelivered job that ran twice).
* ``regions.workers.ping``: workers answer with their name and labels (and say the same on
  ``regions.workers.hello`` when they start), so a run can refuse to start when no worker has
  the labels it needs, and waits only until one has.

No secret travels: a job holds the workflow as written (``${VAR}`` unresolved); workers
resolve variables and credentials from their own environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from regions_cli.distributed.jobs import Job, JobResult
from regions_cli.distributed.worker import Worker
from regions_cli.engine.events import Event
from regions_cli.http.settings import strip_userinfo

STREAM = "REGIONS_JOBS"
#: The key-value bucket of workflow texts by hash: put once per run, read once per worker.
WORKFLOWS = "regions-workflows"
PING = "regions.workers.ping"
HELLO = "regions.workers.hello"  # a worker that starts says so (a run may be waiting for it)
#: Seconds between a worker's tries to take a job while the server is away.
RETRY_SECONDS = 0.25
#: Seconds a worker has to acknowledge a job (it says "still working" every third of it).
ACK_WAIT = 30.0
_LABEL = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class TransportError(Exception):
    """The NATS server cannot be used (unreachable, refused our credentials, no JetStream)."""


@dataclass(frozen=True)
class NatsSettings:
    """How to reach the NATS server. Credentials come from the environment or a file path,
    never from the workflow: ``NATS_USER``/``NATS_PASSWORD``, ``NATS_TOKEN``, ``NATS_CREDS``
    (a credentials file), ``NATS_CA``/``NATS_CERT``/``NATS_KEY`` (TLS files)."""

    url: str
    user: str | None = None
    password: str | None = None
    token: str | None = None
    credentials: str | None = None
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    @classmethod
    def from_env(cls, url: str, env: Mapping[str, str] | None = None) -> NatsSettings:
        env = os.environ if env is None else env
        return cls(
            url=url,
            user=env.get("NATS_USER"),
            password=env.get("NATS_PASSWORD"),
            token=env.get("NATS_TOKEN"),
            credentials=env.get("NATS_CREDS"),
            ca=env.get("NATS_CA"),
            cert=env.get("NATS_CERT"),
            key=env.get("NATS_KEY"),
        )

    def __repr__(self) -> str:  # never a secret in a log line
        return f"NatsSettings(url={self.url!r})"


def labels_key(labels: Iterable[str]) -> str:
    """The subject token of a set of labels (``any`` for none)."""
    return "+".join(sorted(set(labels))) or "any"


def check_labels(labels: Iterable[str]) -> None:
    """`ValueError` naming the first label a subject cannot carry."""
    for label in labels:
        if not _LABEL.match(label) or label == "any":
            raise ValueError(
                f"label {label!r}: use letters, digits, '-' and '_' (at most 64), not 'any'"
            )


async def connect(settings: NatsSettings, *, name: str) -> Client:
    """A connection that reconnects on its own (a server restart is waited out)."""
    options: dict[str, Any] = {
        "name": name,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "connect_timeout": 5,
        "allow_reconnect": True,
    }
    if settings.user is not None:
        options["user"], options["password"] = settings.user, settings.password
    if settings.token is not None:
        options["token"] = settings.token
    if settings.credentials is not None:
        options["user_credentials"] = settings.credentials
    if settings.ca or settings.cert:
        context = ssl.create_default_context(cafile=settings.ca)
        if settings.cert:
            context.load_cert_chain(settings.cert, settings.key)
        options["tls"] = context
    failure: list[str] = []

    async def error_cb(exc: Exception) -> None:
        failure.append(str(exc) or type(exc).__name__)

    try:
        # The first connection must work (a wrong URL or password is the user's to fix);
        # later drops reconnect forever.
        client = await nats.connect(
            settings.url,
            error_cb=error_cb,
            **{**options, "allow_reconnect": False, "max_reconnect_attempts": 1},
        )
    except Exception as exc:
        reason = failure[-1] if failure else (str(exc) or type(exc).__name__)
        where = strip_userinfo(settings.url)
        raise TransportError(f"cannot connect to NATS at {where}: {reason}") from None
    # From now on, wait out a server restart (the options the client reads when it drops).
    client.options["allow_reconnect"] = True
    client.options["max_reconnect_attempts"] = -1
    return client


async def ensure_stream(client: Client) -> None:
    """Create the work-queue stream if it is not there (file storage)."""
    js = client.jetstream()
    try:
        await js.stream_info(STREAM)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=STREAM,
                subjects=["regions.jobs.>"],
                retention=RetentionPolicy.WORK_QUEUE,
                storage=StorageType.FILE,
            )
        )
    except Exception as exc:
        raise TransportError(f"NATS has no JetStream (start it with -js): {exc}") from None


class Dispatcher:
    """The coordinator's side: publishes a run's jobs and waits for their results."""

    def __init__(self, client: Client, run_id: str) -> None:
        self.client = client
        self.run = _token(run_id)
        self.results = f"regions.results.{self.run}"
        self._waiting: dict[str, tuple[asyncio.Future[JobResult], Callable[[Event], None]]] = {}
        self._decode: Callable[[dict[str, Any]], Event | None] | None = None
        self._subscription: Any = None

    async def start(self, decode: Callable[[dict[str, Any]], Event | None]) -> None:
        self._decode = decode
        await ensure_stream(self.client)
        self._subscription = await self.client.subscribe(self.results, cb=self._on_result)

    async def put_workflow(self, workflow_hash: str, text: str) -> None:
        """Put a workflow's text in the bucket once, so jobs carry only its hash."""
        bucket = await _workflows(self.client)
        await bucket.put(workflow_hash, text.encode("utf-8"))

    async def _on_result(self, msg: Msg) -> None:
        data = json.loads(msg.data)
        waiting = self._waiting.get(str(data.get("id")))
        if waiting is None:  # a repeat, or a job of an earlier coordinator of this run
            return
        future, live = waiting
        if data.get("kind") == "event":
            event = self._decode(data["event"]) if self._decode else None
            if event is not None:
                live(event)
        elif not future.done():
            future.set_result(JobResult.from_dict(data["result"]))

    async def dispatch(
        self, job: Job, labels: tuple[str, ...], live: Callable[[Event], None]
    ) -> JobResult:
        future: asyncio.Future[JobResult] = asyncio.get_running_loop().create_future()
        self._waiting[job.id] = (future, live)
        subject = f"regions.jobs.{labels_key(labels)}.{self.run}"
        headers = {"Nats-Msg-Id": job.id, "Regions-Reply": self.results}

        async def publish() -> None:
            while True:  # the server may be restarting: JetStream stores a retried job once
                try:
                    await self.client.jetstream().publish(subject, job.to_bytes(), headers=headers)
                    return
                except (nats.errors.Error, TimeoutError):
                    await asyncio.sleep(RETRY_SECONDS)  # a back-off while it reconnects

        # The server's acknowledgement of the job and the worker's result travel at once:
        # waiting for the first before listening for the second would cost a round trip.
        publishing = asyncio.ensure_future(publish())
        try:
            return await future  # a result means the job was stored: no retry is left to do
        finally:
            publishing.cancel()
            self._waiting.pop(job.id, None)

    async def require(self, label_sets: Iterable[tuple[str, ...]], wait: float) -> None:
        """`TransportError` naming the labels no worker has (after waiting `wait` seconds for
        workers to answer; returns as soon as every set is covered)."""
        needed = {labels_key(s): set(s) for s in label_sets}
        inbox = self.client.new_inbox()
        covered: set[str] = set()
        done = asyncio.get_running_loop().create_future()

        async def answer(msg: Msg) -> None:
            have = set(json.loads(msg.data).get("labels") or ())
            covered.update(k for k, s in needed.items() if s <= have)
            if covered >= set(needed) and not done.done():
                done.set_result(None)

        subscriptions = [
            await self.client.subscribe(inbox, cb=answer),
            await self.client.subscribe(HELLO, cb=answer),
        ]
        try:
            await self.client.publish(PING, b"", reply=inbox)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await done
        finally:
            for subscription in subscriptions:
                await subscription.unsubscribe()
        missing = sorted(set(needed) - covered, key=lambda key: (key == "any", key))
        if missing:  # the labelled ones first: a worker with them serves "any" too
            what = "no worker" if missing == ["any"] else f"no worker with labels {missing[0]}"
            raise TransportError(what)

    async def aclose(self) -> None:
        """Stop listening, and take this coordinator's jobs no worker has taken yet out of the
        queue (a job still running ends with its worker; its result goes nowhere)."""
        if self._subscription is not None:
            with contextlib.suppress(Exception):
                await self._subscription.unsubscribe()
        with contextlib.suppress(Exception):
            await self.client.jetstream().purge_stream(STREAM, subject=f"regions.jobs.*.{self.run}")
        for future, _ in self._waiting.values():
            future.cancel()


async def serve(
    client: Client,
    worker: Worker,
    *,
    labels: Sequence[str] = (),
    concurrency: int = 1,
    ack_wait: float = ACK_WAIT,
    ran: Callable[[Job, JobResult], None] | None = None,
    ready: asyncio.Event | None = None,
) -> None:
    """Take jobs until cancelled: `concurrency` at a time, from the consumers of every subset
    of `labels` (a job asking for labels a worker has is its to take). `ran` hears each job."""
    check_labels(labels)
    await ensure_stream(client)
    js = client.jetstream()
    if worker.workflows is None:
        bucket = await _workflows(client)

        async def workflow_text(workflow_hash: str) -> str | None:
            try:
                entry = await bucket.get(workflow_hash)
            except nats.js.errors.KeyNotFoundError:
                return None
            return entry.value.decode("utf-8") if entry.value is not None else None

        worker.workflows = workflow_text
    keys = ["any"] + [
        labels_key(combo)
        for size in range(1, len(labels) + 1)
        for combo in itertools.combinations(sorted(set(labels)), size)
    ]
    slots = asyncio.Semaphore(concurrency)
    subscriptions = []
    for key in keys:
        durable = f"workers-{key.replace('+', '_')}"
        with contextlib.suppress(Exception):  # another worker created it first
            await js.add_consumer(
                STREAM,
                ConsumerConfig(
                    durable_name=durable,
                    filter_subject=f"regions.jobs.{key}.>",
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=ack_wait,
                    max_ack_pending=-1,
                ),
            )
        subscriptions.append(await js.pull_subscribe_bind(durable=durable, stream=STREAM))

    async def pong(msg: Msg) -> None:
        answer = {"name": worker.name, "labels": sorted(set(labels))}
        await client.publish(msg.reply, json.dumps(answer).encode())

    await client.subscribe(PING, cb=pong)
    hello = {"name": worker.name, "labels": sorted(set(labels))}
    await client.publish(HELLO, json.dumps(hello).encode())
    if ready is not None:
        ready.set()

    async def take(subscription: Any) -> None:
        # Each consumer is asked without holding a slot (a worker with labels long-polls
        # several at once); a job taken waits for a free slot while its lease is renewed.
        while True:
            try:  # a long poll: the server answers as soon as a job is there
                messages = await subscription.fetch(1, timeout=30)
            except TimeoutError:
                continue
            except nats.errors.ConnectionClosedError:
                return
            except nats.errors.Error:  # the server went away: the client reconnects
                await asyncio.sleep(RETRY_SECONDS)  # a back-off, not a wait for work
                continue
            for message in messages:
                async with _leased(message, ack_wait), slots:
                    await _run_one(client, worker, message, ran)

    async with asyncio.TaskGroup() as group:
        for subscription in subscriptions:
            for _ in range(concurrency):
                group.create_task(take(subscription))


@contextlib.asynccontextmanager
async def _leased(message: Msg, ack_wait: float) -> AsyncIterator[None]:
    """While inside, tell the server every third of the ack wait that the job is alive (a lease
    renewal, not a poll): a job waiting for a slot or running is not given to another worker."""

    async def renew() -> None:
        while True:
            await asyncio.sleep(ack_wait / 3)
            with contextlib.suppress(Exception):
                await message.in_progress()

    renewing = asyncio.ensure_future(renew())
    try:
        yield
    finally:
        renewing.cancel()


async def _run_one(
    client: Client,
    worker: Worker,
    message: Msg,
    ran: Callable[[Job, JobResult], None] | None,
) -> None:
    reply = (message.headers or {}).get("Regions-Reply")
    try:
        job = Job.from_bytes(message.data)
    except (ValueError, TypeError, KeyError) as exc:
        await message.term()  # never redeliver a job nobody can read
        if reply:
            await client.publish(reply, json.dumps({"id": None, "error": str(exc)}).encode())
        return

    sending: set[asyncio.Future[None]] = set()

    def live(event: Event) -> None:
        if reply:
            payload = {"id": job.id, "kind": "event", "event": event.to_json()}
            sent = asyncio.ensure_future(client.publish(reply, json.dumps(payload).encode()))
            sending.add(sent)
            sent.add_done_callback(sending.discard)

    result = await worker.execute(job, live)
    if reply:  # buffered by the client while it reconnects
        payload = {"id": job.id, "kind": "result", "result": result.to_dict()}
        await client.publish(reply, json.dumps(payload).encode())
    # The result goes out before the acknowledgement (one connection keeps its order). Not
    # acknowledged (the server away): the job goes to a worker again after the ack wait, and
    # the coordinator uses the first result it gets.
    with contextlib.suppress(nats.errors.Error, TimeoutError):
        await message.ack()
    if ran is not None:
        ran(job, result)


async def _workflows(client: Client) -> Any:
    """The workflows bucket (file storage), created by whoever needs it first."""
    js = client.jetstream()
    try:
        return await js.key_value(WORKFLOWS)
    except nats.js.errors.BucketNotFoundError:
        with contextlib.suppress(nats.js.errors.Error):  # another process created it meanwhile
            return await js.create_key_value(bucket=WORKFLOWS, storage=StorageType.FILE)
        return await js.key_value(WORKFLOWS)


def _token(text: str) -> str:
    """`text` as one subject token."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", text) or "_"


async def run_worker(
    settings: NatsSettings,
    *,
    name: str,
    labels: Sequence[str] = (),
    concurrency: int = 1,
    ack_wait: float = ACK_WAIT,
    log: Callable[[str], None] = print,
) -> None:
    """`regions worker`: connect, then take jobs until cancelled, one log line per job (which
    workflow, region and method it ran, and how it ended). Raises `TransportError`."""
    client = await connect(settings, name=name)
    worker = Worker(name)

    def ran(job: Job, result: JobResult) -> None:
        how = result.status if result.error is None else f"failed: {result.error}"
        log(
            f"{name}: ran {job.region}.{job.method} of run {job.id.split('/')[0]} "
            f"(workflow {job.workflow_hash[:12]}): {how}"
        )

    ready = asyncio.Event()
    serving = asyncio.ensure_future(
        serve(client, worker, labels=labels, concurrency=concurrency, ack_wait=ack_wait,
              ran=ran, ready=ready)
    )  # fmt: skip
    try:
        await asyncio.wait({serving, asyncio.ensure_future(ready.wait())},
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        if ready.is_set():
            shown = f" with labels {', '.join(labels)}" if labels else ""
            log(f"{name}: serving {settings.url}{shown}, {concurrency} at a time")
        await serving
    finally:
        serving.cancel()
        with contextlib.suppress(BaseException):
            await serving
        await client.close()
        await worker.aclose()
