"""Shared HTTP plumbing for every OpenAI-compatible client (LLMs here, embedders in `rag/`).

One place decides how `regions` talks to a server:

- `HttpSettings.from_options` reads the keys every HTTP endpoint shares (``base_url``,
  ``headers``, ``timeout``, ``retries``, ``max_concurrency``, ``verify_tls``...) from an
  ``llms:``/``embedders:`` entry, with the documented defaults and one-line errors.
- `HttpEndpoint` owns the keep-alive `httpx.AsyncClient` pools (created lazily, so a model
  built but never called opens nothing), the concurrency semaphore and the retry loop:
  `HttpEndpoint.post_json` / `get_json` for plain calls, `HttpEndpoint.open_stream` inside
  `HttpEndpoint.retrying` for SSE (see `regions_cli.llm.openai`), `probe` for a status.
- Every failure ends in `LLMError` with the endpoint, the URL and the reason, secrets redacted
  (`redact`); never a hang: connect/read timeouts are always set and retries are bounded.

An embedder reuses it like this::

    settings = HttpSettings.from_options(config.options, config.api_key, where=f"embedders.{name}")
    endpoint = HttpEndpoint(settings)
    data = await endpoint.post_json("/embeddings", {"model": ..., "input": texts})
    ...
    await endpoint.aclose()

Retries cover connect errors, 429 and 5xx and a connection that breaks mid-answer (a
streamed answer then starts again: its pieces reach ``on_token`` a second time);
the wait is exponential backoff with full jitter, or the server's ``Retry-After`` when it sends
one (a wait longer than ``max_retry_wait`` fails at once: better a clear error than an hour of
silence). A read timeout is *not* retried: the server got the request and is slow, and asking
again would only double the wait.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from regions_cli.llm.base import LLMConfigError, LLMError
from regions_cli.text import plural

if TYPE_CHECKING:
    import http.cookiejar

    import httpx

T = TypeVar("T")

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 300.0
DEFAULT_RETRIES = 3
DEFAULT_MAX_CONCURRENCY = 8
DEFAULT_BACKOFF = 0.5  # seconds; the first retry waits up to this, then x2 each time
DEFAULT_MAX_BACKOFF = 30.0
DEFAULT_MAX_RETRY_WAIT = 60.0  # a Retry-After longer than this fails at once

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_ERROR_BODY_CHARS = 300


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret (`HttpSettings.secrets`: the key, credential headers)
    replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def strip_userinfo(url: str) -> str:
    """`url` without a ``user:password@`` part, for anything shown or stored."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def same_origin(a: str, b: str) -> bool:
    """Whether two URLs have the same scheme, host and port."""
    x, y = urlsplit(a), urlsplit(b)
    return (x.scheme.lower(), x.hostname, x.port) == (y.scheme.lower(), y.hostname, y.port)


