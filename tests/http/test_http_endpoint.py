"""`HttpEndpoint` on `httpx.MockTransport`: retries, Retry-After, timeouts, malformed answers,
redirects and secrets, with the waits recorded instead of slept (milliseconds per test).

The same behaviour over real sockets is in tests/llm/test_openai_backend.py."""

from __future__ import annotations

import base64
import email.utils
from typing import Any

import httpx
import pytest
from played import Played, Waits, answer

from regions_cli.http import HttpEndpoint, HttpError, HttpSettings, HttpStatusError

URL = "http://mock.test/v1"
NOW = 1_800_000_000.0  # the endpoint's clock in these tests (a Unix time)
WAITS = Waits()  # the endpoint's sleep: each test sees only its own waits (`fresh_waits`)


def endpoint(played: Played, api_key: str | None = None, **options: Any) -> HttpEndpoint:
    settings = HttpSettings.from_options({"base_url": URL, **options}, api_key, where="llms.m")
    return HttpEndpoint(settings, transport=played.transport, sleep=WAITS, clock=lambda: NOW)


@pytest.fixture(autouse=True)
def fresh_waits() -> None:
    WAITS.seconds.clear()


async def post(played: Played, **options: Any) -> Any:
    ep = endpoint(played, **options)
    try:
        return await ep.post_json("/embeddings", {"input": ["zebra"]})
    finally:
        await ep.aclose()


async def failure(played: Played, **options: Any) -> str:
    with pytest.raises(HttpError) as err:
        await post(played, **options)
    message = str(err.value)
    assert "\n" not in message
    return message


# -- retries ------------------------------------------------------------------------------------


async def test_5xx_is_retried_with_growing_jittered_waits() -> None:
    played = Played([answer(500), answer(502), answer(503), answer(200, {"ok": 1})])
    assert await post(played, retry_backoff=0.5) == {"ok": 1}
    assert len(played.requests) == 4
    assert len(WAITS.seconds) == 3
    for attempt, wait in enumerate(WAITS.seconds):
        assert 0.0 <= wait <= 0.5 * 2**attempt


