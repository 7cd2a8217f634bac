"""State machines in the engine: visits, transitions, conditions, exhaustion, budgets, waits."""

from __future__ import annotations

import json
from typing import Any

import pytest

from regions_cli.engine.barrier import Barrier
from regions_cli.engine.machine import MISSING, VisitLog, field_value, holds
from regions_cli.engine.message import Message, Origin
from regions_cli.llm.base import CompletionRequest
from regions_cli.model import AllOf, AnyOf, FieldTest, Not, Says
from regions_cli.workflow.convert import build_workflow, condition
from tests.engine.engine_helpers import FakeModel, engine_for


def critic_saying(*answers: str) -> FakeModel:
    """A critic whose n-th answer is answers[n] (the last one repeats)."""
    calls: list[int] = []

    def answer(request: CompletionRequest) -> str:
        calls.append(1)
        return answers[min(len(calls), len(answers)) - 1]

    return FakeModel(answer)


def review_loop(*, max_visits: int = 4, on_exhausted: str = "fail", **extra: Any) -> Any:
    data: dict[str, Any] = {
        "version": 1,
        "name": "loop",
        "llms": {"default": {"backend": "scripted"}, "critic": {"backend": "scripted"}},
        "regions": {
            "Writer": {"type": "Region", "task": "Write.", "connections": ["Critic"]},
            "Critic": {"type": "Region", "task": "Judge.", "llm": "critic"},
            "Closer": {"type": "Region", "task": "Close."},
        },
        "inject": [{"to": "Writer", "content": "Write a poem about rain."}],
        "states": {
            "draft": {
                "plan": [{"layer": "write", "chains": {"w": ["Writer.make_questions"]}}],
                "next": [{"to": "review"}],
            },
            "review": {
                "max_visits": max_visits,
                "on_exhausted": on_exhausted,
                "plan": [{"chains": {"c": ["Critic.make_replies"]}}],
                "next": [
                    {"when": {"region": "Critic", "says": "APPROVED"}, "to": "end"},
                    {"to": "draft"},
                ],
            },
            "wrapup": {"plan": [{"chains": {"x": ["Closer.make_replies"]}}]},
        },
        **extra,
    }
    return build_workflow(data)


def path_of(recorder: Any) -> list[str]:
    return [e.state for e in recorder.of("state_entered")]


async def test_the_loop_runs_until_the_critic_approves() -> None:
    engine, recorder = engine_for(
        review_loop(), llms={"critic": critic_saying("revise", "revise", "APPROVED")}
    )
    result = await engine.run()
    assert result.status == "ok", result.error
    assert path_of(recorder) == ["draft", "review", "draft", "review", "draft", "review"]
    transitions = recorder.of("transition")
    assert [(t.state, t.to, t.rule) for t in transitions] == [
        ("draft", "review", 0),
        ("review", "draft", 1),
        ("draft", "review", 0),
        ("review", "draft", 1),
        ("draft", "review", 0),
        ("review", "end", 0),
    ]
    assert transitions[-1].reason == "Critic says /APPROVED/"
    assert [e.visit for e in recorder.of("state_entered")] == [1, 1, 2, 2, 3, 3]
    # six layers ran, each at its own position
    assert [e.layer for e in recorder.of("layer_started")] == [0, 1, 2, 3, 4, 5]
    assert result.next_layer == 6
    # message ids differ across visits of the same layer
    ids = [e.message.id for e in recorder.of("message")]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("on_exhausted", "status", "last_state"),
    [("fail", "failed", "draft"), ("end", "ok", "draft"), ("wrapup", "ok", "wrapup")],
)
async def test_max_visits_and_each_on_exhausted(
    on_exhausted: str, status: str, last_state: str
) -> None:
    engine, recorder = engine_for(
        review_loop(max_visits=2, on_exhausted=on_exhausted), llms={"critic": critic_saying("no")}
    )
    result = await engine.run()
    assert result.status == status
    assert path_of(recorder)[-1] == last_state
    assert path_of(recorder).count("review") == 2
    exhausted = [t for t in recorder.of("transition") if "exhausted" in t.reason]
    assert exhausted and exhausted[0].reason == "review exhausted (2 visits)"
    if on_exhausted == "fail":
        assert result.exit_code == 3
        assert result.error == "state review exhausted (2 visits)"


async def test_max_transitions_stops_the_run_with_exit_4() -> None:
    engine, recorder = engine_for(
        review_loop(budget={"max_transitions": 3}), llms={"critic": critic_saying("no")}
    )
    result = await engine.run()
    assert result.status == "budget_exceeded" and result.exit_code == 4
    assert "max_transitions (3) reached" in (result.error or "")
    assert len(recorder.of("transition")) == 3


async def test_max_seconds_cancels_a_slow_step_cleanly() -> None:
    import asyncio

    class Slow(FakeModel):
        async def complete(self, request: CompletionRequest, on_token: Any = None) -> Any:
            await asyncio.sleep(30)
            raise AssertionError("not reached")

    engine, recorder = engine_for(review_loop(budget={"max_seconds": 0.3}), llms={"critic": Slow()})
    result = await engine.run()
    assert result.status == "budget_exceeded" and result.exit_code == 4
    assert result.error == "budget exceeded: max_seconds (0.3 s) reached"
    assert [e.outcome for e in recorder.of("step_finished")][-1] == "cancelled"
    assert result.duration < 5


