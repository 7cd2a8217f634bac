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
        self._templates: dict[str, string.Template] = {}
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
            self._templates[name] = template

    def render(self, name: str, /, **fields: Any) -> str:
        """Fill template `name`; fields it does not use are ignored, missing ones are empty."""
        template = self._templates[name]
        values = {key: "" for key in FIELDS[name]}
        values.update({k: str(v) for k, v in fields.items() if k in values})
        return template.substitute(values)
