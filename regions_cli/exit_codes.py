"""The exit codes of every `regions` command, in one place (the docs list them)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """How a `regions` command ended."""

    OK = 0
    INVALID = 1  # the workflow has errors, or a check found problems
    USAGE = 2  # bad usage, a file that cannot be read or written, a workflow that cannot build
    FAILED = 3  # a step failed, or the run could not complete
    BUDGET = 4  # a budget was exceeded (tokens, calls, the deadline, transitions)
    WAITING = 5  # paused at a ``wait:`` for a person: inject the answer, then resume
    INTERRUPTED = 130  # Ctrl-C, a closed output, or paused (--interactive): it can be resumed


#: The exit code of each status a run can end with.
STATUS_EXIT_CODES: dict[str, ExitCode] = {
    "ok": ExitCode.OK,
    "failed": ExitCode.FAILED,
    "interrupted": ExitCode.INTERRUPTED,
    "paused": ExitCode.INTERRUPTED,
    "budget_exceeded": ExitCode.BUDGET,
    "waiting": ExitCode.WAITING,
}


def status_of(exit_code: int) -> str:
    """The run status an exit code stands for ("failed" for codes no run status has)."""
    return next((s for s, c in STATUS_EXIT_CODES.items() if c == exit_code), "failed")
