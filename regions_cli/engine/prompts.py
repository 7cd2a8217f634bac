"""Prompt templates: package data under ``regions_cli/llm/prompts/``, overridable per region.

Templates use `string.Template` syntax (``$task``, ``${question}``), so JSON braces in a
template need no escaping. Each template may use only the fields listed in
`regions_cli.model.templates.FIELDS`; ``regions verify`` reports a bad override at its line,
and the engine refuses one (naming the region and the field) when it is built.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

from regions_cli.model.templates import FIELDS, template_problems


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
        for name in FIELDS:
            text = overrides.get(name, default_template(name))
            problems = template_problems(name, text)
            if problems:
                raise TemplateError(f"{where}prompts.{name}: {problems[0][1]}")
            self._templates[name] = _format_string(string.Template(text))

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
