"""A workflow is code, and the safe thing is the default: files outside the workflow's folder
need --allow-outside-paths, a sink never adds lines to a file a listener did not write, and
``${VAR}`` outside the keys where secrets belong is a warning naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest
from clirun import regions


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "outside.txt").write_text("a private note\n")
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "wf.yaml").write_text(
        "version: 1\nname: t\nllms: {default: {backend: scripted}}\n"
        "regions: {A: {type: Region, task: Answer.}}\n"
        "inject: [{from: user, to: A, role: request, file: ../outside.txt}]\n"
        "plan: [{chains: {a: [A.make_replies]}}]\n"
    )
    return folder


@pytest.mark.parametrize("command", ["run", "step"])
def test_a_file_outside_the_folder_needs_the_switch(project: Path, command: str) -> None:
    done = regions(command, "wf.yaml", cwd=project)
    assert done.code == 2
    last = done.err.strip().splitlines()[-1]
    assert "'../outside.txt' is outside the workflow's folder" in last
    assert "--allow-outside-paths" in last and "Traceback" not in done.err
    assert not (project / ".regions" / "runs").exists() or not any(
        (project / ".regions" / "runs").iterdir()
    )  # nothing was read into a run file
    allowed = regions(command, "wf.yaml", "--allow-outside-paths", cwd=project)
    assert allowed.code == 0, allowed.err


def test_verify_names_it_and_a_variable_outside_the_secret_keys(project: Path) -> None:
    workflow = project / "wf.yaml"
    workflow.write_text(workflow.read_text().replace("task: Answer.", "task: 'Hi ${USER:-x}.'"))
    done = regions("verify", "wf.yaml", cwd=project)
    assert done.code == 0  # warnings
    assert "warning[path-outside-workflow]" in done.out
    assert "warning[variable-outside-secrets] ${USER} in regions.A.task" in done.out
    workflow.write_text("env: [USER]\n" + workflow.read_text())
    assert "variable-outside-secrets" not in regions("verify", "wf.yaml", cwd=project).out


def test_a_sink_adds_lines_only_to_what_a_listener_wrote(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(
        "version: 1\nname: t\nllms: {default: {backend: scripted}}\n"
        "regions:\n  A: {type: Region, task: Answer.}\n"
        "  Trace: {type: ListenerRegion, sink: trace.jsonl}\n"
        "inject: [{from: user, to: A, role: request, content: hi}]\n"
        "plan: [{chains: {a: [Trace.start, A.make_replies, Trace.stop]}}]\n"
    )
    sink = tmp_path / "trace.jsonl"
    sink.write_text("export PATH=/somewhere\n")  # someone's file, not a trace
    done = regions("run", "wf.yaml", "--no-live", cwd=tmp_path)
    assert done.code == 3
    assert "was not written by a listener" in done.out
    assert sink.read_text() == "export PATH=/somewhere\n"
    sink.unlink()
    assert regions("run", "wf.yaml", "--no-live", cwd=tmp_path).code == 0
    first = len(sink.read_text().splitlines())
    assert regions("run", "wf.yaml", "--no-live", cwd=tmp_path).code == 0
    assert len(sink.read_text().splitlines()) == 2 * first > 0  # its own trace: appended
