"""RagStore over real sqlite files: round trips, retrieval, editing without loss, bad files."""

from __future__ import annotations

import asyncio
import itertools
import re
import sqlite3
import struct
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from regions_cli.rag.base import KnowledgeStore, RagError
from regions_cli.rag.documents import Document, Passage, load_file
from regions_cli.rag.embedders import HashEmbedder, Vectors
from regions_cli.rag.store import EMBED_SLICE, SCHEMA_VERSION, RagStore

ZEBRA = "Operation Razzle Dazzle was the Zebra code name for The Great Kiwi Massacre."
CALCIUM = "Doggiestan remains rich in calcium deposits to this day."


def doc(name: str, *texts: str, actors: tuple[str, ...] = ()) -> Document:
    return Document(name, tuple(Passage(t, actors) for t in texts))


def test_store_implements_the_knowledge_store_protocol(store: RagStore) -> None:
    assert isinstance(store, KnowledgeStore)


def test_round_trip_survives_reopening(tmp_path: Path, seed_docs: Path) -> None:
    path = tmp_path / "facts.db"
    with RagStore(path, HashEmbedder(64)) as rag:
        report = rag.ingest([load_file(seed_docs / "demo_historical_docs.json")])
        assert (report.added, report.chunks) == (1, 5)
        best = rag.search_sync("zebra code name", k=1)[0]
    with RagStore(path, HashEmbedder(64)) as again:
        hit = again.search_sync("zebra code name", k=1)[0]
        assert (hit.chunk_id, hit.content, hit.actors) == (best.chunk_id, ZEBRA, ("Zebra Forces",))
        assert hit.score == pytest.approx(best.score)
        assert hit.document == str(seed_docs / "demo_historical_docs.json")
        stats = again.stats()
    assert (stats.chunks, stats.documents, stats.embedder_model, stats.dimensions) == (
        5,
        1,
        "hash-v1",
        64,
    )
    assert stats.schema_version == SCHEMA_VERSION
    assert "Zebra Forces" in stats.actors
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    model, dims, blob = conn.execute("SELECT model, dimensions, vector FROM embeddings").fetchone()
    assert (model, dims, len(blob)) == ("hash-v1", 64, 64 * 4)  # float32 blobs, not JSON
    assert abs(np.linalg.norm(np.frombuffer(blob, dtype=np.float32)) - 1) < 1e-5


def test_ingest_is_idempotent_and_replaces_changed_documents(store: RagStore) -> None:
    assert store.ingest([doc("a", "first version")]).added == 1
    assert store.ingest([doc("a", "first version")]).unchanged == 1
    assert store.stats().chunks == 1
    report = store.ingest([doc("a", "second version", "and a second passage")])
    assert (report.replaced, report.chunks) == (1, 2)
    contents = {h.content for h in store.search_sync("version passage", k=10)}
    assert contents == {"second version", "and a second passage"}
    assert store.ingest([doc("a", "second version", "and a second passage")], force=True).replaced


def test_equal_text_in_two_documents_or_for_two_actors_is_kept(store: RagStore) -> None:
    store.ingest(
        [doc("one", ZEBRA, actors=("historian",)), doc("two", ZEBRA, actors=("archivist",))]
    )
    store.add_text_sync(ZEBRA, ["spy"])
    hits = store.search_sync(ZEBRA, k=10)
    assert len(hits) == 3
    assert sorted(h.actors for h in hits) == [("archivist",), ("historian",), ("spy",)]
    assert {h.document for h in hits} == {"one", "two", None}
    assert all(h.score == pytest.approx(1.0) for h in hits)


def test_top_k_threshold_and_actor_filter(store: RagStore, seed_docs: Path) -> None:
    store.ingest([load_file(seed_docs / "demo_historical_docs.json")])
    hits = store.search_sync("zebra", k=2)
    assert len(hits) == 2 and hits[0].score >= hits[1].score
    assert store.search_sync("zebra", k=0) == []
    assert store.search_sync("zebra", threshold=1.01) == []  # nothing above: empty, no error
    assert all(h.score >= 0.2 for h in store.search_sync("zebra", k=10, threshold=0.2))
    only = store.search_sync("zebra", k=10, actors=["Mustangs"])
    assert [set(h.actors) for h in only] == [{"Zebra Forces", "Mustangs"}]
    assert store.search_sync("zebra", actors=["nobody"]) == []
    assert len(store.search_sync("zebra")) == store.max_results


def test_lookup_by_actor_scores_overlap_without_dividing_by_zero(
    store: RagStore, seed_docs: Path
) -> None:
    store.ingest([load_file(seed_docs / "demo_historical_docs.json")])
    hits = store.by_actors_sync(["Zebra Forces"], limit=10)
    assert [h.score for h in hits] == [1.0, 1.0, 0.5]
    assert all("Zebra Forces" in h.actors for h in hits)
    assert store.by_actors_sync([]) == []
    assert store.by_actors_sync(["nobody"]) == []


