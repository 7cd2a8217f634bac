"""On a terminal: a rich Live view of the run.

Top to bottom: a header (workflow, current layer, elapsed time), the plan as progress bars
(layers, then the chains of the running layer with the step each is on), a table of regions
(state, messages sent/received, LLM calls, tokens in all and of the last call), a scrolling
feed of messages with the text still streaming from the model, and a line of totals.

Events only update `RunState` (under a lock, quickly); rich's Live thread renders on its own
timer (``refresh_per_second``), never once per event, so a burst of thousands of messages costs
no terminal I/O. `render()` builds the whole picture from the state and is what the snapshot
tests print to a recording console.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.text import Text

from regions_cli.engine.events import Event, RunFinished
from regions_cli.text import plural
from regions_cli.view.report import report_lines
from regions_cli.view.state import (
    STATUS_TEXT,
    ChainProgress,
    FeedEntry,
    LayerProgress,
    RegionRow,
    RunState,
    clean,
    seconds,
)

if TYPE_CHECKING:
    from rich.live import Live

STATUS_STYLE = {
    "idle": "dim",
    "waiting_llm": "yellow",
    "replying": "cyan",
    "done": "green",
    "failed": "bold red",
}
#: The header's colour for how a run ended (others: red).
FINISHED_STYLE = {"ok": "green", "waiting": "yellow"}
REPORT_STYLE = {"heading": "bold", "label": "bold cyan", "text": "", "bad": "red"}
ACTIVE = ("waiting_llm", "replying")
BAR_WIDTH = 30
MAX_CHAINS = 6  # chains of the running layer shown as bars; the rest are summed up in a line


class LiveView:
    """The live terminal view. Use as a context manager around the run, feed it events."""

    def __init__(
        self,
        console: Console,
        *,
        refresh_per_second: float = 4,
        feed_lines: int = 8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.console = console
        self.state = RunState()
        self.refresh_per_second = refresh_per_second
        self.feed_lines = feed_lines
        self.clock = clock
        self._lock = threading.Lock()
        self._live: Live | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> LiveView:
        from rich.live import Live

        self._live = Live(
            console=self.console,
            refresh_per_second=self.refresh_per_second,
            get_renderable=self.render,
            transient=False,  # the last frame stays on screen above the report
            # stray prints (a library's warning) appear above the view instead of tearing it
            redirect_stdout=True,
            redirect_stderr=True,
        )
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()  # renders one final frame
            self._live = None

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Stop redrawing (the terminal is free for a prompt) inside the ``with``; the view
        takes up again after it, with every event received meanwhile."""
        live = self._live
        if live is None:
            yield
            return
        live.stop()
        try:
            yield
        finally:
            live.start(refresh=True)  # draw at once, not at the next tick

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.state.apply(event)

    def report(self, summary: RunFinished | None = None, next_commands: Sequence[str] = ()) -> None:
        """The run's output messages in full, then the summary, below the last frame (see
        `report_lines`)."""
        self.console.print()
        for line in report_lines(self.state, summary=summary, next_commands=next_commands):
            self.console.print(
                Text(line.text, style=REPORT_STYLE[line.style]), soft_wrap=True, highlight=False
            )

    # -- rendering ---------------------------------------------------------------------------
    def render(self) -> RenderableType:
        """The whole picture for the current state (called by Live's timer thread).

        One `Text` of fixed-width columns laid out here rather than rich Tables: a frame of a
        thousand-region run then costs a few milliseconds, not tens, four times a second.
        """
        with self._lock:
            state = self.state
            if state.started is None:
                return Text("starting…", style="dim")
            height = self.console.size.height
            plan = self._plan(state)
            wanted = max(1, len(state.feed) + len(state.streams))
            feed_lines = max(1, min(self.feed_lines, (height - len(plan)) // 4, wanted))
            # Header, blank line, table head (2 lines), feed title, totals (2 lines), and a spare
            # line so a full frame never scrolls the terminal: 8 lines.
            region_rows = max(3, height - len(plan) - feed_lines - 8)
            lines = [
                self._header(state),
                *plan,
                Text(""),
                *self._regions(state, region_rows),
                *self._feed(state, feed_lines),
                *self._totals(state),
            ]
            frame = Text("\n").join(lines)
            frame.no_wrap, frame.overflow = True, "ellipsis"  # crop long lines, never wrap
            # In a Group, `Console.print` renders the Text as is (it would merge a bare Text
            # into a new one, losing no_wrap); Live renders either way.
            return Group(frame)

    def _header(self, state: RunState) -> Text:
        assert state.started is not None
        text = Text()
        text.append("regions run ", style="bold")
        text.append(state.started.workflow, style="bold cyan")
        if state.finished is not None:
            status = state.finished.status
            style = FINISHED_STYLE.get(status, "red")
            text.append(f"  {status}", style=style)
            if state.waiting is not None:
                text.append(f" for {state.waiting.region}", style=style)
        elif state.is_machine and state.current_state is not None:
            text.append(f"  {_state_note(state)}", style="bold")
            shown = _shown_layer(state)
            if shown is not None and shown.in_state == state.current_state:
                layers = state.state_layers(state.current_state)
                text.append(f"  layer {layers.index(shown) + 1}/{len(layers)} {shown.label}")
        elif state.current_layer is not None:
            layer = state.current_layer
            text.append(f"  layer {layer + 1}/{len(state.layers)} {state.layer_label(layer)}")
        text.append(f"  {seconds(state.elapsed(self.clock()))}", style="dim")
        return text

    def _plan(self, state: RunState) -> list[Text]:
        """The plan as progress bars: the layers (a machine's: the current state's, in this
        visit), then the chains of the running layer; for a machine, the path it took."""
        layers = state.layers
        title = "layers"
        if state.is_machine and state.current_state is not None:
            layers, title = state.state_layers(state.current_state), state.current_state
        total = len(layers)
        done = sum(1 for layer in layers if layer.state in ("ok", "failed", "skipped"))
        failed = any(layer.state == "failed" for layer in layers)
        rows: list[list[Text]] = [
            [
                Text(title, style="bold"),
                _bar(done, total, failed=failed),
                Text(f"{done}/{total}"),
                Text(_layer_note(state), style="dim"),
            ]
        ]
        layer = _shown_layer(state)
        if layer is not None:
            chains = list(layer.chains.values())
            for chain in chains[:MAX_CHAINS]:
                rows.append(
                    [
                        Text(f"  {chain.name}"),
                        _bar(len(chain.done), len(chain.steps), failed=chain.failed),
                        Text(f"{len(chain.done)}/{len(chain.steps)}"),
                        _chain_note(chain),
                    ]
                )
            if len(chains) > MAX_CHAINS:
                rest = chains[MAX_CHAINS:]
                finished = sum(1 for c in rest if len(c.done) == len(c.steps))
                rows.append(
                    [
                        Text(f"  … {len(rest)} more chains", style="dim"),
                        Text(""),
                        Text(""),
                        Text(f"{finished} finished", style="dim"),
                    ]
                )
        lines = _columns(rows, max_widths=(24, BAR_WIDTH, 9, None), right=(2,))
        if state.path:
            line = Text("path ", style="bold")
            line.append(state.path.text())
            line.append(f"  ({plural(state.transitions, 'transition')})", style="dim")
            lines.append(line)
        return lines

    def _regions(self, state: RunState, limit: int) -> list[Text]:
        """The regions table: a head, a rule, then at most `limit` rows."""
        head = ["region", "type", "state", "step", "sent", "recv", "calls", "tokens", "last call"]
        rows: list[list[Text]] = [[Text(title, style="bold") for title in head]]
        shown, hidden = _pick_regions(list(state.regions.values()), limit)
        for row in shown:
            rows.append(
                [
                    Text(row.name),
                    Text(row.type, style="dim"),
                    Text(
                        STATUS_TEXT.get(row.status, row.status),
                        style=STATUS_STYLE.get(row.status, ""),
                    ),
                    Text(row.step or "", style="dim"),
                    Text(str(row.sent)),
                    Text(str(row.received)),
                    Text(f"{row.calls} ({row.cached} cached)" if row.cached else str(row.calls)),
                    Text(f"{row.tokens:,}"),
                    Text(row.last_call, style="dim"),
                ]
            )
        if hidden:
            counts: dict[str, int] = {}
            for row in hidden:
                counts[row.status] = counts.get(row.status, 0) + 1
            summary = ", ".join(f"{n} {STATUS_TEXT.get(s, s)}" for s, n in sorted(counts.items()))
            rows.append(
                [Text(f"… {len(hidden)} more", style="dim"), Text(""), Text(summary, style="dim")]
                + [Text("")] * 6
            )
        lines = _columns(
            rows,
            max_widths=(28, 16, 19, 22, None, None, None, None, None),
            right=(4, 5, 6, 7, 8),
            gap=3,
        )
        rule = Text("─" * max(line.cell_len for line in lines))
        return [lines[0], rule, *lines[1:]]

    def _feed(self, state: RunState, lines: int) -> list[Text]:
        """The last messages, rejections and warnings, then text still streaming in."""
        t0 = state.started.t if state.started else 0.0
        streams = list(state.streams.items())[-lines:]
        entries = list(state.feed)[-(lines - len(streams)) :] if lines > len(streams) else []
        rows: list[list[Text]] = []
        for entry in entries:
            rows.append([Text(seconds(max(0.0, entry.t - t0)), style="dim"), *_feed_cells(entry)])
        for region, text in streams:
            tail = clean(text).replace("\n", " ").strip()[-200:]
            rows.append(
                [
                    Text(""),
                    Text(f"{region} ▸", style="cyan"),
                    Text("streaming", style="dim"),
                    Text(tail, style="italic"),
                ]
            )
        if not rows:
            rows.append([Text(""), Text("no messages yet", style="dim"), Text(""), Text("")])
        return [
            Text("messages", style="bold"),
            *_columns(rows, max_widths=(7, 40, 20, None), right=(0,), min_widths=(7, 0, 8, 0)),
        ]

    def _totals(self, state: RunState) -> list[Text]:
        text = Text(style="dim")
        text.append(f"steps {state.steps_ok} ok, ")
        text.append(f"{state.steps_failed} failed", style="red" if state.steps_failed else "")
        text.append(f" · {state.messages:,} messages")
        if state.rejected:
            text.append(f" ({state.rejected} rejected)", style="red")
        text.append(f" · {state.tokens:,} tokens")
        run_file = state.started.run_file if state.started else None
        return [text, Text(f"run file {run_file or '(none)'}", style="dim")]


def _columns(
    rows: list[list[Text]],
    *,
    max_widths: Sequence[int | None],
    right: Sequence[int] = (),
    min_widths: Sequence[int] = (),
    gap: int = 1,
) -> list[Text]:
    """`rows` of cells laid out in columns as wide as their widest cell (capped by
    `max_widths`, cut with an ellipsis); the columns in `right` are right-aligned. The last
    column is not padded (the frame crops long lines to the terminal's width)."""
    count = len(max_widths)
    widths = []
    for index in range(count):
        widest = max((row[index].cell_len for row in rows if index < len(row)), default=0)
        cap = max_widths[index]
        floor = min_widths[index] if index < len(min_widths) else 0
        widths.append(max(floor, widest if cap is None else min(cap, widest)))
    spacer = " " * gap
    out = []
    for row in rows:
        line = Text()
        for index, cell in enumerate(row[:count]):
            last = index == count - 1
            if index:
                line.append(spacer)
            cell = cell.copy()
            if cell.cell_len > widths[index]:
                cell.truncate(widths[index], overflow="ellipsis")
            if not last or index in right:
                cell.align("right" if index in right else "left", widths[index])
            line.append_text(cell)
        line.rstrip()
        out.append(line)
    return out


def _bar(completed: int, total: int, *, failed: bool = False) -> Text:
    """A progress bar: heavy line for what is done, a thin one for what is left."""
    filled = BAR_WIDTH if total <= 0 else round(BAR_WIDTH * min(completed, total) / total)
    style = "red" if failed else "green" if total and completed >= total else "magenta"
    bar = Text("━" * filled, style=style)
    bar.append("─" * (BAR_WIDTH - filled), style="bright_black")
    return bar


def _shown_layer(state: RunState) -> LayerProgress | None:
    """The running layer; after the run, the last one that ran (to show where it stopped).
    A machine's: the last one that ran in the current state's visit, if any."""
    if state.is_machine:  # its layers do not run in plan order
        last = state.last_layer
        if last is None or last >= len(state.layers):
            return None
        layer = state.layers[last]
        return layer if layer.in_state == state.current_state else None
    if state.current_layer is not None and 0 <= state.current_layer < len(state.layers):
        return state.layers[state.current_layer]
    ran = [layer for layer in state.layers if layer.state in ("ok", "failed")]
    return ran[-1] if ran else None


def _state_note(state: RunState) -> str:
    """``state review (visit 2)``: where a machine is."""
    visit = f" (visit {state.visit})" if state.visit else ""
    return f"state {state.current_state}{visit}"


def _layer_note(state: RunState) -> str:
    if state.waiting is not None:
        return f"waiting for {state.waiting.region}"
    layer = _shown_layer(state)
    if layer is None:
        return ""
    if layer.wait is not None:  # it ran: the answer had come
        return f"{layer.label}: answered"
    return f"{layer.label}: {layer.steps_done}/{layer.steps_total} steps"


def _chain_note(chain: ChainProgress) -> Text:
    if chain.current:
        return Text(chain.current, style="cyan")
    if chain.failure is not None:
        return Text(chain.failure, style="red")
    if len(chain.done) == len(chain.steps):
        return Text("done", style="green")
    return Text("waiting", style="dim")


def _pick_regions(rows: list[RegionRow], limit: int) -> tuple[list[RegionRow], list[RegionRow]]:
    """At most `limit` rows in declared order: active first, then failed, then most recent."""
    if len(rows) <= limit:
        return rows, []
    keep = limit - 1  # one line says how many are hidden

    def priority(row: RegionRow) -> tuple[int, int]:
        rank = 0 if row.status in ACTIVE else 1 if row.status == "failed" else 2
        return rank, -row.last_change

    chosen = {id(row) for row in sorted(rows, key=priority)[:keep]}
    shown = [row for row in rows if id(row) in chosen]
    hidden = [row for row in rows if id(row) not in chosen]
    return shown, hidden


def _feed_cells(entry: FeedEntry) -> tuple[Text, Text, Text]:
    if entry.kind in ("tool_call", "tool_result"):
        route = Text(f"{entry.source} -> {entry.destination}")
        if entry.kind == "tool_call":
            return route, Text("tool call", style="cyan"), Text(entry.text)
        failed = entry.level == "error"
        what = Text("tool error" if failed else "tool result", style="red" if failed else "cyan")
        return route, what, Text(entry.text)
    if entry.kind == "notice":
        style = "red" if entry.level == "error" else "yellow"
        return Text(entry.source, style=style), Text(entry.level, style=style), Text(entry.text)
    route = Text(f"{entry.source} -> {entry.destination}")
    if entry.kind == "rejected":
        return route, Text("rejected", style="bold red"), Text(entry.text, style="red")
    role = entry.role if entry.delivery in ("delivered", "") else f"{entry.role} ({entry.delivery})"
    role_style = (
        "magenta" if entry.delivery == "output" else "dim" if entry.delivery == "cc" else ""
    )
    return route, Text(role, style=role_style), Text(entry.text)