async def test_a_barrier_carries_the_cursor_and_a_resumed_run_continues_the_visit() -> None:
    barriers: list[Barrier] = []

    class Hook:
        async def at_barrier(self, barrier: Barrier) -> list[Message]:
            barriers.append(barrier)
            return []

    wf = review_loop()
    engine, _ = engine_for(wf, llms={"critic": critic_saying("revise", "APPROVED")})
    await engine.run(barrier_hook=Hook(), max_layers=3)
    last = barriers[-1]
    assert last.next_layer == 3 and last.cursor is not None and not last.finished
    assert last.cursor["state"] == "review" and last.cursor["visits"] == {"draft": 2, "review": 2}
    # a second engine continues from the barrier (as `--resume` does)
    engine2, recorder2 = engine_for(wf, llms={"critic": critic_saying("APPROVED")})
    result = await engine2.run(
        barrier_hook=Hook(),
        start_layer=last.next_layer,
        states=last.states,
        inject_initial=False,
        cursor=last.cursor,
    )
    assert result.status == "ok"
    assert [t.to for t in recorder2.of("transition")] == ["end"]
    assert barriers[-1].finished and barriers[-1].cursor["layer"] == len(wf.plan)


async def test_a_wait_pauses_until_a_message_is_injected() -> None:
    data = {
        "version": 1,
        "name": "ask",
        "llms": {"default": {"backend": "scripted"}},
        "regions": {"Interviewer": {"type": "Region", "task": "Interview."}},
        "plan": [
            {"wait": {"for": "Interviewer", "prompt": "Your name?"}},
            {"chains": {"a": ["Interviewer.make_replies"]}},
        ],
    }
    wf = build_workflow(data)
    engine, recorder = engine_for(wf)
    result = await engine.run()
    assert result.status == "waiting" and result.exit_code == 5
    assert [(w.region, w.prompt, w.layer) for w in recorder.of("wait")] == [
        ("Interviewer", "Your name?", 0)
    ]
    answer = Message("user", "Interviewer", "request", "Ada", origin=Origin(injected=True))

    async def on_wait(wait: Any) -> list[Message]:
        return [answer]

    engine2, recorder2 = engine_for(wf)
    result = await engine2.run(on_wait=on_wait)
    assert result.status == "ok", result.error
    assert [(m.destination, m.content) for m in result.outputs] == [("user", "Echo: Ada")]
    assert [e.kind for e in recorder2.events if e.kind in ("wait", "layer_started")] == [
        "layer_started",
        "layer_started",
    ]


def log(**said: str) -> VisitLog:
    return VisitLog(dict(said), [said["_out"]] if "_out" in said else [])


@pytest.mark.parametrize(
    ("raw", "said", "expected"),
    [
        ({"region": "C", "says": "APPROV"}, {"C": "I APPROVE"}, True),
        ({"region": "C", "says": "^APPROVED$"}, {"C": "not APPROVED"}, False),
        ({"region": "C", "says": "x"}, {}, False),
        ({"output": "done"}, {"_out": "all done"}, True),
        ({"output": "done"}, {"C": "done"}, False),
        ({"region": "C", "field": "v", "equals": "yes"}, {"C": '{"v": "yes"}'}, True),
        ({"region": "C", "field": "v", "equals": "yes"}, {"C": '{"v": "no"}'}, False),
        ({"region": "C", "field": "a.0", "in": [1, 2]}, {"C": '{"a": [2]}'}, True),
        ({"region": "C", "field": "a.1", "in": [1, 2]}, {"C": '{"a": [2]}'}, False),
        ({"region": "C", "field": "s", "matches": "^ok"}, {"C": '{"s": "okay"}'}, True),
        ({"region": "C", "field": "s", "matches": "^ok"}, {"C": '{"s": 5}'}, False),
        ({"region": "C", "field": "v", "equals": 1}, {"C": "not json"}, False),
        ({"all": [{"output": "a"}, {"region": "C", "says": "b"}]}, {"_out": "a", "C": "b"}, True),
        ({"all": [{"output": "a"}, {"region": "C", "says": "x"}]}, {"_out": "a", "C": "b"}, False),
        ({"any": [{"output": "z"}, {"region": "C", "says": "b"}]}, {"_out": "a", "C": "b"}, True),
        ({"any": [{"output": "z"}, {"region": "C", "says": "x"}]}, {"_out": "a", "C": "b"}, False),
        ({"not": {"region": "C", "says": "b"}}, {"C": "b"}, False),
        ({"not": {"region": "C", "says": "x"}}, {"C": "b"}, True),
    ],
)
def test_each_condition_form(raw: dict[str, Any], said: dict[str, str], expected: bool) -> None:
    assert holds(condition(raw), log(**said)) is expected


def test_conditions_build_their_types() -> None:
    built = condition({"all": [{"not": {"output": "x"}}, {"any": [{"region": "R", "says": "y"}]}]})
    assert built == AllOf((Not(Says("x")), AnyOf((Says("y", "R"),))))
    assert condition({"region": "R", "field": "a", "in": [1]}) == FieldTest("R", "a", "in", (1,))


def test_field_paths() -> None:
    doc = json.loads('{"a": {"b": [10, {"c": true}]}}')
    assert field_value(doc, "a.b.1.c") is True
    assert field_value(doc, "a.b.0") == 10
    assert field_value(doc, "a.x") is MISSING
    assert field_value(doc, "a.b.2") is MISSING


async def test_first_match_wins_in_declaration_order() -> None:
    wf = review_loop()
    # both transitions of review would match "always"-like: the first one is taken
    engine, recorder = engine_for(wf, llms={"critic": critic_saying("APPROVED")})
    await engine.run()
    assert [t.rule for t in recorder.of("transition")] == [0, 0]
