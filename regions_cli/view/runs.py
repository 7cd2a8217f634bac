"""Run files for people: the summary ``regions show`` prints, and what waits after a step."""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from regions_cli.engine.events import FAILED_OUTCOMES, Event, LLMCalled
from regions_cli.runs.status import (
    current_states,
    machine_info,
    message_count,
    run_info,
    tool_calls,
    waiting_for,
)
from regions_cli.runs.store import RunFile
from regions_cli.text import plural
from regions_cli.view.report import waiting_text
from regions_cli.view.state import StatePath, first_line
from regions_cli.view.state import plain_text as t


def summary_table(run: RunFile, next_commands: Sequence[str] = ()) -> Any:
    """The rich renderable `regions show` prints; `next_commands`: how to go on with a run
    that waits (the ``regions inject`` that answers it, then the resume)."""
    info = run_info(run)
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold cyan")
    head.add_column()
    head.add_row("run file", t(run.path))
    head.add_row("workflow", t(f"{run.workflow.name} ({run.workflow.path})"))
    head.add_row("status", t(info["status"]))
    head.add_row("plan", t(info["position_text"]))
    machine = machine_info(run)
    if machine is not None:
        _machine_rows(head, machine)
    queued: dict[str, int] = {}
    for item in run.injections(pending_only=True):
        queued[item.message.destination] = queued.get(item.message.destination, 0) + 1
    wait = waiting_for(run)
    if wait is not None:
        answered = "; an answer is queued" if queued.get(wait.region) else ""
        head.add_row("waiting", t(waiting_text(wait.region, wait.prompt) + answered))
    if next_commands:
        head.add_row("continue", t("\n".join(next_commands)))
    head.add_row("started", when(run.created))
    head.add_row(
        "invocations",
        t(", ".join(f"{i['kind']}:{i['status'] or 'running'}" for i in run.invocations()))
        or "none",
    )
    usage = run.usage()
    prompt = sum(u["prompt_tokens"] for u in usage.values())
    completion = sum(u["completion_tokens"] for u in usage.values())
    calls = sum(u["calls"] for u in usage.values())
    head.add_row(
        "tokens",
        f"{prompt + completion} ({prompt} prompt, {completion} completion), {calls} LLM calls",
    )
    head.add_row("messages", str(message_count(run)))

    regions = Table(title="Regions", title_justify="left", show_edge=False)
    for column in ("region", "type", "pending requests", "held", "knowledge", "queued", "tokens"):
        regions.add_column(column)
    states = current_states(run)
    for name, kind in run.workflow.regions.items():
        state = states.get(name, {})
        tokens = usage.get(name, {})
        regions.add_row(
            t(name),
            t(kind),
            str(len(state.get("requests") or [])),
            str(len(state.get("inbox") or [])),
            str(len(state.get("replies") or [])),
            str(queued.get(name, 0)),
            str(tokens.get("prompt_tokens", 0) + tokens.get("completion_tokens", 0)),
        )
    parts: list[Any] = [head, Text(""), regions]
    failures = [s for s in run.steps() if s["outcome"] in FAILED_OUTCOMES]
    rejected = [m for m in run.messages() if m["delivery"] == "rejected"]
    if failures or rejected:
        table = Table(title="Failures", title_justify="left", show_edge=False)
        table.add_column("where")
        table.add_column("what")
        for s in failures:
            where = f"layer {s['layer'] + 1} {s['chain']} {s['region']}.{s['method']}"
            table.add_row(t(where), t(f"{s['outcome']}: {s['error'] or ''}"))
        for m in rejected:
            table.add_row(
                t(f"{m['source']} -> {m['destination']}"),
                t(f"rejected ({m['rule']}): {m['reason']}"),
            )
        parts += [Text(""), table]
    count, latest = tool_calls(run)
    if count:
        shown = f" (the latest {len(latest)})" if count > len(latest) else ""
        table = Table(title=f"Tool calls: {count}{shown}", title_justify="left", show_edge=False)
        for column in ("region", "tool", "arguments", "result"):
            table.add_column(column, overflow="fold")
        for call in latest:
            result = "(no result)" if call["content"] is None else call["content"]
            if call["is_error"]:
                result = f"error: {result}"
            cut = " (cut)" if call["truncated"] else ""
            table.add_row(
                t(call["region"]), t(call["tool"]), t(first_line(call["arguments"], 120)),
                t(first_line(result, 200) + cut),
            )  # fmt: skip
        parts += [Text(""), table]
    return Group(*parts)


