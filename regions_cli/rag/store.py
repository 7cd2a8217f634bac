"""`RagStore`: one sqlite file of chunks, actors and float32 embeddings, searched with numpy.

Layout (schema version 1)::

    meta(key, value)                        schema_version, app, embedder_model, embedder_dimensions
    documents(id, name UNIQUE, fingerprint) one row per ingested document (fingerprint: unchanged?)
    chunks(id, document_id, position, content, content_hash, created_at, updated_at)
    chunk_actors(chunk_id, actor)           many-to-many: equal text in two places stays two rows
    embeddings(chunk_id, model, dimensions, vector)   vector: float32 bytes, unit length

The file is in WAL mode, so readers (other processes too) never wait for a writer; every write is
one ``BEGIN IMMEDIATE`` transaction. Searches score a cached ``(n, d)`` matrix with one matrix
product and `numpy.argpartition`; the cache is dropped on this store's writes and reloaded when
``PRAGMA data_version`` shows another connection committed. The ``async`` methods (the
`KnowledgeStore` protocol) run the synchronous ones in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sqlite_utils import Database

from regions_cli.rag.base import Hit, RagError
from regions_cli.rag.chunking import chunk_text, validate_chunking
from regions_cli.rag.documents import Document
from regions_cli.rag.embedders import Embedder, Vectors, normalise

SCHEMA_VERSION = 1
APP_ID = "regions-rag"
#: Chunks embedded in one call during `RagStore.ingest`: between two calls the caller hears how
#: far it got (and may stop it), so a long ingestion stops within one slice of Ctrl-C.
EMBED_SLICE = 32

_SCHEMA_V1 = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE documents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        fingerprint TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL)""",
    """CREATE TABLE chunks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        document_id INTEGER REFERENCES documents(id) ON DELETE CASCADE,
        position INTEGER NOT NULL,
        content TEXT NOT NULL,
        content_hash TEXT NOT NULL,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL)""",
    "CREATE INDEX chunks_document ON chunks(document_id, position)",
    "CREATE INDEX chunks_content_hash ON chunks(content_hash)",
    """CREATE TABLE chunk_actors (
        chunk_id INTEGER NOT NULL REFERENCES chunks(id) ON DELETE CASCADE,
        actor TEXT NOT NULL,
        PRIMARY KEY (chunk_id, actor)) WITHOUT ROWID""",
    "CREATE INDEX chunk_actors_actor ON chunk_actors(actor)",
    """CREATE TABLE embeddings (
        chunk_id INTEGER PRIMARY KEY REFERENCES chunks(id) ON DELETE CASCADE,
        model TEXT NOT NULL,
        dimensions INTEGER NOT NULL,
        vector BLOB NOT NULL)""",
)

#: version -> the statements that bring a store from the version before it to this one.
MIGRATIONS: dict[int, tuple[str, ...]] = {1: _SCHEMA_V1}


@dataclass(frozen=True)
class IngestReport:
    """What `RagStore.ingest` did: documents new, replaced (changed) and unchanged (skipped)."""

    added: int = 0
    replaced: int = 0
    unchanged: int = 0
    chunks: int = 0


@dataclass(frozen=True)
class StoreStats:
    path: Path
    chunks: int
    documents: int
    actors: tuple[str, ...]
    embedder_model: str | None
    dimensions: int | None
    schema_version: int
    size_bytes: int


@dataclass
class _Matrix:
    """The cached search matrix: unit rows of `vectors`, `ids` ascending (so searchsorted works)."""

    ids: NDArray[np.int64]
    vectors: Vectors
    data_version: int


@dataclass
class _Prepared:
    """A document chunked and embedded, ready to be written in one transaction."""

    document: Document
    fingerprint: str
    chunks: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    vectors: Vectors | None = None


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


