"""``regions tools FILE`` in a real process: a command tool, the MCP server written for the
tool tests, the published `mcp-server-time`, a Python function and a region as a tool; then
what it says when a tool does not answer, and for a file it cannot use."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from clirun import regions

TOOLS = Path(__file__).resolve().parents[1] / "tools"
FIXTURE_SERVER = TOOLS / "fixtures" / "mcp_fixture_server.py"
TIME_SERVER = shutil.which("mcp-server-time", path=os.path.dirname(sys.executable))

ADD = """\
import json, sys
arguments = json.load(sys.stdin)
print(arguments["a"] + arguments["b"])
"""


def workflow(folder: Path, tools: str, solver_tools: str, runner: str = "add") -> Path:
    (folder / "tools").mkdir(exist_ok=True)
    (folder / "tools" / "add.py").write_text(ADD)
    path = folder / "w.yaml"
    path.write_text(
        f"""\
version: 1
name: tools
llms: {{default: {{backend: scripted}}}}
tools:
  add:
    command: [{sys.executable}, tools/add.py]
    description: Add two numbers.
    parameters:
      type: object
      properties: {{a: {{type: number}}, b: {{type: number}}}}
      required: [a, b]
{tools}
regions:
  Solver: {{type: Region, task: Solve., connections: [Runner], tools: [{solver_tools}]}}
  Critic: {{type: Region, task: Judge the answer.}}
  Runner: {{type: ToolRegion, tool: {runner}}}
inject: [{{to: Solver, content: "2 + 3?"}}, {{to: Critic, content: "5?"}}]
plan:
  - chains: {{main: [Solver.make_questions, Runner.make_replies, Critic.make_replies]}}
"""
    )
    return path


def test_every_tool_of_every_kind_is_listed_with_its_schema(tmp_path: Path) -> None:
    assert TIME_SERVER, "mcp-server-time is in the dev extra"
    path = workflow(
        tmp_path,
        f"""\
  clock: {{mcp: {{command: [{TIME_SERVER}, --local-timezone, UTC]}}}}
  fixture: {{mcp: {{command: [{sys.executable}, {FIXTURE_SERVER}]}}}}
  words: {{python: "regions_cli.text:plural"}}
  critic: {{region: Critic}}""",
        "clock, fixture, words, critic",  # (the fixture server has an `add` of its own)
    )
    result = regions("tools", path, "--json")
    assert (result.code, result.err) == (0, "")
    report = json.loads(result.out)
    assert report["ok"] is True and report["problems"] == []
    solver = {tool["name"]: tool for tool in report["regions"]["Solver"]}
    # an MCP entry offers every tool of its server, under the server's names
    assert {"get_current_time", "convert_time", "pid", "slow", "add"} <= set(solver)
    assert (solver["get_current_time"]["entry"], solver["add"]["entry"]) == ("clock", "fixture")
    assert solver["get_current_time"]["parameters"]["required"] == ["timezone"]
    assert solver["words"]["kind"] == "python"
    assert solver["words"]["parameters"]["required"] == ["count", "noun"]
    assert solver["critic"] == {
        "name": "critic",
        "entry": "critic",
        "kind": "region",
        "description": "Judge the answer.",
        "parameters": solver["critic"]["parameters"],
    }
    assert solver["critic"]["parameters"]["required"] == ["request"]
    (runner,) = report["regions"]["Runner"]
    assert (runner["name"], runner["kind"], runner["description"]) == (
        "add",
        "command",
        "Add two numbers.",
    )
    assert "Critic" not in report["regions"]  # no tools


def test_two_tools_of_one_name_are_a_problem(tmp_path: Path) -> None:
    # The fixture server has a tool called `add` too: the model could not tell them apart.
    path = workflow(
        tmp_path,
        f"  fixture: {{mcp: {{command: [{sys.executable}, {FIXTURE_SERVER}]}}}}",
        "add, fixture",
    )
    result = regions("tools", path, env={"COLUMNS": "200"})
    assert result.code == 1
    assert result.err == (
        "regions tools: region 'Solver': two tools are called 'add' (from add and fixture)\n"
    )
    assert "get_current_time" not in result.out and "a: number, b: number" in result.out


def test_each_tool_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    crashing = tmp_path / "crash.py"
    crashing.write_text("import sys\nprint('no server here', file=sys.stderr)\nsys.exit(3)\n")
    path = workflow(
        tmp_path,
        f"""\
  broken: {{mcp: {{command: [{sys.executable}, crash.py]}}}}
  missing: {{command: [regions-no-such-program], parameters: {{type: object}}}}
  secret:
    command: [{sys.executable}, tools/add.py]
    parameters: {{type: object}}
    env: [REGIONS_TEST_UNSET]
  gone: {{python: "regions_no_such_module:run"}}""",
        "add, broken, missing, secret, gone",
    )
    result = regions("tools", path, env={"COLUMNS": "200"})
    assert result.code == 1
    problems = result.err.splitlines()
    assert len(problems) == 4, result.err
    broken, missing, secret, gone = problems
    assert broken.startswith("regions tools: tool 'broken': the MCP server failed")
    assert "no server here" in broken
    assert (
        missing
        == "regions tools: tool 'missing': command not found on PATH: regions-no-such-program"
    )
    assert secret == (
        "regions tools: tool 'secret': the variable REGIONS_TEST_UNSET named in env: is not set"
    )
    assert gone.startswith("regions tools: tool 'gone': cannot import regions_no_such_module")
    assert "unavailable" in result.out and "4 problems" in result.out
    # the tools that answer are still listed
    assert "Add two numbers." in result.out


def test_a_workflow_without_tools_lists_nothing(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        "version: 1\nname: t\nllms: {default: {backend: scripted}}\n"
        "regions:\n  A: {type: Region, task: t}\n"
        "inject: [{to: A, content: x}]\nplan:\n  - chains: {main: [A.make_replies]}\n"
    )
    result = regions("tools", path)
    assert (result.code, result.out, result.err) == (0, "No region has tools.\n", "")
    assert json.loads(regions("tools", path, "--json").out) == {
        "ok": True,
        "regions": {},
        "problems": [],
    }


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (None, "w.yaml: cannot read"),
        (
            "version: 1\nname: t\nregions: {R: {type: ToolRegion}}\n"
            "plan: [{chains: {m: [R.make_replies]}}]\n",
            "missing required key 'tool'",
        ),
    ],
)
def test_an_unusable_file_is_a_usage_error(tmp_path: Path, content: str | None, error: str) -> None:
    path = tmp_path / "w.yaml"
    if content is not None:
        path.write_text(content)
    result = regions("tools", path)
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("regions tools: ") and error in result.err
    assert result.err.count("\n") == 1


def test_a_module_that_prints_on_import_leaves_the_json_whole(tmp_path: Path) -> None:
    (tmp_path / "chatty.py").write_text(
        'print("hello from chatty")\n\ndef shout(text: str) -> str:\n    return text.upper()\n'
    )
    path = workflow(tmp_path, '  shout: {python: "chatty:shout"}', "shout")
    result = regions("tools", path, "--json", env={"PYTHONPATH": str(tmp_path)})
    assert result.code == 0
    (shout,) = json.loads(result.out)["regions"]["Solver"]
    assert shout["parameters"]["required"] == ["text"]
    assert "hello from chatty" in result.err
