"""WorkflowRegion: each request runs another workflow file, whose output is the reply."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import engine_for, layer, make, message, workflow

from regions_cli.build import build_engine
from regions_cli.engine.events import EventBus
from regions_cli.engine.executor import initial_messages
from regions_cli.engine.regions.workflow import MAX_DEPTH, NO_OUTPUT, SubWorkflowError
from regions_cli.llm.base import CompletionRequest
from regions_cli.llm.factory import LLMOptions
from regions_cli.model import Workflow
from regions_cli.workflow.convert import build_workflow

SUB = """\
version: 1
name: summarize
llms:
  default:
    backend: scripted
    latency: {latency}
    rules:
      - {{match: "FAIL", error: "the model is down"}}
      - {{match: "EMPTY", reply: ""}}
      - {{match: "You are Summarizer", reply: "In short: it is about cats."}}
regions:
  Summarizer:
    type: Region
    task: Summarize the request in one sentence.
  Idle:
    type: Region
    task: Say nothing.
{inject}
plan:
  - chains: {{main: [{steps}]}}
"""


def sub_file(
    folder: Path,
    *,
    steps: str = "Summarizer.make_replies",
    inject: str = "",
    latency: float = 0,
    name: str = "summarize.yaml",
) -> Path:
    path = folder / name
    path.write_text(SUB.format(steps=steps, inject=inject, latency=latency), encoding="utf-8")
    return path


def parent(
    sub: Path,
    *texts: str,
    source: Path | None = None,
    timeout: float = 300,
    llms: dict[str, Any] | None = None,
    **region: Any,
) -> Workflow:
    """A workflow whose one region, Summary, runs `sub` for each of `texts` from ``user``
    (with no ``llms:`` of its own unless given)."""
    wf = workflow(
        {"Summary": {"type": "WorkflowRegion", "workflow": str(sub), **region}},
        [layer(main=["Summary.make_replies"])],
        llms=llms or {},
        inject=[{"from": "user", "to": "Summary", "content": t} for t in texts],
        defaults={"timeout": timeout},
    )
    return replace(wf, source=source) if source is not None else wf


async def test_each_request_runs_the_sub_workflow_and_gets_its_output(tmp_path: Path) -> None:
    wf = parent(sub_file(tmp_path), "A long story about cats.", "Another one.")
    engine, rec = engine_for(wf)
    result = await engine.run()
    assert result.ok, result.error
    assert [(m.source, m.destination, m.content) for m in result.outputs] == [
        ("Summary", "user", "In short: it is about cats."),
        ("Summary", "user", "In short: it is about cats."),
    ]
    assert [m.cause for m in result.outputs] == [m.id for m in initial_messages(wf)]
    # The sub-runs' model calls count against the region in the enclosing budget.
    assert engine.budget.per_region["Summary"].calls == 2
    assert result.tokens.total_tokens > 0
    step = next(e for e in rec.of("step_finished") if e.region == "Summary")
    assert step.outcome == "ok" and step.detail == "ran summarize for 2 requests"
    assert not list(tmp_path.glob("**/*.db")) and not list(tmp_path.glob("runs"))  # no run file


async def test_the_request_replaces_the_sub_workflows_requests_to_its_entry(
    tmp_path: Path,
) -> None:
    """The sub-workflow's sample request to its entry is left out; its other injected
    messages (here a reply that the entry keeps as knowledge) are kept."""
    inject = (
        "inject:\n"
        '  - {from: user, to: Summarizer, content: "A sample text to summarize alone."}\n'
        '  - {from: editor, to: Summarizer, role: reply, content: "House style: terse."}\n'
        '  - {from: user, to: Idle, content: "Stay quiet."}'
    )
    rules = '      - {{match: "House style: terse", reply: "Terse: cats."}}\n'
    sub = sub_file(tmp_path, inject=inject)
    text = sub.read_text(encoding="utf-8")
    sub.write_text(text.replace("    rules:\n", "    rules:\n" + rules.format()), encoding="utf-8")
    engine, _ = engine_for(parent(sub, "The request."))  # entry: the first inject's destination
    result = await engine.run()
    assert result.ok, result.error
    assert [m.content for m in result.outputs] == ["Terse: cats."]  # one answer: ours


async def test_the_request_comes_from_the_regions_name(tmp_path: Path) -> None:
    """Inside the sub-workflow the request's source is the WorkflowRegion's name (an external
    address there), which is where the entry's answer goes."""
    sub = tmp_path / "echo.yaml"
    sub.write_text(
        "version: 1\nname: echo\nllms: {default: {backend: scripted}}\n"
        "regions: {Echo: {type: Region, task: Repeat.}}\n"
        "plan:\n  - chains: {main: [Echo.make_replies]}\n",
        encoding="utf-8",
    )
    bus = EventBus()
    seen: list[Any] = []
    engine = build_engine(parent(sub, "Say hi."), bus)
    region = engine.regions["Summary"]
    real = region.context.subworkflows

    class Spy:
        lineage = real.lineage

        def load(self, path: Path) -> Workflow:
            return real.load(path)

        async def build(self, wf: Workflow, sub_bus: EventBus) -> Any:
            sub_bus.subscribe(seen.append)
            return await real.build(wf, sub_bus)

    region.context.subworkflows = Spy()
    result = await engine.run()
    await engine.aclose()
    assert result.ok, result.error
    delivered = [e.message for e in seen if e.kind == "message"]
    assert [(m.source, m.destination, m.content) for m in delivered][:1] == [
        ("Summary", "Echo", "Say hi.")
    ]
    assert result.outputs[0].content.startswith("Echo: ")


