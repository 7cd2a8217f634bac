"""What a view knows about a run: the engine's events folded into one small model.

`RunState.apply` is the only writer. The live view renders from it on its own timer; the
plain view and the final report read it too. Nothing here imports the engine's internals:
only the event types of `regions_cli.engine.events`, which are the contract.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from regions_cli.engine.events import (
    FAILED_OUTCOMES,
    Event,
    LayerFinished,
    LayerStarted,
    LLMCalled,
    MessageDelivered,
    MessageRejected,
    Notice,
    RegionStatus,
    RunFinished,
    RunStarted,
    StateEntered,
    StepFinished,
    StepStarted,
    TokenStreamed,
    ToolCalled,
    ToolResulted,
    TransitionTaken,
    WaitStarted,
)
from regions_cli.engine.message import Message
from regions_cli.model import END
from regions_cli.text import plural

#: How each region status reads to a person.
STATUS_TEXT = {
    "idle": "idle",
    "waiting_llm": "waiting for the LLM",
    "replying": "replying",
    "done": "done",
    "failed": "failed",
}

# C0/C1 control characters except tab and newline, and ANSI escape sequences: model output
# must never move the cursor or recolour the user's terminal.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """`text` without ANSI escapes or control characters (tab and newline kept)."""
    return _CONTROL.sub("", _ANSI.sub("", text))


def plain_text(value: object) -> Any:
    """`value` as rich `Text` that is shown as written: no markup, no control characters (for
    every string that comes from a run file, a model or a server)."""
    from rich.text import Text

    return Text(clean(str(value)))


def first_line(text: str, limit: int = 100) -> str:
    """The first non-empty line of `text`, cleaned, cut to `limit` characters with an ellipsis.

    Says how many more lines there were, so a one-line feed never hides that text was cut.
    Only that line is cleaned: a view calls this for every message, of any length.
    """
    lines = text.splitlines()
    cleaned = ((i, clean(raw).replace("\t", " ").strip()) for i, raw in enumerate(lines))
    index, head = next(((i, line) for i, line in cleaned if line), (-1, ""))
    if index < 0:
        return "(empty)"
    if len(head) > limit:
        head = head[: limit - 1].rstrip() + "…"
    more = sum(1 for line in lines[index + 1 :] if line and not line.isspace())
    return f"{head} (+{plural(more, 'line')})" if more else head


def seconds(value: float) -> str:
    """A duration for people: ``0.004s``, ``12.3s``, ``2m05s``."""
    if value < 10:
        return f"{value:.3f}s"
    if value < 60:
        return f"{value:.1f}s"
    minutes, rest = divmod(round(value), 60)
    return f"{minutes}m{rest:02d}s"


@dataclass
class RegionRow:
    """One region as the views show it."""

    name: str
    type: str
    status: str = "idle"
    step: str | None = None  # the method it is running, if any
    sent: int = 0
    received: int = 0
    calls: int = 0
    cached: int = 0  # of `calls`, answered from the response cache
    tokens: int = 0
    last_call: str = ""  # the last call's tokens, "prompt+completion"
    last_change: int = 0  # event ordinal of the last status change, to sort recent ones first


@dataclass
class ChainProgress:
    name: str
    steps: list[str]
    done: set[int] = field(default_factory=set)
    current: str | None = None
    failure: str | None = None  # the outcome of its first failed step (failed, timeout...)

    @property
    def failed(self) -> bool:
        return self.failure is not None


@dataclass
class LayerProgress:
    index: int
    label: str
    chains: dict[str, ChainProgress]
    state: str = "pending"  # pending | running | ok | failed | skipped
    in_state: str | None = None  # the machine state whose plan holds this layer (None: a plan)
    wait: str | None = None  # for a ``wait:`` item: the region it waits for

    def reset(self) -> None:
        """Forget a previous visit's progress: the layer runs again."""
        self.state = "pending"
        for chain in self.chains.values():
            chain.done.clear()
            chain.current = chain.failure = None

    @property
    def steps_total(self) -> int:
        return sum(len(chain.steps) for chain in self.chains.values())

    @property
    def steps_done(self) -> int:
        return sum(len(chain.done) for chain in self.chains.values())


@dataclass(frozen=True)
class FeedEntry:
    """A line of the scrolling feed: a message, a rejected message, a notice, or a tool call or
    its result."""

    t: float
    kind: str  # message | rejected | notice | tool_call | tool_result
    text: str
    source: str = ""
    destination: str = ""
    role: str = ""
    delivery: str = ""
    level: str = ""


