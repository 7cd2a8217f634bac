"""RouterRegion: routing by rule, by model and by default, requests nothing routes, replies
relayed to the original asker, and a run resumed between the hops."""

from __future__ import annotations

import json
from typing import Any

import pytest
from engine_helpers import FakeModel, engine_for, layer, make, message, workflow

from regions_cli.build import BuildError
from regions_cli.engine.message import Message
from regions_cli.engine.regions.router import NO_ROUTE, chosen_name, route_choice_schema
from regions_cli.llm.base import CompletionRequest

#: Each desk answers in its own words, so a reply tells who answered it.
DESKS = {
    "default": {
        "backend": "scripted",
        "rules": [
            {"match": "You are Billing", "reply": "Billing: refund issued."},
            {"match": "You are Support", "reply": "Support: password reset."},
            {"match": "You are Sales", "reply": "Sales: a quote is on its way."},
        ],
    }
}

ROUTES = [
    {"when": {"says": "(?i)invoice|refund"}, "to": "Billing"},
    {"when": {"says": "(?i)password|login"}, "to": "Support"},
]


def desks(**router: Any) -> dict[str, Any]:
    return {
        "Router": {
            "type": "RouterRegion",
            "connections": {
                "Billing": "invoices and refunds",
                "Support": "accounts and logins",
                "Sales": "prices and quotes",
            },
            **router,
        },
        "Billing": {"type": "Region", "task": "Answer billing questions."},
        "Support": {"type": "Region", "task": "Answer account questions."},
        "Sales": {"type": "Region", "task": "Answer sales questions."},
    }


#: Forward, let every desk answer, relay: the three hops of a routed request.
PLAN = [
    layer(route=["Router.make_replies"]),
    layer(
        billing=["Billing.make_replies"],
        support=["Support.make_replies"],
        sales=["Sales.make_replies"],
    ),
    layer(route=["Router.make_replies"]),
]


def asks(*texts: str) -> list[dict[str, str]]:
    return [{"from": f"user{i}", "to": "Router", "content": t} for i, t in enumerate(texts)]


def injected_id(wf_inject: list[dict[str, str]], index: int) -> str:
    from regions_cli.engine.executor import initial_messages

    wf = workflow(desks(routes=ROUTES, default="Sales"), PLAN, llms=DESKS, inject=wf_inject)
    return initial_messages(wf)[index].id


def answers(outputs: list[Message]) -> list[tuple[str, str, str]]:
    return [(m.source, m.destination, m.content) for m in outputs]


async def test_requests_go_by_the_first_matching_rule_and_replies_come_back() -> None:
    inject = asks("My invoice is wrong, I want a refund", "I forgot my password", "Hello")
    wf = workflow(desks(routes=ROUTES, default="Sales"), PLAN, llms=DESKS, inject=inject)
    engine, rec = engine_for(wf)
    result = await engine.run()
    assert result.ok, result.error
    assert answers(result.outputs) == [
        ("Router", "user0", "Billing: refund issued."),
        ("Router", "user1", "Support: password reset."),
        ("Router", "user2", "Sales: a quote is on its way."),  # no rule: the default
    ]
    # Each relayed reply answers the original request (its cause), not the forwarded one.
    assert [m.cause for m in result.outputs] == [injected_id(inject, i) for i in range(3)]
    forwarded = [
        e.message
        for e in rec.of("message")
        if e.message.source == "Router" and e.message.role == "request"
    ]
    assert [(m.destination, m.cause) for m in forwarded] == [
        ("Billing", injected_id(inject, 0)),
        ("Support", injected_id(inject, 1)),
        ("Sales", injected_id(inject, 2)),
    ]
    details = [e.detail for e in rec.of("step_finished") if e.region == "Router"]
    assert details == [
        "forwarded 3 requests (1 to Billing, 1 to Support, 1 to Sales)",
        "relayed 3 replies",
    ]
    assert engine.regions["Router"].forwarded == {}  # every forwarded request answered
    assert engine.regions["Router"].replies == []  # relayed, not kept as knowledge


async def test_a_rule_earlier_in_the_list_wins() -> None:
    inject = asks("refund my password")  # both rules match
    wf = workflow(desks(routes=ROUTES), PLAN, llms=DESKS, inject=inject)
    engine, _ = engine_for(wf)
    result = await engine.run()
    assert answers(result.outputs) == [("Router", "user0", "Billing: refund issued.")]


