"""The frozen types of a validated workflow: what the engine, the backends and the run file
use. They know nothing of the file format (`regions_cli.workflow` builds them from a file).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from regions_cli.model.control import (
    END,
    PLAN_STATE,
    AllOf,
    AnyOf,
    Condition,
    FieldTest,
    Not,
    Route,
    Says,
    State,
    Transition,
    Wait,
    condition_text,
)
from regions_cli.model.tools import ToolLoopConfig, ToolSpec

__all__ = [
    "END",
    "PLAN_STATE",
    "AllOf",
    "AnyOf",
    "Condition",
    "FieldTest",
    "Not",
    "Route",
    "Says",
    "State",
    "Transition",
    "Wait",
    "condition_text",
]

FORMAT_VERSION = 1

RegionType = Literal[
    "Region",
    "FeedForwardRegion",
    "RAGRegion",
    "BroadcastRegion",
    "ListenerRegion",
    "RouterRegion",
    "WorkflowRegion",
    "ToolRegion",
]
Role = Literal["request", "reply"]

REGION_TYPES: tuple[RegionType, ...] = (
    "Region",
    "FeedForwardRegion",
    "RAGRegion",
    "BroadcastRegion",
    "ListenerRegion",
    "RouterRegion",
    "WorkflowRegion",
    "ToolRegion",
)

_COMMON_METHODS = ("clear_replies", "keep_last_reply_per_source")
_LLM_METHODS = ("make_questions", "make_replies", "summarize_replies", *_COMMON_METHODS)

#: The methods a plan step may call, per region type (docs/engine.md, Region types and methods).
METHODS: Mapping[str, tuple[str, ...]] = {
    "Region": _LLM_METHODS,
    "FeedForwardRegion": _LLM_METHODS,
    "RAGRegion": ("make_replies", "make_updates", "request_summaries", *_COMMON_METHODS),
    "BroadcastRegion": ("broadcast", *_COMMON_METHODS),
    "ListenerRegion": ("start", "stop", *_COMMON_METHODS),
    "RouterRegion": ("make_replies", *_COMMON_METHODS),
    "WorkflowRegion": ("make_replies", *_COMMON_METHODS),
    "ToolRegion": ("make_replies", *_COMMON_METHODS),
}

LLM_REGION_TYPES: frozenset[str] = frozenset({"Region", "FeedForwardRegion"})

UndeliverablePolicy = Literal["error", "drop", "return", "reroute"]
FailurePolicy = Literal["stop", "continue"]


@dataclass(frozen=True)
class LLMConfig:
    """One ``llms:`` entry. Backend-specific keys stay in `options` for the backend to read.

    `api_key` holds the resolved secret; it is excluded from ``repr`` so it never reaches a log.
    """

    name: str
    backend: Literal["local", "openai", "scripted", "replay"]
    options: Mapping[str, Any] = field(default_factory=dict)
    api_key: str | None = field(default=None, repr=False)

    @property
    def implied(self) -> bool:
        """True for the embedded default a workflow gets when it has no ``llms:`` block."""
        return bool(self.options.get("_implied", False))


@dataclass(frozen=True)
class EmbedderConfig:
    """One ``embedders:`` entry (``local``, ``openai`` or ``hash``)."""

    name: str
    backend: Literal["local", "openai", "hash"]
    options: Mapping[str, Any] = field(default_factory=dict)
    api_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class DocumentSource:
    """A document to ingest into a RAG store: exactly one of `file` (absolute) or `text`."""

    file: Path | None = None
    text: str | None = None
    actors: tuple[str, ...] = ()
    id: str | None = None


@dataclass(frozen=True)
class RagConfig:
    """One ``rags:`` entry: a sqlite store, its embedder and its seed documents."""

    name: str
    path: Path  # absolute, resolved against the workflow file's folder
    embedder: str = "default"
    chunk_size: int = 512
    overlap: int = 50
    max_results: int = 5
    documents: tuple[DocumentSource, ...] = ()


@dataclass(frozen=True)
class RegionConfig:
    """One ``regions:`` entry. Type-specific fields are ``None`` where they do not apply."""

    name: str
    type: RegionType
    task: str = ""
    connections: Mapping[str, str] = field(default_factory=dict)  # NAME -> description
    llm: str | None = None  # LLM types: resolved to "default" when omitted
    rag: str | None = None  # RAGRegion
    threshold: float = 0.5  # RAGRegion
    reply_with_actors: bool = False  # RAGRegion
    max_results: int | None = None  # RAGRegion; None -> the store's max_results
    prompts: Mapping[str, str] = field(default_factory=dict)  # template name -> template text
    sink: Path | None = None  # ListenerRegion: JSONL file (absolute); None -> events only
    taps: tuple[str, ...] = ()  # ListenerRegion: regions whose traffic it copies; () -> all
    output_schema: Mapping[str, Any] | None = None  # LLM types: replies are JSON that validates
    input_schema: Mapping[str, Any] | None = None  # requests to it must be JSON that validates
    routes: tuple[Route, ...] = ()  # RouterRegion: rules, first match wins
    default_route: str | None = None  # RouterRegion: where a request no rule matches goes
    workflow: Path | None = None  # WorkflowRegion: the sub-workflow file (absolute)
    entry: str | None = None  # WorkflowRegion: the sub-workflow region each request goes to
    tools: tuple[str, ...] = ()  # LLM types: the ``tools:`` names its model may call
    tool_loop: ToolLoopConfig = field(default_factory=ToolLoopConfig)  # LLM types with tools
    tool: str | None = None  # ToolRegion: the tool it runs on each request
    placement: tuple[str, ...] = ()  # labels a worker must have to run its steps (NATS)

    @property
    def calls_llm(self) -> str | None:
        """The ``llms:`` entry this region's steps call (None: they call no model)."""
        if self.type in LLM_REGION_TYPES:
            return self.llm or "default"
        if self.type == "RouterRegion":  # only when its rules may fall back on the model
            return self.llm
        return None


