"""Typed messages on the scripted backend and the postmaster: ``output_schema`` (valid answers,
the one repair, the step failing with region, path and error) and ``input_schema`` (rule
``invalid-input`` under each undeliverable policy, injected requests too)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from engine_helpers import FakeModel, engine_for, layer, workflow

from regions_cli.build import BuildError
from regions_cli.engine.contracts import Contract, dotted, unfenced
from regions_cli.engine.message import Message
from regions_cli.exit_codes import ExitCode

VERDICT = {
    "type": "object",
    "properties": {
        "verdict": {"enum": ["approve", "reject"]},
        "note": {"type": "string", "maxLength": 40},
    },
    "required": ["verdict"],
    "additionalProperties": False,
}
GOOD = '{"verdict": "approve", "note": "clear and short"}'
BAD = '{"verdict": "maybe"}'
BAD_PROBLEM = "at verdict: 'maybe' is not one of ['approve', 'reject']"
NOT_JSON_PROBLEM = "not JSON: Expecting value: line 1 column 1 (char 0)"


def critic(rules: list[dict[str, str]], kind: str = "Region", **extra: Any) -> Any:
    """A user asks Critic (scripted by `rules`), whose replies must be a VERDICT."""
    regions: dict[str, Any] = {
        "Critic": {"type": kind, "task": "Judge the draft.", "output_schema": VERDICT, **extra}
    }
    if kind == "FeedForwardRegion":
        regions |= {"Left": {"type": "Region"}, "Right": {"type": "Region"}}
    return workflow(
        regions,
        [layer(main=["Critic.make_replies"])],
        llms={"default": {"backend": "scripted", "rules": rules}},
        inject=[{"from": "user", "to": "Critic", "role": "request", "content": "Review my draft."}],
    )


def purposes(rec: Any) -> list[str]:
    return [e.purpose for e in rec.of("llm_call")]


# -- the contract ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (GOOD, None),
        (BAD, BAD_PROBLEM),
        ("I approve.", NOT_JSON_PROBLEM),
        ("[]", "at (root): [] is not of type 'object'"),
        ('{"note": "x"}', "at (root): 'verdict' is a required property"),
        ('{"verdict": "approve", "extra": 1}', "at (root): Additional properties are not "
         "allowed ('extra' was unexpected)"),
        ('{"verdict": "reject", "note": "' + "n" * 41 + '"}',
         f"at note: '{'n' * 41}' is too long"),
    ],
)  # fmt: skip
def test_a_contract_names_the_path_and_the_error(text: str, problem: str | None) -> None:
    assert Contract(VERDICT, "regions.Critic.output_schema").problem(text) == problem


def test_paths_are_dotted_like_field_conditions() -> None:
    assert dotted(["scores", 0, "value"]) == "scores.0.value"
    assert dotted([]) == "(root)"


def test_a_long_message_is_cut_to_one_short_line() -> None:
    contract = Contract({"type": "string"}, "regions.X.input_schema")
    problem = contract.problem(json.dumps({"text": "word\n" * 100}))
    assert problem is not None and "\n" not in problem
    assert problem.startswith("at (root): {'text': 'word\\nword") and problem.endswith("...")
    assert len(problem) == len("at (root): ") + 200


def test_a_code_fence_around_the_document_is_dropped() -> None:
    assert unfenced(f"```json\n{GOOD}\n```") == GOOD
    assert unfenced(f"  {GOOD}\n") == GOOD
    assert unfenced("```") == "```"


@pytest.mark.parametrize("key", ["output_schema", "input_schema"])
def test_an_invalid_schema_is_a_build_error_naming_where(key: str) -> None:
    wf = workflow({"Critic": {"type": "Region", key: {"type": "verdict"}}})
    with pytest.raises(BuildError) as err:
        engine_for(wf)
    assert str(err.value) == (
        f"regions.Critic.{key}: not a valid JSON Schema: 'verdict' is not valid under any of "
        "the given schemas"
    )


# -- output_schema -----------------------------------------------------------------------------


async def test_a_valid_answer_is_the_reply_and_the_model_is_asked_for_the_schema() -> None:
    model = FakeModel(GOOD)
    engine, rec = engine_for(critic([]), llms={"default": model})
    result = await engine.run()
    assert result.ok, result.error
    [reply] = result.outputs
    assert (reply.destination, reply.role, reply.content) == ("user", "reply", GOOD)
    [request] = model.requests
    assert request.json_schema == VERDICT and request.purpose == "make_replies"
    assert request.messages[-1].content == (
        "Review my draft.\n\nAnswer with a JSON document only (no prose), valid against this "
        "JSON Schema:\n" + json.dumps(VERDICT)
    )
    assert purposes(rec) == ["make_replies"]


async def test_a_scripted_rule_is_returned_as_is_and_validated() -> None:
    engine, rec = engine_for(critic([{"match": "Review", "reply": f"```json\n{GOOD}\n```"}]))
    result = await engine.run()
    assert result.ok, result.error
    assert [m.content for m in result.outputs] == [GOOD]  # the fence is not part of the reply
    assert purposes(rec) == ["make_replies"]


async def test_the_scripted_default_answer_fits_the_schema() -> None:
    engine, _rec = engine_for(critic([]))
    result = await engine.run()
    assert result.ok, result.error
    [reply] = result.outputs
    assert Contract(VERDICT, "here").problem(reply.content) is None


async def test_an_invalid_answer_gets_one_repair_with_the_answer_and_the_error() -> None:
    rules = [
        {"match": "Your previous answer was", "reply": GOOD},
        {"match": "Review", "reply": BAD},
    ]
    engine, rec = engine_for(critic(rules))
    result = await engine.run()
    assert result.ok, result.error
    assert [m.content for m in result.outputs] == [GOOD]
    assert purposes(rec) == ["make_replies", "repair"]
    repair = rec.of("llm_call")[1]
    assert repair.user.endswith(
        f"\n\nYour previous answer was:\n{BAD}\n\nIt is not valid: {BAD_PROBLEM}. "
        "Answer again with the corrected JSON document only."
    )
    assert repair.user.startswith("Review my draft.\n\nAnswer with a JSON document only")
    assert [n.text for n in rec.of("notice") if n.level == "warning"] == [
        f"Critic: make_replies: invalid answer ({BAD_PROBLEM}); one repair attempt"
    ]


@pytest.mark.parametrize(("second", "problem"), [(BAD, BAD_PROBLEM), ("No.", NOT_JSON_PROBLEM)])
async def test_two_invalid_answers_fail_the_step_with_region_path_and_error(
    second: str, problem: str
) -> None:
    rules = [{"match": "Your previous answer was", "reply": second}, {"match": ".", "reply": BAD}]
    engine, rec = engine_for(critic(rules))
    result = await engine.run()
    assert result.status == "failed" and result.exit_code == ExitCode.FAILED == 3
    assert result.error == (
        "Critic.make_replies: the answer does not match regions.Critic.output_schema, even "
        f"after one repair: {problem}"
    )
    assert result.outputs == []  # nothing sent
    assert [e.content for e in engine.regions["Critic"].requests] == ["Review my draft."]
    assert purposes(rec) == ["make_replies", "repair"]
    [failed] = [e for e in rec.of("step_finished") if e.outcome == "failed"]
    assert failed.error == result.error.removeprefix("Critic.make_replies: ")


async def test_an_empty_answer_is_repaired_too() -> None:
    model = FakeModel(lambda request: GOOD if request.purpose == "repair" else "")
    engine, rec = engine_for(critic([]), llms={"default": model})
    result = await engine.run()
    assert result.ok, result.error
    assert "It is not valid: empty answer." in model.requests[1].messages[-1].content
    assert purposes(rec) == ["make_replies", "repair"]


async def test_a_feed_forward_region_sends_the_valid_document_to_every_connection() -> None:
    rules = [{"match": "Review", "reply": GOOD}]
    engine, _rec = engine_for(
        critic(rules, kind="FeedForwardRegion", connections=["Left", "Right"])
    )
    result = await engine.run()
    assert result.ok, result.error
    assert [(e.source, e.content) for e in engine.regions["Left"].replies] == [("Critic", GOOD)]
    assert [(e.source, e.content) for e in engine.regions["Right"].replies] == [("Critic", GOOD)]


async def test_without_a_schema_nothing_changes() -> None:
    wf = workflow(
        {"Critic": {"type": "Region"}},
        [layer(main=["Critic.make_replies"])],
        inject=[{"from": "user", "to": "Critic", "role": "request", "content": "Review it."}],
    )
    model = FakeModel("Looks fine.")
    engine, _rec = engine_for(wf, llms={"default": model})
    result = await engine.run()
    assert [m.content for m in result.outputs] == ["Looks fine."]
    assert model.requests[0].json_schema is None
    assert model.requests[0].messages[-1].content == "Review it."


# -- input_schema ------------------------------------------------------------------------------

ORDER = {
    "type": "object",
    "properties": {"amount": {"type": "number"}},
    "required": ["amount"],
}
ORDER_PROBLEM = "at amount: 'ten' is not of type 'number'"
ORDER_REASON = f"the request does not match regions.Billing.input_schema: {ORDER_PROBLEM}"
NOT_JSON_REASON = f"the request does not match regions.Billing.input_schema: {NOT_JSON_PROBLEM}"


def rejection(rec: Any) -> tuple[str, str, str]:
    """The rule, action and reason of the one rejected message."""
    [rejected] = rec.of("message_rejected")
    return rejected.rule, rejected.action, rejected.reason


def asking_billing(question: str, delivery: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """Desk asks Billing (which takes only ORDER requests) `question`."""
    wf = workflow(
        {
            "Desk": {"type": "Region", "connections": ["Billing"]},
            "Billing": {"type": "Region", "input_schema": ORDER},
            "Fallback": {"type": "Region"},
        },
        [layer(main=["Desk.make_questions"])],
        delivery=delivery or {},
    )
    answer = json.dumps([{"source": "Billing", "question": question}])
    return engine_for(wf, llms={"default": FakeModel(answer)})


async def test_a_valid_request_is_delivered() -> None:
    engine, rec = asking_billing('{"amount": 10}')
    result = await engine.run()
    assert result.ok, result.error
    assert [e.content for e in engine.regions["Billing"].requests] == ['{"amount": 10}']
    assert rec.of("message_rejected") == []


async def test_an_invalid_request_fails_the_step_under_error() -> None:
    engine, rec = asking_billing('{"amount": "ten"}')
    result = await engine.run()
    assert result.status == "failed" and result.exit_code == 3
    assert result.error == (
        f"Desk.make_questions: undeliverable message from Desk to 'Billing': {ORDER_REASON}"
    )
    assert rejection(rec) == ("invalid-input", "error", ORDER_REASON)
    assert engine.regions["Billing"].requests == []


async def test_an_invalid_request_is_dropped_under_drop() -> None:
    engine, rec = asking_billing("How much?", {"undeliverable": "drop"})
    await engine.run()
    assert rejection(rec) == ("invalid-input", "drop", NOT_JSON_REASON)
    assert engine.regions["Billing"].requests == []


async def test_an_invalid_request_is_returned_to_its_sender_under_return() -> None:
    engine, rec = asking_billing('{"amount": "ten"}', {"undeliverable": "return"})
    await engine.run()
    assert rejection(rec) == ("invalid-input", "return", ORDER_REASON)
    assert [(e.source, e.content) for e in engine.regions["Desk"].replies] == [
        (
            "postmaster",
            f"Could not deliver message to 'Billing' ({ORDER_REASON}). "
            'Content: {"amount": "ten"}',
        )
    ]
    assert engine.regions["Billing"].requests == []


async def test_an_invalid_request_goes_to_the_reroute_target_under_reroute() -> None:
    engine, rec = asking_billing(
        '{"amount": "ten"}', {"undeliverable": "reroute", "reroute_to": "Fallback"}
    )
    await engine.run()
    assert rejection(rec) == ("invalid-input", "reroute", ORDER_REASON)
    assert [e.content for e in engine.regions["Fallback"].requests] == ['{"amount": "ten"}']
    assert engine.regions["Billing"].requests == []


async def test_replies_to_a_region_with_an_input_schema_are_not_checked() -> None:
    wf = workflow(
        {
            "Billing": {"type": "Region", "input_schema": ORDER, "connections": ["Clerk"]},
            "Clerk": {"type": "Region"},
        },
        [layer(main=["Billing.make_replies", "Clerk.make_replies"])],
        inject=[{"from": "Clerk", "to": "Billing", "role": "request", "content": '{"amount": 3}'}],
    )
    engine, rec = engine_for(wf, llms={"default": FakeModel("free text")})
    await engine.inject([Message("Clerk", "Billing", "reply", "not JSON at all")])
    result = await engine.run()
    assert result.ok, result.error
    assert rec.of("message_rejected") == []
    assert [e.content for e in engine.regions["Billing"].replies] == ["not JSON at all"]


@pytest.mark.parametrize(
    ("policy", "action"), [("error", "drop"), ("drop", "drop"), ("return", "return")]
)
async def test_an_injected_invalid_request_is_rejected_and_reported(
    policy: str, action: str
) -> None:
    wf = workflow(
        {"Billing": {"type": "Region", "input_schema": ORDER}},
        [layer(main=["Billing.make_replies"])],
        delivery={"undeliverable": policy},
        inject=[{"from": "user", "to": "Billing", "role": "request", "content": "Ten, please."}],
    )
    engine, rec = engine_for(wf)
    result = await engine.run()
    assert rejection(rec) == ("invalid-input", action, NOT_JSON_REASON)
    assert [n.text for n in rec.of("notice") if n.level == "error"] == [
        f"injected message from user to Billing: {NOT_JSON_REASON}"
    ]
    assert engine.regions["Billing"].requests == []
    returned = [m.content for m in result.outputs]
    expected = f"Could not deliver message to 'Billing' ({NOT_JSON_REASON}). Content: Ten, please."
    assert returned == ([expected] if policy == "return" else [])
