"""Prompt templates: package data under ``regions_cli/llm/prompts/``, overridable per region.

Templates use `string.Template` syntax (``$task``, ``${question}``), so JSON braces in a
template need no escaping. Each template may use only the fields listed in `FIELDS`; a region's
``prompts:`` override naming an unknown template or field is rejected when the engine is built,
with a message saying which region and which field.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

#: Template name -> the fields it may use.
FIELDS: Mapping[str, frozenset[str]] = {
    "system": frozenset({"name", "task", "knowledge", "requests", "connections"}),
    "make_replies": frozenset({"name", "task", "question", "source", "connections"}),
    "make_questions": frozenset({"name", "task", "connections"}),
    "summarize_replies": frozenset({"name", "task", "text", "source"}),
    "knowledge": frozenset({"items"}),
    "requests": frozenset({"items"}),
}


class TemplateError(ValueError):
    """A prompt template names an unknown template or field."""


@cache
def default_template(name: str) -> str:
    """The shipped text of template `name` (one trailing newline removed)."""
    text = resources.files("regions_cli.llm").joinpath(f"prompts/{name}.txt").read_text("utf-8")
    return text.removesuffix("\n")


class PromptTemplates:
    """The templates one region renders: the defaults with its ``prompts:`` overrides."""

    def __init__(self, overrides: Mapping[str, str] | None = None, *, where: str = "") -> None:
        self._templates: dict[str, str] = {}
        overrides = overrides or {}
        for name in overrides:
            if name not in FIELDS:
                known = ", ".join(sorted(FIELDS))
                raise TemplateError(f"{where}prompts.{name}: unknown template (known: {known})")
        for name, allowed in FIELDS.items():
            template = string.Template(overrides.get(name, default_template(name)))
            if not template.is_valid():
                raise TemplateError(f"{where}prompts.{name}: invalid placeholder (use $field)")
            unknown = set(template.get_identifiers()) - allowed
            if unknown:
                raise TemplateError(
                    f"{where}prompts.{name}: unknown field ${sorted(unknown)[0]} "
                    f"(allowed: {', '.join(sorted(allowed))})"
                )
            self._templates[name] = _format_string(template)

    def render(self, name: str, /, **fields: Any) -> str:
        """Fill template `name`; fields it does not use are ignored, missing ones are empty."""
        return self._templates[name].format_map(_Fields({k: str(v) for k, v in fields.items()}))


class _Fields(dict[str, str]):
    """Render values; a field the caller did not pass is empty."""

    def __missing__(self, key: str) -> str:
        return ""


def _format_string(template: string.Template) -> str:
    """`template` (already validated) as an equivalent `str.format` string.

    `string.Template.substitute` calls back into Python for every placeholder, which made
    rendering most of the engine's own time in a step: every chain of a layer renders its
    prompts before its request can leave. ``format_map`` does the same substitution in C.
    """
    text = template.template
    parts: list[str] = []
    end = 0
    for match in template.pattern.finditer(text):
        parts.append(text[end : match.start()].replace("{", "{{").replace("}", "}}"))
        field = match.group("named") or match.group("braced")
        parts.append("$" if field is None else "{" + field + "}")  # None: an escaped $$
        end = match.end()
    parts.append(text[end:].replace("{", "{{").replace("}", "}}"))
    return "".join(parts)
