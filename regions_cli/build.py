"""Turn a validated `Workflow` into a ready `Engine`: models, stores, regions, postmaster.

Backends and stores are imported lazily (a scripted workflow never imports httpx or llama.cpp).
Models load on their first call, so building them is cheap. Opening a RAG store is not: it
ingests the store's new or changed ``documents:``, which with a local embedder can take
minutes the first time. `build_engine_async` (what ``regions run`` uses) therefore opens the
stores in a worker thread, so the event loop keeps drawing the view and answers Ctrl-C.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from regions_cli.engine.budget import BudgetTracker
from regions_cli.engine.events import EventBus
from regions_cli.engine.executor import Engine
from regions_cli.engine.postmaster import Postmaster
from regions_cli.engine.prompts import PromptTemplates, TemplateError
from regions_cli.engine.regions import RegionContext, make_region
from regions_cli.engine.regions.base import BaseRegion
from regions_cli.engine.regions.workflow import SubWorkflowError
from regions_cli.engine.transport import Transport
from regions_cli.llm.base import CompletionModel, Preloadable
from regions_cli.model import LLM_REGION_TYPES, Workflow
from regions_cli.rag.base import KnowledgeStore, RagError

if TYPE_CHECKING:
    from regions_cli.llm.factory import LLMOptions


class BuildError(ValueError):
    """The workflow cannot be turned into an engine; the message says where and why."""


def build_engine(
    workflow: Workflow,
    bus: EventBus,
    llm_options: LLMOptions | None = None,
    *,
    llms: Mapping[str, CompletionModel] | None = None,
    stores: Mapping[str, KnowledgeStore] | None = None,
    transport: Transport | None = None,
) -> Engine:
    """Build the engine for `workflow`, reporting to `bus`.

    `llms` and `stores` (by ``llms:``/``rags:`` name) replace what the workflow would build:
    for tests and embedding programs (the caller closes them). Stores not given are opened
    here, on the calling thread: from async code use `build_engine_async`. Raises
    `BuildError` with a one-line message.
    """
    return _build(workflow, bus, llm_options, llms, stores, transport, closers=[])


async def build_engine_async(
    workflow: Workflow,
    bus: EventBus,
    llm_options: LLMOptions | None = None,
    *,
    transport: Transport | None = None,
    progress: StoreProgress | None = None,
) -> Engine:
    """`build_engine` for code running on an event loop: the RAG stores are opened (and their
    documents ingested) in a worker thread, and cancelling this coroutine stops the ingestion
    within one embedding slice (`regions_cli.rag.store.EMBED_SLICE` chunks); models that load
    slowly start loading. `progress` hears how far each store's ingestion got. The engine
    closes the stores and models in `Engine.aclose`."""
    return await _build_async(workflow, bus, llm_options, transport, progress, enclosing=())


async def _build_async(
    workflow: Workflow,
    bus: EventBus,
    llm_options: LLMOptions | None,
    transport: Transport | None,
    progress: StoreProgress | None,
    enclosing: tuple[Path, ...],
    llms: Mapping[str, CompletionModel] | None = None,
) -> Engine:
    """`build_engine_async`, for a workflow run inside the `enclosing` ones (their files),
    using the given `llms` (closed by their owner) where it names them."""
    stores = await open_stores(workflow, progress)
    closers = [c for c in (getattr(s, "aclose", None) for s in stores.values()) if c is not None]
    made: dict[str, CompletionModel] = {}
    try:
        engine = _build(
            workflow,
            bus,
            llm_options,
            llms,
            stores,
            transport,
            closers=closers,
            made=made,
            enclosing=enclosing,
        )
        for model in made.values():  # the embedded model loads while the run gets ready
            if isinstance(model, Preloadable):
                await model.preload()
        return engine
    except BaseException:
        for close in closers:
            await close()
        raise


@dataclass(frozen=True)
class _SubWorkflows:
    """How the WorkflowRegions of a built workflow load and build the workflows they run
    (see `regions_cli.engine.regions.workflow`): inside `lineage`, with the same LLM options,
    and with the enclosing run's `models` for the ``llms:`` names both workflows declare."""

    lineage: tuple[Path, ...]
    llm_options: LLMOptions | None
    models: Mapping[str, CompletionModel]

    def load(self, path: Path) -> Workflow:
        from regions_cli.workflow.api import WorkflowInvalid, load

        loaded = load(path)
        if loaded.workflow is None:
            raise SubWorkflowError(f"sub-workflow {WorkflowInvalid(loaded.errors)}")
        outside = loaded.outside_paths_problem()
        if outside is not None:
            raise SubWorkflowError(f"sub-workflow {outside}")
        return loaded.workflow

    async def build(self, workflow: Workflow, bus: EventBus) -> Engine:
        from regions_cli.llm.factory import LLMOptions

        # Its own llms entries: relative paths resolve against its own folder.
        options = replace(self.llm_options or LLMOptions(), base_dir=workflow.base_dir)
        shared = {name: m for name, m in self.models.items() if name in workflow.llms}
        return await _build_async(
            workflow, bus, options, None, None, enclosing=self.lineage, llms=shared
        )


#: Called with (store name, chunks embedded, chunks to embed) while a store ingests.
StoreProgress = Callable[[str, int, int], None]


