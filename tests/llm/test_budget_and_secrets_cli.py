"""``regions run`` as a user starts it (a real process) against the loopback OpenAI server.

- Budgets: the server's token usage reaches every place the issue names (per call, per
  region and per run in the JSON events, the run file and ``regions show``); a ``budget:``
  limit stops the run at the next layer barrier with exit code 4, one clear message, and
  what was done before is kept.
- Secrets: an API key taken from the environment reaches the server, and no output stream
  or file of the run (events, plain output, errors, cassette, run file) ever contains it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from openai_server import OpenAIServer

from regions_cli.runs.store import RunFile

KEY_VARIABLE = "REGIONS_AUDIT_TEST_KEY"

WORKFLOW = """\
version: 1
name: spend
llms:
  default:
    backend: openai
    base_url: '{url}'
    model: test-model
    api_key: ${{{key_variable}}}
    retries: 0
{budget}
regions:
  Talker:
    type: Region
    task: Talk about anything you are asked.
inject:
  - {{from: user, to: Talker, role: request, content: "Tell me about zebras."}}
  - {{from: user, to: Talker, role: request, content: "Tell me about okapis."}}
plan:
  - {{layer: one, chains: {{main: [Talker.make_replies]}}}}
  - {{layer: two, chains: {{main: [Talker.make_replies]}}}}
  - {{layer: three, chains: {{main: [Talker.make_replies]}}}}
