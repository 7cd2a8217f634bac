"""The event stream of a run: what views, ``--json``, the journal and the GUI subscribe to.

Each event is a small slotted dataclass with a stable ``kind``, read-only by convention (not
``frozen``: one is built per delivered message, and frozen construction costs more than double).
`Event.to_json` gives the documented JSON object (``{"kind": ..., "t": ..., ...fields}``).
Subscribers are plain callables run synchronously, in subscription order, on the event loop:
they must be quick (a view renders on its own refresh timer; the journal batches its writes).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar

from regions_cli.engine.message import Message

#: The chain of the running layer whose task emits an event (None between layers). The
#: executor sets it in each chain's task, so a subscriber that needs the plan order (the
#: journal) can tell which chain an event belongs to without it being in every event.
CURRENT_CHAIN: ContextVar[str | None] = ContextVar("regions_current_chain", default=None)

#: Step outcomes that count as failures (``ok`` and ``false`` do not; ``cancelled``, a step cut
#: off by Ctrl-C or a pause, is neither a success nor a failure: it runs again on resume).
FAILED_OUTCOMES = frozenset({"failed", "timeout"})

#: Outcomes of a step that did not complete: its chain runs again when the run is resumed.
UNFINISHED_OUTCOMES = FAILED_OUTCOMES | {"cancelled"}


@dataclass(kw_only=True, slots=True)
class Event:
    kind: ClassVar[str] = "event"
    t: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        """The documented JSON object: ``{"kind": ..., "t": ..., ...fields}`` (messages and
        other dataclasses as objects), built without `dataclasses.asdict`'s deep copy: this is
        on the hot path of ``--json`` and the run file."""
        data: dict[str, Any] = {"kind": self.kind}
        data.update(_fields(self))
        return data


@dataclass(kw_only=True, slots=True)
class RunStarted(Event):
    kind: ClassVar[str] = "run_started"
    run_id: str
    workflow: str
    workflow_hash: str
    run_file: str | None
    layers: list[dict[str, Any]]  # [{"label": ..., "chains": {chain: ["Region.method", ...]}}]
    regions: dict[str, str]  # name -> type
    resumed_from_layer: int = 0


@dataclass(kw_only=True, slots=True)
class LayerStarted(Event):
    kind: ClassVar[str] = "layer_started"
    layer: int  # the position: layers run before this one in the run
    label: str
    index: int = 0  # the layer's index in the plan (== `layer` for a plain plan)


@dataclass(kw_only=True, slots=True)
class StepStarted(Event):
    kind: ClassVar[str] = "step_started"
    layer: int
    chain: str
    step: int
    region: str
    method: str
    attempt: int = 1


@dataclass(kw_only=True, slots=True)
class StepFinished(Event):
    kind: ClassVar[str] = "step_finished"
    layer: int
    chain: str
    step: int
    region: str
    method: str
    outcome: str  # ok | nothing | false | failed | timeout | cancelled
    duration: float
    error: str | None = None
    detail: str | None = None  # e.g. "no incoming requests" for outcome "nothing"
    attempt: int = 1  # the attempt this outcome belongs to (1 + retries used)
    # Why a step with a tool loop stopped: answered | terminal_tool | max_iterations | error
    # (None for a step without tools).
    stopped_reason: str | None = None


@dataclass(kw_only=True, slots=True)
class RegionStatus(Event):
    kind: ClassVar[str] = "region_status"
    region: str
    status: str  # idle | waiting_llm | replying | done | failed


@dataclass(kw_only=True, slots=True)
class MessageDelivered(Event):
    kind: ClassVar[str] = "message"
    message: Message
    delivery: str = "delivered"  # delivered | output | cc | injected | returned | rerouted
    seq: int = 0  # delivery order in the run (1, 2, ...); a CC repeats its message's seq
    recipient: str | None = None  # who got it: the destination, or the listener for a CC


@dataclass(kw_only=True, slots=True)
class MessageRejected(Event):
    kind: ClassVar[str] = "message_rejected"
    message: Message
    rule: str  # not-connected | not-asked | unknown-destination | unknown-role | invalid-input
    reason: str
    action: str  # error | drop | return | reroute
    sender: str | None = None  # the region that posted it (differs from source for broadcasts)


@dataclass(kw_only=True, slots=True)
class TokenStreamed(Event):
    kind: ClassVar[str] = "token"
    region: str
    text: str


@dataclass(kw_only=True, slots=True)
class LLMCalled(Event):
    kind: ClassVar[str] = "llm_call"
    region: str
    llm: str
    purpose: str
    prompt_tokens: int
    completion_tokens: int
    duration: float
    error: str | None = None
    cached: bool = False  # answered from the response cache: no model was called
    # What was sent and what came back (``regions show --prompts``; what scripted rules match)
    system: str = ""
    user: str = ""
    answer: str = ""


@dataclass(kw_only=True, slots=True)
class ToolCalled(Event):
    """A region's model asked for a tool call (or a `ToolRegion` runs its tool)."""

    kind: ClassVar[str] = "tool_call"
    region: str
    tool: str
    call_id: str
    arguments: str  # the JSON text as the model wrote it
    iteration: int = 1  # the round of the tool loop (1 for a ToolRegion)


