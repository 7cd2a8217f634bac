"""A run's content depends on the workflow, its input and the model's answers, never on timing.

Real parts: ``regions`` processes, a loopback OpenAI-compatible server whose latency varies per
request (so concurrent chains finish in a different order each time), real run files and
cassettes. A transcript is ``regions replay RUN --json`` with the timestamps and durations
(and the per-invocation run id and file) left out, and without the ``token`` events: how an
answer's text arrived (streamed in pieces, or whole from a cassette) is, like its timing, not
what the run said.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from clirun import regions, regions_argv
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai_server import OpenAIServer, default_reply

from regions_cli.workflow.api import load_workflow

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"


@pytest.fixture(autouse=True)
def unbuffered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``regions`` here writes each line as it comes."""
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")


#: Fields that differ between two runs of the same content (when, how long, which file).
TIMING_FIELDS = frozenset({"t", "duration", "run_id", "run_file"})
#: Events each invocation (a run, a step, a resume) records about itself.
INVOCATION_EVENTS = frozenset({"run_started", "run_finished"})


def transcript(run_file: Path, *, framing: bool = True) -> list[str]:
    """`regions replay RUN --json`, one canonical line per event, timing left out (and, with
    `framing` False, the events each invocation records about itself)."""
    code, out, err = regions("replay", str(run_file), "--json")
    assert code == 0, err
    lines = []
    for line in out.splitlines():
        event = json.loads(line)
        if event["kind"] == "token":
            continue
        if not framing and (
            event["kind"] in INVOCATION_EVENTS
            or (event["kind"] == "notice" and event["text"].startswith("resuming layer"))
        ):
            continue
        kept = {k: v for k, v in event.items() if k not in TIMING_FIELDS}
        lines.append(json.dumps(kept, sort_keys=True))
    return lines


def fan_in(folder: Path, base_url: str, chains: int = 4, name: str = "fanin.yaml") -> Path:
    """`chains` FeedForwardRegions, each in its own chain of one layer, answer into Combine,
    which answers the user in the next layer: the fan-in of the issue."""
    drafts = [f"Draft{i}" for i in range(chains)]
    regions_yaml = "".join(
        f"  {d}: {{type: FeedForwardRegion, task: 'Write part {i} of a story.', "
        "connections: [Combine]}\n"
        for i, d in enumerate(drafts)
    )
    inject = "".join(
        f"  - {{from: user, to: {d}, role: request, content: 'Part {i}, please.'}}\n"
        for i, d in enumerate(drafts)
    )
    chains_yaml = "".join(f"      c{i}: [{d}.make_replies]\n" for i, d in enumerate(drafts))
    path = folder / name
    path.write_text(
        f"""version: 1
name: fanin
llms:
  default: {{backend: openai, base_url: "{base_url}", model: m, stream: false}}
regions:
{regions_yaml}  Combine: {{type: Region, task: Combine the parts into one story.}}
inject:
{inject}  - {{from: user, to: Combine, role: request, content: Tell me the whole story.}}
plan:
  - layer: draft
    chains:
{chains_yaml}  - layer: combine
    chains:
      all: [Combine.make_replies]
""",
        encoding="utf-8",
    )
    return path


def part_of(body: dict[str, Any]) -> int | None:
    """Which draft a request is from (its system prompt's task), None for Combine's."""
    system = " ".join(
        str(m.get("content", "")) for m in body.get("messages", ()) if m.get("role") == "system"
    )
    match = re.search(r"Write part (\d+) of a story", system)
    return int(match.group(1)) if match else None


def reply(body: dict[str, Any]) -> str:
    """Each draft writes its own part; Combine echoes its prompt."""
    part = part_of(body)
    return default_reply(body) if part is None else f"This is part {part} of the story."


def latencies(order: list[int]) -> Callable[[dict[str, Any]], float]:
    """Draft k answers after `order.index(k)` steps of 30 ms: chains finish in that order."""

    def latency(body: dict[str, Any]) -> float:
        part = part_of(body)
        return 0.0 if part is None else 0.03 * order.index(part)

    return latency


