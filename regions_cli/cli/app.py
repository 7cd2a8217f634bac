"""The ``regions`` command line: a thin typer layer over the core.

Each command group lives in its own module with a ``register(app)`` function. Modules here
import only typer and the standard library at import time; heavy imports (numpy, httpx,
llama_cpp, the engine) happen inside the command functions so ``regions --help`` and
``regions verify`` start fast.
"""

from __future__ import annotations

import typer

from regions_cli import __version__
from regions_cli.cli import (
    gui_cmd,
    llm_cmd,
    rag_cmd,
    run_cmd,
    runs_cmd,
    seed_cmd,
    verify_cmd,
)

app = typer.Typer(
    name="regions",
    help="A declarative workflow runner for multi-agent LLM systems.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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
    """A declarative workflow runner for multi-agent LLM systems."""


for module in (verify_cmd, run_cmd, runs_cmd, rag_cmd, llm_cmd, seed_cmd, gui_cmd):
    module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()