@dataclass(kw_only=True, slots=True)
class ToolResulted(Event):
    """A tool call ended: its result (or error) as handed back to the model."""

    kind: ClassVar[str] = "tool_result"
    region: str
    tool: str
    call_id: str
    content: str
    is_error: bool = False
    truncated: bool = False
    duration: float = 0.0


@dataclass(kw_only=True, slots=True)
class LayerFinished(Event):
    kind: ClassVar[str] = "layer_finished"
    layer: int
    label: str
    ok: bool
    duration: float


@dataclass(kw_only=True, slots=True)
class StateEntered(Event):
    """A state machine enters a state (machines only: a plain plan has no state events)."""

    kind: ClassVar[str] = "state_entered"
    state: str
    visit: int  # 1 on the first visit
    layer: int  # the position (layers run so far) at which its first layer runs


@dataclass(kw_only=True, slots=True)
class TransitionTaken(Event):
    """A state's plan ended and the machine chose where to go (`to` is a state or ``end``)."""

    kind: ClassVar[str] = "transition"
    state: str  # the state that ended
    visit: int
    to: str
    rule: int | None  # the index of the matching ``next:`` entry; None: none matched, or exhausted
    reason: str  # why: "always", the condition that held, "review exhausted (4 visits)"
    transitions: int  # transitions taken so far in the run, this one included


@dataclass(kw_only=True, slots=True)
class WaitStarted(Event):
    """The run reached a ``wait:`` with no message for its region: it pauses for a person."""

    kind: ClassVar[str] = "wait"
    region: str
    prompt: str
    layer: int


@dataclass(kw_only=True, slots=True)
class Notice(Event):
    kind: ClassVar[str] = "notice"
    level: str  # info | warning | error
    text: str
    region: str | None = None


@dataclass(kw_only=True, slots=True)
class RunFinished(Event):
    kind: ClassVar[str] = "run_finished"
    status: str  # ok | failed | interrupted | paused | waiting | budget_exceeded
    exit_code: int
    layers_run: int
    steps_ok: int
    steps_failed: int
    messages: int
    prompt_tokens: int
    completion_tokens: int
    duration: float
    run_file: str | None = None
    # Tokens per region in this run: {region: {prompt_tokens, completion_tokens}} (regions that
    # spent none are left out).
    region_tokens: dict[str, dict[str, int]] = field(default_factory=dict)
    # Model calls in this invocation, answers from the cache included, and how many of them
    # the cache answered (None in run files written before these were counted).
    llm_calls: int | None = None
    cached_calls: int | None = None
    # Steps cut off by Ctrl-C or a pause (neither ok nor failed; they run again on resume).
    steps_cancelled: int = 0


Subscriber = Callable[[Event], None]


class EventBus:
    """Fans events out to subscribers, in order. Subscribers must not raise."""

    def __init__(self) -> None:
        # A tuple, replaced on (un)subscribe: `emit` (once per message: the hot path) iterates
        # it without copying, and a subscriber added during an emit sees the next event.
        self._subscribers: tuple[Subscriber, ...] = ()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Add `subscriber`; returns a function that removes it."""
        self._subscribers = (*self._subscribers, subscriber)

        def unsubscribe() -> None:
            subscribers = list(self._subscribers)
            subscribers.remove(subscriber)
            self._subscribers = tuple(subscribers)

        return unsubscribe

    def emit(self, event: Event) -> None:
        for subscriber in self._subscribers:
            subscriber(event)


# Field annotations whose values JSON takes as they are: no conversion needed.
_SCALAR_TYPES = {"str", "int", "float", "bool", "str | None", "int | None", "float | None"}

#: Per dataclass type: (field name, needs conversion) in declaration order.
_LAYOUTS: dict[type, tuple[tuple[str, bool], ...]] = {}


def _fields(value: Any) -> dict[str, Any]:
    layout = _LAYOUTS.get(type(value))
    if layout is None:
        layout = _LAYOUTS[type(value)] = tuple(
            (f.name, not (f.type in _SCALAR_TYPES or f.type in (str, int, float, bool)))
            for f in fields(value)
        )
    data: dict[str, Any] = {}
    for name, convert in layout:
        item = getattr(value, name)
        data[name] = _plain(item) if convert else item
    return data


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float)):
        return value
    if is_dataclass(value) and not isinstance(value, type):
        return _fields(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value
