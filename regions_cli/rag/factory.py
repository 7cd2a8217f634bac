"""Build embedders and open the RAG stores a workflow declares.

`open_store` is what `regions_cli.build` and ``regions rag`` call: it opens (or creates) the
``rags:`` entry's sqlite file and brings its ``documents:`` up to date, re-ingesting only those
whose content changed, so opening is idempotent and cheap after the first time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from regions_cli.model import EmbedderConfig, Workflow
from regions_cli.rag.base import RagError
from regions_cli.rag.chunking import validate_chunking
from regions_cli.rag.documents import Document, load_source, source_names
from regions_cli.rag.embedders import (
    Embedder,
    HashEmbedder,
    LocalEmbedder,
    OpenAIEmbedder,
    positive_int,
)
from regions_cli.rag.store import RagStore


def make_embedder(config: EmbedderConfig) -> Embedder:
    """The embedder an ``embedders:`` entry describes (models load lazily, on first use)."""
    label = f"embedders.{config.name}"
    options = config.options
    if config.backend == "hash":
        return HashEmbedder(positive_int(options, "dimensions", 384, label) or 384)
    if config.backend == "local":
        model = options.get("model")
        tokenizer = options.get("tokenizer")
        return LocalEmbedder(
            model_path=Path(str(model)).expanduser() if model else None,
            tokenizer_path=Path(str(tokenizer)).expanduser() if tokenizer else None,
            batch_size=positive_int(options, "batch_size", 32, label) or 32,
            label=label,
        )
    if config.backend == "openai":
        return OpenAIEmbedder.from_options(options, config.api_key, where=label)
    raise RagError(f"{label}: unknown backend {config.backend!r} (local, openai or hash)")


def workflow_documents(workflow: Workflow, rag_name: str) -> list[Document]:
    """The ``documents:`` of a ``rags:`` entry, read from their files (or inline text)."""
    sources = workflow.rags[rag_name].documents
    names = source_names(sources, workflow.base_dir)
    return [load_source(source, name) for source, name in zip(sources, names, strict=True)]


def open_store(
    workflow: Workflow,
    rag_name: str,
    *,
    sync_documents: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> RagStore:
    """Open the store ``rags.<rag_name>`` and ingest its ``documents:`` that are new or changed.

    `progress` hears (chunks embedded, chunks to embed) as `RagStore.ingest` goes. Raises
    `RagError` (one line, naming the entry or file) for an unknown store or embedder, a
    missing document file, or a store file that is not a compatible RAG store.
    """
    config = workflow.rags.get(rag_name)
    if config is None:
        known = ", ".join(sorted(workflow.rags)) or "none"
        raise RagError(f"rags.{rag_name}: no such RAG store in the workflow (known: {known})")
    embedder_config = workflow.embedders.get(config.embedder)
    if embedder_config is None:
        raise RagError(f"rags.{rag_name}.embedder: no embedder named {config.embedder!r}")
    try:
        validate_chunking(config.chunk_size, config.overlap)
    except RagError as exc:
        raise RagError(f"rags.{rag_name}: {exc}") from None
    documents = workflow_documents(workflow, rag_name) if sync_documents else []
    store = RagStore(
        config.path,
        make_embedder(embedder_config),
        chunk_size=config.chunk_size,
        overlap=config.overlap,
        max_results=config.max_results,
        name=rag_name,
    )
    try:
        if documents:
            store.ingest(documents, progress=progress)
    except BaseException:
        store.close()
        raise
    return store
