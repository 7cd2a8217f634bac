"""What `regions verify` accepts, `regions run` can build: every valid workflow of the repo
(the examples in workflows/ and the valid test fixtures) is verified, then built into an
engine as `regions run` builds it (`build_engine_async`: models, stores with their documents
ingested, regions, prompt templates).

Endpoints that would need a server are swapped for what stands in for one without a network:
an ``openai`` LLM for the scripted backend, an ``openai`` embedder for the hash embedder. The
rest is built as written (the local model loads on its first call, so building it is cheap).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from workflow_helpers import FIXTURE_ENV, VALID_FIXTURES

from regions_cli.build import build_engine_async
from regions_cli.engine.events import EventBus
from regions_cli.llm.factory import LLMOptions
from regions_cli.model import EmbedderConfig, LLMConfig, Workflow
from regions_cli.workflow.api import load_workflow, verify

REPO = Path(__file__).resolve().parents[2]
VALID = sorted(
    [
        *(REPO / "workflows").glob("*.yaml"),
        *VALID_FIXTURES.glob("*.yaml"),
        *(p for p in (REPO / "tests" / "cli" / "fixtures").glob("*.yaml") if p.stem != "invalid"),
    ]
)


def _offline(workflow: Workflow) -> Workflow:
    llms = {
        name: LLMConfig(name, "scripted") if config.backend == "openai" else config
        for name, config in workflow.llms.items()
    }
    embedders = {
        name: EmbedderConfig(name, "hash") if config.backend == "openai" else config
        for name, config in workflow.embedders.items()
    }
    return dataclasses.replace(workflow, llms=llms, embedders=embedders)


@pytest.mark.parametrize("source", VALID, ids=lambda p: f"{p.parent.name}/{p.name}")
async def test_a_verified_workflow_builds(source: Path, tmp_path: Path) -> None:
    # A copy of the folder: building a store writes its file beside the workflow.
    folder = tmp_path / source.parent.name
    shutil.copytree(source.parent, folder, ignore=shutil.ignore_patterns(".regions", "*.db"))
    path = folder / source.name
    errors = [f for f in verify(path, env=FIXTURE_ENV) if f.is_error]
    assert errors == [], "the repo's valid workflows verify without errors"
    workflow = _offline(load_workflow(path, env=FIXTURE_ENV))
    options = LLMOptions(base_dir=workflow.base_dir)  # as `regions run` builds
    engine = await build_engine_async(workflow, EventBus(), options)
    try:
        assert set(engine.regions) == set(workflow.regions)
    finally:
        await engine.aclose()
