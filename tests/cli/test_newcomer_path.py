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
from pathlib import Path

import pytest
from clirun import Result, regions, regions_argv

from regions_cli.runs.store import RunFile

FIXTURES = Path(__file__).parent / "fixtures"


def run_hint(command: str, cwd: Path) -> Result:
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
    assert regions("step", "workflows/copy.yaml", cwd=project).code == 0
    done = regions("step", "workflows/ask_answer.yaml", cwd=project)
    assert done.code == 0, done.err
    assert "--force" not in done.err + done.out
    paths = {RunFile.open(p).workflow.path for p in run_files(project / "workflows")}
    assert paths == {str(other.resolve()), str((project / "workflows/ask_answer.yaml").resolve())}


def test_a_finished_run_says_so_and_its_hint_starts_a_new_one(project: Path) -> None:
    assert regions("run", "workflows/ask_answer.yaml", "--no-live", cwd=project).code == 0
    again = regions("step", "workflows/ask_answer.yaml", cwd=project)
    assert again.code == 0
    assert "the run has finished all 3 layers; nothing to do" in again.out
    assert len(run_files(project / "workflows")) == 1  # nothing new was started
    started = run_hint(hint_after("Start a new run with:", again.out), project)
    assert started.code == 0, started.err
    assert len(run_files(project / "workflows")) == 2
    assert "Next: layer 2/3" in started.out


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
    assert unreachable.code == 3  # without the flag the step really fails
    step = regions("step", workflow, "--llm", "default=scripted", cwd=project)
    assert step.code == 0, step.err
    hint = hint_after("Next: layer 2/3 look-up:", step.out)
    assert "--llm default=scripted" in hint
    workflow.write_text(workflow.read_text().replace("history", "the past"))  # an edit
    refused = run_hint(hint, project)
    assert refused.code == 2 and "--force" in refused.err
    forced = run_hint(hint + " --force", project)
    assert forced.code == 0, forced.err
    hint = hint_after("Next: layer 3/3 answer:", forced.out)
    assert "--force" in hint and "--llm default=scripted" in hint
    last = run_hint(hint, project)
    assert last.code == 0, last.err
    assert "Plan finished (3/3 layers)." in last.out
    assert "layers     3 of 3 run" in last.out  # the whole run's summary, not this step's


def test_an_interactive_quit_is_paused_and_its_hint_finishes_the_run(project: Path) -> None:
    quit_ = regions(
        "run", "workflows/ask_answer.yaml", "--interactive", "--no-live", "--llm",
        "default=scripted", cwd=project, stdin="\nq\n",
    )  # fmt: skip
    assert quit_.code == 130, quit_.err
    assert "status     paused" in quit_.out
    assert "steps      1 ok, 0 failed" in quit_.out and "failed     " not in quit_.out
    said = hint_after("paused; continue with:", quit_.err)
    assert hint_after("continue  ", quit_.out) == said
    assert "--llm default=scripted" in said
    (run,) = run_files(project / "workflows")
    shown = regions("show", run, cwd=project)
    assert re.search(r"status\s+paused", shown.out), shown.out
    done = run_hint(said, project)
    assert done.code == 0, done.err
    assert "layers     3 of 3 run" in done.out and "continue  " not in done.out


