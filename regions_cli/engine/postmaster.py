"""The postmaster: checks, orders and delivers every message; nothing is dropped silently.

There is no polling. The executor hands the postmaster the outbox of a finished step
(`Postmaster.route` then `commit`). Delivery follows the super-step model, so that what a run
does never depends on timing: inside a layer (`open_layer` .. `close_layer`) a message to a
region of the sending chain is delivered at once, before that chain's next step (the chain is
sequential, so this is deterministic); every other message (to a region of another chain or of
no chain in the layer, to an external address, a listener's copy) waits for the layer barrier,
where `close_layer` delivers them in plan order: chains in declaration order, then step order,
then posting order. Each delivery gets the next sequence number and a `MessageDelivered`
event, so the order of delivery is recorded.

Rules (checked against the region that posted the message, which differs from
``message.source`` for a broadcast copy):

* the role must be ``request`` or ``reply`` (rule ``unknown-role``);
* a region may send requests only to its connections (``not-connected``) and replies only to
  its connections or to whoever has asked it (``not-asked``). A RAGRegion may also ask the
  regions that asked it (``request_summaries``);
* a connection must be a region (``unknown-destination``);
* a request to a region with an ``input_schema`` must be a JSON document valid against it
  (``invalid-input``; injected requests too). The schema is compiled when the region is built;
  messages to the other regions skip the check altogether.

An address that is not a region is external: a message to it is output of the run. A message
that breaks a rule is handled by ``delivery.undeliverable``: ``error`` (the step fails,
nothing it posted is delivered), ``drop``, ``return`` (a reply to the sender saying why) or
``reroute`` (to ``delivery.reroute_to``). Each is recorded as a `MessageRejected` event with the
offending message. A bounced message is not bounced again, and ``max_hops: 0`` turns return and
reroute into drop, so there is never a loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from regions_cli.engine.events import Event, MessageDelivered, MessageRejected, Notice
from regions_cli.engine.message import ROLES, Message
from regions_cli.engine.regions.base import BaseRegion
from regions_cli.engine.regions.listener import ListenerRegion
from regions_cli.engine.transport import InProcessTransport, Receiver, Transport
from regions_cli.model import DeliveryConfig

#: The source of the notes the postmaster returns to senders.
POSTMASTER = "postmaster"


@dataclass(frozen=True)
class Rejection:
    """Why one message may not be delivered."""

    message: Message
    rule: str  # not-connected | not-asked | unknown-destination | unknown-role | invalid-input
    reason: str


class Routing:
    """The postmaster's verdict on one step's outbox: its messages in posting order and, by
    position, the rules broken (usually none)."""

    __slots__ = ("messages", "rejected", "sender")

    def __init__(
        self, sender: str | None, messages: Sequence[Message], rejected: dict[int, Rejection]
    ) -> None:
        self.sender = sender
        self.messages = messages
        self.rejected = rejected

    @property
    def rejections(self) -> list[Rejection]:
        return list(self.rejected.values())


class UndeliverableError(Exception):
    """A step posted a message that broke a rule while ``delivery.undeliverable`` is ``error``."""

    def __init__(self, rejections: Sequence[Rejection]) -> None:
        first = rejections[0]
        more = f" (and {len(rejections) - 1} more)" if len(rejections) > 1 else ""
        super().__init__(
            f"undeliverable message from {first.message.source} to "
            f"{first.message.destination!r}: {first.reason}{more}"
        )
        self.rejections = list(rejections)


class Held:
    """A message (or what is left of its delivery) waiting for the layer barrier.

    `seq` is its sequence number if part of it went at once (0 if not yet numbered);
    `sent` says whether its destination has it already (then only listener copies are left).
    """

    __slots__ = ("delivery", "message", "sent", "seq")

    def __init__(
        self, message: Message, seq: int = 0, delivery: str = "delivered", sent: bool = False
    ) -> None:
        self.message = message
        self.seq = seq
        self.delivery = delivery  # delivered | returned | rerouted
        self.sent = sent

    def to_json(self) -> dict[str, Any]:
        return {
            "message": self.message.to_dict(),
            "seq": self.seq,
            "delivery": self.delivery,
            "sent": self.sent,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Held:
        return cls(
            Message.from_dict(dict(data["message"])),
            int(data.get("seq") or 0),
            str(data.get("delivery") or "delivered"),
            bool(data.get("sent")),
        )


class _LayerScope:
    """Who is where in the running layer, and what waits for its barrier (per chain)."""

    __slots__ = ("chain_of", "held", "order")

    def __init__(self, chains: Mapping[str, Iterable[str]]) -> None:
        self.order = list(chains)
        self.chain_of = {region: chain for chain, regions in chains.items() for region in regions}
        self.held: dict[str, list[Held]] = {chain: [] for chain in self.order}


class Postmaster:
    """Routes messages between the regions of one run."""

    def __init__(
        self,
        regions: Mapping[str, BaseRegion],
        delivery: DeliveryConfig | None = None,
        emit: Callable[[Event], None] | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.regions = regions
        self.delivery = delivery or DeliveryConfig()
        self.emit: Callable[[Event], None] = emit or (lambda event: None)
        self.transport: Transport = transport or InProcessTransport()
        for name, region in regions.items():
            self.transport.attach(name, region.receive)
        # Exactly the in-process transport: deliver by direct call (the hot path).
        self._local: Mapping[str, Receiver] | None = (
            self.transport.receivers
            if isinstance(self.transport, InProcessTransport)
            and type(self.transport).send is InProcessTransport.send
            else None
        )
        self.listeners = [r for r in regions.values() if isinstance(r, ListenerRegion)]
        # Requests to these regions must validate; the hot path knows the others (`_open`).
        self._contracts = {
            name: r.input_contract for name, r in regions.items() if r.input_contract is not None
        }
        self._open: Mapping[str, BaseRegion] = (
            {name: r for name, r in regions.items() if name not in self._contracts}
            if self._contracts
            else regions
        )
        self.seq = 0  # deliveries so far (the sequence number of the last one)
        self.outputs: list[Message] = []  # messages to external addresses, in order
        self.rejected_count = 0  # messages rejected so far
        self._scope: _LayerScope | None = None

    # -- the layer barrier --------------------------------------------------------------

    def open_layer(self, chains: Mapping[str, Iterable[str]]) -> None:
        """A layer starts: `chains` maps each of its chains, in declaration order, to the
        regions of its steps. Until `close_layer`, only messages inside a chain go at once."""
        self._scope = _LayerScope(chains)

    def held(self, chain: str) -> list[Held]:
        """What `chain` has posted so far that waits for the barrier (for the journal)."""
        scope = self._scope
        return list(scope.held.get(chain, ())) if scope is not None else []

    def hold(self, chain: str, items: Sequence[Held]) -> None:
        """Queue what a chain completed before a resume had posted for the barrier."""
        if self._scope is None:
            raise RuntimeError("hold() outside a layer")
        self._scope.held.setdefault(chain, []).extend(items)
        if chain not in self._scope.order:
            self._scope.order.append(chain)

    async def close_layer(self) -> None:
        """The barrier: deliver what the layer's chains held, in plan order (the layer's chains
        as declared)."""
        scope, self._scope = self._scope, None
        if scope is None:
            return
        for chain in scope.order:

            def elsewhere(name: str, chain: str = chain) -> bool:
                return scope.chain_of.get(name) != chain

            for item in scope.held.get(chain, ()):
                seq = item.seq
                if not item.sent:
                    seq = await self._deliver_one(item.message, item.delivery, seq)
                if self.listeners:
                    await self._copy_to_listeners(item.message, seq, elsewhere)

    def discard_layer(self) -> None:
        """The layer was cancelled: what it held is never delivered."""
        self._scope = None

    # -- checking -----------------------------------------------------------------------

    def violation(self, sender: BaseRegion, message: Message) -> Rejection | None:
        """The rule `message`, posted by `sender`, breaks (None if it may go)."""
        rejection = self._misaddressed(sender, message)
        if rejection is None and self._contracts:
            return self._invalid_input(message)
        return rejection

    def _invalid_input(self, message: Message) -> Rejection | None:
        """``invalid-input`` if `message` is a request its destination's schema refuses."""
        contract = self._contracts.get(message.destination)
        if contract is None or message.role != "request":
            return None
        problem = contract.problem(message.content)
        if problem is None:
            return None
        return Rejection(
            message,
            "invalid-input",
            f"the request does not match {contract.where}: {problem}",
        )

    def _misaddressed(self, sender: BaseRegion, message: Message) -> Rejection | None:
        """The addressing rule `message` breaks (None if it may go to its destination)."""
        dest = message.destination
        if message.role not in ROLES:
            return Rejection(
                message, "unknown-role", f"role {message.role!r} is neither request nor reply"
            )
        if dest in sender.connections:
            if dest in self.regions or dest in sender.asked_by:
                return None
            return Rejection(message, "unknown-destination", f"connection {dest!r} is not a region")
        if dest in sender.asked_by:
            return None
        if message.role == "request":
            return Rejection(
                message,
                "not-connected",
                f"{sender.name} may send requests only to its connections; {dest!r} is not one",
            )
        return Rejection(
            message,
            "not-asked",
            f"{dest!r} has not asked {sender.name} anything and is not one of its connections",
        )

    def route(self, sender: BaseRegion, messages: Sequence[Message]) -> Routing:
        """Check a step's outbox without delivering anything.

        Raises `UndeliverableError` (after recording the offending messages) when a message
        breaks a rule and the policy is ``error``: the step then fails as a whole.
        """
        regions, connections = self._open, sender.connections
        rejected: dict[int, Rejection] = {}
        for i, m in enumerate(messages):
            # the common case inline: a request or reply to a connected region with no schema
            if m.destination in connections and m.destination in regions and m.role in ROLES:
                continue
            rejection = self.violation(sender, m)
            if rejection is not None:
                rejected[i] = rejection
        routing = Routing(sender.name, messages, rejected)
        if rejected and self.delivery.undeliverable == "error":
            self.discard(routing, action="error")
            raise UndeliverableError(routing.rejections)
        return routing

    def discard(self, routing: Routing, *, action: str = "drop") -> None:
        """Record the rejected messages of a routing that will not be committed."""
        for rejection in routing.rejections:
            self._rejected(routing.sender, rejection, action)

    # -- delivering ---------------------------------------------------------------------

    async def commit(self, routing: Routing, chain: str | None = None) -> None:
        """Deliver a routing's accepted messages and apply the policy to the rejected ones.

        `chain` is the chain of the step that posted them: inside a layer, what leaves the
        chain is held for the barrier (see the module docstring)."""
        local, scope = self._local, self._scope
        if local is not None and not routing.rejected:  # the common case: all accepted
            if scope is None:
                for message in routing.messages:
                    self._deliver_locally(message, "delivered", local)
                return
            if not self.listeners and chain is not None:
                chain_of, held = scope.chain_of, scope.held.setdefault(chain, [])
                for message in routing.messages:
                    if chain_of.get(message.destination) == chain:
                        self._deliver_locally(message, "delivered", local)
                    else:
                        held.append(Held(message))
                return
        for i, message in enumerate(routing.messages):
            if routing.rejected and i in routing.rejected:
                await self._undeliverable(routing.sender, routing.rejected[i], chain)
            else:
                await self.post(message, chain)

    async def post(self, message: Message, chain: str | None, delivery: str = "delivered") -> None:
        """Deliver `message` from a step of `chain` now if it stays inside the chain, else hold
        it for the layer barrier (outside a layer: now)."""
        scope = self._scope
        if scope is None or chain is None:
            await self.deliver(message, delivery)
            return
        held = scope.held.setdefault(chain, [])

        def here(name: str) -> bool:
            return scope.chain_of.get(name) == chain

        if here(message.destination):
            seq = await self._deliver_one(message, delivery)
            if self.listeners and await self._copy_to_listeners(message, seq, here):
                held.append(Held(message, seq, delivery, sent=True))
            return
        seq = 0
        if any(here(r.name) and r.taps(message) for r in self.listeners):
            self.seq += 1  # a listener of the chain gets its copy now: the number is taken
            seq = self.seq
            await self._copy_to_listeners(message, seq, here)
        held.append(Held(message, seq, delivery))

    async def send(
        self, sender: BaseRegion, messages: Sequence[Message], chain: str | None = None
    ) -> Routing:
        """`route` then `commit`: what a step's outbox goes through."""
        routing = self.route(sender, messages)
        await self.commit(routing, chain)
        return routing

    async def inject(self, messages: Sequence[Message]) -> None:
        """Deliver messages from outside (``inject:``, the barrier hook). Only the role and the
        destination's ``input_schema`` are checked; a bad one is recorded (never a crash) and
        handled by the policy, with ``error`` acting as ``drop`` since there is no step to fail."""
        for message in messages:
            rejection = (
                Rejection(
                    message, "unknown-role", f"role {message.role!r} is neither request nor reply"
                )
                if message.role not in ROLES
                else self._invalid_input(message)
            )
            if rejection is not None:
                self.emit(
                    Notice(
                        level="error",
                        text=f"injected message from {message.source} to "
                        f"{message.destination}: {rejection.reason}",
                    )
                )
                await self._undeliverable(None, rejection)
            else:
                await self.deliver(message, "injected")

    async def hand_back(self, recipient: str, message: Message) -> None:
        """Put `message` back into `recipient` (a region) without counting or reporting a
        delivery: a resumed run restoring what a region had received before the process died
        (the delivery is in the run file already; listeners got their own copies then)."""
        await self.transport.send(recipient, message)

    async def deliver(self, message: Message, delivery: str = "delivered") -> None:
        """Hand `message` to its destination (or the run's output) and CC the listeners."""
        if self._local is not None:
            self._deliver_locally(message, delivery, self._local)
            return
        seq = await self._deliver_one(message, delivery)
        await self._copy_to_listeners(message, seq)

    async def _deliver_one(self, message: Message, delivery: str, seq: int = 0) -> int:
        """Deliver `message` to its destination only, under `seq` or the next sequence number;
        returns the number."""
        if not seq:
            self.seq += 1
            seq = self.seq
        dest = message.destination
        if self._local is not None:
            receiver = self._local.get(dest)
            if receiver is not None:
                receiver(message)
            else:
                delivery = "output"
                self.outputs.append(message)
        elif dest in self.regions:
            await self.transport.send(dest, message)
        else:
            delivery = "output"
            self.outputs.append(message)
        self.emit(MessageDelivered(message=message, delivery=delivery, seq=seq, recipient=dest))
        return seq

    async def _copy_to_listeners(
        self, message: Message, seq: int, select: Callable[[str], bool] | None = None
    ) -> bool:
        """CC the listeners that tap `message` (a copy repeats its message's `seq`); with
        `select`, only those it accepts. Returns whether `select` left any out."""
        left = False
        for listener in self.listeners:
            if listener.name == message.destination or not listener.taps(message):
                continue
            if select is not None and not select(listener.name):
                left = True
                continue
            if self._local is not None:
                self._local[listener.name](message)
            else:
                await self.transport.send(listener.name, message)
            self.emit(
                MessageDelivered(message=message, delivery="cc", seq=seq, recipient=listener.name)
            )
        return left

    def _deliver_locally(
        self, message: Message, delivery: str, receivers: Mapping[str, Receiver]
    ) -> None:
        """`deliver` for the in-process transport: plain calls, no coroutine per hop."""
        self.seq += 1
        dest = message.destination
        receiver = receivers.get(dest)
        if receiver is not None:
            receiver(message)
        else:
            delivery = "output"
            self.outputs.append(message)
        self.emit(
            MessageDelivered(message=message, delivery=delivery, seq=self.seq, recipient=dest)
        )
        if not self.listeners:
            return
        for listener in self.listeners:
            if listener.name != dest and listener.taps(message):
                receivers[listener.name](message)
                self.emit(
                    MessageDelivered(
                        message=message, delivery="cc", seq=self.seq, recipient=listener.name
                    )
                )

    async def _undeliverable(
        self, sender: str | None, rejection: Rejection, chain: str | None = None
    ) -> None:
        message = rejection.message
        policy = self.delivery.undeliverable
        action: str = "drop" if policy == "error" else policy
        reason = rejection.reason
        if action in ("return", "reroute") and self.delivery.max_hops < 1:
            action, reason = "drop", f"{reason}; max_hops is 0"
        bounced: Message | None = None
        if action == "return":
            bounced = Message(
                source=POSTMASTER,
                destination=sender or message.source,
                role="reply",
                content=f"Could not deliver message to '{message.destination}' ({reason}). "
                f"Content: {message.content}",
                origin=message.origin,
                cause=message.id,
            )
        elif action == "reroute":
            target = self.delivery.reroute_to
            if rejection.rule == "unknown-role":
                action, reason = "drop", f"{reason}; a message with that role cannot be rerouted"
            elif target is None or target not in self.regions or target == message.destination:
                action, reason = "drop", f"{reason}; reroute target {target!r} unavailable"
            else:
                bounced = replace(message, destination=target, cause=message.id, id="")
        self._rejected(sender, replace(rejection, reason=reason), action)
        if bounced is not None:
            await self.post(bounced, chain, "returned" if action == "return" else "rerouted")

    def _rejected(self, sender: str | None, rejection: Rejection, action: str) -> None:
        self.rejected_count += 1
        self.emit(
            MessageRejected(
                message=rejection.message,
                rule=rejection.rule,
                reason=rejection.reason,
                action=action,
                sender=sender,
            )
        )
