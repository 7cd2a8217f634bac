"""What every region shares: its stores, posting, state snapshots and the common methods.

A region keeps two stores, as in the original framework: pending *requests* (consumed when
answered) and *replies* (knowledge, kept until cleared, summarised or pruned). The postmaster
calls `receive` to deliver; a step's method posts into `outbox`, which the executor hands to the
postmaster once the method has finished. A method returns an `Outcome`: ``ok``, ``nothing``
(there was nothing to do, e.g. no requests) or ``false`` (it ran but something failed).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

from regions_cli.engine.contracts import Contract, contract_for
from regions_cli.engine.events import Event, LLMCalled, Notice, RegionStatus, TokenStreamed
from regions_cli.engine.message import Message, Origin
from regions_cli.engine.prompts import PromptTemplates
from regions_cli.llm.base import (
    ChatMessage,
    CompletionModel,
    CompletionRequest,
    Usage,
    strip_thinking,
)
from regions_cli.model import METHODS, RegionConfig
from regions_cli.rag.base import KnowledgeStore
from regions_cli.text import plural

if TYPE_CHECKING:
    from regions_cli.engine.regions.workflow import SubWorkflows


@dataclass(frozen=True)
class Outcome:
    """What a region method reports back to the executor."""

    status: Literal["ok", "nothing", "false"]
    detail: str | None = None

    @classmethod
    def ok(cls, detail: str | None = None) -> Outcome:
        return cls("ok", detail)

    @classmethod
    def nothing(cls, detail: str) -> Outcome:
        return cls("nothing", detail)

    @classmethod
    def false(cls, detail: str) -> Outcome:
        return cls("false", detail)


class StepFailed(Exception):
    """A method's own reason to fail its step, one line, shown as it is (the executor puts the
    step's label in front): the step is rolled back and its policy applies."""


class Entry(NamedTuple):
    """One stored request or reply: who sent it, what it says, the id of its message.

    A named tuple rather than a dataclass: one is made per delivered message (the hot path).
    """

    source: str
    content: str
    cause: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "content": self.content, "cause": self.cause}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Entry:
        return cls(str(data["source"]), str(data["content"]), data.get("cause"))


def _ignore(event: Event) -> None:
    return None


@dataclass
class RegionContext:
    """What `regions_cli.build` gives a region: its model or store, templates and the bus.

    `record_usage` is called with every model call's usage (the budget tracker);
    `is_region` tells a region name from an external address; `subworkflows` loads and
    builds the workflows a WorkflowRegion runs.
    """

    emit: Callable[[Event], None] = _ignore
    is_region: Callable[[str], bool] = lambda name: False
    llm: CompletionModel | None = None
    llm_name: str = ""
    store: KnowledgeStore | None = None
    templates: PromptTemplates = field(default_factory=PromptTemplates)
    record_usage: Callable[[str, Usage, bool], None] = lambda region, usage, cached: None
    subworkflows: SubWorkflows | None = None


@dataclass
class Captured:
    """An in-memory copy of a region's state, taken before a step and restored if it fails."""

    requests: list[Entry]
    replies: list[Entry]
    asked_by: dict[str, None]
    inbox: list[Message]
    extra: dict[str, Any]
    arrived: list[Message] = field(default_factory=list)  # delivered while the step ran


