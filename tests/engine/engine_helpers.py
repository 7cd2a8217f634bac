"""Shared helpers for the engine tests: workflow builder, event recorder, fake store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from regions_cli.build import build_engine
from regions_cli.engine.events import Event, EventBus
from regions_cli.engine.executor import Engine
from regions_cli.engine.message import Message
from regions_cli.engine.regions import RegionContext, make_region
from regions_cli.llm.base import (
    Completion,
    CompletionModel,
    CompletionRequest,
    TokenCallback,
    Usage,
)
from regions_cli.model import RegionConfig, Workflow
from regions_cli.rag.base import Hit, KnowledgeStore
from regions_cli.workflow.convert import build_workflow


def workflow(
    regions: Mapping[str, Any],
    plan: Sequence[Mapping[str, Any]] = (),
    *,
    llms: Mapping[str, Any] | None = None,
    **extra: Any,
) -> Workflow:
    """A workflow from plain data; the default LLM is ``scripted`` (echo)."""
    data: dict[str, Any] = {
        "version": 1,
        "name": "test",
        "llms": llms if llms is not None else {"default": {"backend": "scripted"}},
        "regions": regions,
        "plan": list(plan),
        **extra,
    }
    if any(r.get("type") == "RAGRegion" for r in regions.values()) and "rags" not in data:
        data["rags"] = {"facts": {"path": "facts.db"}}
    return build_workflow(data)


def layer(**chains: Sequence[Any]) -> dict[str, Any]:
    return {"chains": {name: list(steps) for name, steps in chains.items()}}


class Recorder:
    """Subscribes to a bus and keeps every event."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[Event] = []
        bus.subscribe(self.events.append)

    def of(self, kind: str) -> list[Any]:
        return [e for e in self.events if e.kind == kind]

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


def engine_for(
    wf: Workflow,
    *,
    llms: Mapping[str, CompletionModel] | None = None,
    stores: Mapping[str, KnowledgeStore] | None = None,
) -> tuple[Engine, Recorder]:
    bus = EventBus()
    recorder = Recorder(bus)
    return build_engine(wf, bus, llms=llms, stores=stores), recorder


class FakeStore:
    """An in-memory `KnowledgeStore`: scores are given per query by a scoring function."""

    def __init__(self, chunks: Mapping[int, tuple[str, tuple[str, ...]]] | None = None) -> None:
        self.chunks: dict[int, tuple[str, tuple[str, ...]]] = dict(chunks or {})
        self.scores: dict[int, float] = {}  # chunk id -> score for every query
        self.fail: Exception | None = None
        self.calls: list[tuple[str, Any]] = []

    async def search(
        self,
        query: str,
        *,
        k: int | None = None,
        threshold: float = 0.0,
        actors: Sequence[str] | None = None,
    ) -> list[Hit]:
        self.calls.append(("search", (query, k, threshold)))
        if self.fail is not None:
            raise self.fail
        hits = [
            Hit(cid, self.chunks[cid][0], score, self.chunks[cid][1])
            for cid, score in self.scores.items()
            if cid in self.chunks and score >= threshold
        ]
        hits.sort(key=lambda h: -h.score)
        return hits[:k] if k else hits

    async def update_chunk(
        self, chunk_id: int, content: str, actors: Sequence[str] | None = None
    ) -> int:
        self.calls.append(("update_chunk", (chunk_id, content, tuple(actors or ()))))
        old_actors = self.chunks[chunk_id][1]
        self.chunks[chunk_id] = (content, tuple(actors) if actors is not None else old_actors)
        return chunk_id

    async def delete_chunks(self, chunk_ids: Sequence[int]) -> int:
        self.calls.append(("delete_chunks", tuple(chunk_ids)))
        return sum(self.chunks.pop(cid, None) is not None for cid in chunk_ids)

    async def add_text(
        self, content: str, actors: Sequence[str] = (), document: str | None = None
    ) -> list[int]:
        self.calls.append(("add_text", (content, tuple(actors), document)))
        cid = max(self.chunks, default=0) + 1
        self.chunks[cid] = (content, tuple(actors))
        return [cid]


class FakeModel:
    """A `CompletionModel` answering from a function of the request (or raising)."""

    def __init__(self, answer: Any = "fine") -> None:
        self.name = "fake"
        self.answer = answer
        self.requests: list[CompletionRequest] = []

    async def complete(
        self, request: CompletionRequest, on_token: TokenCallback | None = None
    ) -> Completion:
        self.requests.append(request)
        value = self.answer(request) if callable(self.answer) else self.answer
        if isinstance(value, BaseException):
            raise value
        if isinstance(value, Completion):  # e.g. one that asks for tool calls
            return value
        return Completion(str(value), Usage(10, 5))

    async def aclose(self) -> None:
        return None


def make(
    kind: str,
    name: str = "me",
    *,
    model: CompletionModel | None = None,
    store: KnowledgeStore | None = None,
    events: list[Event] | None = None,
    regions: Sequence[str] = (),
    **config: Any,
) -> Any:
    """A lone region of type `kind` (no engine), with a model or store and an event list."""
    sink = events if events is not None else []
    known = set(regions) | set(config.get("connections", {}))
    context = RegionContext(
        emit=sink.append,
        is_region=known.__contains__,
        llm=model,
        llm_name="fake",
        store=store,
    )
    return make_region(RegionConfig(name=name, type=kind, **config), context)  # type: ignore[arg-type]


def message(source: str, destination: str, role: str, content: str) -> Message:
    return Message(source, destination, role, content)