def test_ctrl_c_cancels_steps_without_calling_them_failed(project: Path) -> None:
    shutil.copy(FIXTURES / "slow.yaml", project / "slow.yaml")
    process = subprocess.Popen(
        regions_argv("run", "slow.yaml", "--no-live"),
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
    assert run_hint(hint_after("continue  ", out), project).code == 0


def test_inject_into_a_running_run_says_when_it_arrives_and_it_does(project: Path) -> None:
    shutil.copy(FIXTURES / "slow.yaml", project / "slow.yaml")
    path = project / "slow.db"
    process = subprocess.Popen(
        regions_argv("run", "slow.yaml", "--json", "--run", path),
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
    assert queued.code == 0, queued.err
    assert "delivered at the next barrier, when layer 1/3 (running now) ends" in queued.out
    process.communicate(timeout=60)
    with RunFile.open(path) as run:
        assert [item.consumed_at for item in run.injections()] == [1]  # before layer 2


def test_runs_finds_run_files_where_run_writes_them_and_its_names_work(project: Path) -> None:
    assert regions("run", "workflows/ask_answer.yaml", "--no-live", cwd=project).code == 0
    (path,) = run_files(project / "workflows")
    listed = regions("runs", cwd=project)
    assert listed.code == 0, listed.err
    _header, row = listed.out.splitlines()
    name = row.split()[0]
    assert name == "workflows/.regions/runs/" + path.name  # whole: not wrapped in a pipe
    assert path.stem.startswith("ask_answer-") and re.search(r"-\d{8}T\d{6}$", path.stem)
    for reference in (name, path.stem, path.name, "workflows/ask_answer.yaml"):
        shown = regions("show", reference, cwd=project)
        assert shown.code == 0 and path.name in shown.out, (reference, shown.err)
    replayed = regions("replay", path.stem, "--speed", "instant", "--no-live", cwd=project)
    assert replayed.code == 0 and "Ada led the Zebras" in replayed.out
    wide = regions("runs", cwd=project)
    assert wide.out == listed.out
    missing = regions("show", "nosuchrun", cwd=project)
    assert missing.code == 2
    assert missing.err == "error: nosuchrun: no such run file (see `regions runs`)\n"


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
    assert events.code == 0, events.err
    kinds = [json.loads(line) for line in events.out.splitlines()]
    deliveries = [e for e in kinds if e["kind"] == "message"]
    copies = [e for e in deliveries if e["delivery"] == "cc"]
    assert copies and all(e["recipient"] == "Scribe" for e in copies)
    count = len(deliveries) - len(copies)
    assert kinds[-1]["messages"] == count
    plain = regions("run", "listened.yaml", "--no-live", "--run", "p.db", cwd=tmp_path)
    assert f"messages   {count}\n" in plain.out
    shown = regions("show", "j.db", cwd=tmp_path)
    assert re.search(rf"^messages\s+{count}\s*$", shown.out, re.M), shown.out


def test_quiet_prints_only_the_output(project: Path) -> None:
    quiet = regions("run", "workflows/ask_answer.yaml", "-q", cwd=project)
    assert quiet.code == 0, quiet.err
    assert quiet.out == "Ada led the Zebras in 1848.\nSource: Facts.\n"
    assert quiet.err == ""
    both = regions("run", "workflows/ask_answer.yaml", "-q", "--json", cwd=project)
    assert both.code == 2
    assert both.err == "error: --quiet and --json cannot be used together\n"


def test_show_prompts_prints_what_the_model_was_asked_and_answered(project: Path) -> None:
    assert regions("run", "workflows/ask_answer.yaml", "--no-live", cwd=project).code == 0
    prompts = regions("show", "workflows/ask_answer.yaml", "--prompts", cwd=project)
    assert prompts.code == 0, prompts.err
    out = prompts.out
    assert out.count("── call ") == 3
    assert "── call 2: Facts make_replies via default" in out
    assert "You are the keeper of facts about the Zebras." in out  # the task, in the prompt
    assert "[answer]\nThe Zebras were led by Ada." in out
    one = regions(
        "show", "workflows/ask_answer.yaml", "--prompts", "--region", "Facts", cwd=project
    )
    assert one.out.count("── call ") == 1
    unknown = regions(
        "show", "workflows/ask_answer.yaml", "--prompts", "--region", "Nobody", cwd=project
    )
    assert unknown.code == 1 and "unknown region 'Nobody'" in unknown.err


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
    assert failed.code == 3
    assert "steps      0 ok, 1 failed" in failed.out
    hint = hint_after("continue  ", failed.out)
    workflow.write_text(workflow.read_text().replace("defaults: {timeout: 0.2}\n", ""))
    refused = run_hint(hint, project)
    assert refused.code == 2 and "use --force" in refused.err
    done = run_hint(hint + " --force", project)
    assert done.code == 0, done.err
    assert "layers     3 of 3 run" in done.out
    assert Path(shlex.split(hint)[shlex.split(hint).index("--resume") + 1]).is_file()


def test_a_mistyped_region_gets_a_did_you_mean(project: Path) -> None:
    assert regions("step", "workflows/ask_answer.yaml", cwd=project).code == 0
    wf = "workflows/ask_answer.yaml"
    injected = regions("inject", "--run", wf, "--to", "Facs", "hello", cwd=project)
    assert injected.code == 1
    assert "unknown region 'Facs' (did you mean 'Facts'? regions: Facts, Historian)" in injected.err
    shown = regions("show", wf, "--region", "Historan", cwd=project)
    assert shown.code == 1 and "did you mean 'Historian'?" in shown.err
    far = regions("show", wf, "--region", "Zzz", cwd=project)
    assert (
        far.code == 1 and "did you mean" not in far.err and "regions: Facts, Historian" in far.err
    )
