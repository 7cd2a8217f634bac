"""A small OpenAI-compatible HTTP server for tests and benchmarks (stdlib only, real sockets).

It speaks enough of the protocol that llama.cpp, vLLM and hosted APIs share: chat and text
completions (plain JSON or SSE streaming), ``/v1/models``, llama.cpp's ``/health`` and
``/tokenize``, llama-cpp-python's ``/extras/tokenize`` and ``/v1/embeddings``. Faults are queued
per request to test the client's failure paths over real HTTP::

    with OpenAIServer() as server:
        server.faults.append(Fault(status=429, retry_after="0"))
        ...  # point an llms entry at server.base_url

Tool calls: `OpenAIServer.calls` (body -> [(name, arguments)] or None) makes a chat answer call
tools, as OpenAI does: ``message.tool_calls`` whole, or streamed as index-keyed deltas (id and
name first, the arguments' JSON text in pieces), finish_reason ``tool_calls``.
``reject={"tools"}`` plays a server without tool support (HTTP 400 naming ``tools``).

Every request is recorded in `OpenAIServer.requests` (method, path, headers, JSON body).
`closed_port()` gives a loopback port with nothing listening (connection refused).

Other test suites (embedders, the engine, the CLI) may import it: ``from tests.llm.openai_server
import OpenAIServer, Fault``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GENERATION_PATHS = ("/v1/chat/completions", "/v1/completions")


@dataclass
class Fault:
    """What to do to one upcoming request instead of (or on top of) a normal answer.

    A fault with `path` None applies to the next generation request (chat or completions);
    with a path, to the next request on that path.
    """

    status: int | None = None  # answer with this HTTP status and a JSON error body
    retry_after: str | None = None  # Retry-After header (with status 429/503)
    message: str | None = None  # the error message sent with `status`
    delay: float = 0.0  # seconds to wait before answering (longer than a timeout = a hang)
    body: bytes | None = None  # send these bytes as the 200 body (e.g. malformed JSON)
    truncate_after: int | None = None  # stream: send N events, then drop the connection
    drop_finish: bool = False  # stream: end cleanly but with no finish_reason and no [DONE]
    bad_event: bool = False  # stream: send an event whose data is not JSON
    location: str | None = None  # a Location header (with a 3xx status: a redirect)
    path: str | None = None


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    client_port: int = 0  # the same port for two requests = one kept-alive connection


def default_reply(body: dict[str, Any]) -> str:
    """Echo the last user message, or a JSON list of questions when a schema is asked for."""
    if body.get("response_format"):
        return json.dumps(["What happened first?", "Who was involved?"])
    if "messages" in body:
        users = [m["content"] for m in body["messages"] if m.get("role") == "user"]
        return f"echo: {users[-1] if users else ''}"
    prompt = str(body.get("prompt", ""))
    turns = re.findall(r"<\|im_start\|>user\n(.*?)<\|im_end\|>", prompt, re.DOTALL)
    return f"echo: {turns[-1] if turns else prompt}"


def _event_chunk(payload: Any) -> bytes:
    """One server-sent event (``data: JSON``) as one chunk of a chunked HTTP body."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    data = f"data: {text}\n\n".encode()
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _words(text: str) -> list[str]:
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


