"""`BroadcastRegion`: holds what it receives until `broadcast`, then copies it onwards."""

from __future__ import annotations

from typing import ClassVar

from regions_cli.engine.message import Message
from regions_cli.engine.regions.base import BaseRegion, Outcome
from regions_cli.text import plural


class BroadcastRegion(BaseRegion):
    """A fan-out copier. Copies keep the original source, role and content, so recipients
    answer the original sender directly (replies bypass the broadcaster)."""

    type_name: ClassVar[str] = "BroadcastRegion"
    default_task: ClassVar[str] = "Forward all incoming messages to connected regions."

    def accept(self, message: Message) -> None:
        self.inbox.append(message)

    async def broadcast(self) -> Outcome:
        """Copy every held message to every connection, in arrival order."""
        if not self.inbox:
            return Outcome.nothing("no messages to broadcast")
        if not self.connections:
            return Outcome.false(
                f"no connections to broadcast to ({plural(len(self.inbox), 'message')} kept)"
            )
        held, self.inbox = self.inbox, []
        for message in held:
            for destination in self.connections:
                self.post(
                    destination,
                    message.role,
                    message.content,
                    cause=message.id,
                    source=message.source,
                )
        return Outcome.ok(
            f"copied {plural(len(held), 'message')} to {plural(len(self.connections), 'region')}"
        )

    async def clear_replies(self) -> Outcome:
        """Drop the held replies (held requests stay)."""
        replies = [m for m in self.inbox if m.role == "reply"]
        if not replies:
            return Outcome.nothing("no held replies")
        self.inbox = [m for m in self.inbox if m.role != "reply"]
        return Outcome.ok(f"cleared {plural(len(replies), 'held reply', 'held replies')}")

    async def keep_last_reply_per_source(self) -> Outcome:
        """Of the held replies keep each source's latest (requests and order otherwise kept)."""
        last = {m.source: m.id for m in self.inbox if m.role == "reply"}
        if not last:
            return Outcome.nothing("no held replies to prune")
        before = len(self.inbox)
        self.inbox = [m for m in self.inbox if m.role != "reply" or last[m.source] == m.id]
        return Outcome.ok(
            f"pruned {plural(before - len(self.inbox), 'held reply', 'held replies')}"
        )
