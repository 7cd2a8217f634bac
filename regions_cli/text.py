"""Words for counts, shared by every layer (the core's messages, the views, the CLI)."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 step``, ``2 steps``, ``1,000 tokens``; `nouns` is an irregular plural
    (``plural(n, "entry", "entries")``)."""
    word = noun if count == 1 else (nouns or noun + "s")
    return f"{count:,} {word}"
