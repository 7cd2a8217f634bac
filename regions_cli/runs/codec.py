"""The one conversion between messages and events and what a run file stores: JSON for events
(`Event.to_json` and back), rows for messages (a message's event is rebuilt from its row, see
`message_event`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from regions_cli.engine import events as ev
from regions_cli.engine.message import Message, Origin


def message_row(message: Message) -> tuple[Any, ...]:
    """The columns a message takes in the ``messages`` table, from ``id`` to ``cause``."""
    o = message.origin
    return (
        message.id,
        message.source,
        message.destination,
        message.role,
        message.content,
        o.layer,
        o.chain,
        o.step,
        o.ordinal,
        o.injected,
        message.cause,
    )


def message_from_row(row: Mapping[str, Any]) -> Message:
    """Rebuild a journaled message from its ``messages`` row (its id is kept as recorded)."""
    return Message(
        source=row["source"],
        destination=row["destination"],
        role=row["role"],
        content=row["content"],
        origin=Origin(
            layer=row["layer"],
            chain=row["chain"],
            step=row["step"],
            ordinal=int(row["ordinal"]),
            injected=bool(row["injected"]),
        ),
        cause=row["cause"],
        id=row["id"],
    )


def injected_message(
    source: str, destination: str, role: str, content: str, ordinal: int
) -> Message:
    """A message queued by ``regions inject``: the `ordinal`-th injection of its run."""
    return Message(
        source=source,
        destination=destination,
        role=role,
        content=content,
        origin=Origin(injected=True, ordinal=ordinal),
    )


def message_event(row: Mapping[str, Any]) -> dict[str, Any]:
    """The event JSON of a ``messages`` row joined with its ``rejections`` row."""
    message = message_from_row(row).to_dict()
    if row["delivery"] == "rejected":
        return {
            "kind": ev.MessageRejected.kind,
            "t": row["t"],
            "message": message,
            "rule": row["rule"],
            "reason": row["reason"],
            "action": row["action"],
            "sender": row["sender"],
        }
    return {
        "kind": ev.MessageDelivered.kind,
        "t": row["t"],
        "message": message,
        "delivery": row["delivery"],
        "seq": row["delivery_seq"],
        "recipient": row["recipient"],
    }


def _event_classes() -> dict[str, type[ev.Event]]:
    found: dict[str, type[ev.Event]] = {}
    pending: list[type[ev.Event]] = [ev.Event]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.kind, cls)
        pending.extend(cls.__subclasses__())
    return found


def event_from_json(data: Mapping[str, Any]) -> ev.Event | None:
    """Rebuild an event from its stored `Event.to_json`; None for a kind this version does
    not know."""
    cls = _event_classes().get(str(data.get("kind")))
    if cls is None or cls is ev.Event:
        return None
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name == "message" and isinstance(value, Mapping):
            value = Message.from_dict(dict(value))
        kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except TypeError:  # a field this version requires is missing: skip rather than crash
        return None


def events_from_json(items: Sequence[Mapping[str, Any]]) -> list[ev.Event]:
    """The events of `items` that this version knows, in order."""
    return [e for e in map(event_from_json, items) if e is not None]