class BaseRegion:
    """The shared part of every region type. Subclasses add the plan methods."""

    type_name: ClassVar[str] = "BaseRegion"
    default_task: ClassVar[str] = ""

    def __init__(self, config: RegionConfig, context: RegionContext | None = None) -> None:
        self.config = config
        self.name = config.name
        self.task = config.task or self.default_task
        self.connections: dict[str, str] = dict(config.connections)
        # Compiled once, here at build time: the postmaster checks requests to this region.
        self.input_contract: Contract | None = contract_for(
            config.input_schema, f"regions.{config.name}.input_schema"
        )
        self.context = context or RegionContext()
        self.requests: list[Entry] = []
        self.replies: list[Entry] = []
        # Who has sent this region a request, in first-seen order: the regions it may reply
        # to although they are not its connections (the original mutated `connections`).
        self.asked_by: dict[str, None] = {}
        self.inbox: list[Message] = []  # held messages (BroadcastRegion, ListenerRegion)
        self.outbox: list[Message] = []
        self.origin = Origin()
        self._captured: Captured | None = None
        # One step at a time per region, even if a plan put it in two chains of a layer.
        self.lock = asyncio.Lock()

    # -- the plan's view ----------------------------------------------------------------

    @classmethod
    def methods(cls) -> tuple[str, ...]:
        """The methods a plan step may call on this region type."""
        return tuple(METHODS.get(cls.type_name, ()))

    # -- delivery and posting -----------------------------------------------------------

    def receive(self, message: Message) -> None:
        """Store a delivered message (the postmaster has already checked its role)."""
        if self._captured is not None:
            self._captured.arrived.append(message)
        self.accept(message)

    def accept(self, message: Message) -> None:
        """Sort a delivered message into the stores (overridden by types that hold messages)."""
        entry = Entry(message.source, message.content, message.id)
        if message.role == "request":
            self.requests.append(entry)
            self.asked_by.setdefault(message.source, None)
        else:
            self.replies.append(entry)

    def begin_step(self, origin: Origin) -> None:
        """Start a step: messages posted from now on carry `origin` (and a fresh ordinal)."""
        self.origin = origin
        self.outbox = []

    def take_outbox(self) -> list[Message]:
        out, self.outbox = self.outbox, []
        return out

    def post(
        self,
        destination: str,
        role: str,
        content: str,
        *,
        cause: str | None = None,
        source: str | None = None,
    ) -> Message:
        """Queue a message for delivery after the current step (`source` defaults to self)."""
        o = self.origin
        message = Message(
            source=self.name if source is None else source,
            destination=destination,
            role=role,
            content=content,
            origin=Origin(o.layer, o.chain, o.step, len(self.outbox), o.injected),
            cause=cause,
        )
        self.outbox.append(message)
        return message

    def notice(self, level: str, text: str) -> None:
        self.context.emit(Notice(level=level, text=f"{self.name}: {text}", region=self.name))

    def status(self, status: str) -> None:
        self.context.emit(RegionStatus(region=self.name, status=status))

    # -- state ------------------------------------------------------------------------

    def capture(self) -> Captured:
        """Copy the state before a step (cheap: entries are immutable), for `rollback`.

        Messages delivered while the step runs (by concurrent chains) are noted, so that a
        rollback keeps them.
        """
        self._captured = Captured(
            list(self.requests),
            list(self.replies),
            dict(self.asked_by),
            list(self.inbox),
            self._extra_state(),
        )
        return self._captured

    def release(self) -> None:
        """The step is over and its effects stay."""
        self._captured = None

    def rollback(self) -> None:
        """Undo the current step: the state it started from, plus what arrived meanwhile."""
        captured = self._captured
        self._captured = None
        self.outbox = []
        if captured is None:
            return
        self.requests = list(captured.requests)
        self.replies = list(captured.replies)
        self.asked_by = dict(captured.asked_by)
        self.inbox = list(captured.inbox)
        self._restore_extra(captured.extra)
        for message in captured.arrived:
            self.accept(message)

    def snapshot(self) -> dict[str, Any]:
        """The region's state as JSON-serialisable data (what the journal stores)."""
        return {
            "type": self.type_name,
            "requests": [e.to_json() for e in self.requests],
            "replies": [e.to_json() for e in self.replies],
            "asked_by": list(self.asked_by),
            "inbox": [m.to_dict() for m in self.inbox],
            "extra": self._extra_state(),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Load a `snapshot()`; a snapshot of another region type is refused."""
        kind = state.get("type", self.type_name)
        if kind != self.type_name:
            raise ValueError(
                f"{self.name}: cannot restore a {kind} snapshot into a {self.type_name}"
            )
        self.requests = [Entry.from_json(e) for e in state.get("requests") or ()]
        self.replies = [Entry.from_json(e) for e in state.get("replies") or ()]
        self.asked_by = dict.fromkeys(state.get("asked_by") or ())
        self.inbox = [Message.from_dict(m) for m in state.get("inbox") or ()]
        self.outbox = []
        self._restore_extra(dict(state.get("extra") or {}))

    def _extra_state(self) -> dict[str, Any]:
        """Type-specific state (JSON-serialisable); overridden by types that have some."""
        return {}

    def _restore_extra(self, extra: dict[str, Any]) -> None:
        return None

    # -- methods every type has -------------------------------------------------------

    async def clear_replies(self) -> Outcome:
        """Forget every stored reply (requests stay)."""
        if not self.replies:
            return Outcome.nothing("reply store already empty")
        count = len(self.replies)
        self.replies = []
        return Outcome.ok(f"cleared {plural(count, 'reply', 'replies')}")

    async def keep_last_reply_per_source(self) -> Outcome:
        """Keep only the latest reply of each source, in first-seen order of the sources."""
        if not self.replies:
            return Outcome.nothing("no incoming replies to prune")
        latest: dict[str, Entry] = {}
        for entry in self.replies:
            latest[entry.source] = entry  # a key keeps its first position, takes the last value
        before = len(self.replies)
        self.replies = list(latest.values())
        return Outcome.ok(
            f"pruned {plural(before - len(self.replies), 'reply', 'replies')}, "
            f"{len(self.replies)} remaining"
        )

    def consolidated_replies(self) -> list[Entry]:
        """Replies merged per source (contents joined by newlines), first-seen source order."""
        merged: dict[str, list[Entry]] = {}
        for entry in self.replies:
            merged.setdefault(entry.source, []).append(entry)
        return [
            Entry(source, "\n".join(e.content for e in entries), entries[-1].cause)
            for source, entries in merged.items()
        ]

    # -- model calls (LLM regions) ----------------------------------------------------

    async def complete(
        self,
        purpose: str,
        system: str,
        user: str,
        *,
        json_schema: Mapping[str, Any] | None = None,
    ) -> str | None:
        """Ask the region's model; the answer text, or None if the answer was empty.

        Every call is recorded (`LLMCalled`, with the error if any) and counted against the
        budget. A call that fails for good (the backend's own retries spent: a refused
        connection, a rejected API key) is re-raised, so the step fails as a whole: its state is
        rolled back (requests stay pending, nothing is lost), the step's `retries` apply, and the
        run ends with exit code 3 rather than succeeding with nothing answered. Cancellation
        (a step timeout, Ctrl-C) passes through untouched.
        """
        llm = self.context.llm
        if llm is None:
            self.notice("error", f"{purpose}: no model configured")
            return None
        request = CompletionRequest(
            messages=(ChatMessage("system", system), ChatMessage("user", user)),
            json_schema=json_schema,
            purpose=purpose,
        )
        emit = self.context.emit
        name = self.name

        def on_token(text: str) -> None:
            emit(TokenStreamed(region=name, text=text))

        self.status("waiting_llm")
        start = time.perf_counter()
        try:
            completion = await llm.complete(request, on_token=on_token)
        except Exception as exc:  # recorded, then the step fails (see above)
            emit(
                LLMCalled(
                    region=name,
                    llm=self.context.llm_name,
                    purpose=purpose,
                    prompt_tokens=0,
                    completion_tokens=0,
                    duration=time.perf_counter() - start,
                    error=f"{type(exc).__name__}: {exc}",
                    system=system,
                    user=user,
                )
            )
            self.context.record_usage(name, Usage(), False)
            raise
        self.context.record_usage(name, completion.usage, completion.cached)
        text = strip_thinking(completion.text)
        emit(
            LLMCalled(
                region=name,
                llm=self.context.llm_name,
                purpose=purpose,
                prompt_tokens=completion.usage.prompt_tokens,
                completion_tokens=completion.usage.completion_tokens,
                duration=time.perf_counter() - start,
                error=None if text else "empty answer",
                cached=completion.cached,
                system=system,
                user=user,
                answer=completion.text,
            )
        )
        self.status("replying")
        return text or None


def entries_json(entries: Sequence[Entry]) -> str:
    """Entries as the original's ``[{source: content}, ...]`` list, one item per line.

    Written item by item so that the C JSON encoder does the work (``indent=`` would use the
    pure-Python one); non-ASCII text is kept as is, for the model to read.
    """
    lines = ",\n".join(
        "  " + json.dumps({e.source: e.content}, ensure_ascii=False) for e in entries
    )
    return f"[\n{lines}\n]"
