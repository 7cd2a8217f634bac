"""How to reach one HTTP endpoint: `HttpSettings`, read from a workflow entry, and the URL
helpers every part that shows or compares an address uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from regions_cli.http.errors import HttpConfigError

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 300.0
DEFAULT_RETRIES = 3
DEFAULT_MAX_CONCURRENCY = 8
DEFAULT_BACKOFF = 0.5  # seconds; the first retry waits up to this, then x2 each time
DEFAULT_MAX_BACKOFF = 30.0
DEFAULT_MAX_RETRY_WAIT = 60.0  # a Retry-After longer than this fails at once


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
        raise HttpConfigError(f"{where}: {key} must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def normalise_base_url(url: str, where: str) -> str:
    """``http://host:8080`` -> ``http://host:8080/v1``; a URL with a path is kept as written.

    The OpenAI convention is a base URL ending in ``/v1``; users of llama.cpp often write just
    ``host:port``, so a URL with no path gets ``/v1``. A URL without a scheme is an error (the
    original guessed, and turned ``https://api.example.com`` into host ``https``).
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise HttpConfigError(f"{where}: base_url must be an http(s) URL, got {url!r}")
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
            raise HttpConfigError(
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
            raise HttpConfigError(f"{where}: timeouts must be > 0 seconds")
        headers = options.get("headers") or {}
        if not isinstance(headers, Mapping):
            raise HttpConfigError(f"{where}: headers must be a mapping of name: value")
        retries = options.get("retries", DEFAULT_RETRIES)
        concurrency = options.get("max_concurrency", DEFAULT_MAX_CONCURRENCY)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise HttpConfigError(f"{where}: retries must be an integer >= 0, got {retries!r}")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise HttpConfigError(
                f"{where}: max_concurrency must be an integer >= 1, got {concurrency!r}"
            )
        verify = options.get("verify_tls", True)
        if not isinstance(verify, bool):
            raise HttpConfigError(f"{where}: verify_tls must be true or false")
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
