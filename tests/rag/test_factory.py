"""open_store: a workflow's rags: entry becomes a store holding its documents, idempotently."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from regions_cli.rag.base import RagError
from regions_cli.rag.embedders import HashEmbedder, LocalEmbedder
from regions_cli.rag.factory import make_embedder, open_store
from regions_cli.workflow.model import EmbedderConfig, Workflow, build_workflow


def workflow(tmp_path: Path, rag: dict[str, Any], embedders: Any = None) -> Workflow:
    data: dict[str, Any] = {
        "version": 1,
        "name": "t",
        "rags": {"facts": rag},
        "regions": {"Facts": {"type": "RAGRegion", "task": "facts", "rag": "facts"}},
        "plan": [{"chains": {"a": ["Facts.make_replies"]}}],
    }
    if embedders is not False:
        data["embedders"] = embedders or {"default": {"backend": "hash", "dimensions": 64}}
    return build_workflow(data, source=tmp_path / "wf.yaml")


def test_open_store_ingests_documents_once(tmp_path: Path, seed_docs: Path) -> None:
    shutil.copy(seed_docs / "demo_historical_docs.json", tmp_path / "history.json")
    (tmp_path / "notes.md").write_text("# Notes\n\nKiwis hid in the ferns.\n", encoding="utf-8")
    wf = workflow(
        tmp_path,
        {
            "path": "data/facts.db",
            "documents": [
                {"file": "history.json", "actors": ["Archive"]},
                {"file": "notes.md", "actors": ["Scout"]},
                {"text": "Zebras are striped.", "id": "note-1"},
            ],
        },
    )
    with open_store(wf, "facts") as store:
        assert store.path == tmp_path / "data" / "facts.db"
        assert isinstance(store.embedder, HashEmbedder) and store.embedder.dimensions == 64
        assert dict(store.documents()) == {"history.json": 5, "notes.md": 1, "note-1": 1}
        hit = store.search_sync("code name", k=1)[0]
        assert set(hit.actors) == {"Archive", "Zebra Forces"}  # entry actors + item actors
        chunk_ids = {h.chunk_id for h in store.search_sync("x", k=100)}
    with open_store(wf, "facts") as again:  # unchanged: nothing re-written, same ids
        assert {h.chunk_id for h in again.search_sync("x", k=100)} == chunk_ids
    (tmp_path / "notes.md").write_text("Kiwis moved to the hills.", encoding="utf-8")
    with open_store(wf, "facts") as changed:
        assert [h.content for h in changed.search_sync("kiwis", k=1)] == [
            "Kiwis moved to the hills."
        ]
        assert changed.stats().chunks == 7
        history = {
            h.chunk_id for h in changed.search_sync("x", k=100) if h.document == "history.json"
        }
        assert history <= chunk_ids  # the unchanged document kept its chunks


def test_open_store_errors_name_the_entry(tmp_path: Path) -> None:
    wf = workflow(tmp_path, {"path": "f.db", "documents": [{"file": "missing.txt"}]})
    with pytest.raises(RagError, match=r"missing.txt: no such document file"):
        open_store(wf, "facts")
    with pytest.raises(RagError, match=r"rags.nope: no such RAG store .*known: facts"):
        open_store(wf, "nope")
    bad = workflow(tmp_path, {"path": "f.db", "chunk_size": 10, "overlap": 10})
    with pytest.raises(RagError, match=r"rags.facts: overlap must be"):
        open_store(bad, "facts")
    other = workflow(tmp_path, {"path": "f.db", "embedder": "ghost"})
    with pytest.raises(RagError, match=r"rags.facts.embedder: no embedder named 'ghost'"):
        open_store(other, "facts")


def test_bad_json_documents_are_reported_with_position(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('[{"content": "a"},\n {"content": }]')
    (tmp_path / "shape.json").write_text(json.dumps([{"content": "a"}, {"text": "b"}]))
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00bad")
    for name, message in [
        ("broken.json", r"broken.json:2:14: invalid JSON"),
        ("shape.json", r"shape.json: item 1: expected an object with a string 'content'"),
        ("binary.txt", r"binary.txt: not UTF-8 text"),
    ]:
        wf = workflow(tmp_path, {"path": "f.db", "documents": [{"file": name}]})
        with pytest.raises(RagError, match=message):
            open_store(wf, "facts")


def test_the_implied_default_embedder_is_the_local_model(tmp_path: Path) -> None:
    wf = workflow(tmp_path, {"path": "f.db"}, embedders=False)
    assert isinstance(make_embedder(wf.embedders["default"]), LocalEmbedder)
    assert make_embedder(EmbedderConfig("x", "hash")).dimensions == 384
