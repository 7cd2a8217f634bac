"""`RouterRegion`: passes each request on to one of its connections, and the answer back.

Which connection: the first of ``routes:`` whose ``when.says`` regex is found in the request's
text; else, with ``llm:``, the model's choice among the connections (a constrained choice: the
answer must be one of their names, ``{"route": NAME}``; an answer that is not falls back to
``default:`` with a notice); else ``default:``. A request nothing routes is answered with a
reply saying so (and a notice), and the step reports ``false``.

How replies travel
------------------
The postmaster lets a region ask only its connections and answer only whoever asked it, so a
router does not hand the original request on: it asks on its own behalf and relays the answer.

1. ``Router.make_replies`` posts a *forwarded* request (the same text) from the router to the
   chosen region, its ``cause`` the original request's id, and remembers which original
   request that forwarded message stands for.
2. The chosen region answers whoever asked it: the router. Its reply's ``cause`` is the
   forwarded request's id, which the router recognises: it holds that reply for relaying
   (other replies it receives are stored as usual).
3. The next ``Router.make_replies`` relays each held reply to the original asker, as a reply
   from the router whose ``cause`` is the original request's id, and forgets the forwarded
   request (a later answer to it is an ordinary reply).

So a plan runs ``[Router.make_replies, Billing.make_replies, Router.make_replies]``; one
``make_replies`` both relays what came back and forwards what is new. Ids stay deterministic:
each hop's ``cause`` names the message before it. The forwarded-request map and the held
replies are part of the router's snapshot, so a run resumed between the hops still relays.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from regions_cli.engine.message import Message
from regions_cli.engine.regions.base import BaseRegion, Entry, Outcome, RegionContext
from regions_cli.model import RegionConfig
from regions_cli.text import plural

#: What a request that no rule, model or default routes is answered.
NO_ROUTE = "No route matched this request: {name} has no rule for it and no default."


def route_choice_schema(names: list[str]) -> dict[str, Any]:
    """The JSON Schema of the model's choice: ``{"route": NAME}``, NAME one of `names`."""
    return {
        "type": "object",
        "properties": {"route": {"type": "string", "enum": names}},
        "required": ["route"],
    }


def chosen_name(answer: str) -> str:
    """The name in a model's answer: ``{"route": NAME}``, a JSON string, or the bare text."""
    text = answer.strip()
    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict):
        value = value.get("route", "")
    return value if isinstance(value, str) else text


class RouterRegion(BaseRegion):
    """Forwards each request to the connection its routes (or its model) choose, and relays
    the answer to the asker (see the module docstring)."""

    type_name: ClassVar[str] = "RouterRegion"
    default_task: ClassVar[str] = "Send each request to the connection best suited to answer it."

    def __init__(self, config: RegionConfig, context: RegionContext | None = None) -> None:
        super().__init__(config, context)
        self.rules: list[tuple[re.Pattern[str], str]] = []
        for i, route in enumerate(config.routes):
            try:
                self.rules.append((re.compile(route.when.pattern), route.to))
            except re.error as exc:
                raise ValueError(
                    f"regions.{self.name}.routes[{i}].when.says: invalid regular expression: {exc}"
                ) from None
        # Forwarded request id -> the original request it stands for (see the docstring).
        self.forwarded: dict[str, Entry] = {}

    def accept(self, message: Message) -> None:
        """Answers to forwarded requests are held for relaying; the rest is stored as usual."""
        if message.role == "reply" and message.cause in self.forwarded:
            self.inbox.append(message)
        else:
            super().accept(message)

    def _extra_state(self) -> dict[str, Any]:
        return {"forwarded": {key: entry.to_json() for key, entry in self.forwarded.items()}}

    def _restore_extra(self, extra: dict[str, Any]) -> None:
        saved = extra.get("forwarded") or {}
        self.forwarded = {key: Entry.from_json(value) for key, value in saved.items()}

    # -- the method -----------------------------------------------------------------------

    async def make_replies(self) -> Outcome:
        """Relay the answers that came back, then forward every pending request."""
        if not self.requests and not self.inbox:
            return Outcome.nothing("no incoming requests and no answers to relay")
        relayed = self._relay()
        pending, self.requests = self.requests, []
        sent: dict[str, int] = {}
        unrouted = 0
        for request in pending:
            destination = await self.choose(request)
            if destination is None:
                unrouted += 1
                self.notice("warning", f"no route matched the request from {request.source}")
                self.post(
                    request.source, "reply", NO_ROUTE.format(name=self.name), cause=request.cause
                )
                continue
            message = self.post(destination, "request", request.content, cause=request.cause)
            self.forwarded[message.id] = request
            sent[destination] = sent.get(destination, 0) + 1
        done = []
        if sent:
            where = ", ".join(f"{n} to {name}" for name, n in sent.items())
            done.append(f"forwarded {plural(sum(sent.values()), 'request')} ({where})")
        if relayed:
            done.append(f"relayed {plural(relayed, 'reply', 'replies')}")
        summary = "; ".join(done) or "forwarded nothing"
        if unrouted:
            return Outcome.false(f"{unrouted}/{len(pending)} matched no route; {summary}")
        return Outcome.ok(summary)

    def _relay(self) -> int:
        """Send each held answer to the asker of the request it answers; the count relayed."""
        held, self.inbox = self.inbox, []
        answered: set[str] = set()
        for reply in held:
            assert reply.cause is not None  # `accept` holds only replies to forwarded requests
            original = self.forwarded[reply.cause]
            self.post(original.source, "reply", reply.content, cause=original.cause)
            answered.add(reply.cause)
        for key in answered:
            del self.forwarded[key]
        return len(held)

    async def choose(self, request: Entry) -> str | None:
        """The connection `request` goes to (None: nothing routes it)."""
        for pattern, destination in self.rules:
            if pattern.search(request.content):
                return destination
        default = self.config.default_route
        if self.context.llm is None or not self.connections:
            return default
        names = list(self.connections)
        system = (
            f"You are {self.name}, a router. {self.task}\n"
            "Choose the one connection that should handle the request. Connections:\n"
            f"{json.dumps(self.connections, indent=2)}\n"
            'Answer with JSON: {"route": "<one connection name>"}.'
        )
        answer = await self.complete(
            "route", system, request.content, json_schema=route_choice_schema(names)
        )
        name = chosen_name(answer or "")
        if name in self.connections:
            return name
        fallback = f"using the default, {default}" if default else "and there is no default"
        self.notice("warning", f"the model chose {name[:80]!r}, not a connection; {fallback}")
        return default
