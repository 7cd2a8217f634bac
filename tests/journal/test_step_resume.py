"""Stepping and resuming against the real engine (scripted backend), in-process."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from journal_helpers import FIXTURES, drive, traffic

from regions_cli.engine.events import Event, LayerStarted, MessageDelivered, Notice, StepStarted
from regions_cli.runs.run import RunError
from regions_cli.runs.store import RunFile


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    target = tmp_path / "ask_answer.yaml"
    shutil.copy(FIXTURES / "ask_answer.yaml", target)
    return target


async def test_stepping_equals_one_run(workflow: Path, tmp_path: Path) -> None:
    code, _, whole = await drive(workflow, run_file=tmp_path / "whole.db")
    assert code == 0
    stepped = tmp_path / "stepped.db"
    code, _, _ = await drive(workflow, run_file=stepped, max_layers=1, kind="step")
    assert code == 0
    for expected_position in (2, 3):
        code, _, _ = await drive(workflow, resume=stepped, max_layers=1, kind="step")
        assert code == 0
        with RunFile.open(stepped) as run:
            assert run.position == expected_position
    assert traffic(stepped) == traffic(whole)
    assert next(t[4] for t in traffic(whole)) == "injected"
    assert [t[4] for t in traffic(whole)][-1] == "output"
    with RunFile.open(whole) as a, RunFile.open(stepped) as b:
        assert a.states() == b.states()


async def test_finished_run_cannot_continue(workflow: Path, tmp_path: Path) -> None:
    await drive(workflow, run_file=tmp_path / "r.db")
    with pytest.raises(RunError, match="already finished"):
        await drive(workflow, resume=tmp_path / "r.db")


@pytest.fixture
def fanout(tmp_path: Path) -> Path:
    target = tmp_path / "fanout.yaml"
    shutil.copy(FIXTURES / "fanout.yaml", target)
    return target


async def die_in_layer_2_after_a_and_b(workflow: Path, path: Path) -> None:
    """Simulate the death of a process in layer 2 after chains a and b ended: run the layer
    without chain c, and die before its barrier (a pid that is not alive)."""
    await drive(workflow, resume=path, drop_chains=frozenset({"c"}), die_at_barrier=2)
    with RunFile.open(path) as run:
        run.conn.execute("UPDATE invocations SET pid = 999999999")


def add_listener(workflow: Path) -> None:
    """Add a listener L (never started: it holds its copies in its state)."""
    text = workflow.read_text(encoding="utf-8").replace(
        "  S: {type: Region, task: Answer everyone.}\n",
        "  S: {type: Region, task: Answer everyone.}\n  L: {type: ListenerRegion}\n",
    )
    workflow.write_text(text, encoding="utf-8")


async def test_resume_after_a_crash_mid_layer(
    fanout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chains a and b of layer 2 complete, c is cut off: the resume runs only c."""
    monkeypatch.setattr("regions_cli.runs.recorder.CHAIN_COMMIT_SECONDS", 0.0)
    _, _, whole = await drive(fanout, run_file=tmp_path / "whole.db")
    crashed = tmp_path / "crashed.db"
    await drive(fanout, run_file=crashed, max_layers=1)
    await die_in_layer_2_after_a_and_b(fanout, crashed)
    with RunFile.open(crashed) as run:
        assert run.position == 1
        assert set(run.chains_done(1)) == {"a", "b"}
    code, events, _ = await drive(fanout, resume=crashed)
    assert code == 0
    started = [e for e in events if isinstance(e, StepStarted)]
    assert [(e.layer, e.chain) for e in started][:1] == [(1, "c")]  # a and b not run again
    assert sorted(traffic(crashed)) == sorted(traffic(whole))
    assert len(traffic(crashed)) == len(set(traffic(crashed)))
    with RunFile.open(whole) as a, RunFile.open(crashed) as b:
        assert a.states() == b.states()


