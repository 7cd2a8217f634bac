"""The end of a run for people: its output messages in full, then a summary.

Shared by the live and the plain view so a run reads the same on a terminal and in a log.
Lines come with a semantic style tag (``heading``, ``label``, ``text``, ``bad``) that the live
view maps to colours and the plain view ignores.
"""

from __future__ import annotations

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
}


@dataclass(frozen=True)
class ReportLine:
    text: str
    style: str = "text"  # heading | label | text | bad


def report_lines(
    state: RunState, *, summary: RunFinished | None = None, next_command: str | None = None
) -> list[ReportLine]:
    """The output messages (full content), then the summary of `state`'s finished run (or
    `summary`: the whole run's, for a run that several invocations wrote), and the command
    that goes on with the run, if it can go on."""
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
    if next_command is not None:
        lines.append(ReportLine(f"continue   {next_command}"))
    return lines


def _summary(state: RunState, finished: RunFinished | None) -> list[ReportLine]:
    if finished is None:  # the runner always supplies one; fall back on what the events said
        status, ok = "unknown: the run did not report its end", False
        layers_run, steps_ok, steps_failed = state.layers_done, state.steps_ok, state.steps_failed
        messages, prompt, completion = state.messages, state.prompt_tokens, state.completion_tokens
        calls, cached = state.calls, state.cached_calls
        duration = state.elapsed(state.last_t)
        run_file = state.started.run_file if state.started else None
    else:
        status, ok = STATUS_TEXT.get(finished.status, finished.status), finished.status == "ok"
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
    out = [
        ReportLine(f"status     {status}", "text" if ok else "bad"),
        ReportLine(f"layers     {layers_run} of {len(state.layers)} run"),
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