"""


def write_workflow(tmp_path: Path, server: OpenAIServer, budget: str = "") -> Path:
    path = tmp_path / "spend.yaml"
    text = WORKFLOW.format(url=server.base_url, key_variable=KEY_VARIABLE, budget=budget)
    path.write_text(text)
    return path


def regions(*args: str, key: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, KEY_VARIABLE: key}
    return subprocess.run(
        [sys.executable, "-m", "regions_cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


# -- budgets -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("budget", "reason"),
    [
        ("budget: {max_tokens: 5}", "the run used {tokens} tokens (budget.max_tokens: 5)"),
        (
            "budget: {per_region: {max_tokens: 5}}",
            "region Talker used {tokens} tokens (budget.per_region.max_tokens: 5)",
        ),
        ("budget: {max_calls: 1}", "the run made 2 model calls (budget.max_calls: 1)"),
    ],
)
def test_a_budget_stops_the_run_at_the_barrier_with_exit_4_and_keeps_the_results(
    tmp_path: Path, budget: str, reason: str
) -> None:
    """Layer one answers both requests (two calls: the limit is checked at the barrier, not
    mid-layer), then the run stops before layer two."""
    layers_run, calls_per_run = 1, 2
    with OpenAIServer(api_key="budget-key") as server:
        workflow = write_workflow(tmp_path, server, budget)
        run_path = tmp_path / "r.db"
        done = regions(
            "run", str(workflow), "--json", "--run", str(run_path), key="budget-key", cwd=tmp_path
        )
        plain = regions(
            "run",
            str(workflow),
            "--no-live",
            "--run",
            str(tmp_path / "p.db"),
            key="budget-key",
            cwd=tmp_path,
        )
        asked = len(server.generation_requests())
    assert done.returncode == 4, done.stderr
    assert (
        asked == 2 * calls_per_run
    )  # two runs; the layers after the barrier never called the model

    # JSON events: tokens per call (from the server's usage) and per run.
    seen = events(done.stdout)
    calls = [e for e in seen if e["kind"] == "llm_call"]
    assert len(calls) == calls_per_run
    assert all(
        c["region"] == "Talker" and c["prompt_tokens"] > 0 and c["completion_tokens"] > 0
        for c in calls
    )
    finished = seen[-1]
    assert finished["kind"] == "run_finished"
    assert (finished["status"], finished["exit_code"], finished["layers_run"]) == (
        "budget_exceeded",
        4,
        layers_run,
    )
    tokens = sum(c["prompt_tokens"] + c["completion_tokens"] for c in calls)
    assert finished["prompt_tokens"] + finished["completion_tokens"] == tokens
    talker = finished["region_tokens"]["Talker"]  # per region
    assert talker == {k: sum(c[k] for c in calls) for k in ("prompt_tokens", "completion_tokens")}
    message = f"budget exceeded: {reason.format(tokens=tokens)}; stopping"
    assert [e["text"] for e in seen if e["kind"] == "notice"] == [message]
    replies = [e for e in seen if e["kind"] == "message" and e["delivery"] == "output"]
    assert len(replies) == calls_per_run  # the answers given before the stop are kept

    # The run file keeps every call with its tokens, and `regions show` sums them.
    with RunFile.open(run_path) as run_file:
        assert run_file.invocations()[0]["status"] == "budget_exceeded"
    stored = _rows(run_path, "SELECT region, prompt_tokens, completion_tokens FROM llm_calls")
    assert [(r, p, c) for r, p, c in stored] == [
        (c["region"], c["prompt_tokens"], c["completion_tokens"]) for c in calls
    ]
    show = regions("show", str(run_path), key="", cwd=tmp_path)
    assert show.returncode == 0, show.stderr
    assert f"tokens       {tokens} (" in show.stdout
    talker_row = next(
        line for line in show.stdout.splitlines() if line.strip().startswith("Talker")
    )
    assert talker_row.split()[-1] == str(tokens)  # the region's tokens

    # The plain view: the same message, tokens per call and per run, the stop in the summary.
    assert plain.returncode == 4, plain.stderr
    assert f"error: {message}" in plain.stdout
    assert "\nstatus     stopped: budget exceeded\n" in plain.stdout
    assert f"\nlayers     {layers_run} of 3 run\n" in plain.stdout
    assert f"\ntokens     {tokens} (" in plain.stdout
    per_call = [
        line for line in plain.stdout.splitlines() if " via default (make_replies): " in line
    ]
    assert len(per_call) == calls_per_run and all(" tokens " in line for line in per_call)


def _rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    import sqlite3

    with sqlite3.connect(path) as db:
        return list(db.execute(query))


# -- secrets -------------------------------------------------------------------------------------


def _leaks(secret: str, tmp_path: Path, *results: subprocess.CompletedProcess[str]) -> list[str]:
    """Where `secret` shows: any stream of `results`, any file under `tmp_path` (run files,
    their -wal and -shm companions, cassettes, anything else the runs wrote)."""
    found = {
        f"stream {i}.{name}": text.encode()
        for i, r in enumerate(results)
        for name, text in (("stdout", r.stdout), ("stderr", r.stderr))
    }
    for path in tmp_path.rglob("*"):
        if path.is_file():
            found[str(path.relative_to(tmp_path))] = path.read_bytes()
    return [name for name, data in found.items() if secret.encode() in data]


def _run_all_ways(
    tmp_path: Path, server: OpenAIServer, key: str
) -> tuple[subprocess.CompletedProcess[str], ...]:
    """``run --json --record``, a plain ``run`` and ``llm check`` with `key` in the environment."""
    workflow = str(write_workflow(tmp_path, server))
    recorded = regions(
        "run", workflow, "--json", "--record", str(tmp_path / "spend.cassette.jsonl"),
        "--run", str(tmp_path / "json.db"), key=key, cwd=tmp_path,
    )  # fmt: skip
    plain = regions(
        "run", workflow, "--no-live", "--run", str(tmp_path / "plain.db"), key=key, cwd=tmp_path
    )
    check = regions("llm", "check", workflow, "--json", key=key, cwd=tmp_path)
    return recorded, plain, check


def test_the_api_key_never_reaches_an_output_stream_or_file(tmp_path: Path) -> None:
    secret = f"sk-audit-{uuid.uuid4().hex}"
    with OpenAIServer(api_key=secret) as server:
        recorded, plain, check = _run_all_ways(tmp_path, server, secret)
        sent = {r.headers.get("authorization") for r in server.generation_requests()}
    assert (recorded.returncode, plain.returncode, check.returncode) == (0, 0, 0), (
        recorded.stderr + plain.stderr + check.stdout
    )
    assert sent == {f"Bearer {secret}"}  # the key was really used
    assert (tmp_path / "spend.cassette.jsonl").stat().st_size > 0
    assert _leaks(secret, tmp_path, recorded, plain, check) == []


def test_a_rejected_key_is_redacted_from_the_errors(tmp_path: Path) -> None:
    """The server answers 401 and echoes the key it got: the error must not repeat it."""
    secret = f"sk-audit-{uuid.uuid4().hex}"
    with OpenAIServer(api_key="the-right-key") as server:
        recorded, plain, check = _run_all_ways(tmp_path, server, secret)
        echoed = [
            r for r in server.requests if r.headers.get("authorization") == f"Bearer {secret}"
        ]
    assert echoed  # the server saw (and echoed back) the wrong key
    # A failed call leaves its request pending (the engine's rule) and is recorded as such.
    failed = [e["error"] for e in events(recorded.stdout) if e["kind"] == "llm_call"]
    assert failed and all("HTTP 401: " in error for error in failed)
    assert all("invalid api key: 'Bearer ***'" in error for error in failed)
    assert "invalid api key: 'Bearer ***'" in plain.stdout
    assert check.returncode == 1
    assert "HTTP 401" in check.stdout
    assert _leaks(secret, tmp_path, recorded, plain, check) == []
