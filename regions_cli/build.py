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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from regions_cli.engine.budget import BudgetTracker
from regions_cli.engine.events import EventBus
from regions_cli.engine.executor import Engine
from regions_cli.engine.postmaster import Postmaster
from regions_cli.engine.prompts import PromptTemplates, TemplateError
from regions_cli.engine.region_tool import RegionTool
from regions_cli.engine.regions import RegionContext, make_region
from regions_cli.engine.regions.base import BaseRegion
from regions_cli.engine.regions.workflow import SubWorkflowError
from regions_cli.engine.toolloop import Toolbox
from regions_cli.engine.transport import Transport
from regions_cli.llm.base import CompletionModel, Preloadable
from regions_cli.model import LLM_REGION_TYPES, RegionConfig, Workflow
from regions_cli.model.tools import (
    CommandToolSpec,
    McpServerSpec,
    PythonToolSpec,
    RagToolSpec,
    RegionToolSpec,
    ToolSpec,
)
from regions_cli.rag.base import KnowledgeStore, RagError
from regions_cli.tools.base import Tool, ToolError, ToolTape

if TYPE_CHECKING:
    from regions_cli.llm.factory import LLMOptions
    from regions_cli.tools.mcp import McpServers

#: The command that installs what MCP servers as tools need (the ``mcp`` extra).
MCP_INSTALL = 'pip install "regions-cli[mcp]"'


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
    llms: Mapping[str, CompletionModel] | None = None,
) -> Engine:
    """`build_engine` for code running on an event loop: the RAG stores are opened (and their
    documents ingested) in a worker thread, and cancelling this coroutine stops the ingestion
    within one embedding slice (`regions_cli.rag.store.EMBED_SLICE` chunks); models that load
    slowly start loading; the MCP servers the regions use are started. `progress` hears how far
    each store's ingestion got; `llms` are as for `build_engine`. The engine closes the
    stores, models and MCP servers in `Engine.aclose`."""
    return await _build_async(
        workflow, bus, llm_options, transport, progress, enclosing=(), llms=llms
    )


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
        servers = await start_mcp_servers(workflow)
        if servers is not None:  # stopped by the engine at the end, even of a failed run
            closers.append(servers.aclose)
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
            servers=servers,
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
    """Open every store a RAGRegion or a ``rag:`` tool of `workflow` uses, one after another
    in a worker thread.

    Stores that `build_engine` would reject (no ``rag``, an unknown name) are left for it to
    report. On an error or a cancellation the stores already opened are closed; a cancellation
    stops the ingestion in progress at its next embedding slice.
    """
    names = dict.fromkeys(
        [
            config.rag
            for config in workflow.regions.values()
            if config.type == "RAGRegion" and config.rag and config.rag in workflow.rags
        ]
        + [
            spec.store
            for spec in used_tool_specs(workflow)
            if isinstance(spec, RagToolSpec) and spec.store in workflow.rags
        ]
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
    servers: McpServers | None = None,
) -> Engine:
    """`build_engine`, with `closers` (of what the caller opened) for the engine to run; the
    models it makes are also put in `made`. `enclosing` are the files of the workflows that
    run this one as a sub-workflow (outermost first); `servers` are its MCP servers, started
    (`start_mcp_servers`)."""
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
        if config.calls_llm is not None:
            context.llm_name = config.calls_llm
            context.llm = model(config.calls_llm, name)
        if config.type == "WorkflowRegion":
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
    if tool_uses(workflow):
        tape = _tool_tape(llm_options)  # after the models: a cassette's tool lines go beside
        close_tape = getattr(tape, "aclose", None)
        if close_tape is not None:
            closers.append(close_tape)  # after the models' closers
        _give_tools(workflow, regions, tape, servers, lambda name: store(name, ""))
    postmaster = Postmaster(regions, workflow.delivery, bus.emit, transport)
    return Engine(workflow, bus, regions, postmaster, budget, closers)


def _located(where: str, exc: Exception) -> str:
    """`exc`'s message prefixed with `where`, unless it already says where it is."""
    text = str(exc)
    return text if text.startswith(where) else f"{where}: {text}"


# -- tools ----------------------------------------------------------------------------------


def tool_uses(workflow: Workflow) -> dict[str, tuple[str, ...]]:
    """The ``tools:`` entries each region uses: an LLM region's ``tools:``, a ToolRegion's
    ``tool:`` (regions that use none are left out)."""
    uses: dict[str, tuple[str, ...]] = {}
    for name, config in workflow.regions.items():
        if config.type in LLM_REGION_TYPES and config.tools:
            uses[name] = tuple(config.tools)
        elif config.type == "ToolRegion" and config.tool:
            uses[name] = (config.tool,)
    return uses


def used_tool_specs(workflow: Workflow) -> list[ToolSpec]:
    """The specs of the ``tools:`` entries some region uses, in declaration order."""
    used = {entry for entries in tool_uses(workflow).values() for entry in entries}
    return [spec for name, spec in workflow.tools.items() if name in used]


def _tool_tape(llm_options: LLMOptions | None) -> ToolTape:
    """The run's `ToolTape`: a cassette's recorder or player with ``--record``/``--replay``,
    else live (made after the models, so a recording goes into the file they opened; its
    ``aclose`` runs after theirs)."""
    from regions_cli.llm.factory import tool_tape

    return tool_tape(llm_options)


