"""Words for people, shared by every layer (the core's messages, the views, the CLI): counts
in the singular or plural, and the "did you mean" guess for a mistyped name."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest of `choices` to `word`, if any is close enough to be a likely typo."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return matches[0] if matches else None


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 step``, ``2 steps``, ``1,000 tokens``; `nouns` is an irregular plural
    (``plural(n, "entry", "entries")``)."""
    word = noun if count == 1 else (nouns or noun + "s")
    return f"{count:,} {word}"


def unknown(what: str, word: str, choices: Iterable[str], plural_what: str | None = None) -> str:
    """``unknown region 'Facs' (did you mean 'Facts'? regions: Facts, Historian)``."""
    names = sorted(choices)
    guess = did_you_mean(word, names)
    hint = f"did you mean {guess!r}? " if guess else ""
    return (
        f"unknown {what} {word!r} ({hint}{plural_what or what + 's'}: {', '.join(names) or 'none'})"
    )
