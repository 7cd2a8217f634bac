"""Readers keep working, and see only whole transactions, while another process writes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from regions_cli.rag.embedders import HashEmbedder
from regions_cli.rag.store import RagStore

DOCS, CHUNKS_PER_DOC = 60, 5

WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from regions_cli.rag.documents import Document, Passage
    from regions_cli.rag.embedders import HashEmbedder
    from regions_cli.rag.store import RagStore

    docs, per_doc = int(sys.argv[2]), int(sys.argv[3])
    with RagStore(Path(sys.argv[1]), HashEmbedder(64), chunk_size=20, overlap=0) as store:
        for d in range(docs):
            passages = tuple(Passage(f"doc {d} chunk {c} zebra", ("w",)) for c in range(per_doc))
            # batch_chunks=per_doc: one transaction per document
            store.ingest([Document(f"doc-{d}", passages)], batch_chunks=per_doc)
    """
)


def test_readers_during_a_write_in_another_process(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    RagStore(path, HashEmbedder(64)).close()  # create the schema first
    shared = RagStore(path, HashEmbedder(64))  # one instance used by two threads...
    own = [RagStore(path, HashEmbedder(64)) for _ in range(2)]  # ...and two with their own
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(DOCS), str(CHUNKS_PER_DOC)],
        stderr=subprocess.PIPE,
        text=True,
    )
    done = threading.Event()

    def watch() -> None:
        writer.wait()
        done.set()

    threading.Thread(target=watch, daemon=True).start()
    seen: list[list[int]] = [[] for _ in range(4)]
    errors: list[BaseException] = []

    def read(store: RagStore, out: list[int]) -> None:
        try:
            for _ in range(20_000):  # bounded; normally ends when the writer does
                out.append(len(store.search_sync("zebra chunk", k=10_000)))
                if done.is_set():
                    break
        except BaseException as exc:  # reported below with the thread's findings
            errors.append(exc)

    readers = [
        threading.Thread(target=read, args=(store, seen[i]))
        for i, store in enumerate([shared, shared, *own])
    ]
    for thread in readers:
        thread.start()
    for thread in readers:
        thread.join(timeout=120)
    _, stderr = writer.communicate(timeout=120)
    assert writer.returncode == 0, stderr
    assert not errors, errors
    for counts in seen:
        assert counts, "a reader never ran"
        assert all(n % CHUNKS_PER_DOC == 0 for n in counts), counts  # whole transactions only
        assert counts == sorted(counts)  # never goes back
    assert any(0 < n < DOCS * CHUNKS_PER_DOC for counts in seen for n in counts)  # overlapped
    final = shared.search_sync("zebra chunk", k=10_000)
    assert len(final) == DOCS * CHUNKS_PER_DOC
    for store in [shared, *own]:
        store.close()


def test_threads_writing_through_one_store_lose_nothing(tmp_path: Path) -> None:
    with RagStore(tmp_path / "w.db", HashEmbedder(64)) as store:

        def write(t: int) -> None:
            for i in range(25):
                store.add_text_sync(f"thread {t} note {i}", [f"t{t}"])

        threads = [threading.Thread(target=write, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert store.stats().chunks == 100
        assert all(len(store.by_actors_sync([f"t{t}"], limit=100)) == 25 for t in range(4))
