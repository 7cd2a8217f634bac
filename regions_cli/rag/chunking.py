"""Split text into overlapping character windows that end at natural boundaries.

A window holds at most `chunk_size` characters. When the text goes on past a window, the window
is cut at the last paragraph break inside its second half, else the last sentence end, else the
last whitespace, else exactly at `chunk_size` (one long word). The next window starts `overlap`
characters before that cut, moved forward to the start of a word when one lies inside the
overlap, so no chunk begins mid-word where it can be helped. Every character of the text lies in
at least one window: nothing is dropped.
"""

from __future__ import annotations

import re

from regions_cli.rag.base import RagError

# Cut preferences, best first. Each pattern matches the separator *after* which a cut may go.
_BOUNDARIES = (
    re.compile(r"\n[ \t]*\n\s*"),  # paragraph break
    re.compile("(?<=[.!?\u3002\uff01\uff1f])[\"')\\]]*\\s+"),  # sentence end (CJK too)
    re.compile(r"\n"),  # line break
    re.compile(r"\s+"),  # any whitespace
)
_WORD_START = re.compile(r"(?<=\s)\S")


def validate_chunking(chunk_size: int, overlap: int) -> None:
    """Raise `RagError` unless ``0 <= overlap < chunk_size`` (the original looped forever)."""
    if chunk_size < 1:
        raise RagError(f"chunk_size must be at least 1 (got {chunk_size})")
    if not 0 <= overlap < chunk_size:
        raise RagError(f"overlap must be >= 0 and < chunk_size {chunk_size} (got {overlap})")


def _cut(text: str, start: int, end: int, earliest: int) -> int:
    """The best cut in ``text[earliest:end]``: just after a boundary, or `end` if none."""
    for pattern in _BOUNDARIES:
        last = None
        for match in pattern.finditer(text, earliest, end):
            last = match
        if last is not None and last.end() > start:
            return last.end()
    return end


def chunk_spans(text: str, chunk_size: int, overlap: int) -> list[tuple[int, int]]:
    """The ``(start, end)`` windows of `text`; see the module docstring for the rules."""
    validate_chunking(chunk_size, overlap)
    length = len(text)
    if not text.strip():
        return []
    if length <= chunk_size:
        return [(0, length)]
    spans: list[tuple[int, int]] = []
    start = 0
    while True:
        end = start + chunk_size
        if end >= length:
            spans.append((start, length))
            return spans
        # Cut no earlier than half a window in (and past the overlap), so chunks stay large and
        # the next window always starts after this one did.
        earliest = start + max(chunk_size // 2, overlap + 1)
        end = _cut(text, start, end, earliest)
        spans.append((start, end))
        next_start = end - overlap
        if overlap:
            word = _WORD_START.search(text, next_start, end)
            if word is not None:
                next_start = word.start()
        start = next_start


def chunk_text(text: str, chunk_size: int, overlap: int) -> list[str]:
    """The chunks of `text` (surrounding whitespace trimmed, blank chunks dropped)."""
    chunks = (text[a:b].strip() for a, b in chunk_spans(text, chunk_size, overlap))
    return [chunk for chunk in chunks if chunk]
