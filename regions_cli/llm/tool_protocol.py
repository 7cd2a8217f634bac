"""Tool calls as JSON text, for models without a tools API of their own.

The embedded model (grammar-bounded) and an OpenAI-compatible server that rejects ``tools``
(the fallback of `regions_cli.llm.openai`) speak this protocol instead:

* the tools are described in the system prompt (`tools_prompt`);
* the answer is constrained by a JSON Schema (`tool_call_schema`):
  ``{"tool_calls": [{"name": NAME, "arguments": {...}}, ...]}`` to call, or
  ``{"answer": ...}`` to answer (a string, or the request's own ``json_schema`` document);
* the conversation's tool turns become plain text (`render_tool_turns`): an assistant turn that
  called is the JSON it wrote (``{"tool_calls": [...]}``), so the model sees its own protocol;
  a tool result is a **user** turn ``Result of the tool call NAME (ID):`` followed by the
  result text (chat templates and servers without tools know no ``tool`` role);
* `parse_tool_answer` turns the JSON back into `Completion.tool_calls` or text.

Call ids are ``call_N``, numbered on from the calls already in the conversation
(`next_call_number`): deterministic (cassettes and the cache see the same ids on every run) and
unique within one conversation.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from regions_cli.llm.base import (
    ChatMessage,
    Completion,
    CompletionRequest,
    TokenCallback,
    ToolCall,
    ToolDefinition,
    json_ready,
)


def speaks_tools(request: CompletionRequest) -> bool:
    """Whether `request` involves tools: it offers some, or its conversation holds tool calls
    or results (a last request may offer none, yet show the calls made so far)."""
    return bool(request.tools) or any(m.tool_calls or m.role == "tool" for m in request.messages)


def offers_tools(request: CompletionRequest) -> bool:
    """Whether the model may call: tools are offered and `tool_choice` is not ``none``."""
    return bool(request.tools) and request.tool_choice != "none"


def tool_call_schema(request: CompletionRequest, *, max_calls: int | None = None) -> dict[str, Any]:
    """The JSON Schema of a protocol answer to `request` (which offers tools).

    Each call's ``arguments`` follow its tool's parameters schema: ``anyOf`` one branch per
    tool, keyed by a ``const`` name (llama.cpp's grammar follows it, so even a small model
    writes arguments that validate). `max_calls` bounds the calls of one answer.
    ``tool_choice: required`` leaves out the answer branch.
    """
    call = {
        "anyOf": [
            {
                "type": "object",
                "properties": {
                    "name": {"const": tool.name},
                    "arguments": json_ready(tool.parameters) or {"type": "object"},
                },
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
            for tool in request.tools
        ]
    }
    array: dict[str, Any] = {"type": "array", "minItems": 1, "items": call}
    if max_calls is not None:
        array["maxItems"] = max(1, max_calls)
    calls = {
        "type": "object",
        "properties": {"tool_calls": array},
        "required": ["tool_calls"],
        "additionalProperties": False,
    }
    if request.tool_choice == "required":
        return calls
    answer_schema = (
        json_ready(request.json_schema) if request.json_schema is not None else {"type": "string"}
    )
    answer = {
        "type": "object",
        "properties": {"answer": answer_schema},
        "required": ["answer"],
        "additionalProperties": False,
    }
    return {"anyOf": [calls, answer]}


def tools_prompt(tools: Sequence[ToolDefinition], tool_choice: str) -> str:
    """The system prompt's paragraph that offers `tools` and explains the protocol."""
    lines = ["You can call these tools:"]
    for tool in tools:
        parameters = json.dumps(json_ready(tool.parameters), ensure_ascii=False)
        lines.append(f"- {tool.name}: {tool.description} Arguments (JSON Schema): {parameters}")
    lines.append(
        'To call tools, reply with JSON: {"tool_calls": [{"name": "TOOL", "arguments": {...}}]}; '
        "their results come back in the next message."
    )
    if tool_choice != "required":
        lines.append('To answer without calling, reply with JSON: {"answer": "..."}.')
    else:
        lines.append("You must call at least one tool now.")
    return "\n".join(lines)


def tool_names(messages: Sequence[ChatMessage]) -> dict[str, str]:
    """Call id -> tool name, for every call an assistant turn of `messages` asked for."""
    return {call.id: call.name for m in messages for call in m.tool_calls}