async def open_stores(
    workflow: Workflow, progress: StoreProgress | None = None
) -> dict[str, KnowledgeStore]:
    """Open every store a RAGRegion of `workflow` uses, one after another in a worker thread.

    Stores that `build_engine` would reject (no ``rag``, an unknown name) are left for it to
    report. On an error or a cancellation the stores already opened are closed; a cancellation
    stops the ingestion in progress at its next embedding slice.
    """
    names = dict.fromkeys(
        config.rag
        for config in workflow.regions.values()
        if config.type == "RAGRegion" and config.rag and config.rag in workflow.rags
    )
    opened: dict[str, KnowledgeStore] = {}
    cancelled = threading.Event()  # read by the worker between two ingested batches
    lock = threading.Lock()  # a store is either handed over in `opened` or closed by the worker

    def work(name: str) -> None:
        def report(done: int, total: int) -> None:  # in the worker, after each slice
            if cancelled.is_set():
                raise _IngestCancelled
            if progress is not None:
                progress(name, done, total)

        store = _open_store(workflow, name, progress=report)
        with lock:
            if not cancelled.is_set():
                opened[name] = store
                return
        _close_now(store)  # nobody is waiting for it any more

    try:
        for name in names:
            await asyncio.to_thread(work, name)
    except BaseException:
        with lock:
            cancelled.set()
        for store in opened.values():
            _close_now(store)
        raise
    return opened


class _IngestCancelled(Exception):
    """Raised in the ingesting thread once `open_stores` has been cancelled."""


def _close_now(store: KnowledgeStore) -> None:
    close = getattr(store, "close", None)
    if close is not None:
        close()


def _open_store(
    workflow: Workflow,
    name: str,
    progress: Callable[[int, int], None] | None = None,
) -> KnowledgeStore:
    """Open ``rags.<name>`` (ingesting its new or changed documents); `BuildError` if it fails."""
    from regions_cli.rag.factory import open_store

    try:
        return open_store(workflow, name, progress=progress)
    except (ValueError, OSError, ImportError, RagError) as exc:
        raise BuildError(_located(f"rags.{name}", exc)) from None


def _build(
    workflow: Workflow,
    bus: EventBus,
    llm_options: LLMOptions | None,
    llms: Mapping[str, CompletionModel] | None,
    stores: Mapping[str, KnowledgeStore] | None,
    transport: Transport | None,
    closers: list[Callable[[], Awaitable[None]]],
    made: dict[str, CompletionModel] | None = None,
    enclosing: tuple[Path, ...] = (),
) -> Engine:
    """`build_engine`, with `closers` (of what the caller opened) for the engine to run; the
    models it makes are also put in `made`. `enclosing` are the files of the workflows that
    run this one as a sub-workflow (outermost first)."""
    from regions_cli.llm.factory import make_llm

    models: dict[str, CompletionModel] = dict(llms or {})
    knowledge: dict[str, KnowledgeStore] = dict(stores or {})
    budget = BudgetTracker(workflow.budget)
    names = frozenset(workflow.regions)
    lineage = (*enclosing, workflow.source) if workflow.source is not None else enclosing
    # A sub-workflow uses the endpoints this workflow declares under the same names (so
    # `--llm` overrides, and one embedded model, reach it): they are made now, while the
    # engine can still take their closers, unless only implied.
    inherited: dict[str, CompletionModel] = {}
    subworkflows = _SubWorkflows(lineage, llm_options, inherited)

    def model(name: str, region: str) -> CompletionModel:
        if name not in models:
            config = workflow.llms.get(name)
            if config is None:
                raise BuildError(f"regions.{region}.llm: no llms entry named {name!r}")
            try:
                models[name] = make_llm(config, llm_options)
            except (ValueError, OSError, ImportError, KeyError) as exc:
                raise BuildError(_located(f"llms.{name}", exc)) from None
            closers.append(models[name].aclose)
            if made is not None:
                made[name] = models[name]
        return models[name]

    def store(name: str, region: str) -> KnowledgeStore:
        if name not in knowledge:
            if name not in workflow.rags:
                raise BuildError(f"regions.{region}.rag: no rags entry named {name!r}")
            knowledge[name] = _open_store(workflow, name)
            close = getattr(knowledge[name], "aclose", None)
            if close is not None:
                closers.append(close)
        return knowledge[name]

    regions: dict[str, BaseRegion] = {}
    for name, config in workflow.regions.items():
        try:
            templates = PromptTemplates(config.prompts, where=f"regions.{name}.")
        except TemplateError as exc:
            raise BuildError(str(exc)) from None
        context = RegionContext(
            emit=bus.emit,
            is_region=names.__contains__,
            templates=templates,
            record_usage=budget.record,
        )
        if config.type in LLM_REGION_TYPES:
            context.llm_name = config.llm or "default"
            context.llm = model(context.llm_name, name)
        elif config.type == "RouterRegion" and config.llm:  # the model picks a route
            context.llm_name = config.llm
            context.llm = model(config.llm, name)
        elif config.type == "WorkflowRegion":
            context.subworkflows = subworkflows
        elif config.type == "RAGRegion":
            if not config.rag:
                raise BuildError(f"regions.{name}.rag: a RAGRegion needs a rag")
            context.store = store(config.rag, name)
        try:
            regions[name] = make_region(config, context)
        except ValueError as exc:
            raise BuildError(str(exc)) from None

    if any(config.type == "WorkflowRegion" for config in workflow.regions.values()):
        for name, endpoint in workflow.llms.items():
            if not endpoint.implied:
                inherited[name] = model(name, "")
    postmaster = Postmaster(regions, workflow.delivery, bus.emit, transport)
    return Engine(workflow, bus, regions, postmaster, budget, closers)


def _located(where: str, exc: Exception) -> str:
    """`exc`'s message prefixed with `where`, unless it already says where it is."""
    text = str(exc)
    return text if text.startswith(where) else f"{where}: {text}"
