"""What a run file says about its run, for people and tools: its status and position
(`run_info`), where a state machine is and the path it took (`machine_info`), the ``wait:`` it
stops at (`next_wait`), the regions' current state, and the totals of a run written by
several invocations (`whole_run_finished`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from regions_cli.engine import events as ev
from regions_cli.engine.events import FAILED_OUTCOMES, UNFINISHED_OUTCOMES
from regions_cli.model import END, Wait
from regions_cli.runs.codec import events_from_json
from regions_cli.runs.resume import resume_point
from regions_cli.runs.store import RunFile, pid_alive


def current_states(run: RunFile) -> dict[str, dict[str, Any]]:
    """The regions' state a continued run would start from: the last barrier's, with the
    chains of the layer in progress that already completed."""
    return resume_point(run).states if run.started else {}


def message_count(run: RunFile) -> int:
    """How many messages the run delivered, counted as the run's summary counts them: each
    message once (a listener's copy shares its message's delivery number), rejections and
    what a resume rolled back left out."""
    return len({m["delivery_seq"] for m in run.messages() if m["delivery_seq"] is not None})


def next_wait(run: RunFile) -> Wait | None:
    """The ``wait:`` item the run goes on with, if its next layer is one (None otherwise, and
    for a run that has finished)."""
    plan = run.workflow.plan
    index = run.next_layer()
    item = plan[index].get("wait") if index < len(plan) else None
    if not isinstance(item, dict):
        return None
    return Wait(str(item.get("for", "")), str(item.get("prompt") or ""))


def waiting_for(run: RunFile) -> Wait | None:
    """The ``wait:`` a run stopped at for a person (its last invocation ended ``waiting``),
    or None."""
    invocations = run.invocations()
    if not invocations or invocations[-1]["status"] != "waiting" or run.finished:
        return None
    return next_wait(run)


def machine_info(run: RunFile) -> dict[str, Any] | None:
    """Where a state machine's run is, from its run file: the current ``state``, ``visits``
    per state, ``transitions`` taken, the ``path`` of states entered (``end`` last once it
    has ended) and the ``last_transition`` (its event's JSON). None for a plain plan."""
    if not run.workflow.states:
        return None
    path: list[str] = []
    last: dict[str, Any] | None = None
    for data in run.events():
        if data["kind"] == "state_entered":
            path.append(str(data["state"]))
        elif data["kind"] == "transition":
            last = data
            if data["to"] == END:
                path.append(END)
    cursor = run.cursor() or {}
    return {
        "state": cursor.get("state") or (path[-1] if path else None),
        "visits": {str(k): int(v) for k, v in dict(cursor.get("visits") or {}).items()},
        "transitions": int(cursor.get("transitions") or 0),
        "path": path,
        "last_transition": last,
    }


#: How many tool calls `tool_calls` returns at most (the latest).
TOOL_CALLS_SHOWN = 20


def tool_calls(run: RunFile) -> tuple[int, list[dict[str, Any]]]:
    """How many tool calls the run made, and the latest `TOOL_CALLS_SHOWN` of them, each with
    its result: ``{region, tool, arguments, content, is_error, truncated}`` (``content`` None
    while a call has no result yet)."""
    calls: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for data in run.events():
        if data["kind"] == "tool_call":
            key = f"{data['region']}/{data['call_id']}/{len(order)}"
            calls[key] = {
                "region": data["region"],
                "tool": data["tool"],
                "arguments": data["arguments"],
                "content": None,
                "is_error": False,
                "truncated": False,
                "call_id": data["call_id"],
            }
            order.append(key)
        elif data["kind"] == "tool_result":
            for key in reversed(order):  # the latest call of that id without a result
                call = calls[key]
                if call["call_id"] == data["call_id"] and call["content"] is None:
                    call.update(
                        content=data["content"],
                        is_error=bool(data["is_error"]),
                        truncated=bool(data.get("truncated")),
                    )
                    break
    latest = [calls[key] for key in order[-TOOL_CALLS_SHOWN:]]
    return len(order), latest


def run_info(run: RunFile) -> dict[str, Any]:
    """Status, plan position and last activity of a run file (for ``show`` and ``runs``).

    ``position`` is the layers run so far; ``next_layer`` the plan index of the layer that
    runs next (the same for a plain plan; a machine's layers run again on each visit)."""
    plan = run.workflow.plan
    position = run.position
    index = run.next_layer()
    invocations = run.invocations()
    last = invocations[-1] if invocations else None
    if last is not None and last["finished"] is None and pid_alive(int(last["pid"])):
        status = "running"
    elif last is None:
        status = "created"
    elif last["finished"] is None:
        status = "interrupted (process died)"
    elif run.finished:
        status = "finished" if last["status"] == "ok" else f"finished ({last['status']})"
    elif last["status"] == "ok":
        status = "stepping" if last["kind"] == "step" else "stopped"
    else:
        status = str(last["status"])
    wait = waiting_for(run)
    if wait is not None:
        status = f"waiting for {wait.region}"
    machine = bool(run.workflow.states)
    if run.finished:
        run_so_far = f", {position} run" if machine else ""
        position_text = f"finished ({len(plan)}/{len(plan)} layers{run_so_far})"
    else:
        label = plan[index].get("label", "") if index < len(plan) else ""
        done = sorted(run.chains_done(position))
        position_text = f"next layer {index + 1}/{len(plan)} {label}".rstrip()
        if machine and index < len(plan):
            position_text += f" of state {plan[index].get('state')}"
        if done:
            position_text += f" (chains done: {', '.join(done)})"
        if not run.started:
            position_text = f"not started ({len(plan)} layers)"
    activity = max([run.created] + [float(i["finished"] or i["started"]) for i in invocations])
    outcome = "-"
    if last is not None and last["exit_code"] is not None:
        outcome = f"{last['status']} (exit {last['exit_code']})"
    return {
        "status": status,
        "position": position,
        "next_layer": index,
        "layers": len(plan),
        "position_text": position_text,
        "activity": activity,
        "outcome": outcome,
    }


def whole_run_finished(
    run: RunFile, events: Sequence[ev.Event] | None = None
) -> ev.RunFinished | None:
    """The `RunFinished` of a run that several invocations (``step``, resumes) wrote: the last
    one's status with the totals of all (its duration: the seconds they took), so a summary is
    the run's, not the last step's. None for a run of one invocation (its own event stands)
    or one whose last invocation did not finish. `events`: the run's, if already read."""
    invocations = run.invocations()
    if len(invocations) < 2:
        return None
    if events is None:
        events = events_from_json(list(run.events()))
    finished = [e for e in events if isinstance(e, ev.RunFinished)]
    if not finished or sum(isinstance(e, ev.RunStarted) for e in events) < 2:
        return None
    spent = sum(i["finished"] - i["started"] for i in invocations if i["finished"])
    steps = [e.outcome for e in events if isinstance(e, ev.StepFinished)]
    calls = [e for e in events if isinstance(e, ev.LLMCalled)]
    return dataclasses.replace(
        finished[-1],
        layers_run=sum(isinstance(e, ev.LayerFinished) for e in events),
        steps_ok=sum(outcome not in UNFINISHED_OUTCOMES for outcome in steps),
        steps_failed=sum(outcome in FAILED_OUTCOMES for outcome in steps),
        steps_cancelled=sum(outcome == "cancelled" for outcome in steps),
        messages=sum(isinstance(e, ev.MessageDelivered) and e.delivery != "cc" for e in events),
        prompt_tokens=sum(e.prompt_tokens for e in calls),
        completion_tokens=sum(e.completion_tokens for e in calls),
        llm_calls=len(calls),
        cached_calls=sum(e.cached for e in calls),
        duration=spent,
    )
