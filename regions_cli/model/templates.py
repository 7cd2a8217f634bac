"""Prompt templates as the workflow file sees them: the fields each template may use, and the
problems of a template's text.

Templates use `string.Template` syntax (``$task``, ``${question}``, ``$$`` for a literal
``$``). `template_problems` is the one check of a template: ``regions verify`` reports its
problems at their line and column, and the engine refuses a template that has any.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

from regions_cli.text import did_you_mean

#: Template name -> the fields it may use.
FIELDS: Mapping[str, frozenset[str]] = {
    "system": frozenset({"name", "task", "knowledge", "requests", "connections"}),
    "make_replies": frozenset({"name", "task", "question", "source", "connections"}),
    "make_questions": frozenset({"name", "task", "connections"}),
    "summarize_replies": frozenset({"name", "task", "text", "source"}),
    "knowledge": frozenset({"items"}),
    "requests": frozenset({"items"}),
}


def template_problems(name: str, text: str) -> list[tuple[int, str]]:
    """Each problem of template `name` written as `text`: (offset in `text`, message).

    A ``$`` that starts no placeholder, and a placeholder the template does not offer, are
    problems; an unknown template `name` is not checked here (the schema knows the names).
    """
    allowed = FIELDS.get(name)
    problems: list[tuple[int, str]] = []
    for match in string.Template.pattern.finditer(text):
        field = match.group("named") or match.group("braced")
        if match.group("invalid") is not None:
            problems.append(
                (match.start(), "'$' starts no placeholder: write $field, or $$ for a literal '$'")
            )
        elif field is not None and allowed is not None and field not in allowed:
            close = did_you_mean(field, allowed)
            guess = f" (did you mean ${close}?)" if close else ""
            problems.append(
                (
                    match.start(),
                    f"unknown placeholder ${field}{guess}; {name} offers "
                    + ", ".join(f"${f}" for f in sorted(allowed)),
                )
            )
    return problems
