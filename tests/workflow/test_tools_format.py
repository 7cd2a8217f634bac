"""The declarative side of tools: the schema's messages, and what `load_workflow` builds from a
``tools:`` block and a region's ``tools``/``tool_loop``/``tool``."""

from __future__ import annotations

from pathlib import Path

import pytest
from workflow_helpers import FIXTURE_ENV, FIXTURES

from regions_cli.model.tools import (
    REGION_TOOL_PARAMETERS,
    CommandToolSpec,
    McpServerSpec,
    PythonToolSpec,
    RagToolSpec,
    RegionToolSpec,
    ToolLoopConfig,
    find_program,
)
from regions_cli.workflow.api import load_workflow, verify, verify_text

SOLVER = FIXTURES / "tools" / "solver.yaml"


def test_a_workflow_with_every_kind_of_tool_verifies() -> None:
    assert verify(SOLVER, env=FIXTURE_ENV) == []


def test_the_tools_block_builds_one_spec_per_kind() -> None:
    workflow = load_workflow(SOLVER, env=FIXTURE_ENV)
    tools = workflow.tools
    assert tools["add"] == CommandToolSpec(
        name="add",
        command=("python3", "tools/add.py"),  # argv as written: resolved when it runs
        parameters={
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"],
        },
        description="Add two numbers.",
        timeout=10.0,
        env=("TEST_API_KEY",),
    )
    assert tools["clock"] == McpServerSpec(
        name="clock", command=("python3", "-m", "mcp_server_time"), timeout=5.0
    )
    assert tools["remote"] == McpServerSpec(name="remote", url="http://127.0.0.1:8931/mcp")
    # A rag tool returns as many chunks as its store does unless it says otherwise.
    assert tools["facts"] == RagToolSpec(
        name="facts", store="historical", description="Search the history notes.", max_results=3
    )
    assert tools["critic"] == RegionToolSpec(name="critic", region="Critic", timeout=120.0)
    assert tools["slugify"] == PythonToolSpec(name="slugify", target="regions_cli.text:plural")


def test_regions_get_their_tools_loop_and_tool() -> None:
    regions = load_workflow(SOLVER, env=FIXTURE_ENV).regions
    solver, critic, runner = regions["Solver"], regions["Critic"], regions["Runner"]
    assert solver.tools == ("add", "clock", "remote", "facts", "critic", "slugify")
    assert solver.tool_loop == ToolLoopConfig(4, ("add",), True)
    assert critic.tool_loop == ToolLoopConfig(terminal_tools=("echo",))
    assert (runner.type, runner.tool, runner.llm, runner.tools) == ("ToolRegion", "add", None, ())
    assert regions["Tap"].tool_loop == ToolLoopConfig()


def findings(text: str, tmp_path: Path) -> list[tuple[str, str, str | None]]:
    return [(f.rule, f.message, f.hint) for f in verify_text(text, base_dir=tmp_path)]


HEAD = "version: 1\nname: t\n"
PLAN = "inject: [{to: A, content: x}]\nplan:\n  - chains: {main: [A.make_replies]}\n"


def test_a_tool_region_with_model_keys_says_it_has_no_model(tmp_path: Path) -> None:
    text = (
        HEAD
        + "tools:\n  add: {python: 'operator:add'}\n"
        + "regions:\n  A: {type: ToolRegion, tool: add, output_schema: {type: object}}\n"
        + PLAN
    )
    ((rule, message, hint),) = findings(text, tmp_path)
    assert rule == "key-not-for-type"
    assert message == "'output_schema' does not apply to a region of type ToolRegion in region 'A'"
    assert hint is not None and hint.startswith("a ToolRegion has no model")


@pytest.mark.parametrize(
    ("tool", "message"),
    [
        ("{description: x}", "a tool needs exactly one of `command`, `python`, `mcp`"),
        ("{python: 'a:b', mcp: {url: 'http://x'}}", "a tool needs exactly one of"),
        ("{python: 'a.b'}", "must be written package.module:function; got 'a.b'"),
        ("{python: 'a:b', env: [X]}", "'env' does not apply to a python tool in tool 't1'"),
        ("{mcp: {}}", "an MCP server needs exactly one of `command` (stdio) or `url`"),
        ("{mcp: {command: []}}", "should be non-empty"),
        ("{command: [python3]}", "tool 't1' is missing required key 'parameters'"),
    ],
)
def test_bad_tool_entries_get_one_clear_message(tmp_path: Path, tool: str, message: str) -> None:
    text = HEAD + f"tools:\n  t1: {tool}\nregions:\n  A: {{type: Region, task: t, tools: [t1]}}\n"
    found = findings(text + PLAN, tmp_path)
    assert len(found) == 1, found
    assert message in found[0][1]


def test_a_program_is_found_on_path_or_beside_the_workflow(tmp_path: Path) -> None:
    script = tmp_path / "bin" / "run.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    assert find_program("bin/run.sh", tmp_path) is None  # not executable
    script.chmod(0o755)
    assert find_program("bin/run.sh", tmp_path) == tmp_path / "bin" / "run.sh"
    assert find_program("run.sh", tmp_path, path=str(script.parent)) == script
    assert find_program("run.sh", tmp_path, path="") is None  # a bare name: PATH only


def test_region_tool_parameters_are_an_object_of_one_request() -> None:
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(REGION_TOOL_PARAMETERS)
    assert REGION_TOOL_PARAMETERS["required"] == ["request"]


def test_every_key_of_the_tools_page_is_in_the_schema() -> None:
    import re

    from ruamel.yaml import YAML
    from schema_keys import unknown_keys

    from regions_cli.workflow.schema import schema

    page = (Path(__file__).resolve().parents[2] / "docs" / "tools.md").read_text("utf-8")
    blocks = [YAML(typ="rt").load(b) for b in re.findall(r"```yaml\n(.*?)```", page, re.S)]
    assert len(blocks) >= 2 and "tools" in blocks[0]
    for block in blocks:
        assert unknown_keys(block, schema()) == []
