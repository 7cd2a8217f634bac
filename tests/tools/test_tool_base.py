"""The shared base of tools: the protocol, capping, and failures that never raise."""

from __future__ import annotations

from typing import Any

from regions_cli.tools import OUTPUT_CAP, CheckedTool, Tool, ToolResult
from regions_cli.tools.base import as_text, capped_result


class Buggy(CheckedTool):
    """A tool kind with a bug: its `invoke` raises something unexpected."""

    def __init__(self) -> None:
        super().__init__("buggy", "Has a bug.", {"type": "object"})

    async def invoke(self, arguments: dict[str, Any]) -> ToolResult:
        raise KeyError("oops")


async def test_a_bug_in_a_tool_kind_is_an_error_result_not_an_exception() -> None:
    tool = Buggy()
    assert isinstance(tool, Tool)
    result = await tool.call({})
    assert result.is_error
    assert result.content == "buggy failed: KeyError: 'oops'"
    assert repr(tool) == "Buggy('buggy')"


def test_capping_counts_bytes_and_never_splits_a_character() -> None:
    text = "é" * OUTPUT_CAP  # two bytes each
    result = capped_result(text)
    assert result.truncated
    kept, note = result.content.split("\n[")
    assert len(kept.encode()) == OUTPUT_CAP
    assert note == f"output truncated: kept the first {OUTPUT_CAP} of {2 * OUTPUT_CAP} bytes]"
    assert capped_result("short") == ToolResult("short")


def test_values_become_text() -> None:
    assert as_text("plain") == "plain"
    assert as_text(None) == ""
    assert as_text({"n": 1, "when": object}).startswith('{"n": 1, "when": "<class')