async def test_resume_after_a_failed_step_reruns_only_the_failed_chain(tmp_path: Path) -> None:
    workflow = tmp_path / "failing.yaml"
    text = (FIXTURES / "failing.yaml").read_text(encoding="utf-8")
    workflow.write_text(text, encoding="utf-8")
    code, _, path = await drive(workflow, run_file=tmp_path / "r.db")
    assert code == 3
    with RunFile.open(path) as run:
        assert run.position == 0  # the failed layer's barrier is not committed
        assert set(run.chains_done(0)) == {"a"}
        assert run.injections() == []
    with pytest.raises(RunError, match=r"timeout changed.*--force"):
        workflow.write_text(text.replace("timeout: 0.2", "timeout: 5"), encoding="utf-8")
        await drive(workflow, resume=path)
    code, events, _ = await drive(workflow, resume=path, force=True)
    assert code == 0
    started = [(e.layer, e.chain) for e in events if isinstance(e, StepStarted)]
    assert started == [(0, "s"), (1, "a")]  # chain a of layer 1 is not run again
    with RunFile.open(path) as run:
        assert run.position == 2
        outcomes = [(s["layer"], s["chain"], s["outcome"]) for s in run.steps()]
        assert outcomes == [(0, "a", "ok"), (0, "s", "ok"), (1, "a", "nothing")]
        outputs = sorted(m["content"] for m in run.messages() if m["delivery"] == "output")
        assert len(outputs) == 2  # A and Slow each answered once


async def test_failed_layer_with_continue_is_committed_when_the_run_goes_on(
    tmp_path: Path,
) -> None:
    workflow = tmp_path / "failing.yaml"
    text = (FIXTURES / "failing.yaml").read_text(encoding="utf-8")
    workflow.write_text(text.replace("on_failure: stop", "on_failure: continue"), "utf-8")
    code, _, path = await drive(workflow, run_file=tmp_path / "r.db")
    assert code == 3
    with RunFile.open(path) as run:
        barriers = run.conn.execute("SELECT position FROM barriers ORDER BY position")
        # layer 1 failed, but the run went on: its barrier is committed when layer 2 starts
        assert barriers.fetchall() == [(0,), (1,), (2,)]
        assert [s["outcome"] for s in run.steps()] == ["ok", "timeout", "nothing"]


