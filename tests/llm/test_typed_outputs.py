"""Typed outputs (``output_schema``) against real backends: structured output and the repair
call over HTTP on the loopback OpenAI-compatible server (recorded and replayed from a
cassette too), ``regions run`` failing with exit 3 when both answers are invalid, and the
embedded model's grammar giving a reply that validates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from clirun import regions
from openai_server import OpenAIServer
from test_local_backend import needs_model

from regions_cli.build import build_engine
from regions_cli.engine.contracts import Contract
from regions_cli.engine.events import EventBus, LLMCalled
from regions_cli.engine.executor import RunResult
from regions_cli.llm.factory import LLMOptions
from regions_cli.workflow.convert import build_workflow
from regions_cli.workflow.schema import schema_text

VERDICT = {
    "type": "object",
    "properties": {
        "verdict": {"enum": ["approve", "reject"]},
        "note": {"type": "string", "maxLength": 40},
    },
    "required": ["verdict", "note"],
    "additionalProperties": False,
}
GOOD = '{"verdict": "approve", "note": "clear"}'
BAD = '{"verdict": "maybe", "note": "unsure"}'
PROBLEM = "at verdict: 'maybe' is not one of ['approve', 'reject']"
STEP_ERROR = (
    f"the answer does not match regions.Critic.output_schema, even after one repair: {PROBLEM}"
)
REASON = f"Critic.make_replies: {STEP_ERROR}"


def critic_workflow(llm: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": 1,
        "name": "typed",
        "llms": {"default": llm},
        "regions": {
            "Critic": {"type": "Region", "task": "Judge the draft.", "output_schema": VERDICT}
        },
        "inject": [
            {"from": "user", "to": "Critic", "role": "request", "content": "Review my draft."}
        ],
        "plan": [{"chains": {"main": ["Critic.make_replies"]}}],
    }


def openai_llm(server: OpenAIServer) -> dict[str, Any]:
    return {"backend": "openai", "base_url": server.base_url, "model": "test-model", "retries": 0}


async def run(
    data: dict[str, Any], options: LLMOptions | None = None
) -> tuple[RunResult, list[Any]]:
    """Run the workflow `data`; its result and its LLMCalled events."""
    bus = EventBus()
    calls: list[LLMCalled] = []
    bus.subscribe(lambda e: calls.append(e) if isinstance(e, LLMCalled) else None)
    engine = build_engine(build_workflow(data), bus, options)
    try:
        return await engine.run(), calls
    finally:
        await engine.aclose()


def repaired_only(body: dict[str, Any]) -> str:
    """BAD to the first call, GOOD to the repair (its prompt holds the previous answer)."""
    return GOOD if "Your previous answer was" in body["messages"][-1]["content"] else BAD


def generations(server: OpenAIServer) -> list[dict[str, Any]]:
    return [r.body for r in server.requests if r.path == "/v1/chat/completions"]


# -- the OpenAI-compatible server --------------------------------------------------------------


async def test_the_request_asks_for_structured_output_with_the_schema() -> None:
    with OpenAIServer(reply=lambda body: GOOD) as server:
        result, calls = await run(critic_workflow(openai_llm(server)))
    assert result.ok, result.error
    assert [m.content for m in result.outputs] == [GOOD]
    [body] = generations(server)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "make_replies", "schema": VERDICT},
    }
    assert [c.purpose for c in calls] == ["make_replies"]


async def test_an_invalid_answer_is_repaired_over_http() -> None:
    with OpenAIServer(reply=repaired_only) as server:
        result, calls = await run(critic_workflow(openai_llm(server)))
    assert result.ok, result.error
    assert [m.content for m in result.outputs] == [GOOD]
    first, repair = generations(server)
    assert repair["response_format"]["json_schema"] == {"name": "repair", "schema": VERDICT}
    assert repair["messages"][0] == first["messages"][0]  # the same system prompt
    assert repair["messages"][-1]["content"].endswith(
        f"Your previous answer was:\n{BAD}\n\nIt is not valid: {PROBLEM}. "
        "Answer again with the corrected JSON document only."
    )
    assert [(c.purpose, c.answer, c.error) for c in calls] == [
        ("make_replies", BAD, None),
        ("repair", GOOD, None),
    ]


async def test_a_structured_output_server_that_falls_back_still_gets_validated() -> None:
    """A server that refuses ``json_schema`` (400) gets ``json_object``; the answer, fenced
    as such servers like to, is still validated and repaired."""
    fenced = f"```json\n{BAD}\n```"
    with OpenAIServer(
        reply=lambda body: fenced if "previous answer" not in str(body["messages"]) else GOOD,
        reject=frozenset({"json_schema"}),
    ) as server:
        result, calls = await run(critic_workflow(openai_llm(server)))
    assert result.ok, result.error
    assert [m.content for m in result.outputs] == [GOOD]
    styles = [b.get("response_format", {}).get("type") for b in generations(server)]
    assert styles == ["json_schema", "json_object", "json_object"]
    assert [c.purpose for c in calls] == ["make_replies", "repair"]


async def test_a_repaired_run_replays_from_its_cassette(tmp_path: Path) -> None:
    """Both calls are in the cassette, keyed with the schema; the replay needs no server."""
    cassette = tmp_path / "typed.cassette.jsonl"
    with OpenAIServer(reply=repaired_only) as server:
        data = critic_workflow(openai_llm(server))
        recorded, _ = await run(data, LLMOptions(record=cassette))
    lines = [json.loads(line) for line in cassette.read_text().splitlines()[1:]]
    assert [line["request"]["json_schema"] for line in lines] == [VERDICT, VERDICT]
    replayed, calls = await run(data, LLMOptions(replay=cassette))
    assert replayed.ok, replayed.error
    assert [m.content for m in replayed.outputs] == [m.content for m in recorded.outputs] == [GOOD]
    assert [c.purpose for c in calls] == ["make_replies", "repair"]


SCHEMA_HAS_TYPED_KEYS = "output_schema" in schema_text()

CLI_WORKFLOW = """\
version: 1
name: typed
llms:
  default: {{backend: openai, base_url: '{url}', model: test-model, retries: 0}}
