"""Helper B's RAGRegion over the real store: semantic answers, edits that lose nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from regions_cli.build import build_engine
from regions_cli.engine.events import EventBus
from regions_cli.engine.message import Message
from regions_cli.engine.regions.base import RegionContext
from regions_cli.engine.regions.rag import RAGRegion
from regions_cli.model import RegionConfig
from regions_cli.rag.embedders import HashEmbedder, LocalEmbedder, local_embedder_available
from regions_cli.rag.store import RagStore
from regions_cli.workflow.convert import build_workflow

FACTS = {
    "The Roman Empire in the West collapsed in 476 AD.": ("historian",),
    "Zebras are African equines with black and white stripes.": ("zoologist",),
    "Photosynthesis turns sunlight into chemical energy in plants.": ("botanist",),
}


def region(store: RagStore, threshold: float) -> RAGRegion:
    config = RegionConfig(
        "Memory", "RAGRegion", task="remember", rag="facts", threshold=threshold,
        reply_with_actors=True, max_results=3,
    )  # fmt: skip
    return RAGRegion(config, RegionContext(store=store))


def deliver(target: RAGRegion, source: str, role: str, content: str) -> None:
    target.receive(Message(source=source, destination=target.name, role=role, content=content))


@pytest.mark.skipif(not local_embedder_available(), reason="the `local` extra is not installed")
async def test_paraphrased_questions_get_the_right_fragment(tmp_path: Path) -> None:
    with RagStore(tmp_path / "facts.db", LocalEmbedder()) as store:
        for text, actors in FACTS.items():
            await store.add_text(text, actors)
        memory = region(store, threshold=0.45)
        deliver(memory, "Asker", "request", "When did Rome fall?")
        deliver(memory, "Asker", "request", "What do striped horses look like?")
        deliver(memory, "Asker", "request", "Which football team won the 1998 cup?")
        outcome = await memory.make_replies()
        assert outcome.status == "ok", outcome
        answers = [json.loads(m.content) for m in memory.outbox]
        assert answers[0][0] == {
            "memory_fragment": "The Roman Empire in the West collapsed in 476 AD.",
            "actors": ["historian"],
        }
        assert answers[1][0]["actors"] == ["zoologist"]
        assert answers[2] == []  # nothing above the threshold: an empty answer, not a failure


async def test_updates_replace_the_best_match_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "facts.db"
    with RagStore(path, HashEmbedder(128)) as store:
        for text, actors in FACTS.items():
            await store.add_text(text, actors)
        await store.add_text("The Roman Empire in the West collapsed in 476 AD!", ("copyist",))
        memory = region(store, threshold=0.3)
        correction = "The Roman Empire in the West collapsed in 476 AD, under Romulus Augustulus."
        deliver(memory, "Editor", "reply", correction)
        deliver(memory, "Editor", "reply", "Kiwis are flightless birds of New Zealand.")
        outcome = await memory.make_updates()
        assert outcome.status == "ok", outcome
        assert memory.replies == []
    with RagStore(path, HashEmbedder(128)) as reopened:
        contents = [h.content for h in reopened.search_sync("anything", k=100)]
        assert correction in contents  # the update is kept (the original deleted it)
        assert "The Roman Empire in the West collapsed in 476 AD!" not in contents  # near-dup
        assert "Kiwis are flightless birds of New Zealand." in contents  # no match: added
        assert len(contents) == 4  # three facts (one corrected) + the new one
        updated = reopened.search_sync(correction, k=1)[0]
        assert updated.score == pytest.approx(1.0)
        assert updated.actors in (("historian",), ("copyist",))  # the best hit's actors kept


async def test_a_workflow_asks_for_summaries_and_writes_them_back_losing_nothing(
    tmp_path: Path,
) -> None:
    """request_summaries -> the connection answers -> make_updates writes the answer into the
    real store; meanwhile make_replies answers with JSON (actors included) and an unrelated
    question gets the empty answer ``[]``, all through `regions_cli.build` and the executor."""
    summary = "Kiwis are flightless birds of New Zealand."
    data = {
        "version": 1,
        "name": "memory",
        "llms": {
            "default": {
                "backend": "scripted",
                "rules": [{"match": "Summarize the knowledge you have", "reply": summary}],
            }
        },
        "embedders": {"default": {"backend": "hash", "dimensions": 128}},
        "rags": {
            "facts": {
                "path": "facts.db",
                "documents": [{"text": t, "actors": list(a)} for t, a in FACTS.items()],
            }
        },
        "regions": {
            "Memory": {
                "type": "RAGRegion",
                "task": "remember",
                "rag": "facts",
                "connections": ["Scribe"],
                "threshold": 0.3,
                "reply_with_actors": True,
            },
            "Scribe": {"type": "Region", "task": "Knows about birds."},
        },
        "inject": [
            {"from": "user", "to": "Memory", "role": "request", "content": "Roman Empire 476"},
            {"from": "user", "to": "Memory", "role": "request", "content": "football cup 1998"},
        ],
        "plan": [
            {"chains": {"ask": ["Memory.make_replies", "Memory.request_summaries"]}},
            {"chains": {"answer": ["Scribe.make_replies"]}},
            {"chains": {"write": ["Memory.make_updates"]}},
        ],
    }
    engine = build_engine(build_workflow(data, base_dir=tmp_path), EventBus())
    try:
        result = await engine.run()
        assert result.ok, result.error
        rome, football = (json.loads(m.content) for m in result.outputs)
        assert rome == [
            {
                "memory_fragment": "The Roman Empire in the West collapsed in 476 AD.",
                "actors": ["historian"],
            }
        ]
        assert football == []  # nothing above the threshold: an ordinary empty answer
        assert engine.regions["Memory"].replies == []  # written, then forgotten
        assert list(engine.regions["Memory"].connections) == ["Scribe"]  # the asker not added
    finally:
        await engine.aclose()
    with RagStore(tmp_path / "facts.db", HashEmbedder(128)) as store:
        stored = {h.content: (h.document, h.actors) for h in store.search_sync("x", k=100)}
    assert stored[summary] == ("Scribe", ())  # the summary, filed under who wrote it
    assert set(FACTS) < set(stored) and len(stored) == len(FACTS) + 1  # nothing lost
