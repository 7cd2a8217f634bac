"""``regions gui [FILE]``: the flow editor in the browser, served from the package.

Only typer and the standard library are imported here; the server (`regions_cli.gui_server`)
is imported when the command runs.
"""

from __future__ import annotations

from pathlib import Path

import typer

from regions_cli.exit_codes import ExitCode


def gui(
    file: Path | None = typer.Argument(
        None,
        metavar="FILE",
        help="The workflow to edit (created on first save if it does not exist).",
        show_default=False,
    ),
    port: int = typer.Option(
        0,
        "--port",
        min=0,
        max=65535,
        metavar="PORT",
        help="Port on 127.0.0.1 (default: a free one).",
        show_default=False,
    ),
    no_browser: bool = typer.Option(
        False, "--no-browser", help="Only print the URL; do not open a browser."
    ),
) -> None:
    """Edit a workflow as a graph in the browser, check it live and watch it run.

    Example:

        regions gui hello.yaml
    """
    from regions_cli import gui_server

    problem = gui_server.missing_build_message()
    if problem is not None:
        _fail(problem)
    if file is not None:
        if file.is_dir():
            _fail(f"{file}: is a directory, not a workflow file")
        if not file.parent.resolve().is_dir():
            _fail(f"{file}: the folder {file.parent} does not exist")
        if file.exists():
            try:
                file.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                _fail(f"{file}: not UTF-8 text")
            except OSError as exc:
                _fail(f"{file}: cannot read it: {exc.strerror or exc}")
    try:
        gui_server.serve(
            file,
            port=port,
            open_browser=not no_browser,
            announce=lambda text: typer.echo(text, err=False),
        )
    except OSError as exc:
        _fail(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}")


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(ExitCode.USAGE)


def register(app: typer.Typer) -> None:
    """Add ``regions gui`` to `app`."""
    app.command("gui", short_help="Edit a workflow as a graph in the browser; check and run it.")(
        gui
    )
