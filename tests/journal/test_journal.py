"""The run file's storage: schema, event serialisation, batching, barriers, injections, rollback."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from regions_cli.engine import events as ev
from regions_cli.engine.message import Message, Origin
from regions_cli.engine.postmaster import Held
from regions_cli.runs.codec import event_from_json
from regions_cli.runs.recorder import Recorder
from regions_cli.runs.resume import (
    canonical_text,
    check_workflow,
    describe_changes,
    resume_point,
)
from regions_cli.runs.store import (
    SCHEMA_VERSION,
    RunFile,
    RunFileError,
    WorkflowRecord,
)

PLAN = [
    {
        "label": "ask",
        "chains": {"a": ["A.make_questions", "A.make_replies"], "b": ["B.make_replies"]},
    },
    {"label": "answer", "chains": {"main": ["A.make_replies"]}},
]


def record(**changes: Any) -> WorkflowRecord:
    document: dict[str, Any] = {
        "version": 1,
        "name": "demo",
        "regions": {"A": {"type": "Region", "task": "a"}, "B": {"type": "Region", "task": "b"}},
        "plan": PLAN,
    }
    document.update(changes)
    canonical = canonical_text(document)
    import hashlib

    return WorkflowRecord(
        name="demo",
        path="/tmp/demo.yaml",
        text="name: demo\n",
        canonical=canonical,
        hash=hashlib.sha256(canonical.encode()).hexdigest(),
        info={"regions": {"A": "Region", "B": "Region"}, "plan": document["plan"], "inject": 1},
    )


@pytest.fixture
def run(tmp_path: Path) -> RunFile:
    return RunFile.create(tmp_path / "runs" / "demo.db", workflow=record())


def message(content: str, *, layer: int | None = 0, chain: str | None = "a") -> Message:
    return Message("A", "B", "request", content, origin=Origin(layer=layer, chain=chain, step=0))


ALL_EVENTS: list[ev.Event] = [
    ev.RunStarted(
        run_id="r",
        workflow="demo",
        workflow_hash="h",
        run_file=None,
        layers=[{"label": "ask", "chains": {"a": ["A.make_replies"]}}],
        regions={"A": "Region"},
    ),
    ev.LayerStarted(layer=0, label="ask"),
    ev.StepStarted(layer=0, chain="a", step=0, region="A", method="make_replies"),
    ev.StepFinished(
        layer=0,
        chain="a",
        step=0,
        region="A",
        method="make_replies",
        outcome="ok",
        duration=0.5,
        detail="x",
    ),
    ev.RegionStatus(region="A", status="idle"),
    ev.MessageDelivered(message=message("hi"), delivery="output"),
    ev.MessageRejected(message=message("no"), rule="not-connected", reason="r", action="drop"),
    ev.TokenStreamed(region="A", text="tok"),
    ev.LLMCalled(
        region="A",
        llm="default",
        purpose="make_replies",
        prompt_tokens=3,
        completion_tokens=4,
        duration=0.1,
    ),
    ev.LayerFinished(layer=0, label="ask", ok=True, duration=1.0),
    ev.Notice(level="info", text="note"),
    ev.RunFinished(
        status="ok",
        exit_code=0,
        layers_run=1,
        steps_ok=1,
        steps_failed=0,
        messages=1,
        prompt_tokens=3,
        completion_tokens=4,
        duration=1.0,
    ),
]


@pytest.mark.parametrize("event", ALL_EVENTS, ids=lambda e: e.kind)
def test_event_json_equals_asdict_and_round_trips(event: ev.Event) -> None:
    data = event.to_json()
    assert data == {"kind": event.kind, **dataclasses.asdict(event)}
    again = event_from_json(json.loads(json.dumps(data)))
    assert again == event


def test_unknown_event_kind_is_skipped() -> None:
    assert event_from_json({"kind": "from_the_future", "t": 1.0}) is None


def test_create_then_open_keeps_the_workflow(run: RunFile) -> None:
    path = run.path
    run.close()
    again = RunFile.open(path)
    assert again.workflow == record()
    assert again.position == 0 and not again.started
    assert again.meta("schema_version") == str(SCHEMA_VERSION)
    assert again.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_create_refuses_to_overwrite(run: RunFile) -> None:
    with pytest.raises(RunFileError, match="already exists"):
        RunFile.create(run.path, workflow=record())


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"hello, this is not sqlite at all" * 10, "not a sqlite database"),
        (b"", "not a sqlite database"),
    ],
)
def test_garbage_file_is_a_clear_error(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "bad.db"
    path.write_bytes(content)
    with pytest.raises(RunFileError, match=expected):
        RunFile.open(path)


def test_foreign_sqlite_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(RunFileError, match="not a run file"):
        RunFile.open(path)


def test_foreign_meta_table_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
    conn.execute("INSERT INTO meta VALUES ('format', 'something-else')")
    conn.commit()
    conn.close()
    with pytest.raises(RunFileError, match="not a run file"):
        RunFile.open(path)


def test_newer_schema_is_refused(run: RunFile) -> None:
    run.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    run.close()
    with pytest.raises(RunFileError, match="schema version"):
        RunFile.open(run.path)


def test_truncated_run_file_is_a_clear_error(run: RunFile) -> None:
    for i in range(200):  # make it span many pages
        run.set_meta(f"k{i}", "x" * 500)
    run.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    run.close()
    data = run.path.read_bytes()
    run.path.write_bytes(data[: len(data) // 3])
    with pytest.raises(RunFileError, match=r"corrupt run file|not a run file"):
        RunFile.open(run.path)


def test_missing_run_file(tmp_path: Path) -> None:
    with pytest.raises(RunFileError, match="no such run file"):
        RunFile.open(tmp_path / "nope.db")
    with pytest.raises(RunFileError, match="is a directory, not a run file"):
        RunFile.open(tmp_path)


def test_meta_without_a_workflow_record_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "half.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO meta VALUES ('format', 'regions-run'), ('schema_version', '1')")
    with pytest.raises(RunFileError, match=r"corrupt run file \(no 'workflow_name' in its meta"):
        RunFile.open(path)


def feed(recorder: Recorder, layer: int, chain: str, steps: int) -> None:
    recorder(ev.LayerStarted(layer=layer, label=f"l{layer}"))
    for step in range(steps):
        recorder(ev.StepStarted(layer=layer, chain=chain, step=step, region="A", method="m"))
        recorder(
            ev.MessageDelivered(message=message(f"{layer}{chain}{step}", layer=layer, chain=chain))
        )
        recorder(
            ev.StepFinished(
                layer=layer,
                chain=chain,
                step=step,
                region="A",
                method="m",
                outcome="ok",
                duration=0.0,
            )
        )


def test_events_are_buffered_until_a_slow_chain_ends(run: RunFile) -> None:
    recorder = Recorder(
        run, run.begin_invocation("run"), snapshot=lambda names: {n: {"n": 1} for n in names}
    )
    recorder(ev.LayerStarted(layer=0, label="ask"))
    recorder(ev.StepStarted(layer=0, chain="a", step=0, region="A", method="make_questions"))
    recorder(ev.MessageDelivered(message=message("q")))
    assert run.messages() == []  # not written per message
    recorder(
        ev.StepFinished(
            layer=0,
            chain="a",
            step=0,
            region="A",
            method="make_questions",
            outcome="ok",
            duration=0.03,
        )
    )
    assert run.messages() == []  # chain a has two steps
    recorder(
        ev.StepFinished(
            layer=0,
            chain="a",
            step=1,
            region="A",
            method="make_replies",
            outcome="ok",
            duration=0.03,
        )
    )
    rows = run.messages()  # 0.06 s of work: worth a commit of its own
    assert [r["content"] for r in rows] == ["q"]
    assert [s["outcome"] for s in run.steps()] == ["ok", "ok"]
    assert set(run.chains_done(0)) == {"a"}


def test_a_quick_chain_rides_along_with_the_next_write(run: RunFile) -> None:
    recorder = Recorder(
        run, run.begin_invocation("run"), snapshot=lambda names: {n: {"n": 1} for n in names}
    )
    recorder(ev.LayerStarted(layer=0, label="ask"))
    recorder(ev.MessageDelivered(message=message("b0", chain="b")))
    recorder(
        ev.StepFinished(
            layer=0,
            chain="b",
            step=0,
            region="B",
            method="make_replies",
            outcome="ok",
            duration=0.001,
        )
    )
    assert run.chains_done(0) == {}  # 1 ms of work: not worth a commit
    recorder.flush()
    done = run.chains_done(0)
    assert set(done) == {"b"} and done["b"].states == {"B": {"n": 1}}
    assert done["b"].event_seq == 3  # LayerStarted, the message, StepFinished


def test_barrier_commits_changed_states_and_consumes_injections(run: RunFile) -> None:
    queued = run.add_injection("user", "A", "request", "hello")
    assert queued.message.origin == Origin(injected=True, ordinal=1)  # after the 1 inject:
    recorder = Recorder(run, run.begin_invocation("run"))
    delivered = recorder.commit_barrier(0, {"A": {"n": 1}, "B": {"n": 1}})
    assert [m.id for m in delivered] == [queued.message.id]
    assert run.position == 0 and run.started
    assert run.injections(pending_only=True) == []
    assert recorder.commit_barrier(0, {"A": {"n": 1}, "B": {"n": 1}}) == []  # no duplicate
    feed(recorder, 0, "b", 1)
    recorder.commit_barrier(1, {"A": {"n": 1}, "B": {"n": 2}})
    assert run.position == 1
    rows = run.conn.execute("SELECT region, position FROM states ORDER BY region, position")
    assert rows.fetchall() == [("A", 0), ("B", 0), ("B", 1)]  # A unchanged: no new row
    assert run.states(1) == {"A": {"n": 1}, "B": {"n": 2}}
    assert run.states(0) == {"A": {"n": 1}, "B": {"n": 1}}


def test_failed_layer_does_not_commit_its_barrier(run: RunFile) -> None:
    recorder = Recorder(run, run.begin_invocation("run"))
    recorder.commit_barrier(0, {"A": {}, "B": {}})
    recorder(ev.LayerStarted(layer=0, label="ask"))
    recorder(
        ev.StepFinished(
            layer=0,
            chain="b",
            step=0,
            region="B",
            method="m",
            outcome="failed",
            duration=0.0,
            error="boom",
        )
    )
    recorder(ev.LayerFinished(layer=0, label="ask", ok=False, duration=0.0))
    run.add_injection("user", "A", "request", "later")
    assert recorder.commit_barrier(1, {"A": {}, "B": {"x": 1}}) == []
    assert run.position == 0  # a resume re-runs the failed layer's failed chains
    assert len(run.injections(pending_only=True)) == 1
    assert [s["outcome"] for s in run.steps()] == ["failed"]


@contextlib.contextmanager
def in_chain(chain: str) -> Iterator[None]:
    """Emit as the executor does from a chain's task."""
    token = ev.CURRENT_CHAIN.set(chain)
    try:
        yield
    finally:
        ev.CURRENT_CHAIN.reset(token)


