"""The HTTP layer's users on `httpx.MockTransport`: the ``openai`` LLM backend and embedder
turn malformed answers and HTTP failures into their own one-line errors (`LLMError`,
`RagError`), with the message the HTTP layer wrote.

The same backends against real loopback servers: tests/llm/test_openai_backend.py and
tests/rag/test_embedders.py."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from played import Played, answer, sse

from regions_cli.http import HttpError
from regions_cli.llm.base import ChatMessage, CompletionRequest, LLMConfigError, LLMError
from regions_cli.llm.openai import OpenAIModel
from regions_cli.model import LLMConfig
from regions_cli.rag.base import RagError
from regions_cli.rag.embedders import OpenAIEmbedder

URL = "http://mock.test/v1"
CHAT = f"POST {URL}/chat/completions"
REQUEST = CompletionRequest((ChatMessage("user", "Who led the Zebras?"),))


def chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"delta": {"content": text}, "finish_reason": finish}]}


def model(played: Played, **options: Any) -> OpenAIModel:
    options = {"base_url": URL, "retry_backoff": 0, **options}
    return OpenAIModel.from_config(LLMConfig("m", "openai", options), transport=played.transport)


async def complete(played: Played, **options: Any) -> str:
    llm = model(played, **options)
    try:
        return (await llm.complete(REQUEST)).text
    finally:
        await llm.aclose()


async def llm_failure(played: Played, **options: Any) -> str:
    with pytest.raises(LLMError) as err:
        await complete(played, **options)
    assert not isinstance(err.value, HttpError)  # said in the backend's words
    message = str(err.value)
    assert "\n" not in message
    return message


# -- the openai LLM backend ---------------------------------------------------------------------


async def test_a_whole_answer_and_a_streamed_one() -> None:
    whole = answer(200, {"choices": [{"message": {"content": "Z."}}], "model": "x"})
    assert await complete(Played([whole]), stream=False) == "Z."
    played = Played([sse(chunk("Z"), chunk(".", "stop"), "[DONE]")])
    assert await complete(played) == "Z."
    assert played.bodies()[0]["stream"] is True


@pytest.mark.parametrize(
    "body",
    [{"choices": []}, {"choices": [{"message": "no fields"}]}, {"error": "overloaded"}, [1, 2]],
)
async def test_an_answer_missing_its_fields_is_a_one_line_error(body: Any) -> None:
    message = await llm_failure(Played([answer(200, body)]), stream=False)
    assert message == f"llms.m: {CHAT}: unexpected answer shape: {json.dumps(body)}"


async def test_an_answer_that_is_not_json_is_a_one_line_error() -> None:
    message = await llm_failure(Played([answer(200, b'{"choices": [oops')]), stream=False)
    assert message == f"llms.m: {CHAT}: the answer is not JSON: '{{\"choices\": [oops'"


async def test_a_stream_event_that_is_not_json_is_a_one_line_error() -> None:
    played = Played([sse(chunk("Z"), "{oops", "[DONE]")])
    message = await llm_failure(played)
    assert message == f"llms.m: {CHAT} (stream): a stream event is not JSON: '{{oops'"
    assert len(played.requests) == 1


async def test_an_error_event_in_the_stream_is_reported() -> None:
    message = await llm_failure(Played([sse({"error": {"message": "out of memory"}})]))
    assert (
        message == f'llms.m: {CHAT} (stream): the server reported: {{"message": "out of memory"}}'
    )


async def test_an_unstreamed_answer_to_a_stream_request_that_is_not_json() -> None:
    not_json = answer(200, b"{oops", **{"content-type": "application/json"})
    message = await llm_failure(Played([not_json]))
    assert message == f"llms.m: {CHAT} (stream): the answer is not JSON"


async def test_a_stream_cut_short_is_asked_again_then_given_up() -> None:
    cut = sse(chunk("Z"), chunk("e"))  # no finish_reason, no [DONE]
    played = Played([cut, sse(chunk("Z."), "[DONE]")])
    assert await complete(played) == "Z."
    assert len(played.requests) == 2
    message = await llm_failure(Played([cut]), retries=1)
    assert message == (
        f"llms.m: {CHAT} (stream): the stream ended early, after 2 pieces (gave up after 2 "
        "attempts)"
    )


@pytest.mark.parametrize("stream", [True, False])
async def test_a_5xx_is_retried_and_a_lasting_one_is_an_llm_error(stream: bool) -> None:
    good = sse(chunk("Z.", "stop")) if stream else answer(200, {"choices": [{"message": {}}]})
    played = Played([answer(502), good])
    assert await complete(played, stream=stream) == ("Z." if stream else "")
    assert len(played.requests) == 2
    message = await llm_failure(Played([answer(500, "boom")]), stream=stream, retries=0)
    what = f"{CHAT} (stream)" if stream else CHAT
    assert message == f"llms.m: {what}: HTTP 500: boom (gave up after 1 attempt)"


async def test_a_rejected_schema_request_falls_back_on_the_status() -> None:
    played = Played([answer(400, "unknown response_format"), sse(chunk("[]", "stop"))])
    llm = model(played)
    try:
        request = CompletionRequest(REQUEST.messages, json_schema={"type": "array"})
        assert (await llm.complete(request)).text == "[]"
    finally:
        await llm.aclose()
    kinds = [body["response_format"]["type"] for body in played.bodies()]
    assert kinds == ["json_schema", "json_object"]


async def test_probes_speak_the_backends_errors() -> None:
    llm = model(Played([answer(200, {"no": "tokens"})]))
    try:
        with pytest.raises(LLMError, match=r"^llms.m: tokenize: unexpected answer: "):
            await llm.count_tokens("a b")
        assert await llm.list_models() == []
    finally:
        await llm.aclose()
    llm = model(Played([answer(404), answer(401, "bad key")]))
    try:
        ok, detail = await llm.health()
    finally:
        await llm.aclose()
    assert not ok and detail == f"llms.m: GET {URL}/models: HTTP 401: bad key"


def test_bad_settings_are_config_errors() -> None:
    with pytest.raises(LLMConfigError, match=r"^llms.m: retries must be an integer >= 0"):
        model(Played([answer()]), retries=-1)


# -- the openai embedder ------------------------------------------------------------------------


def embedder(played: Played, **options: Any) -> OpenAIEmbedder:
    options = {"base_url": URL, "model": "e5", "retry_backoff": 0, **options}
    return OpenAIEmbedder.from_options(
        options, None, where="embedders.e", transport=played.transport
    )


def rag_failure(played: Played, texts: list[str], **options: Any) -> str:
    with pytest.raises(RagError) as err:
        embedder(played, **options).embed_documents(texts)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_the_embedder_reads_vectors_in_index_order() -> None:
    data = [{"index": 1, "embedding": [0.0, 2.0]}, {"index": 0, "embedding": [3.0, 0.0]}]
    played = Played([answer(503, **{"Retry-After": "0"}), answer(200, {"data": data})])
    vectors = embedder(played).embed_documents(["a", "b"])
    assert np.allclose(vectors, [[1.0, 0.0], [0.0, 1.0]])
    assert len(played.requests) == 2 and played.bodies()[1] == {"model": "e5", "input": ["a", "b"]}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"object": "list"}, "not an embeddings answer (KeyError: 'data')"),
        ({"data": [{"index": 0}]}, "not an embeddings answer (KeyError: 'embedding')"),
        ({"data": [{"embedding": [1.0]}]}, "asked for 2 embeddings, got 1"),
    ],
)
def test_an_embeddings_answer_missing_its_fields_is_a_one_line_error(
    body: Any, reason: str
) -> None:
    message = rag_failure(Played([answer(200, body)]), ["a", "b"])
    assert message == f"embedders.e: POST {URL}/embeddings: {reason}"


def test_an_embeddings_answer_that_is_not_json_is_a_one_line_error() -> None:
    message = rag_failure(Played([answer(200, b"Service Unavailable")]), ["a"])
    assert message == f"embedders.e: POST {URL}/embeddings: the answer is not JSON: " + (
        "'Service Unavailable'"
    )


def test_the_embedder_gives_up_in_its_own_words() -> None:
    message = rag_failure(Played([answer(500, "down")]), ["a"], retries=1)
    assert (
        message == f"embedders.e: POST {URL}/embeddings: HTTP 500: down (gave up after 2 attempts)"
    )


def test_the_embedders_bad_settings_are_rag_errors() -> None:
    with pytest.raises(RagError, match=r"^embedders.e: timeouts must be > 0 seconds$"):
        embedder(Played([answer()]), timeout=0)
