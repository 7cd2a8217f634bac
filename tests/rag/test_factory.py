"""open_store: a workflow's rags: entry becomes a store holding its documents, idempotently."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from regions_cli.model import EmbedderConfig, Workflow
from regions_cli.rag.base import RagError
from regions_cli.rag.embedders import HashEmbedder, LocalEmbedder
from regions_cli.rag.factory import make_embedder, open_store
from regions_cli.rag.store import RagStore
from regions_cli.workflow.convert import build_workflow


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


def test_inline_texts_are_named_by_content_so_reordering_rewrites_nothing(tmp_path: Path) -> None:
    rome = {"text": "Rome fell in 476 AD.", "actors": ["historian"]}
    zebra = {"text": "Zebras are striped."}
    again = {"text": "Rome fell in 476 AD.", "actors": ["archivist"]}  # same text, other actors
    with open_store(workflow(tmp_path, {"path": "f.db", "documents": [rome, zebra]}), "facts") as s:
        before = {h.chunk_id: h.content for h in s.search_sync("x", k=10)}
        assert {name for name, _ in s.documents()} == {
            "text-" + hashlib.sha256(b'["Rome fell in 476 AD.", ["historian"]]').hexdigest()[:12],
            "text-" + hashlib.sha256(b'["Zebras are striped.", []]').hexdigest()[:12],
        }
        # make_updates edits chunks in place: a reorder must not undo that edit
        edited = next(i for i, content in before.items() if content.startswith("Zebras"))
        s.update_chunk_sync(edited, "Zebras are striped (black on white).")
    reordered = workflow(tmp_path, {"path": "f.db", "documents": [again, zebra, rome]})
    with open_store(reordered, "facts") as s:
        after = {h.chunk_id: h for h in s.search_sync("x", k=10)}
        assert set(before) < set(after)  # the old chunks kept their ids: nothing was rewritten
        assert after[edited].content == "Zebras are striped (black on white)."
        # the same text for other actors is a document of its own, not collapsed into the first
        assert sorted(h.actors for h in after.values() if h.content.startswith("Rome")) == [
            ("archivist",),
            ("historian",),
        ]
    twice = workflow(tmp_path, {"path": "g.db", "documents": [zebra, zebra]})
    with open_store(twice, "facts") as s:  # an entry listed twice over is not an error
        assert sorted(n for n, _ in s.documents())[1].endswith("-2")


def test_two_documents_of_one_name_are_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    docs = [{"text": "first", "id": "note"}, {"text": "second", "id": "note"}]
    wf = workflow(tmp_path, {"path": "f.db", "documents": docs})
    with pytest.raises(RagError, match=r"f.db: the document 'note' is given twice"):
        open_store(wf, "facts")
    with RagStore(tmp_path / "f.db", HashEmbedder(64)) as store:
        assert store.stats().chunks == 0
