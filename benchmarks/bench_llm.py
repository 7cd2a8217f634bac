"""LLM backend benchmarks.

1. Concurrency, against a loopback server (in its own process) that takes a fixed 200 ms per
   answer. (a) 64 calls at once through `OpenAIModel`; baseline: one call alone. (b) The
   issue's words: a layer of 64 chains through the engine (`build_engine`, an openai llm,
   one `Region.make_replies` call per chain); baseline: a layer of one chain. Both measured
   in the same run; target: within 1.2x of the baseline (not 64x).

The embedded model's figures are in ``bench_local.py``.
"""

from __future__ import annotations

import asyncio
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
from regions_cli.model import LLMConfig, Workflow  # noqa: E402
from regions_cli.workflow.convert import build_workflow  # noqa: E402

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


def main(quick: bool) -> list[Row]:
    return bench_concurrency(quick)


if __name__ == "__main__":
    from common import render

    print(render(main(quick="--quick" in sys.argv)))
