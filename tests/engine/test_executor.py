"""The executor: ordering, concurrency, timeouts, retries, failure policies, cancellation,
budgets, barriers and resumption."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import FakeModel, engine_for, layer, workflow

from regions_cli.engine.barrier import Barrier
from regions_cli.engine.message import Message, Origin
from regions_cli.llm.base import CompletionRequest, LLMError


def pair(**extra: Any) -> dict[str, Any]:
    return {
        "A": {"type": "Region", "task": "ask", "connections": ["B"], **extra},
        "B": {"type": "Region", "task": "answer"},
    }


async def test_a_later_step_sees_the_earlier_steps_messages() -> None:
    wf = workflow(
        pair(), [layer(main=["A.make_questions", "B.make_replies", "A.summarize_replies"])]
    )
    engine, rec = engine_for(wf)
    result = await engine.run()
    assert result.ok
    outcomes = [(e.region, e.method, e.outcome) for e in rec.of("step_finished")]
    assert outcomes == [
        ("A", "make_questions", "ok"),
        ("B", "make_replies", "ok"),  # saw A's question: not "nothing"
        ("A", "summarize_replies", "ok"),  # saw B's answer
    ]
    assert len(engine.regions["A"].replies) == 1


async def test_chains_of_a_layer_run_concurrently() -> None:
    regions = {f"R{i}": {"type": "Region", "task": "t"} for i in range(4)}
    inject = [{"from": "user", "to": f"R{i}", "role": "request", "content": "q"} for i in range(4)]
    plan = [{"chains": {f"c{i}": [f"R{i}.make_replies"] for i in range(4)}}]
    llms = {"default": {"backend": "scripted", "latency": 0.2}}
    engine, _rec = engine_for(workflow(regions, plan, llms=llms, inject=inject))
    started = time.perf_counter()
    result = await engine.run()
    elapsed = time.perf_counter() - started
    assert result.ok and len(result.outputs) == 4
    assert elapsed < 0.6, f"4 chains x 0.2 s took {elapsed:.2f} s: not concurrent"


async def test_steps_of_a_chain_run_in_order_not_concurrently() -> None:
    regions = {f"R{i}": {"type": "Region", "task": "t"} for i in range(3)}
    inject = [{"from": "user", "to": f"R{i}", "role": "request", "content": "q"} for i in range(3)]
    plan = [layer(main=[f"R{i}.make_replies" for i in range(3)])]
    llms = {"default": {"backend": "scripted", "latency": 0.1}}
    engine, rec = engine_for(workflow(regions, plan, llms=llms, inject=inject))
    started = time.perf_counter()
    assert (await engine.run()).ok
    assert time.perf_counter() - started >= 0.3
    steps = rec.of("step_started") + rec.of("step_finished")
    steps.sort(key=rec.events.index)
    kinds = [(e.kind, e.region) for e in steps]
    assert kinds == [(k, f"R{i}") for i in range(3) for k in ("step_started", "step_finished")]


async def test_sync_methods_run_in_order_on_the_loop() -> None:
    """Methods without I/O (broadcast, clear_replies...) run on the event loop's thread, one
    after the other: none is started early in a thread pool (the original's weak point)."""
    regions = {
        "Hub": {"type": "BroadcastRegion", "task": "relay", "connections": ["A"]},
        "A": {"type": "Region", "task": "listen"},
    }
    wf = workflow(
        regions,
        [layer(main=["Hub.broadcast", "A.keep_last_reply_per_source", "A.clear_replies"])],
        inject=[{"from": "x", "to": "Hub", "role": "reply", "content": "news"}],
    )
    engine, rec = engine_for(wf)
    calls: list[tuple[str, int, int]] = []
    for label in ("Hub.broadcast", "A.keep_last_reply_per_source", "A.clear_replies"):
        name, method = label.split(".")
        original = getattr(engine.regions[name], method)

        async def traced(original: Any = original, label: str = label) -> Any:
            calls.append((label, threading.get_ident(), len(engine.regions["A"].replies)))
            return await original()

        setattr(engine.regions[name], method, traced)
    assert (await engine.run()).ok
    loop_thread = threading.get_ident()
    assert calls == [  # A saw the broadcast copy before pruning and clearing it
        ("Hub.broadcast", loop_thread, 0),
        ("A.keep_last_reply_per_source", loop_thread, 1),
        ("A.clear_replies", loop_thread, 1),
    ]
    assert [e.outcome for e in rec.of("step_finished")] == ["ok", "ok", "ok"]
    assert engine.regions["A"].replies == []


async def test_a_method_with_nothing_to_do_is_reported() -> None:
    engine, rec = engine_for(workflow(pair(), [layer(main=["B.make_replies"])]))
    result = await engine.run()
    [finished] = rec.of("step_finished")
    assert finished.outcome == "nothing" and finished.detail == "no incoming requests"
    assert result.ok and result.counts["outcome_nothing"] == 1


async def test_timeout_then_retry_succeeds() -> None:
    calls = 0

    class SlowOnce(FakeModel):
        async def complete(self, request: CompletionRequest, on_token: Any = None) -> Any:
            nonlocal calls
            calls += 1
            if calls == 1:
                await asyncio.sleep(10)
            return await super().complete(request, on_token)

    wf = workflow(
        pair(),
        [layer(main=[{"step": "B.make_replies", "timeout": 0.05, "retries": 1}])],
        inject=[{"from": "user", "to": "B", "role": "request", "content": "q"}],
    )
    engine, rec = engine_for(wf, llms={"default": SlowOnce("answer")})
    result = await engine.run()
    assert result.ok
    assert [(e.outcome, e.attempt) for e in rec.of("step_finished")] == [("timeout", 1), ("ok", 2)]
    assert [e.attempt for e in rec.of("step_started")] == [1, 2]
    assert [m.content for m in result.outputs] == ["answer"]  # answered once, not twice


async def test_timeout_and_retries_come_from_defaults_unless_a_step_overrides_them() -> None:
    class Hang(FakeModel):
        async def complete(self, request: CompletionRequest, on_token: Any = None) -> Any:
            await asyncio.sleep(10)

    wf = workflow(
        {**pair(), "C": {"type": "Region", "task": "t"}},
        [{"chains": {"a": ["B.make_replies"], "c": [{"step": "C.make_replies", "retries": 0}]}}],
        inject=[
            {"from": "user", "to": "B", "role": "request", "content": "q"},
            {"from": "user", "to": "C", "role": "request", "content": "q"},
        ],
        defaults={"timeout": 0.05, "retries": 2},
    )
    engine, rec = engine_for(wf, llms={"default": Hang()})
    result = await engine.run()
    assert result.status == "failed"
    attempts = [(e.region, e.outcome, e.attempt) for e in rec.of("step_finished")]
    assert sorted(attempts) == [
        ("B", "timeout", 1),
        ("B", "timeout", 2),
        ("B", "timeout", 3),  # defaults: 0.05 s, 2 retries
        ("C", "timeout", 1),  # its own retries: 0 wins over the defaults
    ]


async def test_timeout_without_retries_fails_and_keeps_state() -> None:
    class Hang(FakeModel):
        async def complete(self, request: CompletionRequest, on_token: Any = None) -> Any:
            await asyncio.sleep(10)

    wf = workflow(
        pair(),
        [
            layer(main=[{"step": "B.make_replies", "timeout": 0.05}]),
            layer(main=["A.clear_replies"]),
        ],
        inject=[{"from": "user", "to": "B", "role": "request", "content": "q"}],
    )
    engine, _rec = engine_for(wf, llms={"default": Hang()})
    result = await engine.run()
    assert result.status == "failed" and result.exit_code == 3
    assert result.counts["layers_run"] == 1  # on_failure: stop ends the run after the layer
    assert [e.content for e in engine.regions["B"].requests] == ["q"]  # not erased
    assert "timed out after 0.05 s" in (result.error or "")


async def test_retries_exhausted_report_every_attempt() -> None:
    wf = workflow(
        pair(),
        [layer(main=[{"step": "A.make_questions", "retries": 2, "on_false": "fail"}])],
    )
    engine, rec = engine_for(wf, llms={"default": FakeModel(LLMError("down"))})
    result = await engine.run()
    assert [(e.outcome, e.attempt) for e in rec.of("step_finished")] == [
        ("failed", 1),
        ("failed", 2),
        ("failed", 3),
    ]
    assert len(rec.of("llm_call")) == 3 and all(e.error for e in rec.of("llm_call"))
    assert result.status == "failed"


async def test_false_outcome_warns_by_default() -> None:
    wf = workflow(pair(), [layer(main=["A.make_questions"])])
    engine, rec = engine_for(wf, llms={"default": FakeModel("not json")})
    result = await engine.run()
    assert result.ok
    [finished] = rec.of("step_finished")
    assert finished.outcome == "false"
    assert any(n.level == "warning" for n in rec.of("notice"))


async def test_on_failure_stop_skips_the_rest_of_the_chain_but_finishes_the_layer() -> None:
    regions = {**pair(), "C": {"type": "Region", "task": "t"}}
    wf = workflow(
        regions,
        [
            {
                "chains": {
                    "bad": [{"step": "A.make_questions", "on_false": "fail"}, "A.clear_replies"],
                    "good": ["C.clear_replies", "C.keep_last_reply_per_source"],
                }
            },
            layer(main=["B.clear_replies"]),
        ],
    )
    engine, rec = engine_for(wf, llms={"default": FakeModel("no json")})
    result = await engine.run()
    ran = [
        e.label if hasattr(e, "label") else f"{e.region}.{e.method}"
        for e in rec.of("step_finished")
    ]
    assert "A.clear_replies" not in ran
    assert {"C.clear_replies", "C.keep_last_reply_per_source"} <= set(ran)
    assert "B.clear_replies" not in ran  # the next layer never ran
    assert result.status == "failed" and result.next_layer == 1
    assert any("skipped" in n.text for n in rec.of("notice"))


async def test_on_failure_continue_runs_on_but_reports_failure() -> None:
    wf = workflow(
        pair(),
        [
            layer(
                main=[
                    {"step": "A.make_questions", "on_false": "fail", "on_failure": "continue"},
                    "A.clear_replies",
                ]
            ),
            layer(main=["B.clear_replies"]),
        ],
    )
    engine, rec = engine_for(wf, llms={"default": FakeModel("no json")})
    result = await engine.run()
    assert len(rec.of("step_finished")) == 3
    assert result.status == "failed" and result.counts["layers_run"] == 2


@pytest.mark.parametrize("failure", ["model error", "wipes then raises"])
async def test_a_failed_step_never_erases_knowledge(failure: str) -> None:
    wf = workflow(
        pair(),
        [layer(main=[{"step": "A.summarize_replies", "on_false": "fail"}])],
        inject=[{"from": "x", "to": "A", "role": "reply", "content": "precious"}],
    )
    engine, rec = engine_for(wf, llms={"default": FakeModel(LLMError("boom"))})
    region = engine.regions["A"]
    if failure == "wipes then raises":  # a method that erased its knowledge before failing

        async def wipe_then_fail() -> Any:
            region.replies = []
            raise RuntimeError("broken half way")

        region.summarize_replies = wipe_then_fail  # type: ignore[method-assign]
    result = await engine.run()
    assert result.status == "failed"
    assert [e.outcome for e in rec.of("step_finished")] == ["failed"]
    assert [e.content for e in region.replies] == ["precious"]


async def test_a_model_that_fails_for_good_fails_the_run_and_keeps_the_request() -> None:
    """A refused connection or a rejected key (the backend's retries spent) is a failed step,
    exit code 3, not a run that "succeeds" with nothing answered; the request stays pending."""
    wf = workflow(
        pair(),
        [layer(main=["B.make_replies"])],
        inject=[{"from": "user", "to": "B", "role": "request", "content": "q"}],
    )
    engine, rec = engine_for(wf, llms={"default": FakeModel(LLMError("401 rejected"))})
    result = await engine.run()
    assert (result.status, result.exit_code) == ("failed", 3)
    [finished] = rec.of("step_finished")
    assert finished.outcome == "failed" and "401 rejected" in (finished.error or "")
    assert [e.content for e in engine.regions["B"].requests] == ["q"]
    assert result.outputs == []


async def test_cancellation_ends_the_run_cleanly_with_exit_code_130() -> None:
    wf = workflow(
        {f"R{i}": {"type": "Region", "task": "t"} for i in range(2)},
        [{"chains": {"c0": ["R0.make_replies"], "c1": ["R1.make_replies"]}}],
        llms={"default": {"backend": "scripted", "latency": 30}},
        inject=[{"from": "u", "to": f"R{i}", "role": "request", "content": "q"} for i in range(2)],
    )
    engine, rec = engine_for(wf)
    both_running = asyncio.Event()
    engine.bus.subscribe(lambda e: both_running.set() if len(rec.of("step_started")) == 2 else None)
    task = asyncio.create_task(engine.run())
    await both_running.wait()
    task.cancel()
    result = await task
    assert result.status == "interrupted" and result.exit_code == 130
    assert sorted(e.outcome for e in rec.of("step_finished")) == ["cancelled", "cancelled"]
    assert rec.kinds()[-1] == "run_finished"
    assert rec.of("layer_finished")[0].ok is False
    for name in ("R0", "R1"):  # rolled back: the request is still there to answer on resume
        assert len(engine.regions[name].requests) == 1


async def test_budget_exceeded_stops_at_the_next_barrier() -> None:
    wf = workflow(
        pair(),
        [
            layer(main=["A.make_questions"]),
            layer(main=["B.make_replies"]),
            layer(main=["A.clear_replies"]),
        ],
        budget={"max_calls": 1},
    )
    engine, _rec = engine_for(wf)
    result = await engine.run()
    assert result.status == "budget_exceeded" and result.exit_code == 4
    assert result.counts["layers_run"] == 2  # 1 call, then 2 calls > 1: stop after layer 1
    assert result.next_layer == 2
    assert result.counts["llm_calls"] == 2


async def test_per_region_token_budget() -> None:
    wf = workflow(
        pair(),
        [layer(main=["A.make_questions"]), layer(main=["B.make_replies"])],
        budget={"per_region": {"max_tokens": 5}},
    )
    engine, _rec = engine_for(wf)
    result = await engine.run()
    assert result.status == "budget_exceeded"
    assert result.counts["layers_run"] == 1 and "region A" in (result.error or "")
    assert result.tokens.total_tokens > 5


class Hook:
    """A barrier hook that records barriers and injects a message at one of them."""

    def __init__(self, inject_at: int | None = None, message: Message | None = None) -> None:
        self.barriers: list[Barrier] = []
        self.inject_at = inject_at
        self.message = message

    async def at_barrier(self, barrier: Barrier) -> Sequence[Message]:
        self.barriers.append(barrier)
        if barrier.next_layer == self.inject_at and self.message is not None:
            return [self.message]
        return []


async def test_barrier_hook_sees_every_barrier_and_can_inject() -> None:
    wf = workflow(
        pair(),
        [layer(main=["A.make_questions"]), layer(main=["B.make_replies"])],
        inject=[{"from": "user", "to": "A", "role": "reply", "content": "ctx"}],
    )
    extra = Message("user", "B", "request", "and you?", origin=Origin(layer=1, injected=True))
    hook = Hook(inject_at=1, message=extra)
    engine, _rec = engine_for(wf)
    result = await engine.run(barrier_hook=hook)
    assert [b.next_layer for b in hook.barriers] == [0, 1, 2]
    assert hook.barriers[0].states["A"]["replies"][0]["content"] == "ctx"  # after inject:
    json.dumps([dict(b.states) for b in hook.barriers])
    assert "Echo: and you?" in [m.content for m in result.outputs]


async def test_running_layer_by_layer_with_restored_states_matches_one_run() -> None:
    plan = [
        layer(main=["A.make_questions"]),
        layer(main=["B.make_replies"]),
        layer(main=["A.summarize_replies"]),
    ]
    wf = workflow(
        pair(), plan, inject=[{"from": "user", "to": "A", "role": "reply", "content": "c"}]
    )

    whole, whole_rec = engine_for(wf)
    await whole.run()

    hook = Hook()
    first, _ = engine_for(wf)
    r1 = await first.run(barrier_hook=hook, max_layers=1)
    assert r1.next_layer == 1 and r1.counts["layers_run"] == 1
    saved = hook.barriers[-1]
    # a new process: a fresh engine resumes from the saved barrier
    second, second_rec = engine_for(wf)
    r2 = await second.run(start_layer=saved.next_layer, states=saved.states, inject_initial=False)
    assert r2.ok and second_rec.of("run_started")[0].resumed_from_layer == 1
    assert second.snapshot() == whole.snapshot()
    ids_whole = [e.message.id for e in whole_rec.of("message")]
    ids_split = [e.message.id for e in second_rec.of("message")]
    assert ids_split == ids_whole[-len(ids_split) :]


async def test_message_ids_are_deterministic_across_runs() -> None:
    plan = [layer(main=["A.make_questions"]), layer(main=["B.make_replies"])]
    wf = workflow(pair(), plan, inject=[{"from": "u", "to": "A", "role": "reply", "content": "c"}])
    ids = []
    for _ in range(2):
        engine, rec = engine_for(wf)
        await engine.run()
        ids.append([e.message.id for e in rec.of("message")])
    assert ids[0] == ids[1] and len(set(ids[0])) == len(ids[0]) == 3


async def test_reply_ids_chain_to_the_request_they_answer() -> None:
    wf = workflow(pair(), [layer(main=["A.make_questions", "B.make_replies"])])
    engine, rec = engine_for(wf)
    await engine.run()
    question, answer = (e.message for e in rec.of("message"))
    assert answer.cause == question.id
    assert question.origin == Origin(layer=0, chain="main", step=0, ordinal=0)


async def test_unknown_method_fails_the_step_not_the_process() -> None:
    wf = workflow(pair(), [layer(main=["A.broadcast"])])
    engine, rec = engine_for(wf)
    result = await engine.run()
    assert result.status == "failed"
    assert "has no such method" in rec.of("step_finished")[0].error


async def test_a_bug_in_a_method_is_a_failed_step() -> None:
    wf = workflow(pair(), [{"chains": {"a": ["A.clear_replies"], "b": ["B.clear_replies"]}}])
    engine, rec = engine_for(wf)

    async def broken() -> Any:
        raise KeyError("oops")

    engine.regions["A"].clear_replies = broken  # type: ignore[method-assign]
    result = await engine.run()
    outcomes = {e.region: e.outcome for e in rec.of("step_finished")}
    assert outcomes == {"A": "failed", "B": "nothing"}
    assert "KeyError" in (result.error or "")


async def test_event_sequence_of_a_run() -> None:
    wf = workflow(pair(), [layer(main=["B.make_replies"])])
    engine, rec = engine_for(wf)
    await engine.run()
    assert rec.kinds() == [
        "run_started",
        "layer_started",
        "step_started",
        "region_status",
        "step_finished",
        "layer_finished",
        "run_finished",
    ]


async def test_streaming_tokens_are_events() -> None:
    wf = workflow(
        pair(),
        [layer(main=["B.make_replies"])],
        llms={"default": {"backend": "scripted", "stream": True, "fallback": "one two three"}},
        inject=[{"from": "u", "to": "B", "role": "request", "content": "q"}],
    )
    engine, rec = engine_for(wf)
    await engine.run()
    assert "".join(e.text for e in rec.of("token")) == "one two three"
    assert {e.region for e in rec.of("token")} == {"B"}


async def test_aclose_is_idempotent() -> None:
    engine, _ = engine_for(workflow(pair(), [layer(main=["B.make_replies"])]))
    await engine.aclose()
    await engine.aclose()


async def test_a_failing_barrier_hook_ends_the_run_with_a_clear_error() -> None:
    class Broken:
        async def at_barrier(self, barrier: Barrier) -> Sequence[Message]:
            raise OSError("disk full")

    engine, rec = engine_for(workflow(pair(), [layer(main=["B.make_replies"])]))
    result = await engine.run(barrier_hook=Broken())
    assert result.status == "failed" and result.exit_code == 3
    assert result.error == "OSError: disk full"
    assert rec.kinds()[-1] == "run_finished"


async def test_restoring_state_of_an_unknown_region_is_an_error() -> None:
    engine, _rec = engine_for(workflow(pair(), [layer(main=["B.make_replies"])]))
    result = await engine.run(states={"Ghost": {"type": "Region"}})
    assert result.status == "failed" and "Ghost" in (result.error or "")


async def test_one_region_in_two_chains_runs_one_step_at_a_time() -> None:
    wf = workflow(
        pair(),
        [{"chains": {"x": ["B.make_replies"], "y": ["B.make_replies"]}}],
        llms={"default": {"backend": "scripted", "latency": 0.05}},
        inject=[{"from": "u", "to": "B", "role": "request", "content": "q"}],
    )
    engine, rec = engine_for(wf)
    result = await engine.run()
    assert [e.outcome for e in rec.of("step_finished")] == ["ok", "nothing"]
    assert len(result.outputs) == 1  # answered once


async def test_a_resumed_listener_keeps_writing_to_its_sink(tmp_path: Path) -> None:
    sink = tmp_path / "trace.jsonl"
    regions = {**pair(), "Trace": {"type": "ListenerRegion", "sink": str(sink)}}
    plan = [
        layer(main=["Trace.start", "A.make_questions"]),
        layer(main=["B.make_replies", "Trace.stop"]),
    ]
    wf = workflow(regions, plan)
    hook = Hook()
    first, _ = engine_for(wf)
    await first.run(barrier_hook=hook, max_layers=1)
    await first.aclose()
    assert hook.barriers[-1].states["Trace"]["extra"]["started"] is True
    second, _ = engine_for(wf)
    await second.run(start_layer=1, states=hook.barriers[-1].states, inject_initial=False)
    await second.aclose()
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    assert [(m["source"], m["destination"]) for m in lines] == [("A", "B"), ("B", "A")]


async def test_an_empty_plan_runs_its_injections_and_one_barrier() -> None:
    wf = workflow(pair(), [], inject=[{"from": "u", "to": "A", "role": "reply", "content": "c"}])
    engine, _rec = engine_for(wf)
    hook = Hook()
    result = await engine.run(barrier_hook=hook)
    assert result.ok and result.counts["layers_run"] == 0 and result.next_layer == 0
    assert [b.next_layer for b in hook.barriers] == [0]
    assert len(engine.regions["A"].replies) == 1


async def test_runs_of_one_engine_cannot_overlap() -> None:
    wf = workflow(
        pair(),
        [layer(main=["B.make_replies"])],
        llms={"default": {"backend": "scripted", "latency": 0.05}},
        inject=[{"from": "u", "to": "B", "role": "request", "content": "q"}],
    )
    engine, _ = engine_for(wf)
    first = asyncio.create_task(engine.run())
    await asyncio.sleep(0)  # let the first run start
    with pytest.raises(RuntimeError, match="already running"):
        await engine.run()
    assert (await first).ok
    assert (await engine.run(start_layer=1)).ok  # after it ended, a new run may start


async def test_a_malformed_saved_state_is_a_clear_failure() -> None:
    engine, _ = engine_for(workflow(pair(), [layer(main=["B.make_replies"])]))
    result = await engine.run(states={"A": {"type": "Region", "replies": [{"oops": 1}]}})
    assert result.status == "failed"
    assert "saved state of region A is malformed" in (result.error or "")