async def test_persistent_5xx_gives_up_after_the_retries() -> None:
    played = Played([answer(503, "busy")])
    message = await failure(played, retries=2)
    assert message == f"llms.m: POST {URL}/embeddings: HTTP 503: busy (gave up after 3 attempts)"
    assert len(played.requests) == 3 and len(WAITS.seconds) == 2


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        (httpx.ConnectError("Connection refused"), "cannot connect (Connection refused)"),
        (httpx.ConnectTimeout(""), "could not connect within 10 s"),
        (httpx.RemoteProtocolError("peer closed"), "the connection broke (peer closed)"),
        (httpx.ReadError("reset by peer"), "the connection broke (reset by peer)"),
    ],
)
async def test_connection_failures_are_retried(broken: httpx.TransportError, reason: str) -> None:
    assert await post(Played([broken, answer(200, {"ok": 1})])) == {"ok": 1}
    played = Played([broken])
    message = await failure(played, retries=1)
    assert message == f"llms.m: POST {URL}/embeddings: {reason} (gave up after 2 attempts)"
    assert len(played.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_a_4xx_is_not_retried(status: int) -> None:
    played = Played([answer(status, "no such model")])
    with pytest.raises(HttpStatusError) as err:
        await post(played)
    assert err.value.status == status
    assert str(err.value) == f"llms.m: POST {URL}/embeddings: HTTP {status}: no such model"
    assert len(played.requests) == 1 and WAITS.seconds == []


async def test_a_500_validation_error_is_the_requests_fault_not_retried() -> None:
    played = Played([answer(500, "1 validation error for Request: response_format")])
    with pytest.raises(HttpStatusError) as err:
        await post(played)
    assert err.value.status == 422 and len(played.requests) == 1


# -- 429 and Retry-After ------------------------------------------------------------------------


async def test_429_waits_the_seconds_of_retry_after() -> None:
    played = Played([answer(429, "slow down", **{"Retry-After": "7"}), answer(200, {"ok": 1})])
    assert await post(played) == {"ok": 1}
    assert WAITS.seconds == [7.0] and len(played.requests) == 2


async def test_429_waits_until_the_date_of_retry_after() -> None:
    when = email.utils.formatdate(NOW + 30, usegmt=True)
    played = Played([answer(429, **{"Retry-After": when}), answer(200, {"ok": 1})])
    assert await post(played) == {"ok": 1}
    assert WAITS.seconds == [30.0]


async def test_a_503_with_retry_after_is_honoured_too() -> None:
    played = Played([answer(503, **{"Retry-After": "2"}), answer(200, {"ok": 1})])
    assert await post(played) == {"ok": 1}
    assert WAITS.seconds == [2.0]


async def test_429_without_retry_after_backs_off() -> None:
    played = Played([answer(429), answer(200, {"ok": 1})])
    assert await post(played, retry_backoff=0.25) == {"ok": 1}
    (wait,) = WAITS.seconds
    assert 0.0 <= wait <= 0.25


async def test_a_retry_after_beyond_max_retry_wait_fails_at_once() -> None:
    played = Played([answer(429, "quota", **{"Retry-After": "3600"})])
    message = await failure(played, max_retry_wait=60)
    assert message == (
        f"llms.m: POST {URL}/embeddings: HTTP 429: quota; the server asks to retry after "
        "3600 s, longer than max_retry_wait (60 s)"
    )
    assert len(played.requests) == 1 and WAITS.seconds == []


# -- timeouts -----------------------------------------------------------------------------------


async def test_a_read_timeout_is_a_clear_error_and_not_asked_again() -> None:
    played = Played([httpx.ReadTimeout("")])
    message = await failure(played, timeout={"connect": 1, "read": 0.2})
    assert message == (
        f"llms.m: POST {URL}/embeddings: no answer within the read timeout of 0.2 s "
        "(raise llms timeout.read for slow models)"
    )
    assert len(played.requests) == 1


async def test_a_write_or_pool_timeout_is_named() -> None:
    message = await failure(Played([httpx.WriteTimeout("")]))
    assert message == f"llms.m: POST {URL}/embeddings: timed out (WriteTimeout)"


async def test_the_timeouts_reach_the_request() -> None:
    played = Played([answer(200, {})])
    await post(played, timeout={"connect": 3, "read": 40})
    timeouts = played.requests[0].extensions["timeout"]
    assert timeouts == {"connect": 3, "read": 40, "write": 40, "pool": None}


# -- malformed answers --------------------------------------------------------------------------


async def test_an_answer_that_is_not_json_is_a_one_line_error() -> None:
    played = Played([answer(200, b"<html>\n<body>Bad gateway</body>")])
    message = await failure(played)
    assert message == (
        f"llms.m: POST {URL}/embeddings: the answer is not JSON: "
        "'<html>\\n<body>Bad gateway</body>'"
    )
    assert len(played.requests) == 1  # a server that answers nonsense is not asked again


# -- credentials and redirects ------------------------------------------------------------------


async def test_the_key_goes_out_as_a_bearer_token_and_never_into_an_error() -> None:
    played = Played([answer(401, "invalid key sk-SECRET-1 for org")])
    message = await failure(played, api_key="sk-SECRET-1", headers={"X-Org": "acme"})
    assert message == f"llms.m: POST {URL}/embeddings: HTTP 401: invalid key *** for org"
    (request,) = played.requests
    assert request.headers["authorization"] == "Bearer sk-SECRET-1"
    assert request.headers["x-org"] == "acme"


async def test_userinfo_in_base_url_becomes_basic_auth_and_is_never_shown() -> None:
    played = Played([answer(500, "down")])
    ep = HttpEndpoint(
        HttpSettings.from_options(
            {"base_url": "http://ann:pa%40ss@mock.test/v1", "retries": 0}, None, where="llms.m"
        ),
        transport=played.transport,
        sleep=WAITS,
    )
    try:
        with pytest.raises(HttpError) as err:
            await ep.get_json("/models")
    finally:
        await ep.aclose()
    assert str(err.value) == f"llms.m: GET {URL}/models: HTTP 500: down (gave up after 1 attempt)"
    (request,) = played.requests
    assert request.url == httpx.URL(f"{URL}/models")  # no userinfo on the wire's URL
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"ann:pa@ss").decode()


async def test_a_redirect_is_not_followed() -> None:
    played = Played([answer(302, Location="http://eve:pw@elsewhere.test/v1/embeddings")])
    with pytest.raises(HttpStatusError) as err:
        await post(played)
    assert err.value.status == 302
    assert str(err.value) == (
        f"llms.m: POST {URL}/embeddings: HTTP 302: the server redirects to "
        "http://elsewhere.test/v1/embeddings; redirects are not followed (the key and the "
        "prompt would go along): set base_url to the address that answers"
    )
    assert len(played.requests) == 1


# -- probes, cookies, closing -------------------------------------------------------------------


async def test_probe_returns_the_status_and_never_retries() -> None:
    played = Played([answer(503)])
    ep = endpoint(played)
    try:
        assert await ep.probe("//health") == 503
    finally:
        await ep.aclose()
    assert [str(r.url) for r in played.requests] == ["http://mock.test/health"]


async def test_a_cookie_the_server_sets_goes_back() -> None:
    played = Played([answer(200, {}, **{"Set-Cookie": "lb=node-2; Path=/"}), answer(200, {})])
    ep = endpoint(played)
    try:
        await ep.get_json("/models")
        await ep.get_json("/models")
    finally:
        await ep.aclose()
    assert [r.headers.get("cookie") for r in played.requests] == [None, "lb=node-2"]


async def test_an_endpoint_works_again_after_aclose() -> None:
    played = Played([answer(200, {"n": 1})])
    ep = endpoint(played)
    assert await ep.get_json("/models") == {"n": 1}
    await ep.aclose()
    assert await ep.get_json("/models") == {"n": 1}
    await ep.aclose()
    await ep.aclose()  # idempotent
