"""Tools: what an LLM region can call, one module per kind, behind one protocol.

* `base` -- the `Tool` protocol (a name, a description, a JSON Schema of the arguments and
  ``async call(arguments) -> ToolResult``), `ToolResult`, `ToolError`, and `CheckedTool`, the
  shared base that validates arguments before a call and turns every failure into an error
  result (a failing tool goes back to the model; it never raises into the run).
* `command` -- a program run per call: argv (no shell), JSON on stdin, stdout as the result,
  ``PATH`` plus named variables only, timeouts and cancellation stop the whole process group,
  output capped at `base.OUTPUT_CAP` bytes with a visible note.
* `python` -- a ``"package.module:function"``, its parameters from the signature.
* `mcp` -- every tool of an MCP server (stdio or streamable HTTP); `McpServers` starts each
  server once, shares it, and stops them all at the end.
* `rag` -- a search over a RAG store.

The specs these are built from are the frozen types of `regions_cli.model.tools`. Wiring tools
into the engine (the tool loop inside a step, ``ToolRegion``, events) lives outside this package.
"""

from regions_cli.tools.base import OUTPUT_CAP, CheckedTool, Tool, ToolError, ToolResult

__all__ = ["OUTPUT_CAP", "CheckedTool", "Tool", "ToolError", "ToolResult"]
