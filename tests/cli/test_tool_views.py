"""Tool calls as people see them: the plain lines of a run, the live view's feed, `regions
show` and `regions replay` (the calculator example, its model scripted to call the tool)."""

from __future__ import annotations

import shutil
from pathlib import Path

from clirun import regions

from regions_cli.engine.events import ToolCalled, ToolResulted
from regions_cli.view.state import RunState

ROOT = Path(__file__).resolve().parents[2]

SCRIPTED = """llms:
  default:
    backend: scripted
    rules:
      - {match: "tool result calculate", reply: "17 * 23 + 4 is 395."}
      - {match: "17 \\\\* 23", tool_call: {name: calculate, arguments: {expression: "17 * 23 + 4"}}}
"""


def calculator(tmp_path: Path) -> Path:
    folder = tmp_path / "workflows"
    shutil.copytree(ROOT / "workflows" / "tools", folder / "tools")
    text = (ROOT / "workflows" / "calculator.yaml").read_text(encoding="utf-8")
    head, _, rest = text.partition("llms:\n")
    rest = rest[rest.index("\ntools:") + 1 :]  # the local llms entry replaced by the script
    path = folder / "calculator.yaml"
    path.write_text(head + SCRIPTED + "\n" + rest, encoding="utf-8")
    return path


def test_a_run_shows_each_call_and_result_and_show_lists_them(tmp_path: Path) -> None:
    path = calculator(tmp_path)
    run = tmp_path / "calc.db"
    result = regions("run", path, "--run", run, "--no-live", cwd=path.parent)
    assert result.code == 0, result.output
    lines = result.out.splitlines()
    assert any(
        line.endswith('tool Solver -> calculate: {"expression": "17 * 23 + 4"}') for line in lines
    ), result.out
    assert any(
        "tool result calculate -> Solver " in line and line.endswith(": 395") for line in lines
    )
    assert any(
        "Solver.make_replies ok" in line and "(tool loop: answered)" in line for line in lines
    )
    shown = regions("show", run, cwd=path.parent)
    assert shown.code == 0, shown.output
    assert "Tool calls: 1" in shown.out
    assert "17 * 23 + 4" in shown.out and "395" in shown.out
    replayed = regions("replay", run, "--speed", "instant", "--no-live", cwd=path.parent)
    assert replayed.code == 0, replayed.output
    assert 'tool Solver -> calculate: {"expression": "17 * 23 + 4"}' in replayed.out


def test_the_live_views_feed_has_the_calls_and_errors() -> None:
    state = RunState()
    state.apply(ToolCalled(region="Solver", tool="calculate", call_id="c1", arguments='{"a": 1}'))
    state.apply(
        ToolResulted(region="Solver", tool="calculate", call_id="c1", content="bad", is_error=True)
    )
    call, result = list(state.feed)
    assert (call.kind, call.source, call.destination, call.text) == (
        "tool_call",
        "Solver",
        "calculate",
        '{"a": 1}',
    )
    assert (result.kind, result.level, result.text) == ("tool_result", "error", "bad")
    assert (state.tool_calls, state.tool_errors) == (1, 1)
