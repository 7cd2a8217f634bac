"""The HTTP layer every OpenAI-compatible client shares (the ``openai`` LLM backend in
`regions_cli.llm.openai`, the ``openai`` embedder in `regions_cli.rag.embedders`).

One place decides how `regions` talks to a server:

- `HttpSettings.from_options` reads the keys every HTTP endpoint shares (``base_url``,
  ``headers``, ``timeout``, ``retries``, ``max_concurrency``, ``verify_tls``...) from an
  ``llms:``/``embedders:`` entry, with the documented defaults and one-line errors.
- `HttpEndpoint` owns the keep-alive `httpx.AsyncClient` connections (opened lazily, so a
  model built but never called opens nothing), the concurrency gate and the retry loop:
  `HttpEndpoint.post_json` / `get_json` for plain calls, `HttpEndpoint.open_stream` inside
  `HttpEndpoint.retrying` for SSE, `probe` for a status.
- Every failure ends in `HttpError` with the endpoint, the URL and the reason, secrets
  redacted (`redact`); never a hang: connect/read timeouts are always set and retries are
  bounded (`retry`: ``Retry-After`` or backoff).

An embedder uses it like this::

    settings = HttpSettings.from_options(options, api_key, where=f"embedders.{name}")
    endpoint = HttpEndpoint(settings)
    data = await endpoint.post_json("/embeddings", {"model": ..., "input": texts})
    ...
    await endpoint.aclose()

Like `httpx.AsyncClient`, the endpoint takes a ``transport=``: tests pass an
`httpx.MockTransport` to play a server in the same process.
"""

from regions_cli.http.endpoint import HttpEndpoint
from regions_cli.http.errors import HttpConfigError, HttpError, HttpStatusError, RetryableError
from regions_cli.http.retry import backoff_delay, parse_retry_after
from regions_cli.http.settings import (
    HttpSettings,
    normalise_base_url,
    redact,
    same_origin,
    strip_userinfo,
)

__all__ = [
    "HttpConfigError",
    "HttpEndpoint",
    "HttpError",
    "HttpSettings",
    "HttpStatusError",
    "RetryableError",
    "backoff_delay",
    "normalise_base_url",
    "parse_retry_after",
    "redact",
    "same_origin",
    "strip_userinfo",
]
