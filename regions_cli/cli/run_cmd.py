"""``regions run FILE``: verify, then run a workflow and watch its traffic.

Thin on purpose: flags become a `regions_cli.cli.runner.RunOptions` and `run_workflow` does the
rest and returns the exit code (0 ok, 1 invalid workflow, 2 usage/I/O error, 3 a step failed,
4 budget exceeded, 130 interrupted). Only typer and the standard library are imported here.
"""

from __future__ import annotations

from pathlib import Path

import typer

from regions_cli.cli import options
from regions_cli.exit_codes import ExitCode


def run(
    file: Path = typer.Argument(
        ..., metavar="FILE", help="The workflow file (YAML).", show_default=False
    ),
    json_events: bool = typer.Option(
        False, "--json", help="Write one JSON event per line to stdout (for other tools)."
    ),
    quiet: bool = typer.Option(
        False,
        "-q",
        "--quiet",
        help="Print only the run's output (the messages that leave the workflow); errors still "
        "go to stderr.",
    ),
    run_file: Path | None = typer.Option(
        None,
        "--run",
        metavar="PATH",
        help="Where to write the run file (default: .regions/runs/<name>-<time>.db beside FILE).",
        show_default=False,
    ),
    record: Path | None = typer.Option(
        None,
        "--record",
        metavar="FILE",
        help="Record every LLM call to this cassette file.",
        show_default=False,
    ),
    replay: Path | None = options.REPLAY,
    cache: bool = options.CACHE,
    cache_file: Path | None = options.CACHE_FILE,
    llm: list[str] = options.LLM,
    allow_outside_paths: bool = options.ALLOW_OUTSIDE_PATHS,
    keep_credentials: bool = options.KEEP_CREDENTIALS,
    no_live: bool = typer.Option(
        False, "--no-live", help="Plain lines instead of the live view, even on a terminal."
    ),
    resume: Path | None = typer.Option(
        None,
        "--resume",
        metavar="RUN",
        help="Continue this run file from its first unfinished layer (completed chains of a "
        "partly run layer are not run again).",
        show_default=False,
    ),
    interactive: bool = typer.Option(
        False,
        "--interactive",
        help="Pause at each layer barrier: continue, inject, show a region's state, or quit.",
    ),
    force: bool = options.FORCE,
) -> None:
    """Verify FILE, then run its plan, showing the traffic live.

    Exit codes:

        0    the plan ran to its end
        1    the workflow is invalid (what regions verify reports)
        2    a usage or I/O error, or the workflow cannot be built
        3    a step failed
        4    the budget was exceeded
        5    waiting for input at a wait: (regions inject, then --resume)
        130  interrupted (Ctrl-C)

    Examples:

        regions run hello.yaml
        regions run hello.yaml --llm default=http://127.0.0.1:8080/v1
        regions run hello.yaml --resume hello-20260101T120000
    """
    from regions_cli.cli.runner import RunOptions, run_workflow

    if resume is not None and run_file is not None:
        typer.echo("error: --run and --resume cannot be used together", err=True)
        raise typer.Exit(ExitCode.USAGE)
    if quiet and json_events:
        typer.echo("error: --quiet and --json cannot be used together", err=True)
        raise typer.Exit(ExitCode.USAGE)

    settings = RunOptions(
        workflow=file,
        json=json_events,
        quiet=quiet,
        run_file=run_file,
        record=record,
        replay=replay,
        cache=options.cache_setting(cache, cache_file),
        llm_overrides=tuple(llm),
        keep_credentials=keep_credentials,
        allow_outside_paths=allow_outside_paths,
        live=False if no_live else None,
        resume=resume,
        interactive=interactive,
        force=force,
    )
    raise typer.Exit(run_workflow(settings))


def register(app: typer.Typer) -> None:
    """Add ``regions run`` to `app`."""
    app.command(name="run")(run)