async def start_mcp_servers(workflow: Workflow) -> McpServers | None:
    """Start the MCP servers the regions of `workflow` use (None: it uses none), each once,
    concurrently, in the workflow's folder. `BuildError` if the ``mcp`` extra is missing or a
    server does not start (those started are stopped)."""
    specs = [spec for spec in used_tool_specs(workflow) if isinstance(spec, McpServerSpec)]
    if not specs:
        return None
    try:
        from regions_cli.tools.mcp import McpServers
    except ImportError:
        raise BuildError(
            f"tools.{specs[0].name}: MCP servers need the mcp extra: {MCP_INSTALL}"
        ) from None
    servers = McpServers(specs, folder=workflow.base_dir)
    try:
        await servers.__aenter__()
    except ToolError as exc:
        raise BuildError(f"tools.{_spec_of(exc, specs)}: {exc}") from None
    return servers


def _spec_of(exc: ToolError, specs: Sequence[McpServerSpec]) -> str:
    """The name of the spec a `ToolError` is about (its message quotes it)."""
    return next((spec.name for spec in specs if repr(spec.name) in str(exc)), specs[0].name)


def _circle(uses: Mapping[str, tuple[str, ...]], workflow: Workflow) -> list[str] | None:
    """A circle of regions asking one another through region tools (A -> B -> A), if any."""
    asks = {
        region: [
            spec.region
            for entry in entries
            if isinstance(spec := workflow.tools.get(entry), RegionToolSpec)
        ]
        for region, entries in uses.items()
    }
    done: set[str] = set()

    def visit(region: str, path: list[str]) -> list[str] | None:
        if region in path:
            return [*path[path.index(region) :], region]
        if region in done:
            return None
        for target in asks.get(region, ()):
            if found := visit(target, [*path, region]):
                return found
        done.add(region)
        return None

    for region in asks:
        if found := visit(region, []):
            return found
    return None


def _give_tools(
    workflow: Workflow,
    regions: Mapping[str, BaseRegion],
    tape: ToolTape,
    servers: McpServers | None,
    store: Callable[[str], KnowledgeStore],
) -> None:
    """Give each region that uses tools its `Toolbox`: an LLM region the tools its ``tools:``
    names (an MCP entry: every tool of that server), a ToolRegion its one tool."""
    uses = tool_uses(workflow)
    circle = _circle(uses, workflow)
    if circle is not None:
        raise BuildError(
            f"regions.{circle[0]}.tools: region tools ask in a circle "
            f"({' -> '.join(circle)}): each would wait for the other's answer"
        )
    shared: dict[str, tuple[Tool, ...]] = {}  # one tool per entry, shared by its users

    def tools_of(entry: str, region: str) -> tuple[Tool, ...]:
        spec = workflow.tools.get(entry)
        where = "tool" if workflow.regions[region].type == "ToolRegion" else "tools"
        if spec is None:
            raise BuildError(f"regions.{region}.{where}: no tools entry named {entry!r}")
        if isinstance(spec, RegionToolSpec):  # one per caller: the request comes from it
            target = regions.get(spec.region)
            if target is None:
                raise BuildError(f"tools.{entry}.region: no region named {spec.region!r}")
            try:
                return (RegionTool(spec, regions[region], target),)
            except ToolError as exc:
                raise BuildError(f"tools.{entry}: {exc}") from None
        if entry not in shared:
            shared[entry] = _make_tools(workflow, spec, servers, store)
        return shared[entry]

    for region, entries in uses.items():
        config = workflow.regions[region]
        tools: dict[str, Tool] = {}
        for entry in entries:
            for tool in tools_of(entry, region):
                if tool.name in tools:
                    raise BuildError(
                        f"regions.{region}.tools: two tools named {tool.name!r} ({entry} and "
                        "an entry before it)"
                    )
                tools[tool.name] = tool
        if config.type == "ToolRegion" and len(tools) != 1:
            raise BuildError(_one_tool(config, tools))
        regions[region].context.toolbox = Toolbox(tools, config.tool_loop, tape)


def _one_tool(config: RegionConfig, tools: Mapping[str, Tool]) -> str:
    return (
        f"regions.{config.name}.tool: a ToolRegion runs one tool; {config.tool!r} offers "
        f"{len(tools)} ({', '.join(tools) or 'none'})"
    )


def _make_tools(
    workflow: Workflow,
    spec: ToolSpec,
    servers: McpServers | None,
    store: Callable[[str], KnowledgeStore],
) -> tuple[Tool, ...]:
    """The tools of one ``tools:`` entry (not a region tool: see `_give_tools`)."""
    try:
        if isinstance(spec, CommandToolSpec):
            from regions_cli.tools.command import CommandTool

            return (CommandTool(spec, folder=workflow.base_dir),)
        if isinstance(spec, PythonToolSpec):
            from regions_cli.tools.python import PythonTool

            return (PythonTool(spec),)
        if isinstance(spec, RagToolSpec):
            from regions_cli.tools.rag import RagTool

            if spec.store not in workflow.rags:
                raise BuildError(f"tools.{spec.name}.rag: no rags entry named {spec.store!r}")
            return (RagTool(spec, store(spec.store)),)
        if isinstance(spec, McpServerSpec):
            if servers is None:  # the sync build_engine cannot start a server
                raise BuildError(
                    f"tools.{spec.name}: MCP servers are started by build_engine_async"
                )
            return tuple(servers.tools(spec.name))
    except ToolError as exc:
        raise BuildError(f"tools.{spec.name}: {exc}") from None
    raise BuildError(f"tools.{spec.name}: a region tool is built per caller")
