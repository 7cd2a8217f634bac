"""`regions run` without the command line: verify, build, journal, run, show, exit code.

`run_workflow(RunOptions(...))` does everything the command does and returns its exit code;
`regions_cli.cli.run_cmd` only turns flags into `RunOptions`. Keeping it here lets other
commands (``step``, resume) and tests drive a run the same way, and keeps the CLI module
free of heavy imports.

Exit codes: 0 success, 1 invalid workflow, 2 usage or I/O error, 3 a step failed (or the
run could not complete), 4 budget exceeded, 130 interrupted.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:
    from regions_cli.engine.events import Event, RunFinished
    from regions_cli.run_journal import RunJournal
    from regions_cli.workflow.load import Document
    from regions_cli.workflow.model import Workflow

# The exit codes of a run's statuses are the engine's (`regions_cli.engine.executor.EXIT_CODES`).
EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_FAILED = 3
EXIT_BUDGET = 4
EXIT_INTERRUPTED = 130


class RunError(Exception):
    """A problem that stops `regions run` before or around the engine, with its exit code.

    The message is one line that says where and what; the CLI prints it as ``error: ...``.
    """

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class RunOptions:
    """Everything ``regions run`` can be asked to do."""

    workflow: Path
    json: bool = False  # one JSON event per line on stdout
    run_file: Path | None = None  # None: .regions/runs/<name>-<time>.db beside the workflow
    record: Path | None = None  # write every LLM call to this cassette
    replay: Path | None = None  # answer every LLM call from this cassette
    # a response cache for every LLM (``--cache [FILE]``); "": the default file,
    # ``.regions/cache.db`` beside the workflow
    cache: str | None = None
    llm_overrides: tuple[str, ...] = ()  # NAME=URL | NAME=scripted | ... (``--llm``)
    keep_credentials: bool = False  # --llm NAME=URL keeps the entry's key for another origin
    allow_outside_paths: bool = False  # files outside the workflow's folder may be used
    live: bool | None = None  # None: the live view when stdout is a terminal
    # What the run file does (read by `regions_cli.run_journal.RunJournal.open`):
    resume: Path | None = None  # continue this run file instead of creating one
    force: bool = False  # with `resume`: accept a compatible edit of the workflow
    interactive: bool = False  # pause at every barrier and ask (``--interactive``)
    max_layers: int | None = None  # run at most this many layers (``regions step``)
    kind: str | None = None  # recorded with the invocation; None: "run" or "resume"


class View(Protocol):
    """What the runner needs of a view (`regions_cli.view`)."""

    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: object) -> None: ...
    def __call__(self, event: Event) -> None: ...
    def report(self) -> None: ...


def run_workflow(
    options: RunOptions, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run `options.workflow` as ``regions run`` does; returns the exit code (never raises
    for bad input, never prints a traceback; Ctrl-C gives 130)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        return _run(options, out, err)
    except RunError as exc:
        _error(err, str(exc))
        return exc.exit_code
    except KeyboardInterrupt:  # Ctrl-C before the engine started, or a second Ctrl-C
        _error(err, "interrupted")
        return EXIT_INTERRUPTED


def _error(stream: TextIO, message: str) -> None:
    stream.write(f"error: {message}\n")
    stream.flush()


# -- the steps of a run --------------------------------------------------------------------------


def _run(options: RunOptions, out: TextIO, err: TextIO) -> int:
    from regions_cli.run_journal import JournalError, RunJournal

    _check_files(options)
    loaded = _load_and_verify(options, out, err)
    if loaded is None:
        return EXIT_INVALID
    workflow, document = loaded
    workflow = _apply_overrides(workflow, options.llm_overrides, options.keep_credentials)
    try:
        journal = RunJournal.open(options, workflow, document)
    except JournalError as exc:
        raise RunError(str(exc)) from exc
    try:
        stop = _Stop()
        view = _choose_view(options, out, stop)
        return asyncio.run(_execute(workflow, options, view, journal, stop, err))
    finally:
        journal.close()


def _check_files(options: RunOptions) -> None:
    """Usage and I/O problems that need no parsing: one line each, exit 2."""
    path = options.workflow
    if not path.exists():
        raise RunError(f"{path}: no such file")
    if path.is_dir():
        raise RunError(f"{path}: is a directory, not a workflow file")
    if options.record is not None and options.replay is not None:
        raise RunError("--record and --replay cannot be used together")
    if options.replay is not None and not options.replay.is_file():
        raise RunError(f"--replay {options.replay}: no such cassette")
    if options.record is not None and options.record.is_dir():
        raise RunError(f"--record {options.record}: is a directory")


def _load_and_verify(
    options: RunOptions, out: TextIO, err: TextIO
) -> tuple[Workflow, Document] | None:
    """The validated workflow and the parsed file (the journal records its text), or None
    after printing the findings that make it invalid: the same findings ``regions verify``
    reports (warnings are printed and the run goes on).
    """
    from regions_cli.workflow.api import WorkflowInvalid, check_document, load_workflow
    from regions_cli.workflow.findings import count, format_text
    from regions_cli.workflow.load import load_file

    document = load_file(options.workflow)
    findings = check_document(document)
    errors, warnings = count(findings)
    workflow: Workflow | None = None
    if not errors:
        try:
            workflow = load_workflow(options.workflow)
        except WorkflowInvalid as exc:  # the file changed, or a referenced file vanished
            findings = sorted({*findings, *exc.findings})
            errors, warnings = count(findings)
    if findings:
        if options.json:
            from regions_cli.view.jsonl import JsonlView

            JsonlView(out).write(
                {
                    "kind": "findings",
                    "t": time.time(),
                    "errors": errors,
                    "warnings": warnings,
                    "findings": [finding.to_dict() for finding in findings],
                }
            )
        else:
            err.write(format_text(findings, color=_is_terminal(err), files=1))
            err.flush()
    if workflow is None:
        return None
    outside = [f for f in findings if f.rule == "path-outside-workflow"]
    if outside and not options.allow_outside_paths:
        first = outside[0]
        raise RunError(
            f"{first.location()}: {first.message}; a workflow may read and write only beside "
            "itself unless you run it with --allow-outside-paths"
        )
    return workflow, document


def _apply_overrides(
    workflow: Workflow, overrides: Sequence[str], keep_credentials: bool = False
) -> Workflow:
    if not overrides:
        return workflow
    from regions_cli.llm.factory import apply_llm_overrides

    try:
        return apply_llm_overrides(workflow, list(overrides), keep_credentials=keep_credentials)
    except ValueError as exc:  # LLMOverrideError: one line that names the flag
        raise RunError(str(exc)) from exc


class _Stop:
    """Stops the run as Ctrl-C does: called by a view whose reader has gone (``| head``).

    `task` is the engine's task while it runs, else None (nothing to stop)."""

    def __init__(self) -> None:
        self.task: asyncio.Task[Any] | None = None

    def __call__(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()


def _choose_view(options: RunOptions, out: TextIO, stop: _Stop) -> View:
    if options.json:
        from regions_cli.view.jsonl import JsonlView

        return JsonlView(out, on_closed=stop)
    from regions_cli.view.lines import is_utf

    live = options.live if options.live is not None else _is_terminal(out)
    if live and is_utf(out):  # the view draws with box characters: plain lines elsewhere
        from rich.console import Console

        from regions_cli.view.live import LiveView

        return LiveView(Console(file=out))
    from regions_cli.view.plain import PlainView

    return PlainView(out, on_closed=stop)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False


async def _execute(
    workflow: Workflow,
    options: RunOptions,
    view: View,
    journal: RunJournal,
    stop: _Stop,
    err: TextIO,
) -> int:
    """Build the engine, run it with the journal and the view subscribed, then report."""
    from regions_cli.build import build_engine_async
    from regions_cli.engine.events import EventBus, Notice, RunFinished
    from regions_cli.llm.cache import DEFAULT_CACHE_PATH
    from regions_cli.llm.factory import LLMOptions

    bus = EventBus()
    finished: list[RunFinished] = []
    bus.subscribe(lambda event: finished.append(event) if isinstance(event, RunFinished) else None)
    journal.subscribe(bus)  # before the view: the run file sees every event first
    cache: Path | None = None
    if options.cache is not None:  # ``--cache FILE``, or the default file beside the workflow
        cache = Path(options.cache) if options.cache else workflow.base_dir / DEFAULT_CACHE_PATH
    llm_options = LLMOptions(
        record=options.record, replay=options.replay, cache=cache, base_dir=workflow.base_dir
    )
    try:  # RAG stores ingest their new documents here, off the event loop
        engine = await build_engine_async(workflow, bus, llm_options)
    except (OSError, ValueError) as exc:  # BuildError is a ValueError with a located message
        journal.finish(None, EXIT_USAGE, err)  # the run file says this run never started
        raise RunError(f"{options.workflow}: {exc}") from exc
    except asyncio.CancelledError:  # Ctrl-C while the stores were being opened
        interrupted = _finished_event(EXIT_INTERRUPTED, 0.0, journal.path_text)
        journal.finish(interrupted, EXIT_INTERRUPTED, err)
        raise RunError("interrupted while opening the RAG stores", EXIT_INTERRUPTED) from None
    journal.attach(engine, view)
    bus.subscribe(_guarded(view, err))
    started = time.time()
    exit_code = EXIT_FAILED
    with view:
        # The engine runs in its own task: Ctrl-C (asyncio cancels this task, which passes the
        # cancellation on to the one it awaits) and a closed stdout (`stop`) both cancel it,
        # and the engine turns that into an orderly "interrupted" end.
        run = asyncio.create_task(engine.run(barrier_hook=journal, **journal.run_kwargs))
        stop.task = run
        try:
            exit_code = (await run).exit_code
        except asyncio.CancelledError:  # cancelled before the engine started or after it ended
            exit_code = finished[-1].exit_code if finished else EXIT_INTERRUPTED
        except Exception as exc:  # a bug, not a run failure: one line, no traceback
            bus.emit(Notice(level="error", text=f"internal error: {type(exc).__name__}: {exc}"))
        finally:
            stop.task = None
            _uncancel()  # Ctrl-C was handled: let the clean-up below run
            await engine.aclose()
        if not finished:  # the engine ended without saying so: tell the view and journal
            bus.emit(_finished_event(exit_code, time.time() - started, journal.path_text))
    journal.finish(finished[-1] if finished else None, exit_code, err)
    view.report()
    return exit_code


def _guarded(view: View, err: TextIO) -> Callable[[Event], None]:
    """`view` as a subscriber that never raises into the engine: a view that fails (a bug, a
    terminal gone) says so once on stderr and is dropped; the run and its journal go on."""
    failed = False

    def subscriber(event: Event) -> None:
        nonlocal failed
        if failed:
            return
        try:
            view(event)
        except Exception as exc:
            failed = True
            _error(err, f"the view stopped ({type(exc).__name__}: {exc}); the run goes on")

    return subscriber


def _uncancel() -> None:
    """Clear the cancellation Ctrl-C requested of this task once the engine has stopped."""
    task = asyncio.current_task()
    while task is not None and task.cancelling():
        task.uncancel()


def _finished_event(exit_code: int, duration: float, run_file: str | None) -> RunFinished:
    from regions_cli.engine.events import RunFinished
    from regions_cli.engine.executor import EXIT_CODES

    status = next((s for s, c in EXIT_CODES.items() if c == exit_code), "failed")
    return RunFinished(
        status=status,
        exit_code=exit_code,
        layers_run=0,
        steps_ok=0,
        steps_failed=0,
        messages=0,
        prompt_tokens=0,
        completion_tokens=0,
        duration=duration,
        run_file=run_file,
    )
