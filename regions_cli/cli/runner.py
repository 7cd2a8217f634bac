"""What ``regions run``, ``step`` and ``run --resume`` do around a `regions_cli.runs.run.Run`:
check the files, verify (printing the findings), apply ``--llm`` overrides, pick a view, run,
report, and return the exit code (`regions_cli.exit_codes.ExitCode`).

`run_workflow(RunOptions(...))` does everything the command does; `regions_cli.cli.run_cmd`
only turns flags into `RunOptions`.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from regions_cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from regions_cli.engine.events import Event, RunFinished
    from regions_cli.model import LLMConfig, Workflow
    from regions_cli.runs.run import Run
    from regions_cli.workflow.load import Document


class RunError(Exception):
    """A problem found before the run starts, with its exit code (one line)."""

    def __init__(self, message: str, exit_code: int = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class RunOptions:
    """Everything ``regions run`` can be asked to do."""

    workflow: Path
    json: bool = False  # one JSON event per line on stdout
    quiet: bool = False  # only the run's output on stdout
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
    # What the run file does (see `regions_cli.runs.run.Run.open`):
    resume: Path | None = None  # continue this run file instead of creating one
    force: bool = False  # with `resume`: accept a compatible edit of the workflow
    interactive: bool = False  # pause at every barrier and ask (``--interactive``)
    max_layers: int | None = None  # run at most this many layers (``regions step``)
    kind: str | None = None  # recorded with the invocation; None: "run" or "resume"
    transport: str | None = None  # a NATS URL: steps run on `regions worker`s
    workers: int = 0  # local workers started for the run


class View(Protocol):
    """What the runner needs of a view (`regions_cli.view`)."""

    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: object) -> None: ...
    def __call__(self, event: Event) -> None: ...
    def report(
        self, summary: RunFinished | None = None, next_commands: Sequence[str] = ()
    ) -> None: ...


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
        return ExitCode.INTERRUPTED
    except Exception as exc:
        # Imported here, not above: the run file's machinery loads while the model does.
        from regions_cli.runs.run import RunError as RunFailed

        if not isinstance(exc, RunFailed):
            raise
        _error(err, str(exc))
        return exc.exit_code


def _error(stream: TextIO, message: str) -> None:
    stream.write(f"error: {message}\n")
    stream.flush()


# -- the steps of a run --------------------------------------------------------------------------


def _run(options: RunOptions, out: TextIO, err: TextIO) -> int:
    options = _check_files(options)
    loaded = _load_and_verify(options, out, err)
    if loaded is None:
        return ExitCode.INVALID
    workflow, document = loaded
    workflow = _apply_overrides(workflow, options.llm_overrides, options.keep_credentials)
    # The embedded model starts loading now, while the rest gets ready: unless the run's
    # answers come from a cassette or (often) a cache, or its steps run on workers.
    runs_models_here = (
        options.replay is None
        and options.cache is None
        and (options.transport or workflow.transport) is None
    )
    if runs_models_here:
        from regions_cli.llm.local import start_early, stop_early

        start_early(_used_llms(workflow), workflow.base_dir)
    try:
        return _run_loaded(options, out, err, workflow, document)
    finally:
        if runs_models_here:
            stop_early()  # a model started early that the run never took (it did not start)


def _used_llms(workflow: Workflow) -> list[LLMConfig]:
    """The ``llms:`` entries the workflow's regions name."""
    names = {region.calls_llm for region in workflow.regions.values()}
    return [config for name, config in workflow.llms.items() if name in names]


def _run_loaded(
    options: RunOptions, out: TextIO, err: TextIO, workflow: Workflow, document: Document
) -> int:
    from regions_cli.llm.cache import DEFAULT_CACHE_PATH
    from regions_cli.llm.factory import LLMOptions
    from regions_cli.runs.run import Run

    cache: Path | None = None
    if options.cache is not None:  # ``--cache FILE``, or the default file beside the workflow
        cache = Path(options.cache) if options.cache else workflow.base_dir / DEFAULT_CACHE_PATH
    llm_options = LLMOptions(
        record=options.record, replay=options.replay, cache=cache, base_dir=workflow.base_dir
    )
    with Run.open(
        workflow,
        document,
        run_file=options.run_file,
        resume=options.resume,
        force=options.force,
        kind=options.kind,
        max_layers=options.max_layers,
        llm_options=llm_options,
        transport=options.transport,
        workers=options.workers,
        llm_overrides=options.llm_overrides,
    ) as run:
        view = _choose_view(options, out, err, run)
        if options.interactive:
            from regions_cli.cli.interactive import Dialogue

            dialogue = Dialogue(view, lambda: resume_command(options, run))
            run.pause, run.answer = dialogue, dialogue.answer
        return asyncio.run(_execute(options, run, view, err))