def test_a_fan_in_recorded_then_replayed_gives_the_same_transcript(tmp_path: Path) -> None:
    """The issue's reproduction: the drafts finish in reverse order while recording and at
    once on replay; Combine's prompt lists them in plan order both times."""
    with OpenAIServer(reply=reply, latency_for=latencies([3, 2, 1, 0])) as server:
        workflow = fan_in(tmp_path, server.base_url)
        cassette = tmp_path / "fanin.cassette.jsonl"
        code, _, err = regions(
            "run",
            str(workflow),
            "--record",
            str(cassette),
            "--json",
            "--run",
            str(tmp_path / "recorded.db"),
        )
        assert code == 0, err
        combine = [r.body for r in server.generation_requests() if part_of(r.body) is None]
    prompt = json.dumps(combine[0]["messages"])
    positions = [prompt.index(f"This is part {i} of the story.") for i in range(4)]
    assert positions == sorted(positions)  # plan order, though Draft3 answered first
    code, _, err = regions(
        "run",
        str(workflow),
        "--replay",
        str(cassette),
        "--json",
        "--run",
        str(tmp_path / "replayed.db"),
    )
    assert code == 0, err
    assert transcript(tmp_path / "replayed.db") == transcript(tmp_path / "recorded.db")


def test_a_fan_in_of_16_chains_replays_whatever_order_they_finished_in(tmp_path: Path) -> None:
    order = list(range(16))
    random.Random(16).shuffle(order)
    with OpenAIServer(
        reply=reply, latency_for=lambda body: 0.005 * order.index(part_of(body) or 0)
    ) as server:
        workflow = fan_in(tmp_path, server.base_url, chains=16)
        cassette = tmp_path / "c.jsonl"
        assert (
            regions(
                "run",
                str(workflow),
                "--record",
                str(cassette),
                "--json",
                "--run",
                str(tmp_path / "a.db"),
            ).code
            == 0
        )
    assert (
        regions(
            "run",
            str(workflow),
            "--replay",
            str(cassette),
            "--json",
            "--run",
            str(tmp_path / "b.db"),
        ).code
        == 0
    )
    assert transcript(tmp_path / "a.db") == transcript(tmp_path / "b.db")


@pytest.mark.parametrize("name", sorted(p.stem for p in WORKFLOWS.glob("*.yaml")))
def test_every_example_replays_a_recording_made_at_varying_latency(
    tmp_path: Path, name: str
) -> None:
    """Each example against a loopback model whose think time varies per request (0-40 ms,
    by a hash of the prompt), recorded, then replayed: exit 0 (5 for one that waits for a
    person: up to its wait) and the same transcript."""
    waits = any(layer.wait for layer in load_workflow(WORKFLOWS / f"{name}.yaml").plan)
    expected = 5 if waits else 0
    copy = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS, copy, ignore=shutil.ignore_patterns(".regions", "*.db"))

    def latency(body: dict[str, Any]) -> float:
        return (hash(json.dumps(body, sort_keys=True)) % 5) * 0.01

    with OpenAIServer(reply=reply, latency_for=latency) as server:
        url = f"default={server.base_url}"
        cassette = tmp_path / "c.jsonl"
        code, _, err = regions(
            "run",
            f"{name}.yaml",
            "--llm",
            url,
            "--record",
            str(cassette),
            "--json",
            "--run",
            str(tmp_path / "recorded.db"),
            cwd=copy,
        )
        assert code == expected, err
    code, _, err = regions(
        "run",
        f"{name}.yaml",
        "--replay",
        str(cassette),
        "--json",
        "--run",
        str(tmp_path / "replayed.db"),
        cwd=copy,
    )
    assert code == expected, err
    assert transcript(tmp_path / "replayed.db") == transcript(tmp_path / "recorded.db")


