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

A rule may answer with a tool call: ``{match: REGEX, tool_call: {name: add, arguments: {a: 2,
b: 3}}}``, or several: ``tool_calls: [{name: ..., arguments: ...}, ...]`` (``arguments`` as a
mapping, or as JSON text kept as written, to script malformed arguments; a ``reply`` beside
them is the text that goes with the calls). Call ids are ``call_N``, numbered on from the calls
already in the conversation. The prompt a rule matches holds the conversation's tool turns
(`regions_cli.llm.base.prompt_text`): a call as a line ``[tool call NAME] ARGUMENTS`` under its
assistant turn, a result as a turn ``[tool result NAME]`` followed by its text. So a rule like
``{match: "tool result", reply: "The sum is 5."}``, placed before the rule that calls (the
first match wins, and the question is still in the prompt), ends a scripted tool loop.
When no rule matches a request with ``tool_choice: required``, the first tool is called with
arguments that fit its schema.
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
    ToolCall,
    Usage,
    prompt_text,
)
from regions_cli.llm.tool_protocol import make_calls
from regions_cli.model import LLMConfig


@dataclass(frozen=True)
class Rule:
    """``match`` (a regex searched in the flattened prompt) -> ``reply`` text and/or
    `tool_calls` (name, arguments: a mapping or JSON text), or an ``error``."""

    pattern: re.Pattern[str]
    reply: str | None = None
    error: str | None = None
    tool_calls: tuple[tuple[str, Any], ...] = ()


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
            calls = _rule_calls(raw, where)
            if raw.get("error") is not None:
                if calls or raw.get("reply") is not None:
                    raise ValueError(f"{where}: a rule with `error` has no `reply` or tool call")
                rules.append(Rule(pattern, error=str(raw["error"])))
            elif raw.get("reply") is not None or calls:
                reply = raw.get("reply")
                rules.append(Rule(pattern, None if reply is None else str(reply), None, calls))
            else:
                raise ValueError(f"{where}: a rule needs `reply`, `tool_call` (or `error`)")
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
        text, calls = self._answer(request, prompt)
        if on_token is not None and self.stream:
            for piece in re.findall(r"\S+\s*", text):
                on_token(piece)
        written = text + "".join(call.arguments for call in calls)
        usage = Usage(prompt_tokens=len(prompt.split()), completion_tokens=len(written.split()))
        return Completion(text=text, usage=usage, model=f"scripted:{self.name}", tool_calls=calls)

    async def aclose(self) -> None:
        return None

    def _answer(self, request: CompletionRequest, prompt: str) -> tuple[str, tuple[ToolCall, ...]]:
        for rule in self.rules:
            if rule.pattern.search(prompt):
                if rule.error is not None:
                    raise LLMError(f"scripted model {self.name!r}: {rule.error}")
                return rule.reply or "", make_calls(request.messages, rule.tool_calls)
        focus = _first_line(_text_of(request.messages, "system"))
        if request.tools and request.tool_choice == "required":  # a call that fits
            tool = request.tools[0]
            arguments = _document_for(tool.parameters, focus)
            return "", make_calls(request.messages, [(tool.name, arguments)])
        if request.json_schema is not None:  # structured output: a fitting document
            return json.dumps(_document_for(request.json_schema, focus)), ()
        if self.fallback is not None:
            return self.fallback, ()
        return f"Echo: {_last_user(request.messages)}", ()


def _rule_calls(raw: Mapping[str, Any], where: str) -> tuple[tuple[str, Any], ...]:
    """A rule's ``tool_call`` or ``tool_calls`` as (name, arguments) pairs; ValueError naming
    the bad key."""
    if "tool_call" in raw and "tool_calls" in raw:
        raise ValueError(f"{where}: a rule has `tool_call` or `tool_calls`, not both")
    if "tool_call" in raw:
        items, key = [raw["tool_call"]], "tool_call"
    elif "tool_calls" in raw:
        items, key = raw["tool_calls"], "tool_calls"
        if not isinstance(items, list) or not items:
            raise ValueError(f"{where}.tool_calls: must be a non-empty list of calls")
    else:
        return ()
    calls = []
    for i, item in enumerate(items):
        at = f"{where}.{key}" + (f"[{i}]" if key == "tool_calls" else "")
        if not isinstance(item, Mapping) or set(item) - {"name", "arguments"}:
            raise ValueError(f"{at}: a call is {{name: TOOL, arguments: {{...}}}}")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{at}.name: must be the tool's name")
        arguments = item.get("arguments", {})
        if not isinstance(arguments, Mapping | str):
            raise ValueError(f"{at}.arguments: must be a mapping (or JSON text)")
        calls.append((name, arguments))
    return tuple(calls)


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
