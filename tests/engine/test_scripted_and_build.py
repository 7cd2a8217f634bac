"""The scripted backend, prompt templates and `build_engine` errors."""

from __future__ import annotations

import json
import string
import time

import pytest
from engine_helpers import engine_for, layer, workflow
from hypothesis import given, settings
from hypothesis import strategies as st

from regions_cli.build import BuildError, build_engine
from regions_cli.engine.events import EventBus
from regions_cli.engine.prompts import PromptTemplates, TemplateError, default_template
from regions_cli.engine.regions.llm import question_list_schema
from regions_cli.llm.base import ChatMessage, CompletionRequest, LLMError
from regions_cli.llm.factory import make_llm
from regions_cli.llm.scripted import ScriptedModel
from regions_cli.model import LLMConfig


def scripted(**options: object) -> ScriptedModel:
    model = make_llm(LLMConfig("s", "scripted", options))
    assert isinstance(model, ScriptedModel)
    return model


def ask(text: str, schema: dict[str, object] | None = None) -> CompletionRequest:
    return CompletionRequest(
        (ChatMessage("system", "Your focus: zebras"), ChatMessage("user", text)), json_schema=schema
    )


async def test_first_matching_rule_wins_then_fallback() -> None:
    model = scripted(
        rules=[{"match": "(?i)zebra", "reply": "Z"}, {"match": "focus", "reply": "F"}],
        fallback="nothing matched",
    )
    assert (await model.complete(ask("tell me"))).text == "Z"  # matches the system turn
    other = CompletionRequest((ChatMessage("user", "hello"),))
    assert (await model.complete(other)).text == "nothing matched"


async def test_no_rules_echo_the_request_with_word_count_usage() -> None:
    completion = await scripted().complete(ask("who led them?"))
    assert completion.text == "Echo: who led them?"
    assert completion.usage.completion_tokens == 4
    assert completion.usage.prompt_tokens > 4


async def test_json_schema_gets_a_question_to_every_allowed_name() -> None:
    model = scripted(fallback="prose is for prose requests")
    completion = await model.complete(ask("ask", question_list_schema(["A", "B"])))
    items = json.loads(completion.text)
    assert [i["source"] for i in items] == ["A", "B"]
    assert all(isinstance(i["question"], str) and i["question"] for i in items)


async def test_the_scripted_question_list_fits_the_schema_bounds() -> None:
    import jsonschema

    schema = question_list_schema(["A"])
    long_focus = ChatMessage("system", "Your focus: " + "zebras and kiwis, " * 20)
    request = CompletionRequest((long_focus, ChatMessage("user", "ask")), json_schema=schema)
    completion = await scripted().complete(request)
    jsonschema.validate(json.loads(completion.text), schema)  # maxLength of the question


async def test_latency_and_streaming() -> None:
    model = scripted(latency=0.05, stream=True, fallback="a b c")
    pieces: list[str] = []
    started = time.perf_counter()
    completion = await model.complete(ask("x"), on_token=pieces.append)
    assert time.perf_counter() - started >= 0.05
    assert "".join(pieces) == completion.text == "a b c"


async def test_error_rule_raises_llm_error() -> None:
    with pytest.raises(LLMError, match="overloaded"):
        await scripted(rules=[{"match": ".", "error": "overloaded"}]).complete(ask("x"))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"rules": [{"match": "(", "reply": "x"}]}, r"rules\[0\]\.match: invalid regular"),
        ({"rules": [{"match": "x"}]}, r"rules\[0\]: a rule needs `reply`"),
        ({"rules": ["x"]}, r"rules\[0\]: a rule needs `match`"),
        ({"latency": -1}, "latency: must be a number >= 0"),
    ],
)
def test_bad_scripted_config_is_a_clear_error(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        scripted(**options)


def test_default_templates_are_package_data() -> None:
    assert "$question" in default_template("make_replies")
    assert "$connections" in default_template("make_questions")


def test_prompt_override_is_used() -> None:
    t = PromptTemplates({"make_replies": "Q: $question (from $source)"})
    assert t.render("make_replies", question="why?", source="u") == "Q: why? (from u)"
    assert "Your focus: T" in t.render("system", name="n", task="T")


_TEMPLATE_PIECES = st.sampled_from(
    ["$question", "${source}", "$$", "{", "}", "{question}", " ", "x", "\n", "$name_", "é"]
)


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(_TEMPLATE_PIECES, max_size=12),
    question=st.text(max_size=20),
    pass_source=st.booleans(),
)
def test_rendering_matches_string_template(
    pieces: list[str], question: str, pass_source: bool
) -> None:
    """The format-string renderer fills exactly as `string.Template.substitute` did: braces
    and ``$$`` literal, ``${x}`` and ``$x`` filled, fields not passed empty."""
    text = "".join(pieces)
    template = string.Template(text)
    if not template.is_valid() or set(template.get_identifiers()) - {"question", "source"}:
        return  # rejected when the templates are built (tested above)
    fields = {"question": question, **({"source": "S"} if pass_source else {})}
    expected = template.substitute({"source": "", "name": "", **fields})
    assert PromptTemplates({"make_replies": text}).render("make_replies", **fields) == expected


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"make_replies": "$nope"},
            r"regions\.R\.prompts\.make_replies: unknown placeholder \$nope",
        ),
        ({"greeting": "hi"}, r"prompts\.greeting: unknown template"),
        ({"system": "cost: $5"}, r"prompts\.system: '\$' starts no placeholder"),
    ],
)
def test_bad_prompt_override_is_a_clear_error(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        PromptTemplates(overrides, where="regions.R.")


async def test_prompt_override_reaches_the_model_through_the_workflow() -> None:
    wf = workflow(
        {"A": {"type": "Region", "task": "t", "prompts": {"make_replies": "PLEASE: $question"}}},
        [layer(main=["A.make_replies"])],
        llms={
            "default": {"backend": "scripted", "rules": [{"match": "PLEASE: hi", "reply": "yes"}]}
        },
        inject=[{"from": "u", "to": "A", "role": "request", "content": "hi"}],
    )
    engine, _ = engine_for(wf)
    assert [m.content for m in (await engine.run()).outputs] == ["yes"]


def test_build_errors_say_where() -> None:
    wf = workflow({"A": {"type": "Region", "task": "t", "prompts": {"system": "$bad"}}}, [])
    with pytest.raises(BuildError, match=r"regions\.A\.prompts\.system"):
        build_engine(wf, EventBus())
    wf = workflow({"A": {"type": "Region", "task": "t", "llm": "missing"}}, [])
    with pytest.raises(BuildError, match=r"regions\.A\.llm: no llms entry named 'missing'"):
        build_engine(wf, EventBus())
    wf = workflow(
        {"A": {"type": "Region", "task": "t"}},
        [],
        llms={"default": {"backend": "scripted", "rules": [{"match": "("}]}},
    )
    with pytest.raises(BuildError, match=r"llms\.default"):
        build_engine(wf, EventBus())


async def test_models_are_shared_per_llm_entry_and_closed() -> None:
    wf = workflow({"A": {"type": "Region", "task": "t"}, "B": {"type": "Region", "task": "t"}}, [])
    engine, _ = engine_for(wf)
    assert engine.regions["A"].context.llm is engine.regions["B"].context.llm
    await engine.aclose()
