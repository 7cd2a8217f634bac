"""A RAGRegion over the real sqlite store (hash embedder: no model, no network)."""

from __future__ import annotations

import json
from pathlib import Path

from engine_helpers import Recorder

from regions_cli.build import build_engine
from regions_cli.engine.events import EventBus
from regions_cli.workflow.model import build_workflow


async def test_rag_region_answers_and_updates_a_real_store(tmp_path: Path) -> None:
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
    workflow = build_workflow(data, base_dir=tmp_path)
    bus = EventBus()
    recorder = Recorder(bus)
    engine = build_engine(workflow, bus)
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
