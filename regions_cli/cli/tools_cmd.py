"""``regions tools FILE``: list every tool each region of a workflow can call, and check that
every tool answers (MCP servers start and list their tools, commands are found, Python targets
import).

Exit codes: 0 every tool answers, 1 at least one does not (each problem one line on stderr),
2 a usage or input error (the file is missing or invalid).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from regions_cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from regions_cli.tools.catalog import Catalog


def tools(
    file: Path = typer.Argument(..., metavar="FILE", help="The workflow file.", show_default=False),
    as_json: bool = typer.Option(
        False, "--json", help="Print the tools per region, and the problems, as JSON."
    ),
) -> None:
    """List, per region, every tool it can call: name, description and parameters (JSON Schema).

    MCP servers are started once, asked for their tools and stopped; commands are looked up;
    Python targets are imported. No tool is called.

    Exit code 0: every tool answers; 1: at least one does not (each problem one line on
    stderr); 2: the file is unusable.

    Example:

        regions tools solver.yaml --json
    """
    import asyncio

    from regions_cli.tools.catalog import catalog
    from regions_cli.workflow.api import WorkflowInvalid, load_workflow

    try:
        workflow = load_workflow(file)
    except WorkflowInvalid as exc:
        typer.echo(f"regions tools: {exc}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    # Importing a Python target runs its module, which may print: keep stdout for the report.
    with contextlib.redirect_stdout(sys.stderr):
        found = asyncio.run(catalog(workflow))
    if as_json:
        sys.stdout.write(json.dumps(found.as_dict(), indent=2) + "\n")
    else:
        _print_table(found)
    for problem in found.problems:
        typer.echo(f"regions tools: {problem}", err=True)
    raise typer.Exit(ExitCode.OK if found.ok else ExitCode.INVALID)


def _print_table(found: Catalog) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from regions_cli.text import plural

    console = Console(highlight=False)
    if not found.regions:
        console.print("No region has tools.")
        return
    table = Table(title="Tools per region", show_lines=True)
    for column in ("region", "tool", "from", "description", "parameters"):
        table.add_column(column, overflow="fold")
    for region, offered in found.regions.items():
        for tool in offered:
            parameters = (
                "[red]unavailable[/]"
                if tool.parameters is None
                else escape(signature(tool.parameters))
            )
            source = tool.kind if tool.entry == tool.name else f"{tool.entry} ({tool.kind})"
            table.add_row(
                escape(region), escape(tool.name), escape(source), escape(tool.description),
                parameters,
            )  # fmt: skip
    console.print(table)
    count = sum(len(offered) for offered in found.regions.values())
    if found.ok:
        console.print(f"[green]all {plural(count, 'tool')} answer[/]")
    else:
        console.print(f"[red]{plural(len(found.problems), 'problem')}[/] (listed on stderr)")


def _type_of(schema: Any) -> str:
    if not isinstance(schema, Mapping):
        return "any"
    if "enum" in schema:
        return " | ".join(json.dumps(value) for value in schema["enum"])
    options = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(options, list):
        return " | ".join(_type_of(option) for option in options)
    kind = schema.get("type", "any")
    return " | ".join(kind) if isinstance(kind, list) else str(kind)


def signature(parameters: Mapping[str, Any]) -> str:
    """A parameters schema in one line for the table: ``a: number, k?: integer`` (``?``: not
    required); the whole schema is in ``--json``."""
    required = set(parameters.get("required") or ())
    properties = parameters.get("properties") or {}
    return (
        ", ".join(
            f"{name}{'' if name in required else '?'}: {_type_of(schema)}"
            for name, schema in properties.items()
        )
        or "(none)"
    )


def register(app: typer.Typer) -> None:
    """Add ``tools`` to `app`."""
    app.command("tools", short_help="List the tools each region can call; check they answer.")(
        tools
    )
