"""`ListenerRegion`: a passive tap that writes the traffic it is copied on to a JSONL sink.

The postmaster sends it a carbon copy of every delivered message (or only of the regions in
``taps:``). Between `start` and `stop` each copy is appended to the ``sink:`` file as one JSON
line; before `start` (or after `stop`) copies wait in its inbox, so none is lost. Unlike the
original there is no constraint on the layers that call start and stop.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any, ClassVar

from regions_cli.engine.message import Message
from regions_cli.engine.regions.base import BaseRegion, Outcome
from regions_cli.private_files import open_private
from regions_cli.text import plural


class ListenerRegion(BaseRegion):
    type_name: ClassVar[str] = "ListenerRegion"
    default_task: ClassVar[str] = "Receive and record all traffic."

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = False
        self.written = 0
        self._sink: IO[str] | None = None

    def taps(self, message: Message) -> bool:
        """Whether this listener copies `message` (``taps:`` empty means all traffic)."""
        taps = self.config.taps
        return not taps or message.source in taps or message.destination in taps

    def accept(self, message: Message) -> None:
        if self.started:
            self._write(message)
        else:
            self.inbox.append(message)

    def _write(self, message: Message) -> None:
        self.written += 1
        if self._sink is not None:
            self._sink.write(json.dumps(message.to_dict(), ensure_ascii=False) + "\n")

    async def start(self) -> Outcome:
        """Open the sink (append) and write the copies held so far."""
        if self.started:
            return Outcome.nothing("already started")
        self._open()
        held, self.inbox = self.inbox, []
        for message in held:
            self._write(message)
        where = str(self.config.sink) if self.config.sink else "events only"
        return Outcome.ok(f"listening ({where}); wrote {plural(len(held), 'held message')}")

    async def stop(self) -> Outcome:
        """Close the sink; later copies wait in the inbox until the next start."""
        if not self.started:
            return Outcome.nothing("not started")
        self._close()
        return Outcome.ok(f"stopped after {plural(self.written, 'message')}")

    def _open(self) -> None:
        if self.config.sink is not None and self._sink is None:
            self._check_sink(self.config.sink)
            self._sink = open_private(self.config.sink, "a", buffering=1)
        self.started = True

    def _check_sink(self, sink: Path) -> None:
        """Append only to a sink regions wrote: an empty file, or JSON lines of messages (a
        `sink:` pointing at someone's file must not add lines to it)."""
        if not sink.is_file() or sink.is_symlink() or sink.stat().st_size == 0:
            return
        with sink.open("rb") as handle:
            first = handle.readline(1 << 20)
        try:
            message = json.loads(first)
        except (ValueError, UnicodeDecodeError):
            message = None
        if not (isinstance(message, dict) and {"source", "destination", "role"} <= set(message)):
            raise ValueError(
                f"the sink {sink} exists and was not written by a listener (its first line is "
                "not a message); choose another sink path, or remove the file"
            )

    def _close(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None
        self.started = False

    def close(self) -> None:
        """Release the sink file (the engine calls this when it closes)."""
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def _extra_state(self) -> dict[str, Any]:
        return {"started": self.started, "written": self.written}

    def _restore_extra(self, extra: dict[str, Any]) -> None:
        self.written = int(extra.get("written", self.written))
        if extra.get("started", False) and not self.started:
            self._open()
        elif not extra.get("started", False) and self.started:
            self._close()
