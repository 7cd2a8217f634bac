"""``regions llm check FILE``: probe every LLM endpoint of a workflow.

Exit codes: 0 every endpoint answers, 1 at least one does not, 2 a usage or input error (the
file is missing or invalid, a bad ``--llm`` value).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from regions_cli.cli.help import Typer
from regions_cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from regions_cli.llm.check import LLMCheck


llm_app = Typer(
    name="llm",
    help="Check the workflow's LLM endpoints.",
    epilog="Example:\n\n    regions llm check hello.yaml",
    no_args_is_help=True,
)


@llm_app.command("check")
def check(
    file: Path = typer.Argument(..., metavar="FILE", help="The workflow file.", show_default=False),
    llm: list[str] = typer.Option(
        [],
        "--llm",
        metavar="NAME=URL",
        help="Override an endpoint: NAME=URL, NAME=local, NAME=scripted or NAME=replay:FILE.",
    ),
    replay: Path | None = typer.Option(
        None, "--replay", metavar="FILE", help="Check a cassette instead of the endpoints."
    ),
    keep_credentials: bool = typer.Option(
        False,
        "--keep-credentials",
        help="With --llm NAME=URL: send the entry's api_key and headers to another server too.",
    ),
    timeout: float = typer.Option(
        60.0, "--timeout", min=0.1, metavar="SECONDS", help="Seconds each probe may take."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
) -> None:
    """For every llm of FILE: health, model list and a one-token generation, with latency.

    Exit code 0: all answer; 1: at least one fails; 2: the file or an option is unusable.

    Example:

        regions llm check hello.yaml --llm default=http://127.0.0.1:8080/v1
    """
    import asyncio

    from regions_cli.llm.check import check_llms
    from regions_cli.llm.factory import LLMOptions, LLMOverrideError, apply_llm_overrides
    from regions_cli.workflow.api import WorkflowInvalid, load_workflow

    try:
        workflow = apply_llm_overrides(load_workflow(file), llm, keep_credentials=keep_credentials)
    except WorkflowInvalid as exc:
        typer.echo(f"regions llm check: {exc}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    except LLMOverrideError as exc:
        typer.echo(f"regions llm check: {exc}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    options = LLMOptions(replay=replay, base_dir=workflow.base_dir)
    results = asyncio.run(check_llms(workflow.llms, options, timeout))

    if as_json:
        sys.stdout.write(json.dumps([r.as_dict() for r in results], indent=2) + "\n")
    else:
        _print_table(results)
    raise typer.Exit(ExitCode.OK if all(r.ok for r in results) else ExitCode.INVALID)


def _print_table(results: list[LLMCheck]) -> None:
    from rich.console import Console
    from rich.table import Table

    from regions_cli.llm.check import Probe

    def cell(probe: Probe) -> str:
        if probe.detail == "-":
            return "-"
        took = f" {probe.seconds * 1000:.0f} ms" if probe.seconds else ""
        return f"[green]ok[/]{took}" if probe.ok else "[red]FAIL[/]"

    def detail(r: LLMCheck) -> str:
        failed = next((p for p in (r.health, r.models, r.generation) if not p.ok), None)
        if failed is not None:
            text = failed.detail.removeprefix(f"llms.{r.name}: ")
        else:
            text = f"models: {r.models.detail}\nreply: {r.generation.detail}"
            if r.models.detail == "-":
                text = f"reply: {r.generation.detail}"
        return text.replace("[", r"\[")

    table = Table(title="LLM endpoints", show_lines=True)
    for column in ("llm", "backend", "endpoint", "health", "generation", "detail"):
        table.add_column(column, overflow="fold")
    for r in results:
        table.add_row(r.name, r.backend, r.endpoint, cell(r.health), cell(r.generation), detail(r))
    console = Console(highlight=False)
    console.print(table)
    failed = [r.name for r in results if not r.ok]
    if failed:
        console.print(f"[red]{len(failed)} of {len(results)} failed:[/] {', '.join(failed)}")
    else:
        console.print(f"[green]all {len(results)} answer[/]")


def register(app: typer.Typer) -> None:
    """Add the ``llm`` command group to `app`."""
    app.add_typer(llm_app)
