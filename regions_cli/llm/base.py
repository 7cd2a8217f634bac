"""The one small protocol every LLM backend implements, and the types it speaks.

Regions hold "something that completes a prompt" (`CompletionModel`), never an HTTP client or
a llama.cpp handle. Backends live beside this module: ``openai.py``, ``local.py``,
``scripted.py``, ``replay.py``; `regions_cli.build` picks one per ``llms:`` entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

ChatRole = Literal["system", "user", "assistant", "tool"]

#: Called with each piece of text as a streaming backend receives it.
TokenCallback = Callable[[str], None]


@dataclass(frozen=True)
class ToolCall:
    """A call the model asks for. `arguments` is the model's JSON text as it came: it may be
    malformed (the tool loop hands the error back to the model)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolDefinition:
    """A tool offered to the model: its name, what it does, and its arguments' JSON Schema."""

    name: str
    description: str
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class ChatMessage:
    """One turn. An ``assistant`` turn may carry the `tool_calls` it asked for; a ``tool``
    turn is the result of the call `tool_call_id` (its `content` is the result text)."""

    role: ChatRole
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True)
class CompletionRequest:
    """What a region asks of a model.

    `json_schema`, when set, asks for output matching that JSON Schema (structured output);
    backends that cannot enforce it still return text, which the caller parses leniently.
    `purpose` names the region method asking (``make_replies``...), for logs and cassettes.
    `tools` are offered to the model (`tool_choice`: ``auto`` lets it answer or call,
    ``required`` makes it call one, ``none`` forbids calls); its calls come back in
    `Completion.tool_calls`.
    """

    messages: tuple[ChatMessage, ...]
    json_schema: Mapping[str, Any] | None = None
    max_tokens: int | None = None
    purpose: str = ""
    tools: tuple[ToolDefinition, ...] = ()
    tool_choice: Literal["auto", "required", "none"] = "auto"


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


@dataclass(frozen=True)
class Completion:
    """A model's answer, with reasoning already stripped (`strip_thinking`)."""

    text: str
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    cached: bool = False  # answered from the response cache (`llm/cache.py`), not the model
    tool_calls: tuple[ToolCall, ...] = ()  # the calls the model asked for (then `text` may be "")


class LLMError(Exception):
    """A model call failed for good (after the backend's own retries). The message says why."""


class LLMConfigError(LLMError, ValueError):
    """An ``llms:`` entry cannot be built (bad option, missing file or package).

    Raised when the backend is built, before the run starts; a `ValueError` too, so builders
    that report bad configuration as ValueError catch it. The message starts ``llms.NAME: ``.
    """


@runtime_checkable
class CompletionModel(Protocol):
    """Anything that completes a chat prompt. All backends implement this."""

    name: str

    async def complete(
        self, request: CompletionRequest, on_token: TokenCallback | None = None
    ) -> Completion:
        """Answer `request`; call `on_token` with text pieces as they arrive (if streaming)."""
        ...

    async def aclose(self) -> None:
        """Release connections, threads or model memory. Safe to call twice."""
        ...


@runtime_checkable
class Preloadable(Protocol):
    """A model that takes a while to load (the embedded one) and can start loading before its
    first call, so loading overlaps the rest of a run's start-up."""

    async def preload(self) -> None:
        """Start loading in the background; the first call waits for it to finish."""
        ...


class ModelWrapper:
    """Base of a `CompletionModel` that wraps another (`inner`): the probes it does not define
    itself (``health``, ``list_models``, ``count_tokens``) go to the wrapped backend."""

    inner: CompletionModel

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet: no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)


_THINK = re.compile(r"<think>.*?</think>\n?", re.DOTALL)


def strip_thinking(text: str) -> str:
    """Remove ``<think>...</think>`` blocks (with or without a trailing newline) and trim.

    Unlike the original (which needed a newline after ``</think>``), any closed block goes;
    an unclosed ``<think>`` is left as is, since we cannot tell where it would end.
    """
    return _THINK.sub("", text).strip()


def json_ready(value: Any) -> Any:
    """Mappings and sequences as plain dicts and lists, ready for ``json.dumps`` (a request's
    schema may arrive as a read-only MappingProxy)."""
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    return value


def prompt_text(messages: Sequence[ChatMessage]) -> str:
    """A canonical flat rendering of a chat, for rule matching and display."""
    return "\n\n".join(f"[{m.role}]\n{m.content}" for m in messages)