async def test_resume_when_every_chain_of_the_layer_had_completed(
    fanout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("regions_cli.runs.recorder.CHAIN_COMMIT_SECONDS", 0.0)
    _, _, whole = await drive(fanout, run_file=tmp_path / "whole.db")
    crashed = tmp_path / "crashed.db"
    await drive(fanout, run_file=crashed, die_at_barrier=2)  # killed just before barrier 2
    with RunFile.open(crashed) as run:
        run.conn.execute("UPDATE invocations SET pid = 999999999")
        assert run.position == 1 and set(run.chains_done(1)) == {"a", "b", "c"}
    code, events, _ = await drive(fanout, resume=crashed)
    assert code == 0
    assert not [e for e in events if isinstance(e, StepStarted) and e.layer == 1]
    assert sorted(traffic(crashed)) == sorted(traffic(whole))
    with RunFile.open(whole) as a, RunFile.open(crashed) as b:
        assert a.states() == b.states()


async def test_a_run_file_that_cannot_be_written_stops_the_run_cleanly(
    workflow: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another process breaks the file mid-run: the run stops at the next barrier, exit 3."""
    path = tmp_path / "r.db"

    def vandal(event: Event) -> None:
        if isinstance(event, LayerStarted) and event.layer == 1:
            other = sqlite3.connect(path)
            other.execute("DROP TABLE events")
            other.commit()
            other.close()

    code, events, _ = await drive(workflow, run_file=path, subscribers=[vandal])
    assert code == 3
    notices = [e.text for e in events if isinstance(e, Notice) and e.level == "error"]
    assert any("cannot write the run file" in text for text in notices)
    assert "cannot write the run file" in capsys.readouterr().err


async def test_stepping_concurrent_chains_equals_one_run(fanout: Path, tmp_path: Path) -> None:
    _, _, whole = await drive(fanout, run_file=tmp_path / "whole.db")
    stepped = tmp_path / "stepped.db"
    await drive(fanout, run_file=stepped, max_layers=2, kind="step")
    await drive(fanout, resume=stepped, max_layers=1, kind="step")
    await drive(fanout, resume=stepped, max_layers=1, kind="step")
    assert traffic(stepped) == traffic(whole)  # same ids, same order
    with RunFile.open(whole) as a, RunFile.open(stepped) as b:
        assert a.states() == b.states() and b.position == 4
        assert [m["delivery_seq"] for m in a.messages()] == [
            m["delivery_seq"] for m in b.messages()
        ]


async def test_a_budget_covers_every_invocation_of_the_run_file(
    fanout: Path, tmp_path: Path
) -> None:
    """Each layer makes three model calls and four are allowed: the second layer passes the
    budget whether the run goes in one invocation or one `step` at a time (a step counts
    what the earlier ones spent)."""
    workflow = fanout
    with workflow.open("a", encoding="utf-8") as handle:
        handle.write("budget: {max_calls: 4}\n")
    code, _, whole = await drive(workflow, run_file=tmp_path / "whole.db")
    assert code == 4
    stepped = tmp_path / "stepped.db"
    codes = [(await drive(workflow, run_file=stepped, max_layers=1, kind="step"))[0]]
    codes.append((await drive(workflow, resume=stepped, max_layers=1, kind="step"))[0])
    assert codes == [0, 4]
    with RunFile.open(whole) as a, RunFile.open(stepped) as b:
        assert a.position == b.position == 2
    assert traffic(stepped) == traffic(whole)


async def test_resume_delivers_what_completed_chains_held_once(
    fanout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What chains a and b posted before the crash (to S, and the copies to listener L,
    which holds them until started) waited for the barrier, so the resumed run delivers it
    there, once, in plan order: states, journal and delivery numbers equal an uninterrupted
    run's."""
    monkeypatch.setattr("regions_cli.runs.recorder.CHAIN_COMMIT_SECONDS", 0.0)
    add_listener(fanout)
    _, _, whole = await drive(fanout, run_file=tmp_path / "whole.db")
    crashed = tmp_path / "crashed.db"
    await drive(fanout, run_file=crashed, max_layers=1)
    await die_in_layer_2_after_a_and_b(fanout, crashed)
    code, events, _ = await drive(fanout, resume=crashed)
    assert code == 0
    delivered = [e for e in events if isinstance(e, MessageDelivered)]
    from_a_and_b = [
        e.message.id
        for e in delivered
        if e.message.origin.chain in ("a", "b")
        and e.message.origin.layer == 1
        and e.delivery != "cc"
    ]
    assert from_a_and_b and len(from_a_and_b) == len(set(from_a_and_b))  # once each
    with RunFile.open(whole) as a, RunFile.open(crashed) as b:
        assert a.states() == b.states()
        numbers = [m["delivery_seq"] for m in b.messages() if m["delivery"] != "cc"]
        assert len(b.states()["L"]["inbox"]) == len(numbers)  # a copy of every message
        assert len(numbers) == len(set(numbers))
        assert sorted(numbers) == numbers  # in journal order
        assert [m["delivery_seq"] for m in a.messages()] == [
            m["delivery_seq"] for m in b.messages()
        ]
    assert traffic(crashed) == traffic(whole)


@pytest.mark.parametrize("written", [True, False], ids=["journaled", "never-journaled"])
async def test_resume_keeps_an_injection_taken_at_the_barrier(
    fanout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: bool
) -> None:
    """Messages injected before layer 2, to a region (A) whose chain completed before the
    crash and to one (S) whose state is restored from the barrier: both end as in a run that
    was not interrupted, and the journal records each injection once. Journaled: the dead
    process wrote them with chains a and b; never journaled: it died before writing anything
    after the barrier (which had marked them taken)."""
    monkeypatch.setattr("regions_cli.runs.recorder.CHAIN_COMMIT_SECONDS", 0.0 if written else 1e9)
    add_listener(fanout)

    async def first_layer_then_inject(path: Path) -> None:
        await drive(fanout, run_file=path, max_layers=1, kind="step")
        with RunFile.open(path) as run:
            run.add_injection("user", "A", "request", "Also this, A")
            run.add_injection("user", "S", "reply", "A fact for S")

    whole, crashed = tmp_path / "whole.db", tmp_path / "crashed.db"
    await first_layer_then_inject(whole)
    await drive(fanout, resume=whole)
    await first_layer_then_inject(crashed)
    await die_in_layer_2_after_a_and_b(fanout, crashed)
    with RunFile.open(crashed) as run:
        assert set(run.chains_done(1)) == ({"a", "b"} if written else set())
        assert len(run.injections(pending_only=True)) == 0
    code, _, _ = await drive(fanout, resume=crashed)
    assert code == 0
    assert sorted(traffic(crashed)) == sorted(traffic(whole))
    with RunFile.open(whole) as a, RunFile.open(crashed) as b:
        assert a.states() == b.states()
        injected = [m["content"] for m in b.messages() if m["injected"] and m["delivery"] != "cc"]
        assert injected.count("Also this, A") == injected.count("A fact for S") == 1
