"""How an accepted message reaches its recipient: a small interface and the in-process version.

The postmaster decides *whether* and *where* a message goes (rules, policies, order); a
`Transport` only carries it there. `InProcessTransport` hands the message to the recipient's
`receive` on the event loop. A networked transport (regions in other processes or machines)
implements the same two methods; regions and the postmaster do not change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from regions_cli.engine.message import Message

Receiver = Callable[[Message], None]


class Transport(Protocol):
    """Carries messages to named recipients."""

    def attach(self, address: str, receiver: Receiver) -> None:
        """Make `address` reachable; `receiver` is called with each message for it."""
        ...

    async def send(self, address: str, message: Message) -> None:
        """Hand `message` to `address` (attached before). Returns once it is delivered."""
        ...


class InProcessTransport:
    """Delivery by a direct call on the event loop: a message is in the inbox on return."""

    def __init__(self) -> None:
        #: address -> receiver. The postmaster calls these directly when the transport is
        #: exactly this class, saving a coroutine per hop.
        self.receivers: dict[str, Receiver] = {}

    def attach(self, address: str, receiver: Receiver) -> None:
        self.receivers[address] = receiver

    async def send(self, address: str, message: Message) -> None:
        self.receivers[address](message)