def _machine_rows(head: Table, machine: dict[str, Any]) -> None:
    """A state machine's rows of `regions show`: state, visits, transitions, path."""
    visits = machine["visits"]
    state = machine["state"]
    if state is not None:
        visit = visits.get(state)
        head.add_row("state", t(f"{state} (visit {visit})" if visit else state))
    head.add_row("visits", t(", ".join(f"{name} {count}" for name, count in visits.items())))
    transitions = str(machine["transitions"])
    last = machine["last_transition"]
    if last is not None:
        transitions += f" (last: {last['state']} -> {last['to']}: {last['reason']})"
    head.add_row("transitions", t(transitions))
    path = StatePath()
    for name in machine["path"]:
        path.add(name)
    if path:
        head.add_row("path", t(path.text()))


def pending_lines(
    run: RunFile, file: Path, flags: Sequence[str] = (), answer_command: str | None = None
) -> list[str]:
    """After a step: where the run stands, what waits where, and the command that goes on
    (with `flags`, what that step was given that the next one needs again); for a run that
    waits for a person, what for and `answer_command`, the ``regions inject`` that answers.
    """
    plan = run.workflow.plan
    position = run.position
    index = run.next_layer()
    lines = ["", f"Run file {run.path}"]
    for name, state in sorted(current_states(run).items()):
        requests = state.get("requests") or []
        replies = state.get("replies") or []
        inbox = state.get("inbox") or []
        if not (requests or inbox):
            continue
        lines.append(
            f"  pending at {name}: {plural(len(requests), 'request')}, {len(inbox)} held, "
            f"{plural(len(replies), 'reply', 'replies')} kept"
        )
        for entry in requests:
            lines.append(f"    {entry.get('source')}: {first_line(str(entry.get('content')))}")
    for item in run.injections(pending_only=True):
        lines.append(f"  queued injection for {item.message.destination} ({item.message.role})")
    wait = waiting_for(run)
    if wait is not None:
        lines.append(f"Waiting {waiting_text(wait.region, wait.prompt)}")
        if answer_command is not None:
            lines.append(f"  answer: {answer_command}")
    if index >= len(plan):
        lines.append(f"Plan finished ({len(plan)}/{len(plan)} layers).")
    else:
        label = plan[index].get("label", "")
        if "state" in plan[index]:
            label += f" of state {plan[index]['state']}"
        done = sorted(run.chains_done(position))
        again = f" (chains {', '.join(done)} done; the others run again)" if done else ""
        command = shlex.join(["regions", "step", str(file), "--run", str(run.path), *flags])
        lines.append(f"Next: layer {index + 1}/{len(plan)} {label}{again}: {command}")
    return lines


def when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else ""


def prompt_lines(events: Sequence[Event], region: str | None = None) -> list[str]:
    """Every model call of a run (of `region`'s, if given): who asked, why, the system and
    user prompts, and the answer, in full."""
    calls = [e for e in events if isinstance(e, LLMCalled) and region in (None, e.region)]
    if not calls:
        return [f"no model calls{f' by {region}' if region else ''} in this run"]
    lines: list[str] = []
    for number, call in enumerate(calls, 1):
        cached = ", from the cache" if call.cached else ""
        lines.append(f"── call {number}: {call.region} {call.purpose} via {call.llm}{cached}")
        if not (call.system or call.user):
            lines.append("  (not recorded: the run was made by an earlier regions)")
            continue
        for title, text in (("system", call.system), ("user", call.user)):
            lines.append(f"[{title}]")
            lines.extend(text.splitlines() or [""])
        lines.append("[answer]" if call.error is None else f"[answer: {call.error}]")
        lines.extend(call.answer.splitlines() or [""])
        lines.append("")
    return lines
