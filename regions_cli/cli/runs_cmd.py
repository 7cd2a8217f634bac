"""Commands on run files: ``step``, ``inject``, ``show``, ``replay`` and ``runs``.

A run file (``.regions/runs/<name>-<time>.db``, written by ``regions run``) holds everything
a run did; these commands walk a plan one layer at a time, put messages into a run (even one
that is running in another process), inspect it, and re-render it without any model.

Exit codes: 0 done, 1 invalid input (unknown region, bad role, invalid workflow), 2 usage or
I/O error (missing, corrupt or foreign run file), 3 a step failed, 5 the run waits for input
(a ``wait:`` reached by ``step``). Only typer and the standard library are imported at module
import time.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from regions_cli.cli import options
from regions_cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from regions_cli.runs.store import RunFile


def _fail(message: str, code: int = ExitCode.USAGE) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _open(reference: Path) -> RunFile:
    """The run file `reference` names: a path, a name as `regions runs` shows it, or a
    workflow file (its newest run)."""
    from regions_cli.runs.locate import RunNotFound, resolve_run
    from regions_cli.runs.store import RunFile, RunFileError

    try:
        return RunFile.open(reference if reference.is_dir() else resolve_run(reference))
    except (RunFileError, RunNotFound) as exc:
        raise _fail(str(exc)) from None


#: What reading a run file whose rows were damaged (by hand, a broken disk, another program)
#: raises: a row that is not JSON, JSON of the wrong shape, a value of the wrong type.
CORRUPT_ROW_ERRORS = (ValueError, TypeError, KeyError, AttributeError, IndexError)


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[RunFile]:
    """`path` open for reading; a damaged row is one line and exit 2, never a traceback."""
    import sqlite3

    from regions_cli.runs.store import RunFileError

    with _open(path) as run:
        try:
            yield run
        except RunFileError as exc:
            raise _fail(str(exc)) from None
        except (*CORRUPT_ROW_ERRORS, sqlite3.DatabaseError) as exc:
            raise _fail(_corrupt(path, exc)) from None


def _corrupt(path: Path, exc: BaseException) -> str:
    return f"{path}: corrupt run file ({type(exc).__name__}: {exc})"


# ---------------------------------------------------------------------------------------------
# regions step


def step(
    file: Path = typer.Argument(..., metavar="FILE", help="The workflow file.", show_default=False),
    run: Path | None = typer.Option(
        None,
        "--run",
        metavar="RUN",
        help="The run to step: a run file (created if missing) or its name as `regions runs` "
        "shows it. Default: the newest run of FILE, or a new one if it has none.",
        show_default=False,
    ),
    new: bool = typer.Option(False, "--new", help="Start a new run of FILE."),
    layers: int = typer.Option(1, "--layers", min=1, metavar="N", help="How many layers to run."),
    llm: list[str] = options.LLM,
    replay: Path | None = options.REPLAY,
    cache: bool = options.CACHE,
    cache_file: Path | None = options.CACHE_FILE,
    keep_credentials: bool = options.KEEP_CREDENTIALS,
    allow_outside_paths: bool = options.ALLOW_OUTSIDE_PATHS,
    force: bool = options.FORCE,
) -> None:
    """Run the next layer (or N) of FILE's plan in a run file, commit, show what is pending.

    Without --run it goes on with the newest run of FILE (never a run of another file), and
    says so when that run has finished; --new starts another. At a wait: item with no answer
    it stops with exit code 5 and prints the regions inject command that answers it.

    Example:

        regions step hello.yaml --layers 2
    """
    from regions_cli.cli.runner import RunOptions, run_workflow
    from regions_cli.runs.locate import RunNotFound, latest_run, resolve_run
    from regions_cli.view.runs import pending_lines

    if not file.is_file():
        raise _fail(f"{file}: no such file")
    if new and run is not None:
        raise _fail("--new and --run cannot be used together")
    target: Path | None = None  # the run file to go on with; None: a new one
    if run is not None:
        try:
            target = resolve_run(run)
        except RunNotFound:
            if run.parent != Path(".") or run.suffix == ".db":  # a path: the new run's file
                target = None
            else:
                raise _fail(f"--run {run}: no such run file (see `regions runs`)") from None
    elif not new:
        target = latest_run(file)
    settings = RunOptions(
        workflow=file,
        run_file=run if target is None else None,
        live=False,
        resume=target,
        force=force,
        max_layers=layers,
        kind="step",
        llm_overrides=tuple(llm),
        replay=replay,
        cache=options.cache_setting(cache, cache_file),
        keep_credentials=keep_credentials,
        allow_outside_paths=allow_outside_paths,
    )
    if target is not None:
        with _reading(target) as existing:
            if existing.workflow.path == str(file.resolve()) and existing.finished:
                finished = (
                    "reached its end"
                    if existing.workflow.states
                    else f"finished all {len(existing.workflow.plan)} layers"
                )
                typer.echo(
                    f"{target}: the run has {finished}; nothing to do. "
                    f"Start a new run with: {options.command_line(['step', file, '--new'])}"
                )
                raise typer.Exit(ExitCode.OK)
    code = run_workflow(settings)
    path = target or run or latest_run(file)
    if path is not None and path.exists() and code not in (ExitCode.INVALID, ExitCode.USAGE):
        from regions_cli.runs.status import waiting_for

        with _reading(path) as opened:
            flags = options.repeated_flags(settings)
            wait = waiting_for(opened)
            answer = None if wait is None else options.inject_command(path, wait.region)
            typer.echo("\n".join(pending_lines(opened, file, flags, answer)))
    raise typer.Exit(code)


# ---------------------------------------------------------------------------------------------
# regions inject


def inject(
    text: str | None = typer.Argument(
        None, metavar="TEXT", help="The message text (or use --file).", show_default=False
    ),
    run: Path = typer.Option(
        ...,
        "--run",
        metavar="RUN",
        help="The run: its file, its name as `regions runs` shows it, or the workflow file "
        "(its newest run).",
        show_default=False,
    ),
    to: str = typer.Option(..., "--to", metavar="REGION", help="The receiving region."),
    source: str = typer.Option("user", "--from", metavar="NAME", help="The sender's name."),
    role: str = typer.Option(
        "request",
        "--role",
        metavar="request|reply",
        help="request (a question to answer) or reply (knowledge to keep).",
    ),
    file: Path | None = typer.Option(
        None,
        "--file",
        metavar="FILE",
        help="Read the message text from this file.",
        show_default=False,
    ),
) -> None:
    """Queue a message for a region of a run; delivered at the run's next layer barrier.

    Safe while 'regions run' works on the same run file: it takes the message at its next
    barrier, exactly once.

    Example:

        regions inject --run hello-20260101T120000 --to Poet "Now in French."
    """
    from regions_cli.runs.store import RunFileError

    if (text is None) == (file is None):
        raise _fail("give the message as TEXT or with --file, not both or neither")
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise _fail(f"--file {file}: cannot read: {reason or exc}") from None
    assert text is not None
    if not text.strip():
        raise _fail(
            f"{file if file is not None else 'TEXT'}: the message is empty", ExitCode.INVALID
        )
    with _open(run) as opened:
        problem = opened.workflow.injection_problem(to, role)
        if problem is not None:
            raise _fail(f"{run}: {problem}", ExitCode.INVALID)
        plan = opened.workflow.plan
        try:
            queued = opened.add_injection(source, to, role, text)
        except RunFileError as exc:
            raise _fail(str(exc), ExitCode.INVALID) from None
        except Exception as exc:  # sqlite busy beyond the timeout, disk full...
            raise _fail(f"{run}: cannot write: {exc}") from None
        when = _delivery_time(opened, len(plan))
    typer.echo(f"queued message {queued.message.id} from {source} to {to} ({role}); {when}")


def _delivery_time(run: RunFile, layers: int) -> str:
    """When a message queued now reaches its region: at the next barrier the run commits."""
    from regions_cli.runs.status import run_info, waiting_for

    running = run_info(run)["status"] == "running"
    if not run.started:
        return "delivered when the run starts" + ("" if running else " (regions step / run)")
    layer = run.next_layer() + 1  # the layer after the last committed barrier, 1-based
    wait = waiting_for(run)
    if wait is not None:
        resume = options.command_line(["run", run.workflow.path, "--resume", run.path])
        return f"the run waits for {wait.region}: go on with {resume}"
    if running:  # that layer is running now: the next barrier comes when it ends
        return f"delivered at the next barrier, when layer {layer}/{layers} (running now) ends"
    return f"delivered when the run goes on, before layer {layer}/{layers}"


# ---------------------------------------------------------------------------------------------
# regions show


def show(
    run: Path = typer.Argument(..., metavar="RUN", help="The run file.", show_default=False),
    region: str | None = typer.Option(
        None, "--region", metavar="NAME", help="Show one region's inbox, requests and knowledge."
    ),
    prompts: bool = typer.Option(
        False,
        "--prompts",
        help="Show every prompt the run sent to a model and the answer (with --region: that "
        "region's only).",
    ),
) -> None:
    """A run's status: plan position, pending messages per region, failures, tokens.

    For a state machine: its current state, the visits per state, the transitions and the
    path taken; for a run that waits at a wait: item, what for and the commands that answer
    it and go on.

    Example:

        regions show hello-20260101T120000 --region Poet
    """

    from regions_cli.runs.codec import events_from_json
    from regions_cli.runs.status import current_states
    from regions_cli.text import unknown
    from regions_cli.view.runs import prompt_lines, summary_table
    from regions_cli.view.state import plain_text, region_state_lines

    console = _console()
    with _reading(run) as opened:
        if region is not None and region not in opened.workflow.regions:
            problem = unknown("region", region, opened.workflow.regions)
            raise _fail(f"{run}: {problem}", ExitCode.INVALID)
        if prompts:
            events = events_from_json(list(opened.events()))
            for line in prompt_lines(events, region):
                console.print(plain_text(line))
            return
        if region is not None:
            states = current_states(opened)
            lines = region_state_lines(region, states.get(region, {"type": "not started"}))
            for item in opened.injections(pending_only=True):
                if item.message.destination == region:
                    lines.append(
                        f"  queued injection ({item.message.role}) from "
                        f"{item.message.source}: {item.message.content[:100]}"
                    )
            for line in lines:
                console.print(plain_text(line))
            return
        console.print(summary_table(opened, _answer_commands(opened)))


def _answer_commands(run: RunFile) -> list[str]:
    """For a run that waits for a person: the ``regions inject`` that answers (unless an
    answer is queued already), then the command that goes on."""
    from regions_cli.runs.status import waiting_for

    wait = waiting_for(run)
    if wait is None:
        return []
    queued = {item.message.destination for item in run.injections(pending_only=True)}
    answer = [] if wait.region in queued else [options.inject_command(run.path, wait.region)]
    return [*answer, options.command_line(["run", run.workflow.path, "--resume", run.path])]


# ---------------------------------------------------------------------------------------------
# regions runs


def runs(
    folder: Path | None = typer.Argument(
        None,
        metavar="DIR",
        help="Where to look (default: the current folder). The run files in DIR/.regions/runs "
        "and beside the workflows below DIR are listed, or those in DIR if it holds them.",
        show_default=False,
    ),
) -> None:
    """List the run files (newest first) with status, time and outcome.

    The RUN column is a name `show`, `replay`, `inject --run`, `step --run` and
    `run --resume` accept as it is.

    Example:

        regions runs workflows
    """
    from rich.table import Table

    from regions_cli.runs.locate import run_files, run_folders
    from regions_cli.runs.status import run_info
    from regions_cli.runs.store import RunFile, RunFileError
    from regions_cli.view.runs import when
    from regions_cli.view.state import plain_text

    start = folder or Path(".")
    if not start.is_dir():
        raise _fail(f"{start}: {'not a folder' if start.exists() else 'no such folder'}")
    holds_runs = any(start.glob("*.db"))
    folders = [start] if holds_runs else run_folders(start)
    rows: list[tuple[float, list[str]]] = []
    for path in run_files(folders):
        shown = str(path)
        try:
            with RunFile.open(path) as run:
                info = run_info(run)
                position = f"{info['position']}/{info['layers']}"
                if run.workflow.states:  # a machine's layers run again on each visit
                    position = f"{info['position']} run"
                rows.append(
                    (
                        run.created,
                        [
                            shown,
                            run.workflow.name,
                            info["status"],
                            position,
                            when(run.created),
                            when(info["activity"]),
                            info["outcome"],
                        ],
                    )
                )
        except (RunFileError, *CORRUPT_ROW_ERRORS) as exc:
            detail = str(exc).split(": ", 1)[-1] if isinstance(exc, RunFileError) else repr(exc)
            rows.append((0.0, [shown, "?", "unreadable", "", "", "", detail]))
    if not rows:
        typer.echo(f"no run files in {start} or below it (regions run writes them)")
        return
    table = Table(show_edge=False, box=None, header_style="bold", pad_edge=False)
    for column in ("run", "workflow", "status", "layers", "started", "last activity", "outcome"):
        table.add_column(column, no_wrap=True, overflow="ignore")
    for _, row in sorted(rows, key=lambda item: item[0], reverse=True):
        table.add_row(*(plain_text(cell) for cell in row))
    _console().print(table, crop=False, overflow="ignore")


def _console() -> Any:
    """A console for tables of runs: in a pipe, as wide as the rows (a path is never cut or
    wrapped, so it can be copied); on a terminal, the terminal's width."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 10_000)