def test_completed_chain_is_kept_and_the_rest_rolled_back(run: RunFile) -> None:
    snapshots = {"A": {"done": True}, "B": {"done": False}}
    recorder = Recorder(
        run,
        run.begin_invocation("run"),
        snapshot=lambda names: {n: snapshots[n] for n in names},
    )
    to_b = [Held(message(f"a{step}")) for step in range(2)]  # what chain a posts to B
    recorder.held = lambda chain: to_b if chain == "a" else []
    recorder.commit_barrier(0, {"A": {}, "B": {}})
    recorder(ev.LayerStarted(layer=0, label="ask"))
    with in_chain("b"):
        recorder(ev.StepStarted(layer=0, chain="b", step=0, region="B", method="make_replies"))
    # chain a completes: its two steps, each posting one message to B (held for the barrier)
    with in_chain("a"):
        for step in range(2):
            recorder(ev.StepStarted(layer=0, chain="a", step=step, region="A", method="m"))
            recorder(
                ev.StepFinished(
                    layer=0,
                    chain="a",
                    step=step,
                    region="A",
                    method="m",
                    outcome="ok",
                    duration=0.1,
                )
            )
    # ... then the process dies before chain b ends (nothing else is flushed)
    run.conn.execute("UPDATE invocations SET pid = 999999999")
    point = resume_point(run)
    assert point.start_layer == 0
    assert point.skip_chains == frozenset({"a"})
    assert point.states["A"] == {"done": True} and point.states["B"] == {}
    assert point.redeliver == ()  # nothing left chain a before the barrier
    done = point.completed["a"]
    assert [e["kind"] for e in done.events] == ["step_started", "step_finished"] * 2
    assert [Held.from_json(h).message.content for h in done.held] == ["a0", "a1"]
    run.begin_invocation("resume", keep_chains=point.skip_chains)
    assert run.messages() == []
    # the resumed process journals chain a's events in its place: before chain b's
    resumed = Recorder(run, run.begin_invocation("resume", keep_chains=point.skip_chains))
    resumed.resume_chains(0, point.completed)
    resumed(ev.LayerStarted(layer=0, label="ask"))
    with in_chain("b"):
        resumed(ev.StepStarted(layer=0, chain="b", step=0, region="B", method="make_replies"))
    resumed(ev.LayerFinished(layer=0, label="ask", ok=True, duration=0.0))
    resumed.commit_barrier(1, {"A": {"done": True}, "B": {}})
    chains = [e.get("chain") for e in run.events() if e["kind"] == "step_started"]
    assert chains == ["a", "a", "b"]