def _number(value: Any, where: str, key: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise LLMConfigError(f"{where}: {key} must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def normalise_base_url(url: str, where: str) -> str:
    """``http://host:8080`` -> ``http://host:8080/v1``; a URL with a path is kept as written.

    The OpenAI convention is a base URL ending in ``/v1``; users of llama.cpp often write just
    ``host:port``, so a URL with no path gets ``/v1``. A URL without a scheme is an error (the
    original guessed, and turned ``https://api.example.com`` into host ``https``).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LLMConfigError(f"{where}: base_url must be an http(s) URL, got {url!r}")
    path = parts.path.rstrip("/")
    if not path:
        path = "/v1"
    return f"{parts.scheme}://{parts.netloc}{path}"


@dataclass(frozen=True)
class HttpSettings:
    """How to reach one HTTP endpoint. Built from a workflow entry by `from_options`."""

    base_url: str  # ends in /v1 (or whatever path the user gave); never a user:password@
    where: str = "llm"  # "llms.NAME": prefixes every error message
    # (user, password) given in the base URL: sent as HTTP Basic auth, never shown
    basic_auth: tuple[str, str] | None = field(default=None, repr=False)
    api_key: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    retries: int = DEFAULT_RETRIES
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    verify_tls: bool = True
    backoff: float = DEFAULT_BACKOFF
    max_backoff: float = DEFAULT_MAX_BACKOFF
    max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT

    @classmethod
    def from_options(
        cls, options: Mapping[str, Any], api_key: str | None, *, where: str
    ) -> HttpSettings:
        """Read the shared HTTP keys of an ``llms:`` or ``embedders:`` entry.

        ``timeout`` is a number (both connect and read) or ``{connect, read}``; ``retry_backoff``
        and ``max_retry_wait`` (seconds) tune the retry wait.
        """
        if "base_url" not in options or not options["base_url"]:
            raise LLMConfigError(
                f"{where}: the openai backend needs base_url (e.g. http://127.0.0.1:8080/v1)"
            )
        connect, read = DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT
        timeout = options.get("timeout")
        if isinstance(timeout, Mapping):
            connect = _number(timeout.get("connect", connect), where, "timeout.connect")
            read = _number(timeout.get("read", read), where, "timeout.read")
        elif timeout is not None:
            connect = read = _number(timeout, where, "timeout")
        if connect <= 0 or read <= 0:
            raise LLMConfigError(f"{where}: timeouts must be > 0 seconds")
        headers = options.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise LLMConfigError(f"{where}: headers must be a mapping of name: value")
        retries = options.get("retries", DEFAULT_RETRIES)
        concurrency = options.get("max_concurrency", DEFAULT_MAX_CONCURRENCY)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise LLMConfigError(f"{where}: retries must be an integer >= 0, got {retries!r}")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise LLMConfigError(
                f"{where}: max_concurrency must be an integer >= 1, got {concurrency!r}"
            )
        verify = options.get("verify_tls", True)
        if not isinstance(verify, bool):
            raise LLMConfigError(f"{where}: verify_tls must be true or false")
        base_url = normalise_base_url(str(options["base_url"]), where)
        parts = urlsplit(base_url)
        basic_auth = None
        if "@" in parts.netloc:
            basic_auth = (unquote(parts.username or ""), unquote(parts.password or ""))
        return cls(
            base_url=strip_userinfo(base_url),
            where=where,
            basic_auth=basic_auth,
            api_key=api_key or None,
            headers={str(k): str(v) for k, v in headers.items()},
            connect_timeout=connect,
            read_timeout=read,
            retries=retries,
            max_concurrency=concurrency,
            verify_tls=verify,
            backoff=_number(options.get("retry_backoff", DEFAULT_BACKOFF), where, "retry_backoff"),
            max_retry_wait=_number(
                options.get("max_retry_wait", DEFAULT_MAX_RETRY_WAIT), where, "max_retry_wait"
            ),
        )

    @property
    def server_root(self) -> str:
        """The base URL without a trailing ``/v1``: where llama.cpp serves /health, /tokenize."""
        return self.base_url.removesuffix("/v1")

    @property
    def secrets(self) -> tuple[str, ...]:
        """Strings that must never appear in an error or log: the key and every header value
        that looks like a credential."""
        values = [self.api_key or "", self.basic_auth[1] if self.basic_auth else ""]
        for name, value in self.headers.items():
            if any(w in name.lower() for w in ("key", "auth", "token", "secret", "cookie")):
                values.append(value)
        return tuple(v for v in values if v)

    def url(self, path: str) -> str:
        """An absolute URL: ``/chat/completions`` is under base_url, ``//health`` under the root.

        Paths starting with ``//`` address the server root (``//health`` -> ``http://h:p/health``).
        """
        if path.startswith("//"):
            return self.server_root + path[1:]
        return self.base_url + path


class RetryableError(Exception):
    """A failure worth another attempt (raised inside `HttpEndpoint.retrying` callbacks)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0.0, min(cap, base * (2**attempt)))


class HttpEndpoint:
    """One server: lazily created keep-alive clients, a concurrency gate and the retry loop.

    Safe to share between concurrent tasks of one event loop. `aclose` releases the
    connections; the next call opens new clients (so a model survives ``asyncio.run`` twice).

    Each connection has an `httpx.AsyncClient` of its own (`CONNECTIONS_PER_CLIENT`), and
    `_lease` hands a request the least busy one: httpcore's pool bookkeeping grows with the
    cube of its size per burst of requests (64 concurrent calls cost ~0.25-0.6 s of client CPU
    in one pool of 64, ~0.065 s in 16 pools of 4, ~0.055 s in 64 pools of 1). ``http://``
    endpoints connect through plain asyncio streams (`asyncio_transport`: ~15% less CPU again).
    """

    CONNECTIONS_PER_CLIENT = 1

    def __init__(self, settings: HttpSettings) -> None:
        self.settings = settings
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
        import http.cookiejar

        import httpx

        from regions_cli.llm.asyncio_transport import asyncio_transport

        s = self.settings
        headers = {"Accept": "application/json", **s.headers}
        if s.api_key:
            headers["Authorization"] = f"Bearer {s.api_key}"
        shards = -(-s.max_concurrency // self.CONNECTIONS_PER_CLIENT)  # ceiling division
        per_client = -(-s.max_concurrency // shards)
        tls = _tls_context(s.verify_tls)
        limits = httpx.Limits(max_connections=per_client, max_keepalive_connections=per_client)
        plain_http = s.base_url.startswith("http://")
        # One jar for all: a cookie set on one connection (a sticky session) counts on all.
        cookies = http.cookiejar.CookieJar()
        self._clients = [
            httpx.AsyncClient(
                headers=headers,
                # The gate bounds concurrency, so the pool never makes a request wait.
                timeout=httpx.Timeout(
                    connect=s.connect_timeout, read=s.read_timeout, write=s.read_timeout, pool=None
                ),
                limits=limits,
                verify=tls,
                transport=asyncio_transport(limits, tls) if plain_http else None,
                cookies=cookies,
                auth=s.basic_auth,
                # An API answers where it is asked: a redirect would carry the key and the
                # prompt to wherever it points (see `check_status`).
                follow_redirects=False,
            )
            for _ in range(shards)
        ]
        store = _cookie_store(cookies)
        for client in self._clients:
            # httpx copies a `Cookies` given to the constructor, so the shared store goes in
            # here (the jar stays shared either way).
            client._cookies = store
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

    def error(self, message: str) -> LLMError:
        """An `LLMError` prefixed with the endpoint name, secrets redacted."""
        return LLMError(redact(f"{self.settings.where}: {message}", self.settings.secrets))

    async def retrying(
        self, what: str, attempt_once: Callable[[], Awaitable[T]], *, retries: int | None = None
    ) -> T:
        """Run `attempt_once` (under the concurrency gate) until it succeeds, retrying
        `RetryableError`, connect errors and broken connections with backoff; an `LLMError`
        propagates as is, any other HTTP failure becomes one.

        `what` names the call in errors (``POST http://.../chat/completions``); `retries`
        overrides the endpoint's setting (0 for quick probes such as health checks).
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
            await asyncio.sleep(delay)
        raise self.error(f"{what}: {last} (gave up after {plural(attempts, 'attempt')})")

    def check_status(self, what: str, response: httpx.Response, body: bytes) -> None:
        """Raise `RetryableError` for 429/5xx, `LLMError` for other non-2xx statuses."""
        if response.is_success:
            return
        if response.is_redirect:
            target = strip_userinfo(response.headers.get("location", "?"))
            raise HttpStatusError(
                self.error(
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
            raise HttpStatusError(self.error(f"{what}: {message}"), 422)
        if response.status_code in RETRYABLE_STATUS:
            raise RetryableError(message, parse_retry_after(response.headers.get("retry-after")))
        raise HttpStatusError(self.error(f"{what}: {message}"), response.status_code)

    async def request_json(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None = None,
        *,
        retry: bool = True,
    ) -> Any:
        """Send a request and return the decoded JSON body; retries as documented above."""
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
        """GET `path` once (no retries) and return the HTTP status; `LLMError` if unreachable."""
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

        Only the status is checked here; the caller reads `aiter_lines` and must itself wrap the
        whole exchange in `retrying` if it wants a broken stream retried (see `openai.py`).
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


class HttpStatusError(LLMError):
    """A non-retryable HTTP error status (4xx); `status` lets callers react to e.g. 400/404."""

    def __init__(self, error: LLMError, status: int) -> None:
        super().__init__(str(error))
        self.status = status


@functools.cache
def _cookie_store_type() -> type[httpx.Cookies]:
    import httpx

    class SetCookieOnly(httpx.Cookies):
        """`httpx.Cookies` that skips its cookie parsing for an answer that sets none.

        httpx hands every response to `http.cookiejar` through urllib-style wrappers (about
        26 us an answer: 1.7 ms of a 64-call burst, spent on its busy tail while the last
        answers wait); a response without ``Set-Cookie``/``Set-Cookie2`` headers sets nothing.
        """

        def extract_cookies(self, response: httpx.Response) -> None:
            headers = response.headers
            if "set-cookie" in headers or "set-cookie2" in headers:
                super().extract_cookies(response)

    return SetCookieOnly


def _cookie_store(jar: http.cookiejar.CookieJar) -> httpx.Cookies:
    """The clients' shared cookie store over `jar`."""
    return _cookie_store_type()(jar)


@functools.cache
def _tls_context(verify: bool) -> ssl.SSLContext:
    """One TLS context per process and setting: building one (loading the CA bundle) costs
    ~40 ms, and every `httpx.AsyncClient` would otherwise build its own."""
    import httpx

    return httpx.create_ssl_context(verify=verify)


def _is_validation_error(body: str) -> bool:
    return "validation error" in body.lower()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    if not text and exc.__cause__ is not None:
        text = str(exc.__cause__).strip()
    return text or type(exc).__name__
