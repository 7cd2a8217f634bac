"""``regions verify``, ``regions schema`` and ``regions graph``: the workflow file commands.

Exit codes of ``verify``: 0 valid (warnings allowed), 1 at least one error, 2 a usage or I/O
error (a missing file, a directory, an unreadable path).
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path

import typer

from regions_cli.exit_codes import ExitCode


class OutputFormat(StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"
    github = "github"


class GraphFormat(StrEnum):
    mermaid = "mermaid"
    dot = "dot"


def _use_color(stream: object) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and "NO_COLOR" not in os.environ


def verify(
    # readable/exists off: an unreadable path is an io-error finding (exit 2) reported with the
    # other files' findings, not a usage error that stops before any file is checked.
    files: list[Path] = typer.Argument(
        ...,
        metavar="FILE",
        help="Workflow files to check.",
        show_default=False,
        exists=False,
        readable=False,
    ),
    output_format: OutputFormat = typer.Option(
        OutputFormat.text, "--format", "-f", help="Output format.", case_sensitive=False
    ),
    strict: bool = typer.Option(False, "--strict", help="Treat an unset ${VAR} as an error."),
) -> None:
    """Check workflow files: YAML, schema and cross-references, every problem at file:line:col.

    Exit code 0: valid (warnings allowed); 1: errors found; 2: a file could not be read.

    Example:

        regions verify workflows/*.yaml --format github
    """
    from regions_cli.workflow.api import verify as verify_file
    from regions_cli.workflow.findings import format_findings

    findings = []
    for file in files:
        findings.extend(verify_file(file, strict=strict))
    fmt = output_format.value
    sys.stdout.write(format_findings(findings, fmt, color=_use_color(sys.stdout), files=len(files)))
    if any(f.rule == "io-error" for f in findings):
        raise typer.Exit(ExitCode.USAGE)
    if any(f.is_error for f in findings):
        raise typer.Exit(ExitCode.INVALID)


def schema() -> None:
    """Print the workflow JSON Schema (for editors: see the yaml-language-server line).

    Example:

        regions schema > workflow.schema.json
    """
    from regions_cli.workflow.schema import schema_text

    sys.stdout.write(schema_text())


def graph(
    file: Path = typer.Argument(
        ...,
        metavar="FILE",
        help="The workflow file.",
        show_default=False,
        exists=False,
        readable=False,
    ),
    output_format: GraphFormat = typer.Option(
        GraphFormat.mermaid, "--format", "-f", help="Diagram language.", case_sensitive=False
    ),
) -> None:
    """Print a workflow's regions, connections and plan as a Mermaid (or Graphviz dot) diagram.

    A workflow with states: is drawn as a state machine: each state with its layers inside,
    each transition labelled with its condition.

    Example:

        regions graph hello.yaml --format dot | dot -Tsvg > hello.svg
    """
    from regions_cli.workflow.api import WorkflowInvalid, load_workflow
    from regions_cli.workflow.findings import format_text
    from regions_cli.workflow.graph import to_dot, to_mermaid

    try:
        workflow = load_workflow(file)
    except WorkflowInvalid as exc:
        sys.stderr.write(format_text(exc.findings, color=_use_color(sys.stderr), files=1))
        io_error = any(f.rule == "io-error" for f in exc.findings)
        raise typer.Exit(ExitCode.USAGE if io_error else ExitCode.INVALID) from None
    render = to_mermaid if output_format is GraphFormat.mermaid else to_dot
    sys.stdout.write(render(workflow))


def register(app: typer.Typer) -> None:
    """Add ``verify``, ``schema`` and ``graph`` to `app`."""
    # short_help: the one line `regions --help` shows (80 columns); the docstring has the rest.
    app.command("verify", short_help="Check workflow files; every problem at file:line:col.")(
        verify
    )
    app.command("schema", short_help="Print the workflow JSON Schema (for editors).")(schema)
    app.command("graph", short_help="Draw a workflow's regions and plan (Mermaid or dot).")(graph)
