"""``--json``: one JSON object per event, one per line, for other tools.

Each line is exactly `Event.to_json()` (``{"kind": ..., "t": ..., ...fields}``), serialised
compactly with UTF-8 kept as is; the schema of every kind is documented in docs/running.md
(``--json``: the event stream). Nothing else is written to stdout in this mode: the run's output is
in the ``message`` events with ``"delivery": "output"`` and its summary in ``run_finished``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, TextIO

from regions_cli.engine.events import Event
from regions_cli.view.lines import LineWriter, is_utf


def event_line(event: Event, *, ascii_only: bool = False) -> str:
    """The JSON text of `event` (no newline): the same JSON as ``event.to_json()``."""
    return encode(event_dict(event), ascii_only=ascii_only)


# Field annotations whose values JSON takes as they are: no conversion needed.
_SCALAR_TYPES = {"str", "int", "float", "bool", "str | None", "int | None", "float | None"}

#: Per dataclass type: (field name, needs conversion) in declaration order.
_LAYOUTS: dict[type, tuple[tuple[str, bool], ...]] = {}


def event_dict(event: Event) -> dict[str, Any]:
    """`event.to_json()`, built without `dataclasses.asdict`'s deep copy (several times faster:
    ``--json`` on a big run is dominated by this). A test checks both give the same JSON."""
    data: dict[str, Any] = {"kind": event.kind}
    data.update(_fields(event))
    return data


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

    def report(self) -> None:
        """Nothing: ``run_finished`` already carried the summary."""