async def test_the_enclosing_workflows_endpoints_replace_the_ones_of_the_same_name(
    tmp_path: Path,
) -> None:
    """`--llm default=...` on the enclosing run reaches its sub-workflows: an ``llms:`` name
    both declare is the enclosing run's model (the same object)."""
    host = {"default": {"backend": "scripted", "fallback": "From the host."}}
    wf = parent(sub_file(tmp_path), "Hello", llms=host)
    engine, _ = engine_for(wf)
    result = await engine.run()
    assert [m.content for m in result.outputs] == ["From the host."]
    assert engine.budget.per_region["Summary"].calls == 1
    # Only implied (no `llms:` block): the sub-workflow keeps its own.
    implied = build_workflow(
        {
            "version": 1,
            "name": "host",
            "regions": {
                "Summary": {"type": "WorkflowRegion", "workflow": str(tmp_path / "summarize.yaml")}
            },
            "plan": [layer(main=["Summary.make_replies"])],
            "inject": [{"from": "user", "to": "Summary", "content": "Hello"}],
        }
    )
    assert implied.llms["default"].implied
    engine, _ = engine_for(implied)
    result = await engine.run()
    assert [m.content for m in result.outputs] == ["In short: it is about cats."]


async def test_a_sub_workflow_with_no_output_is_answered_so(tmp_path: Path) -> None:
    engine, rec = engine_for(parent(sub_file(tmp_path, steps="Idle.make_replies"), "Hello"))
    result = await engine.run()
    assert [m.content for m in result.outputs] == [NO_OUTPUT.format(name="summarize")]
    step = next(e for e in rec.of("step_finished") if e.region == "Summary")
    assert step.outcome == "false" and "1 produced no output" in step.detail


async def test_a_failed_sub_run_fails_the_step_with_its_reason(tmp_path: Path) -> None:
    engine, _ = engine_for(parent(sub_file(tmp_path), "please FAIL"))
    result = await engine.run()
    assert result.status == "failed"
    assert "SubWorkflowError: sub-workflow summarize ended failed" in (result.error or "")
    assert "the model is down" in (result.error or "")
    assert [e.content for e in engine.regions["Summary"].requests] == ["please FAIL"]  # kept
    assert result.outputs == []


async def test_the_sub_runs_warnings_are_the_regions_notices(tmp_path: Path) -> None:
    engine, rec = engine_for(parent(sub_file(tmp_path), "EMPTY"))  # the sub's model says ""
    result = await engine.run()
    assert [m.content for m in result.outputs] == [NO_OUTPUT.format(name="summarize")]
    notices = [e.text for e in rec.of("notice") if e.region == "Summary"]
    expected = "Summarizer.make_replies: 1/1 request got no answer (kept pending)"
    assert f"Summary: sub-workflow: {expected}" in notices, notices


