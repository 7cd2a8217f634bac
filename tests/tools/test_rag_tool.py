"""RAG tools over a real store (sqlite file, the deterministic hash embedder)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from regions_cli.model.tools import RagToolSpec
from regions_cli.rag.documents import Document, Passage
from regions_cli.rag.embedders import HashEmbedder
from regions_cli.rag.store import RagStore
from regions_cli.tools.rag import RagTool

ZEBRA = "Operation Razzle Dazzle was the Zebra code name for The Great Kiwi Massacre."
CALCIUM = "Doggiestan remains rich in calcium deposits to this day."
OTTERS = "The otters of the northern river built dams of driftwood every spring."


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RagStore]:
    with RagStore(tmp_path / "facts.db", HashEmbedder(256), chunk_size=200, overlap=20) as rag:
        rag.ingest(
            [
                Document("history", (Passage(ZEBRA), Passage(OTTERS))),
                Document("geology", (Passage(CALCIUM),)),
            ]
        )
        yield rag


async def test_a_query_returns_the_best_chunks_numbered_best_first(store: RagStore) -> None:
    tool = RagTool(RagToolSpec(name="facts", store="facts", max_results=2), store)
    result = await tool.call({"query": "calcium deposits in Doggiestan"})
    assert not result.is_error
    first, second = result.content.split("\n\n")
    assert first.startswith("[1] geology (score ")
    assert first.endswith(CALCIUM)
    assert second.startswith("[2] history")
    assert tool.description == "Search the facts store for relevant passages."


async def test_k_asks_for_fewer_or_more(store: RagStore) -> None:
    tool = RagTool(RagToolSpec(name="facts", store="facts", max_results=1), store)
    assert (await tool.call({"query": "Zebra code name"})).content.count("\n[") == 0
    assert (await tool.call({"query": "Zebra code name", "k": 3})).content.count("[3]") == 1


async def test_bad_arguments_are_error_results(store: RagStore) -> None:
    tool = RagTool(RagToolSpec(name="facts", store="facts"), store)
    for arguments in ({}, {"query": ""}, {"query": "x", "k": 0}, {"query": "x", "top": 2}):
        result = await tool.call(arguments)
        assert result.is_error, arguments
        assert result.content.startswith("invalid arguments for facts: ")


async def test_an_empty_store_says_so(tmp_path: Path) -> None:
    with RagStore(tmp_path / "empty.db", HashEmbedder(64)) as empty:
        result = await RagTool(RagToolSpec(name="facts", store="empty"), empty).call(
            {"query": "anything"}
        )
    assert (result.content, result.is_error) == ("no matching passages", False)


async def test_a_store_error_is_an_error_result(tmp_path: Path) -> None:
    closed = RagStore(tmp_path / "gone.db", HashEmbedder(64))
    closed.close()  # the store is unusable from here on: every search is a RagError
    result = await RagTool(RagToolSpec(name="facts", store="gone"), closed).call({"query": "x"})
    assert result.is_error
    assert result.content.startswith(f"facts: {tmp_path / 'gone.db'}: ")
