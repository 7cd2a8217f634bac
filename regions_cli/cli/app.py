"""The ``regions`` command line: a thin typer layer over the core.

Each command group lives in its own module with a ``register(app)`` function. Modules here
import only typer and the standard library at import time; heavy imports (numpy, httpx,
xllamacpp, the engine) happen inside the command functions so ``regions --help`` and
``regions verify`` start fast.
"""

from __future__ import annotations

import typer

from regions_cli import __version__
from regions_cli.cli import (
    cache_cmd,
    gui_cmd,
    llm_cmd,
    rag_cmd,
    run_cmd,
    runs_cmd,
    seed_cmd,
    tools_cmd,
    verify_cmd,
    worker_cmd,
)
from regions_cli.cli.help import Typer, plain_usage_error
from regions_cli.exit_codes import ExitCode

app = Typer(
    name="regions",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # inherited by every command
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"regions {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """A declarative workflow runner for multi-agent LLM systems.

    Examples:

        regions verify hello.yaml
        regions run hello.yaml
        regions run --help
    """


for module in (
    verify_cmd,
    run_cmd,
    runs_cmd,
    rag_cmd,
    llm_cmd,
    tools_cmd,
    cache_cmd,
    seed_cmd,
    gui_cmd,
    worker_cmd,
):
    module.register(app)


def main() -> None:
    """Console-script entry point.

    Runs the app outside click's standalone mode so that a usage error (an unknown option or
    command, a bad value) is one line on stderr with exit code 2, like every other error of
    ``regions``, instead of a multi-line usage box.
    """
    try:
        result = app(prog_name="regions", standalone_mode=False)
    except Exception as exc:
        # click's exceptions (vendored inside typer in recent versions, so matched by shape
        # rather than by class): a usage or parameter error carries its exit code.
        name = type(exc).__name__
        if name == "Abort":  # Ctrl-C or end of input at a prompt
            raise SystemExit(ExitCode.INTERRUPTED) from None
        if not (hasattr(exc, "exit_code") and hasattr(exc, "format_message")):
            raise
        if name == "NoArgsIsHelpError":  # bare `regions` or `regions rag`: the help
            exc.show()  # type: ignore[attr-defined]
        else:
            ctx = getattr(exc, "ctx", None)
            command = ctx.command_path if ctx is not None else "regions"
            message = plain_usage_error(exc.format_message())
            typer.echo(f"{command}: error: {message} (see --help)", err=True)
        raise SystemExit(exc.exit_code) from None
    raise SystemExit(result if isinstance(result, int) else ExitCode.OK)