async def test_a_sub_workflow_with_errors_fails_the_step_with_the_first(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: bad\nregions: {}\nplan:\n  - chains: {m: [Nobody.x]}\n")
    engine, _ = engine_for(parent(bad, "Hello"))
    result = await engine.run()
    assert result.status == "failed"
    assert f"sub-workflow {bad}:" in (result.error or "")
    missing = tmp_path / "missing.yaml"
    engine, _ = engine_for(parent(missing, "Hello"))
    result = await engine.run()
    assert result.status == "failed" and "missing.yaml" in (result.error or "")


async def test_an_unknown_entry_and_a_name_clash_are_refused(tmp_path: Path) -> None:
    sub = sub_file(tmp_path)
    engine, _ = engine_for(parent(sub, "Hello", entry="Nobody"))
    result = await engine.run()
    assert "summarize.yaml has no region 'Nobody' (entry)" in (result.error or "")
    clash = workflow(
        {"Summarizer": {"type": "WorkflowRegion", "workflow": str(sub)}},
        [layer(main=["Summarizer.make_replies"])],
        inject=[{"from": "user", "to": "Summarizer", "content": "Hello"}],
    )
    engine, _ = engine_for(clash)
    result = await engine.run()
    assert "has a region named Summarizer too" in (result.error or "")


async def test_a_workflow_may_not_run_itself(tmp_path: Path) -> None:
    """verify refuses the cycle; the engine refuses it again at run time."""
    me = tmp_path / "me.yaml"
    engine, _ = engine_for(parent(me, "Hello", source=me))
    result = await engine.run()
    assert result.status == "failed"
    assert "a workflow may not run inside itself: me.yaml -> me.yaml" in (result.error or "")


async def test_nesting_deeper_than_the_limit_is_refused(tmp_path: Path) -> None:
    sub = sub_file(tmp_path)

    class Deep:
        lineage = tuple(tmp_path / f"level{i}.yaml" for i in range(MAX_DEPTH))

        def load(self, path: Path) -> Workflow:
            raise AssertionError("not reached")

        async def build(self, wf: Workflow, bus: EventBus) -> Any:
            raise AssertionError("not reached")

    region = make("WorkflowRegion", "Summary", workflow=sub)
    region.context.subworkflows = Deep()
    region.receive(message("user", "Summary", "request", "Hello"))
    with pytest.raises(SubWorkflowError, match=f"nested more than {MAX_DEPTH} deep"):
        await region.make_replies()
    assert len(region.requests) == 1


async def test_a_step_timeout_cancels_the_sub_run(tmp_path: Path) -> None:
    engine, rec = engine_for(parent(sub_file(tmp_path, latency=30), "Hello", timeout=0.3))
    started = time.perf_counter()
    result = await engine.run()
    assert time.perf_counter() - started < 5
    step = next(e for e in rec.of("step_finished") if e.region == "Summary")
    assert step.outcome == "timeout" and result.status == "failed"
    assert len(engine.regions["Summary"].requests) == 1


async def test_cancelling_the_run_cancels_the_sub_run(tmp_path: Path) -> None:
    called = asyncio.Event()

    class Hanging:
        name = "hanging"

        async def complete(self, request: CompletionRequest, on_token: Any = None) -> Any:
            called.set()
            await asyncio.Event().wait()  # never answers

        async def aclose(self) -> None:
            return None

    wf = parent(sub_file(tmp_path), "Hello", llms={"default": {"backend": "scripted"}})
    engine, rec = engine_for(wf, llms={"default": Hanging()})
    task = asyncio.create_task(engine.run())
    await called.wait()  # the sub-run is waiting for its model
    task.cancel()
    result = await asyncio.wait_for(task, 5)
    assert result.status == "interrupted"
    step = next(e for e in rec.of("step_finished") if e.region == "Summary")
    assert step.outcome == "cancelled"
    assert len(engine.regions["Summary"].requests) == 1


async def test_sub_runs_use_the_enclosing_llm_options(tmp_path: Path) -> None:
    """Recorded once (the sub-run's calls go to the enclosing run's cassette), then replayed
    with no model at all: the same answer."""
    cassette = tmp_path / "calls.jsonl"
    wf = parent(sub_file(tmp_path), "A story.")
    outputs = []
    for options in (LLMOptions(record=cassette), LLMOptions(replay=cassette)):
        engine = build_engine(wf, EventBus(), options)
        try:
            result = await engine.run()
        finally:
            await engine.aclose()
        assert result.ok, result.error
        outputs.append([m.content for m in result.outputs])
    assert outputs[0] == outputs[1] == ["In short: it is about cats."]
    calls = [json.loads(line) for line in cassette.read_text().splitlines()[1:]]
    assert [c["purpose"] for c in calls] == ["make_replies"]
