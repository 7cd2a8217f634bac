"""The ``openai`` backend: any OpenAI-compatible server (llama.cpp, vLLM, Ollama, LM Studio,
hosted APIs) over HTTP, through the shared `regions_cli.http.HttpEndpoint` (keep-alive,
retries, timeouts); its `HttpError` leaves this module as an `LLMError` with the same message.

``api: chat`` (the default) posts structured messages to ``/chat/completions``;
``api: completions`` posts the original framework's ChatML prompt to ``/completions`` for
raw-completion servers, with ``<|im_start|>``/``<|im_end|>`` inside message text neutralised so
content cannot break the turn structure.

Tools: a request that offers tools sends them as OpenAI function tools with ``tool_choice``,
and the conversation's tool turns in the chat format (assistant ``tool_calls``, ``tool``
results); the calls come back from ``message.tool_calls`` or, streamed, assembled from the
deltas' index-keyed pieces (text pieces still go to ``on_token``). A server that rejects
``tools`` (HTTP 400/422 whose error mentions tools or functions) gets the JSON protocol of
`regions_cli.llm.tool_protocol` instead: tools described in the system prompt, the answer
constrained by a JSON schema (through the structured-output fallbacks below), tool turns as
plain text. That switch is remembered for the endpoint and said once (`take_notices`).
``api: completions`` always uses that protocol (a raw prompt has no tools API). A server that
accepts ``tools`` and ignores them cannot be told apart from a model that chose to answer.

Structured output degrades gracefully: a request with a JSON schema first asks for
``response_format: {type: json_schema}`` (OpenAI, vLLM, llama.cpp), then, if the server
rejects that with 400/422, ``{type: json_object, schema}`` (llama-cpp-python), then nothing
(the caller parses leniently). What the endpoint accepted is remembered, so the fallback costs
one extra request per endpoint, not per call. The same goes for ``stream_options`` (asked
for so the last SSE chunk carries token usage).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

from regions_cli.http import (
    HttpConfigError,
    HttpEndpoint,
    HttpError,
    HttpSettings,
    HttpStatusError,
    RetryableError,
)
from regions_cli.llm.base import (
    ChatMessage,
    Completion,
    CompletionRequest,
    LLMConfigError,
    LLMError,
    TokenCallback,
    ToolCall,
    Usage,
    json_ready,
    strip_thinking,
)
from regions_cli.llm.tool_protocol import complete_as_text, speaks_tools

if TYPE_CHECKING:
    import httpx

    from regions_cli.model import LLMConfig

Api = Literal["chat", "completions"]

# Structured-output request shapes, most standard first; None = ask for nothing.
_SCHEMA_STYLES: tuple[str | None, ...] = ("json_schema", "json_object", None)
_REJECTED = frozenset({400, 422})
# What a server's error says when it is the tools it cannot take ("tools param requires
# --jinja", "does not support tools", "tool choice requires ...", "functions are not supported").
_TOOLS_REJECTED = re.compile(r"tool|function", re.IGNORECASE)
_DRAIN_SECONDS = 2.0


def chatml_prompt(messages: tuple[ChatMessage, ...] | list[ChatMessage]) -> str:
    """The original's ChatML completion prompt (docs/backends.md, `api: completions`), made safe.

    ``<|im_start|>`` and ``<|im_end|>`` inside content become ``<\\|im_start|>``/``<\\|im_end|>``
    so a message cannot close its turn or open a new one.
    """

    def neutral(text: str) -> str:
        return text.replace("<|im_start|>", "<\\|im_start|>").replace("<|im_end|>", "<\\|im_end|>")

    turns = [f"<|im_start|>{m.role}\n{neutral(m.content)}<|im_end|>\n" for m in messages]
    return "".join(turns) + "<|im_start|>assistant\n"


def estimate_tokens(text: str) -> int:
    """A rough token count (4 characters a token) for servers that report no usage."""
    return (len(text) + 3) // 4


class OpenAIModel:
    """A `CompletionModel` backed by an OpenAI-compatible HTTP server.

    `transport` goes to the `HttpEndpoint` (as to an `httpx.AsyncClient`): tests pass an
    `httpx.MockTransport`.
    """

    def __init__(
        self,
        name: str,
        settings: HttpSettings,
        *,
        model: str | None = None,
        api: Api = "chat",
        params: Mapping[str, Any] | None = None,
        stream: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.api: Api = api
        self.params = dict(params or {})
        self.stream = stream
        self.endpoint = HttpEndpoint(settings, transport=transport)
        self._schema_style = 0  # index into _SCHEMA_STYLES: what this server accepts
        self._stream_usage = True  # whether it accepts stream_options.include_usage
        self._native_tools = api == "chat"  # whether it takes `tools` (else the JSON protocol)
        self._notices: list[str] = []

    @classmethod
    def from_config(
        cls, config: LLMConfig, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> OpenAIModel:
        """Build from an ``llms:`` entry (raises `LLMConfigError` naming the bad key)."""
        where = f"llms.{config.name}"
        options = config.options
        with _as_llm_errors():
            settings = HttpSettings.from_options(options, config.api_key, where=where)
        api = options.get("api", "chat")
        if api not in ("chat", "completions"):
            raise LLMConfigError(f"{where}: api must be chat or completions, got {api!r}")
        params = options.get("params") or {}
        if not isinstance(params, Mapping):
            raise LLMConfigError(f"{where}: params must be a mapping")
        model = options.get("model")
        return cls(
            config.name,
            settings,
            model=str(model) if model else None,
            api=api,
            params=params,
            stream=bool(options.get("stream", True)),
            transport=transport,
        )

    @property
    def settings(self) -> HttpSettings:
        return self.endpoint.settings

    async def aclose(self) -> None:
        await self.endpoint.aclose()

    def take_notices(self) -> list[str]:
        """What to tell the user once (the tools fallback taken); see `base.Noticing`."""
        notices, self._notices = self._notices, []
        return notices

    # -- completion ---------------------------------------------------------------------------

    async def complete(
        self, request: CompletionRequest, on_token: TokenCallback | None = None
    ) -> Completion:
        """Send `request`; stream pieces to `on_token` when streaming is on."""
        with _as_llm_errors():
            return await self._complete(request, on_token)

    async def _complete(
        self, request: CompletionRequest, on_token: TokenCallback | None
    ) -> Completion:
        if not self._native_tools and speaks_tools(request):
            return await self._complete_as_text(request, on_token)
        stream = self.stream
        while True:
            no_schema = len(_SCHEMA_STYLES) - 1
            style = self._schema_style if request.json_schema is not None else no_schema
            stream_usage = stream and self._stream_usage
            payload = self._payload(request, stream, _SCHEMA_STYLES[style], stream_usage)
            try:
                if stream:
                    return await self._complete_streaming(payload, on_token)
                return await self._complete_once(payload)
            except HttpStatusError as exc:
                if exc.status not in _REJECTED:
                    raise
                if request.tools and _TOOLS_REJECTED.search(_server_said(exc)):
                    self._native_tools = False
                    self._notices.append(
                        f"llms.{self.name}: the server rejects `tools`; tool calls go "
                        "through JSON output for the rest of the run"
                    )
                    return await self._complete_as_text(request, on_token)
                # The server rejects an optional extra: drop the most exotic one and ask again.
                if _SCHEMA_STYLES[style] is not None:
                    self._schema_style = max(self._schema_style, style + 1)
                elif stream_usage:
                    self._stream_usage = False
                else:
                    raise

    async def _complete_as_text(
        self, request: CompletionRequest, on_token: TokenCallback | None
    ) -> Completion:
        """`request` through the JSON tool protocol (see the module doc)."""
        return await complete_as_text(request, on_token, lambda plain: self._complete(plain, None))

    def _payload(
        self,
        request: CompletionRequest,
        stream: bool,
        schema_style: str | None,
        stream_usage: bool,
    ) -> dict[str, Any]:
        body: dict[str, Any] = dict(self.params)
        if self.model:
            body["model"] = self.model
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if self.api == "chat":
            body["messages"] = [_chat_message(m) for m in request.messages]
            if request.tools:
                body["tools"] = [
                    {
                        "type": "function",
                        "function": {
                            "name": t.name,
                            "description": t.description,
                            "parameters": json_ready(t.parameters),
                        },
                    }
                    for t in request.tools
                ]
                body["tool_choice"] = request.tool_choice
        else:
            body["prompt"] = chatml_prompt(request.messages)
            stop = body.get("stop") or []
            stop = [stop] if isinstance(stop, str) else list(stop)
            body["stop"] = [*stop, "<|im_end|>"] if "<|im_end|>" not in stop else stop
        schema = json_ready(request.json_schema) if request.json_schema is not None else None
        if schema is not None and schema_style == "json_schema":
            # OpenAI wants a name of [A-Za-z0-9_-]{1,64}.
            name = re.sub(r"[^A-Za-z0-9_-]", "_", request.purpose)[:64] or "response"
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": name, "schema": schema},
            }
        elif schema is not None and schema_style == "json_object":
            body["response_format"] = {"type": "json_object", "schema": schema}
        if stream:
            body["stream"] = True
            if stream_usage:
                body["stream_options"] = {"include_usage": True}
        return body

    @property
    def _path(self) -> str:
        return "/chat/completions" if self.api == "chat" else "/completions"

    async def _complete_once(self, payload: dict[str, Any]) -> Completion:
        data = await self.endpoint.post_json(self._path, payload)
        return self._parse_answer(payload, data, f"POST {self.settings.url(self._path)}")

    def _parse_answer(self, payload: Mapping[str, Any], data: Any, what: str) -> Completion:
        """A whole (non-streamed) completion answer as a `Completion`."""
        try:
            choice = data["choices"][0]
            raw = choice["message"].get("content") if self.api == "chat" else choice["text"]
            raw_calls = choice["message"].get("tool_calls") if self.api == "chat" else None
            calls = [_CallPieces.of(call) for call in raw_calls or ()]
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise self.endpoint.error(f"{what}: unexpected answer shape: {_excerpt(data)}") from exc
        text = raw if isinstance(raw, str) else ""  # content is null when only reasoning came back
        usage = _usage(data.get("usage")) or self._estimate(payload, text)
        model = str(data.get("model") or self.model or "")
        return Completion(strip_thinking(text), usage, model, tool_calls=_assemble(calls, payload))

    async def _complete_streaming(
        self, payload: dict[str, Any], on_token: TokenCallback | None
    ) -> Completion:
        url = self.settings.url(self._path)
        what = f"POST {url} (stream)"

        async def once() -> Completion:
            async with self.endpoint.open_stream(self._path, payload) as response:
                if response.headers.get("content-type", "").startswith("application/json"):
                    # A server that ignores `stream: true` answers in one piece.
                    body = await response.aread()
                    try:
                        data = json.loads(body)
                    except ValueError as exc:
                        raise self.endpoint.error(f"{what}: the answer is not JSON") from exc
                    completion = self._parse_answer(payload, data, what)
                    if on_token is not None and completion.text:
                        on_token(completion.text)
                    return completion
                return await self._read_events(response, payload, on_token, what)

        return await self.endpoint.retrying(what, once)

    async def _read_events(
        self,
        response: httpx.Response,
        payload: Mapping[str, Any],
        on_token: TokenCallback | None,
        what: str,
    ) -> Completion:
        """Read an SSE stream to its end: ``data: [DONE]`` or a chunk with a finish_reason."""
        pieces: list[str] = []
        calls: dict[int, _CallPieces] = {}  # streamed tool calls, by their index
        usage: Usage | None = None
        model = ""
        finished = False
        async for data in _sse_data(response):
            if data == "[DONE]":
                finished = True  # the generator now reads the body to its end, then stops
                continue
            try:
                chunk = json.loads(data)
            except ValueError as exc:
                raise self.endpoint.error(
                    f"{what}: a stream event is not JSON: {data[:120]!r}"
                ) from exc
            if not isinstance(chunk, dict):
                raise self.endpoint.error(f"{what}: unexpected stream event: {_excerpt(chunk)}")
            if "error" in chunk:
                reported = _excerpt(chunk["error"])
                raise self.endpoint.error(f"{what}: the server reported: {reported}")
            model = str(chunk.get("model") or model)
            usage = _usage(chunk.get("usage")) or usage
            for choice in chunk.get("choices") or ():
                for raw in _call_deltas(choice):
                    index = raw.get("index")
                    key = index if isinstance(index, int) else len(calls)
                    calls.setdefault(key, _CallPieces()).add(raw)
                piece = _piece(choice, self.api)
                if piece:
                    pieces.append(piece)
                    if on_token is not None:
                        on_token(piece)
                if choice.get("finish_reason"):
                    finished = True
        if not finished:
            # Cut off mid-answer (the server died or a proxy gave up): worth another try.
            raise RetryableError(f"the stream ended early, after {len(pieces)} pieces")
        text = "".join(pieces)
        if usage is None:
            prompt = self._estimate(payload, "").prompt_tokens
            usage = Usage(prompt, len(pieces))  # servers stream about one token per event
        tool_calls = _assemble([calls[i] for i in sorted(calls)], payload)
        return Completion(
            strip_thinking(text), usage, model or self.model or "", tool_calls=tool_calls
        )

    def _estimate(self, payload: Mapping[str, Any], text: str) -> Usage:
        prompt = payload.get("prompt") or "".join(
            m.get("content") or "" for m in payload.get("messages", ())
        )
        return Usage(estimate_tokens(str(prompt)), estimate_tokens(text))

    # -- probes used by `regions llm check` ---------------------------------------------------

    async def health(self) -> tuple[bool, str]:
        """``GET /health`` (llama.cpp), falling back to ``GET /v1/models``; no retries.

        Returns (ok, detail): ``(True, "ok")``, ``(False, "loading")`` for llama.cpp's 503...
        """
        status = await _status(self.endpoint, "//health")
        if isinstance(status, str):
            return False, status
        if 200 <= status < 300:
            return True, "ok"
        if status == 503:
            return False, "loading (HTTP 503)"
        if status not in (404, 405):
            return False, f"GET /health: HTTP {status}"
        try:
            await self.list_models(retry=False)
            return True, "ok (GET /models)"
        except LLMError as exc:
            return False, str(exc)

    async def list_models(self, *, retry: bool = True) -> list[str]:
        """Model names from ``GET /models``: OpenAI's ``data[].id`` or llama.cpp's
        ``models[].name``."""
        with _as_llm_errors():
            data = await self.endpoint.request_json("GET", "/models", retry=retry)
        names: list[str] = []
        if isinstance(data, dict):
            for item in data.get("data") or ():
                if isinstance(item, dict) and item.get("id"):
                    names.append(str(item["id"]))
            if not names:
                for item in data.get("models") or ():
                    if isinstance(item, dict) and (item.get("name") or item.get("model")):
                        names.append(str(item.get("name") or item.get("model")))
        return names

    async def count_tokens(self, text: str) -> int:
        """Tokens in `text` by the server's tokenizer: ``/tokenize`` (llama.cpp), falling back
        to ``/extras/tokenize`` (llama-cpp-python)."""
        with _as_llm_errors():
            try:
                data = await self.endpoint.post_json("//tokenize", {"content": text})
            except HttpStatusError as exc:
                if exc.status not in (404, 405):
                    raise
                body: dict[str, Any] = {"input": text}
                if self.model:
                    body["model"] = self.model
                data = await self.endpoint.post_json("//extras/tokenize", body)
            tokens = data.get("tokens") if isinstance(data, dict) else None
            if not isinstance(tokens, list):
                raise self.endpoint.error(f"tokenize: unexpected answer: {_excerpt(data)}")
        return len(tokens)


@contextlib.contextmanager
def _as_llm_errors() -> Iterator[None]:
    """The HTTP layer's errors in the backend's words, same message: `LLMConfigError` for
    bad settings, `LLMError` for a call that failed."""
    try:
        yield
    except HttpConfigError as exc:
        raise LLMConfigError(str(exc)) from exc
    except HttpError as exc:
        raise LLMError(str(exc)) from exc


async def _sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The ``data:`` fields of a server-sent event stream, up to and including ``[DONE]``.

    After ``[DONE]`` the rest of the body is read (for at most `_DRAIN_SECONDS`): a response
    left unread would close its connection instead of returning it to the keep-alive pool.

    Lines are split as bytes (`_lines`): httpx's ``aiter_lines`` decodes and re-buffers every
    chunk, a measurable share of the client's CPU per streamed call.
    """
    lines = _lines(response)
    async for line in lines:
        if not line.startswith(b"data:"):
            continue  # blank separators, ": keep-alive" comments, event: names
        data = line[5:].strip().decode("utf-8", errors="replace")
        yield data
        if data == "[DONE]":
            break

    # The answer is complete; a tail that errs or never ends only costs the connection.
    with contextlib.suppress(Exception):
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for _ in lines:
                pass


