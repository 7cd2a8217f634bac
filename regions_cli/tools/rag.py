"""`RagTool`: search a RAG store, ``{query, k?}`` -> the best chunks, numbered, best first.

It holds the store through the `KnowledgeStore` protocol (`regions_cli.rag.base`), so any store
the engine can hold works; a store error is an error result.
"""

from __future__ import annotations

from typing import Any

from regions_cli.model.tools import RagToolSpec
from regions_cli.rag.base import Hit, KnowledgeStore, RagError
from regions_cli.tools.base import CheckedTool, ToolResult, capped_result, error_result

#: The most chunks one call may ask for, whatever the spec's default.
MAX_K = 50


def format_hits(hits: list[Hit]) -> str:
    """Numbered chunks with their document and score, best first."""
    if not hits:
        return "no matching passages"
    return "\n\n".join(
        f"[{rank}] {hit.document or 'untitled'} (score {hit.score:.3f})\n{hit.content}"
        for rank, hit in enumerate(hits, start=1)
    )


class RagTool(CheckedTool):
    """A `RagToolSpec` over an open store."""

    def __init__(self, spec: RagToolSpec, store: KnowledgeStore) -> None:
        parameters = {
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1, "description": "What to look for."},
                "k": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_K,
                    "description": f"How many passages (default {spec.max_results}).",
                },
            },
            "required": ["query"],
            "additionalProperties": False,
        }
        description = spec.description or f"Search the {spec.store} store for relevant passages."
        super().__init__(spec.name, description, parameters)
        self.spec = spec
        self.store = store

    async def invoke(self, arguments: dict[str, Any]) -> ToolResult:
        try:
            hits = await self.store.search(
                arguments["query"], k=arguments.get("k", self.spec.max_results)
            )
        except RagError as exc:
            return error_result(f"{self.name}: {exc}")
        return capped_result(format_hits(hits))