# ---------------------------------------------------------------------------------------------
# regions replay


def replay(
    run: Path = typer.Argument(..., metavar="RUN", help="The run file.", show_default=False),
    json_events: bool = typer.Option(
        False, "--json", help="One JSON event per line, as the original run's --json wrote."
    ),
    speed: str | None = typer.Option(
        None,
        "--speed",
        metavar="recorded|instant",
        help="Play at the recorded pace or at once (default: recorded in the live view, "
        "instant otherwise).",
        show_default=False,
    ),
    no_live: bool = typer.Option(False, "--no-live", help="Plain lines, even on a terminal."),
) -> None:
    """Re-render a run's recorded traffic from its run file: no model, no network.

    Example:

        regions replay hello-20260101T120000 --speed instant
    """
    import time

    from regions_cli.runs.codec import events_from_json
    from regions_cli.runs.status import whole_run_finished

    if speed not in (None, "recorded", "instant"):
        raise _fail(f"--speed {speed}: use recorded or instant")
    with _reading(run) as opened:
        events = events_from_json(list(opened.events()))
        summary = whole_run_finished(opened, events)
    if not events:
        raise _fail(f"{run}: no recorded events (the run has not started)", ExitCode.INVALID)
    view: Any
    live = not json_events and not no_live and sys.stdout.isatty()
    if json_events:
        from regions_cli.view.jsonl import JsonlView

        view = JsonlView(sys.stdout)
    elif live:
        from rich.console import Console

        from regions_cli.view.live import LiveView

        view = LiveView(Console())
    else:
        from regions_cli.view.plain import PlainView

        view = PlainView(sys.stdout)
    paced = speed == "recorded" or (speed is None and live)
    try:
        with view:
            previous = events[0].t
            for event in events:
                if paced:  # the recorded gap, capped: a run resumed a day later replays at once
                    time.sleep(min(max(0.0, event.t - previous), MAX_REPLAY_GAP))
                previous = event.t
                view(event)
        if not json_events:
            view.report(summary=summary)
    except CORRUPT_ROW_ERRORS as exc:  # a recorded event whose fields have the wrong types
        raise _fail(_corrupt(run, exc)) from None


#: Longest pause `regions replay --speed recorded` makes between two events (seconds).
MAX_REPLAY_GAP = 2.0


def register(app: typer.Typer) -> None:
    """Add ``step``, ``inject``, ``show``, ``replay`` and ``runs`` to `app`."""
    # short_help: the one line `regions --help` shows (80 columns); the docstring has the rest.
    app.command("step", short_help="Run FILE's next layer (or N) in a run file; show what waits.")(
        step
    )
    app.command("inject", short_help="Queue a message for a region; delivered at the next layer.")(
        inject
    )
    app.command("show", short_help="A run's status: plan position, pending messages, failures.")(
        show
    )
    app.command("replay", short_help="Re-render a run's recorded traffic: no model, no network.")(
        replay
    )
    app.command("runs")(runs)