async def _execute(options: RunOptions, run: Run, view: View, err: TextIO) -> int:
    """Run with `view` subscribed, then let it report: the whole run's summary (a resumed or
    stepped run's too), and how to go on with it if it can go on."""
    if run.workflow.rags and _is_terminal(err):  # a bar per store that ingests
        from regions_cli.view.progress import embedding_progress

        with embedding_progress(err) as progress:
            await run.prepare(progress)
    else:
        await run.prepare()
    run.subscribe(view)
    with view:
        finished = await run.execute()
    if run.failure is not None:
        _error(err, run.failure)
    from regions_cli.runs.status import whole_run_finished

    summary = whole_run_finished(run.file) if run.file is not None else None
    view.report(summary=summary, next_commands=_next_commands(options, run, finished))
    return finished.exit_code


def resume_command(options: RunOptions, run: Run) -> str:
    """The command that continues `run` with what this one was given."""
    from regions_cli.cli.options import command_line, repeated_flags

    return command_line(
        ["run", options.workflow, "--resume", run.path or "", *repeated_flags(options)]
    )


def _next_commands(options: RunOptions, run: Run, finished: RunFinished) -> list[str]:
    """How to go on with a run that stopped before its end, in order: for one that waits at a
    ``wait:``, the ``regions inject`` that answers it, then the resume (a step says it in its
    own way)."""
    if options.kind == "step" or run.file is None or finished.status == "budget_exceeded":
        return []
    if run.file.finished:
        return []
    from regions_cli.cli.options import inject_command
    from regions_cli.runs.status import next_wait

    wait = next_wait(run.file) if finished.status == "waiting" else None
    answer = [] if wait is None else [inject_command(run.path or "", wait.region)]
    return [*answer, resume_command(options, run)]


def _check_files(options: RunOptions) -> RunOptions:
    """Usage and I/O problems that need no parsing: one line each, exit 2. Returns `options`
    with ``--resume`` resolved to its run file (a path, a bare name, or the workflow file)."""
    import dataclasses

    from regions_cli.runs.locate import RunNotFound, resolve_run

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
    if options.resume is None:
        return options
    try:
        return dataclasses.replace(options, resume=resolve_run(options.resume))
    except RunNotFound as exc:
        raise RunError(f"--resume {exc}") from None


def _load_and_verify(
    options: RunOptions, out: TextIO, err: TextIO
) -> tuple[Workflow, Document] | None:
    """The validated workflow and the parsed file (the journal records its text), or None
    after printing the findings that make it invalid: the same findings ``regions verify``
    reports (warnings are printed and the run goes on).
    """
    from regions_cli.workflow.api import load
    from regions_cli.workflow.findings import findings_record, format_text

    loaded = load(options.workflow)
    findings, workflow, document = loaded.findings, loaded.workflow, loaded.document
    if findings and not (options.quiet and not loaded.errors):  # --quiet keeps warnings to itself
        if options.json:
            from regions_cli.view.jsonl import JsonlView

            JsonlView(out).write(findings_record(findings))
        else:
            err.write(format_text(findings, color=_is_terminal(err), files=1))
            err.flush()
    if workflow is None:
        return None
    refusal = loaded.outside_paths_problem()
    if refusal is not None and not options.allow_outside_paths:
        raise RunError(refusal)
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


def _choose_view(options: RunOptions, out: TextIO, err: TextIO, run: Run) -> View:
    if options.json:
        from regions_cli.view.jsonl import JsonlView

        return JsonlView(out, on_closed=run.cancel)
    if options.quiet:
        from regions_cli.view.quiet import QuietView

        return QuietView(out, err, on_closed=run.cancel)
    from regions_cli.view.lines import is_utf

    live = options.live if options.live is not None else _is_terminal(out)
    if live and is_utf(out):  # the view draws with box characters: plain lines elsewhere
        from rich.console import Console

        from regions_cli.view.live import LiveView

        return LiveView(Console(file=out))
    from regions_cli.view.plain import PlainView

    return PlainView(out, on_closed=run.cancel)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM") != "dumb"
    except (AttributeError, ValueError):
        return False
