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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from regions_cli.engine.barrier import Barrier, BarrierHook, PauseRun
from regions_cli.engine.budget import BudgetTracker
from regions_cli.engine.events import (
    CURRENT_CHAIN,
    FAILED_OUTCOMES,
    UNFINISHED_OUTCOMES,
    EventBus,
    LayerFinished,
    LayerStarted,
    Notice,
    RegionStatus,
    RunFinished,
    RunStarted,
    StepFinished,
    StepStarted,
)
from regions_cli.engine.message import Message, Origin
from regions_cli.engine.postmaster import Held, Postmaster, Routing, UndeliverableError
from regions_cli.engine.regions.base import BaseRegion, Outcome, StepFailed
from regions_cli.exit_codes import STATUS_EXIT_CODES
from regions_cli.llm.base import Usage
from regions_cli.model import Chain, Layer, Step, Workflow
from regions_cli.text import plural

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
            )
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
    ) -> RunResult:
        """Run layers ``start_layer`` .. (``max_layers`` of them, default: to the end).

        `states` (region snapshots) are restored first; `inject_initial` delivers the
        workflow's ``inject:`` messages. `completed_chains` names chains of ``start_layer``
        that a resumed run does not run again, each with what it held for the barrier.
        Never raises for a failure of the run: the result (and the `RunFinished` event) says
        how it ended. Misuse raises: `ValueError` for a
        `start_layer` outside the plan, `RuntimeError` while another run is in progress.
        """
        plan = self.workflow.plan
        if not 0 <= start_layer <= len(plan):
            raise ValueError(f"start_layer {start_layer} is outside the plan (0..{len(plan)})")
        if self._running:
            raise RuntimeError("this engine is already running; runs cannot overlap")
        self._running = True
        try:
            return await self._run(
                barrier_hook,
                start_layer,
                max_layers,
                states,
                inject_initial,
                run_id,
                run_file,
                completed_chains or {},
            )
        finally:
            self._running = False

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
    ) -> RunResult:
        plan = self.workflow.plan
        started = time.perf_counter()
        tally = _Tally(
            delivered_before=self.postmaster.seq,
            rejected_before=self.postmaster.rejected_count,
            calls_before=self.budget.total.calls,
            cached_before=self.budget.cached_calls,
            region_usage_before=self._region_usage(),
        )
        usage_before = self._usage()
        status: RunStatus = "ok"
        layers_run = 0
        next_layer = start_layer
        self.bus.emit(
            RunStarted(
                run_id=run_id or f"{self.workflow.name}-{datetime.now(UTC):%Y%m%dT%H%M%S}",
                workflow=self.workflow.name,
                workflow_hash=self.workflow_hash,
                run_file=run_file,
                layers=[
                    {
                        "label": layer.label,
                        "chains": {c.name: [s.label for s in c.steps] for c in layer.chains},
                    }
                    for layer in plan
                ],
                regions={name: region.type_name for name, region in self.regions.items()},
                resumed_from_layer=start_layer,
            )
        )
        end = len(plan) if max_layers is None else min(len(plan), start_layer + max(0, max_layers))
        try:
            if states:
                self.restore(states)
            if inject_initial:
                await self.postmaster.inject(initial_messages(self.workflow))
            await self._barrier(barrier_hook, start_layer)
            for index in range(start_layer, end):
                done = completed_chains if index == start_layer else {}
                await self._run_layer(plan[index], tally, done)
                layers_run += 1
                next_layer = index + 1
                await self._barrier(barrier_hook, next_layer)
                if tally.stop:
                    break
                reason = self.budget.exceeded()
                if reason is not None:
                    status = "budget_exceeded"
                    tally.first_error = tally.first_error or f"budget exceeded: {reason}"
                    self.bus.emit(
                        Notice(level="error", text=f"budget exceeded: {reason}; stopping")
                    )
                    break
        except PauseRun:
            status = "paused"
            self.bus.emit(Notice(level="info", text="run paused; it can be resumed from here"))
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
        return self._finish(status, tally, started, layers_run, next_layer, usage_before, run_file)

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

    async def _barrier(self, hook: BarrierHook | None, next_layer: int) -> None:
        if hook is None:
            return
        messages = await hook.at_barrier(Barrier(next_layer, self.snapshot()))
        if messages:
            await self.postmaster.inject(list(messages))

    async def _run_layer(
        self, layer: Layer, tally: _Tally, completed: Mapping[str, Sequence[Held]]
    ) -> None:
        self.bus.emit(LayerStarted(layer=layer.index, label=layer.label))
        started = time.perf_counter()
        failed_before = tally.failed
        postmaster = self.postmaster
        postmaster.open_layer({c.name: [s.region for s in c.steps] for c in layer.chains})
        for name, held in completed.items():
            postmaster.hold(name, held)
        chains = [c for c in layer.chains if c.name not in completed]
        try:
            if len(chains) == 1:
                await self._run_chain(layer, chains[0], tally)
            elif chains:
                async with asyncio.TaskGroup() as group:
                    for chain in chains:
                        group.create_task(self._run_chain(layer, chain, tally))
            await postmaster.close_layer()
        except BaseException:
            postmaster.discard_layer()
            self.bus.emit(
                LayerFinished(
                    layer=layer.index,
                    label=layer.label,
                    ok=False,
                    duration=time.perf_counter() - started,
                )
            )
            raise
        self.bus.emit(
            LayerFinished(
                layer=layer.index,
                label=layer.label,
                ok=tally.failed == failed_before,
                duration=time.perf_counter() - started,
            )
        )

    async def _run_chain(self, layer: Layer, chain: Chain, tally: _Tally) -> None:
        token = CURRENT_CHAIN.set(chain.name)
        try:
            await self._run_steps(layer, chain, tally)
        finally:
            CURRENT_CHAIN.reset(token)

    async def _run_steps(self, layer: Layer, chain: Chain, tally: _Tally) -> None:
        for index, step in enumerate(chain.steps):
            outcome = await self._run_step(layer.index, chain.name, index, step, tally)
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
                        "cancelled", time.perf_counter() - started, attempt, error="cancelled"
                    )
                    self.bus.emit(RegionStatus(region=region.name, status="idle"))
                    tally.count("cancelled")
                    raise
                duration = time.perf_counter() - started
                if result.outcome in FAILED_OUTCOMES and attempt < attempts:
                    where.finished(result.outcome, duration, attempt, result.error, result.detail)
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
                where.finished(result.outcome, duration, attempt, result.error, result.detail)
                return result.outcome
        raise AssertionError("unreachable: the attempt loop always returns")  # pragma: no cover

    async def _attempt(self, region: BaseRegion, step: Step, origin: Origin) -> _Attempt:
        """One attempt of a step: run the method, then deliver its outbox or roll it all back.

        Cancellation rolls back and propagates; every other failure is returned.
        """
        policy = step.policy
        method: Callable[[], Awaitable[Outcome]] = getattr(region, step.method)
        region.capture()
        region.begin_step(origin)
        routing: Routing | None = None
        try:
            if policy.timeout is None:
                result = await method()
            else:
                async with asyncio.timeout(policy.timeout):
                    result = await method()
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
