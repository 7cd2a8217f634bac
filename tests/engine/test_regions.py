"""Region behaviour, one type at a time (the intent of the original's region tests, 15.1,
15.7, 15.11, 15.12 of the behaviour reference, with the weak points of 16.3 fixed)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from engine_helpers import FakeModel, FakeStore, make, message
from hypothesis import given
from hypothesis import strategies as st

from regions_cli.engine.events import Event
from regions_cli.engine.regions.base import Entry
from regions_cli.engine.regions.llm import last_json_array, question_list_schema
from regions_cli.engine.regions.rag import SUMMARY_REQUEST
from regions_cli.llm.base import CompletionRequest, LLMError


def replies_of(region: object) -> list[tuple[str, str]]:
    return [(e.source, e.content) for e in region.replies]  # type: ignore[attr-defined]


def give_replies(region: object, *pairs: tuple[str, str]) -> None:
    for source, content in pairs:
        region.receive(message(source, "me", "reply", content))  # type: ignore[attr-defined]


# -- shared stores (15.1) ------------------------------------------------------------------


async def test_receive_sorts_requests_and_replies() -> None:
    r = make("Region")
    r.receive(message("a", "me", "request", "q"))
    r.receive(message("b", "me", "reply", "k"))
    assert [(e.source, e.content) for e in r.requests] == [("a", "q")]
    assert replies_of(r) == [("b", "k")]
    assert list(r.asked_by) == ["a"]


async def test_keep_last_reply_per_source() -> None:
    r = make("Region")
    give_replies(r, ("s1", "r1"), ("s1", "r2"), ("s2", "r3"))
    outcome = await r.keep_last_reply_per_source()
    assert outcome.status == "ok" and "pruned 1" in (outcome.detail or "")
    assert replies_of(r) == [("s1", "r2"), ("s2", "r3")]


async def test_keep_last_keeps_first_seen_source_order() -> None:
    r = make("Region")
    give_replies(r, ("s1", "reply1"), ("s2", "reply2"), ("s1", "reply3"), ("s2", "reply4"))
    await r.keep_last_reply_per_source()
    assert replies_of(r) == [("s1", "reply3"), ("s2", "reply4")]


async def test_consolidated_replies_merge_per_source() -> None:
    r = make("Region")
    give_replies(r, ("s1", "reply1"), ("s1", "reply2"), ("s2", "reply3"), ("s1", "reply4"))
    merged = [(e.source, e.content) for e in r.consolidated_replies()]
    assert merged == [("s1", "reply1\nreply2\nreply4"), ("s2", "reply3")]


async def test_clear_replies_keeps_requests() -> None:
    r = make("Region")
    give_replies(r, ("s1", "x"))
    r.receive(message("a", "me", "request", "q"))
    assert (await r.clear_replies()).status == "ok"
    assert r.replies == [] and len(r.requests) == 1


@pytest.mark.parametrize("method", ["clear_replies", "keep_last_reply_per_source"])
async def test_empty_store_methods_report_nothing(method: str) -> None:
    r = make("Region")
    outcome = await getattr(r, method)()
    assert outcome.status == "nothing" and outcome.detail


# -- Region (15.12) ------------------------------------------------------------------------


async def test_make_replies_answers_requester_and_consumes_request() -> None:
    model = FakeModel("It was partly cloudy, with hail.")
    r = make("Region", model=model, task="Weather")
    give_replies(r, ("sky", "partly cloudy with hail"))
    r.receive(message("user", "me", "request", "What was the weather?"))
    r.begin_step(r.origin)
    outcome = await r.make_replies()
    assert outcome.status == "ok"
    assert r.requests == []
    [sent] = r.take_outbox()
    assert (sent.source, sent.destination, sent.role) == ("me", "user", "reply")
    assert sent.content == "It was partly cloudy, with hail."
    prompt = model.requests[0]
    assert "What was the weather?" in prompt.messages[-1].content
    assert "partly cloudy with hail" in prompt.messages[0].content  # knowledge in the system turn
    assert replies_of(r) == [("sky", "partly cloudy with hail")]  # knowledge is kept


async def test_make_replies_shows_only_the_other_pending_requests() -> None:
    model = FakeModel("ok")
    r = make("Region", model=model)
    r.receive(message("a", "me", "request", "first question"))
    r.receive(message("b", "me", "request", "second question"))
    await r.make_replies()
    first_system = model.requests[0].messages[0].content
    assert "second question" in first_system and "first question" not in first_system
    assert "first question" not in model.requests[1].messages[0].content


async def test_make_replies_with_no_requests_reports_nothing_without_a_call() -> None:
    model = FakeModel("x")
    r = make("Region", model=model)
    outcome = await r.make_replies()
    assert outcome.status == "nothing" and model.requests == []


async def test_a_model_that_fails_for_good_is_recorded_then_fails_the_step() -> None:
    events: list[Event] = []
    r = make("Region", model=FakeModel(LLMError("server down")), events=events)
    r.receive(message("user", "me", "request", "q"))
    with pytest.raises(LLMError, match="server down"):
        await r.make_replies()
    assert r.take_outbox() == []
    [call] = [e for e in events if e.kind == "llm_call"]
    assert call.error and "server down" in call.error  # type: ignore[attr-defined]


async def test_empty_answer_counts_as_failure() -> None:
    r = make("Region", model=FakeModel("<think>only thinking</think>"))
    r.receive(message("user", "me", "request", "q"))
    assert (await r.make_replies()).status == "false"


async def test_thinking_is_stripped_from_answers() -> None:
    r = make("Region", model=FakeModel("<think>hmm</think>Processed reply"))
    r.receive(message("user", "me", "request", "q"))
    await r.make_replies()
    assert [m.content for m in r.take_outbox()] == ["Processed reply"]


async def test_make_questions_sends_requests_to_connections() -> None:
    answer = '```json\n[{"source": "other", "question": "What is new?"}]\n```'
    model = FakeModel(answer)
    r = make("Region", model=model, connections={"other": "knows things"}, regions=["other"])
    outcome = await r.make_questions()
    assert outcome.status == "ok"
    [sent] = r.take_outbox()
    assert (sent.destination, sent.role, sent.content) == ("other", "request", "What is new?")
    schema = model.requests[0].json_schema
    assert schema == question_list_schema(["other"])
    assert '"other": "knows things"' in model.requests[0].messages[-1].content


async def test_make_questions_invalid_destination_sends_nothing() -> None:
    r = make(
        "Region",
        model=FakeModel('[{"source": "stranger", "question": "hi?"}]'),
        connections={"other": ""},
    )
    outcome = await r.make_questions()
    assert outcome.status == "false" and "stranger" in (outcome.detail or "")
    assert r.take_outbox() == []


async def test_make_questions_invalid_json_is_a_failure() -> None:
    r = make("Region", model=FakeModel("invalid json"), connections={"other": ""})
    assert (await r.make_questions()).status == "false"
    assert r.take_outbox() == []


async def test_make_questions_empty_list_is_a_valid_answer() -> None:
    r = make("Region", model=FakeModel("No questions: []"), connections={"other": ""})
    outcome = await r.make_questions()
    assert outcome.status == "ok" and r.take_outbox() == []


async def test_make_questions_sends_valid_items_when_others_fail() -> None:
    answer = json.dumps([{"source": "other", "question": "a?"}, {"source": "x", "question": "b?"}])
    r = make("Region", model=FakeModel(answer), connections={"other": ""})
    assert (await r.make_questions()).status == "false"
    assert [m.content for m in r.take_outbox()] == ["a?"]


def test_last_json_array_is_lenient() -> None:
    assert last_json_array('x [1] y [{"a": [2, 3]}] z') == [{"a": [2, 3]}]
    assert last_json_array("[]") == []
    assert last_json_array("no list [ here") is None
    assert last_json_array('{"not": "a list"}') is None


async def test_summarize_replies_summarises_each_source_alone() -> None:
    model = FakeModel(lambda req: f"summary of {len(req.messages[-1].content)} chars")
    r = make("Region", model=model)
    give_replies(r, ("s1", "alpha one"), ("s1", "alpha two"), ("s2", "beta"))
    outcome = await r.summarize_replies()
    assert outcome.status == "ok"
    assert [e.source for e in r.replies] == ["s1", "s2"]
    first, second = (req.messages[-1].content for req in model.requests)
    assert "alpha one\nalpha two" in first and "beta" not in first
    assert "beta" in second and "alpha" not in second  # no leak of another source's text
    for req in model.requests:  # nor through the system turn's knowledge block
        assert "alpha" not in req.messages[0].content and "beta" not in req.messages[0].content


async def test_summarize_failure_restores_that_sources_originals() -> None:
    def answer(req: CompletionRequest) -> object:
        return "" if "beta" in req.messages[-1].content else "short"  # no summary for s2

    r = make("Region", model=FakeModel(answer))
    give_replies(r, ("s1", "alpha one"), ("s2", "beta one"), ("s2", "beta two"))
    outcome = await r.summarize_replies()
    assert outcome.status == "false"
    assert replies_of(r) == [("s1", "short"), ("s2", "beta one"), ("s2", "beta two")]


async def test_summarize_with_no_replies_reports_nothing() -> None:
    assert (await make("Region", model=FakeModel()).summarize_replies()).status == "nothing"


async def test_feed_forward_answers_go_to_every_connection() -> None:
    r = make(
        "FeedForwardRegion",
        model=FakeModel("answer"),
        connections={"a": "", "b": ""},
    )
    r.receive(message("user", "me", "request", "q"))
    assert (await r.make_replies()).status == "ok"
    assert [(m.destination, m.role) for m in r.take_outbox()] == [("a", "reply"), ("b", "reply")]


async def test_feed_forward_without_connections_keeps_the_request() -> None:
    model = FakeModel("answer")
    r = make("FeedForwardRegion", model=model)
    r.receive(message("user", "me", "request", "q"))
    assert (await r.make_replies()).status == "false"
    assert len(r.requests) == 1 and model.requests == []


# -- RAGRegion (15.11) ---------------------------------------------------------------------


async def test_rag_make_replies_sends_real_json_with_actors(store: FakeStore) -> None:
    store.scores = {1: 0.95, 2: 0.85}
    r = make("RAGRegion", store=store, rag="facts", reply_with_actors=True, threshold=0.5)
    r.receive(message("asker", "me", "request", "When did Rome fall?"))
    assert (await r.make_replies()).status == "ok"
    assert r.requests == []
    [sent] = r.take_outbox()
    assert sent.destination == "asker" and sent.role == "reply"
    assert json.loads(sent.content) == [
        {"memory_fragment": "The Roman Empire fell in 476 AD", "actors": ["historian"]},
        {"memory_fragment": "World War II ended in 1945", "actors": ["historian", "archivist"]},
    ]
    assert r.connections == {}  # no mutation: the asker is in asked_by instead
    assert list(r.asked_by) == ["asker"]
    assert store.calls[0] == ("search", ("When did Rome fall?", None, 0.5))


async def test_rag_reply_escapes_content_and_can_omit_actors(store: FakeStore) -> None:
    store.chunks[9] = ('He said "hi"\nthen left', ("x",))
    store.scores = {9: 0.9}
    r = make("RAGRegion", store=store, rag="facts")
    r.receive(message("asker", "me", "request", "q"))
    await r.make_replies()
    [sent] = r.take_outbox()
    assert json.loads(sent.content) == [{"memory_fragment": 'He said "hi"\nthen left'}]


async def test_rag_no_match_is_an_empty_answer_not_a_failure(store: FakeStore) -> None:
    r = make("RAGRegion", store=store, rag="facts")
    r.receive(message("asker", "me", "request", "unrelated"))
    assert (await r.make_replies()).status == "ok"
    assert [m.content for m in r.take_outbox()] == ["[]"]


async def test_rag_search_failure_keeps_request(store: FakeStore) -> None:
    store.fail = RuntimeError("db locked")
    r = make("RAGRegion", store=store, rag="facts")
    r.receive(message("asker", "me", "request", "q"))
    assert (await r.make_replies()).status == "false"
    assert len(r.requests) == 1


async def test_rag_make_updates_updates_best_and_removes_other_near_duplicates(
    store: FakeStore,
) -> None:
    store.scores = {1: 0.95, 2: 0.9, 3: 0.3}
    r = make("RAGRegion", store=store, rag="facts", threshold=0.2)
    give_replies(r, ("historian", "Rome fell in 476 AD (Western Empire)"))
    outcome = await r.make_updates()
    assert outcome.status == "ok"
    assert (
        "update_chunk",
        (1, "Rome fell in 476 AD (Western Empire)", ("historian",)),
    ) in store.calls
    assert ("delete_chunks", (2,)) in store.calls  # within 0.1 of the best; 3 is not
    assert store.chunks[1][0] == "Rome fell in 476 AD (Western Empire)"  # the update survives
    assert 3 in store.chunks
    assert r.replies == []
    assert store.calls[0] == ("search", ("Rome fell in 476 AD (Western Empire)", None, 0.2))


async def test_rag_make_updates_adds_a_chunk_when_nothing_matches(store: FakeStore) -> None:
    r = make("RAGRegion", store=store, rag="facts")
    give_replies(r, ("poet", "A brand new fact"))
    assert (await r.make_updates()).status == "ok"
    assert ("add_text", ("A brand new fact", (), "poet")) in store.calls
    assert any(content == "A brand new fact" for content, _ in store.chunks.values())


async def test_rag_make_updates_failure_keeps_the_reply(store: FakeStore) -> None:
    store.fail = RuntimeError("db locked")
    r = make("RAGRegion", store=store, rag="facts")
    give_replies(r, ("poet", "keep me"))
    assert (await r.make_updates()).status == "false"
    assert replies_of(r) == [("poet", "keep me")]


async def test_rag_request_summaries_asks_connections_and_askers(store: FakeStore) -> None:
    r = make("RAGRegion", store=store, rag="facts", connections={"a": ""}, regions=["a", "b"])
    r.receive(message("b", "me", "request", "q"))
    r.receive(message("user", "me", "request", "q2"))  # external: not asked for summaries
    assert (await r.request_summaries()).status == "ok"
    sent = [(m.destination, m.role, m.content) for m in r.take_outbox()]
    assert sent == [("a", "request", SUMMARY_REQUEST), ("b", "request", SUMMARY_REQUEST)]


async def test_rag_request_summaries_with_nobody_is_a_warned_noop(store: FakeStore) -> None:
    events: list[Event] = []
    r = make("RAGRegion", store=store, rag="facts", events=events)
    outcome = await r.request_summaries()
    assert outcome.status == "nothing"
    assert [e.level for e in events if e.kind == "notice"] == ["warning"]  # type: ignore[attr-defined]


async def test_rag_without_store_fails_cleanly() -> None:
    r = make("RAGRegion", rag="facts")
    r.receive(message("a", "me", "request", "q"))
    assert (await r.make_replies()).status == "false"


# -- BroadcastRegion -----------------------------------------------------------------------


async def test_broadcast_copies_with_original_source_role_content() -> None:
    r = make("BroadcastRegion", connections={"a": "", "b": ""})
    assert r.task == "Forward all incoming messages to connected regions."
    original = message("user", "me", "request", "poem please")
    r.receive(original)
    assert (await r.broadcast()).status == "ok"
    copies = r.take_outbox()
    assert [(m.source, m.destination, m.role, m.content) for m in copies] == [
        ("user", "a", "request", "poem please"),
        ("user", "b", "request", "poem please"),
    ]
    assert {m.cause for m in copies} == {original.id}
    assert r.inbox == []


async def test_broadcast_with_empty_inbox_reports_nothing() -> None:
    assert (await make("BroadcastRegion", connections={"a": ""}).broadcast()).status == "nothing"


async def test_broadcast_clear_and_prune_act_on_held_replies() -> None:
    r = make("BroadcastRegion", connections={"a": ""})
    for m in (
        message("s", "me", "reply", "1"),
        message("s", "me", "request", "q"),
        message("s", "me", "reply", "2"),
    ):
        r.receive(m)
    await r.keep_last_reply_per_source()
    assert [m.content for m in r.inbox] == ["q", "2"]
    await r.clear_replies()
    assert [m.content for m in r.inbox] == ["q"]


# -- ListenerRegion (15.7) -----------------------------------------------------------------


async def test_listener_writes_jsonl_between_start_and_stop(tmp_path: Path) -> None:
    sink = tmp_path / "trace" / "t.jsonl"
    r = make("ListenerRegion", sink=sink)
    held = message("a", "b", "request", "before start")
    r.receive(held)
    assert (await r.start()).status == "ok"
    assert (await r.start()).status == "nothing"  # twice is harmless
    r.receive(message("b", "a", "reply", "while started"))
    assert (await r.stop()).status == "ok"
    r.receive(message("a", "b", "request", "after stop"))
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    assert [line["content"] for line in lines] == ["before start", "while started"]
    assert lines[0]["id"] == held.id
    assert [m.content for m in r.inbox] == ["after stop"]  # waits for the next start
    assert (await r.stop()).status == "nothing"


async def test_listener_stop_without_start_is_safe() -> None:
    r = make("ListenerRegion")
    assert (await r.stop()).status == "nothing"


# -- snapshots -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["Region", "FeedForwardRegion", "RAGRegion", "BroadcastRegion"])
async def test_snapshot_restore_round_trip(kind: str) -> None:
    r = make(kind, connections={"x": ""})
    r.receive(message("a", "me", "request", "q"))
    r.receive(message("b", "me", "reply", "k"))
    state = r.snapshot()
    json.dumps(state)  # serialisable
    fresh = make(kind, connections={"x": ""})
    fresh.restore(state)
    assert fresh.snapshot() == state


async def test_restore_refuses_another_type() -> None:
    state = make("Region").snapshot()
    with pytest.raises(ValueError, match="cannot restore a Region snapshot"):
        make("BroadcastRegion").restore(state)


async def test_rollback_keeps_messages_that_arrived_during_the_step() -> None:
    r = make("Region")
    give_replies(r, ("s", "old"))
    r.capture()
    r.replies = []  # the step wiped knowledge...
    r.receive(message("t", "me", "reply", "arrived meanwhile"))
    r.rollback()  # ...and failed
    assert replies_of(r) == [("s", "old"), ("t", "arrived meanwhile")]
    assert isinstance(r.replies[0], Entry)


# -- properties ----------------------------------------------------------------------------

_items = st.lists(
    st.fixed_dictionaries({"source": st.text(max_size=10), "question": st.text(max_size=30)}),
    max_size=4,
)
_prose = st.text(alphabet=st.characters(blacklist_characters="[]"), max_size=40)


@given(_items, _prose, _prose)
def test_last_json_array_finds_the_answer_in_any_prose(
    items: list[dict[str, str]], before: str, after: str
) -> None:
    assert last_json_array(before + json.dumps(items) + after) == items


@given(st.lists(st.tuples(st.sampled_from("abc"), st.text(max_size=5)), max_size=12))
def test_keep_last_reply_per_source_property(pairs: list[tuple[str, str]]) -> None:
    r = make("Region")
    give_replies(r, *pairs)
    asyncio.run(r.keep_last_reply_per_source())
    expected: dict[str, str] = {}
    for source, content in pairs:
        expected[source] = content
    assert replies_of(r) == list(expected.items())