def render_tool_turns(
    messages: Sequence[ChatMessage], tools_paragraph: str | None = None
) -> list[ChatMessage]:
    """`messages` as plain system/user/assistant text (see the module doc), with
    `tools_paragraph` appended to the system turn (or a system turn of its own first)."""
    names = tool_names(messages)
    out: list[ChatMessage] = []
    for message in messages:
        if message.role == "tool":
            name = names.get(message.tool_call_id or "", "?")
            header = f"Result of the tool call {name} ({message.tool_call_id}):"
            out.append(ChatMessage("user", f"{header}\n{message.content}"))
        elif message.tool_calls:
            written = json.dumps({"tool_calls": calls_as_written(message.tool_calls)})
            text = f"{message.content}\n{written}" if message.content.strip() else written
            out.append(ChatMessage("assistant", text))
        else:
            out.append(ChatMessage(message.role, message.content))
    if tools_paragraph:
        if out and out[0].role == "system":
            out[0] = ChatMessage("system", f"{out[0].content}\n\n{tools_paragraph}")
        else:
            out.insert(0, ChatMessage("system", tools_paragraph))
    return out


def as_text_request(
    request: CompletionRequest, *, max_calls: int | None = None
) -> CompletionRequest:
    """`request` with its tools turned into this protocol: rendered turns, the tools in the
    system prompt and the answer's schema; no tools left (a plain request any backend serves)."""
    if not offers_tools(request):
        return CompletionRequest(
            tuple(render_tool_turns(request.messages)),
            request.json_schema,
            request.max_tokens,
            request.purpose,
        )
    paragraph = tools_prompt(request.tools, request.tool_choice)
    return CompletionRequest(
        tuple(render_tool_turns(request.messages, paragraph)),
        tool_call_schema(request, max_calls=max_calls),
        request.max_tokens,
        request.purpose,
    )


def calls_as_written(calls: Sequence[ToolCall]) -> list[dict[str, Any]]:
    """Calls in the protocol's shape (arguments as JSON where they parse, else the text)."""
    out = []
    for call in calls:
        try:
            arguments: Any = json.loads(call.arguments)
        except ValueError:
            arguments = call.arguments
        out.append({"name": call.name, "arguments": arguments})
    return out


def next_call_number(messages: Sequence[ChatMessage]) -> int:
    """The number of the next call id (``call_N``) in a conversation holding `messages`."""
    return 1 + sum(len(m.tool_calls) for m in messages)


def make_calls(
    messages: Sequence[ChatMessage], calls: Sequence[tuple[str, Any]]
) -> tuple[ToolCall, ...]:
    """`calls` (name, arguments: a mapping, or JSON text kept as it is) as `ToolCall`s with
    fresh ids for a conversation holding `messages`."""
    first = next_call_number(messages)
    return tuple(
        ToolCall(
            f"call_{first + i}",
            name,
            arguments if isinstance(arguments, str) else json.dumps(json_ready(arguments)),
        )
        for i, (name, arguments) in enumerate(calls)
    )


def parse_tool_answer(
    text: str, messages: Sequence[ChatMessage]
) -> tuple[str, tuple[ToolCall, ...]]:
    """A protocol answer as (text, calls). ``{"answer": ...}`` gives its text (JSON text when it
    is a document); ``{"tool_calls": [...]}`` the calls; anything else is an answer as it is."""
    try:
        data = json.loads(text)
    except ValueError:
        return text, ()
    if not isinstance(data, Mapping):
        return text, ()
    raw_calls = data.get("tool_calls")
    if isinstance(raw_calls, list) and raw_calls:
        calls = [
            (str(item.get("name", "")), item.get("arguments", {}))
            for item in raw_calls
            if isinstance(item, Mapping)
        ]
        if calls:
            return "", make_calls(messages, calls)
    if "answer" in data:
        answer = data["answer"]
        return (answer if isinstance(answer, str) else json.dumps(answer)), ()
    return text, ()


def calls_to_json(calls: Sequence[ToolCall]) -> list[dict[str, str]]:
    """Calls as stored in cassettes and the response cache."""
    return [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls]


def calls_from_json(raw: Any) -> tuple[ToolCall, ...]:
    """The inverse of `calls_to_json` (None or [] -> no calls); TypeError/KeyError if malformed."""
    if not raw:
        return ()
    if not isinstance(raw, list):
        raise TypeError(f"tool_calls must be a list, not {type(raw).__name__}")
    return tuple(ToolCall(str(c["id"]), str(c["name"]), str(c["arguments"])) for c in raw)


async def complete_as_text(
    request: CompletionRequest,
    on_token: TokenCallback | None,
    generate: Callable[[CompletionRequest], Awaitable[Completion]],
    *,
    max_calls: int | None = None,
) -> Completion:
    """Answer `request` (which has tools) by `generate` on its `as_text_request`, parsed back.

    The generated text is the protocol's JSON, so `on_token` gets the answer's text once, at
    the end, instead of the JSON token by token."""
    plain = as_text_request(request, max_calls=max_calls)
    completion = await generate(plain)
    text, calls = (
        parse_tool_answer(completion.text, request.messages)
        if offers_tools(request)
        else (completion.text, ())
    )
    if on_token is not None and text:
        on_token(text)
    return Completion(text, completion.usage, completion.model, tool_calls=calls)