class StatePath:
    """The states a machine entered, in order (``end`` last once it has ended). Only the first
    and the last few are kept, so a loop of thousands of visits stays small."""

    def __init__(self, head: int = 4, tail: int = 4) -> None:
        self.head: list[str] = []
        self.tail: deque[str] = deque(maxlen=tail)
        self._head_size = head
        self.count = 0  # states entered in all

    def add(self, state: str) -> None:
        self.count += 1
        if len(self.head) < self._head_size:
            self.head.append(state)
        else:
            self.tail.append(state)

    def __bool__(self) -> bool:
        return self.count > 0

    def text(self) -> str:
        """``draft → review → draft → review → end``, with ``… N more …`` for what is left
        out of the middle."""
        hidden = self.count - len(self.head) - len(self.tail)
        middle = [f"… {hidden} more …"] if hidden else []
        return " → ".join([*self.head, *middle, *self.tail])


@dataclass(frozen=True)
class FailedStep:
    layer: str
    chain: str
    label: str
    outcome: str
    error: str | None


class RunState:
    """The engine's events folded into what a person watching the run wants to see."""

    def __init__(self, feed_size: int = 200) -> None:
        self.started: RunStarted | None = None
        self.finished: RunFinished | None = None
        self.layers: list[LayerProgress] = []
        self.regions: dict[str, RegionRow] = {}
        self.feed: deque[FeedEntry] = deque(maxlen=feed_size)
        self.streams: dict[str, str] = {}  # region -> text streamed so far for its current reply
        self.outputs: list[Message] = []
        self.failures: list[FailedStep] = []
        self.current_layer: int | None = None  # the plan index of the running layer
        self._position = -1  # the position (layers run so far) of the running layer
        self.last_layer: int | None = None  # the plan index of the layer started last
        # A state machine (the layers of RunStarted name their states): where it is.
        self.is_machine = False
        self.current_state: str | None = None
        self.visit = 0  # the current state's visit number (0: not known, e.g. after a resume)
        self.visits: dict[str, int] = {}
        self.transitions = 0
        self.last_transition: TransitionTaken | None = None
        self.path = StatePath()
        self.waiting: WaitStarted | None = None  # the wait the run stopped at
        self.steps_ok = 0
        self.steps_failed = 0
        self.steps_cancelled = 0
        self.messages = 0
        self.rejected = 0
        self.calls = 0  # model calls, answers from the response cache included
        self.cached_calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.warnings = 0
        self.errors = 0
        self.tool_calls = 0  # tool calls the models asked for (and ToolRegions ran)
        self.tool_errors = 0
        self._ordinal = 0
        self.last_t = 0.0  # time of the latest event

    # -- reading ---------------------------------------------------------------------------
    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def layers_done(self) -> int:
        return sum(1 for layer in self.layers if layer.state in ("ok", "failed", "skipped"))

    def elapsed(self, now: float) -> float:
        """Seconds since the run started (its final duration once it has finished)."""
        if self.finished is not None:
            return self.finished.duration
        return max(0.0, now - self.started.t) if self.started is not None else 0.0

    def layer_label(self, index: int) -> str:
        if 0 <= index < len(self.layers):
            return self.layers[index].label
        return f"layer-{index}"

    def index_of(self, position: int) -> int:
        """The plan index of the layer an event's `layer` (its position: layers run so far)
        names: the same number for a plain plan; the running layer's for a machine, whose
        layers run again on each visit."""
        if self.is_machine and position == self._position and self.last_layer is not None:
            return self.last_layer
        return position

    def state_layers(self, name: str) -> list[LayerProgress]:
        """The layers of machine state `name`, in plan order."""
        return [layer for layer in self.layers if layer.in_state == name]

    # -- writing ---------------------------------------------------------------------------
    def apply(self, event: Event) -> None:
        """Fold one event in. Unknown kinds are ignored (the engine may add kinds)."""
        self._ordinal += 1
        self.last_t = event.t
        handler = by_event_type(_HANDLERS, type(event))
        if handler is not None:
            handler(self, event)

    def _layer_started(self, event: LayerStarted) -> None:
        index = event.index if self.is_machine else event.layer
        self.current_layer = self.last_layer = index
        self._position = event.layer
        if 0 <= index < len(self.layers):
            layer = self.layers[index]
            if self.is_machine:
                layer.reset()  # a loop runs it again: this visit's progress only
                if self.current_state is None and layer.in_state is not None:
                    # a resumed run enters no state: it goes on in the one of its layer
                    self.current_state = layer.in_state
                    self.path.add(layer.in_state)
            layer.state = "running"

    def _layer_finished(self, event: LayerFinished) -> None:
        index = self.index_of(event.layer)
        if 0 <= index < len(self.layers):
            self.layers[index].state = "ok" if event.ok else "failed"

    def _state_entered(self, event: StateEntered) -> None:
        self.current_state, self.visit = event.state, event.visit
        self.last_layer = None  # no layer of this visit has run yet
        self.visits[event.state] = event.visit
        self.path.add(event.state)
        for layer in self.state_layers(event.state):  # a new visit runs them all again
            layer.reset()

    def _transition(self, event: TransitionTaken) -> None:
        self.transitions = event.transitions
        self.last_transition = event
        if event.to == END:  # no state is entered: the path ends there
            self.path.add(END)

    def _wait(self, event: WaitStarted) -> None:
        self.waiting = event

    def _region_status(self, event: RegionStatus) -> None:
        row = self._region(event.region)
        row.status = event.status
        row.last_change = self._ordinal

    def _rejected(self, event: MessageRejected) -> None:
        self.rejected += 1
        message = event.message
        self.feed.append(
            FeedEntry(
                event.t,
                "rejected",
                f"{event.rule}: {event.reason} ({event.action})",
                source=message.source,
                destination=message.destination,
                role=message.role,
            )
        )

    def _token(self, event: TokenStreamed) -> None:
        self.streams[event.region] = self.streams.get(event.region, "") + event.text
        row = self._region(event.region)
        if row.status == "waiting_llm":  # the model has started answering
            row.status = "replying"
            row.last_change = self._ordinal

    def _llm_called(self, event: LLMCalled) -> None:
        row = self._region(event.region)
        row.calls += 1
        self.calls += 1
        if event.cached:
            row.cached += 1
            self.cached_calls += 1
            row.last_call = "cached"
            return
        row.tokens += event.prompt_tokens + event.completion_tokens
        row.last_call = f"{event.prompt_tokens:,}+{event.completion_tokens:,}"
        self.prompt_tokens += event.prompt_tokens
        self.completion_tokens += event.completion_tokens

    def _notice(self, event: Notice) -> None:
        if event.level == "warning":
            self.warnings += 1
        elif event.level == "error":
            self.errors += 1
        if event.level in ("warning", "error"):
            self.feed.append(
                FeedEntry(
                    event.t, "notice", event.text, source=event.region or "", level=event.level
                )
            )

    def _tool_called(self, event: ToolCalled) -> None:
        self.tool_calls += 1
        self.feed.append(
            FeedEntry(event.t, "tool_call", clean(event.arguments), source=event.region,
                      destination=event.tool)
        )  # fmt: skip

    def _tool_resulted(self, event: ToolResulted) -> None:
        if event.is_error:
            self.tool_errors += 1
        text = clean(event.content) + (" (cut)" if event.truncated else "")
        self.feed.append(
            FeedEntry(event.t, "tool_result", text, source=event.tool, destination=event.region,
                      level="error" if event.is_error else "")
        )  # fmt: skip

    def _run_finished(self, event: RunFinished) -> None:
        self.finished = event
        self.current_layer = None
        self.streams.clear()

    def _run_started(self, event: RunStarted) -> None:
        self.started = event
        self.waiting = None
        self.is_machine = any("state" in layer for layer in event.layers)
        # A machine's `resumed_from_layer` is a position, not a plan index: nothing is skipped
        skipped = 0 if self.is_machine else event.resumed_from_layer
        self.layers = [
            LayerProgress(
                index=index,
                label=str(layer.get("label", f"layer-{index}")),
                chains={
                    str(name): ChainProgress(str(name), list(steps))
                    for name, steps in dict(layer.get("chains", {})).items()
                },
                state="skipped" if index < skipped else "pending",
                in_state=_text_or_none(layer.get("state")),
                wait=_text_or_none(layer.get("wait")),
            )
            for index, layer in enumerate(event.layers)
        ]
        for name, region_type in event.regions.items():
            self.regions.setdefault(name, RegionRow(name, region_type))

    def _region(self, name: str) -> RegionRow:
        row = self.regions.get(name)
        if row is None:  # an event about a region RunStarted did not list: show it anyway
            row = self.regions[name] = RegionRow(name, "?")
        return row

    def _chain(self, position: int, chain: str) -> ChainProgress | None:
        index = self.index_of(position)
        if 0 <= index < len(self.layers):
            return self.layers[index].chains.get(chain)
        return None

    def _step_started(self, event: StepStarted) -> None:
        label = f"{event.region}.{event.method}"
        self._region(event.region).step = event.method
        progress = self._chain(event.layer, event.chain)
        if progress is not None:
            progress.current = label

    def _step_finished(self, event: StepFinished) -> None:
        failed = event.outcome in FAILED_OUTCOMES
        row = self._region(event.region)
        row.step = None
        self.streams.pop(event.region, None)
        progress = self._chain(event.layer, event.chain)
        if progress is not None:
            progress.current = None
            progress.done.add(event.step)
            if failed and progress.failure is None:
                progress.failure = event.outcome
        if failed:
            self.steps_failed += 1
            self.failures.append(
                FailedStep(
                    self.layer_label(self.index_of(event.layer)),
                    event.chain,
                    f"{event.region}.{event.method}",
                    event.outcome,
                    event.error,
                )
            )
        elif event.outcome == "cancelled":
            self.steps_cancelled += 1
        else:
            self.steps_ok += 1

    def _message(self, event: MessageDelivered) -> None:
        message = event.message
        if event.delivery != "cc":  # a listener's copy is the same message: counted once
            self.messages += 1
        if message.source in self.regions and event.delivery != "cc":
            self.regions[message.source].sent += 1
            self.streams.pop(message.source, None)  # the streamed text is now a whole message
        # A CC names the listener that got the copy in `recipient`; other deliveries go to
        # the destination (`recipient` may be left unset by a hand-made event).
        recipient = event.recipient or message.destination
        if recipient in self.regions:
            self.regions[recipient].received += 1
        external = self.started is not None and message.destination not in self.started.regions
        if event.delivery == "output" or (external and event.delivery != "cc"):
            self.outputs.append(message)
        self.feed.append(
            FeedEntry(
                event.t,
                "message",
                first_line(message.content),
                source=message.source,
                destination=message.destination,
                role=message.role,
                delivery=event.delivery,
            )
        )