def closed_port() -> int:
    """A loopback port that nothing listens on (connecting to it is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@dataclass
class OpenAIServer:
    """The server. Use as a context manager, or `start()`/`stop()`."""

    reply: Callable[[dict[str, Any]], str] = default_reply
    latency: float = 0.0  # seconds every generation request waits (a model's think time)
    # seconds a generation request waits, from its JSON body (overrides `latency`): a model
    # whose think time varies from call to call
    latency_for: Callable[[dict[str, Any]], float] | None = None
    model: str = "test-model"
    reasoning: str | None = None  # sent as reasoning_content before the answer, if set
    health: bool = True  # serve /health (else 404: clients fall back to /v1/models)
    tokenize: bool = True  # serve /tokenize (else 404: clients fall back to /extras/tokenize)
    usage_in_stream: bool = True  # honour stream_options.include_usage
    can_stream: bool = True  # False: ignore `stream: true` and answer in one JSON body
    reject: frozenset[str] = frozenset()  # body features answered with 400: e.g. "json_schema"
    # the tool calls of a chat answer, from its JSON body: [(name, arguments)], or None
    calls: Callable[[dict[str, Any]], list[tuple[str, dict[str, Any]]] | None] | None = None
    api_key: str | None = None  # if set, other keys get a 401 that echoes what was sent
    set_cookie: str | None = None  # a Set-Cookie header for GET /v1/models (a sticky session)
    faults: list[Fault] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.in_flight = 0  # generation requests being answered now
        self.max_in_flight = 0  # the most at once, for concurrency tests

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> OpenAIServer:
        handler = type("Handler", (_Handler,), {"app": self})
        httpd = _Server(("127.0.0.1", 0), handler)
        self._httpd = httpd
        # A short poll interval only makes stop() quick; requests are served as they arrive.
        self._thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    # -- used by the handler ------------------------------------------------------------------

    def take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self.faults):
                if fault.path == path or (fault.path is None and path in GENERATION_PATHS):
                    return self.faults.pop(i)
        return None

    def record(self, item: Recorded) -> None:
        with self._lock:
            self.requests.append(item)

    def wait(self, seconds: float) -> None:
        """Sleep, but wake at once when the server stops (so tests never linger)."""
        if seconds > 0:
            self._stopping.wait(seconds)

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def generation_requests(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path in GENERATION_PATHS]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # a burst of 64 concurrent connects must not overflow the backlog

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (timeout test) leaves a broken pipe: not an error here


class _Handler(BaseHTTPRequestHandler):
    app: OpenAIServer
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # small SSE writes go out at once

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing -----------------------------------------------------------------------------

    def _read_body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return raw.decode("utf-8", errors="replace")

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, {"error": {"message": message, "code": status}}, headers)

    # -- routes -------------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _route(self, method: str) -> None:
        body = self._read_body() if method == "POST" else None
        headers = {k.lower(): v for k, v in self.headers.items()}
        app = self.app
        app.record(Recorded(method, self.path, headers, body, self.client_address[1]))
        sent_key = headers.get("authorization", "")
        if app.api_key is not None and sent_key != f"Bearer {app.api_key}":
            return self._error(401, f"invalid api key: {sent_key!r}")
        fault = app.take_fault(self.path)
        if fault is not None:
            app.wait(fault.delay)
            if fault.status is not None:
                extra = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                if fault.location:
                    extra["Location"] = fault.location
                text = fault.message or f"injected fault {fault.status}"
                return self._error(fault.status, text, extra)
            if fault.body is not None:
                return self._send(200, fault.body)
        routes: dict[tuple[str, str], Callable[[Any, Fault | None], None]] = {
            ("POST", "/v1/chat/completions"): self._generate,
            ("POST", "/v1/completions"): self._generate,
            ("GET", "/v1/models"): self._models,
            ("GET", "/health"): self._health,
            ("POST", "/tokenize"): self._tokenize,
            ("POST", "/extras/tokenize"): self._extras_tokenize,
            ("POST", "/v1/embeddings"): self._embeddings,
        }
        handler = routes.get((method, self.path))
        if handler is None:
            return self._error(404, f"no route {method} {self.path}")
        handler(body, fault)

    def _models(self, body: Any, fault: Fault | None) -> None:
        cookie = {"Set-Cookie": self.app.set_cookie} if self.app.set_cookie else None
        models = {"object": "list", "data": [{"id": self.app.model, "object": "model"}]}
        self._send(200, models, cookie)

    def _health(self, body: Any, fault: Fault | None) -> None:
        if not self.app.health:
            return self._error(404, "no /health here")
        self._send(200, {"status": "ok"})

    def _tokenize(self, body: Any, fault: Fault | None) -> None:
        if not self.app.tokenize:
            return self._error(404, "no /tokenize here")
        self._send(200, {"tokens": list(range(len(_words(str(body.get("content", ""))))))})

    def _extras_tokenize(self, body: Any, fault: Fault | None) -> None:
        self._send(200, {"tokens": list(range(len(_words(str(body.get("input", ""))))))})

    def _embeddings(self, body: Any, fault: Fault | None) -> None:
        inputs = body.get("input", [])
        inputs = [inputs] if isinstance(inputs, str) else list(inputs)
        data = []
        for i, text in enumerate(inputs):
            digest = hashlib.sha256(str(text).encode()).digest()
            vec = [b - 127.5 for b in digest[:8]]
            norm = math.sqrt(sum(v * v for v in vec)) or 1.0
            data.append({"object": "embedding", "index": i, "embedding": [v / norm for v in vec]})
        tokens = sum(len(_words(str(t))) for t in inputs)
        self._send(
            200,
            {
                "object": "list",
                "data": data,
                "model": self.app.model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _generate(self, body: Any, fault: Fault | None) -> None:
        app = self.app
        if not isinstance(body, dict):
            return self._error(400, "the body must be a JSON object")
        fmt = body.get("response_format") or {}
        features = {fmt.get("type"), *(k for k in ("stream_options", "tools") if k in body)}
        if rejected := {str(f) for f in features} & app.reject:
            return self._error(400, f"unsupported: {sorted(rejected)}")
        app.enter()
        try:
            self._answer(app, body, fault)
        finally:
            app.leave()

    def _answer(self, app: OpenAIServer, body: dict[str, Any], fault: Fault | None) -> None:
        app.wait(app.latency_for(body) if app.latency_for is not None else app.latency)
        chat = self.path.endswith("/chat/completions")
        text = app.reply(body)
        calls = (app.calls(body) if app.calls is not None and chat else None) or []
        pieces = _words(text)
        prompt = json.dumps(body.get("messages")) if chat else str(body.get("prompt", ""))
        usage = {"prompt_tokens": len(_words(prompt)), "completion_tokens": len(pieces)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if not body.get("stream") or not app.can_stream:
            if chat:
                message: dict[str, Any] = {"role": "assistant", "content": text or None}
                if app.reasoning:
                    message["reasoning_content"] = app.reasoning
                if calls:
                    message["tool_calls"] = [
                        {
                            "id": f"srv_{i}",
                            "type": "function",
                            "function": {"name": name, "arguments": json.dumps(arguments)},
                        }
                        for i, (name, arguments) in enumerate(calls)
                    ]
                finish = "tool_calls" if calls else "stop"
                choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish}
            else:
                choice = {"index": 0, "text": text, "finish_reason": "stop"}
            return self._send(
                200,
                {
                    "id": "x",
                    "object": "chat.completion",
                    "model": app.model,
                    "choices": [choice],
                    "usage": usage,
                },
            )
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(piece: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
            choice.update({"delta": piece} if chat else {"text": piece.get("content", "")})
            return {"id": "x", "model": app.model, "choices": [choice]}

        events: list[dict[str, Any]] = []
        if app.reasoning and chat:
            events.append(chunk({"reasoning_content": app.reasoning}))
        events += [chunk({"content": p}) for p in pieces]
        for i, (name, arguments) in enumerate(calls):
            start = {"index": i, "id": f"srv_{i}", "type": "function"}
            events.append(chunk({"tool_calls": [{**start, "function": {"name": name}}]}))
            written = json.dumps(arguments)
            for at in range(0, len(written), 5):  # the arguments' text in small pieces
                piece = {"index": i, "function": {"arguments": written[at : at + 5]}}
                events.append(chunk({"tool_calls": [piece]}))
        # The whole answer is ready at once (the latency stands for the model's time), so its
        # events go out in one write: the same bytes, one syscall instead of one per event.
        out: list[bytes] = []
        for i, event in enumerate(events):
            if fault is not None and fault.truncate_after is not None and i >= fault.truncate_after:
                self.wfile.write(b"".join(out))
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)  # no terminating chunk: a broken body
                return
            if fault is not None and fault.bad_event and i == 1:
                out.append(_event_chunk("{this is not json"))
            out.append(_event_chunk(event))
        if fault is None or not fault.drop_finish:
            out.append(_event_chunk(chunk({}, "tool_calls" if calls else "stop")))
            if app.usage_in_stream and (body.get("stream_options") or {}).get("include_usage"):
                out.append(
                    _event_chunk({"id": "x", "model": app.model, "choices": [], "usage": usage})
                )
            out.append(_event_chunk("[DONE]"))
        out.append(b"0\r\n\r\n")  # the last chunk of the body
        self.wfile.write(b"".join(out))
        self.wfile.flush()


def main() -> None:
    """``python tests/llm/openai_server.py [--latency S]``: serve until stdin closes.

    Prints the base URL on its first stdout line. Benchmarks run it in a process of its own so
    the server's threads do not share the client's interpreter lock.
    """
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per generation")
    args = parser.parse_args()
    with OpenAIServer(latency=args.latency) as server:
        print(server.base_url, flush=True)
        sys.stdin.read()  # the parent closes our stdin (or ends) to stop us


if __name__ == "__main__":
    main()
