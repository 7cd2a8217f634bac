"""``regions rag``: build, query, inspect and edit the RAG stores a workflow declares.

    regions rag ingest FILE STORE [DOCS...]     bring the store up to date, add more documents
    regions rag query FILE STORE "text" [-k N]  the best chunks, as a table (or --json)
    regions rag stats FILE STORE                counts, embedder, documents
    regions rag delete FILE STORE (--chunk ID... | --document NAME)

FILE is the workflow, STORE a ``rags:`` name. Exit codes: 0 done, 1 the store operation failed
(a broken store file, an embedder error, nothing to delete), 2 the command cannot start (the
workflow does not load, no such store, bad options). Errors are one line on stderr.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import typer

from regions_cli.cli.help import Typer
from regions_cli.exit_codes import ExitCode
from regions_cli.text import plural

if TYPE_CHECKING:
    from regions_cli.model import Workflow
    from regions_cli.rag.documents import Document
    from regions_cli.rag.store import RagStore


rag_app = Typer(
    name="rag",
    help="Build, query and edit a workflow's RAG stores (rags: entries).",
    epilog='Example:\n\n    regions rag query lookup.yaml facts "Who won at Hastings?"',
    no_args_is_help=True,
)

_FILE = typer.Argument(..., metavar="FILE", help="The workflow file.", show_default=False)
_STORE = typer.Argument(
    ..., metavar="STORE", help="A rags: name in the workflow.", show_default=False
)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def load_workflow_file(path: Path) -> Workflow:
    """Load and validate a workflow, or exit 2 with its first error (file:line:col: message)."""
    from regions_cli.workflow.api import WorkflowInvalid, load_workflow

    if not path.exists():
        _fail(f"{path}: no such workflow file", ExitCode.USAGE)
    try:
        return load_workflow(path)
    except WorkflowInvalid as exc:
        _fail(f"{exc} (see `regions verify {path}`)", ExitCode.USAGE)


def _workflow_with_store(file: Path, store: str) -> Workflow:
    """The workflow in `file`, or exit 2 unless it declares the store `store`."""
    workflow = load_workflow_file(file)
    if store not in workflow.rags:
        known = ", ".join(sorted(workflow.rags)) or "none"
        _fail(f"{file}: no RAG store {store!r} under rags: (known: {known})", ExitCode.USAGE)
    return workflow


@contextmanager
def _rag_errors() -> Iterator[None]:
    """A `RagError` becomes its one line and exit code 1."""
    from regions_cli.rag.base import RagError

    try:
        yield
    except RagError as exc:
        _fail(str(exc), ExitCode.INVALID)


def _open_existing(workflow: Workflow, store: str) -> RagStore:
    from regions_cli.rag.factory import open_store

    path = workflow.rags[store].path
    if not path.exists():
        _fail(
            f"{path}: the store {store!r} is not built yet; run `regions rag ingest "
            f"{workflow.source or 'FILE'} {store}`",
            ExitCode.INVALID,
        )
    return open_store(workflow, store, sync_documents=False)


@rag_app.command("ingest")
def ingest(
    file: Path = _FILE,
    store: str = _STORE,
    docs: list[Path] | None = typer.Argument(
        None,
        metavar="DOCS",
        help="More files to add (.txt, .md, or .json lists of {content, actors}).",
        show_default=False,
    ),
    actor: list[str] | None = typer.Option(
        None,
        "--actor",
        "-a",
        metavar="NAME",
        help="Tag the chunks of DOCS with this actor (repeatable).",
    ),
    force: bool = typer.Option(False, "--force", help="Re-ingest unchanged documents too."),
) -> None:
    """Bring STORE up to date with its documents (only new or changed ones), then add DOCS.

    Example:

        regions rag ingest lookup.yaml facts notes.md
    """
    from regions_cli.rag.documents import document_name, is_inline_name, load_file
    from regions_cli.rag.factory import open_store, workflow_documents
    from regions_cli.rag.store import IngestReport
    from regions_cli.view.progress import embedding_progress

    workflow = _workflow_with_store(file, store)
    with _rag_errors():
        documents: list[Document] = workflow_documents(workflow, store)
        documents += [
            load_file(path, tuple(actor or ()), document_name(path, workflow.base_dir))
            for path in docs or ()
        ]
        with embedding_progress() as progress:
            rag = open_store(workflow, store, sync_documents=False)
            try:
                report: IngestReport = rag.ingest(
                    documents,
                    force=force,
                    progress=lambda done, total: progress(store, done, total),
                )
                stats, stored = rag.stats(), rag.documents()
            finally:
                rag.close()
    typer.echo(
        f"{store}: {report.added} added, {report.replaced} replaced, {report.unchanged} "
        f"unchanged; {plural(report.chunks, 'chunk')} written; the store holds "
        f"{plural(stats.chunks, 'chunk')} in {plural(stats.documents, 'document')} ({stats.path})"
    )
    listed = {document.name for document in documents}
    if leftovers := [n for n, _ in stored if is_inline_name(n) and n not in listed]:
        typer.echo(
            f"note: {plural(len(leftovers), 'inline text')} no longer under "
            f"rags.{store}.documents, still in the store ({', '.join(leftovers)}); remove one "
            f"with `regions rag delete {file} {store} --document NAME`",
            err=True,
        )


@rag_app.command("query")
def query(
    file: Path = _FILE,
    store: str = _STORE,
    text: str = typer.Argument(..., metavar="TEXT", help="What to look for.", show_default=False),
    k: int | None = typer.Option(
        None,
        "-k",
        "--top",
        min=1,
        metavar="N",
        help="How many chunks (default: the store's max_results).",
    ),
    threshold: float = typer.Option(
        0.0, "--threshold", "-t", metavar="SCORE", help="Lowest cosine score shown."
    ),
    actor: list[str] | None = typer.Option(
        None,
        "--actor",
        "-a",
        metavar="NAME",
        help="Only chunks tagged with this actor (repeatable).",
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per hit, not a table."),
) -> None:
    """The chunks of STORE most similar to TEXT (brings the store up to date first).

    Example:

        regions rag query lookup.yaml facts "When was the Battle of Hastings?" -k 3
    """
    from regions_cli.rag.factory import open_store

    if not text.strip():
        _fail("the query text is empty", ExitCode.USAGE)
    workflow = _workflow_with_store(file, store)
    with _rag_errors():
        rag = open_store(workflow, store)
        try:
            # The best k at any score, then the threshold: with nothing above it, the best
            # score below it tells the user which threshold would have found something.
            ranked = rag.search_sync(text, k=k, threshold=-math.inf, actors=actor or None)
            hits = [hit for hit in ranked if hit.score >= threshold]
            empty = not ranked and rag.stats().chunks == 0
        finally:
            rag.close()
    if empty:
        typer.echo(
            f"{store}: the store holds no chunks yet; add documents with "
            f"`regions rag ingest {file} {store} FILES...`",
            err=True,
        )
    if as_json:
        for hit in hits:
            typer.echo(
                json.dumps(
                    {
                        "id": hit.chunk_id,
                        "score": round(hit.score, 6),
                        "actors": list(hit.actors),
                        "document": hit.document,
                        "content": hit.content,
                    },
                    ensure_ascii=False,
                )
            )
        return
    if not hits:
        if ranked:
            typer.echo(
                f"{store}: no chunk scores >= {threshold:g}; the best scores "
                f"{ranked[0].score:.3f} (lower it with --threshold)"
            )
        elif not empty:
            typer.echo(f"{store}: no chunk is tagged with {' or '.join(actor or [])}")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{store}: {text}", title_justify="left")
    table.add_column("score", justify="right")
    table.add_column("id", justify="right")
    table.add_column("actors")
    table.add_column("snippet")
    for hit in hits:
        snippet = " ".join(hit.content.split())
        snippet = snippet if len(snippet) <= 160 else snippet[:157] + "..."
        table.add_row(f"{hit.score:.3f}", str(hit.chunk_id), ", ".join(hit.actors), snippet)
    Console(soft_wrap=False).print(table)


@rag_app.command("stats")
def stats(
    file: Path = _FILE,
    store: str = _STORE,
    as_json: bool = typer.Option(False, "--json", help="A JSON object, not text."),
) -> None:
    """Counts, embedder and documents of STORE (reads the file as it is; builds nothing).

    Example:

        regions rag stats lookup.yaml facts
    """
    workflow = _workflow_with_store(file, store)
    with _rag_errors():
        rag = _open_existing(workflow, store)
        try:
            info, documents = rag.stats(), rag.documents()
        finally:
            rag.close()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "store": store,
                    "path": str(info.path),
                    "chunks": info.chunks,
                    "documents": dict(documents),
                    "actors": list(info.actors),
                    "embedder": info.embedder_model,
                    "dimensions": info.dimensions,
                    "schema_version": info.schema_version,
                    "size_bytes": info.size_bytes,
                },
                ensure_ascii=False,
            )
        )
        return
    embedder = (
        f"{info.embedder_model} ({info.dimensions} dimensions)" if info.embedder_model else "-"
    )
    lines = [
        f"store      {store} ({info.path}, {info.size_bytes / 1024:.0f} KiB, "
        f"schema {info.schema_version})",
        f"embedder   {embedder}",
        f"chunks     {info.chunks}",
        f"documents  {info.documents}",
        f"actors     {len(info.actors)}"
        + (f": {', '.join(info.actors[:20])}" if info.actors else ""),
    ]
    if len(info.actors) > 20:
        lines[-1] += ", ..."
    lines += [f"  {count:>6}  {name}" for name, count in documents]
    typer.echo("\n".join(lines))


@rag_app.command("delete")
def delete(
    file: Path = _FILE,
    store: str = _STORE,
    chunk: list[int] | None = typer.Option(
        None, "--chunk", "-c", metavar="ID", help="A chunk id (repeatable)."
    ),
    document: str | None = typer.Option(
        None, "--document", "-d", metavar="NAME", help="A document name."
    ),
) -> None:
    """Delete chunks by id, or a whole document, from STORE.

    Example:

        regions rag delete lookup.yaml facts --document notes.md
    """
    if bool(chunk) == (document is not None):
        _fail("give either --chunk ID (repeatable) or --document NAME", ExitCode.USAGE)
    workflow = _workflow_with_store(file, store)
    with _rag_errors():
        rag = _open_existing(workflow, store)
        try:
            if document is not None:
                deleted = rag.delete_document_sync(document)
                typer.echo(f"{store}: deleted document {document!r} ({plural(deleted, 'chunk')})")
                from regions_cli.rag.documents import source_names

                if document in source_names(workflow.rags[store].documents, workflow.base_dir):
                    typer.echo(
                        f"note: {document!r} is listed under rags.{store}.documents and will be "
                        "ingested again on the next run; remove it there to keep it out",
                        err=True,
                    )
                return
            wanted = sorted(set(chunk or ()))
            deleted = rag.delete_chunks_sync(wanted)
        finally:
            rag.close()
    typer.echo(f"{store}: deleted {deleted} of {plural(len(wanted), 'chunk')}")
    if deleted < len(wanted):
        _fail(f"{len(wanted) - deleted} of the chunk ids were not in the store", ExitCode.INVALID)


def register(app: typer.Typer) -> None:
    """Add ``regions rag ...`` to `app`."""
    app.add_typer(rag_app, name="rag")
