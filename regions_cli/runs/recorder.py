"""The recorder: journals a running engine into its run file, an `EventBus` subscriber that
buffers events and writes them at chain ends and barriers, in plan order (see `Recorder`).

What it writes and how is `regions_cli.runs.store`; this module decides when and in what order.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from regions_cli.engine import events as ev
from regions_cli.engine.message import Message
from regions_cli.model import split_step
from regions_cli.runs.codec import events_from_json, message_row
from regions_cli.runs.store import (
    ChainDone,
    RunFile,
    RunFileError,
)

#: A chain that worked this long (seconds) has its completion committed at once.
CHAIN_COMMIT_SECONDS = 0.05

#: Flush the event buffer early when it grows past this many events (bounds memory).
MAX_BUFFERED_EVENTS = 5000


@dataclass(frozen=True)
class ChainInfo:
    """Which regions a chain touches and how many steps it has (to see when it ends)."""

    regions: tuple[str, ...]
    steps: int


class Recorder:
    """Journals a running engine: an `EventBus` subscriber plus the executor's barrier hook.

    `snapshot` returns the current state of the named regions (the engine's ``snapshot()``);
    with it, a chain that completes inside a layer is journaled with its regions' state so a
    resumed run does not run it again.
    """

    def __init__(
        self,
        run: RunFile,
        invocation: int,
        *,
        snapshot: Callable[[Sequence[str]], Mapping[str, Mapping[str, Any]]] | None = None,
    ) -> None:
        self.run = run
        self.invocation = invocation
        self.snapshot = snapshot
        self._buffer: list[ev.Event] = []
        self._layer: int | None = None
        self._layer_failed = False
        self._chains = _chain_table(run.workflow.plan)
        # the JSON of each region's last committed state; only regions touched since (a step
        # ran, a message arrived) are serialised again at the next barrier
        self._last_states: dict[str, str] = run.state_texts()
        self._touched: set[str] = set()
        self._event_seq, self._message_seq, self._step_seq, self._llm_seq = run.last_seqs()
        self._deferred: (
            tuple[int, Mapping[str, Mapping[str, Any]], Mapping[str, Any] | None] | None
        ) = None
        # (position, plan index) of the layer that runs after the last barrier: a machine
        # runs a plan's layer at many positions
        self._next: tuple[int, int] = (run.position, run.next_layer())
        self._index = 0  # the plan index of the running layer
        self.failure: str | None = None  # why the run file could not be written, if it failed
        self._chain_work: dict[tuple[int, str], float] = {}  # seconds of steps, per chain
        self._pending_chains: list[
            tuple[int, str, float, int, dict[str, Any], list[ev.Event], list[Any]]
        ] = []
        # Plan order: the events of the running layer's chains wait here, per chain, and go
        # to the journal in declaration order when the layer's chains are over; delivery
        # numbers are given in that order (a listener's copy repeats its message's number).
        self._held: dict[str, list[ev.Event]] = {}
        self._order: list[str] = []
        self._resumed: tuple[int, dict[str, list[ev.Event]]] | None = None
        self._delivery_seq = run.last_delivery_seq()
        self._numbered: dict[str, int] = {}  # message id -> its delivery number
        #: what a chain has posted for the barrier (the postmaster's `held`), set by the runner
        self.held: Callable[[str], Sequence[Any]] | None = None

    def resume_chains(self, layer: int, chains: Mapping[str, ChainDone]) -> None:
        """Journal the events of `chains`, completed in `layer` before a resume, in their
        place in the plan order (they do not run again)."""
        events: dict[str, list[ev.Event]] = {}
        for name, done in chains.items():
            events[name] = events_from_json(done.events)
            self._touched.update(done.states)
        self._resumed = (layer, events)

    # -- the EventBus subscriber ---------------------------------------------------------------

    def __call__(self, event: ev.Event) -> None:
        """Buffer `event`; flush at chain ends, barriers and the end of the run.

        The hot path (a delivered message) is one type check and a list append. A subscriber
        must not raise: a failed write (disk full...) is kept in `failure` and stops the run
        at its next barrier (`commit_barrier` raises it).
        """
        if self.failure is not None:
            return
        try:
            self._take(event)
        except sqlite3.Error as exc:
            self.failure = f"{self.run.path}: cannot write the run file: {exc}"

    def _take(self, event: ev.Event) -> None:
        chain = ev.CURRENT_CHAIN.get()
        if chain is None:
            if self._held:  # the layer's chains are over: their events, in plan order
                self._release()
            target = self._buffer
        else:
            target = self._held.get(chain) or self._held.setdefault(chain, [])
        if isinstance(event, ev.MessageDelivered):
            self._touched.add(event.recipient or event.message.destination)
        elif isinstance(event, ev.StepFinished):
            target.append(event)
            self._touched.add(event.region)
            key = (event.layer, event.chain)
            work = self._chain_work.get(key, 0.0) + event.duration
            if event.outcome in ev.UNFINISHED_OUTCOMES:
                self._layer_failed = True
                self._chain_work[key] = work
            elif self._chain_complete(event):  # a step's last event: the chain is over
                self._chain_work.pop(key, None)
                self._record_chain_done(event.layer, event.chain, work)
            else:
                self._chain_work[key] = work
            return
        elif isinstance(event, ev.LayerStarted):
            self._layer_failed = False
            if self._deferred is not None:  # the run went on after a failed layer: commit it
                self._commit(*self._deferred, take_injections=False)
            self._start_layer(event.layer)
        elif isinstance(event, ev.LayerFinished):
            self._layer_failed = self._layer_failed or not event.ok
        elif isinstance(event, ev.RunFinished):
            self._buffer.append(event)
            self.flush()
            return
        target.append(event)
        if len(self._buffer) >= MAX_BUFFERED_EVENTS:
            self.flush()

    def _start_layer(self, layer: int) -> None:
        position, index = self._next
        self._index = index if position == layer else layer
        self._order = [chain for (i, chain) in self._chains if i == self._index]
        self._held = {}
        if self._resumed is not None and self._resumed[0] == layer:
            self._held.update(self._resumed[1])
            self._resumed = None

    def _release(self) -> None:
        """Move the held chain events to the journal's buffer, chains in declaration order
        (a chain the plan does not name, which cannot happen from the CLI, goes last)."""
        held, self._held = self._held, {}
        for chain in self._order:
            self._buffer.extend(held.pop(chain, ()))
        for events in held.values():
            self._buffer.extend(events)

    def touch(self, region: str) -> None:
        """Say that `region`'s state changed without an event (a resume handing a message
        back): its state is written again at the next barrier."""
        self._touched.add(region)

    def _chain_complete(self, event: ev.StepFinished) -> bool:
        info = self._chains.get((self._index, event.chain))
        return info is not None and event.step == info.steps - 1

    def _record_chain_done(self, layer: int, chain: str, work: float) -> None:
        """Keep the record of a chain that completed inside a layer (see `resume_point`): its
        regions' state, its events, and what it posted for the barrier.

        A chain that worked for `CHAIN_COMMIT_SECONDS` or more is committed at once, so a
        killed run does not redo it; a quicker one rides along with the next write (redoing
        it would cost less than a commit per chain).
        """
        if self.snapshot is None or self.failure is not None:
            return
        info = self._chains[(self._index, chain)]
        states = {name: dict(state) for name, state in self.snapshot(info.regions).items()}
        # Kept as objects: serialised only if written before the barrier (which usually
        # comes first and makes the record unnecessary).
        events = list(self._held.get(chain, ()))
        held = list(self.held(chain)) if self.held is not None else []
        self._pending_chains.append(
            (layer, chain, time.time(), self._event_seq + len(self._buffer), states, events, held)
        )
        if work >= CHAIN_COMMIT_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the buffered events (and completed chains) in one transaction."""
        if not self._buffer and not self._pending_chains:
            return
        with self.run.transaction():
            self._write_buffer()

    def _write_buffer(self) -> None:
        """Insert the buffered events. Messages go to `messages` only (their event is rebuilt
        from the row: see `RunFile.events`); other events are stored as their JSON."""
        if self._pending_chains:
            chains, self._pending_chains = self._pending_chains, []
            self.run.write_chains_done(
                [
                    (
                        layer,
                        chain,
                        t,
                        seq,
                        json.dumps(states, sort_keys=True, ensure_ascii=False),
                        json.dumps([e.to_json() for e in events], ensure_ascii=False),
                        json.dumps([item.to_json() for item in held], ensure_ascii=False),
                    )
                    for layer, chain, t, seq, states, events, held in chains
                ],
            )
        if not self._buffer:
            return
        buffered, self._buffer = self._buffer, []
        event_rows: list[tuple[Any, ...]] = []
        message_rows: list[tuple[Any, ...]] = []
        rejection_rows: list[tuple[Any, ...]] = []
        step_rows: list[tuple[Any, ...]] = []
        llm_rows: list[tuple[Any, ...]] = []
        dumps = json.dumps
        invocation = self.invocation
        seq = self._event_seq
        message_seq = self._message_seq
        layer = self._layer
        numbered = self._numbered
        for event in buffered:
            seq += 1
            if isinstance(event, ev.MessageDelivered | ev.MessageRejected):
                m = event.message
                message_seq += 1
                if isinstance(event, ev.MessageDelivered):
                    delivery, recipient = event.delivery, event.recipient
                    delivery_seq = numbered.get(m.id)
                    if delivery_seq is None:
                        delivery_seq = numbered[m.id] = self._delivery_seq = self._delivery_seq + 1
                else:
                    delivery, delivery_seq, recipient = "rejected", None, None
                    rejection_rows.append(
                        (message_seq, event.rule, event.reason, event.action, event.sender)
                    )
                message_rows.append(
                    (message_seq, seq, *message_row(m), delivery, delivery_seq, recipient, event.t)
                )
                continue
            chain: str | None = None
            if isinstance(event, ev.LayerStarted):
                layer = event.layer
                numbered.clear()  # a message's deliveries all happen within one layer
            elif isinstance(event, ev.StepStarted | ev.StepFinished):
                chain = event.chain
            event_rows.append(
                (
                    seq,
                    invocation,
                    event.kind,
                    event.t,
                    layer,
                    chain,
                    getattr(event, "region", None),
                    dumps(event.to_json(), ensure_ascii=False),
                )
            )
            if isinstance(event, ev.StepFinished):
                self._step_seq += 1
                step_rows.append(
                    (
                        self._step_seq,
                        seq,
                        event.layer,
                        event.chain,
                        event.step,
                        event.region,
                        event.method,
                        event.outcome,
                        event.t - event.duration,
                        event.t,
                        event.duration,
                        event.error,
                        event.detail,
                    )
                )
            elif isinstance(event, ev.LLMCalled):
                self._llm_seq += 1
                llm_rows.append(
                    (
                        self._llm_seq,
                        seq,
                        event.region,
                        event.llm,
                        event.purpose,
                        event.prompt_tokens,
                        event.completion_tokens,
                        event.duration,
                        event.error,
                        event.t,
                    )
                )
        self._event_seq, self._message_seq, self._layer = seq, message_seq, layer
        self.run.write_journal(event_rows, message_rows, rejection_rows, step_rows, llm_rows)

    # -- the barrier hook ----------------------------------------------------------------------

    def commit_barrier(
        self,
        next_layer: int,
        states: Mapping[str, Mapping[str, Any]],
        cursor: Mapping[str, Any] | None = None,
    ) -> list[Message]:
        """Commit the barrier at position `next_layer` (with a machine's `cursor`) and take
        the queued injections.

        One ``BEGIN IMMEDIATE`` transaction writes the buffered events, the changed region
        states, the plan position, and marks the pending injections consumed: a crash leaves
        either all of it or none.

        After a failed layer the commit waits: if the run goes on (``on_failure: continue``)
        it happens when the next layer starts; if the run stops there, the position stays, so
        a resume runs the failed chains again (the completed ones are kept). Injections wait
        for the next committed barrier.
        """
        if self.failure is not None:
            raise RunFileError(self.failure)
        try:
            self._next = (next_layer, int(cursor["layer"]) if cursor is not None else next_layer)
            if self._layer_failed and next_layer > 0:
                self._deferred = (next_layer, states, cursor)
                self.flush()
                return []
            return self._commit(next_layer, states, cursor, take_injections=True)
        except sqlite3.Error as exc:
            self.failure = f"{self.run.path}: cannot write the run file: {exc}"
            raise RunFileError(self.failure) from exc

    def _commit(
        self,
        next_layer: int,
        states: Mapping[str, Mapping[str, Any]],
        cursor: Mapping[str, Any] | None,
        *,
        take_injections: bool,
    ) -> list[Message]:
        self._deferred = None
        # chains of the layer that just ended need no record: the barrier covers them
        self._pending_chains = [c for c in self._pending_chains if c[0] >= next_layer]
        with self.run.transaction():
            self._write_buffer()
            # A committed barrier is never rewritten: a resumed run or the next `step` starts
            # at it again, and only takes the injections queued meanwhile.
            if not self.run.barrier_committed(next_layer):
                changed: list[tuple[str, str]] = []
                for region, state in states.items():
                    if region in self._last_states and region not in self._touched:
                        continue
                    text = json.dumps(state, sort_keys=True, ensure_ascii=False)
                    if self._last_states.get(region) != text:
                        changed.append((region, text))
                        self._last_states[region] = text
                self._touched.clear()
                self.run.write_barrier(
                    next_layer, self.invocation, self._event_seq, changed, cursor
                )
            return self.run.take_injections(next_layer) if take_injections else []

    async def at_barrier(self, barrier: Any) -> Sequence[Message]:
        """The executor's `BarrierHook`."""
        return self.commit_barrier(barrier.next_layer, barrier.states, barrier.cursor)


def _chain_table(plan: Sequence[Mapping[str, Any]]) -> dict[tuple[int, str], ChainInfo]:
    """(layer, chain) -> the chain's regions and step count, for the whole plan."""
    table: dict[tuple[int, str], ChainInfo] = {}
    for index, layer in enumerate(plan):
        for chain, steps in (layer.get("chains") or {}).items():
            regions = tuple(dict.fromkeys(split_step(str(step))[0] for step in steps))
            table[(index, str(chain))] = ChainInfo(regions, len(steps))
    return table
