"""The public Python API: its names are pinned (as httpx pins its own), and it runs a workflow
end to end with a subscriber, the way a program embedding `regions` would."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import regions_cli

PUBLIC = [
    "ExitCode",
    "Loaded",
    "Run",
    "RunError",
    "WorkflowInvalid",
    "__version__",
    "load",
    "load_workflow",
    "verify",
]

WORKFLOW = """\
version: 1
name: api
llms: {default: {backend: scripted, rules: [{match: "What is", reply: "Four."}]}}
regions:
  Solver: {type: Region, task: Answer arithmetic.}
inject: [{from: user, to: Solver, role: request, content: What is 2 + 2?}]
plan: [{chains: {main: [Solver.make_replies]}}]
"""


def test_the_public_names_are_pinned() -> None:
    assert sorted(regions_cli.__all__) == PUBLIC
    for name in PUBLIC:
        assert getattr(regions_cli, name) is not None


def test_importing_the_package_loads_nothing_heavy() -> None:
    code = (
        "import sys, regions_cli; "
        "print(sorted(m for m in sys.modules if m.startswith('regions_cli')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['regions_cli']"


def test_load_verify_and_run_with_a_subscriber(tmp_path: Path) -> None:
    path = tmp_path / "api.yaml"
    path.write_text(WORKFLOW, encoding="utf-8")
    assert [f for f in regions_cli.verify(path) if f.is_error] == []
    loaded = regions_cli.load(path)
    assert loaded.workflow is not None and loaded.errors == []
    kinds: list[str] = []
    outputs: list[str] = []

    def subscriber(event: object) -> None:
        kinds.append(event.kind)  # type: ignore[attr-defined]
        message = getattr(event, "message", None)
        if message is not None and getattr(event, "delivery", None) == "output":
            outputs.append(message.content)

    with regions_cli.Run.open(loaded.workflow, loaded.document) as run:
        run.subscribe(subscriber)
        finished = asyncio.run(run.execute())
        assert run.path is not None and run.path.is_file()
    assert finished.exit_code == regions_cli.ExitCode.OK
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert "step_finished" in kinds
    assert outputs == ["Four."]  # the reply to the user left the workflow


def test_a_bad_file_is_findings_not_an_exception(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "version: 1\nname: bad\nregions: {}\nplan: [{chains: {m: [Nobody.make_replies]}}]\n"
    )
    loaded = regions_cli.load(path)
    assert loaded.workflow is None
    assert loaded.errors and all(f.is_error for f in loaded.errors)
    try:
        regions_cli.load_workflow(path)
    except regions_cli.WorkflowInvalid as exc:
        assert "needs at least 1 entry" in str(exc)
    else:
        raise AssertionError("load_workflow accepted an invalid workflow")