Handler = Callable[[RunState, Any], None]

#: Which method folds in which event type (a dict lookup, not a chain of isinstance: views
#: see every event of a run, hundreds of thousands in a big one).
_HANDLERS: dict[type, Handler | None] = {
    ToolCalled: RunState._tool_called,
    ToolResulted: RunState._tool_resulted,
    RunStarted: RunState._run_started,
    LayerStarted: RunState._layer_started,
    StepStarted: RunState._step_started,
    StepFinished: RunState._step_finished,
    RegionStatus: RunState._region_status,
    MessageDelivered: RunState._message,
    MessageRejected: RunState._rejected,
    TokenStreamed: RunState._token,
    LLMCalled: RunState._llm_called,
    LayerFinished: RunState._layer_finished,
    Notice: RunState._notice,
    RunFinished: RunState._run_finished,
    StateEntered: RunState._state_entered,
    TransitionTaken: RunState._transition,
    WaitStarted: RunState._wait,
}


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)


T = TypeVar("T")


def by_event_type(table: dict[type, T | None], event_type: type) -> T | None:
    """The entry of `event_type` in `table`, or of the nearest event type it derives from
    (remembered in `table`, so each new event type is looked up once)."""
    try:
        return table[event_type]
    except KeyError:
        found = next((table[c] for c in event_type.__mro__ if c in table), None)
        table[event_type] = found
        return found


def region_state_lines(name: str, state: Mapping[str, Any], *, limit: int = 100) -> list[str]:
    """A region's snapshot for people: pending requests, knowledge (replies), held inbox."""
    lines = [f"{name} ({state.get('type', '?')})"]
    for title, key in (("requests (pending)", "requests"), ("replies (knowledge)", "replies")):
        entries = state.get(key) or []
        lines.append(f"  {title}: {len(entries)}")
        lines.extend(
            f"    {entry.get('source')}: {first_line(str(entry.get('content', '')), limit)}"
            for entry in entries
        )
    inbox = state.get("inbox") or []
    if inbox:
        lines.append(f"  inbox: {len(inbox)}")
        lines.extend(
            f"    {m.get('source')} -> {m.get('destination')} {m.get('role')}: "
            f"{first_line(str(m.get('content', '')), limit)}"
            for m in inbox
        )
    extra = state.get("extra") or {}
    if extra:
        lines.append(f"  other state: {', '.join(sorted(extra))}")
    return lines
