"""Helpers for the tool tests: a workflow with tools, a model that plays a script of answers
(tool calls, then text), and small command tools written to a folder."""

from __future__ import annotations

import dataclasses
import json
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from engine_helpers import workflow

from regions_cli.llm.base import (
    Completion,
    CompletionRequest,
    TokenCallback,
    ToolCall,
    Usage,
)
from regions_cli.model import Workflow
from regions_cli.model.tools import CommandToolSpec, ToolLoopConfig, ToolSpec

NUMBERS = {
    "type": "object",
    "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
    "required": ["a", "b"],
}
ANY_OBJECT: dict[str, Any] = {"type": "object"}

#: Small programs the tests run as command tools (arguments on stdin as JSON).
SCRIPTS = {
    "add.py": """
        import json, sys
        args = json.load(sys.stdin)
        print(args["a"] + args["b"])
    """,
    "echo.py": """
        import json, sys
        print(json.load(sys.stdin)["input"].upper())
    """,
    "fail.py": """
        import sys
        sys.stdin.read()
        print("the disk is on fire", file=sys.stderr)
        sys.exit(3)
    """,
    "slow.py": """
        import time
        time.sleep(60)
    """,
    "env.py": """
        import os
        print(" ".join(sorted(os.environ)))
    """,
    # Announces its pid through a FIFO (blocks until the test reads it), then waits forever.
    "hang.py": """
        import json, os, sys, time
        fifo = json.load(sys.stdin)["fifo"]
        with open(fifo, "w") as out:
            out.write(str(os.getpid()))
        time.sleep(600)
    """,
    # Two calls meet at a FIFO: the reader blocks until the writer opens it, and the other way
    # round, so both end only if they run at the same time (one after the other: a timeout).
    "meet.py": """
        import json, sys
        args = json.load(sys.stdin)
        if args["side"] == "read":
            with open(args["fifo"]) as fifo:
                print("read " + fifo.read())
        else:
            with open(args["fifo"], "w") as fifo:
                fifo.write("hello")
            print("wrote")
    """,
}


def write_scripts(folder: Path) -> None:
    for name, text in SCRIPTS.items():
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")


def command(
    name: str,
    script: str,
    parameters: Mapping[str, Any] = ANY_OBJECT,
    *,
    timeout: float = 10.0,
    env: tuple[str, ...] = (),
) -> CommandToolSpec:
    return CommandToolSpec(
        name=name,
        command=(sys.executable, script),
        parameters=parameters,
        description=f"The {name} tool.",
        timeout=timeout,
        env=env,
    )


def with_tools(
    wf: Workflow,
    folder: Path,
    tools: Sequence[ToolSpec],
    uses: Mapping[str, Sequence[str]],
    loop: ToolLoopConfig | None = None,
) -> Workflow:
    """`wf` with ``tools:`` and each region of `uses` using them (a ToolRegion: its ``tool:``)
    in `folder` (the tools' working folder)."""
    regions = dict(wf.regions)
    for region, names in uses.items():
        config = regions[region]
        if config.type == "ToolRegion":
            config = dataclasses.replace(config, tool=names[0])
        else:
            config = dataclasses.replace(
                config, tools=tuple(names), tool_loop=loop or ToolLoopConfig()
            )
        regions[region] = config
    return dataclasses.replace(
        wf, regions=regions, tools={spec.name: spec for spec in tools}, base_dir=folder
    )


def solver(**extra: Any) -> Workflow:
    """One LLM region, Solver, asked one question by ``user``, answering it."""
    return workflow(
        {"Solver": {"type": "Region", "task": "Solve it.", **extra}},
        [{"chains": {"c": ["Solver.make_replies"]}}],
        inject=[{"from": "user", "to": "Solver", "content": "What is 2 + 3?"}],
    )


def call(name: str, arguments: Any, call_id: str = "") -> ToolCall:
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return ToolCall(call_id, name, text)


def asks(*calls: ToolCall) -> Completion:
    return Completion("", Usage(10, 5), tool_calls=calls)


class Script:
    """A `CompletionModel` that plays its answers in order (the last one again when it runs
    out); an answer may be a function of the request. It keeps every request."""

    def __init__(self, *answers: Completion | str | Callable[[CompletionRequest], Any]) -> None:
        self.name = "script"
        self.answers = list(answers)
        self.requests: list[CompletionRequest] = []

    async def complete(
        self, request: CompletionRequest, on_token: TokenCallback | None = None
    ) -> Completion:
        self.requests.append(request)
        index = min(len(self.requests), len(self.answers)) - 1
        answer = self.answers[index]
        if callable(answer):
            answer = answer(request)
        if isinstance(answer, BaseException):
            raise answer
        return answer if isinstance(answer, Completion) else Completion(answer, Usage(10, 5))

    async def aclose(self) -> None:
        return None


def tool_turns(request: CompletionRequest) -> list[str]:
    """The tool results a request hands back, in order."""
    return [m.content for m in request.messages if m.role == "tool"]


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its reaper counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