async def test_the_same_traffic_gets_the_same_ids() -> None:
    inject = asks("refund please", "login trouble")
    runs = []
    for _ in range(2):
        engine, _ = engine_for(workflow(desks(routes=ROUTES), PLAN, llms=DESKS, inject=inject))
        runs.append([m.id for m in (await engine.run()).outputs])
    assert runs[0] == runs[1] and len(set(runs[0])) == 2


async def test_no_rule_and_no_default_answers_that_no_route_matched() -> None:
    inject = asks("What is the weather?")
    wf = workflow(desks(routes=ROUTES), PLAN, llms=DESKS, inject=inject)
    engine, rec = engine_for(wf)
    result = await engine.run()
    assert answers(result.outputs) == [("Router", "user0", NO_ROUTE.format(name="Router"))]
    assert result.outputs[0].cause == injected_id(inject, 0)
    router_steps = [e for e in rec.of("step_finished") if e.region == "Router"]
    assert router_steps[0].outcome == "false" and "1/1 matched no route" in router_steps[0].detail
    notices = [e.text for e in rec.of("notice") if e.region == "Router"]
    assert any("no route matched the request from user0" in n for n in notices)
    assert engine.regions["Router"].requests == []  # answered, not left pending


def choosing(name_for: dict[str, str]) -> FakeModel:
    """A model that answers ``{"route": NAME}``, NAME by the first key found in the request."""

    def answer(request: CompletionRequest) -> str:
        text = request.messages[-1].content
        return json.dumps({"route": next(v for k, v in name_for.items() if k in text)})

    return FakeModel(answer)


async def test_the_model_chooses_when_no_rule_matches() -> None:
    model = choosing({"quote": "Sales", "account": "Support", "refund": "Billing"})
    inject = asks("refund please", "I need a quote", "my account is locked")
    llms = {**DESKS, "router": {"backend": "scripted"}}
    wf = workflow(desks(routes=ROUTES[:1], llm="router"), PLAN, llms=llms, inject=inject)
    engine, rec = engine_for(wf, llms={"router": model})
    result = await engine.run()
    assert result.ok, result.error
    # Relayed in the order the answers came back: the desks' chains in plan order.
    assert answers(result.outputs) == [
        ("Router", "user0", "Billing: refund issued."),  # by rule: the model is not asked
        ("Router", "user2", "Support: password reset."),
        ("Router", "user1", "Sales: a quote is on its way."),
    ]
    assert [r.messages[-1].content for r in model.requests] == [
        "I need a quote",
        "my account is locked",
    ]
    # A constrained choice: the schema names exactly the connections.
    assert model.requests[0].json_schema == route_choice_schema(["Billing", "Support", "Sales"])
    assert [e.purpose for e in rec.of("llm_call") if e.region == "Router"] == ["route", "route"]


async def test_the_scripted_backend_answers_a_name_from_the_schema() -> None:
    """With no rule, the scripted model fills the schema: the first name its enum allows."""
    llms = {**DESKS, "router": {"backend": "scripted"}}
    wf = workflow(desks(llm="router"), PLAN, llms=llms, inject=asks("anything at all"))
    engine, _ = engine_for(wf)
    result = await engine.run()
    assert answers(result.outputs) == [("Router", "user0", "Billing: refund issued.")]


@pytest.mark.parametrize("answer", ['{"route": "Marketing"}', "Sales, I think", "", "[1]"])
async def test_an_invalid_choice_falls_back_to_the_default(answer: str) -> None:
    llms = {**DESKS, "router": {"backend": "scripted"}}
    wf = workflow(desks(llm="router", default="Support"), PLAN, llms=llms, inject=asks("anything"))
    engine, rec = engine_for(wf, llms={"router": FakeModel(answer)})
    result = await engine.run()
    assert answers(result.outputs) == [("Router", "user0", "Support: password reset.")]
    notices = [e.text for e in rec.of("notice") if e.region == "Router"]
    assert any("not a connection; using the default, Support" in n for n in notices), notices


async def test_an_invalid_choice_without_a_default_is_unrouted() -> None:
    llms = {**DESKS, "router": {"backend": "scripted"}}
    wf = workflow(desks(llm="router"), PLAN, llms=llms, inject=asks("anything"))
    engine, _ = engine_for(wf, llms={"router": FakeModel("Marketing")})
    result = await engine.run()
    assert answers(result.outputs) == [("Router", "user0", NO_ROUTE.format(name="Router"))]