async def _lines(response: httpx.Response) -> AsyncIterator[bytes]:
    """The body's lines as raw bytes (a line is decoded only once whole, so a character split
    between two chunks is never cut)."""
    pending = b""
    async for chunk in response.aiter_bytes():
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            yield line
    if pending:
        yield pending


async def _status(endpoint: HttpEndpoint, path: str) -> int | str:
    """The HTTP status of a GET, or the error text if the server cannot be reached."""
    try:
        return await endpoint.probe(path)
    except HttpError as exc:
        return str(exc)


def _chat_message(message: ChatMessage) -> dict[str, Any]:
    """A turn in the OpenAI chat format (assistant tool calls, tool results)."""
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.content}


class _CallPieces:
    """One tool call as it arrives: whole (a non-streamed answer) or in streamed pieces (an
    id and name first, the arguments' text in pieces after)."""

    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> _CallPieces:
        pieces = cls()
        pieces.add(raw)
        return pieces

    def add(self, raw: Mapping[str, Any]) -> None:
        self.id = self.id or str(raw.get("id") or "")
        function = raw.get("function") or {}
        if not isinstance(function, Mapping):
            return
        self.name += str(function.get("name") or "")
        arguments = function.get("arguments")
        if isinstance(arguments, str):
            self.arguments.append(arguments)
        elif arguments is not None:  # some servers send the object itself
            self.arguments.append(json.dumps(arguments))