regions:
  Critic:
    type: Region
    task: Judge the draft.
    output_schema: {schema}
inject:
  - {{from: user, to: Critic, role: request, content: "Review my draft."}}
plan:
  - chains: {{main: [Critic.make_replies]}}
"""


@pytest.mark.skipif(
    not SCHEMA_HAS_TYPED_KEYS, reason="needs the schema keys (output_schema) from cf-verify"
)
def test_regions_run_fails_with_exit_3_when_the_repair_is_invalid_too(tmp_path: Path) -> None:
    with OpenAIServer(reply=lambda body: BAD) as server:
        path = tmp_path / "typed.yaml"
        path.write_text(CLI_WORKFLOW.format(url=server.base_url, schema=json.dumps(VERDICT)))
        code, out, err = regions("run", path, "--run", tmp_path / "typed.db")
    assert code == 3, (out, err)
    assert "step layer-0/main#1 Critic.make_replies failed" in out
    assert f"Critic.make_replies (failed): {STEP_ERROR}\n" in out  # the summary's line
    assert [b["response_format"]["json_schema"]["name"] for b in generations(server)] == [
        "make_replies",
        "repair",
    ]


async def test_a_run_fails_with_exit_3_when_the_repair_is_invalid_too() -> None:
    """The same as the CLI test above, through the engine (until the schema has the key)."""
    with OpenAIServer(reply=lambda body: BAD) as server:
        result, calls = await run(critic_workflow(openai_llm(server)))
    assert (result.status, result.exit_code, result.error) == ("failed", 3, REASON)
    assert result.outputs == []
    assert [c.purpose for c in calls] == ["make_replies", "repair"]


# -- the embedded model --------------------------------------------------------------------------


@pytest.mark.local_model
@needs_model
async def test_the_embedded_model_replies_with_a_document_that_validates() -> None:
    """SmolLM2-135M under llama.cpp's grammar: the reply is the JSON document, first time (no
    repair needed: the grammar only allows what the schema allows)."""
    llm = {"backend": "local", "params": {"max_tokens": 48, "temperature": 0}, "seed": 1}
    result, calls = await run(critic_workflow(llm))
    assert result.ok, result.error
    [reply] = result.outputs
    assert Contract(VERDICT, "here").problem(reply.content) is None
    assert json.loads(reply.content)["verdict"] in ("approve", "reject")
    assert [c.purpose for c in calls] == ["make_replies"]
    assert calls[0].completion_tokens <= 48
