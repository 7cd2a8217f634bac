"""The end of a run for people: its output messages in full, then a summary.

Shared by the live and the plain view so a run reads the same on a terminal and in a log.
Lines come with a semantic style tag (``heading``, ``label``, ``text``, ``bad``) that the live
view maps to colours and the plain view ignores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from regions_cli.engine.events import RunFinished
from regions_cli.text import plural
from regions_cli.view.state import RunState, clean, seconds

STATUS_TEXT = {
    "ok": "ok",
    "failed": "failed: a step failed",
    "interrupted": "interrupted",
    "paused": "paused",
    "budget_exceeded": "stopped: budget exceeded",
    "waiting": "waiting for input",
}

#: Statuses that are not a problem: the summary does not show them as one.
GOOD_STATUSES = frozenset({"ok", "waiting"})


@dataclass(frozen=True)
class ReportLine:
    text: str
    style: str = "text"  # heading | label | text | bad


def report_lines(
    state: RunState, *, summary: RunFinished | None = None, next_commands: Sequence[str] = ()
) -> list[ReportLine]:
    """The output messages (full content), then the summary of `state`'s finished run (or
    `summary`: the whole run's, for a run that several invocations wrote), what a waiting run
    waits for, and the commands that go on with the run, in order, if it can go on (e.g. the
    ``regions inject`` that answers a wait, then the resume)."""
    lines: list[ReportLine] = []
    if state.outputs:
        lines.append(ReportLine(f"Output ({plural(len(state.outputs), 'message')})", "heading"))
        for message in state.outputs:
            header = f"── {message.source} -> {message.destination} ({message.role})"
            lines.append(ReportLine(header, "label"))
            lines.extend(ReportLine(line) for line in clean(message.content).splitlines() or [""])
        lines.append(ReportLine(""))
    lines.append(ReportLine("Summary", "heading"))
    lines.extend(_summary(state, summary or state.finished))
    if state.waiting is not None:
        wait = state.waiting
        lines.append(ReportLine(f"waiting    {waiting_text(wait.region, wait.prompt)}"))
    for number, command in enumerate(next_commands):
        lines.append(ReportLine(f"{'continue' if number == 0 else '':11}{command}"))
    return lines


def waiting_text(region: str, prompt: str) -> str:
    """What a run waits for: ``for Critic: Approve the draft?``."""
    return f"for {region}: {first_error_line(prompt)}" if prompt.strip() else f"for {region}"


def _summary(state: RunState, finished: RunFinished | None) -> list[ReportLine]:
    if finished is None:  # the runner always supplies one; fall back on what the events said
        status, ok = "unknown: the run did not report its end", False
        layers_run, steps_ok, steps_failed = state.layers_done, state.steps_ok, state.steps_failed
        messages, prompt, completion = state.messages, state.prompt_tokens, state.completion_tokens
        calls, cached = state.calls, state.cached_calls
        duration = state.elapsed(state.last_t)
        run_file = state.started.run_file if state.started else None
    else:
        status = STATUS_TEXT.get(finished.status, finished.status)
        ok = finished.status in GOOD_STATUSES
        layers_run, steps_ok, steps_failed = (
            finished.layers_run,
            finished.steps_ok,
            finished.steps_failed,
        )
        messages, prompt, completion = (
            finished.messages,
            finished.prompt_tokens,
            finished.completion_tokens,
        )
        calls = state.calls if finished.llm_calls is None else finished.llm_calls
        cached = state.cached_calls if finished.cached_calls is None else finished.cached_calls
        duration = finished.duration
        run_file = finished.run_file or (state.started.run_file if state.started else None)
    rejected = f" ({state.rejected} rejected)" if state.rejected else ""
    stopped = finished.steps_cancelled if finished is not None else state.steps_cancelled
    cancelled = f", {stopped} cancelled" if stopped else ""
    if state.is_machine:  # its layers run again on each visit: not a part of the plan
        layers = ReportLine(f"layers     {layers_run} run")
    else:
        layers = ReportLine(f"layers     {layers_run} of {len(state.layers)} run")
    out = [ReportLine(f"status     {status}", "text" if ok else "bad"), layers]
    if state.path:
        transitions = plural(state.transitions, "transition")
        out.append(ReportLine(f"states     {state.path.text()} ({transitions})"))
    out += [
        ReportLine(f"steps      {steps_ok} ok, {steps_failed} failed{cancelled}"),
        ReportLine(f"messages   {messages:,}{rejected}"),
        ReportLine(f"calls      {calls:,}" + (f" ({cached:,} from cache)" if cached else "")),
        ReportLine(
            f"tokens     {prompt + completion:,} ({prompt:,} prompt + {completion:,} completion)"
        ),
        ReportLine(f"wall time  {seconds(duration)}"),
    ]
    if state.warnings or state.errors:
        notices = f"{plural(state.warnings, 'warning')}, {plural(state.errors, 'error')}"
        out.append(ReportLine(f"notices    {notices}"))
    for failure in state.failures:
        error = f": {first_error_line(failure.error)}" if failure.error else ""
        out.append(
            ReportLine(
                f"failed     {failure.layer}/{failure.chain} {failure.label}"
                f" ({failure.outcome}){error}",
                "bad",
            )
        )
    out.append(ReportLine(f"run file   {run_file or '(none)'}"))
    return out


def first_error_line(error: str) -> str:
    lines = [line.strip() for line in clean(error).splitlines() if line.strip()]
    return lines[0] if lines else error
