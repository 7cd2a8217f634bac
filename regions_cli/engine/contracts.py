"""Typed messages: a region's ``output_schema`` and ``input_schema``, JSON Schemas (Draft
2020-12) that the engine compiles once, when it builds the region, into a `Contract`.

A `Contract` says what is wrong with a text that should be a JSON document valid against its
schema: ``not JSON: ...`` or ``at PATH: ...``, PATH dotted as in a ``field:`` condition
(``verdict``, ``scores.0``; ``(root)`` for the document itself). The LLM regions use it on
their answers (`regions_cli.engine.regions.llm`), the postmaster on the requests it delivers
(rule ``invalid-input``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from regions_cli.llm.base import json_ready

#: The longest validation message a reason quotes (a message repeats the offending value).
MAX_MESSAGE_CHARS = 200

#: Appended to the prompt of a region with an ``output_schema``: the model sees the schema
#: (a backend that enforces it with a grammar or structured output only bounds the tokens).
SCHEMA_NOTE = "\n\nAnswer with a JSON document only (no prose), valid against this JSON Schema:\n"

#: The prompt of the one repair attempt: the original prompt, the bad answer, what is wrong.
REPAIR_NOTE = (
    "\n\nYour previous answer was:\n{answer}\n\n"
    "It is not valid: {problem}. Answer again with the corrected JSON document only."
)


class Contract:
    """One compiled JSON Schema. `where` (``regions.R.output_schema``) locates it in errors.

    Raises `ValueError` naming `where` when the schema itself is not a valid JSON Schema.
    """

    def __init__(self, schema: Mapping[str, Any], where: str) -> None:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        self.schema: dict[str, Any] = json_ready(schema)
        self.where = where
        try:
            Draft202012Validator.check_schema(self.schema)
        except SchemaError as exc:
            raise ValueError(f"{where}: not a valid JSON Schema: {_short(exc.message)}") from None
        self._validator = Draft202012Validator(self.schema)
        self.text = json.dumps(self.schema, ensure_ascii=False)  # for prompts

    def problem(self, text: str) -> str | None:
        """What makes `text` not a valid document (None if it is one)."""
        from jsonschema.exceptions import best_match

        try:
            value = json.loads(text)
        except ValueError as exc:
            return f"not JSON: {exc}"
        error = best_match(self._validator.iter_errors(value))
        if error is None:
            return None
        return f"at {dotted(error.absolute_path)}: {_short(error.message)}"

    def read(self, answer: str | None) -> tuple[str, str | None]:
        """The document in a model's `answer` (a code fence around it dropped) and its
        `problem` (None: valid)."""
        document = unfenced(answer or "")
        return document, self.problem(document) if document else "empty answer"


def contract_for(schema: Mapping[str, Any] | None, where: str) -> Contract | None:
    """The `Contract` of `schema`, or None when there is no schema."""
    return None if schema is None else Contract(schema, where)


def dotted(path: Iterable[Any]) -> str:
    """A JSON path as a dotted string (``scores.0``); ``(root)`` for the empty path."""
    return ".".join(str(part) for part in path) or "(root)"


def unfenced(text: str) -> str:
    """`text` without a Markdown code fence around it (```` ```json ... ``` ````): models that
    are not held to the schema like to wrap JSON in one."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```") and "\n" in stripped:
        return stripped[stripped.index("\n") + 1 : -3].strip()
    return stripped


def _short(message: str) -> str:
    """One line, at most `MAX_MESSAGE_CHARS` long."""
    line = " ".join(message.split())
    return line if len(line) <= MAX_MESSAGE_CHARS else line[: MAX_MESSAGE_CHARS - 3] + "..."