class RagStore:
    """A RAG store over one sqlite file; implements `regions_cli.rag.base.KnowledgeStore`.

    Opening checks the file: a new or empty file gets the schema; a store of an older schema is
    migrated; anything else (not sqlite, another program's database, a newer schema, a store
    built with a different embedder) raises `RagError` naming the file.
    """

    def __init__(
        self,
        path: Path,
        embedder: Embedder,
        *,
        chunk_size: int = 512,
        overlap: int = 50,
        max_results: int = 5,
        name: str | None = None,
    ) -> None:
        validate_chunking(chunk_size, overlap)
        self.path = Path(path)
        self.name = name or self.path.stem
        self.embedder = embedder
        self.chunk_size = chunk_size
        self.overlap = overlap
        self.max_results = max_results
        self._lock = threading.RLock()
        self._matrix: _Matrix | None = None
        self._conn = self._connect()
        self._db = Database(self._conn, execute_plugins=False, recursive_triggers=False)
        with self._guard():
            self._prepare_schema()
            self._check_embedder(embedder.model, embedder.dimensions)

    # --- opening -----------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise RagError(f"{self.path}: is a folder, not a RAG store file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise RagError(f"{self.path}: cannot open the RAG store: {exc}") from None
        return conn

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn sqlite's errors into one-line `RagError`s naming the file."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            message = str(exc)
            if "not a database" in message:
                message = "not a sqlite database (not a regions RAG store)"
            raise RagError(f"{self.path}: {message}") from None

    def _prepare_schema(self) -> None:
        tables = set(self._db.table_names())
        self._conn.execute("PRAGMA foreign_keys = ON")
        if not tables:
            self._db.enable_wal()
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate(0)
            return
        if "meta" not in tables or self._meta("app") != APP_ID:
            listed = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
            raise RagError(
                f"{self.path}: a sqlite database of another program (tables: {listed}), "
                "not a regions RAG store"
            )
        version = int(self._meta("schema_version") or 0)
        if version > SCHEMA_VERSION:
            raise RagError(
                f"{self.path}: RAG store schema {version} is newer than this regions "
                f"(schema {SCHEMA_VERSION}); upgrade regions-cli"
            )
        if self._db.journal_mode != "wal":
            self._db.enable_wal()
        self._conn.execute("PRAGMA synchronous = NORMAL")
        if version < SCHEMA_VERSION:
            self._migrate(version)

    def _migrate(self, current: int) -> None:
        with self._transaction():
            # Re-read under the write lock: another process may have migrated meanwhile.
            tables = set(self._db.table_names())
            if "meta" in tables:
                current = int(self._meta("schema_version") or 0)
            for version in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[version]:
                    self._conn.execute(statement)
                self._set_meta(schema_version=str(version), app=APP_ID)

    def _meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, **values: str) -> None:
        self._conn.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            list(values.items()),
        )

    def _check_embedder(self, model: str, dimensions: int | None) -> None:
        """Refuse an embedder other than the one the store's vectors came from."""
        stored_model = self._meta("embedder_model")
        stored_dims = self._meta("embedder_dimensions")
        if stored_model is None:
            return
        if stored_model == model and (dimensions is None or str(dimensions) == stored_dims):
            return
        count = self._conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        if count == 0:  # nothing to be incompatible with: the next write records the new one
            return
        theirs = f"{model!r}" + (f" ({dimensions} dimensions)" if dimensions else "")
        raise RagError(
            f"{self.path}: the store's {count} chunks were embedded with {stored_model!r} "
            f"({stored_dims} dimensions), not {theirs}; mixing embedders is refused: use the "
            "same embedder or a new store"
        )

    # --- transactions and the cache ----------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: take the write lock up front)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._matrix = None

    def _record_embedder(self, vectors: Vectors) -> None:
        """Inside a write: check the vectors fit the store, and record the embedder if new."""
        dims = int(vectors.shape[1]) if vectors.ndim == 2 else 0
        self._check_embedder(self.embedder.model, dims)
        self._set_meta(embedder_model=self.embedder.model, embedder_dimensions=str(dims))

    def _load_matrix(self) -> _Matrix:
        with self._lock:
            version = int(self._conn.execute("PRAGMA data_version").fetchone()[0])
            if self._matrix is not None and self._matrix.data_version == version:
                return self._matrix
            rows = self._conn.execute(
                "SELECT chunk_id, vector FROM embeddings ORDER BY chunk_id"
            ).fetchall()
            dims = int(self._meta("embedder_dimensions") or 0)
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            blob = b"".join(r[1] for r in rows)
            vectors = np.frombuffer(blob, dtype=np.float32).reshape(len(rows), dims)
            self._matrix = _Matrix(ids, vectors, version)
            return self._matrix

    # --- writing -----------------------------------------------------------------------------

    def _embed(self, texts: Sequence[str]) -> Vectors:
        vectors = normalise(self.embedder.embed_documents(texts))
        if vectors.shape[0] != len(texts):
            raise RagError(
                f"{self.path}: the embedder returned {vectors.shape[0]} vectors "
                f"for {len(texts)} texts"
            )
        return vectors

    def _insert_chunks(
        self,
        conn: sqlite3.Connection,
        document_id: int | None,
        first_position: int,
        chunks: Sequence[tuple[str, tuple[str, ...]]],
        vectors: Vectors,
    ) -> list[int]:
        now = time.time()
        ids = []
        for offset, (content, _actors) in enumerate(chunks):
            cursor = conn.execute(
                "INSERT INTO chunks(document_id, position, content, content_hash, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (document_id, first_position + offset, content, _sha(content), now, now),
            )
            ids.append(int(cursor.lastrowid or 0))
        conn.executemany(
            "INSERT OR IGNORE INTO chunk_actors(chunk_id, actor) VALUES (?, ?)",
            [
                (cid, actor)
                for cid, (_c, actors) in zip(ids, chunks, strict=True)
                for actor in actors
            ],
        )
        model, dims = self.embedder.model, int(vectors.shape[1])
        conn.executemany(
            "INSERT INTO embeddings(chunk_id, model, dimensions, vector) VALUES (?, ?, ?, ?)",
            [(cid, model, dims, row.tobytes()) for cid, row in zip(ids, vectors, strict=True)],
        )
        return ids

    def _chunk_passages(self, document: Document) -> list[tuple[str, tuple[str, ...]]]:
        return [
            (chunk, passage.actors)
            for passage in document.passages
            for chunk in chunk_text(passage.content, self.chunk_size, self.overlap)
        ]

    def ingest(
        self,
        documents: Iterable[Document],
        *,
        force: bool = False,
        progress: Callable[[int, int], None] | None = None,
        batch_chunks: int = 512,
    ) -> IngestReport:
        """Store `documents`, replacing any earlier version of each (by name).

        A document whose content, actors and chunking are unchanged is skipped (so ingestion is
        idempotent) unless `force`. Chunks of several documents are embedded together, up to
        `batch_chunks` at a time; each group is written in one transaction. `progress` is called
        with (chunks embedded, chunks to embed) after every `EMBED_SLICE` chunks, so a caller
        can show how far it got, or stop a long ingestion within a slice by raising (what was
        embedded of the group in progress is then not written). Two documents of one name are
        refused before anything is written: the second would silently replace the first.
        """
        documents = list(documents)
        names = Counter(document.name for document in documents)
        if repeated := [name for name, count in names.items() if count > 1]:
            raise RagError(
                f"{self.path}: the document {repeated[0]!r} is given twice in one ingest; "
                "names must be unique (give `documents:` entries distinct ids)"
            )
        unchanged = 0
        changed: list[_Prepared] = []
        for document in documents:
            fingerprint = document.fingerprint(self.chunk_size, self.overlap, self.embedder.model)
            if not force and self._fingerprint(document.name) == fingerprint:
                unchanged += 1
            else:
                changed.append(_Prepared(document, fingerprint, self._chunk_passages(document)))
        to_embed = sum(len(item.chunks) for item in changed)
        embedded = added = replaced = 0
        if progress is not None:
            progress(0, to_embed)

        def embed(texts: list[str]) -> Vectors:
            nonlocal embedded
            parts = []
            for start in range(0, len(texts), EMBED_SLICE):
                parts.append(self._embed(texts[start : start + EMBED_SLICE]))
                embedded += len(parts[-1])
                if progress is not None:
                    progress(embedded, to_embed)
            return np.concatenate(parts)

        def flush(group: list[_Prepared]) -> None:
            nonlocal added, replaced
            texts = [content for item in group for content, _ in item.chunks]
            vectors = embed(texts) if texts else None
            with self._guard(), self._transaction() as conn:
                if vectors is not None:
                    self._record_embedder(vectors)
                start = 0
                for item in group:
                    existed = self._replace_document(conn, item, vectors, start)
                    start += len(item.chunks)
                    added, replaced = added + (not existed), replaced + existed

        group: list[_Prepared] = []
        pending = 0
        for item in changed:
            group.append(item)
            pending += len(item.chunks)
            if pending >= batch_chunks:
                flush(group)
                group, pending = [], 0
        if group:
            flush(group)
        return IngestReport(added, replaced, unchanged, to_embed)

    def _fingerprint(self, name: str) -> str | None:
        with self._lock, self._guard():
            row = self._conn.execute(
                "SELECT fingerprint FROM documents WHERE name = ?", (name,)
            ).fetchone()
        return None if row is None else row[0]

    def _replace_document(
        self, conn: sqlite3.Connection, item: _Prepared, vectors: Vectors | None, start: int
    ) -> bool:
        now = time.time()
        row = conn.execute(
            "SELECT id FROM documents WHERE name = ?", (item.document.name,)
        ).fetchone()
        if row is None:
            cursor = conn.execute(
                "INSERT INTO documents(name, fingerprint, created_at, updated_at) "
                "VALUES (?, ?, ?, ?)",
                (item.document.name, item.fingerprint, now, now),
            )
            document_id = int(cursor.lastrowid or 0)
        else:
            document_id = int(row[0])
            conn.execute("DELETE FROM chunks WHERE document_id = ?", (document_id,))
            conn.execute(
                "UPDATE documents SET fingerprint = ?, updated_at = ? WHERE id = ?",
                (item.fingerprint, now, document_id),
            )
        if item.chunks and vectors is not None:
            part = vectors[start : start + len(item.chunks)]
            self._insert_chunks(conn, document_id, 0, item.chunks, part)
        return row is not None

    def add_text_sync(
        self, content: str, actors: Sequence[str] = (), document: str | None = None
    ) -> list[int]:
        """Chunk, embed and store `content`; appended to `document` if named. Returns chunk ids."""
        chunks = [(c, tuple(actors)) for c in chunk_text(content, self.chunk_size, self.overlap)]
        if not chunks:
            return []
        vectors = self._embed([c for c, _ in chunks])
        with self._guard(), self._transaction() as conn:
            self._record_embedder(vectors)
            document_id = None
            position = 0
            if document is not None:
                now = time.time()
                conn.execute(
                    "INSERT INTO documents(name, fingerprint, created_at, updated_at) "
                    "VALUES (?, NULL, ?, ?) ON CONFLICT(name) DO UPDATE SET updated_at = ?",
                    (document, now, now, now),
                )
                document_id, position = conn.execute(
                    "SELECT d.id, COALESCE(MAX(c.position) + 1, 0) FROM documents d "
                    "LEFT JOIN chunks c ON c.document_id = d.id WHERE d.name = ?",
                    (document,),
                ).fetchone()
            return self._insert_chunks(conn, document_id, position, chunks, vectors)

    def update_chunk_sync(
        self, chunk_id: int, content: str, actors: Sequence[str] | None = None
    ) -> int:
        """Replace a chunk's text and vector in place (same id, document and position).

        `actors` replaces the chunk's actors when given; ``None`` keeps them. Raises `RagError`
        if there is no such chunk.
        """
        vectors = self._embed([content])
        with self._guard(), self._transaction() as conn:
            self._record_embedder(vectors)
            cursor = conn.execute(
                "UPDATE chunks SET content = ?, content_hash = ?, updated_at = ? WHERE id = ?",
                (content, _sha(content), time.time(), chunk_id),
            )
            if cursor.rowcount == 0:
                raise RagError(f"{self.path}: no chunk with id {chunk_id}")
            conn.execute(
                "UPDATE embeddings SET model = ?, dimensions = ?, vector = ? WHERE chunk_id = ?",
                (self.embedder.model, int(vectors.shape[1]), vectors[0].tobytes(), chunk_id),
            )
            if actors is not None:
                conn.execute("DELETE FROM chunk_actors WHERE chunk_id = ?", (chunk_id,))
                conn.executemany(
                    "INSERT OR IGNORE INTO chunk_actors(chunk_id, actor) VALUES (?, ?)",
                    [(chunk_id, actor) for actor in actors],
                )
        return chunk_id

    def delete_chunks_sync(self, chunk_ids: Sequence[int]) -> int:
        """Delete chunks (their actors and vectors go with them); returns how many existed."""
        ids = sorted({int(i) for i in chunk_ids})
        if not ids:
            return 0
        deleted = 0
        with self._guard(), self._transaction() as conn:
            for start in range(0, len(ids), 500):  # stay under sqlite's bound-variable limit
                part = ids[start : start + 500]
                cursor = conn.execute(
                    f"DELETE FROM chunks WHERE id IN ({_placeholders(len(part))})", part
                )
                deleted += cursor.rowcount
        return deleted

    def delete_document_sync(self, name: str) -> int:
        """Delete a document and all its chunks; returns the number of chunks deleted."""
        with self._guard(), self._transaction() as conn:
            row = conn.execute("SELECT id FROM documents WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise RagError(f"{self.path}: no document named {name!r}")
            count = conn.execute(
                "SELECT COUNT(*) FROM chunks WHERE document_id = ?", row
            ).fetchone()[0]
            conn.execute("DELETE FROM documents WHERE id = ?", row)
        return int(count)

    # --- reading -----------------------------------------------------------------------------

    def search_vector(
        self,
        query: Vectors,
        *,
        k: int | None = None,
        threshold: float = 0.0,
        actors: Sequence[str] | None = None,
    ) -> list[Hit]:
        """Top-`k` chunks by cosine similarity to the unit vector `query`, best first."""
        k = self.max_results if k is None else k
        with self._guard():
            matrix = self._load_matrix()
            if k <= 0 or matrix.ids.size == 0:
                return []
            if matrix.vectors.shape[1] != query.shape[0]:
                raise RagError(
                    f"{self.path}: the query vector has {query.shape[0]} dimensions, the store "
                    f"{matrix.vectors.shape[1]}"
                )
            if actors is None:
                ids, scores = matrix.ids, matrix.vectors @ query
            else:
                rows = self._rows_with_actors(matrix, actors)
                ids, scores = matrix.ids[rows], matrix.vectors[rows] @ query
            # argpartition finds the k best in O(n); only those k are then sorted.
            top = np.argpartition(-scores, k - 1)[:k] if scores.size > k else np.arange(scores.size)
            top = top[np.argsort(-scores[top], kind="stable")]
            top = top[scores[top] >= threshold]
            return self._hits(ids[top].tolist(), scores[top].tolist())

    def _rows_with_actors(self, matrix: _Matrix, actors: Sequence[str]) -> NDArray[np.intp]:
        wanted = sorted(set(actors))
        if not wanted:
            return np.zeros(0, dtype=np.intp)
        with self._lock:
            found = self._conn.execute(
                "SELECT DISTINCT chunk_id FROM chunk_actors "
                f"WHERE actor IN ({_placeholders(len(wanted))})",
                wanted,
            ).fetchall()
        chunk_ids = np.fromiter((r[0] for r in found), dtype=np.int64, count=len(found))
        # matrix.ids is sorted: binary search instead of an O(n) membership test per query.
        rows = np.minimum(np.searchsorted(matrix.ids, chunk_ids), matrix.ids.size - 1)
        return np.sort(rows[matrix.ids[rows] == chunk_ids])

    def _hits(self, chunk_ids: list[int], scores: list[float]) -> list[Hit]:
        """Fetch the rows of `chunk_ids` (only these) and pair them with `scores`, in order."""
        if not chunk_ids:
            return []
        marks = _placeholders(len(chunk_ids))
        with self._lock:
            rows = self._conn.execute(
                "SELECT c.id, c.content, d.name FROM chunks c LEFT JOIN documents d "
                f"ON d.id = c.document_id WHERE c.id IN ({marks})",
                chunk_ids,
            ).fetchall()
            actor_rows = self._conn.execute(
                f"SELECT chunk_id, actor FROM chunk_actors WHERE chunk_id IN ({marks})",
                chunk_ids,
            ).fetchall()
        by_id = {r[0]: r for r in rows}
        actors: dict[int, list[str]] = {}
        for chunk_id, actor in actor_rows:
            actors.setdefault(chunk_id, []).append(actor)
        return [
            Hit(cid, by_id[cid][1], float(score), tuple(actors.get(cid, ())), by_id[cid][2])
            for cid, score in zip(chunk_ids, scores, strict=True)
            if cid in by_id  # deleted by another process since the matrix was loaded
        ]

    def search_sync(
        self,
        query: str,
        *,
        k: int | None = None,
        threshold: float = 0.0,
        actors: Sequence[str] | None = None,
    ) -> list[Hit]:
        """Top-`k` chunks most similar to `query` with score >= `threshold` ([] if none)."""
        vector = normalise(self.embedder.embed_query(query))
        return self.search_vector(vector, k=k, threshold=threshold, actors=actors)

    def by_actors_sync(self, actors: Sequence[str], *, limit: int | None = None) -> list[Hit]:
        """Chunks sharing actors with `actors`, scored by Jaccard overlap of the actor sets."""
        wanted = sorted(set(actors))
        limit = self.max_results if limit is None else limit
        if not wanted or limit <= 0:
            return []
        with self._lock, self._guard():
            rows = self._conn.execute(
                f"""WITH shared AS (
                        SELECT chunk_id, COUNT(*) AS n FROM chunk_actors
                        WHERE actor IN ({_placeholders(len(wanted))}) GROUP BY chunk_id)
                    SELECT s.chunk_id, CAST(s.n AS REAL) / (? + (SELECT COUNT(*) FROM chunk_actors a
                        WHERE a.chunk_id = s.chunk_id) - s.n) AS score
                    FROM shared s ORDER BY score DESC, s.chunk_id LIMIT ?""",
                [*wanted, len(wanted), limit],
            ).fetchall()
            return self._hits([r[0] for r in rows], [r[1] for r in rows])

    def get_chunk(self, chunk_id: int) -> Hit | None:
        """One chunk by id (score 1.0), or ``None``."""
        with self._guard():
            hits = self._hits([chunk_id], [1.0])
        return hits[0] if hits else None

    def documents(self) -> list[tuple[str, int]]:
        """Every document's name and chunk count, by name."""
        with self._lock, self._guard():
            rows = self._conn.execute(
                "SELECT d.name, COUNT(c.id) FROM documents d LEFT JOIN chunks c "
                "ON c.document_id = d.id GROUP BY d.id ORDER BY d.name"
            ).fetchall()
        return [(str(name), int(n)) for name, n in rows]

    def stats(self) -> StoreStats:
        """Counts and the embedder the vectors came from."""
        with self._lock, self._guard():

            def count(sql: str) -> int:
                return int(self._conn.execute(sql).fetchone()[0])

            actors = tuple(
                r[0]
                for r in self._conn.execute(
                    "SELECT DISTINCT actor FROM chunk_actors ORDER BY actor"
                )
            )
            dims = self._meta("embedder_dimensions")
            return StoreStats(
                path=self.path,
                chunks=count("SELECT COUNT(*) FROM chunks"),
                documents=count("SELECT COUNT(*) FROM documents"),
                actors=actors,
                embedder_model=self._meta("embedder_model"),
                dimensions=int(dims) if dims else None,
                schema_version=int(self._meta("schema_version") or 0),
                size_bytes=sum(
                    p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists()
                ),
            )

    # --- the KnowledgeStore protocol (async: sqlite and model calls off the event loop) -------

    async def search(
        self,
        query: str,
        *,
        k: int | None = None,
        threshold: float = 0.0,
        actors: Sequence[str] | None = None,
    ) -> list[Hit]:
        return await asyncio.to_thread(
            self.search_sync, query, k=k, threshold=threshold, actors=actors
        )

    async def update_chunk(
        self, chunk_id: int, content: str, actors: Sequence[str] | None = None
    ) -> int:
        return await asyncio.to_thread(self.update_chunk_sync, chunk_id, content, actors)

    async def delete_chunks(self, chunk_ids: Sequence[int]) -> int:
        return await asyncio.to_thread(self.delete_chunks_sync, chunk_ids)

    async def add_text(
        self, content: str, actors: Sequence[str] = (), document: str | None = None
    ) -> list[int]:
        return await asyncio.to_thread(self.add_text_sync, content, actors, document)

    async def by_actors(self, actors: Sequence[str], *, limit: int | None = None) -> list[Hit]:
        return await asyncio.to_thread(self.by_actors_sync, actors, limit=limit)

    # --- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the sqlite connection (the store is unusable afterwards)."""
        with self._lock:
            self._matrix = None
            self._conn.close()

    async def aclose(self) -> None:
        """`close` for async owners (the engine closes its stores this way at the end of a run)."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> RagStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RagStore({str(self.path)!r}, embedder={self.embedder.model!r})"
