"""`regions export`: back to the original's two JSON files; import -> export -> import is the
identity on everything those files can say."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from seed_files import ALL_INPUTS, ROOT

from regions_cli.interop.original.export import export_workflow
from regions_cli.interop.original.to_yaml import import_files
from regions_cli.model import Workflow
from regions_cli.workflow.convert import build_workflow

ALL_EXAMPLES = sorted((ROOT / "workflows").glob("*.yaml"))
#: The examples that need what the original lacks (conditions, waits, routers, sub-workflows,
#: tools),
#: and why export refuses each.
NOT_EXPORTABLE = {
    "calculator": "the original has no tools",
    "clock": "the original has no tools",
    "code_fix": "a transition with a condition has no counterpart in the original",
    "fact_check": "the original has no tools",
    "debate": "a transition with a condition has no counterpart in the original",
    "interview": "the original cannot wait for a person",
    "review_loop": "a transition with a condition has no counterpart in the original",
    "subworkflow": "the original has no WorkflowRegion",
    "triage": "the original has no RouterRegion",
}
EXAMPLES = [p for p in ALL_EXAMPLES if p.stem not in NOT_EXPORTABLE]


def _workflow(data: dict[str, Any], folder: Path) -> Workflow:
    workflow = build_workflow(data, base_dir=folder)
    # What the files name (descriptions and positions) is not part of the comparison.
    return dataclasses.replace(workflow, description="", source=None)


def _without(data: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in keys}


@pytest.mark.parametrize("inputs", list(ALL_INPUTS.values()), ids=list(ALL_INPUTS))
def test_import_export_import_is_the_same_workflow(
    seed: Path, tmp_path: Path, inputs: list[str]
) -> None:
    first = import_files([seed / f for f in inputs])
    exported = export_workflow(_workflow(first.data(), tmp_path))
    written = exported.write(tmp_path / "out")
    assert [p.name for p in written] == [
        f"{exported.name}_regions.json",
        f"{exported.name}_executions.json",
    ]
    second = import_files(written)
    # The same document, except the description (it names the files it came from) and the
    # node positions (only the editor's full state keeps those).
    assert _without(second.data(), "description", "layout") == _without(
        first.data(), "description", "layout"
    )
    assert _workflow(second.data(), tmp_path) == _workflow(first.data(), tmp_path)
    # ... and exporting again gives the same files: a fixed point.
    again = export_workflow(_workflow(second.data(), tmp_path))
    assert (again.regions, again.executions) == (exported.regions, exported.executions)


def test_export_writes_the_original_shapes(seed: Path, tmp_path: Path) -> None:
    data = import_files([seed / "lit_crit/lit_demo_regions.json",
                         seed / "lit_crit/lit_demo_executions.json"]).data()  # fmt: skip
    exported = export_workflow(_workflow(data, tmp_path))
    archive = next(r for r in exported.regions if r["name"] == "Archive")
    assert archive == {
        "name": "Archive",
        "type": "RAGRegion",
        "task": "Search the entire Bardic Mechanism songbook to retrieve information relevant "
        "to the request.",
        "connections": {},
        "reply_with_actors": False,
        "threshold": 0.65,
    }
    # The stale pairs the import dropped stay dropped; everything else is as the original had.
    original = json.loads((seed / "lit_crit/lit_demo_executions.json").read_text())
    assert exported.executions["layer_config"] == original["layer_config"]
    assert exported.executions["execution_order"] == original["execution_order"]
    assert exported.executions["execution_config"][3] == [
        ["Archive", "make_replies"],
        ["ArtistLore", "make_replies"],
        ["Explain", "make_replies"],
    ]
    assert exported.dropped == ["rags: (Archive_store) and each RAGRegion's rag:"]


def test_repeated_layers_export_as_one_layer_run_twice(tmp_path: Path) -> None:
    registry = [{"name": "A", "type": "Region", "task": "t"}]
    plan = {
        "layer_config": [{"c": ["A"]}, {"d": ["A"]}],
        "execution_config": [[["A", "make_questions"]], [["A", "make_replies"]]],
        "execution_order": [1, 0, 1],
    }
    (tmp_path / "r.json").write_text(json.dumps(registry))
    (tmp_path / "p.json").write_text(json.dumps(plan))
    data = import_files([tmp_path / "r.json", tmp_path / "p.json"]).data()
    exported = export_workflow(_workflow(data, tmp_path))
    assert exported.executions == {
        "layer_config": [{"d": ["A"]}, {"c": ["A"]}],
        "execution_config": [[["A", "make_replies"]], [["A", "make_questions"]]],
        "execution_order": [0, 1, 0],
    }
    # The labels (layer-1, layer-0, layer-1-2) are not in the files: reported, not silent.
    assert "layer labels (the original numbers its layers)" in exported.dropped


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_export_and_come_back_with_the_same_regions_and_plan(
    example: Path, tmp_path: Path
) -> None:
    source = YAML(typ="safe").load(example.read_text())
    original = build_workflow(source, source=example)
    exported = export_workflow(original)
    back = build_workflow(import_files(exported.write(tmp_path)).data(), base_dir=tmp_path)
    assert {n: (r.type, r.task, dict(r.connections)) for n, r in back.regions.items()} == {
        n: (r.type, r.task, dict(r.connections)) for n, r in original.regions.items()
    }
    assert [
        [(c.name, [s.label for s in c.steps]) for c in layer.chains] for layer in back.plan
    ] == [[(c.name, [s.label for s in c.steps]) for c in layer.chains] for layer in original.plan]
    assert any(item.startswith("inject:") for item in exported.dropped)


@pytest.mark.parametrize("name", sorted(NOT_EXPORTABLE))
def test_what_the_original_cannot_run_is_refused(name: str) -> None:
    example = ROOT / "workflows" / f"{name}.yaml"
    workflow = build_workflow(YAML(typ="safe").load(example.read_text()), source=example)
    with pytest.raises(ValueError, match=NOT_EXPORTABLE[name]):
        export_workflow(workflow)


def test_export_names_everything_it_drops(tmp_path: Path) -> None:
    example = ROOT / "workflows" / "lit_crit.yaml"
    workflow = build_workflow(YAML(typ="safe").load(example.read_text()), source=example)
    assert export_workflow(workflow).dropped == [
        "CC: the listener's sink/taps",
        "layer labels (the original numbers its layers)",
        "defaults:",
        "inject: (14 messages; the original injects in Python)",
        "llms: (default)",
        "rags: (songbook) and each RAGRegion's rag:",
    ]


def _plan_workflow(chains: dict[str, list[str]]) -> Workflow:
    return build_workflow(
        {
            "version": 1,
            "name": "x",
            "regions": {
                "A": {"type": "Region", "task": "a"},
                "B": {"type": "Region", "task": "b"},
            },
            "plan": [{"chains": chains}],
        }
    )


def test_plans_the_original_cannot_run_are_refused() -> None:
    with pytest.raises(ValueError, match="the steps of A are not together"):
        export_workflow(_plan_workflow({"c": ["A.make_questions", "B.make_replies",
                                              "A.make_replies"]}))  # fmt: skip
    with pytest.raises(ValueError, match="A is in chains 'c' and 'd'"):
        export_workflow(_plan_workflow({"c": ["A.make_questions"], "d": ["A.make_replies"]}))


def test_export_never_replaces_files_unless_forced(tmp_path: Path) -> None:
    exported = export_workflow(_plan_workflow({"c": ["A.make_questions"]}))
    exported.write(tmp_path)
    (tmp_path / "x_regions.json").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"x_regions\.json exists"):
        exported.write(tmp_path)
    assert (tmp_path / "x_regions.json").read_text() == "keep me"
    exported.write(tmp_path, force=True)
    assert json.loads((tmp_path / "x_regions.json").read_text())[0]["name"] == "A"


def test_a_region_with_tools_is_refused_not_dropped(tmp_path: Path) -> None:
    data = {
        "version": 1,
        "name": "t",
        "tools": {"words": {"python": "regions_cli.text:plural"}},
        "regions": {"A": {"type": "Region", "task": "Count.", "tools": ["words"]}},
        "plan": [{"chains": {"main": ["A.make_replies"]}}],
    }
    with pytest.raises(ValueError, match="region A: the original has no tools"):
        export_workflow(_workflow(data, tmp_path))