def test_update_keeps_the_updated_chunk_and_its_place(store: RagStore) -> None:
    store.ingest([doc("history", ZEBRA, CALCIUM, actors=("historian",))])
    target = store.search_sync("Razzle Dazzle", k=1)[0]
    new_text = "Operation Razzle Dazzle was renamed Operation Stripe Storm in 2022."
    assert store.update_chunk_sync(target.chunk_id, new_text, ["archivist"]) == target.chunk_id
    hit = store.search_sync("Stripe Storm renamed", k=1)[0]
    assert (hit.chunk_id, hit.content, hit.actors, hit.document) == (
        target.chunk_id,
        new_text,
        ("archivist",),
        "history",
    )
    store.update_chunk_sync(target.chunk_id, new_text + " Really.")  # actors=None keeps them
    assert store.get_chunk(target.chunk_id) is not None
    assert store.get_chunk(target.chunk_id).actors == ("archivist",)  # type: ignore[union-attr]
    assert store.stats().chunks == 2  # nothing lost, nothing duplicated
    with pytest.raises(RagError, match="no chunk with id 999"):
        store.update_chunk_sync(999, "x")


def test_delete_removes_only_what_was_asked(store: RagStore) -> None:
    store.ingest([doc("a", ZEBRA, actors=("x",)), doc("b", CALCIUM, actors=("y",))])
    zebra = store.search_sync(ZEBRA, k=1)[0].chunk_id
    assert store.delete_chunks_sync([zebra, 12345]) == 1
    assert store.delete_chunks_sync([]) == 0
    assert [h.content for h in store.search_sync("anything", k=10)] == [CALCIUM]
    assert store.by_actors_sync(["x"]) == []  # its actors went with it
    assert store.delete_document_sync("b") == 1
    assert store.stats().chunks == 0
    with pytest.raises(RagError, match="no document named 'b'"):
        store.delete_document_sync("b")


def test_add_text_appends_to_a_named_document(store: RagStore) -> None:
    first = store.add_text_sync("A first note about kiwis.", ["a"], document="notes")
    second = store.add_text_sync("A second note about zebras.", ["b"], document="notes")
    assert len(first) == len(second) == 1 and second[0] > first[0]
    assert store.documents() == [("notes", 2)]
    assert store.add_text_sync("   ") == []


async def test_async_methods_run_off_the_event_loop(store: RagStore) -> None:
    ids = await store.add_text("Kiwis cannot fly but they run fast.", ["bird"])
    hits, by_actor = await asyncio.gather(store.search("kiwis fly", k=1), store.by_actors(["bird"]))
    assert hits[0].chunk_id == ids[0] and by_actor[0].chunk_id == ids[0]
    assert await store.update_chunk(ids[0], "Kiwis are flightless birds.") == ids[0]
    assert (await store.search("flightless", k=1))[0].content == "Kiwis are flightless birds."
    assert await store.delete_chunks(ids) == 1
    assert await store.search("kiwis") == []
    await store.aclose()
    with pytest.raises(RagError, match="closed database"):  # closed for good
        store.stats()


