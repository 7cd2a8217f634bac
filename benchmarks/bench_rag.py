"""RAG store figures: query latency against bare numpy, ingestion rate, local embedder overhead.

* query: `RagStore.search_sync` (embed the query, score every chunk, fetch the top k rows)
  over N chunks x 384 dimensions, against the bare numpy work on the same matrix in the same
  run (``X @ q``, `argpartition`, sort the k best). Target: within 1.5x.
* ingest: chunk + hash-embed + write N chunks into a fresh store. Target: >= 5,000 chunks/s.
* local: the local model embedding chunks through `RagStore.ingest` against calling the model
  directly on the same texts, in paired rounds (median of the pairs' ratios). Target: >= 90%
  of the direct throughput.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Row, best_of

from regions_cli.rag.chunking import chunk_text
from regions_cli.rag.documents import Document, Passage
from regions_cli.rag.embedders import (
    HashEmbedder,
    LocalEmbedder,
    local_embedder_available,
)
from regions_cli.rag.store import RagStore

DIMS = 384
K = 5


def abba(first: Callable[[], object], second: Callable[[], object]) -> tuple[float, float]:
    """Seconds taken by `first` and by `second`, each called twice in the order first, second,
    second, first: a load spike or a drift on a shared machine then hits both sides alike."""
    a = best_of(1, first)
    b = best_of(1, second) + best_of(1, second)
    return a + best_of(1, first), b


def synthetic_documents(chunks: int, per_document: int = 100, seed: int = 0) -> list[Document]:
    """`chunks` passages of ~400 characters (one chunk each), `per_document` to a document."""
    rng = np.random.default_rng(seed)
    vocabulary = np.array([f"w{i}" for i in range(5000)])
    words = rng.choice(vocabulary, size=(chunks, 60))
    actors = [f"actor{i}" for i in range(20)]
    passages = [
        Passage(" ".join(row) + ".", (actors[i % 20],)) for i, row in enumerate(words.tolist())
    ]
    return [
        Document(f"doc-{start // per_document}", tuple(passages[start : start + per_document]))
        for start in range(0, chunks, per_document)
    ]


def bench_ingest_and_query(folder: Path, chunks: int, repeats: int) -> list[Row]:
    documents = synthetic_documents(chunks)
    with RagStore(folder / "bench.db", HashEmbedder(DIMS), chunk_size=512, overlap=50) as store:
        start = time.perf_counter()
        report = store.ingest(documents, batch_chunks=4096)
        rate = report.chunks / (time.perf_counter() - start)
        assert report.chunks == chunks

        query = "w17 w230 w4001 w999 w3"
        store.search_sync(query, k=K)  # load the matrix once, as a running workflow would
        matrix = store._load_matrix().vectors  # the very matrix the store searches
        q = store.embedder.embed_query(query)

        def bare() -> None:
            scores = matrix @ q
            top = np.argpartition(-scores, K - 1)[:K]
            top[np.argsort(-scores[top])]

        # Paired calls, the median of the pairs' ratios: on a shared 2-core machine one call
        # may get both cores and the next none; a pair compares like with like.
        bare_times: list[float] = []
        ratios: list[float] = []
        for _ in range(repeats):
            bare_time, ours_time = abba(bare, lambda: store.search_sync(query, k=K))
            bare_times.append(bare_time / 2)
            ratios.append(ours_time / bare_time)
        baseline = float(np.median(bare_times))
        ours = baseline * float(np.median(ratios))
    return [
        Row(
            f"rag query, {chunks:,} chunks x {DIMS} (k={K}, incl. embedding + row fetch)",
            ours * 1000,
            "ms",
            baseline=baseline * 1000,
            target=1.5,
            note=f"median of {repeats} paired ratios; baseline: bare X @ q + argpartition",
        ),
        Row(
            f"rag ingest, hash embedder ({chunks:,} chunks)",
            rate,
            "chunks/s",
            target=5000,
            higher_is_better=True,
        ),
    ]


class _Instant:
    """An embedder that costs nothing: what is left of an ingest is the store's own work."""

    model = "instant"
    dimensions = DIMS

    def embed_documents(self, texts: Sequence[str]) -> NDArray[np.float32]:
        vectors = np.zeros((len(texts), DIMS), dtype=np.float32)
        vectors[:, 0] = 1.0
        return vectors

    def embed_query(self, text: str) -> NDArray[np.float32]:
        return self.embed_documents([text]).reshape(-1)


def bench_store_overhead(folder: Path, documents: list[Document]) -> Row:
    """Chunking, fingerprints and sqlite writes per chunk, with no model time at all."""
    with RagStore(folder / "instant.db", _Instant(), chunk_size=512, overlap=50) as store:
        seconds = best_of(3, partial(store.ingest, documents, force=True))
    return Row(
        f"rag ingest without a model ({len(documents)} one-chunk documents)",
        seconds / len(documents) * 1e6,
        "us/chunk",
        note="the store's share of a local-embedder ingest",
    )


def bench_local(folder: Path, chunks: int, passes: int) -> list[Row]:
    if not local_embedder_available():
        return [Row("rag local embedder (skipped: `local` extra missing)", 0.0, "chunks/s")]
    rng = np.random.default_rng(1)
    sentence = "the zebra kiwi army crossed river at dawn while birds watched quietly from tall"
    words = np.array([*sentence.split(" "), "ferns", "and", "mustangs", "waited", "near", "hills"])
    documents = [
        Document(f"d{i}", (Passage(" ".join(rng.choice(words, size=40)) + "."),))
        for i in range(chunks)
    ]
    texts = [c for d in documents for c in chunk_text(d.passages[0].content, 512, 50)]
    embedder = LocalEmbedder()
    embedder.embed_documents(texts[:8])  # load the model outside the timings

    # Paired rounds: each embeds the same few texts directly and through the store (`abba`).
    # The ratio is the median of the pairs' ratios, which a few disturbed pairs cannot move
    # (a sum or a best-of lets one spike decide).
    # (force=True: re-ingesting re-embeds instead of skipping unchanged documents.)
    per_round = 4
    ratios: list[float] = []  # store throughput / direct throughput, one per pair
    direct_rates: list[float] = []
    with RagStore(folder / "local.db", embedder, chunk_size=512, overlap=50) as store:
        for _ in range(passes):
            for start in range(0, len(documents), per_round):
                batch, part = texts[start : start + per_round], documents[start : start + per_round]
                direct, stored = abba(
                    partial(embedder.embed_documents, batch),
                    partial(store.ingest, part, force=True),
                )
                ratios.append(direct / stored)
                direct_rates.append(2 * len(batch) / direct)
    baseline = float(np.median(direct_rates))
    return [
        bench_store_overhead(folder, documents),
        Row(
            f"rag local embedder through the store ({len(texts)} chunks)",
            baseline * float(np.median(ratios)),
            "chunks/s",
            baseline=baseline,
            target=0.9,
            higher_is_better=True,
            note=f"median of {len(ratios)} paired ratios; baseline: the model called directly",
        ),
    ]


def main(quick: bool) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="bench-rag-") as tmp:
        folder = Path(tmp)
        rows = bench_ingest_and_query(folder, 10_000 if quick else 100_000, repeats=60)
        rows += bench_local(folder, 64 if quick else 320, passes=2)
    return rows


if __name__ == "__main__":
    from common import render

    print(render(main(quick="--quick" in sys.argv)))
