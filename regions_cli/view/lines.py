"""Writing whole lines to stdout when the reader may go away (``regions run ... | head``) or
cannot take every character (a stdout encoded in ASCII)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TextIO


class LineWriter:
    """Writes lines to `stream`, flushed one by one so a pipe sees progress as it happens.

    When the reader has gone (a broken pipe), it stops writing, points the stream's file
    descriptor at ``os.devnull`` (so the interpreter's final flush does not complain either)
    and calls `on_closed` once: the runner then stops the run as it would for Ctrl-C.
    """

    def __init__(self, stream: TextIO, on_closed: Callable[[], None] | None = None) -> None:
        self.stream = stream
        self.on_closed = on_closed
        self.closed = False

    def write(self, text: str) -> None:
        """Write `text` (one or more whole lines, newline included) and flush."""
        if self.closed:
            return
        try:
            try:
                self.stream.write(text)
            except UnicodeEncodeError:  # e.g. PYTHONIOENCODING=ascii: "?" for what cannot be shown
                encoding = getattr(self.stream, "encoding", None) or "ascii"
                self.stream.write(text.encode(encoding, "replace").decode(encoding))
            self.stream.flush()
        except BrokenPipeError:
            self._reader_gone()

    def flush(self) -> None:
        if self.closed:
            return
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._reader_gone()

    def _reader_gone(self) -> None:
        self.closed = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
            os.close(devnull)
        except (OSError, ValueError, AttributeError):  # not a real file (tests): nothing to do
            pass
        if self.on_closed is not None:
            self.on_closed()


def is_utf(stream: TextIO) -> bool:
    """Whether `stream` encodes all of Unicode (UTF-8 and friends); assumed when unknown."""
    encoding = str(getattr(stream, "encoding", None) or "utf-8").lower().replace("_", "-")
    return encoding.startswith("utf")
