"""Stepping and resuming against the real engine (scripted backend), in-process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from journal_helpers import FIXTURES, drive, traffic

from regions_cli.engine.journal import RunFile
from regions_cli.run_journal import JournalError


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
    with pytest.raises(JournalError, match="already finished"):
        await drive(workflow, resume=tmp_path / "r.db")


@pytest.fixture
def fanout(tmp_path: Path) -> Path:
    target = tmp_path / "fanout.yaml"
    shutil.copy(FIXTURES / "fanout.yaml", target)
    return target


async def test_resume_after_a_crash_mid_layer(fanout: Path, tmp_path: Path) -> None:
    """Chains a and b of layer 2 complete, c is cut off: the resume runs only c."""
    _, _, whole = await drive(fanout, run_file=tmp_path / "whole.db")
    crashed = tmp_path / "crashed.db"
    await drive(fanout, run_file=crashed, max_layers=1)
    # simulate the death of a process in layer 2 after chains a and b ended: run the layer
    # without chain c, and die before its barrier.
    await drive(fanout, resume=crashed, drop_chains=frozenset({"c"}), die_at_barrier=2)
    with RunFile.open(crashed) as run:
        run.conn.execute("UPDATE invocations SET pid = 999999999")
        assert run.position == 1
        assert set(run.chains_done(1)) == {"a", "b"}
    code, events, _ = await drive(fanout, resume=crashed)
    assert code == 0
    started = [e for e in events if e.kind == "step_started"]
    assert [(e.layer, e.chain) for e in started][:1] == [(1, "c")]  # a and b not run again
    assert sorted(traffic(crashed)) == sorted(traffic(whole))
    assert len(traffic(crashed)) == len(set(traffic(crashed)))
    with RunFile.open(whole) as a, RunFile.open(crashed) as b:
        assert a.states() == b.states()
