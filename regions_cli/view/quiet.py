"""``--quiet``: only the run's output, the text of each message that leaves the workflow, as
it is delivered; nothing else on stdout. A step that fails and a run that does not end well
are one line each on stderr; a run that waits for a person says for what, and how to go on,
on stderr (not an error)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TextIO

from regions_cli.engine.events import (
    FAILED_OUTCOMES,
    Event,
    MessageDelivered,
    RunFinished,
    StepFinished,
    WaitStarted,
)
from regions_cli.view.lines import LineWriter
from regions_cli.view.report import waiting_text
from regions_cli.view.state import clean, first_line


class QuietView:
    """Writes the content of every output message to `stream`, one after another."""

    def __init__(
        self, stream: TextIO, err: TextIO, on_closed: Callable[[], None] | None = None
    ) -> None:
        self.out = LineWriter(stream, on_closed)
        self.err = err
        self.waiting: WaitStarted | None = None

    def __enter__(self) -> QuietView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.out.flush()

    def __call__(self, event: Event) -> None:
        if isinstance(event, MessageDelivered) and event.delivery == "output":
            text = clean(event.message.content)  # no terminal escapes from a model
            self.out.write(text if text.endswith("\n") else text + "\n")
        elif isinstance(event, StepFinished) and event.outcome in FAILED_OUTCOMES:
            self._error(f"{event.region}.{event.method} {event.outcome}: {event.error or ''}")
        elif isinstance(event, WaitStarted):
            self.waiting = event
        elif isinstance(event, RunFinished) and event.status not in ("ok", "waiting"):
            self._error(f"the run ended {event.status} (see: regions show {event.run_file})")

    def _error(self, text: str) -> None:
        self.err.write(f"error: {first_line(clean(text), 300)}\n")
        self.err.flush()

    def report(self, summary: RunFinished | None = None, next_commands: Sequence[str] = ()) -> None:
        """Nothing for a run that ended (the output was the report); for one that waits, what
        it waits for and the commands that go on with it, on stderr."""
        if self.waiting is None:
            return
        lines = [f"waiting {waiting_text(self.waiting.region, self.waiting.prompt)}"]
        lines += [f"  {command}" for command in next_commands]
        self.err.write(clean("\n".join(lines)) + "\n")
        self.err.flush()