def test_a_write_by_another_connection_is_seen_by_the_next_search(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with RagStore(path, HashEmbedder(64)) as reader, RagStore(path, HashEmbedder(64)) as writer:
        writer.add_text_sync(ZEBRA)
        assert len(reader.search_sync("zebra", k=5)) == 1  # loads the matrix
        writer.add_text_sync(CALCIUM)
        assert len(reader.search_sync("zebra", k=5)) == 2  # data_version changed: reloaded
        writer.delete_chunks_sync([h.chunk_id for h in writer.search_sync("x", k=5)])
        assert reader.search_sync("zebra", k=5) == []


def test_mixing_embedders_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "facts.db"
    with RagStore(path, HashEmbedder(64)) as rag:
        rag.add_text_sync(ZEBRA)
    with pytest.raises(RagError, match=r"embedded with 'hash-v1' \(64 dimensions\).*mixing"):
        RagStore(path, HashEmbedder(128))

    class Renamed(HashEmbedder):
        @property
        def model(self) -> str:
            return "another-model"

    with pytest.raises(RagError, match="not 'another-model'"):
        RagStore(path, Renamed(64))
    with RagStore(path, HashEmbedder(64)) as rag:  # the right one still works
        rag.delete_chunks_sync([h.chunk_id for h in rag.search_sync("zebra", k=9)])
    with RagStore(path, HashEmbedder(128)) as rag:  # an empty store may change embedder
        rag.add_text_sync(ZEBRA)
        assert rag.stats().dimensions == 128


def test_not_a_sqlite_file_gives_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(RagError) as info:
        RagStore(path, HashEmbedder(64))
    assert str(info.value) == f"{path}: not a sqlite database (not a regions RAG store)"
    assert path.read_text().startswith("these are my notes")  # left untouched


def test_a_foreign_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "rag_storage.db"  # the original framework's layout
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE chunks (id INTEGER PRIMARY KEY, chunk_hash TEXT, content TEXT)")
    conn.execute("INSERT INTO chunks VALUES (1, 'h', 'keep me')")
    conn.commit()
    conn.close()
    with pytest.raises(RagError, match=r"another program \(tables: chunks\), not a regions RAG"):
        RagStore(path, HashEmbedder(64))
    assert sqlite3.connect(path).execute("SELECT content FROM chunks").fetchall() == [("keep me",)]


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "facts.db"
    RagStore(path, HashEmbedder(64)).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(RagError, match="schema 99 is newer"):
        RagStore(path, HashEmbedder(64))


def test_a_corrupted_store_gives_a_rag_error_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "facts.db"
    with RagStore(path, HashEmbedder(64)) as rag:
        rag.ingest([doc(f"d{i}", f"text number {i} " * 30) for i in range(200)])
    data = bytearray(path.read_bytes())
    page_size = struct.unpack(">H", data[16:18])[0]
    for page in range(1, len(data) // page_size):  # scribble over every page but the header
        start = page * page_size
        data[start : start + page_size] = b"\xde\xad\xbe\xef" * (page_size // 4)
    path.write_bytes(bytes(data))
    with (
        pytest.raises(RagError, match=re.escape(str(path))),
        RagStore(path, HashEmbedder(64)) as broken,
    ):
        broken.search_sync("text")


def test_an_unopenable_path_is_a_rag_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(RagError, match="cannot open"):
        RagStore(blocker / "sub" / "facts.db", HashEmbedder(64))


def test_bad_chunking_settings_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RagError, match="overlap"):
        RagStore(tmp_path / "x.db", HashEmbedder(8), chunk_size=10, overlap=10)
    assert not (tmp_path / "x.db").exists()


def test_an_older_store_is_migrated_in_place_keeping_its_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regions_cli.rag import store as store_module

    path = tmp_path / "facts.db"
    with RagStore(path, HashEmbedder(64)) as rag:
        rag.add_text_sync(ZEBRA, ["historian"])
    v2 = ("ALTER TABLE chunks ADD COLUMN source TEXT",)
    monkeypatch.setattr(store_module, "SCHEMA_VERSION", 2)
    monkeypatch.setitem(store_module.MIGRATIONS, 2, v2)
    with RagStore(path, HashEmbedder(64)) as migrated:
        assert migrated.stats().schema_version == 2
        assert migrated.search_sync("zebra", k=1)[0].actors == ("historian",)
    columns = [row[1] for row in sqlite3.connect(path).execute("PRAGMA table_info(chunks)")]
    assert "source" in columns


def test_a_search_reads_only_the_hits_once_the_matrix_is_cached(store: RagStore) -> None:
    store.ingest([doc(f"d{i}", f"note {i} about zebras") for i in range(50)])
    store.search_sync("zebras", k=3)  # first search loads the matrix
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    hits = store.search_sync("zebras", k=3)
    store._conn.set_trace_callback(None)
    assert len(hits) == 3
    assert not any("FROM embeddings" in s for s in statements), statements  # no reload
    assert len(statements) == 3  # data_version, the 3 chunk rows, their actors


async def test_embedding_and_sqlite_run_in_worker_threads(tmp_path: Path) -> None:
    loop_thread = threading.get_ident()
    seen: set[int] = set()

    class Recording(HashEmbedder):
        def embed_documents(self, texts: Sequence[str]) -> Vectors:
            seen.add(threading.get_ident())
            return super().embed_documents(texts)

    with RagStore(tmp_path / "t.db", Recording(64)) as store:
        traced: set[int] = set()
        store._conn.set_trace_callback(lambda _sql: traced.add(threading.get_ident()))
        [chunk] = await store.add_text("Kiwis cannot fly.", ["bird"])
        await store.search("kiwis")
        await store.update_chunk(chunk, "Kiwis are flightless.")
        await store.by_actors(["bird"])
        await store.delete_chunks([chunk])
        store._conn.set_trace_callback(None)
    assert seen and traced and loop_thread not in seen | traced


def test_ingest_reports_each_embedded_slice_and_stops_when_told(store: RagStore) -> None:
    """`progress` hears (embedded, to embed) after every slice, unchanged documents cost
    nothing, and a progress that raises (Ctrl-C in `regions run`) stops the ingestion within a
    slice, writing nothing of the group in progress."""
    big = doc("big", *(f"passage {i} about zebras and their stripes" for i in range(100)))
    heard: list[tuple[int, int]] = []
    report = store.ingest([big, doc("small", "one")], progress=lambda *p: heard.append(p))
    total = report.chunks
    assert total > 2 * EMBED_SLICE
    assert heard[0] == (0, total) and heard[-1] == (total, total)
    steps = [b[0] - a[0] for a, b in itertools.pairwise(heard)]
    assert all(0 < step <= EMBED_SLICE for step in steps)
    heard.clear()
    assert store.ingest([big], progress=lambda *p: heard.append(p)).unchanged == 1
    assert heard == [(0, 0)]

    class Stop(Exception):
        pass

    def stop_after_one_slice(done: int, to_embed: int) -> None:
        if done >= EMBED_SLICE:
            raise Stop

    before = store.stats().chunks
    changed = doc("big", *(f"passage {i} about kiwis" for i in range(100)))
    with pytest.raises(Stop):
        store.ingest([changed], progress=stop_after_one_slice)
    assert store.stats().chunks == before  # the old version is still there, whole
