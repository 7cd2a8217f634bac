"""The path a new user takes through run files, as real processes in a fresh folder: which run
a command picks, what a finished run says, hints that run as printed, names that work where
they are shown, one message count, summaries of the whole run, cancelled and paused never
shown as failed, ``--quiet`` and the prompts a run sent."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from regions_cli.runs.store import RunFile

FIXTURES = Path(__file__).parent / "fixtures"


def regions(
    *args: str | Path, cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "regions_cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        input=stdin,
        check=False,
    )


def run_hint(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a hint the CLI printed, word for word (``regions`` is this interpreter's)."""
    words = shlex.split(command)
    assert words[0] == "regions", command
    return regions(*words[1:], cwd=cwd)


def hint_after(marker: str, text: str) -> str:
    found = re.search(re.escape(marker) + r"\s*(regions .+)$", text, re.M)
    assert found, f"no hint after {marker!r} in:\n{text}"
    return found.group(1).strip()


def run_files(folder: Path) -> list[Path]:
    return sorted((folder / ".regions" / "runs").glob("*.db"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh folder with the workflow in workflows/, as a user who followed the docs has."""
    (tmp_path / "workflows").mkdir()
    shutil.copy(FIXTURES / "ask_answer.yaml", tmp_path / "workflows" / "ask_answer.yaml")
    return tmp_path


def test_step_never_picks_a_run_of_another_file_with_the_same_name(project: Path) -> None:
    other = project / "workflows" / "copy.yaml"
    other.write_text(
        (project / "workflows" / "ask_answer.yaml").read_text().replace("history", "old times")
    )
    assert regions("step", "workflows/copy.yaml", cwd=project).returncode == 0
    done = regions("step", "workflows/ask_answer.yaml", cwd=project)
    assert done.returncode == 0, done.stderr
    assert "--force" not in done.stderr + done.stdout
    paths = {RunFile.open(p).workflow.path for p in run_files(project / "workflows")}
    assert paths == {str(other.resolve()), str((project / "workflows/ask_answer.yaml").resolve())}


def test_a_finished_run_says_so_and_its_hint_starts_a_new_one(project: Path) -> None:
    assert regions("run", "workflows/ask_answer.yaml", "--no-live", cwd=project).returncode == 0
    again = regions("step", "workflows/ask_answer.yaml", cwd=project)
    assert again.returncode == 0
    assert "the run has finished all 3 layers; nothing to do" in again.stdout
    assert len(run_files(project / "workflows")) == 1  # nothing new was started
    started = run_hint(hint_after("Start a new run with:", again.stdout), project)
    assert started.returncode == 0, started.stderr
    assert len(run_files(project / "workflows")) == 2
    assert "Next: layer 2/3" in started.stdout


def test_next_hints_repeat_the_flags_they_need_and_run_as_printed(project: Path) -> None:
    """The workflow's model is a server that is not there: only --llm default=scripted makes
    it run, so a hint that forgot the flag would fail; an edit makes --force needed too."""
    workflow = project / "workflows" / "ask_answer.yaml"
    workflow.write_text(
        re.sub(
            r"  default:\n    backend: scripted\n    rules:\n(      - .*\n)+",
            "  default: {backend: openai, base_url: 'http://127.0.0.1:9/v1', model: m}\n",
            workflow.read_text(),
        )
    )
    unreachable = regions("step", workflow, "--new", cwd=project)
    assert unreachable.returncode == 3  # without the flag the step really fails
    step = regions("step", workflow, "--llm", "default=scripted", cwd=project)
    assert step.returncode == 0, step.stderr
    hint = hint_after("Next: layer 2/3 look-up:", step.stdout)
    assert "--llm default=scripted" in hint
    workflow.write_text(workflow.read_text().replace("history", "the past"))  # an edit
    refused = run_hint(hint, project)
    assert refused.returncode == 2 and "--force" in refused.stderr
    forced = run_hint(hint + " --force", project)
    assert forced.returncode == 0, forced.stderr
    hint = hint_after("Next: layer 3/3 answer:", forced.stdout)
    assert "--force" in hint and "--llm default=scripted" in hint
    last = run_hint(hint, project)
    assert last.returncode == 0, last.stderr
    assert "Plan finished (3/3 layers)." in last.stdout
    assert "layers     3 of 3 run" in last.stdout  # the whole run's summary, not this step's


def test_an_interactive_quit_is_paused_and_its_hint_finishes_the_run(project: Path) -> None:
    quit_ = regions(
        "run", "workflows/ask_answer.yaml", "--interactive", "--no-live", "--llm",
        "default=scripted", cwd=project, stdin="\nq\n",
    )  # fmt: skip
    assert quit_.returncode == 130, quit_.stderr
    assert "status     paused" in quit_.stdout
    assert "steps      1 ok, 0 failed" in quit_.stdout and "failed     " not in quit_.stdout
    said = hint_after("paused; continue with:", quit_.stderr)
    assert hint_after("continue  ", quit_.stdout) == said
    assert "--llm default=scripted" in said
    (run,) = run_files(project / "workflows")
    shown = regions("show", run, cwd=project)
    assert re.search(r"status\s+paused", shown.stdout), shown.stdout
    done = run_hint(said, project)
    assert done.returncode == 0, done.stderr
    assert "layers     3 of 3 run" in done.stdout and "continue  " not in done.stdout


def test_ctrl_c_cancels_steps_without_calling_them_failed(project: Path) -> None:
    shutil.copy(FIXTURES / "slow.yaml", project / "slow.yaml")
    process = subprocess.Popen(
        [sys.executable, "-m", "regions_cli", "run", "slow.yaml", "--no-live"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "Asker.make_questions" in line:  # the step is waiting for its 2 s model
            break
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "status     interrupted" in out
    assert "steps      0 ok, 0 failed, 1 cancelled" in out
    assert "failed     " not in out
    assert run_hint(hint_after("continue  ", out), project).returncode == 0


def test_inject_into_a_running_run_says_when_it_arrives_and_it_does(project: Path) -> None:
    shutil.copy(FIXTURES / "slow.yaml", project / "slow.yaml")
    path = project / "slow.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "regions_cli", "run", "slow.yaml", "--json", "--run", path],
        cwd=project,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if json.loads(line)["kind"] == "step_started":  # layer 1 of 3 is running
            break
    queued = regions(
        "inject", "--run", path, "--to", "Answerer", "--role", "reply", "x", cwd=project
    )
    assert queued.returncode == 0, queued.stderr
    assert "delivered at the next barrier, when layer 1/3 (running now) ends" in queued.stdout
    process.communicate(timeout=60)
    with RunFile.open(path) as run:
        assert [item.consumed_at for item in run.injections()] == [1]  # before layer 2


def test_runs_finds_run_files_where_run_writes_them_and_its_names_work(project: Path) -> None:
    assert regions("run", "workflows/ask_answer.yaml", "--no-live", cwd=project).returncode == 0
    (path,) = run_files(project / "workflows")
    listed = regions("runs", cwd=project)
    assert listed.returncode == 0, listed.stderr
    _header, row = listed.stdout.splitlines()
    name = row.split()[0]
    assert name == "workflows/.regions/runs/" + path.name  # whole: not wrapped in a pipe
    assert path.stem.startswith("ask_answer-") and re.search(r"-\d{8}T\d{6}$", path.stem)
    for reference in (name, path.stem, path.name, "workflows/ask_answer.yaml"):
        shown = regions("show", reference, cwd=project)
        assert shown.returncode == 0 and path.name in shown.stdout, (reference, shown.stderr)
    replayed = regions("replay", path.stem, "--speed", "instant", "--no-live", cwd=project)
    assert replayed.returncode == 0 and "Ada led the Zebras" in replayed.stdout
    wide = regions("runs", cwd=project)
    assert wide.stdout == listed.stdout
    missing = regions("show", "nosuchrun", cwd=project)
    assert missing.returncode == 2
    assert missing.stderr == "error: nosuchrun: no such run file (see `regions runs`)\n"


LISTENED = """\
version: 1
name: listened
llms:
  default:
    backend: scripted
    rules:
      - {match: "were led by Ada", reply: "Ada led the Zebras in 1848."}
      - {match: "keeper of facts", reply: "The Zebras were led by Ada."}
regions:
  Scribe: {type: ListenerRegion, sink: trace.jsonl}
  Historian:
    type: Region
    task: Answer questions about history.
    connections: {Facts: Knows the facts.}
  Facts: {type: Region, task: You are the keeper of facts about the Zebras.}
inject:
  - {from: user, to: Historian, role: request, content: "Who led the Zebras?"}
plan:
  - {layer: listen, chains: {s: [Scribe.start]}}
  - {layer: ask, chains: {main: [Historian.make_questions]}}
  - {layer: look-up, chains: {main: [Facts.make_replies]}}
  - {layer: answer, chains: {main: [Historian.make_replies]}}
"""


def test_a_listeners_copy_is_counted_once_everywhere(tmp_path: Path) -> None:
    (tmp_path / "listened.yaml").write_text(LISTENED)
    events = regions("run", "listened.yaml", "--json", "--run", "j.db", cwd=tmp_path)
    assert events.returncode == 0, events.stderr
    kinds = [json.loads(line) for line in events.stdout.splitlines()]
    deliveries = [e for e in kinds if e["kind"] == "message"]
    copies = [e for e in deliveries if e["delivery"] == "cc"]
    assert copies and all(e["recipient"] == "Scribe" for e in copies)
    count = len(deliveries) - len(copies)
    assert kinds[-1]["messages"] == count
    plain = regions("run", "listened.yaml", "--no-live", "--run", "p.db", cwd=tmp_path)
    assert f"messages   {count}\n" in plain.stdout
    shown = regions("show", "j.db", cwd=tmp_path)
    assert re.search(rf"^messages\s+{count}\s*$", shown.stdout, re.M), shown.stdout


def test_quiet_prints_only_the_output(project: Path) -> None:
    quiet = regions("run", "workflows/ask_answer.yaml", "-q", cwd=project)
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stdout == "Ada led the Zebras in 1848.\nSource: Facts.\n"
    assert quiet.stderr == ""
    both = regions("run", "workflows/ask_answer.yaml", "-q", "--json", cwd=project)
    assert both.returncode == 2
    assert both.stderr == "error: --quiet and --json cannot be used together\n"


def test_show_prompts_prints_what_the_model_was_asked_and_answered(project: Path) -> None:
    assert regions("run", "workflows/ask_answer.yaml", "--no-live", cwd=project).returncode == 0
    prompts = regions("show", "workflows/ask_answer.yaml", "--prompts", cwd=project)
    assert prompts.returncode == 0, prompts.stderr
    out = prompts.stdout
    assert out.count("── call ") == 3
    assert "── call 2: Facts make_replies via default" in out
    assert "You are the keeper of facts about the Zebras." in out  # the task, in the prompt
    assert "[answer]\nThe Zebras were led by Ada." in out
    one = regions(
        "show", "workflows/ask_answer.yaml", "--prompts", "--region", "Facts", cwd=project
    )
    assert one.stdout.count("── call ") == 1
    unknown = regions(
        "show", "workflows/ask_answer.yaml", "--prompts", "--region", "Nobody", cwd=project
    )
    assert unknown.returncode == 1 and "unknown region 'Nobody'" in unknown.stderr


def test_every_hint_printed_by_a_stopped_run_is_runnable(project: Path) -> None:
    """A step that fails prints what to do; the run's `continue` line finishes it once the
    cause is gone (here: a timeout that the edit lifts, accepted with --force)."""
    workflow = project / "workflows" / "ask_answer.yaml"
    workflow.write_text(
        workflow.read_text().replace(
            "    backend: scripted\n", "    backend: scripted\n    latency: 1\n"
        )
        + "defaults: {timeout: 0.2}\n"
    )
    failed = regions("run", workflow, "--no-live", cwd=project)
    assert failed.returncode == 3
    assert "steps      0 ok, 1 failed" in failed.stdout
    hint = hint_after("continue  ", failed.stdout)
    workflow.write_text(workflow.read_text().replace("defaults: {timeout: 0.2}\n", ""))
    refused = run_hint(hint, project)
    assert refused.returncode == 2 and "use --force" in refused.stderr
    done = run_hint(hint + " --force", project)
    assert done.returncode == 0, done.stderr
    assert "layers     3 of 3 run" in done.stdout
    assert Path(shlex.split(hint)[shlex.split(hint).index("--resume") + 1]).is_file()