def _call_deltas(choice: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The tool-call pieces of one streamed chat choice."""
    delta = choice.get("delta")
    raw = delta.get("tool_calls") if isinstance(delta, Mapping) else None
    return [item for item in raw or () if isinstance(item, Mapping)]


def _assemble(calls: list[_CallPieces], payload: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    """The calls of an answer; one the server sent without an id gets ``call_N``, numbered on
    from the calls already in the conversation (as `tool_protocol` numbers them)."""
    earlier = sum(
        len(m.get("tool_calls") or ()) for m in payload.get("messages") or () if isinstance(m, dict)
    )
    return tuple(
        ToolCall(c.id or f"call_{earlier + i + 1}", c.name, "".join(c.arguments) or "{}")
        for i, c in enumerate(calls)
    )


def _server_said(exc: HttpStatusError) -> str:
    """The server's part of an HTTP error's message (not the URL, which may say anything)."""
    return str(exc).partition(f"HTTP {exc.status}")[2]


def _piece(choice: Mapping[str, Any], api: Api) -> str:
    """The text of one streamed choice; reasoning (``reasoning_content``) is ignored."""
    if api == "chat":
        delta = choice.get("delta") or {}
        content = delta.get("content") if isinstance(delta, Mapping) else None
    else:
        content = choice.get("text")
    return content if isinstance(content, str) else ""


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, Mapping):
        return None
    try:
        return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))
    except (TypeError, ValueError):
        return None


def _excerpt(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text[:200]