@dataclass(frozen=True)
class Injection:
    """A message put in from outside before the first layer (``inject:``)."""

    source: str
    destination: str
    role: Role
    content: str


@dataclass(frozen=True)
class StepPolicy:
    """How one step is run: time limit, retries and what a failure does to the run."""

    timeout: float | None = 300.0  # seconds; None -> no limit
    retries: int = 0
    on_failure: FailurePolicy = "stop"
    on_false: Literal["warn", "fail"] = "warn"  # a method that reports "something failed"


@dataclass(frozen=True)
class Step:
    """``Region.method`` with its resolved policy."""

    region: str
    method: str
    policy: StepPolicy = StepPolicy()

    @property
    def label(self) -> str:
        return f"{self.region}.{self.method}"


@dataclass(frozen=True)
class Chain:
    name: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Layer:
    """A plan layer: its chains run concurrently. `label` defaults to ``layer-<index>``."""

    index: int
    label: str
    chains: tuple[Chain, ...]
    state: str = PLAN_STATE  # the state whose plan holds this layer
    wait: Wait | None = None  # a ``- wait:`` item (then `chains` is empty)


@dataclass(frozen=True)
class DeliveryConfig:
    """What the postmaster does with a message it cannot deliver (``delivery:``)."""

    undeliverable: UndeliverablePolicy = "error"
    reroute_to: str | None = None
    max_hops: int = 3  # bound on return/reroute bounces; never a loop


@dataclass(frozen=True)
class Budget:
    """Token and call limits (``budget:``); ``None`` means unlimited."""

    max_tokens: int | None = None
    max_calls: int | None = None
    region_max_tokens: int | None = None
    region_max_calls: int | None = None
    max_seconds: float | None = None  # the run's deadline (active time, across resumes)
    max_transitions: int | None = None  # state transitions in the whole run


@dataclass(frozen=True)
class Workflow:
    """A validated workflow, ready for `regions_cli.build`."""

    name: str
    version: int
    description: str
    regions: Mapping[str, RegionConfig]
    plan: tuple[Layer, ...]  # every layer; a machine's states each own a slice of it
    llms: Mapping[str, LLMConfig] = field(default_factory=dict)
    embedders: Mapping[str, EmbedderConfig] = field(default_factory=dict)
    rags: Mapping[str, RagConfig] = field(default_factory=dict)
    inject: tuple[Injection, ...] = ()
    delivery: DeliveryConfig = DeliveryConfig()
    defaults: StepPolicy = StepPolicy()
    budget: Budget = Budget()
    source: Path | None = None  # the workflow file, when loaded from one
    base_dir: Path = Path(".")
    tools: Mapping[str, ToolSpec] = field(default_factory=dict)  # ``tools:`` by name
    transport: str | None = None  # ``transport: {backend: nats, url: ...}``: the NATS URL
    states: Mapping[str, State] = field(default_factory=dict)  # () -> one implicit state
    start: str = PLAN_STATE

    @property
    def is_machine(self) -> bool:
        """True when the file declares ``states:`` (a plain ``plan:`` is one implicit state)."""
        return bool(self.states)

    def machine(self) -> Mapping[str, State]:
        """The states, the implicit one included: every workflow runs as a machine."""
        if self.states:
            return self.states
        return {PLAN_STATE: State(PLAN_STATE, 0, len(self.plan))}


def split_step(text: str) -> tuple[str, str]:
    """``"Region.method"`` -> ``("Region", "method")`` (the method is "" if there is none)."""
    region, _, method = text.partition(".")
    return region, method
