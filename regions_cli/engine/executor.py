"""The executor: runs a plan's layers in order, a layer's chains concurrently, a chain's steps
in order, and reports everything it does as events.

One step is one region method. Before it runs, the region's state is captured; the method
posts into the region's outbox; when it returns, the postmaster checks the outbox and, if the
step counts as done, delivers it before the chain's next step starts. A step that fails
(raises, times out, posts an undeliverable message under ``delivery.undeliverable: error``,
or reports "something failed" under ``on_false: fail``) has no effect: the region's state is
rolled back (messages delivered to it meanwhile are kept) and nothing it posted is delivered.
It is retried if its policy allows; then ``on_failure`` decides: ``stop`` skips the rest of
its chain and ends the run after the layer, ``continue`` carries on.

Between layers (and before the first) the run passes a *barrier*: every step is finished,
every message delivered; the `BarrierHook` (the journal) sees each region's snapshot there.
A budget exceeded stops the run at the next barrier. Cancellation (Ctrl-C) cancels the
running steps (rolled back, reported as ``cancelled``) and `Engine.run` returns
``interrupted`` (exit code 130) after emitting the final events.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from regions_cli.engine.barrier import Barrier, BarrierHook, PauseRun
from regions_cli.engine.budget import BudgetTracker
from regions_cli.engine.events import (
    CURRENT_CHAIN,
    FAILED_OUTCOMES,
    UNFINISHED_OUTCOMES,
    Event,
    EventBus,
    LayerFinished,
    LayerStarted,
    MessageDelivered,
    Notice,
    RegionStatus,
    RunFinished,
    RunStarted,
    StateEntered,
    StepFinished,
    StepStarted,
    TransitionTaken,
    WaitStarted,
)
from regions_cli.engine.machine import Cursor, Machine
from regions_cli.engine.message import Message, Origin
from regions_cli.engine.postmaster import Held, Postmaster, Routing, UndeliverableError
from regions_cli.engine.regions.base import BaseRegion, StepFailed
from regions_cli.engine.steps import LocalSteps, StepRunner
from regions_cli.exit_codes import STATUS_EXIT_CODES
from regions_cli.llm.base import Usage
from regions_cli.model import END, Chain, Layer, Step, Wait, Workflow
from regions_cli.text import plural

#: Asked at a ``wait:`` with nothing injected for its region: the messages to inject now
#: (none: the run pauses, status ``waiting``).
WaitHook = Callable[[Wait], Awaitable[Sequence[Message]]]

RunStatus = Literal["ok", "failed", "interrupted", "paused", "waiting", "budget_exceeded"]


@dataclass(frozen=True)
class RunResult:
    """What a run did. `outputs` are the messages addressed to external addresses."""

    status: RunStatus
    exit_code: int
    outputs: list[Message]
    counts: dict[str, int]  # layers_run, steps_ok, steps_failed, messages, outcome_<x>, ...
    tokens: Usage
    duration: float
    next_layer: int  # the layer a resumed run would start with
    error: str | None = None  # the first failure, one line

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass
class _Tally:
    outcomes: dict[str, int] = field(default_factory=dict)
    stop: bool = False
    first_error: str | None = None
    delivered_before: int = 0  # the postmaster's counters when the run started
    rejected_before: int = 0
    calls_before: int = 0  # model calls counted before (an engine run again, a resumed budget)
    cached_before: int = 0  # answers from the response cache before
    region_usage_before: dict[str, Usage] = field(default_factory=dict)

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    @property
    def failed(self) -> int:
        return sum(n for k, n in self.outcomes.items() if k in FAILED_OUTCOMES)

    @property
    def ok(self) -> int:
        return sum(n for k, n in self.outcomes.items() if k not in UNFINISHED_OUTCOMES)

    @property
    def cancelled(self) -> int:
        return self.outcomes.get("cancelled", 0)


@dataclass(frozen=True)
class _Attempt:
    """How one attempt of a step ended."""

    outcome: str  # ok | nothing | false | failed | timeout
    detail: str | None = None
    error: str | None = None
    stopped_reason: str | None = None  # why its tool loops stopped (`BaseRegion.stopped_reason`)


class _StepEvents:
    """Emits the start/finish events of one plan step (its position is fixed)."""

    def __init__(self, bus: EventBus, layer: int, chain: str, index: int, step: Step) -> None:
        self.bus, self.layer, self.chain, self.index, self.step = bus, layer, chain, index, step

    def started(self, attempt: int) -> None:
        self.bus.emit(
            StepStarted(
                layer=self.layer,
                chain=self.chain,
                step=self.index,
                region=self.step.region,
                method=self.step.method,
                attempt=attempt,
            )
        )

    def finished(
        self,
        outcome: str,
        duration: float,
        attempt: int,
        error: str | None = None,
        detail: str | None = None,
        stopped_reason: str | None = None,
    ) -> None:
        self.bus.emit(
            StepFinished(
                layer=self.layer,
                chain=self.chain,
                step=self.index,
                region=self.step.region,
                method=self.step.method,
                outcome=outcome,
                duration=duration,
                error=error,
                detail=detail,
                attempt=attempt,
                stopped_reason=stopped_reason,
            )
        )

    def ended(self, result: _Attempt, duration: float, attempt: int) -> None:
        """`finished` with what an attempt reported."""
        self.finished(
            result.outcome, duration, attempt, result.error, result.detail, result.stopped_reason
        )


def workflow_hash(workflow: Workflow) -> str:
    """A stable hash of the workflow: of its file when it has one, else of its model."""
    if workflow.source is not None and workflow.source.is_file():
        data = workflow.source.read_bytes()
    else:
        data = repr((workflow.name, workflow.regions, workflow.plan, workflow.inject)).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def initial_messages(workflow: Workflow) -> list[Message]:
    """The ``inject:`` entries as messages (ids depend only on their content and position)."""
    return [
        Message(
            source=item.source,
            destination=item.destination,
            role=item.role,
            content=item.content,
            origin=Origin(ordinal=i, injected=True),
        )
        for i, item in enumerate(workflow.inject)
    ]


class Engine:
    """A built workflow, ready to run: its regions, postmaster, budget and event bus.

    Made by `regions_cli.build.build_engine`. `run` may be called again to continue (e.g. one
    layer at a time with ``max_layers=1``); `aclose` releases models, stores and sink files.
    """

    def __init__(
        self,
        workflow: Workflow,
        bus: EventBus,
        regions: Mapping[str, BaseRegion],
        postmaster: Postmaster,
        budget: BudgetTracker | None = None,
        closers: Iterable[Callable[[], Awaitable[None]]] = (),
        steps: StepRunner | None = None,
    ) -> None:
        self.workflow = workflow
        self.bus = bus
        self.regions = regions
        self.postmaster = postmaster
        self.budget = budget or BudgetTracker(workflow.budget)
        self.workflow_hash = workflow_hash(workflow)
        self._closers = list(closers)
        self._closed = False
        self._running = False
        self.steps: StepRunner = steps or LocalSteps()  # where each step's method runs
        self.machine = Machine(workflow)
        self._cursor: Cursor | None = None  # where the running run is
        self._arrived: set[str] = set()  # regions given an injected message since the last layer
        if workflow.is_machine or any(layer.wait for layer in workflow.plan):
            # only conditions and waits read deliveries: a plain plan's events skip this
            bus.subscribe(self._note_delivery)

    # -- state --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every region's `snapshot()`, by name."""
        return {name: region.snapshot() for name, region in self.regions.items()}

    def restore(self, states: Mapping[str, Mapping[str, Any]]) -> None:
        """Load snapshots (from a barrier); a name that is not a region is an error."""
        unknown = sorted(set(states) - set(self.regions))
        if unknown:
            raise ValueError(f"saved state names regions the workflow lacks: {', '.join(unknown)}")
        for name, state in states.items():
            try:
                self.regions[name].restore(state)
            except (KeyError, TypeError, AttributeError) as exc:
                raise ValueError(f"saved state of region {name} is malformed: {exc!r}") from None

    async def inject(self, messages: Sequence[Message]) -> None:
        """Deliver messages from outside now (between runs or layers)."""
        await self.postmaster.inject(messages)

    # -- running ------------------------------------------------------------------------

    async def run(
        self,
        *,
        barrier_hook: BarrierHook | None = None,
        start_layer: int = 0,
        max_layers: int | None = None,
        states: Mapping[str, Mapping[str, Any]] | None = None,
        inject_initial: bool = True,
        run_id: str | None = None,
        run_file: str | None = None,
        completed_chains: Mapping[str, Sequence[Held]] | None = None,
        cursor: Mapping[str, Any] | None = None,
        on_wait: WaitHook | None = None,
    ) -> RunResult:
        """Run from position ``start_layer`` (layers run so far), ``max_layers`` layers at
        most (default: to the end).

        `states` (region snapshots) are restored first; `inject_initial` delivers the
        workflow's ``inject:`` messages. `completed_chains` names chains of the layer at
        ``start_layer`` that a resumed run does not run again, each with what it held for the
        barrier. A state machine resumes from `cursor` (`Barrier.cursor` of the barrier it
        continues from). At a ``wait:`` with nothing injected for its region, `on_wait` (if
        given) may supply the messages; otherwise the run ends ``waiting``.
        Never raises for a failure of the run: the result (and the `RunFinished` event) says
        how it ended. Misuse raises: `ValueError` for a `start_layer` outside a plain plan,
        `RuntimeError` while another run is in progress.
        """
        plan = self.workflow.plan
        if start_layer < 0 or (not self.workflow.is_machine and start_layer > len(plan)):
            raise ValueError(f"start_layer {start_layer} is outside the plan (0..{len(plan)})")
        if self._running:
            raise RuntimeError("this engine is already running; runs cannot overlap")
        self._running = True
        try:
            if cursor is not None:
                position = Cursor.from_json(cursor)
            elif self.workflow.is_machine:
                position = self.machine.fresh()
            else:
                position = self.machine.at_layer(start_layer)
            self._cursor = position
            return await self._run(
                barrier_hook,
                start_layer,
                max_layers,
                states,
                inject_initial,
                run_id,
                run_file,
                completed_chains or {},
                position,
                on_wait,
            )
        finally:
            self._running = False
            self._cursor = None

    def _note_delivery(self, event: Event) -> None:
        """Keep the current visit's log and the injections since the last layer (a machine's
        conditions and waits read them)."""
        if type(event) is MessageDelivered:
            if event.delivery == "injected":
                self._arrived.add(event.message.destination)
            cursor = self._cursor
            if cursor is not None:
                cursor.log.record(event.message, event.delivery)

    async def _run(
        self,
        barrier_hook: BarrierHook | None,
        start_layer: int,
        max_layers: int | None,
        states: Mapping[str, Mapping[str, Any]] | None,
        inject_initial: bool,
        run_id: str | None,
        run_file: str | None,
        completed_chains: Mapping[str, Sequence[Held]],
        cursor: Cursor,
        on_wait: WaitHook | None,
    ) -> RunResult:
        plan = self.workflow.plan
        machine = self.machine
        is_machine = self.workflow.is_machine
        started = time.perf_counter()
        tally = _Tally(
            delivered_before=self.postmaster.seq,
            rejected_before=self.postmaster.rejected_count,
            calls_before=self.budget.total.calls,
            cached_before=self.budget.cached_calls,
            region_usage_before=self._region_usage(),
        )
        usage_before = self._usage()
        elapsed_before = cursor.elapsed
        status: RunStatus = "ok"
        layers_run = 0
        position = start_layer
        self._arrived = set()
        self.bus.emit(
            RunStarted(
                run_id=run_id or f"{self.workflow.name}-{datetime.now(UTC):%Y%m%dT%H%M%S}",
                workflow=self.workflow.name,
                workflow_hash=self.workflow_hash,
                run_file=run_file,
                layers=[self._layer_info(layer, is_machine) for layer in plan],
                regions={name: region.type_name for name, region in self.regions.items()},
                resumed_from_layer=start_layer,
            )
        )

        async def barrier() -> None:
            cursor.elapsed = elapsed_before + time.perf_counter() - started
            await self._barrier(barrier_hook, position, cursor if is_machine else None)

        deadline = self.workflow.budget.max_seconds
        try:
            async with asyncio.timeout(
                None if deadline is None else max(0.0, deadline - elapsed_before)
            ):
                if states:
                    self.restore(states)
                if is_machine and inject_initial and start_layer == 0:
                    self._enter(cursor, position)
                if inject_initial:
                    await self.postmaster.inject(initial_messages(self.workflow))
                await barrier()
                while cursor.layer < len(plan):
                    if machine.state_ended(cursor):  # a state with nothing (left) to run
                        failure = self._transition(cursor, position, tally)
                        if failure is not None:
                            status = failure
                            break
                        continue
                    if max_layers is not None and layers_run >= max_layers:
                        break
                    layer = plan[cursor.layer]
                    if layer.wait is not None:
                        if not await self._wait(layer, position, on_wait):
                            status = "waiting"
                            break
                    else:
                        done = completed_chains if position == start_layer else {}
                        await self._run_layer(layer, position, tally, done)
                        self._arrived.clear()
                    layers_run += 1
                    position += 1
                    cursor.layer += 1
                    if machine.state_ended(cursor):
                        failure = self._transition(cursor, position, tally)
                        if failure is not None:
                            await barrier()
                            status = failure
                            break
                    await barrier()
                    if tally.stop:
                        break
                    reason = self.budget.exceeded()
                    if reason is not None:
                        status = self._over_budget(tally, reason)
                        break
        except PauseRun:
            status = "paused"
            self.bus.emit(Notice(level="info", text="run paused; it can be resumed from here"))
        except TimeoutError:
            status = self._over_budget(tally, f"max_seconds ({deadline:g} s) reached")
        except asyncio.CancelledError:
            # The run absorbs its cancellation and reports it (the docs' advice for a task
            # that suppresses a cancel: uncancel it, so later awaits and timeouts behave).
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            status = "interrupted"
            self.bus.emit(
                Notice(level="warning", text="run interrupted; in-flight steps cancelled")
            )
        except Exception as exc:  # a broken hook or bad saved state: reported, not a traceback
            status = "failed"
            tally.first_error = tally.first_error or f"{type(exc).__name__}: {exc}"
            self.bus.emit(Notice(level="error", text=f"run aborted: {tally.first_error}"))
        if status == "ok" and tally.failed:
            status = "failed"
        return self._finish(status, tally, started, layers_run, position, usage_before, run_file)

    @staticmethod
    def _layer_info(layer: Layer, is_machine: bool) -> dict[str, Any]:
        info: dict[str, Any] = {
            "label": layer.label,
            "chains": {c.name: [s.label for s in c.steps] for c in layer.chains},
        }
        if is_machine:
            info["state"] = layer.state
        if layer.wait is not None:
            info["wait"] = layer.wait.region
        return info

    def _over_budget(self, tally: _Tally, reason: str) -> RunStatus:
        tally.first_error = tally.first_error or f"budget exceeded: {reason}"
        self.bus.emit(Notice(level="error", text=f"budget exceeded: {reason}; stopping"))
        return "budget_exceeded"

    def _enter(self, cursor: Cursor, position: int) -> None:
        self.bus.emit(
            StateEntered(state=cursor.state, visit=cursor.visits[cursor.state], layer=position)
        )

    def _transition(self, cursor: Cursor, position: int, tally: _Tally) -> RunStatus | None:
        """The cursor's state has ended: take its transition. Returns the run's final status
        when the run cannot go on (a state exhausted with ``on_exhausted: fail``, or the
        transition budget spent), else None (the cursor is at the next state, or the end)."""
        decision = self.machine.decide(cursor)
        if not self.workflow.is_machine:  # a plain plan just ends
            self.machine.move(cursor, decision)
            return None
        limit = self.workflow.budget.max_transitions
        if limit is not None and cursor.transitions >= limit and decision.to != END:
            cursor.layer = len(self.workflow.plan)
            return self._over_budget(tally, f"max_transitions ({limit}) reached")
        state, visit = cursor.state, cursor.visits.get(cursor.state, 0)
        self.machine.move(cursor, decision)
        self.bus.emit(
            TransitionTaken(
                state=state,
                visit=visit,
                to=decision.to,
                rule=decision.rule,
                reason=decision.reason,
                transitions=cursor.transitions,
            )
        )
        if decision.failed is not None:
            tally.first_error = tally.first_error or decision.failed
            self.bus.emit(Notice(level="error", text=f"{decision.failed}; the run fails"))
            return "failed"
        if decision.to != END:
            self._enter(cursor, position)
        return None

    async def _wait(self, layer: Layer, position: int, on_wait: WaitHook | None) -> bool:
        """A ``wait:`` item: True when a message for its region has been injected since the
        last layer (now, or by `on_wait`); else the run pauses for a person."""
        wait = layer.wait
        assert wait is not None
        if wait.region not in self._arrived and on_wait is not None:
            messages = await on_wait(wait)
            if messages:
                await self.postmaster.inject(list(messages))
        if wait.region not in self._arrived:
            self.bus.emit(WaitStarted(region=wait.region, prompt=wait.prompt, layer=position))
            return False
        self.bus.emit(LayerStarted(layer=position, label=layer.label, index=layer.index))
        self.bus.emit(LayerFinished(layer=position, label=layer.label, ok=True, duration=0.0))
        self._arrived.clear()
        return True

    def _usage(self) -> Usage:
        total = self.budget.total
        return Usage(total.prompt_tokens, total.completion_tokens)

    def _region_usage(self) -> dict[str, Usage]:
        return {
            name: Usage(spend.prompt_tokens, spend.completion_tokens)
            for name, spend in self.budget.per_region.items()
        }

    def _region_tokens(self, before: dict[str, Usage]) -> dict[str, dict[str, int]]:
        """Tokens each region spent since `before`: {region: {prompt_tokens, completion_tokens}}."""
        spent: dict[str, dict[str, int]] = {}
        for name, now in self._region_usage().items():
            was = before.get(name, Usage())
            prompt = now.prompt_tokens - was.prompt_tokens
            completion = now.completion_tokens - was.completion_tokens
            if prompt or completion:
                spent[name] = {"prompt_tokens": prompt, "completion_tokens": completion}
        return spent

    def _finish(
        self,
        status: RunStatus,
        tally: _Tally,
        started: float,
        layers_run: int,
        next_layer: int,
        usage_before: Usage,
        run_file: str | None,
    ) -> RunResult:
        duration = time.perf_counter() - started
        now = self._usage()
        tokens = Usage(
            now.prompt_tokens - usage_before.prompt_tokens,
            now.completion_tokens - usage_before.completion_tokens,
        )
        messages = self.postmaster.seq - tally.delivered_before
        exit_code = int(STATUS_EXIT_CODES[status])
        cached = self.budget.cached_calls - tally.cached_before
        calls = self.budget.total.calls - tally.calls_before + cached
        self.bus.emit(
            RunFinished(
                status=status,
                exit_code=exit_code,
                layers_run=layers_run,
                steps_ok=tally.ok,
                steps_failed=tally.failed,
                steps_cancelled=tally.cancelled,
                messages=messages,
                prompt_tokens=tokens.prompt_tokens,
                completion_tokens=tokens.completion_tokens,
                duration=duration,
                run_file=run_file,
                region_tokens=self._region_tokens(tally.region_usage_before),
                llm_calls=calls,
                cached_calls=cached,
            )
        )
        counts = {
            "layers_run": layers_run,
            "steps_ok": tally.ok,
            "steps_failed": tally.failed,
            "messages": messages,
            "rejected": self.postmaster.rejected_count - tally.rejected_before,
            "llm_calls": calls,
            "cached_calls": cached,
            **{f"outcome_{k}": n for k, n in tally.outcomes.items()},
        }
        return RunResult(
            status=status,
            exit_code=exit_code,
            outputs=list(self.postmaster.outputs),
            counts=counts,
            tokens=tokens,
            duration=duration,
            next_layer=next_layer,
            error=tally.first_error,
        )

    async def _barrier(
        self, hook: BarrierHook | None, position: int, cursor: Cursor | None
    ) -> None:
        # Let the event loop turn once per layer: steps that never suspend (no model, a
        # scripted answer) would otherwise starve the views' refresh and Ctrl-C, and the
        # loop never drops the cancelled timers of the steps' timeouts (memory would grow
        # with every layer of a long loop).
        await asyncio.sleep(0)
        if hook is None:
            return
        finished = (cursor.layer if cursor is not None else position) >= len(self.workflow.plan)
        messages = await hook.at_barrier(
            Barrier(
                position,
                self.snapshot(),
                cursor.to_json() if cursor is not None else None,
                finished,
            )
        )
        if messages:
            await self.postmaster.inject(list(messages))

    async def _run_layer(
        self,
        layer: Layer,
        position: int,
        tally: _Tally,
        completed: Mapping[str, Sequence[Held]],
    ) -> None:
        """Run `layer` as the run's layer number `position` (its events and messages carry
        the position: a state machine runs a layer again on each visit)."""
        self.bus.emit(LayerStarted(layer=position, label=layer.label, index=layer.index))
        started = time.perf_counter()
        failed_before = tally.failed
        postmaster = self.postmaster
        postmaster.open_layer({c.name: [s.region for s in c.steps] for c in layer.chains})
        for name, held in completed.items():
            postmaster.hold(name, held)
        chains = [c for c in layer.chains if c.name not in completed]
        try:
            if len(chains) == 1:
                await self._run_chain(position, chains[0], tally)
            elif chains:
                async with asyncio.TaskGroup() as group:
                    for chain in chains:
                        group.create_task(self._run_chain(position, chain, tally))
            await postmaster.close_layer()
        except BaseException:
            postmaster.discard_layer()
            self.bus.emit(
                LayerFinished(
                    layer=position,
                    label=layer.label,
                    ok=False,
                    duration=time.perf_counter() - started,
                )
            )
            raise
        self.bus.emit(
            LayerFinished(
                layer=position,
                label=layer.label,
                ok=tally.failed == failed_before,
                duration=time.perf_counter() - started,
            )
        )

    async def _run_chain(self, position: int, chain: Chain, tally: _Tally) -> None:
        token = CURRENT_CHAIN.set(chain.name)
        try:
            await self._run_steps(position, chain, tally)
        finally:
            CURRENT_CHAIN.reset(token)

    async def _run_steps(self, position: int, chain: Chain, tally: _Tally) -> None:
        for index, step in enumerate(chain.steps):
            outcome = await self._run_step(position, chain.name, index, step, tally)
            if outcome in FAILED_OUTCOMES and step.policy.on_failure == "stop":
                tally.stop = True
                skipped = len(chain.steps) - index - 1
                if skipped:
                    self.bus.emit(
                        Notice(
                            level="warning",
                            text=f"chain {chain.name}: {step.label} failed; "
                            f"its remaining {plural(skipped, 'step')} skipped",
                        )
                    )
                return

    async def _run_step(self, layer: int, chain: str, index: int, step: Step, tally: _Tally) -> str:
        """Run one step with its retries; returns the final outcome."""
        where = _StepEvents(self.bus, layer, chain, index, step)
        region = self.regions.get(step.region)
        if region is None or step.method not in region.methods():
            what = (
                "no such region" if region is None else f"a {region.type_name} has no such method"
            )
            problem = f"{step.label}: {what}"
            where.started(1)
            where.finished("failed", 0.0, 1, error=problem)
            tally.count("failed")
            tally.first_error = tally.first_error or problem
            return "failed"
        attempts = step.policy.retries + 1
        async with region.lock:
            for attempt in range(1, attempts + 1):
                where.started(attempt)
                started = time.perf_counter()
                try:
                    result = await self._attempt(region, step, Origin(layer, chain, index))
                except asyncio.CancelledError:
                    where.finished(
                        "cancelled",
                        time.perf_counter() - started,
                        attempt,
                        error="cancelled",
                        stopped_reason=region.stopped_reason,
                    )
                    self.bus.emit(RegionStatus(region=region.name, status="idle"))
                    tally.count("cancelled")
                    raise
                duration = time.perf_counter() - started
                if result.outcome in FAILED_OUTCOMES and attempt < attempts:
                    where.ended(result, duration, attempt)
                    continue  # retry from the same (rolled back) state
                tally.count(result.outcome)
                # The step's finish is its last event (the journal ends a chain's record there).
                if result.outcome in FAILED_OUTCOMES:
                    self.bus.emit(RegionStatus(region=region.name, status="failed"))
                    tally.first_error = tally.first_error or f"{step.label}: {result.error}"
                else:
                    self.bus.emit(RegionStatus(region=region.name, status="done"))
                    if result.outcome == "false":
                        self.bus.emit(
                            Notice(
                                level="warning",
                                text=f"{step.label}: {result.detail}",
                                region=region.name,
                            )
                        )
                where.ended(result, duration, attempt)
                return result.outcome
        raise AssertionError("unreachable: the attempt loop always returns")  # pragma: no cover

    async def _attempt(self, region: BaseRegion, step: Step, origin: Origin) -> _Attempt:
        """One attempt of a step: run the method, then deliver its outbox or roll it all back.

        Cancellation rolls back and propagates; every other failure is returned.
        """
        policy = step.policy
        run = self.steps.run
        region.capture()
        region.begin_step(origin)
        routing: Routing | None = None
        try:
            if policy.timeout is None:
                result = await run(region, step.method)
            else:
                async with asyncio.timeout(policy.timeout):
                    result = await run(region, step.method)
            attempt = _Attempt(result.status, result.detail)
            routing = self.postmaster.route(region, region.take_outbox())
            if routing.rejected:
                note = f"{plural(len(routing.rejected), 'message')} rejected by the postmaster"
                attempt = _Attempt("false", f"{attempt.detail}; {note}" if attempt.detail else note)
            if attempt.outcome == "false" and policy.on_false == "fail":
                attempt = _Attempt("failed", attempt.detail, error=attempt.detail)
        except asyncio.CancelledError:
            region.rollback()
            raise
        except TimeoutError:
            attempt = _Attempt("timeout", error=f"timed out after {policy.timeout:g} s")
        except (UndeliverableError, StepFailed) as exc:
            attempt = _Attempt("failed", error=str(exc))
        except Exception as exc:  # a bug in a method must not kill the chain's siblings
            attempt = _Attempt("failed", error=f"{type(exc).__name__}: {exc}")
        attempt = replace(attempt, stopped_reason=region.stopped_reason)
        if attempt.outcome in FAILED_OUTCOMES:
            if routing is not None:
                self.postmaster.discard(routing)
            posted = len(routing.messages) if routing is not None else len(region.outbox)
            region.rollback()
            if posted:
                self.bus.emit(
                    Notice(
                        level="info",
                        text=f"{step.label}: {plural(posted, 'message')} of the failed attempt "
                        "discarded; state rolled back",
                        region=region.name,
                    )
                )
            return attempt
        assert routing is not None
        await self.postmaster.commit(routing, origin.chain)
        region.release()
        return attempt

    async def aclose(self) -> None:
        """Close models, stores and listener sinks. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for region in self.regions.values():
            close = getattr(region, "close", None)
            if close is not None:
                close()
        for closer in self._closers:
            try:
                await closer()
            except Exception as exc:  # closing must not hide the run's result
                self.bus.emit(Notice(level="warning", text=f"while closing: {exc}"))