@pytest.mark.parametrize(
    ("answer", "name"),
    [('{"route": "Sales"}', "Sales"), ('"Sales"', "Sales"), (" Sales\n", "Sales"), ("{}", "")],
)
def test_chosen_name_reads_the_answer_leniently(answer: str, name: str) -> None:
    assert chosen_name(answer) == name


async def test_a_failing_model_fails_the_step_and_keeps_the_request() -> None:
    from regions_cli.llm.base import LLMError

    llms = {**DESKS, "router": {"backend": "scripted"}}
    wf = workflow(desks(llm="router"), PLAN[:1], llms=llms, inject=asks("anything"))
    engine, _ = engine_for(wf, llms={"router": FakeModel(LLMError("connection refused"))})
    result = await engine.run()
    assert result.status == "failed" and "connection refused" in (result.error or "")
    router = engine.regions["Router"]
    assert [e.content for e in router.requests] == ["anything"] and router.forwarded == {}


async def test_a_run_resumed_between_the_hops_relays_to_the_original_asker() -> None:
    """Stop after the forwarding layer and after the desks' layer; each time a fresh engine
    goes on from the JSON of the snapshot. The outputs (ids included) equal one whole run."""
    inject = asks("refund please", "login trouble", "hello")
    wf = workflow(desks(routes=ROUTES, default="Sales"), PLAN, llms=DESKS, inject=inject)
    whole, _ = engine_for(wf)
    expected = (await whole.run()).outputs

    engine, _ = engine_for(wf)
    first = await engine.run(max_layers=1)
    assert first.ok and first.outputs == []
    states = json.loads(json.dumps(engine.snapshot()))
    assert len(states["Router"]["extra"]["forwarded"]) == 3
    outputs: list[Message] = []
    for start in (1, 2):
        engine, _ = engine_for(wf)
        result = await engine.run(
            start_layer=start, max_layers=1, states=states, inject_initial=False
        )
        assert result.ok, result.error
        outputs += result.outputs
        states = json.loads(json.dumps(engine.snapshot()))
        if start == 1:  # the answers wait in the router for the relay
            assert len(states["Router"]["inbox"]) == 3
    assert outputs == expected


def test_a_router_restores_its_snapshot_and_refuses_another_types() -> None:
    router = make("RouterRegion", "Router", connections={"Billing": ""})
    router.receive(message("user", "Router", "request", "refund"))
    router.forwarded["f1"] = router.requests[0]
    router.receive(Message("Billing", "Router", "reply", "done", cause="f1"))
    snap = json.loads(json.dumps(router.snapshot()))
    again = make("RouterRegion", "Router", connections={"Billing": ""})
    again.restore(snap)
    assert again.forwarded == router.forwarded and again.inbox == router.inbox
    with pytest.raises(ValueError, match="cannot restore a RouterRegion snapshot"):
        make("Region", "Router").restore(snap)


async def test_a_rolled_back_step_forgets_what_it_forwarded() -> None:
    router = make("RouterRegion", "Router", connections={"Billing": ""}, default_route="Billing")
    router.receive(message("user", "Router", "request", "refund"))
    router.capture()
    assert (await router.make_replies()).status == "ok"
    assert len(router.forwarded) == 1 and len(router.outbox) == 1
    router.rollback()
    assert router.forwarded == {} and [e.content for e in router.requests] == ["refund"]


def test_a_bad_rule_pattern_is_refused_when_the_engine_is_built() -> None:
    bad = [{"when": {"says": "(unclosed"}, "to": "Billing"}]
    with pytest.raises(BuildError, match=r"regions\.Router\.routes\[0\]\.when\.says: invalid"):
        engine_for(workflow(desks(routes=bad), PLAN, llms=DESKS))


async def test_nothing_to_do_without_requests_or_answers() -> None:
    router = make("RouterRegion", "Router", connections={"Billing": ""})
    outcome = await router.make_replies()
    assert outcome.status == "nothing"


async def test_one_chain_forwards_answers_and_relays() -> None:
    """The plan of the docs: ``[Router.make_replies, Billing.make_replies,
    Router.make_replies]`` in one chain (deliveries inside a chain go at once)."""
    plan = [layer(main=["Router.make_replies", "Billing.make_replies", "Router.make_replies"])]
    wf = workflow(desks(routes=ROUTES), plan, llms=DESKS, inject=asks("a refund, please"))
    engine, _ = engine_for(wf)
    result = await engine.run()
    assert result.ok, result.error
    assert answers(result.outputs) == [("Router", "user0", "Billing: refund issued.")]
