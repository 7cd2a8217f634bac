"""Off a terminal: one plain line per event, then the run's output and summary.

Lines start with the seconds since the run started, so a CI log reads as a timeline::

       0.000s run lookup: 2 layers, 3 regions, run file .regions/runs/lookup-....db
       0.001s layer 1/2 ask started
       0.001s step ask/main#1 Historian.make_questions started

Streamed tokens (``token`` events) are the one kind not printed: their text arrives whole in
the ``message`` line that follows, and a line per token would drown the log.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TextIO

from regions_cli.engine.events import (
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
from regions_cli.text import plural
from regions_cli.view.lines import LineWriter
from regions_cli.view.report import report_lines
from regions_cli.view.state import (
    STATUS_TEXT,
    RunState,
    by_event_type,
    clean,
    first_line,
    seconds,
)


class PlainView:
    """Writes a line per event to `stream` (flushed, so a pipe sees progress as it happens)."""

    def __init__(self, stream: TextIO, on_closed: Callable[[], None] | None = None) -> None:
        self.out = LineWriter(stream, on_closed)  # on_closed: the reader of stdout has gone
        self.state = RunState(feed_size=1)
        self._t0: float | None = None

    def __enter__(self) -> PlainView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.out.flush()

    def __call__(self, event: Event) -> None:
        self.state.apply(event)
        if self._t0 is None:
            self._t0 = event.t
        line = self.line(event)
        if line is not None:
            self.out.write(f"{max(0.0, event.t - self._t0):8.3f}s {line}\n")

    def report(self, summary: RunFinished | None = None, next_commands: Sequence[str] = ()) -> None:
        """The run's output messages in full, then the summary (see `report_lines`)."""
        report = report_lines(self.state, summary=summary, next_commands=next_commands)
        lines = [line.text for line in report]
        self.out.write("\n" + "\n".join(lines) + "\n")

    def line(self, event: Event) -> str | None:
        """The text of `event`'s line (without the time), or None for events not printed."""
        formatter = by_event_type(_FORMATTERS, type(event))
        if formatter is not None:
            return formatter(self, event)
        if isinstance(event, TokenStreamed):
            return None
        # A kind this view does not know yet (the engine may add some): still one line.
        fields = {k: v for k, v in event.to_json().items() if k not in ("kind", "t")}
        return clean(f"{event.kind} {fields}")

    # -- one formatter per event kind --------------------------------------------------------
    def _run_started(self, event: RunStarted) -> str:
        layers, regions = len(event.layers), len(event.regions)
        text = f"run {event.workflow}: {plural(layers, 'layer')}"
        if self.state.is_machine:
            states = {str(layer.get("state")) for layer in event.layers}
            text += f" in {plural(len(states), 'state')}"
        text += f", {plural(regions, 'region')}"
        if event.resumed_from_layer and self.state.is_machine:  # a position: layers run so far
            text += f", resumed after {plural(event.resumed_from_layer, 'layer')} run"
        elif event.resumed_from_layer:
            text += f", resumed at layer {event.resumed_from_layer + 1}"
        return text + f", run file {event.run_file or '(none)'}"

    def _layer_started(self, event: LayerStarted) -> str:
        return f"layer {self._layer_number(event.layer)} {event.label} started"

    def _layer_finished(self, event: LayerFinished) -> str:
        outcome = "ok" if event.ok else "failed"
        number = self._layer_number(event.layer)
        return f"layer {number} {event.label} {outcome} {seconds(event.duration)}"

    def _state_entered(self, event: StateEntered) -> str:
        return f"state {event.state} entered (visit {event.visit})"

    def _transition(self, event: TransitionTaken) -> str:
        return f"transition {event.state} -> {event.to}: {clean(event.reason)}"

    def _wait(self, event: WaitStarted) -> str:
        prompt = f": {first_line(event.prompt, 200)}" if event.prompt else ""
        return f"waiting for {event.region}{prompt}"

    def _step_started(self, event: StepStarted) -> str:
        attempt = f" (attempt {event.attempt})" if event.attempt > 1 else ""
        where = self._where(event.layer, event.chain, event.step)
        return f"step {where} {event.region}.{event.method} started{attempt}"

    def _step_finished(self, event: StepFinished) -> str:
        text = (
            f"step {self._where(event.layer, event.chain, event.step)}"
            f" {event.region}.{event.method} {event.outcome} {seconds(event.duration)}"
        )
        if event.stopped_reason is not None:  # it ran a tool loop: why the loop stopped
            text += f" (tool loop: {event.stopped_reason})"
        extra = event.error or event.detail
        return text + f": {first_line(extra, 200)}" if extra else text

    def _region_status(self, event: RegionStatus) -> str:
        return f"region {event.region} {STATUS_TEXT.get(event.status, event.status)}"

    def _message(self, event: MessageDelivered) -> str:
        message = event.message
        label = "message" if event.delivery == "delivered" else event.delivery
        return (
            f"{label} {message.source} -> {message.destination} {message.role}:"
            f" {first_line(message.content)}"
        )

    def _rejected(self, event: MessageRejected) -> str:
        message = event.message
        return (
            f"rejected {message.source} -> {message.destination} {message.role}"
            f" ({event.rule}, {event.action}): {first_line(event.reason, 200)}"
        )

    def _llm_called(self, event: LLMCalled) -> str:
        text = (
            f"llm {event.region} via {event.llm} ({event.purpose}):"
            f" {event.prompt_tokens}+{event.completion_tokens} tokens {seconds(event.duration)}"
        )
        return text + f", error: {first_line(event.error, 200)}" if event.error else text

    def _tool_called(self, event: ToolCalled) -> str:
        return f"tool {event.region} -> {event.tool}: {first_line(event.arguments, 200)}"

    def _tool_resulted(self, event: ToolResulted) -> str:
        label = "tool error" if event.is_error else "tool result"
        cut = " (cut)" if event.truncated else ""
        return (
            f"{label} {event.tool} -> {event.region} {seconds(event.duration)}:"
            f" {first_line(event.content, 200)}{cut}"
        )

    def _notice(self, event: Notice) -> str:
        where = f" [{event.region}]" if event.region else ""
        return f"{event.level}{where}: {first_line(event.text, 300)}"

    def _run_finished(self, event: RunFinished) -> str:
        cancelled = f" {event.steps_cancelled} cancelled," if event.steps_cancelled else ""
        return (
            f"run {event.status}: {plural(event.layers_run, 'layer')} run,"
            f" steps {event.steps_ok} ok, {event.steps_failed} failed,{cancelled}"
            f" {plural(event.messages, 'message')},"
            f" {plural(event.prompt_tokens + event.completion_tokens, 'token')}"
            f" in {seconds(event.duration)}"
        )

    def _layer_number(self, position: int) -> str:
        """``2/3``: the layer's place in the plan (a machine's layers run again on each visit,
        so their position in the run is not it)."""
        return f"{self.state.index_of(position) + 1}/{len(self.state.layers)}"

    def _where(self, position: int, chain: str, step: int) -> str:
        return f"{self.state.layer_label(self.state.index_of(position))}/{chain}#{step + 1}"


Formatter = Callable[[PlainView, Any], str]

#: The line of each event type (a dict lookup: a view sees every event of a run).
_FORMATTERS: dict[type, Formatter | None] = {
    RunStarted: PlainView._run_started,
    LayerStarted: PlainView._layer_started,
    LayerFinished: PlainView._layer_finished,
    StepStarted: PlainView._step_started,
    StepFinished: PlainView._step_finished,
    RegionStatus: PlainView._region_status,
    MessageDelivered: PlainView._message,
    MessageRejected: PlainView._rejected,
    LLMCalled: PlainView._llm_called,
    Notice: PlainView._notice,
    ToolCalled: PlainView._tool_called,
    ToolResulted: PlainView._tool_resulted,
    RunFinished: PlainView._run_finished,
    StateEntered: PlainView._state_entered,
    TransitionTaken: PlainView._transition,
    WaitStarted: PlainView._wait,
}
