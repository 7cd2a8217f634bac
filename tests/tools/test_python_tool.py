"""Python tools: parameters from signatures, sync and async calls, errors as results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from regions_cli.model.tools import PythonToolSpec
from regions_cli.tools.base import OUTPUT_CAP, ToolError
from regions_cli.tools.python import PythonTool

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def importable_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES))


def tool(function: str, timeout: float = 30.0) -> PythonTool:
    return PythonTool(
        PythonToolSpec(name=function, target=f"tool_functions:{function}", timeout=timeout)
    )


def test_the_parameters_come_from_the_signature() -> None:
    add = tool("add")
    assert add.description == "Add two integers."
    assert add.parameters == {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    assert tool("describe").parameters["properties"] == {
        "name": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "scores": {"type": "object", "additionalProperties": {"type": "number"}},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "mode": {"enum": ["short", "long"]},
    }


async def test_a_sync_function_runs_and_defaults_apply() -> None:
    result = await tool("add").call({"a": 40})
    assert (result.content, result.is_error) == ("42", False)


async def test_an_async_function_is_awaited() -> None:
    result = await tool("shout").call({"text": "hi", "times": 2})
    assert (result.content, result.is_error) == ("HI HI", False)


async def test_a_structured_return_value_is_json_and_none_is_empty() -> None:
    arguments = {"name": "n", "tags": ["a"], "scores": {"x": 1.5}, "note": None}
    result = await tool("describe").call(arguments)
    assert json.loads(result.content) == {**arguments, "mode": "short"}
    assert (await tool("nothing").call({})).content == ""


async def test_an_exception_is_an_error_result() -> None:
    result = await tool("explode").call({"message": "kaboom"})
    assert result.is_error
    assert result.content == "explode: RuntimeError: kaboom"


async def test_invalid_arguments_are_an_error_result() -> None:
    unknown = await tool("add").call({"a": 1, "c": 3})
    wrong = await tool("add").call({"a": "one"})
    boolean = await tool("add").call({"a": True})  # JSON true is not an integer
    assert unknown.is_error and "Additional properties are not allowed" in unknown.content
    assert wrong.is_error and "a: 'one' is not of type 'integer'" in wrong.content
    assert boolean.is_error


async def test_a_slow_function_times_out_as_an_error_result() -> None:
    result = await tool("nap", timeout=0.2).call({"seconds": 1.0})
    assert result.is_error
    assert result.content == "nap: timed out after 0.2 s"


def test_an_abandoned_function_does_not_hold_up_the_end_of_the_process(tmp_path: Path) -> None:
    script = tmp_path / "run_nap.py"
    script.write_text(
        "import asyncio, sys\n"
        f"sys.path.insert(0, {str(FIXTURES)!r})\n"
        "from regions_cli.model.tools import PythonToolSpec\n"
        "from regions_cli.tools.python import PythonTool\n"
        "tool = PythonTool(PythonToolSpec('nap', 'tool_functions:nap', timeout=0.2))\n"
        "print(asyncio.run(tool.call({'seconds': 600})).content)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert (done.returncode, done.stdout) == (0, "nap: timed out after 0.2 s\n"), done.stderr


async def test_a_long_result_is_capped() -> None:
    result = await tool("huge").call({"size": OUTPUT_CAP * 3})
    assert result.truncated
    assert result.content.endswith(
        f"[output truncated: kept the first {OUTPUT_CAP} of {OUTPUT_CAP * 3} bytes]"
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("tool_functions", r"is not 'package\.module:function'"),
        ("no_such_module_8d2c:f", r"cannot import no_such_module_8d2c: ModuleNotFoundError"),
        ("tool_functions:missing", r"tool_functions has no missing"),
        ("tool_functions:NOT_CALLABLE", r"is not callable"),
        ("tool_functions:positional_only", r"parameter 'a' cannot be passed by name"),
        ("tool_functions:takes_an_object", r"parameter 'thing' has the type .*no JSON Schema"),
    ],
)
def test_a_target_that_cannot_be_a_tool_is_a_one_line_error(target: str, message: str) -> None:
    with pytest.raises(ToolError, match=message) as caught:
        PythonTool(PythonToolSpec(name="f", target=target))
    assert str(caught.value).startswith("tool 'f': ")
    assert "\n" not in str(caught.value)
