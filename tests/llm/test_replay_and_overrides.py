"""Cassettes (record -> replay round trip, loud misses) and ``--llm NAME=...`` overrides."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai_server import Fault, OpenAIServer

from regions_cli.llm.base import ChatMessage, Completion, CompletionRequest, LLMError
from regions_cli.llm.factory import LLMOptions, LLMOverrideError, apply_llm_overrides, make_llm
from regions_cli.llm.replay import RecordingModel, ReplayModel, request_key
from regions_cli.model import LLMConfig
from regions_cli.workflow.convert import build_workflow

SCHEMA = {"type": "array", "items": {"type": "string"}}


def ask(text: str, **kw: Any) -> CompletionRequest:
    return CompletionRequest((ChatMessage("system", "Be brief."), ChatMessage("user", text)), **kw)


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    counter = itertools.count(1)
    # A model that never answers the same way twice: replay must return what was recorded.
    with OpenAIServer(reply=lambda body: f"answer {next(counter)}") as s:
        yield s


def openai_config(server: OpenAIServer, name: str = "default") -> LLMConfig:
    return LLMConfig(
        name, "openai", {"base_url": server.base_url, "model": "m"}, api_key="sk-do-not-leak"
    )


async def record(server: OpenAIServer, cassette: Path) -> list[Completion]:
    model = make_llm(openai_config(server), LLMOptions(record=cassette))
    assert isinstance(model, RecordingModel)
    try:
        return [
            await model.complete(ask("one")),
            await model.complete(ask("two", json_schema=SCHEMA, purpose="make_questions")),
            await model.complete(ask("one")),  # the same request again: a second answer
            await model.complete(ask("three", max_tokens=5)),
        ]
    finally:
        await model.aclose()


async def test_record_then_replay_gives_identical_completions(
    server: OpenAIServer, tmp_path: Path
) -> None:
    cassette = tmp_path / "run.cassette.jsonl"
    recorded = await record(server, cassette)
    assert [c.text for c in recorded] == ["answer 1", "answer 2", "answer 3", "answer 4"]

    replay = make_llm(openai_config(server), LLMOptions(replay=cassette))
    assert isinstance(replay, ReplayModel) and replay.size == 4
    streamed: list[str] = []
    replayed = [
        await replay.complete(ask("one"), streamed.append),
        await replay.complete(ask("two", json_schema=SCHEMA, purpose="make_questions")),
        await replay.complete(ask("one")),
        await replay.complete(ask("three", max_tokens=5)),
        await replay.complete(ask("one")),  # more often than recorded: the last answer again
    ]
    assert replayed[:4] == recorded
    assert replayed[4] == recorded[2]
    assert streamed == ["answer 1"]
    assert len(server.generation_requests()) == 4  # replay never touched the server


async def test_a_failed_call_replays_as_the_same_failure(
    server: OpenAIServer, tmp_path: Path
) -> None:
    cassette = tmp_path / "c.jsonl"
    server.faults.append(Fault(status=404, message="no such model"))
    model = make_llm(openai_config(server), LLMOptions(record=cassette))
    try:
        with pytest.raises(LLMError) as recorded:
            await model.complete(ask("one"))
        ok = await model.complete(ask("one"))  # asked again, it works
    finally:
        await model.aclose()
    replay = ReplayModel("default", cassette)
    with pytest.raises(LLMError) as replayed:
        await replay.complete(ask("one"))
    assert str(replayed.value) == str(recorded.value) and "HTTP 404" in str(recorded.value)
    assert await replay.complete(ask("one")) == ok


async def test_cassette_holds_no_secret_or_url(server: OpenAIServer, tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    await record(server, cassette)
    text = cassette.read_text()
    assert "sk-do-not-leak" not in text and server.base_url not in text
    header, first, *_ = (json.loads(line) for line in text.splitlines())
    assert header["cassette"] == 2
    assert first["key"] == request_key("default", ask("one"))
    assert first["request"]["messages"] == [["system", "Be brief."], ["user", "one"]]
    assert first["response"]["usage"]["completion_tokens"] == 2


async def test_a_missing_request_fails_loudly_with_the_closest(
    server: OpenAIServer, tmp_path: Path
) -> None:
    cassette = tmp_path / "c.jsonl"
    await record(server, cassette)
    replay = ReplayModel("default", cassette)
    with pytest.raises(LLMError) as err:
        await replay.complete(ask("thre", max_tokens=6, purpose="make_replies"))
    message = str(err.value)
    assert message.startswith("llms.default: this make_replies is not in the cassette")
    assert "max_tokens: recorded 5, now 6" in message
    assert "-three" in message and "+thre" in message


async def test_replay_keys_on_the_llm_name(server: OpenAIServer, tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    await record(server, cassette)
    other = ReplayModel("critic", cassette)
    assert other.size == 0
    with pytest.raises(LLMError, match="llm: recorded 'default', now 'critic'"):
        await other.complete(ask("one"))


async def test_two_llms_share_one_cassette(server: OpenAIServer, tmp_path: Path) -> None:
    cassette = tmp_path / "shared.jsonl"
    cassette.write_text("stale content from an earlier run\n")
    options = LLMOptions(record=cassette)
    a = make_llm(openai_config(server, "a"), options)
    b = make_llm(openai_config(server, "b"), options)
    try:
        ra = await a.complete(ask("same prompt"))
        rb = await b.complete(ask("same prompt"))
    finally:
        await a.aclose()
        await b.aclose()
    assert "stale" not in cassette.read_text()  # a new recording starts the file afresh
    assert await ReplayModel("a", cassette).complete(ask("same prompt")) == ra
    assert await ReplayModel("b", cassette).complete(ask("same prompt")) == rb


async def test_replay_backend_resolves_the_cassette_against_the_workflow(
    server: OpenAIServer, tmp_path: Path
) -> None:
    await record(server, tmp_path / "runs" / "c.jsonl")
    config = LLMConfig("default", "replay", {"cassette": "runs/c.jsonl"})
    model = make_llm(config, LLMOptions(base_dir=tmp_path))
    assert (await model.complete(ask("two", json_schema=SCHEMA))).text == "answer 2"


def test_bad_cassettes_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match=r"does not exist \(write one with `regions run --record"):
        ReplayModel("default", tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"cassette": 1}\n{"key": "x"}\n')
    with pytest.raises(LLMError, match=r"bad.jsonl:2: not a cassette entry \(missing 'request'\)"):
        ReplayModel("default", bad)
    future = tmp_path / "future.jsonl"
    future.write_text('{"cassette": 99}\n')
    with pytest.raises(LLMError, match="unsupported cassette version 99"):
        ReplayModel("default", future)
    with pytest.raises(ValueError, match="needs `cassette: FILE`"):
        make_llm(LLMConfig("default", "replay", {}))


# -- overrides ---------------------------------------------------------------------------------


def workflow(llms: dict[str, Any] | None = None) -> Any:
    data: dict[str, Any] = {
        "version": 1,
        "name": "t",
        "regions": {"A": {"type": "Region", "task": "t"}},
        "plan": [{"chains": {"main": ["A.make_replies"]}}],
    }
    if llms is not None:
        data["llms"] = llms
    return build_workflow(data)


def test_url_override_turns_an_entry_into_openai() -> None:
    wf = workflow(
        {
            "big": {
                "backend": "openai",
                "base_url": "http://a/v1",
                "model": "m",
                "api_key": "k",
                "params": {"temperature": 0},
            },
            "small": {"backend": "local", "n_ctx": 512, "params": {"top_k": 5}},
        }
    )
    out = apply_llm_overrides(wf, ["big=http://a/v2", "small=https://h.example/v1"])
    big, small = out.llms["big"], out.llms["small"]
    assert big.backend == "openai" and big.options["base_url"] == "http://a/v2"
    assert big.options["model"] == "m" and big.api_key == "k"  # the rest of the entry stays
    assert small.backend == "openai" and dict(small.options) == {
        "base_url": "https://h.example/v1",
        "params": {"top_k": 5},
    }
    assert small.api_key is None
    assert wf.llms["big"].options["base_url"] == "http://a/v1"  # the input is not modified


def test_url_override_to_another_server_drops_the_credentials_unless_kept() -> None:
    entry = {
        "backend": "openai",
        "base_url": "https://api.example.org/v1",
        "model": "m",
        "api_key": "sk-keep-out",
        "headers": {"X-Api-Key": "sk-keep-out"},
    }
    wf = workflow({"big": entry})
    for url in (
        "http://127.0.0.1:9/v1",
        "https://api.example.org:8443/v1",
        "http://api.example.org/v1",
    ):
        moved = apply_llm_overrides(wf, [f"big={url}"]).llms["big"]
        assert moved.api_key is None and "headers" not in moved.options, url
        assert moved.options["model"] == "m"
    kept = apply_llm_overrides(wf, ["big=http://127.0.0.1:9/v1"], keep_credentials=True)
    assert kept.llms["big"].api_key == "sk-keep-out"
    assert kept.llms["big"].options["headers"] == {"X-Api-Key": "sk-keep-out"}


def test_named_backend_overrides() -> None:
    wf = workflow()  # the implied local default
    assert apply_llm_overrides(wf, ["default=scripted"]).llms["default"].backend == "scripted"
    local = apply_llm_overrides(workflow({"default": {"backend": "scripted"}}), ["default=local"])
    assert local.llms["default"].backend == "local"
    replay = apply_llm_overrides(wf, ["default=replay:runs/c.jsonl"]).llms["default"]
    assert replay.backend == "replay" and replay.options["cassette"] == "runs/c.jsonl"
    assert apply_llm_overrides(wf, []) == wf


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("default", "expected NAME=URL"),
        ("=http://h", "expected NAME=URL"),
        ("nope=local", "the workflow has no llm 'nope' (its llms: default)"),
        ("default=ftp://h", "is not an http(s) URL, local, scripted or replay:FILE"),
        ("default=replay:", "is not an http(s) URL"),
    ],
)
def test_bad_overrides_are_one_line_usage_errors(override: str, message: str) -> None:
    with pytest.raises(LLMOverrideError, match=message.replace("(", r"\(").replace(")", r"\)")):
        apply_llm_overrides(workflow(), [override])
