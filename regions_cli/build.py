"""Turn a validated `Workflow` into a ready `Engine`: models, stores, regions, postmaster.

Backends and stores are imported lazily (a scripted workflow never imports httpx or llama.cpp).
Nothing connects or loads here: models load on their first call, so building is cheap.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from regions_cli.engine.budget import BudgetTracker
from regions_cli.engine.events import EventBus
from regions_cli.engine.executor import Engine
from regions_cli.engine.postmaster import Postmaster
from regions_cli.engine.prompts import PromptTemplates, TemplateError
from regions_cli.engine.regions import RegionContext, make_region
from regions_cli.engine.regions.base import BaseRegion
from regions_cli.engine.transport import Transport
from regions_cli.llm.base import CompletionModel
from regions_cli.rag.base import KnowledgeStore, RagError
from regions_cli.workflow.model import LLM_REGION_TYPES, Workflow

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
    for tests and embedding programs. Raises `BuildError` with a one-line message.
    """
    from regions_cli.llm.factory import make_llm

    models: dict[str, CompletionModel] = dict(llms or {})
    knowledge: dict[str, KnowledgeStore] = dict(stores or {})
    closers: list[Callable[[], Awaitable[None]]] = []
    budget = BudgetTracker(workflow.budget)
    names = frozenset(workflow.regions)

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
        return models[name]

    def store(name: str, region: str) -> KnowledgeStore:
        if name not in knowledge:
            if name not in workflow.rags:
                raise BuildError(f"regions.{region}.rag: no rags entry named {name!r}")
            from regions_cli.rag.factory import open_store

            try:
                knowledge[name] = open_store(workflow, name)
            except (ValueError, OSError, ImportError, RagError) as exc:
                raise BuildError(_located(f"rags.{name}", exc)) from None
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
        elif config.type == "RAGRegion":
            if not config.rag:
                raise BuildError(f"regions.{name}.rag: a RAGRegion needs a rag")
            context.store = store(config.rag, name)
        try:
            regions[name] = make_region(config, context)
        except ValueError as exc:
            raise BuildError(str(exc)) from None

    postmaster = Postmaster(regions, workflow.delivery, bus.emit, transport)
    return Engine(workflow, bus, regions, postmaster, budget, closers)


def _located(where: str, exc: Exception) -> str:
    """`exc`'s message prefixed with `where`, unless it already says where it is."""
    text = str(exc)
    return text if text.startswith(where) else f"{where}: {text}"
