"""A deterministic model for tests, CI and demos: ``backend: scripted``.

It answers from ``rules`` (the first rule whose regex matches the flattened prompt, system
turn included, wins). When no rule matches and the request asks for JSON
(`CompletionRequest.json_schema`), it answers with a document that fits the schema: for the
question list of ``make_questions`` one question to every name the schema allows (the names are
in the schema's ``enum``), so ``{backend: scripted}`` alone runs any plan; a rule's reply is
returned as it is, schema or not (to script an invalid answer). Otherwise it answers
``fallback``, or a deterministic echo of the request.
``latency`` makes every call take that many seconds (it simulates a slow model), ``stream: true``
passes the answer to ``on_token`` word by word. Usage is estimated by whitespace split.

A rule may say ``error: text`` instead of ``reply:`` to simulate a failing model call.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from regions_cli.llm.base import (
    ChatMessage,
    Completion,
    CompletionRequest,
    LLMError,
    TokenCallback,
    Usage,
    prompt_text,
)
from regions_cli.model import LLMConfig


@dataclass(frozen=True)
class Rule:
    """``match`` (a regex searched in the flattened prompt) -> ``reply`` text, or an ``error``."""

    pattern: re.Pattern[str]
    reply: str | None = None
    error: str | None = None


class ScriptedModel:
    """A `CompletionModel` that answers from rules, with no model at all."""

    def __init__(
        self,
        name: str = "scripted",
        rules: Sequence[Rule] = (),
        fallback: str | None = None,
        latency: float = 0.0,
        stream: bool = False,
    ) -> None:
        self.name = name
        self.rules = tuple(rules)
        self.fallback = fallback
        self.latency = float(latency)
        self.stream = stream
        self.calls = 0

    @classmethod
    def from_config(cls, config: LLMConfig) -> ScriptedModel:
        """Build from an ``llms:`` entry; a bad rule raises ValueError naming where it is."""
        options: Mapping[str, Any] = config.options
        rules: list[Rule] = []
        for i, raw in enumerate(options.get("rules") or ()):
            where = f"llms.{config.name}.rules[{i}]"
            if not isinstance(raw, Mapping) or "match" not in raw:
                raise ValueError(f"{where}: a rule needs `match` and `reply` (or `error`)")
            try:
                pattern = re.compile(str(raw["match"]))
            except re.error as exc:
                raise ValueError(f"{where}.match: invalid regular expression: {exc}") from None
            if raw.get("error") is not None:
                rules.append(Rule(pattern, error=str(raw["error"])))
            elif raw.get("reply") is not None:
                rules.append(Rule(pattern, reply=str(raw["reply"])))
            else:
                raise ValueError(f"{where}: a rule needs `reply` (or `error`)")
        latency = options.get("latency") or 0.0
        if not isinstance(latency, int | float) or latency < 0:
            raise ValueError(f"llms.{config.name}.latency: must be a number >= 0")
        fallback = options.get("fallback")
        return cls(
            name=config.name,
            rules=rules,
            fallback=None if fallback is None else str(fallback),
            latency=float(latency),
            stream=bool(options.get("stream", False)),
        )

    async def complete(
        self, request: CompletionRequest, on_token: TokenCallback | None = None
    ) -> Completion:
        self.calls += 1
        if self.latency:
            await asyncio.sleep(self.latency)
        prompt = prompt_text(request.messages)
        text = self._answer(request, prompt)
        if on_token is not None and self.stream:
            for piece in re.findall(r"\S+\s*", text):
                on_token(piece)
        usage = Usage(prompt_tokens=len(prompt.split()), completion_tokens=len(text.split()))
        return Completion(text=text, usage=usage, model=f"scripted:{self.name}")

    async def aclose(self) -> None:
        return None

    def _answer(self, request: CompletionRequest, prompt: str) -> str:
        for rule in self.rules:
            if rule.pattern.search(prompt):
                if rule.error is not None:
                    raise LLMError(f"scripted model {self.name!r}: {rule.error}")
                assert rule.reply is not None
                return rule.reply
        if request.json_schema is not None:  # structured output: a fitting document
            focus = _first_line(_text_of(request.messages, "system"))
            return json.dumps(_document_for(request.json_schema, focus))
        if self.fallback is not None:
            return self.fallback
        return f"Echo: {_last_user(request.messages)}"


def _last_user(messages: Sequence[ChatMessage]) -> str:
    return _text_of(messages, "user")


def _text_of(messages: Sequence[ChatMessage], role: str) -> str:
    """The content of the last message with `role` ("" if none)."""
    for message in reversed(messages):
        if message.role == role:
            return message.content.strip()
    return ""


def _document_for(schema: Mapping[str, Any], prompt: str) -> Any:
    """A small deterministic JSON value that fits `schema` (the subset regions use)."""
    kind = schema.get("type")
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        values = list(schema["enum"])
        return values[0] if values else None
    if kind == "array":
        items: Mapping[str, Any] = schema.get("items") or {}
        props: Mapping[str, Any] = items.get("properties") or {}
        # One item per allowed value of the first enumerated property: a question to every
        # connection named in the schema.
        for key, prop in props.items():
            if isinstance(prop, Mapping) and "enum" in prop:
                return [
                    {
                        k: (value if k == key else _fit(_question(value, prompt), props[k]))
                        for k in props
                    }
                    for value in prop["enum"]
                ][: schema.get("maxItems")]
        return []
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: _document_for(v, prompt) for k, v in props.items()}
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return _fit(prompt, schema)


def _fit(text: str, schema: Any) -> str:
    """`text` cut to the schema's ``maxLength``, if it has one."""
    limit = schema.get("maxLength") if isinstance(schema, Mapping) else None
    return text[:limit].rstrip() if isinstance(limit, int) else text


def _question(addressee: str, focus: str) -> str:
    return f"{addressee}, what do you know that helps with this? {focus}".strip()


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:200]
    return ""
