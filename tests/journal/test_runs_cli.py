"""``regions step/inject/show/replay/runs`` and ``run --resume/--interactive`` as a user runs
them: real subprocesses, real run files. Waits are on output lines, never on sleeps."""

from __future__ import annotations

import queue
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clirun import regions, regions_argv
from journal_helpers import FIXTURES, traffic

from regions_cli.runs.store import RunFile

TIMEOUT = 60  # seconds: a safety net for a broken build, never a wait for work


@pytest.fixture(autouse=True)
def wide_unbuffered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``regions`` here writes 200 columns wide, each line as it comes."""
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    monkeypatch.setenv("COLUMNS", "200")


class Running:
    """A ``regions`` process whose stdout lines arrive on a queue (read by a thread)."""

    def __init__(self, *args: str, watch: str = "stdout") -> None:
        self.proc = subprocess.Popen(
            regions_argv(*args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        stream = self.proc.stdout if watch == "stdout" else self.proc.stderr
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()
        other = self.proc.stderr if watch == "stdout" else self.proc.stdout
        threading.Thread(target=other.read, daemon=True).start()  # type: ignore[union-attr]

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, pattern: str) -> str:
        """Block until a stdout line matches `pattern` (fails if the process ends first)."""
        regex = re.compile(pattern)
        while True:
            line = self.lines.get(timeout=TIMEOUT)
            if line is None:
                seen = "".join(self.seen)
                raise AssertionError(f"process ended before {pattern!r}; saw:\n{seen}")
            self.seen.append(line)
            if regex.search(line):
                return line

    def finish(self) -> int:
        return self.proc.wait(timeout=TIMEOUT)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=TIMEOUT)


@pytest.fixture
def ask_answer(tmp_path: Path) -> Path:
    target = tmp_path / "ask_answer.yaml"
    shutil.copy(FIXTURES / "ask_answer.yaml", target)
    return target


def fanout(
    tmp_path: Path, latency: float = 0.0, name: str = "fanout.yaml", quick: float = 0.0
) -> Path:
    """The three-chain workflow with region C's model taking `latency` seconds per call (and
    A's and B's `quick`)."""
    text = (FIXTURES / "fanout.yaml").read_text(encoding="utf-8")
    text = text.replace("latency: 0  # the kill test raises it", f"latency: {latency}")
    text = text.replace("latency: 0  # the quick chains", f"latency: {quick}")
    target = tmp_path / name
    target.write_text(text, encoding="utf-8")
    return target


def states(path: Path) -> dict[str, dict[str, object]]:
    with RunFile.open(path) as run:
        return run.states()


# -- step ----------------------------------------------------------------------------------------


def test_step_walks_the_plan_and_equals_one_run(ask_answer: Path, tmp_path: Path) -> None:
    whole = tmp_path / "whole.db"
    code, _, err = regions("run", str(ask_answer), "--run", str(whole), "--no-live")
    assert code == 0, err
    stepped = tmp_path / "stepped.db"
    for layer in (1, 2, 3):
        code, out, err = regions("step", str(ask_answer), "--run", str(stepped))
        assert code == 0, err
        assert f"layer {layer}/3" in out
        with RunFile.open(stepped) as run:
            assert run.position == layer
    assert "Plan finished (3/3 layers)" in out
    assert "pending at Historian: 1 request" not in out
    assert traffic(stepped) == traffic(whole)
    assert states(stepped) == states(whole)
    code, out, _ = regions("step", str(ask_answer), "--run", str(stepped))
    assert code == 0 and "nothing to do" in out


def test_step_without_run_continues_the_latest_unfinished_run(ask_answer: Path) -> None:
    code, out, err = regions("step", str(ask_answer))
    assert code == 0, err
    runs = list((ask_answer.parent / ".regions" / "runs").glob("ask_answer-*.db"))
    assert len(runs) == 1
    assert "pending at Historian: 1 request" in out  # the injected question waits
    code, out, err = regions("step", str(ask_answer), "--layers", "2")
    assert code == 0, err
    assert list((ask_answer.parent / ".regions" / "runs").glob("ask_answer-*.db")) == runs
    with RunFile.open(runs[0]) as run:
        assert run.position == 3


# -- inject --------------------------------------------------------------------------------------


def test_inject_between_steps_is_delivered_at_the_next_barrier(
    ask_answer: Path, tmp_path: Path
) -> None:
    path = tmp_path / "r.db"
    assert regions("step", str(ask_answer), "--run", str(path)).code == 0
    code, out, err = regions(
        "inject",
        "--run",
        str(path),
        "--to",
        "Facts",
        "--from",
        "docs",
        "--role",
        "reply",
        "Ada was born in 1815.",
    )
    assert code == 0, err
    message_id = re.search(r"queued message (\w+)", out).group(1)  # type: ignore[union-attr]
    with RunFile.open(path) as run:
        assert [i.message.id for i in run.injections(pending_only=True)] == [message_id]
    assert regions("step", str(ask_answer), "--run", str(path)).code == 0
    with RunFile.open(path) as run:
        assert run.injections(pending_only=True) == []
        rows = [m for m in run.messages() if m["id"] == message_id]
        assert [(m["delivery"], m["recipient"]) for m in rows] == [("injected", "Facts")]
        assert run.states()["Facts"]["replies"] == [
            {"source": "docs", "content": "Ada was born in 1815.", "cause": message_id}
        ]


def test_inject_from_a_file(ask_answer: Path, tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    regions("step", str(ask_answer), "--run", str(path))
    note = tmp_path / "note.txt"
    note.write_text("line one\nline two\n", encoding="utf-8")
    code, _, err = regions("inject", "--run", str(path), "--to", "Historian", "--file", str(note))
    assert code == 0, err
    with RunFile.open(path) as run:
        assert run.injections()[0].message.content == "line one\nline two\n"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--to", "Nobody", "hi"], 1, "unknown region 'Nobody' (regions: Facts, Historian)"),
        (["--to", "Facts", "--role", "update", "hi"], 1, "bad role 'update'"),
        (["--to", "Facts"], 2, "give the message as TEXT or with --file"),
        (["--to", "Facts", "--file", "missing.txt"], 2, "cannot read"),
        (["--to", "Facts", "--file", "."], 2, "cannot read: Is a directory"),
        (["--to", "Facts", " \n"], 1, "TEXT: the message is empty"),
    ],
)
def test_inject_bad_input(
    ask_answer: Path, tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    path = tmp_path / "r.db"
    regions("step", str(ask_answer), "--run", str(path))
    got, _, err = regions("inject", "--run", str(path), *args, cwd=tmp_path)
    assert got == code
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    with RunFile.open(path) as run:
        assert run.injections() == []


def test_inject_into_a_running_run_from_other_processes(tmp_path: Path) -> None:
    """Five concurrent `regions inject` while `regions run` works: each delivered exactly once."""
    workflow = fanout(tmp_path, latency=2.0)  # 6 s in all: time for five processes to start
    path = tmp_path / "r.db"
    running = Running("run", str(workflow), "--run", str(path), "--no-live")
    running.wait_for(r"layer 1/4 first started")
    injectors = [
        subprocess.Popen(
            regions_argv("inject", "--run", path, "--to", "A", f"extra question {i}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(5)
    ]
    ids = []
    for proc in injectors:
        out, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, err
        ids.append(re.search(r"queued message (\w+)", out).group(1))  # type: ignore[union-attr]
    assert running.finish() == 0
    with RunFile.open(path) as run:
        assert run.injections(pending_only=True) == []
        injected = [m["id"] for m in run.messages() if m["delivery"] == "injected"]
        assert sorted(i for i in injected if i in ids) == sorted(ids)  # once each
        kept = [r["cause"] for r in run.states()["A"]["requests"]]
        assert sorted(c for c in kept if c in ids) == sorted(ids)  # in A's state, once each


# -- resume --------------------------------------------------------------------------------------


def test_kill_9_mid_layer_then_resume_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    reference = tmp_path / "reference.db"
    code, _, err = regions(
        "run", str(fanout(tmp_path, name="fast.yaml")), "--run", str(reference), "--no-live"
    )
    assert code == 0, err

    # A's and B's chains take 0.1 s: long enough that their completion is committed at once
    workflow = fanout(tmp_path, latency=1.5, quick=0.1)
    path = tmp_path / "killed.db"
    running = Running("run", str(workflow), "--run", str(path), "--no-live")
    running.wait_for(r"layer 2/4 second started")
    ended = {running.wait_for(r"step second/[ab]#1 \w\.make_questions ok")[-1] for _ in "ab"}
    running.kill()  # chains a and b of layer 2 have ended; c is still waiting for its model
    assert len(ended) == 1

    with RunFile.open(path) as run:
        assert run.position == 1
        assert set(run.chains_done(1)) == {"a", "b"}
    code, out, err = regions("show", str(path))
    assert code == 0 and "interrupted (process died)" in out and "chains done: a, b" in out

    code, out, err = regions("run", str(workflow), "--resume", str(path), "--no-live")
    assert code == 0, err
    assert "step second/c#1" in out and "step answers/s#1" in out
    assert "step second/a#1" not in out and "step second/b#1" not in out  # not run again
    assert sorted(traffic(path)) == sorted(traffic(reference))
    assert len(set(traffic(path))) == len(traffic(path))
    assert states(path) == states(reference)


def test_resume_refuses_a_changed_workflow_unless_forced(ask_answer: Path, tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    regions("step", str(ask_answer), "--run", str(path))
    text = ask_answer.read_text(encoding="utf-8")
    ask_answer.write_text(text.replace("Know the facts about the Zebras.", "Know more."), "utf-8")
    code, _, err = regions("run", str(ask_answer), "--resume", str(path), "--no-live")
    assert code == 2
    assert "regions.Facts.task changed" in err and "--force" in err
    code, _, err = regions("run", str(ask_answer), "--resume", str(path), "--no-live", "--force")
    assert code == 0, err

    broken = tmp_path / "broken.db"
    ask_answer.write_text(text, "utf-8")
    regions("step", str(ask_answer), "--run", str(broken))
    ask_answer.write_text(
        text.replace("  Facts:\n    type: Region", "  Facts:\n    type: FeedForwardRegion"), "utf-8"
    )
    code, _, err = regions("step", str(ask_answer), "--run", str(broken), "--force")
    assert code == 2
    assert "region Facts changed type from Region to FeedForwardRegion" in err


# -- interactive ---------------------------------------------------------------------------------


def test_interactive_show_inject_continue_then_quit_and_resume(
    ask_answer: Path, tmp_path: Path
) -> None:
    path = tmp_path / "r.db"
    answers = "s Historian\ni\nFacts\nreply\ndocs\nAda was born in 1815.\nc\nq\n"
    code, _, err = regions(
        "run", str(ask_answer), "--run", str(path), "--interactive", "--no-live", stdin=answers
    )
    assert code == 130, err
    assert "paused before layer 1/3 ask" in err
    assert "requests (pending): 1" in err and "user: Who led the Zebras?" in err
    assert "queued message" in err
    assert "paused before layer 2/3 look-up" in err and "--resume" in err
    with RunFile.open(path) as run:
        assert run.position == 1
        assert run.invocations()[-1]["status"] == "paused"
        assert run.states()["Facts"]["replies"][0]["content"] == "Ada was born in 1815."
    code, _, err = regions("run", str(ask_answer), "--resume", str(path), "--no-live")
    assert code == 0, err
    with RunFile.open(path) as run:
        assert run.position == 3


def test_ctrl_c_at_the_interactive_prompt_exits_130(ask_answer: Path, tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    running = Running(
        "run", str(ask_answer), "--run", str(path), "--interactive", "--no-live", watch="stderr"
    )
    running.wait_for(r"paused before layer 1/3 ask")
    running.proc.send_signal(signal.SIGINT)
    assert running.finish() == 130
    with RunFile.open(path) as run:
        assert run.position == 0 and run.invocations()[-1]["status"] == "interrupted"


def test_interactive_end_of_input_quits_instead_of_hanging(
    ask_answer: Path, tmp_path: Path
) -> None:
    code, _, err = regions(
        "run",
        str(ask_answer),
        "--run",
        str(tmp_path / "r.db"),
        "--interactive",
        "--no-live",
        stdin="",
    )
    assert code == 130 and "end of input" in err


# -- show, runs, replay --------------------------------------------------------------------------


def test_show_summary_and_one_region(ask_answer: Path, tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    regions("step", str(ask_answer), "--run", str(path))
    regions("inject", "--run", str(path), "--to", "Facts", "hello")
    code, out, err = regions("show", str(path))
    assert code == 0, err
    assert "next layer 2/3 look-up" in out and "stepping" in out
    assert re.search(r"Historian\s+.\s*Region\s+.\s*1", out)  # one pending request
    assert re.search(r"tokens\s+\d+", out)
    code, out, _ = regions("show", str(path), "--region", "Facts")
    assert code == 0
    assert "queued injection (request) from user: hello" in out
    code, _, err = regions("show", str(path), "--region", "Nope")
    assert code == 1 and "unknown region 'Nope'" in err


def test_runs_lists_status_and_outcome(ask_answer: Path, tmp_path: Path) -> None:
    regions("run", str(ask_answer), "--no-live")
    regions("step", str(ask_answer), "--new")
    folder = ask_answer.parent / ".regions" / "runs"
    (folder / "junk.db").write_bytes(b"not a database")
    code, out, err = regions("runs", str(ask_answer.parent))
    assert code == 0, err
    assert "finished" in out and "3/3" in out and "ok (exit 0)" in out
    assert "stepping" in out and "1/3" in out
    assert "junk.db" in out and "unreadable" in out
    code, _, err = regions("runs", str(tmp_path / "nowhere"))
    assert code == 2 and "no such folder" in err


def test_replay_json_matches_the_original_json_feed(tmp_path: Path) -> None:
    workflow = fanout(tmp_path)
    path = tmp_path / "r.db"
    code, original, err = regions("run", str(workflow), "--run", str(path), "--json")
    assert code == 0, err
    code, replayed, err = regions("replay", str(path), "--json")
    assert code == 0, err
    events = [line for line in original.splitlines() if '"kind":"findings"' not in line]
    assert replayed.splitlines() == events
    assert len(events) > 20


def test_replay_plain_matches_the_original_plain_feed(ask_answer: Path, tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    code, original, _ = regions("run", str(ask_answer), "--run", str(path), "--no-live")
    code, replayed, err = regions("replay", str(path), "--no-live", "--speed", "instant")
    assert code == 0, err
    assert replayed == original


# -- bad run files -------------------------------------------------------------------------------


def bad_files(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00\x01 this is not sqlite" * 50)
    yield garbage, "not a run file (not a sqlite database)"
    foreign = tmp_path / "foreign.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    yield foreign, "not a run file"
    yield tmp_path / "missing.db", "no such run file"


@pytest.mark.parametrize("command", ["show", "replay", "inject", "resume", "step"])
def test_corrupt_or_foreign_run_file_is_a_clear_error(
    command: str, ask_answer: Path, tmp_path: Path
) -> None:
    for path, message in bad_files(tmp_path):
        args = {
            "show": ["show", str(path)],
            "replay": ["replay", str(path)],
            "inject": ["inject", "--run", str(path), "--to", "Facts", "hi"],
            "resume": ["run", str(ask_answer), "--resume", str(path), "--no-live"],
            "step": ["step", str(ask_answer), "--run", str(path)],
        }[command]
        if command == "step" and not path.exists():
            continue  # step creates a missing run file: that is its job
        code, out, err = regions(*args)
        assert code == 2, (path, out, err)
        assert message in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1, err


def test_replay_of_a_stepped_run_sums_up_every_step(ask_answer: Path, tmp_path: Path) -> None:
    """The replay's summary covers the whole run file, as one uninterrupted run's does."""
    whole, stepped = tmp_path / "whole.db", tmp_path / "stepped.db"
    code, _, err = regions("run", str(ask_answer), "--run", str(whole), "--no-live")
    assert code == 0, err
    for _ in range(3):
        code, _, err = regions("step", str(ask_answer), "--run", str(stepped))
        assert code == 0, err

    def summary(path: Path) -> list[str]:
        code, out, err = regions("replay", str(path), "--no-live", "--speed", "instant")
        assert code == 0, err
        lines = out.split("\nSummary\n", 1)[1].splitlines()
        return [line for line in lines if not line.startswith(("wall time", "run file"))]

    expected = summary(whole)
    assert "layers     3 of 3 run" in expected
    assert summary(stepped) == expected


def test_runs_and_step_name_the_wrong_file(ask_answer: Path, tmp_path: Path) -> None:
    code, _, err = regions("runs", str(ask_answer))
    assert code == 2 and err == f"error: {ask_answer}: not a folder\n"
    finished = tmp_path / "finished.db"
    assert regions("run", str(ask_answer), "--run", str(finished), "--no-live").code == 0
    other = fanout(tmp_path)  # a run file of another workflow: refused, not "nothing to do"
    code, out, err = regions("step", str(other), "--run", str(finished))
    assert code == 2 and "belongs to workflow 'ask_answer'" in err, (out, err)
    assert len(err.strip().splitlines()) == 1
    code, out, _ = regions("step", str(ask_answer), "--run", str(finished))
    assert code == 0 and "nothing to do" in out