@pytest.fixture(scope="module")
def shared_server() -> Iterator[OpenAIServer]:
    """One server for every example of the property test: the workflow file (which names its
    URL) and so the workflow's hash stay the same."""
    with OpenAIServer(reply=reply) as server:
        yield server


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    order=st.permutations(range(4)),
    jitter=st.lists(st.floats(0, 0.02), min_size=4, max_size=4),
)
def test_random_latencies_and_completion_orders_give_byte_identical_transcripts(
    tmp_path_factory: pytest.TempPathFactory,
    shared_server: OpenAIServer,
    order: list[int],
    jitter: list[float],
) -> None:
    folder = tmp_path_factory.mktemp("runs")

    def latency(body: dict[str, Any]) -> float:
        part = part_of(body)
        return 0.0 if part is None else 0.02 * order.index(part) + jitter[part]

    shared_server.latency_for = latency
    reference = tmp_path_factory.getbasetemp() / "reference.db"
    run_file = reference if not reference.exists() else folder / "r.db"
    workflow = fan_in(tmp_path_factory.getbasetemp(), shared_server.base_url)
    code, _, err = regions("run", str(workflow), "--json", "--run", str(run_file))
    assert code == 0, err
    got = transcript(run_file)
    assert any('"kind": "message"' in line for line in got)
    assert got == transcript(reference)


def test_stepping_layer_by_layer_equals_one_run(tmp_path: Path) -> None:
    with OpenAIServer(reply=reply, latency_for=latencies([2, 0, 3, 1])) as server:
        workflow = fan_in(tmp_path, server.base_url)
        assert (
            regions("run", str(workflow), "--json", "--run", str(tmp_path / "whole.db")).code == 0
        )
        stepped = tmp_path / "stepped.db"
        for _ in range(2):
            code, _, err = regions("step", str(workflow), "--run", str(stepped))
            assert code == 0, err
    whole = transcript(tmp_path / "whole.db", framing=False)
    assert transcript(stepped, framing=False) == whole
    assert _states(stepped) == _states(tmp_path / "whole.db")


def _states(run_file: Path) -> dict[str, str]:
    conn = sqlite3.connect(run_file)
    try:
        return dict(
            conn.execute(
                "SELECT region, state FROM states s WHERE position = "
                "(SELECT MAX(position) FROM states WHERE region = s.region)"
            ).fetchall()
        )
    finally:
        conn.close()


def test_kill_9_in_the_middle_of_a_layer_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    """Eight drafts answer one after the other (80 ms apart, the last first); the process is
    killed when five have ended, then resumed: the transcript (delivery order included) and
    the states equal a run that was never interrupted, and no finished draft is asked again."""
    order = [7, 6, 5, 4, 3, 2, 1, 0]
    with OpenAIServer(
        latency_for=lambda b: (
            0.08 * (order.index(part_of(b)) + 1) if part_of(b) is not None else 0.0
        )
    ) as server:
        workflow = fan_in(tmp_path, server.base_url, chains=8)
        whole = tmp_path / "whole.db"
        assert regions("run", str(workflow), "--json", "--run", str(whole)).code == 0
        asked_whole = len(server.generation_requests())
        server.requests.clear()
        killed = tmp_path / "killed.db"
        proc = subprocess.Popen(
            regions_argv("run", workflow, "--json", "--run", killed),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while _chains_done(killed) < 5:  # the run file says which chains have ended
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        asked_before = len(server.generation_requests())
        code, _, err = regions("run", str(workflow), "--resume", str(killed), "--json")
        assert code == 0, err
        asked_after = len(server.generation_requests()) - asked_before
    done = 5
    assert asked_after == asked_whole - done  # the finished drafts were not asked again
    assert transcript(killed, framing=False) == transcript(whole, framing=False)
    assert _states(killed) == _states(whole)


def _chains_done(run_file: Path) -> int:
    if not run_file.exists():
        return 0
    try:
        conn = sqlite3.connect(run_file, timeout=5)
        try:
            row = conn.execute("SELECT COUNT(*) FROM chains_done").fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet
        return 0
    return int(row[0])
