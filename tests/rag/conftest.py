"""Shared fixtures: real sqlite files in tmp_path, the deterministic hash embedder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from regions_cli.rag.embedders import HashEmbedder
from regions_cli.rag.store import RagStore

_SEED_DOCS = Path(__file__).resolve().parents[3] / "shared" / "seed-examples" / "docs"


@pytest.fixture
def seed_docs() -> Path:
    """The original framework's example documents (``../shared`` beside the repository)."""
    if not (_SEED_DOCS / "demo_historical_docs.json").is_file():
        pytest.skip(f"seed examples not found at {_SEED_DOCS}")
    return _SEED_DOCS


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RagStore]:
    with RagStore(tmp_path / "facts.db", HashEmbedder(64), chunk_size=200, overlap=20) as rag:
        yield rag
