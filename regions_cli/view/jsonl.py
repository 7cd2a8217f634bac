"""``--json``: one JSON object per event, one per line, for other tools.

Each line is exactly `Event.to_json()` (``{"kind": ..., "t": ..., ...fields}``), serialised
compactly with UTF-8 kept as is; the schema of every kind is documented in docs/running.md
(``--json``: the event stream). Nothing else is written to stdout in this mode: the run's output is
in the ``message`` events with ``"delivery": "output"`` and its summary in ``run_finished``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from regions_cli.engine.events import Event
from regions_cli.view.lines import LineWriter, is_utf


def event_line(event: Event, *, ascii_only: bool = False) -> str:
    """The JSON text of `event` (no newline): the same JSON as ``event.to_json()``."""
    return encode(event.to_json(), ascii_only=ascii_only)


def _fallback(value: object) -> object:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return repr(value)


# One encoder per flavour for every line: `json.dumps` with options builds one per call.
_ENCODERS = {
    ascii_only: json.JSONEncoder(ensure_ascii=ascii_only, separators=(",", ":"), default=_fallback)
    for ascii_only in (False, True)
}


def encode(data: dict[str, Any], *, ascii_only: bool = False) -> str:
    """Compact JSON of `data`; paths and other odd values become strings, never an error.
    With `ascii_only`, other characters are written as ``\\u`` escapes (still lossless)."""
    return _ENCODERS[ascii_only].encode(data)


class JsonlView:
    """Writes `event_line` of every event to `stream`, flushed per line."""

    def __init__(self, stream: TextIO, on_closed: Callable[[], None] | None = None) -> None:
        self.out = LineWriter(stream, on_closed)  # on_closed: the reader of stdout has gone
        self.ascii_only = not is_utf(stream)  # \u escapes rather than "?" on a narrow stdout

    def __enter__(self) -> JsonlView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.out.flush()

    def __call__(self, event: Event) -> None:
        self.out.write(event_line(event, ascii_only=self.ascii_only) + "\n")

    def write(self, data: dict[str, Any]) -> None:
        """A line that is not an engine event (e.g. ``findings`` before the run)."""
        self.out.write(encode(data, ascii_only=self.ascii_only) + "\n")

    def report(self, summary: object = None, next_commands: Sequence[str] = ()) -> None:
        """Nothing: ``run_finished`` already carried the summary."""
