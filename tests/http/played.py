"""A server played in process through `httpx.MockTransport`, for fast tests of the HTTP layer
and its users (beside the real loopback servers of tests/llm/openai_server.py and
tests/rag/test_embedders.py, which stay)."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable
from typing import Any

import httpx

#: What the server does with one request: answer it, or fail the way the network would.
Answer = httpx.Response | httpx.TransportError


def answer(status: int = 200, body: Any = None, **headers: str) -> httpx.Response:
    """A response: `body` as JSON (bytes and str as they are)."""
    if isinstance(body, bytes | str):
        return httpx.Response(status, content=body, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


def sse(*events: Any) -> httpx.Response:
    """A ``text/event-stream`` answer with one ``data:`` line per event (dicts as JSON)."""
    lines = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    return httpx.Response(
        200, content="".join(lines).encode(), headers={"content-type": "text/event-stream"}
    )


class Played:
    """A `httpx.MockTransport` that gives each request the next of `answers` (the last one
    again when they run out) and keeps the requests it saw."""

    def __init__(self, answers: Iterable[Answer]) -> None:
        self.answers: deque[Answer] = deque(answers)
        self.requests: list[httpx.Request] = []
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        now = self.answers.popleft() if len(self.answers) > 1 else self.answers[0]
        if isinstance(now, Exception):
            raise type(now)(str(now), request=request)
        # A fresh copy each time: a response belongs to the one request it answers.
        return httpx.Response(now.status_code, headers=now.headers, content=now.content)

    def bodies(self) -> list[Any]:
        """The JSON bodies of the requests, in order."""
        return [json.loads(r.content) for r in self.requests]


class Waits:
    """A stand-in for `asyncio.sleep` that only notes how long it was asked to wait."""

    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