def test_completed_chain_touched_by_a_rerun_chain_runs_again(run: RunFile) -> None:
    recorder = Recorder(
        run, run.begin_invocation("run"), snapshot=lambda names: {n: {"done": True} for n in names}
    )
    recorder.commit_barrier(0, {"A": {}, "B": {}})
    recorder(ev.LayerStarted(layer=0, label="ask"))
    # chain b (region B) sends to A before chain a (region A) completes
    to_a = Message("B", "A", "request", "from b", origin=Origin(layer=0, chain="b", step=0))
    recorder(ev.MessageDelivered(message=to_a, recipient="A"))
    for step in range(2):
        recorder(
            ev.StepFinished(
                layer=0, chain="a", step=step, region="A", method="m", outcome="ok", duration=0.1
            )
        )
    run.conn.execute("UPDATE invocations SET pid = 999999999")
    point = resume_point(run)
    assert point.skip_chains == frozenset()  # A's snapshot holds b's message: run a again
    assert point.states == {"A": {}, "B": {}}
    run.begin_invocation("resume", keep_chains=point.skip_chains)
    assert run.chains_done(0) == {}
    assert run.messages() == []


def test_a_run_in_use_by_a_live_process_is_refused(run: RunFile, tmp_path: Path) -> None:
    import os

    run.begin_invocation("run")
    run.conn.execute("UPDATE invocations SET pid = ?", (os.getppid(),))
    with pytest.raises(RunFileError, match="in use by another process"):
        run.begin_invocation("step")


