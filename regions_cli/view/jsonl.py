"""``--json``: one JSON object per event, one per line, for other tools.

Each line is exactly `Event.to_json()` (``{"kind": ..., "t": ..., ...fields}``), serialised
compactly with UTF-8 kept as is; the schema of every kind is documented in
``docs/readme/21-run.md``. Nothing else is written to stdout in this mode: the run's output is
in the ``message`` events with ``"delivery": "output"`` and its summary in ``run_finished``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from regions_cli.engine.events import Event


def event_line(event: Event) -> str:
    """The JSON text of `event` (no newline)."""
    return encode(event.to_json())


def encode(data: dict[str, Any]) -> str:
    """Compact JSON of `data`; paths and other odd values become strings, never an error."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_fallback)


def _fallback(value: object) -> object:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return repr(value)


class JsonlView:
    """Writes `event_line` of every event to `stream`, flushed per line."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __enter__(self) -> JsonlView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.flush()

    def __call__(self, event: Event) -> None:
        self.stream.write(event_line(event) + "\n")
        self.stream.flush()

    def write(self, data: dict[str, Any]) -> None:
        """A line that is not an engine event (e.g. ``invalid_workflow`` before any run)."""
        self.stream.write(encode(data) + "\n")
        self.stream.flush()

    def report(self) -> None:
        """Nothing: ``run_finished`` already carried the summary."""
