"""``regions import`` and ``regions export``: the original Regions framework's JSON files.

The conversion itself lives in `regions_cli.interop.original`; these commands read and write
files, print what was dropped on stderr and set the exit code (0 done, 1 bad input).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from regions_cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from regions_cli.model import Workflow


def _warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def _fail(message: str) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(ExitCode.INVALID)


def import_command(
    files: list[Path] = typer.Argument(
        ...,
        metavar="FILE",
        help="The original's registry and plan (two files), a registry alone, or a flow-editor "
        "full state.",
        show_default=False,
    ),
    output: Path | None = typer.Option(
        None,
        "--output",
        "-o",
        metavar="FILE",
        help="Write the workflow here (default: standard output).",
    ),
    force: bool = typer.Option(False, "--force", help="Replace an existing output file."),
) -> None:
    """Convert the original framework's JSON into a workflow YAML file.

    Dropped pairs and values are named on stderr and in the file's comments.

    Example:

        regions import minimal_regions.json minimal_executions.json -o minimal.yaml
    """
    from regions_cli.interop.original.parse import SeedFormatError
    from regions_cli.interop.original.to_yaml import SCHEMA_BESIDE, import_files, schema_reference

    if len(files) > 2:
        raise _fail("regions import: give REGIONS.json [PLAN.json], or one STATE.json")
    if output is not None and output.is_dir():
        raise _fail(
            f"{output}: is a folder; give the file to write, e.g. -o {output}/workflow.yaml"
        )
    if output is not None and output.exists() and not force:
        raise _fail(f"{output}: exists (use --force to replace it)")
    try:
        result = import_files(files, output=output)
    except SeedFormatError as exc:
        raise _fail(str(exc)) from None
    for warning in result.warnings:
        _warn(warning)
    text = result.dump()
    folder = output.parent if output is not None else Path(".")
    if schema_reference(output) == SCHEMA_BESIDE and not (folder / SCHEMA_BESIDE).is_file():
        typer.echo(
            f"note: the $schema line names {SCHEMA_BESIDE} beside the workflow; for completion "
            f"in your editor write it with `regions schema > {folder / SCHEMA_BESIDE}`",
            err=True,
        )
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _fail(f"{output}: cannot write: {exc.strerror or exc}") from None
    typer.echo(f"wrote {output}", err=True)


def export_command(
    workflow: Path = typer.Argument(
        ..., metavar="FILE", help="The workflow YAML file.", show_default=False
    ),
    output: Path = typer.Option(
        Path("."),
        "--output",
        "-o",
        metavar="DIR",
        help="Folder for <name>_regions.json and <name>_executions.json.",
    ),
    force: bool = typer.Option(False, "--force", help="Replace existing files."),
) -> None:
    """Write a workflow as the original's registry and plan JSON (for its flow editor).

    What those files cannot express (inject, llms, rags...) is named on stderr.

    Example:

        regions export hello.yaml -o seed/
    """
    from regions_cli.interop.original.export import export_workflow

    if output.exists() and not output.is_dir():
        raise _fail(f"{output}: is a file; -o takes the folder to write the two JSON files into")
    loaded = _load_verified(workflow)
    try:
        result = export_workflow(loaded)
    except ValueError as exc:
        raise _fail(f"{workflow}: cannot export: {exc}") from None
    for item in result.dropped:
        _warn(f"not expressible in the original's files, dropped: {item}")
    try:
        written = result.write(output, force=force)
    except FileExistsError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"{output}: cannot write: {exc.strerror or exc}") from None
    for path in written:
        typer.echo(f"wrote {path}", err=True)


def _load_verified(path: Path) -> Workflow:
    """The `Workflow` in `path`, or exit 1 with the verifier's errors (2 if unreadable)."""
    from regions_cli.workflow.api import WorkflowInvalid, load_workflow
    from regions_cli.workflow.findings import format_text

    try:
        return load_workflow(path)
    except WorkflowInvalid as exc:
        sys.stderr.write(format_text(exc.findings, color=False, files=1))
        io_error = any(f.rule == "io-error" for f in exc.findings)
        raise typer.Exit(2 if io_error else 1) from None


def register(app: typer.Typer) -> None:
    """Add ``import`` and ``export`` to `app`."""
    app.command("import")(import_command)
    app.command("export", short_help="Write a workflow as the original's registry and plan JSON.")(
        export_command
    )
