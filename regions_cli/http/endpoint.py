"""`HttpEndpoint`: one server, its keep-alive connections, the concurrency gate and the retry
loop."""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from regions_cli.http.errors import HttpError, HttpStatusError, RetryableError
from regions_cli.http.retry import RETRYABLE_STATUS, backoff_delay, parse_retry_after
from regions_cli.http.settings import HttpSettings, redact, strip_userinfo
from regions_cli.text import plural

if TYPE_CHECKING:
    import httpx

T = TypeVar("T")

#: Waits `seconds` (`asyncio.sleep`; tests pass one that only records the wait).
Sleep = Callable[[float], Awaitable[None]]

_ERROR_BODY_CHARS = 300


class HttpEndpoint:
    """One server: lazily created keep-alive clients, a concurrency gate and the retry loop.

    Safe to share between concurrent tasks of one event loop. `aclose` releases the
    connections; the next call opens new clients (so a model survives ``asyncio.run`` twice).

    `transport` replaces httpx's network transport, as `httpx.AsyncClient` takes it (tests
    pass an `httpx.MockTransport`); `sleep` waits between attempts and `clock` (Unix time)
    reads a ``Retry-After`` date, so tests of the retry loop need not wait.

    Without a transport, each connection has an `httpx.AsyncClient` of its own
    (`CONNECTIONS_PER_CLIENT`), and `_lease` hands a request the least busy one: the
    bookkeeping of httpx's connection pool grows much faster than its size, and a burst of
    concurrent calls through one pool of many connections costs several times the client
    CPU of the same burst through pools of one (measured against the loopback server of
    benchmarks/bench_llm.py; the figures are in the README).
    """

    CONNECTIONS_PER_CLIENT = 1

    def __init__(
        self,
        settings: HttpSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._transport = transport
        self._sleep = sleep
        self._clock = clock
        self._clients: list[httpx.AsyncClient] = []
        self._in_use: list[int] = []  # requests in flight per client
        self._gate: asyncio.Semaphore | None = None
        self._urls: dict[str, httpx.URL] = {}

    def _url(self, path: str) -> httpx.URL:
        """`settings.url(path)` parsed once: httpx parses a string URL on every request (about
        half of `build_request`), which each task of a burst pays before any bytes leave."""
        url = self._urls.get(path)
        if url is None:
            import httpx

            url = self._urls[path] = httpx.URL(self.settings.url(path))
        return url

    def _ensure_clients(self) -> None:
        if self._clients:
            return
        import http.cookiejar  # imported when first needed, as httpx: a CLI start pays neither

        import httpx

        s = self.settings
        headers = {"Accept": "application/json", **s.headers}
        if s.api_key:
            headers["Authorization"] = f"Bearer {s.api_key}"
        if self._transport is not None:
            shards = 1  # the given transport holds the connections
        else:
            shards = -(-s.max_concurrency // self.CONNECTIONS_PER_CLIENT)  # ceiling division
        per_client = -(-s.max_concurrency // shards)
        limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
        # One jar for all: a cookie set on one connection (a sticky session) counts on all
        # (httpx keeps a `CookieJar` it is given, where it would copy a `Cookies`).
        cookies = http.cookiejar.CookieJar()
        self._clients = [
            httpx.AsyncClient(
                headers=headers,
                # The gate bounds concurrency, so the pool never makes a request wait.
                timeout=httpx.Timeout(
                    connect=s.connect_timeout, read=s.read_timeout, write=s.read_timeout, pool=None
                ),
                limits=limits,
                verify=_tls_context(s.verify_tls),
                transport=self._transport,
                cookies=cookies,
                auth=s.basic_auth,
                # An API answers where it is asked: a redirect would carry the key and the
                # prompt to wherever it points (see `check_status`).
                follow_redirects=False,
            )
            for _ in range(shards)
        ]
        self._in_use = [0] * shards
        self._gate = asyncio.Semaphore(s.max_concurrency)

    @contextmanager
    def _lease(self) -> Iterator[httpx.AsyncClient]:
        """The least busy client, for the duration of one request."""
        self._ensure_clients()
        index = min(range(len(self._clients)), key=self._in_use.__getitem__)
        self._in_use[index] += 1
        try:
            yield self._clients[index]
        finally:
            if index < len(self._in_use):  # aclose() may have emptied the list meanwhile
                self._in_use[index] -= 1

    async def aclose(self) -> None:
        """Close the connections (idempotent)."""
        clients, self._clients, self._in_use, self._gate = self._clients, [], [], None
        for client in clients:
            await client.aclose()

    def error(self, message: str) -> HttpError:
        """An `HttpError` prefixed with the endpoint name, secrets redacted."""
        return HttpError(self._redacted(message))

    def _redacted(self, message: str) -> str:
        return redact(f"{self.settings.where}: {message}", self.settings.secrets)

    async def retrying(
        self, what: str, attempt_once: Callable[[], Awaitable[T]], *, retries: int | None = None
    ) -> T:
        """Run `attempt_once` (under the concurrency gate) until it succeeds, retrying
        `RetryableError`, connect errors and broken connections with backoff; an `HttpError`
        propagates as is, any other HTTP failure becomes one.

        `what` names the call in errors (``POST http://.../chat/completions``); `retries`
        overrides the endpoint's setting (0 for quick probes such as health checks).

        Retries cover connect errors, 429 and 5xx and a connection that breaks mid-answer (a
        streamed answer then starts again: its pieces reach the caller a second time). The
        wait is the server's ``Retry-After`` when it sends one (a wait longer than
        ``max_retry_wait`` fails at once: better a clear error than an hour of silence), else
        exponential backoff with full jitter. A read timeout is *not* retried: the server got
        the request and is slow, and asking again would only double the wait.
        """
        import httpx

        self._ensure_clients()
        assert self._gate is not None
        s = self.settings
        attempts = (s.retries if retries is None else retries) + 1
        last = ""
        for attempt in range(attempts):
            retry_after: float | None = None
            try:
                async with self._gate:
                    return await attempt_once()
            except RetryableError as exc:
                last, retry_after = str(exc), exc.retry_after
            except httpx.ConnectTimeout:
                last = f"could not connect within {s.connect_timeout:g} s"
            except httpx.ConnectError as exc:
                last = f"cannot connect ({_reason(exc)})"
            except httpx.ReadTimeout as exc:
                raise self.error(
                    f"{what}: no answer within the read timeout of {s.read_timeout:g} s "
                    "(raise llms timeout.read for slow models)"
                ) from exc
            except httpx.TimeoutException as exc:
                raise self.error(f"{what}: timed out ({type(exc).__name__})") from exc
            except (httpx.RemoteProtocolError, httpx.NetworkError) as exc:
                # The server dropped the connection mid-answer (crash, restart, proxy, a
                # kept-alive connection closed under us): retry.
                last = f"the connection broke ({_reason(exc)})"
            except httpx.HTTPError as exc:
                raise self.error(f"{what}: {type(exc).__name__}: {_reason(exc)}") from exc
            if attempt + 1 == attempts:
                break
            if retry_after is not None:
                if retry_after > s.max_retry_wait:
                    raise self.error(
                        f"{what}: {last}; the server asks to retry after {retry_after:g} s, "
                        f"longer than max_retry_wait ({s.max_retry_wait:g} s)"
                    )
                delay = retry_after
            else:
                delay = backoff_delay(attempt, s.backoff, s.max_backoff)
            await self._sleep(delay)
        raise self.error(f"{what}: {last} (gave up after {plural(attempts, 'attempt')})")

    def check_status(self, what: str, response: httpx.Response, body: bytes) -> None:
        """Raise `RetryableError` for 429/5xx, `HttpStatusError` for other non-2xx statuses."""
        if response.is_success:
            return
        if response.is_redirect:
            target = strip_userinfo(response.headers.get("location", "?"))
            raise HttpStatusError(
                self._redacted(
                    f"{what}: HTTP {response.status_code}: the server redirects to {target}; "
                    "redirects are not followed (the key and the prompt would go along): set "
                    "base_url to the address that answers"
                ),
                response.status_code,
            )
        text = body.decode("utf-8", errors="replace").strip()[:_ERROR_BODY_CHARS]
        message = f"HTTP {response.status_code}" + (f": {text}" if text else "")
        if response.status_code >= 500 and _is_validation_error(text):
            # Some servers (llama-cpp-python) answer a request they cannot parse with 500 and a
            # pydantic "validation error": the request is at fault, as with a 422, and asking
            # again cannot help.
            raise HttpStatusError(self._redacted(f"{what}: {message}"), 422)
        if response.status_code in RETRYABLE_STATUS:
            wait = parse_retry_after(response.headers.get("retry-after"), self._clock())
            raise RetryableError(message, wait)
        raise HttpStatusError(self._redacted(f"{what}: {message}"), response.status_code)

    async def request_json(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None = None,
        *,
        retry: bool = True,
    ) -> Any:
        """Send a request and return the decoded JSON body; retries as `retrying` says."""
        url = self.settings.url(path)
        what = f"{method} {url}"

        async def once() -> Any:
            with self._lease() as client:
                response = await client.request(method, self._url(path), json=payload)
                body = await response.aread()
            self.check_status(what, response, body)
            try:
                return json.loads(body)
            except ValueError as exc:
                excerpt = body[:120].decode("utf-8", errors="replace")
                raise self.error(f"{what}: the answer is not JSON: {excerpt!r}") from exc

        return await self.retrying(what, once, retries=None if retry else 0)

    async def probe(self, path: str) -> int:
        """GET `path` once (no retries) and return the HTTP status; `HttpError` if
        unreachable."""
        url = self.settings.url(path)

        async def once() -> int:
            with self._lease() as client:
                response = await client.get(self._url(path))
                await response.aread()
            return response.status_code

        return await self.retrying(f"GET {url}", once, retries=0)

    async def post_json(self, path: str, payload: Mapping[str, Any]) -> Any:
        """POST `payload` to `path` (relative to base_url) and return the JSON answer."""
        return await self.request_json("POST", path, payload)

    async def get_json(self, path: str) -> Any:
        """GET `path` and return the JSON answer."""
        return await self.request_json("GET", path)

    @asynccontextmanager
    async def open_stream(
        self, path: str, payload: Mapping[str, Any]
    ) -> AsyncIterator[httpx.Response]:
        """POST and yield the open response with a 2xx status (body not read yet).

        Only the status is checked here; the caller reads the body and must itself wrap the
        whole exchange in `retrying` if it wants a broken stream retried (see
        `regions_cli.llm.openai`).
        """
        url = self.settings.url(path)
        with self._lease() as client:
            request = client.build_request("POST", self._url(path), json=payload)
            response = await client.send(request, stream=True)
            try:
                if not response.is_success:
                    body = await response.aread()
                    self.check_status(f"POST {url}", response, body)
                yield response
            finally:
                await response.aclose()


@functools.cache
def _tls_context(verify: bool) -> ssl.SSLContext:
    """One TLS context per process and setting: building one (loading the CA bundle) takes
    tens of ms, and every `httpx.AsyncClient` would otherwise build its own."""
    import httpx

    return httpx.create_ssl_context(verify=verify)


def _is_validation_error(body: str) -> bool:
    return "validation error" in body.lower()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if not text and exc.__cause__ is not None:
        text = str(exc.__cause__).strip()
    return text or type(exc).__name__
