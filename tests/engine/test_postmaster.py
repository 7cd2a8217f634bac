"""Routing: delivery order, connection rules, undeliverable policies, CC, output."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import FakeModel, engine_for, layer, workflow

from regions_cli.engine.events import EventBus, MessageDelivered
from regions_cli.engine.message import Message
from regions_cli.engine.postmaster import Postmaster
from regions_cli.engine.regions import make_region
from regions_cli.engine.transport import InProcessTransport
from regions_cli.model import DeliveryConfig, RegionConfig


def questions_to(*names: str) -> str:
    return json.dumps([{"source": n, "question": f"hello {n}?"} for n in names])


def asker_workflow(delivery: dict[str, Any] | None = None, **extra: Any) -> Any:
    """A asks B (a connection); its model also names C (not a connection)."""
    regions = {
        "A": {"type": "Region", "task": "ask", "connections": ["B"]},
        "B": {"type": "Region", "task": "answer"},
        "C": {"type": "Region", "task": "bystander"},
        "Fallback": {"type": "Region", "task": "catch"},
    }
    return workflow(
        regions,
        [layer(main=["A.make_questions"])],
        delivery=delivery or {},
        **extra,
    )


async def run_asker(delivery: dict[str, Any] | None, *, bypass_region_check: bool = True) -> Any:
    wf = asker_workflow(delivery)
    engine, rec = engine_for(wf, llms={"default": FakeModel(questions_to("B"))})
    if bypass_region_check:
        # The region itself refuses non-connections, so to exercise the postmaster we let A
        # believe C is a connection while the postmaster judges by the workflow's declaration.
        engine.regions["A"]._question_problem = lambda item: None  # type: ignore[attr-defined]
        engine.regions["A"].context.llm = FakeModel(questions_to("B", "C"))
    result = await engine.run()
    return engine, rec, result


async def test_messages_are_delivered_in_order_with_sequence_numbers() -> None:
    wf = workflow(
        {
            "A": {"type": "Region", "task": "t", "connections": ["B", "C"]},
            "B": {"type": "Region", "task": "t"},
            "C": {"type": "Region", "task": "t"},
        },
        [layer(main=["A.make_questions", "B.make_replies", "C.make_replies"])],
        inject=[{"from": "user", "to": "A", "role": "reply", "content": "context"}],
    )
    engine, rec = engine_for(wf)
    result = await engine.run()
    assert result.ok
    delivered = [e for e in rec.of("message") if e.delivery != "cc"]
    assert [e.seq for e in delivered] == list(range(1, len(delivered) + 1))
    route = [(e.message.source, e.message.destination, e.delivery) for e in delivered]
    assert route == [
        ("user", "A", "injected"),
        ("A", "B", "delivered"),
        ("A", "C", "delivered"),
        ("B", "A", "delivered"),
        ("C", "A", "delivered"),
    ]


async def test_request_to_a_non_connection_fails_the_step_under_error_policy() -> None:
    _engine, rec, result = await run_asker(None)
    assert result.status == "failed" and result.exit_code == 3
    [rejected] = rec.of("message_rejected")
    assert (rejected.rule, rejected.action) == ("not-connected", "error")
    assert rejected.message.destination == "C" and rejected.sender == "A"
    # atomic: the legal question to B was not delivered either
    assert not [e for e in rec.of("message") if e.message.source == "A"]
    [finished] = rec.of("step_finished")
    assert finished.outcome == "failed" and "not one" in finished.error
    assert "undeliverable" in (result.error or "")


async def test_drop_policy_records_the_rejection_and_delivers_the_rest() -> None:
    _engine, rec, result = await run_asker({"undeliverable": "drop"})
    [rejected] = rec.of("message_rejected")
    assert (rejected.rule, rejected.action, rejected.message.destination) == (
        "not-connected",
        "drop",
        "C",
    )
    assert [e.message.destination for e in rec.of("message")] == ["B"]
    [finished] = rec.of("step_finished")
    assert finished.outcome == "false" and "rejected" in finished.detail
    assert result.status == "ok"  # on_false: warn


async def test_drop_policy_with_on_false_fail_fails_the_step() -> None:
    wf = asker_workflow({"undeliverable": "drop"}, defaults={"on_false": "fail"})
    engine, rec = engine_for(wf, llms={"default": FakeModel(questions_to("B", "C"))})
    engine.regions["A"]._question_problem = lambda item: None  # type: ignore[attr-defined]
    result = await engine.run()
    assert result.status == "failed"
    assert not rec.of("message")


async def test_return_policy_sends_a_note_back_to_the_sender() -> None:
    engine, rec, _result = await run_asker({"undeliverable": "return"})
    [rejected] = rec.of("message_rejected")
    assert rejected.action == "return"
    returned = [e for e in rec.of("message") if e.delivery == "returned"]
    [note] = returned
    assert (note.message.source, note.message.destination, note.message.role) == (
        "postmaster",
        "A",
        "reply",
    )
    assert "Could not deliver message to 'C'" in note.message.content
    assert "hello C?" in note.message.content
    assert note.message.cause == rejected.message.id
    assert ("postmaster", note.message.content) in [
        (e.source, e.content) for e in engine.regions["A"].replies
    ]


async def test_reroute_policy_delivers_to_the_named_region() -> None:
    engine, rec, _result = await run_asker({"undeliverable": "reroute", "reroute_to": "Fallback"})
    [rejected] = rec.of("message_rejected")
    assert rejected.action == "reroute"
    [rerouted] = [e for e in rec.of("message") if e.delivery == "rerouted"]
    assert rerouted.message.destination == "Fallback"
    assert rerouted.message.source == "A" and rerouted.message.role == "request"
    assert [e.content for e in engine.regions["Fallback"].requests] == ["hello C?"]


async def test_reroute_to_a_missing_region_drops_instead_of_looping() -> None:
    _engine, rec, _result = await run_asker({"undeliverable": "reroute", "reroute_to": "Nowhere"})
    [rejected] = rec.of("message_rejected")
    assert rejected.action == "drop" and "unavailable" in rejected.reason


@pytest.mark.parametrize("policy", ["return", "reroute"])
async def test_max_hops_zero_turns_bounces_into_drops(policy: str) -> None:
    _engine, rec, _result = await run_asker(
        {"undeliverable": policy, "reroute_to": "Fallback", "max_hops": 0}
    )
    [rejected] = rec.of("message_rejected")
    assert rejected.action == "drop" and "max_hops" in rejected.reason


async def test_replies_only_to_askers_or_connections() -> None:
    regions = {
        "A": make_region(RegionConfig("A", "Region", connections={"B": ""})),
        "B": make_region(RegionConfig("B", "Region")),
        "C": make_region(RegionConfig("C", "Region")),
    }
    pm = Postmaster(regions, DeliveryConfig(undeliverable="drop"))
    b, c = regions["B"], regions["C"]
    assert pm.violation(b, Message("B", "A", "reply", "x")).rule == "not-asked"  # type: ignore[union-attr]
    await pm.inject([Message("A", "B", "request", "q")])
    assert pm.violation(b, Message("B", "A", "reply", "x")) is None  # A asked B
    assert pm.violation(c, Message("C", "A", "request", "x")).rule == "not-connected"  # type: ignore[union-attr]
    assert pm.violation(regions["A"], Message("A", "B", "reply", "x")) is None  # a connection


async def test_reply_to_an_external_asker_is_output() -> None:
    wf = workflow(
        {"A": {"type": "Region", "task": "t"}},
        [layer(main=["A.make_replies"])],
        inject=[{"from": "user", "to": "A", "role": "request", "content": "hi"}],
    )
    engine, rec = engine_for(wf)
    result = await engine.run()
    [out] = result.outputs
    assert (out.source, out.destination, out.content) == ("A", "user", "Echo: hi")
    assert [e.delivery for e in rec.of("message")] == ["injected", "output"]


async def test_injected_unknown_role_is_recorded_not_a_crash() -> None:
    wf = workflow({"A": {"type": "Region", "task": "t"}}, [layer(main=["A.make_replies"])])
    engine, rec = engine_for(wf)
    await engine.inject([Message("user", "A", "update", "?")])
    [rejected] = rec.of("message_rejected")
    assert rejected.rule == "unknown-role" and rejected.action == "drop"
    assert [n.level for n in rec.of("notice")] == ["error"]
    assert engine.regions["A"].requests == [] and engine.regions["A"].replies == []


async def test_unknown_role_posted_by_a_region_is_rejected() -> None:
    regions = {
        "A": make_region(RegionConfig("A", "Region", connections={"B": ""})),
        "B": make_region(RegionConfig("B", "Region")),
    }
    pm = Postmaster(regions, DeliveryConfig(undeliverable="return"))
    await pm.send(regions["A"], [Message("A", "B", "gossip", "psst")])
    assert regions["B"].requests == [] and regions["B"].replies == []
    assert regions["A"].replies[0].source == "postmaster"  # returned as a reply


async def test_listener_gets_a_cc_of_tapped_traffic_only(tmp_path: Path) -> None:
    sink = tmp_path / "trace.jsonl"
    wf = workflow(
        {
            "A": {"type": "Region", "task": "t", "connections": ["B"]},
            "B": {"type": "Region", "task": "t"},
            "C": {"type": "Region", "task": "t"},
            "Trace": {"type": "ListenerRegion", "sink": str(sink), "taps": ["B"]},
        },
        [layer(main=["Trace.start", "A.make_questions", "B.make_replies", "Trace.stop"])],
        inject=[{"from": "user", "to": "C", "role": "reply", "content": "not tapped"}],
    )
    engine, rec = engine_for(wf)
    assert (await engine.run()).ok
    ccs = [e for e in rec.of("message") if e.delivery == "cc"]
    assert {e.recipient for e in ccs} == {"Trace"}
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    assert [(m["source"], m["destination"]) for m in lines] == [("A", "B"), ("B", "A")]
    assert [line["id"] for line in lines] == [e.message.id for e in ccs]


async def test_transport_is_pluggable() -> None:
    class Recording(InProcessTransport):
        def __init__(self) -> None:
            super().__init__()
            self.sent: list[tuple[str, str]] = []

        async def send(self, address: str, message: Message) -> None:
            self.sent.append((address, message.content))
            await super().send(address, message)

    regions = {"A": make_region(RegionConfig("A", "Region"))}
    transport = Recording()
    bus = EventBus()
    seen: list[MessageDelivered] = []
    bus.subscribe(lambda e: seen.append(e) if isinstance(e, MessageDelivered) else None)
    pm = Postmaster(regions, emit=bus.emit, transport=transport)
    await pm.inject([Message("user", "A", "request", "q"), Message("user", "out", "reply", "o")])
    assert transport.sent == [("A", "q")]  # outputs never touch the transport
    assert [e.delivery for e in seen] == ["injected", "output"]
    assert [m.content for m in pm.outputs] == ["o"]
