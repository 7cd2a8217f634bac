"""What the HTTP layer raises. Callers say it in their own words: the LLM backend turns an
`HttpError` into an `LLMError`, the embedder into a `RagError` (same message)."""

from __future__ import annotations


class HttpError(Exception):
    """A call failed for good (after the retries). The message starts with the endpoint's
    name (``llms.NAME: ``), names the request and the reason, secrets redacted."""


class HttpConfigError(HttpError, ValueError):
    """The settings of an endpoint are wrong (a bad ``base_url``, timeout, retries...)."""


class HttpStatusError(HttpError):
    """A status that asking again cannot fix (4xx, a redirect); `status` lets callers react,
    e.g. fall back to a simpler request on 400/422."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class RetryableError(Exception):
    """A failure worth another attempt, raised inside `HttpEndpoint.retrying` callbacks (a 429
    or 5xx status, a stream cut short). `retry_after` is the server's wish, in seconds."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
