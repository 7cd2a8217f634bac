"""The immutable message that regions exchange.

A message's `id` is a content hash chained with its cause (the id of the request it answers,
or of the message it copies), its origin (layer/chain/step) and its ordinal among the messages
that step posted. Identical traffic therefore gets identical ids, so two runs can be compared
message by message, while two equal texts sent twice in one step still differ.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["request", "reply"]
ROLES: tuple[str, ...] = ("request", "reply")


@dataclass(frozen=True)
class Origin:
    """Where a message was produced: plan position, or ``injected`` from outside."""

    layer: int | None = None  # index into the plan; None for injected messages
    chain: str | None = None
    step: int | None = None  # index of the step inside its chain
    ordinal: int = 0  # n-th message posted by that step (or n-th injection)
    injected: bool = False


@dataclass(frozen=True)
class Message:
    source: str
    destination: str
    role: str  # "request" | "reply"; other values are recorded as errors, not crashes
    content: str
    origin: Origin = field(default_factory=Origin)
    cause: str | None = None  # id of the request this answers / the message this copies
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", message_id(self))

    def to_dict(self) -> dict[str, Any]:
        """The message as JSON (built by hand: `dataclasses.asdict` deep-copies, and this is
        on the hot path of the run file and ``--json``)."""
        o = self.origin
        return {
            "source": self.source,
            "destination": self.destination,
            "role": self.role,
            "content": self.content,
            "origin": {
                "layer": o.layer,
                "chain": o.chain,
                "step": o.step,
                "ordinal": o.ordinal,
                "injected": o.injected,
            },
            "cause": self.cause,
            "id": self.id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        origin = data.get("origin") or {}
        return cls(
            source=data["source"],
            destination=data["destination"],
            role=data["role"],
            content=data["content"],
            origin=Origin(**origin),
            cause=data.get("cause"),
            id=data.get("id", ""),
        )


#: One encoder for every id (``json.dumps`` with options builds a new encoder per call).
_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def message_id(message: Message) -> str:
    """The chained content hash described in the module docstring (16 hex digits)."""
    o = message.origin
    payload = _ENCODE(
        [
            message.source,
            message.destination,
            message.role,
            message.content,
            message.cause,
            # == asdict(o), written out: asdict deep-copies and was most of an id's cost
            {
                "layer": o.layer,
                "chain": o.chain,
                "step": o.step,
                "ordinal": o.ordinal,
                "injected": o.injected,
            },
        ]
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]
