"""``regions run --record`` then ``--replay``: the same messages with the same ids, no model."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from clirun import regions
from openai_server import OpenAIServer

WORKFLOW = """\
version: 1
name: rr
llms:
  default: {{backend: openai, base_url: '{url}', model: test-model}}
regions:
  Historian:
    type: Region
    task: Answer questions about history.
    connections: [Critic]
  Critic:
    type: Region
    task: Criticise answers.
    connections: [Historian]
inject:
  - {{from: user, to: Historian, role: request, content: "Who led the Zebras?"}}
plan:
  - chains: {{main: [Historian.make_questions]}}
  - chains: {{main: [Critic.make_replies]}}
  - chains: {{main: [Historian.summarize_replies, Historian.make_replies]}}
"""


def events(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def messages(output: str) -> list[tuple[str, str, str, str]]:
    return [
        (m["id"], m["source"], m["destination"], m["content"])
        for m in (e["message"] for e in events(output) if e["kind"] == "message")
    ]


def test_record_then_replay_gives_identical_message_ids(tmp_path: Path) -> None:
    counter = itertools.count(1)

    def reply(body: dict[str, Any]) -> str:
        n = next(counter)  # never the same answer twice: only a replay repeats a run
        if body.get("response_format"):
            return json.dumps([{"source": "Critic", "question": f"Question {n}?"}])
        return f"Answer number {n}."

    with OpenAIServer(reply=reply) as server:
        workflow = tmp_path / "rr.yaml"
        workflow.write_text(WORKFLOW.format(url=server.base_url))
        cassette = tmp_path / "rr.cassette.jsonl"
        recorded = regions(
            "run", str(workflow), "--json", "--record", str(cassette), in_process=True
        )
        assert recorded.code == 0, recorded.output
        calls = len(server.generation_requests())

        replayed = regions(
            "run", str(workflow), "--json", "--replay", str(cassette), in_process=True
        )
        assert replayed.code == 0, replayed.output
        assert len(server.generation_requests()) == calls  # the replay asked no model

        again = regions("run", str(workflow), "--json", in_process=True)
    assert calls >= 3
    assert messages(replayed.out) == messages(recorded.out)
    assert len(messages(recorded.out)) >= 4
    assert messages(again.out) != messages(recorded.out)  # a live re-run differs
    finished = [e for e in events(replayed.out) if e["kind"] == "run_finished"]
    recorded_finished = [e for e in events(recorded.out) if e["kind"] == "run_finished"]
    assert finished[0]["completion_tokens"] == recorded_finished[0]["completion_tokens"] > 0
