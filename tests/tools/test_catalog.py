"""`catalog`: the tools each region can call, set up as a run sets them up (in process; the
command-line tests in tests/cli/test_tools_cmd.py start real MCP servers)."""

from __future__ import annotations

import sys
from pathlib import Path

from regions_cli.model import RegionConfig, Workflow
from regions_cli.model.tools import (
    CommandToolSpec,
    PythonToolSpec,
    RagToolSpec,
    RegionToolSpec,
    ToolSpec,
)
from regions_cli.tools.catalog import catalog

OBJECT = {"type": "object", "properties": {"x": {"type": "string"}}}


def workflow(folder: Path, *tools: ToolSpec) -> Workflow:
    specs = {spec.name: spec for spec in tools}
    regions = {
        "Solver": RegionConfig("Solver", "Region", task="Solve.", tools=tuple(specs)),
        "Critic": RegionConfig("Critic", "Region", task="Judge the answer."),
        "Runner": RegionConfig("Runner", "ToolRegion", tool=next(iter(specs))),
    }
    return Workflow("t", 1, "", regions, (), base_dir=folder, tools=specs)


async def test_a_command_beside_the_workflow_must_be_executable(tmp_path: Path) -> None:
    script = tmp_path / "bin" / "run.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\ncat\n")
    spec = CommandToolSpec("run", ("./bin/run.sh",), OBJECT, description="Run it.")
    found = await catalog(workflow(tmp_path, spec), environ={"PATH": ""})
    assert found.problems == (f"tool 'run': ./bin/run.sh is not an executable file in {tmp_path}",)
    assert found.regions["Solver"][0].parameters is None  # listed, as unavailable
    script.chmod(0o755)
    found = await catalog(workflow(tmp_path, spec), environ={"PATH": ""})
    assert found.ok
    (tool,) = found.regions["Runner"]
    assert (tool.name, tool.description, tool.parameters) == ("run", "Run it.", OBJECT)


async def test_env_names_are_read_from_the_given_environment_only(tmp_path: Path) -> None:
    spec = CommandToolSpec("add", (sys.executable, "-c", "pass"), OBJECT, env=("TOKEN",))
    missing = await catalog(workflow(tmp_path, spec), environ={"PATH": ""})
    assert missing.problems == ("tool 'add': the variable TOKEN named in env: is not set",)
    given = await catalog(workflow(tmp_path, spec), environ={"PATH": "", "TOKEN": "s3cret"})
    assert given.ok and "s3cret" not in repr(given.as_dict())


async def test_python_rag_and_region_tools_are_described_as_the_model_sees_them(
    tmp_path: Path,
) -> None:
    tools = (
        PythonToolSpec("words", "regions_cli.text:plural"),
        RagToolSpec("facts", "history", max_results=3),
        RegionToolSpec("critic", "Critic"),
    )
    found = await catalog(workflow(tmp_path, *tools), environ={})
    assert found.ok
    words, facts, critic = found.regions["Solver"]
    assert words.description.startswith("``1 step``")  # the docstring's first paragraph
    assert words.parameters is not None and words.parameters["required"] == ["count", "noun"]
    assert facts.description == "Search the history store for relevant passages."
    assert facts.parameters is not None and facts.parameters["required"] == ["query"]
    assert (critic.kind, critic.description) == ("region", "Judge the answer.")
    assert "Critic" not in found.regions  # a region without tools is not listed


async def test_a_python_target_that_does_not_import_is_a_problem(tmp_path: Path) -> None:
    spec = PythonToolSpec("gone", "regions_no_such_module:run")
    found = await catalog(workflow(tmp_path, spec), environ={})
    (problem,) = found.problems
    assert problem.startswith("tool 'gone': cannot import regions_no_such_module")
    assert found.as_dict()["ok"] is False
