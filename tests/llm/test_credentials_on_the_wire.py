"""Credentials stay with the server they are meant for, over real HTTP on loopback: a redirect
is not followed (the key and the prompt would go along), and a password in ``base_url`` never
shows in an error, a report or the run."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from openai_server import Fault, OpenAIServer, closed_port

from regions_cli.llm.base import ChatMessage, CompletionRequest, LLMError
from regions_cli.llm.openai import OpenAIModel
from regions_cli.model import LLMConfig

KEY = "sk-redirect-test-91f3"


def ask() -> CompletionRequest:
    return CompletionRequest((ChatMessage("user", "a secret prompt"),), max_tokens=5)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirect_is_not_followed(status: int) -> None:
    with OpenAIServer() as elsewhere, OpenAIServer() as server:
        server.faults.append(
            Fault(status=status, location=f"{elsewhere.base_url}/chat/completions")
        )
        model = OpenAIModel.from_config(
            LLMConfig(
                "m",
                "openai",
                {"base_url": server.base_url, "retries": 0, "headers": {"X-Api-Key": KEY}},
                api_key=KEY,
            )
        )
        try:
            with pytest.raises(LLMError) as err:
                await model.complete(ask())
        finally:
            await model.aclose()
        assert elsewhere.requests == []  # neither the key nor the prompt went there
        target = elsewhere.base_url
    message = str(err.value)
    assert f"HTTP {status}: the server redirects to {target}" in message
    assert "redirects are not followed" in message and KEY not in message


async def test_a_password_in_base_url_is_never_shown() -> None:
    port = closed_port()
    model = OpenAIModel.from_config(
        LLMConfig(
            "m", "openai", {"base_url": f"http://alice:pa55word@127.0.0.1:{port}/v1", "retries": 0}
        )
    )
    try:
        with pytest.raises(LLMError) as err:
            await model.complete(ask())
    finally:
        await model.aclose()
    assert "pa55word" not in str(err.value) and "alice" not in str(err.value)
    assert f"127.0.0.1:{port}" in str(err.value)


async def test_a_password_in_base_url_goes_as_basic_auth() -> None:
    with OpenAIServer() as server:
        url = server.base_url.replace("http://", "http://alice:pa55%20word@")
        model = OpenAIModel.from_config(LLMConfig("m", "openai", {"base_url": url}))
        try:
            await model.complete(ask())
        finally:
            await model.aclose()
        (request,) = server.generation_requests()
    expected = "Basic " + base64.b64encode(b"alice:pa55 word").decode()
    assert request.headers["authorization"] == expected


def test_llm_check_and_a_failed_run_show_no_password(tmp_path: Path) -> None:
    port = closed_port()
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(
        "version: 1\nname: t\nllms:\n  default:\n    backend: openai\n"
        f"    base_url: http://alice:${{PASS}}@127.0.0.1:{port}/v1\n    retries: 0\n"
        "regions: {A: {type: Region, task: Answer.}}\n"
        "inject: [{from: user, to: A, role: request, content: hi}]\n"
        "plan: [{chains: {a: [A.make_replies]}}]\n"
    )
    env = {"PASS": "pa55word", "PATH": "/usr/bin:/bin"}
    outputs = []
    for args in (
        ["llm", "check", str(workflow), "--json"],
        ["run", str(workflow), "--json", "--run", str(tmp_path / "r.db")],
        ["run", str(workflow), "--no-live", "--run", str(tmp_path / "r2.db")],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "regions_cli", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        assert done.returncode != 0
        outputs.append(done.stdout + done.stderr)
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("r*.db*"))
    assert all("pa55word" not in text and "alice:" not in text for text in outputs), outputs
    assert b"pa55word" not in stored
