"""On a terminal: a rich Live view of the run.

Top to bottom: a header (workflow, current layer, elapsed time), the plan as progress bars
(layers, then the chains of the running layer with the step each is on), a table of regions
(state, messages sent/received, LLM calls, tokens), a scrolling feed of messages with the
text still streaming from the model, and a line of totals.

Events only update `RunState` (under a lock, quickly); rich's Live thread renders on its own
timer (``refresh_per_second``), never once per event, so a burst of thousands of messages costs
no terminal I/O. `render()` builds the whole picture from the state and is what the snapshot
tests print to a recording console.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console, Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from regions_cli.engine.events import Event
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
REPORT_STYLE = {"heading": "bold", "label": "bold cyan", "text": "", "bad": "red"}
ACTIVE = ("waiting_llm", "replying")
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
            redirect_stderr=False,  # errors must reach the user even if the view is stuck
        )
        self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.stop()  # renders one final frame
            self._live = None

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.state.apply(event)

    def report(self) -> None:
        """The run's output messages in full, then the summary, below the last frame."""
        self.console.print()
        for line in report_lines(self.state):
            self.console.print(
                Text(line.text, style=REPORT_STYLE[line.style]), soft_wrap=True, highlight=False
            )

    # -- rendering ---------------------------------------------------------------------------
    def render(self) -> RenderableType:
        """The whole picture for the current state (called by Live's timer thread)."""
        with self._lock:
            state = self.state
            if state.started is None:
                return Text("starting…", style="dim")
            height = self.console.size.height
            plan, plan_lines = self._plan(state)
            wanted = max(1, len(state.feed) + len(state.streams))
            feed_lines = max(1, min(self.feed_lines, (height - plan_lines) // 4, wanted))
            # Header, blank line, table head (2 lines), feed title, totals (2 lines), and a spare
            # line so a full frame never scrolls the terminal: 8 lines.
            region_rows = max(3, height - plan_lines - feed_lines - 8)
            return Group(
                self._header(state),
                plan,
                Text(""),
                self._regions(state, region_rows),
                self._feed(state, feed_lines),
                self._totals(state),
            )

    def _header(self, state: RunState) -> Text:
        assert state.started is not None
        text = Text()
        text.append("regions run ", style="bold")
        text.append(state.started.workflow, style="bold cyan")
        if state.finished is not None:
            style = "green" if state.finished.status == "ok" else "red"
            text.append(f"  {state.finished.status}", style=style)
        elif state.current_layer is not None:
            layer = state.current_layer
            text.append(f"  layer {layer + 1}/{len(state.layers)} {state.layer_label(layer)}")
        text.append(f"  {seconds(state.elapsed(self.clock()))}", style="dim")
        return text

    def _plan(self, state: RunState) -> tuple[Table, int]:
        """The plan as progress bars, and how many lines it takes."""
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True, max_width=24)
        grid.add_column(width=30)
        grid.add_column(no_wrap=True, justify="right")
        grid.add_column(no_wrap=True, overflow="ellipsis")
        total = len(state.layers)
        done = state.layers_done
        grid.add_row(
            Text("layers", style="bold"),
            _bar(done, total, failed=any(la.state == "failed" for la in state.layers)),
            f"{done}/{total}",
            Text(_layer_note(state), style="dim"),
        )
        rows = 1
        layer = _shown_layer(state)
        if layer is not None:
            chains = list(layer.chains.values())
            for chain in chains[:MAX_CHAINS]:
                grid.add_row(
                    Text(f"  {chain.name}", overflow="ellipsis"),
                    _bar(len(chain.done), len(chain.steps), failed=chain.failed),
                    f"{len(chain.done)}/{len(chain.steps)}",
                    _chain_note(chain),
                )
                rows += 1
            if len(chains) > MAX_CHAINS:
                rest = chains[MAX_CHAINS:]
                finished = sum(1 for c in rest if len(c.done) == len(c.steps))
                grid.add_row(
                    Text(f"  … {len(rest)} more chains", style="dim"),
                    "",
                    "",
                    Text(f"{finished} finished", style="dim"),
                )
                rows += 1
        return grid, rows

    def _regions(self, state: RunState, limit: int) -> Table:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=False, show_edge=False)
        table.add_column("region", no_wrap=True, max_width=28, overflow="ellipsis")
        table.add_column("type", no_wrap=True, style="dim")
        table.add_column("state", no_wrap=True)
        table.add_column("step", no_wrap=True, max_width=22, overflow="ellipsis", style="dim")
        table.add_column("sent", justify="right")
        table.add_column("recv", justify="right")
        table.add_column("calls", justify="right")
        table.add_column("tokens", justify="right")
        rows, hidden = _pick_regions(list(state.regions.values()), limit)
        for row in rows:
            table.add_row(
                row.name,
                row.type,
                Text(
                    STATUS_TEXT.get(row.status, row.status), style=STATUS_STYLE.get(row.status, "")
                ),
                row.step or "",
                str(row.sent),
                str(row.received),
                str(row.calls),
                f"{row.tokens:,}",
            )
        if hidden:
            counts: dict[str, int] = {}
            for row in hidden:
                counts[row.status] = counts.get(row.status, 0) + 1
            summary = ", ".join(f"{n} {STATUS_TEXT.get(s, s)}" for s, n in sorted(counts.items()))
            table.add_row(
                Text(f"… {len(hidden)} more", style="dim"), "", Text(summary, style="dim")
            )
        return table

    def _feed(self, state: RunState, lines: int) -> Group:
        grid = Table.grid(padding=(0, 1), expand=True)
        grid.add_column(no_wrap=True, justify="right", style="dim", min_width=7)
        grid.add_column(no_wrap=True, max_width=40, overflow="ellipsis")
        grid.add_column(no_wrap=True, min_width=8, max_width=20, overflow="ellipsis")
        grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
        t0 = state.started.t if state.started else 0.0
        streams = list(state.streams.items())[-lines:]
        entries = list(state.feed)[-(lines - len(streams)) :] if lines > len(streams) else []
        for entry in entries:
            grid.add_row(seconds(max(0.0, entry.t - t0)), *_feed_cells(entry))
        for region, text in streams:
            tail = clean(text).replace("\n", " ").strip()[-200:]
            grid.add_row(
                "",
                Text(f"{region} ▸", style="cyan"),
                Text("streaming", style="dim"),
                Text(tail, style="italic"),
            )
        if not entries and not streams:
            grid.add_row("", Text("no messages yet", style="dim"), "", "")
        return Group(Text("messages", style="bold"), grid)

    def _totals(self, state: RunState) -> Text:
        text = Text(style="dim")
        text.append(f"steps {state.steps_ok} ok, ")
        text.append(f"{state.steps_failed} failed", style="red" if state.steps_failed else "")
        text.append(f" · {state.messages:,} messages")
        if state.rejected:
            text.append(f" ({state.rejected} rejected)", style="red")
        text.append(f" · {state.tokens:,} tokens")
        run_file = state.started.run_file if state.started else None
        text.append(f"\nrun file {run_file or '(none)'}")
        return text


def _bar(completed: int, total: int, *, failed: bool = False) -> ProgressBar:
    return ProgressBar(
        total=max(total, 1),
        completed=completed if total else 1,
        width=30,
        complete_style="red" if failed else "bar.complete",
        finished_style="red" if failed else "bar.finished",
    )


def _shown_layer(state: RunState) -> LayerProgress | None:
    """The running layer; after the run, the last one that ran (to show where it stopped)."""
    if state.current_layer is not None and 0 <= state.current_layer < len(state.layers):
        return state.layers[state.current_layer]
    ran = [layer for layer in state.layers if layer.state in ("ok", "failed")]
    return ran[-1] if ran else None


def _layer_note(state: RunState) -> str:
    layer = _shown_layer(state)
    if layer is None:
        return ""
    return f"{layer.label}: {layer.steps_done}/{layer.steps_total} steps"


def _chain_note(chain: ChainProgress) -> Text:
    if chain.current:
        return Text(chain.current, style="cyan")
    if chain.failed:
        return Text("failed", style="red")
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
