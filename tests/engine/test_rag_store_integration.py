"""A RAGRegion over the real sqlite store (hash embedder: no model, no network)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import Recorder

from regions_cli.build import build_engine, build_engine_async
from regions_cli.engine.events import EventBus
from regions_cli.model import Workflow
from regions_cli.rag import factory
from regions_cli.workflow.convert import build_workflow


def rag_workflow(tmp_path: Path) -> Workflow:
    data = {
        "version": 1,
        "name": "rag",
        "embedders": {"default": {"backend": "hash"}},
        "rags": {
            "facts": {
                "path": "facts.db",
                "documents": [
                    {"text": "The Roman Empire fell in 476 AD", "actors": ["historian"]},
                    {"text": "Zebras are striped horses of Africa", "actors": ["zoo"]},
                ],
            }
        },
        "regions": {
            "Facts": {
                "type": "RAGRegion",
                "task": "facts",
                "rag": "facts",
                "threshold": 0.1,
                "reply_with_actors": True,
            }
        },
        "inject": [
            {
                "from": "user",
                "to": "Facts",
                "role": "request",
                "content": "When did the Roman Empire fall?",
            },
            {
                "from": "user",
                "to": "Facts",
                "role": "reply",
                "content": "The Roman Empire fell in 476 AD in the west",
            },
        ],
        "plan": [{"chains": {"m": ["Facts.make_replies", "Facts.make_updates"]}}],
    }
    return build_workflow(data, base_dir=tmp_path)


@pytest.mark.parametrize("build", ["sync", "async"])
async def test_rag_region_answers_and_updates_a_real_store(tmp_path: Path, build: str) -> None:
    workflow = rag_workflow(tmp_path)
    bus = EventBus()
    recorder = Recorder(bus)
    if build == "sync":
        engine = build_engine(workflow, bus)
    else:
        engine = await build_engine_async(workflow, bus)
    try:
        result = await engine.run()
        assert result.ok, result.error
        [answer] = result.outputs
        fragments = json.loads(answer.content)
        assert fragments[0] == {
            "memory_fragment": "The Roman Empire fell in 476 AD",
            "actors": ["historian"],
        }
        assert [e.outcome for e in recorder.of("step_finished")] == ["ok", "ok"]
        store = engine.regions["Facts"].context.store
        assert store is not None
        hits = await store.search("Roman Empire fell", threshold=0.1)
        contents = [h.content for h in hits]
        assert "The Roman Empire fell in 476 AD in the west" in contents  # updated, not lost
        assert "The Roman Empire fell in 476 AD" not in contents
        best = next(h for h in hits if h.content.endswith("in the west"))
        assert best.actors == ("historian",)  # actors kept
        assert engine.regions["Facts"].replies == []
    finally:
        await engine.aclose()


async def test_async_build_ingests_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a store ingests its documents the loop runs other work (the view, Ctrl-C)."""
    real_open = factory.open_store
    loop_ran = threading.Event()
    threads: list[int] = []

    def slow_open(workflow: Workflow, name: str, **options: Any) -> Any:
        threads.append(threading.get_ident())
        # Set by a callback of the loop: it can only run if this call is not on the loop.
        assert loop_ran.wait(10), "the event loop was blocked while the store was opened"
        return real_open(workflow, name, **options)

    monkeypatch.setattr(factory, "open_store", slow_open)
    asyncio.get_running_loop().call_soon(loop_ran.set)
    engine = await build_engine_async(rag_workflow(tmp_path), EventBus())
    try:
        assert threads and threads[0] != threading.get_ident()
        assert (await engine.run()).ok
    finally:
        await engine.aclose()
    store: Any = engine.regions["Facts"].context.store
    with pytest.raises(sqlite3.ProgrammingError):  # the engine closed the store it was given
        store._conn.execute("SELECT 1")


async def test_cancelling_the_async_build_stops_the_ingestion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop = asyncio.get_running_loop()
    opening = asyncio.Event()
    resume, finished = threading.Event(), threading.Event()
    ended: list[str] = []

    def stuck_open(workflow: Workflow, name: str, *, progress: Any = None, **_: Any) -> Any:
        try:
            loop.call_soon_threadsafe(opening.set)
            assert resume.wait(10)
            progress(32, 100)  # a slice is embedded: the ingestion checks in
            ended.append("went on")
        except BaseException as exc:
            ended.append(type(exc).__name__)
            raise
        finally:
            finished.set()

    monkeypatch.setattr(factory, "open_store", stuck_open)
    build = asyncio.create_task(build_engine_async(rag_workflow(tmp_path), EventBus()))
    await opening.wait()
    build.cancel()
    with pytest.raises(asyncio.CancelledError):
        await build
    resume.set()
    assert await asyncio.to_thread(finished.wait, 10)
    assert ended == ["_IngestCancelled"]


async def test_the_async_build_reports_how_far_each_store_got(tmp_path: Path) -> None:
    heard: list[tuple[str, int, int]] = []
    engine = await build_engine_async(
        rag_workflow(tmp_path), EventBus(), progress=lambda *p: heard.append(p)
    )
    await engine.aclose()
    assert heard[0] == ("facts", 0, 2) and heard[-1] == ("facts", 2, 2)  # two one-chunk texts
