"""What a RAGRegion needs from a store: the `KnowledgeStore` protocol and its result type.

`regions_cli.rag.store.RagStore` implements it over sqlite + numpy; tests may use a fake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


class RagError(Exception):
    """A RAG store, embedder or document problem, worded for the user in one line.

    The message names the file (or ``embedders.NAME``) it is about; the CLI prints it as is.
    """


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk and its cosine similarity to the query."""

    chunk_id: int
    content: str
    score: float
    actors: tuple[str, ...] = ()
    document: str | None = None


@runtime_checkable
class KnowledgeStore(Protocol):
    """The store operations a RAGRegion calls. All are async: I/O runs off the event loop."""

    async def search(
        self,
        query: str,
        *,
        k: int | None = None,
        threshold: float = 0.0,
        actors: Sequence[str] | None = None,
    ) -> list[Hit]:
        """Top-`k` chunks by cosine similarity >= `threshold`, best first ([] if none)."""
        ...

    async def update_chunk(
        self, chunk_id: int, content: str, actors: Sequence[str] | None = None
    ) -> int:
        """Replace a chunk's text (re-embedding it); returns the id of the updated chunk."""
        ...

    async def delete_chunks(self, chunk_ids: Sequence[int]) -> int:
        """Delete chunks; returns how many were deleted."""
        ...

    async def add_text(
        self, content: str, actors: Sequence[str] = (), document: str | None = None
    ) -> list[int]:
        """Chunk, embed and store new text; returns the new chunk ids."""
        ...