def test_workflow_change_is_named_and_needs_force(run: RunFile) -> None:
    changed = record(
        regions={"A": {"type": "Region", "task": "new task"}, "B": {"type": "Region", "task": "b"}}
    )
    with pytest.raises(RunFileError, match=r"regions\.A\.task changed.*--force"):
        check_workflow(run, changed, force=False)
    check_workflow(run, changed, force=True)
    check_workflow(run, record(layout={"A": {"x": 1}}), force=False)  # cosmetic: same hash


def test_breaking_change_is_refused_even_with_force(run: RunFile) -> None:
    Recorder(run, run.begin_invocation("run")).commit_barrier(0, {"A": {}, "B": {}})
    broken = record(regions={"A": {"type": "Region", "task": "a"}})
    object.__setattr__(broken, "info", {**broken.info, "regions": {"A": "Region"}})
    with pytest.raises(RunFileError, match=r"region B .* was removed"):
        check_workflow(run, broken, force=True)


def test_describe_changes_lists_paths() -> None:
    old = canonical_text({"a": {"b": 1, "c": [1, 2]}, "d": 1})
    new = canonical_text({"a": {"b": 2, "c": [1, 3]}, "e": 1})
    assert describe_changes(old, new) == [
        "a.b changed",
        "a.c[1] changed",
        "d removed",
        "e added",
    ]


def test_a_run_of_another_workflow_is_refused(run: RunFile) -> None:
    import dataclasses

    other = dataclasses.replace(record(name="other"), name="other")
    with pytest.raises(RunFileError, match="belongs to workflow 'demo'"):
        check_workflow(run, other, force=True)
