"""The coordinator's `StepRunner`: each step becomes a `Job`, sent by a dispatcher (NATS, or
a worker in this process for tests), and the `JobResult` is loaded back into the region.

The executor has already captured the region's state (for a rollback) and begun the step;
this runner snapshots the region into the job, and on the result restores the new state, puts
what the step posted into the outbox, re-emits the step's events on the coordinator's bus and
counts its model calls in the budget. A refused or failed job fails the step with the
worker's reason.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict
from pathlib import Path

from regions_cli.distributed.jobs import Job, JobResult
from regions_cli.engine.events import Event, LLMCalled
from regions_cli.engine.message import Message
from regions_cli.engine.regions.base import BaseRegion, Outcome, StepFailed
from regions_cli.llm.base import Usage

#: Sends a job to a worker (to one with `labels`, if any) and waits for its result; events the
#: worker streams while it runs (tokens) go to the callback as they come.
Dispatch = Callable[[Job, tuple[str, ...], Callable[[Event], None]], Awaitable[JobResult]]
#: Rebuilds an event from its JSON (the run file's codec); None for a kind it does not know.
EventDecoder = Callable[[dict[str, object]], Event | None]


class RemoteSteps:
    """Runs every step through `dispatch` (run `run_id` of the workflow whose text as written
    is `workflow`, relative paths against `base_dir`)."""

    def __init__(
        self,
        dispatch: Dispatch,
        *,
        run_id: str,
        workflow: str,
        base_dir: Path,
        decode: EventDecoder,
        local_types: frozenset[str] = frozenset({"ListenerRegion"}),
        placement: Mapping[str, tuple[str, ...]] | None = None,
        llm_overrides: tuple[str, ...] = (),
        replay: Path | None = None,
        inline: bool = True,
    ) -> None:
        self.dispatch = dispatch
        self.run_id = run_id
        self.workflow = workflow
        self.inline = inline  # False: the text is in the workflows bucket, jobs carry its hash
        self.workflow_hash = hashlib.sha256(workflow.encode("utf-8")).hexdigest()
        self.base_dir = str(base_dir)
        self.decode = decode
        self.local_types = local_types  # types whose steps stay here (a listener's sink file)
        self.placement = dict(placement or {})  # region -> the labels its worker must have
        self.llm_overrides = llm_overrides  # --llm, credentials left out
        self.replay = str(replay.resolve()) if replay is not None else None
        # A nonce per coordinator process: a resumed run's jobs never collide with the ids of
        # jobs a dead coordinator left in the queue.
        self.nonce = secrets.token_hex(4)
        self._attempts: dict[tuple[object, ...], int] = {}

    async def run(self, region: BaseRegion, method: str) -> Outcome:
        if region.type_name in self.local_types:
            here: Outcome = await getattr(region, method)()
            return here
        origin = region.origin
        where = (origin.layer, origin.chain, origin.step, region.name)
        attempt = self._attempts[where] = self._attempts.get(where, 0) + 1
        job = Job(
            id=f"{self.run_id}/{self.nonce}/{origin.layer}/{origin.chain}/{origin.step}/{attempt}",
            workflow_hash=self.workflow_hash,
            workflow=self.workflow if self.inline else "",
            base_dir=self.base_dir,
            region=region.name,
            method=method,
            origin=asdict(origin),
            state=region.snapshot(),
            llm_overrides=self.llm_overrides,
            replay=self.replay,
        )
        live = self._live(region)
        result = await self.dispatch(job, self.placement.get(region.name, ()), live)
        for data in result.events:
            event = self.decode(dict(data))
            if event is not None:
                live(event)
        if result.error is not None:
            raise StepFailed(result.error)
        region.restore(result.state)
        region.outbox = [Message.from_dict(dict(m)) for m in result.outbox]
        if result.status not in ("ok", "nothing", "false"):
            raise StepFailed(f"{result.worker or 'a worker'} answered outcome {result.status!r}")
        return Outcome(result.status, result.detail)  # type: ignore[arg-type]

    @staticmethod
    def _live(region: BaseRegion) -> Callable[[Event], None]:
        """Emit a worker's event on this run's bus (model calls count in the budget)."""

        def live(event: Event) -> None:
            if isinstance(event, LLMCalled):  # the budget counts calls wherever they ran
                usage = Usage(event.prompt_tokens, event.completion_tokens)
                region.context.record_usage(region.name, usage, event.cached)
            region.context.emit(event)

        return live
