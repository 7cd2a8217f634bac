"""`regions import`: every seed example converts to a workflow that verifies and keeps the
regions, connections, chains and step order of the original."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from seed_files import ALL_INPUTS, PAIRS, STATES, verify_errors

from regions_cli.interop.original.to_yaml import Stretch, import_files, stretches


def _import(seed: Path, files: list[str]) -> Any:
    return import_files([seed / f for f in files])


def _registry(seed: Path, name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((seed / PAIRS[name][0]).read_text())
    return data


def _effective_plan(plan_json: dict[str, Any]) -> list[dict[str, list[str]]]:
    """The steps the original runs, written out from its semantics (docs/import-export.md)."""
    order = plan_json["execution_order"] or range(len(plan_json["layer_config"]))
    layers = []
    for index in order:
        pairs = plan_json["execution_config"][index]
        layers.append(
            {
                chain: [f"{r}.{m}" for r in regions for (pr, m) in pairs if pr == r]
                for chain, regions in plan_json["layer_config"][index].items()
            }
        )
    return layers


@pytest.mark.parametrize("inputs", list(ALL_INPUTS.values()), ids=list(ALL_INPUTS))
def test_every_seed_example_imports_and_verifies(
    seed: Path, tmp_path: Path, inputs: list[str]
) -> None:
    result = _import(seed, inputs)
    assert verify_errors(result, tmp_path) == []
    text = result.dump()
    assert text.startswith("# yaml-language-server: $schema=")
    data = result.data()
    assert data["version"] == 1
    # Key order as in docs/workflow-format.md.
    canonical = ["version", "name", "description", "llms", "embedders", "rags", "regions",
                 "inject", "delivery", "defaults", "budget", "plan", "layout"]  # fmt: skip
    keys = list(data)
    assert keys == [k for k in canonical if k in keys]


@pytest.mark.parametrize("inputs", list(ALL_INPUTS.values()), ids=list(ALL_INPUTS))
def test_the_header_comment_is_a_tidy_list(seed: Path, inputs: list[str]) -> None:
    """Each converted/dropped item is one bullet, wrapped with its continuation indented."""
    text = _import(seed, inputs).dump()
    lines = text.splitlines()
    header = [line[2:] for line in lines[1 : lines.index("version: 1")]]
    assert header[0].startswith("Converted by `regions import` from ")
    assert header[1] == "Converted:"
    items = header[2:]
    assert items[0].startswith("  - each layer's chains list Region.method steps")
    for line in items:
        assert line == "Dropped:" or line.startswith(("  - ", "    "))
        assert not line.startswith("  -  ") and len(line) <= 92, line
    if inputs == ["minimal_regions.json"]:
        assert "this starter plan was generated (ask, look up, answer); edit it to suit" in (
            " ".join(line.strip() for line in items)
        )


@pytest.mark.parametrize("name", list(PAIRS))
def test_pairs_keep_regions_connections_and_plan(seed: Path, name: str) -> None:
    data = _import(seed, list(PAIRS[name])).data()
    registry = _registry(seed, name)
    assert list(data["regions"]) == [e["name"] for e in registry]
    tasks = {e["name"]: e["task"] for e in registry}
    for entry in registry:
        region = data["regions"][entry["name"]]
        assert region["type"] == entry["type"]
        if entry["type"] != "ListenerRegion":
            assert region["task"] == entry["task"]
        connections = region.get("connections") or []
        expected = entry["connections"] or {}
        assert list(connections) == list(expected)
        if isinstance(connections, list):  # the short form: every description is the task
            assert all(expected[t] == tasks[t] for t in connections)
        else:
            assert dict(connections) == expected
    plan_json = json.loads((seed / PAIRS[name][1]).read_text())
    assert [layer["chains"] for layer in data["plan"]] == _effective_plan(plan_json)


def test_lit_crit_plan_is_the_documented_effective_plan(seed: Path) -> None:
    # Behaviour reference 14.4, written out by hand: an oracle independent of the converter.
    data = _import(seed, list(PAIRS["lit_crit"])).data()
    assert [layer["chains"] for layer in data["plan"]] == [
        {"get_symbols_images": ["CC.start", "Commentate.make_questions"]},
        {"explain_questions": ["Explain.make_questions"]},
        {
            "lore_questions": ["ArtistLore.make_questions"],
            "symbol": ["Symbolism.make_replies"],
            "image": ["Imagery.make_replies"],
        },
        {"reply": ["Archive.make_replies", "ArtistLore.make_replies", "Explain.make_replies"]},
        {
            "make_questions_2": [
                "Commentate.make_questions",
                "Explain.make_questions",
                "ArtistLore.make_questions",
            ]
        },
        {
            "lore_replies": ["Archive.make_replies", "ArtistLore.make_replies"],
            "symbols_2": ["Symbolism.make_replies"],
            "images_2": ["Imagery.make_replies"],
        },
        {"final": ["Explain.make_replies", "Commentate.make_replies", "CC.stop"]},
    ]


def test_stale_pairs_are_dropped_with_a_warning_naming_them(seed: Path) -> None:
    result = _import(seed, list(PAIRS["lit_crit"]))
    assert result.warnings == [
        "layer 1: dropped Symbolism.make_replies, Imagery.make_replies (not in that layer's "
        "chains; the original skips them)",
        "layer 3: dropped Context.make_replies, Commentate.make_replies (not in that layer's "
        "chains; the original skips them)",
    ]
    text = result.dump()
    # ... and each is a comment in the YAML too.
    for name in ("Symbolism.make_replies", "Context.make_replies", "Commentate.make_replies"):
        assert any(name in line for line in text.splitlines() if line.startswith("#"))


def test_double_hegel_keeps_a_regions_methods_in_execution_config_order(seed: Path) -> None:
    data = _import(seed, list(PAIRS["double_hegel"])).data()
    assert data["plan"][9]["chains"] == {
        "judge_reply_summary": [
            "InstructionCache.broadcast",
            "Judge.summarize_replies",
            "Judge.make_replies",
        ]
    }
    # Broadcast descriptions that differ from the targets' tasks are kept as a mapping.
    assert data["regions"]["AnalysisRouter"]["connections"] == {
        "OpinionA": "Provide a thoughtful opinion.",
        "OpinionB": "Provide a critical opinion.",
    }


def test_values_are_converted(seed: Path) -> None:
    lit = _import(seed, list(PAIRS["lit_crit"])).data()
    assert lit["regions"]["Archive"]["threshold"] == 0.65  # was the string "0.65"
    assert lit["regions"]["CC"] == {"type": "ListenerRegion"}
    lookup = _import(seed, list(PAIRS["lookup"])).data()
    assert "connections" not in lookup["regions"]["HistoricalFacts"]  # was []
    # Every RAGRegion gets a store of its own, so the result verifies.
    assert lookup["rags"] == {
        "HistoricalFacts_store": {"path": "HistoricalFacts.db"},
        "Biography_store": {"path": "Biography.db"},
    }
    assert lookup["regions"]["Biography"]["rag"] == "Biography_store"
    assert "llms" not in lookup  # the embedded default; shown as a comment
    text = _import(seed, list(PAIRS["lookup"])).dump()
    assert "# llms:\n#   default: {backend: local}" in text
    assert "Add documents" in text


@pytest.mark.parametrize("name", list(STATES))
def test_states_match_their_pairs_and_keep_positions(seed: Path, name: str) -> None:
    state = _import(seed, [STATES[name]]).data()
    nodes = json.loads((seed / STATES[name]).read_text())["flowNodes"]
    assert set(state["layout"]) == {n["data"]["params"]["name"] for n in nodes}
    pair = _import(seed, list(PAIRS[name])).data()
    assert [layer["chains"] for layer in state["plan"]] == [
        layer["chains"] for layer in pair["plan"]
    ]
    assert list(state["regions"]) == [n["data"]["params"]["name"] for n in nodes]


def test_state_connections_follow_the_edges(seed: Path) -> None:
    data = _import(seed, [STATES["lit_crit"]]).data()
    # The node with id imported_5_Context is named ArtistLore; its edge goes to Archive.
    assert data["regions"]["ArtistLore"]["connections"] == ["Archive"]
    refine = _import(seed, [STATES["refine"]]).data()
    # Edge order, described by the target's task (the editor's own export does the same).
    assert refine["regions"]["BroadcastPrompt"]["connections"] == [
        "DraftA",
        "DraftB",
        "CombineReplies",
    ]
    lookup = _import(seed, [STATES["lookup"]]).data()
    assert lookup["regions"]["HistoricalFacts"]["reply_with_actors"] is True


def test_registry_alone_gets_a_starter_plan(seed: Path) -> None:
    result = _import(seed, ["minimal_regions.json"])
    data = result.data()
    assert [layer["chains"] for layer in data["plan"]] == [
        {"foo": ["foo.make_questions"]},
        {"bar": ["bar.make_replies"]},
        {"foo": ["foo.make_replies"]},
    ]
    assert data["regions"]["foo"] == {"type": "Region", "task": "Important job",
                                      "connections": ["bar"]}  # fmt: skip
    assert "starter plan was generated" in result.dump()


def test_the_minimal_example_is_the_registrys_import_plus_a_store(seed: Path) -> None:
    """What workflows/minimal.yaml's header says: same regions, same steps as the import."""
    from ruamel.yaml import YAML
    from seed_files import ROOT

    imported = _import(seed, ["minimal_regions.json"]).data()
    example = YAML(typ="safe").load((ROOT / "workflows" / "minimal.yaml").read_text())

    def steps(data: dict[str, Any]) -> list[list[str]]:
        return [[s for chain in layer["chains"].values() for s in chain] for layer in data["plan"]]

    def shape(data: dict[str, Any]) -> dict[str, Any]:
        return {name: (r["type"], r["task"], list(r.get("connections") or []))
                for name, r in data["regions"].items()}  # fmt: skip

    assert steps(example) == steps(imported)
    assert shape(example) == shape(imported)
    assert imported["rags"] == {"bar_store": {"path": "bar.db"}}  # empty: no documents


def test_starter_plan_without_askers_answers_in_one_layer(tmp_path: Path) -> None:
    registry = [
        {"name": "A", "type": "Region", "task": "a"},
        {"name": "B", "type": "BroadcastRegion", "task": "", "connections": {"A": "a"}},
    ]
    result = import_files([_write(tmp_path, "r.json", registry)])
    assert [layer["chains"] for layer in result.data()["plan"]] == [{"A": ["A.make_replies"]}]
    assert verify_errors(result, tmp_path) == []


def _write(folder: Path, name: str, payload: Any) -> Path:
    path = folder / name
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


REGISTRY = [
    {"name": "A", "type": "Region", "task": "Ask", "connections": {"B": "Answer"}},
    {"name": "B", "type": "Region", "task": "Answer", "connections": []},
]


def test_execution_order_reorders_and_repeats_layers_with_unique_labels(tmp_path: Path) -> None:
    plan = {
        "layer_config": [{"c": ["A"]}, {"c": ["B"]}],
        "execution_config": [[["A", "make_questions"]], [["B", "make_replies"]]],
        "execution_order": [1, 0, 1],
    }
    result = import_files([_write(tmp_path, "x_regions.json", REGISTRY),
                           _write(tmp_path, "x_executions.json", plan)])  # fmt: skip
    data = result.data()
    assert [(layer["layer"], layer["chains"]) for layer in data["plan"]] == [
        ("layer-1", {"c": ["B.make_replies"]}),
        ("layer-0", {"c": ["A.make_questions"]}),
        ("layer-1-2", {"c": ["B.make_replies"]}),
    ]
    assert verify_errors(result, tmp_path) == []
    assert data["name"] == "x"


def test_layers_left_out_of_execution_order_are_dropped_with_a_warning(tmp_path: Path) -> None:
    plan = {
        "layer_config": [{"c": ["A"]}, {"c": ["B"]}],
        "execution_config": [[["A", "make_questions"]], [["B", "make_replies"]]],
        "execution_order": [0],
    }
    result = import_files([_write(tmp_path, "r.json", REGISTRY), _write(tmp_path, "p.json", plan)])
    assert [layer["chains"] for layer in result.data()["plan"]] == [{"c": ["A.make_questions"]}]
    assert result.warnings == ["layer 1 is not in execution_order, so it never runs: dropped"]


def test_regions_without_methods_and_empty_layers_are_reported(tmp_path: Path) -> None:
    plan = {
        "layer_config": [{"c": ["A", "B"]}, {"d": ["B"]}],
        "execution_config": [[["A", "make_questions"]]],
        "execution_order": [],
    }
    result = import_files([_write(tmp_path, "r.json", REGISTRY), _write(tmp_path, "p.json", plan)])
    assert [layer["chains"] for layer in result.data()["plan"]] == [{"c": ["A.make_questions"]}]
    assert result.warnings == [
        "layer 0, chain c: B has no methods there: skipped",
        "layer 1, chain d: B has no methods there: skipped",
        "layer 1: chain d has no steps: dropped",
        "layer 1 has nothing to run: dropped",
    ]


def test_non_rag_fields_and_listener_delay_are_dropped_with_warnings(tmp_path: Path) -> None:
    registry = [
        {"name": "A", "type": "Region", "task": "t", "threshold": "0.3"},
        {"name": "L", "type": "ListenerRegion", "delay": 0.5},
    ]
    result = import_files([_write(tmp_path, "r.json", registry)])
    assert result.warnings == [
        "A: dropped threshold (only a RAGRegion has one)",
        "L: dropped delay 0.5 (our listeners are event-driven)",
    ]
    assert result.data()["regions"] == {
        "A": {"type": "Region", "task": "t"},
        "L": {"type": "ListenerRegion"},
    }


def test_long_texts_fold_and_read_back_exactly(tmp_path: Path) -> None:
    task = ("word " * 60 + "two  spaces stay " + "x" * 120 + " end").strip()
    registry = [{"name": "A", "type": "Region", "task": task}]
    result = import_files([_write(tmp_path, "r.json", registry)])
    assert result.data()["regions"]["A"]["task"] == task
    assert "task: >-" in result.dump()


def test_execution_layers_beyond_the_layer_config_are_reported(tmp_path: Path) -> None:
    plan = {
        "layer_config": [{"c": ["A"]}],
        "execution_config": [[["A", "make_questions"]], [["B", "make_replies"]]],
        "execution_order": None,
    }
    result = import_files([_write(tmp_path, "r.json", REGISTRY), _write(tmp_path, "p.json", plan)])
    assert [layer["chains"] for layer in result.data()["plan"]] == [{"c": ["A.make_questions"]}]
    assert result.warnings == [
        "execution_config has 1 layer more than layer_config: dropped (they have no chains "
        "to run in)"
    ]


@pytest.mark.parametrize("inputs", list(ALL_INPUTS.values()), ids=list(ALL_INPUTS))
async def test_every_import_runs_as_it_is(seed: Path, tmp_path: Path, inputs: list[str]) -> None:
    """No inject yet, empty stores: the plan still runs to the end (scripted LLM)."""
    from regions_cli.build import build_engine
    from regions_cli.engine.events import EventBus
    from regions_cli.model import LLMConfig
    from regions_cli.workflow.api import load_workflow

    path = tmp_path / "imported.yaml"
    path.write_text(_import(seed, inputs).dump(), encoding="utf-8")
    workflow = load_workflow(path)
    scripted = {name: LLMConfig(name, "scripted") for name in workflow.llms}
    engine = build_engine(dataclasses.replace(workflow, llms=scripted), EventBus())
    try:
        result = await engine.run()
    finally:
        await engine.aclose()
    assert result.ok, result.error
    assert result.counts["layers_run"] == len(workflow.plan) > 0


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ([0, 1, 2], [Stretch((0, 1, 2))]),
        ([0, 1, 2, 1, 2, 1, 2, 3], [Stretch((0,)), Stretch((1, 2), 3), Stretch((3,))]),
        ([1, 1, 1, 1], [Stretch((1,), 4)]),
        ([0, 0, 1, 0, 0, 1], [Stretch((0, 0, 1), 2)]),
        ([1, 0, 1], [Stretch((1, 0, 1))]),  # not back to back: unrolled
    ],
)
def test_blocks_repeated_back_to_back_are_found(order: list[int], expected: list[Stretch]) -> None:
    assert stretches(order) == expected


LOOP_PLAN: dict[str, Any] = {
    "layer_config": [{"c": ["A"]}, {"c": ["B"]}, {"c": ["A"]}, {"c": ["A"]}],
    "execution_config": [
        [["A", "make_questions"]],
        [["B", "make_replies"]],
        [["A", "make_questions"]],
        [["A", "summarize_replies"]],
    ],
    "execution_order": [0, 1, 2, 1, 2, 1, 2, 3],
}


def test_a_block_repeated_back_to_back_becomes_a_bounded_state(tmp_path: Path) -> None:
    result = import_files([_write(tmp_path, "x_regions.json", REGISTRY),
                           _write(tmp_path, "x_executions.json", LOOP_PLAN)])  # fmt: skip
    data = result.data()
    assert "plan" not in data
    assert data["states"] == {
        "layer-0": {
            "plan": [{"layer": "layer-0", "chains": {"c": ["A.make_questions"]}}],
            "next": [{"to": "repeat-1-2"}],
        },
        "repeat-1-2": {
            "max_visits": 3,
            "on_exhausted": "layer-3",
            "plan": [
                {"layer": "layer-1", "chains": {"c": ["B.make_replies"]}},
                {"layer": "layer-2", "chains": {"c": ["A.make_questions"]}},
            ],
            "next": [{"to": "repeat-1-2"}],
        },
        "layer-3": {"plan": [{"layer": "layer-3", "chains": {"c": ["A.summarize_replies"]}}]},
    }
    assert verify_errors(result, tmp_path) == []
    assert "layers 1, 2 run 3 times in a row: state repeat-1-2" in " ".join(result.dump().split())


async def _transcript(path: Path) -> list[tuple[str, ...]]:
    from regions_cli.build import build_engine
    from regions_cli.engine.events import Event, EventBus, MessageDelivered
    from regions_cli.model import LLMConfig
    from regions_cli.workflow.api import load_workflow

    workflow = load_workflow(path)
    scripted = {name: LLMConfig(name, "scripted") for name in workflow.llms}
    bus = EventBus()
    seen: list[tuple[str, ...]] = []

    def record(event: Event) -> None:
        if isinstance(event, MessageDelivered):
            m = event.message
            seen.append((event.delivery, m.source, m.destination, m.role, m.content, m.id))

    bus.subscribe(record)
    engine = build_engine(dataclasses.replace(workflow, llms=scripted), bus)
    try:
        result = await engine.run()
    finally:
        await engine.aclose()
    assert result.ok, result.error
    assert result.counts["layers_run"] == 8
    return seen


async def test_the_bounded_state_runs_as_the_unrolled_layers(tmp_path: Path) -> None:
    result = import_files([_write(tmp_path, "x_regions.json", REGISTRY),
                           _write(tmp_path, "x_executions.json", LOOP_PLAN)])  # fmt: skip
    inject = "inject:\n  - {to: A, content: Who led the Zebras?}\n"
    machine = tmp_path / "machine.yaml"
    machine.write_text(result.dump().replace("states:\n", inject + "states:\n", 1))
    data = result.data()
    layers = {layer["layer"]: layer for state in data["states"].values() for layer in state["plan"]}
    unrolled = {key: value for key, value in data.items() if key != "states"}
    unrolled["inject"] = [{"to": "A", "content": "Who led the Zebras?"}]
    unrolled["plan"] = [
        {"chains": layers[f"layer-{index}"]["chains"]} for index in LOOP_PLAN["execution_order"]
    ]
    plain = tmp_path / "plain.yaml"
    plain.write_text(json.dumps(unrolled))
    transcript = await _transcript(machine)
    assert len(transcript) >= 8  # the question, then what each visit asks and answers
    assert transcript == await _transcript(plain)


def test_a_bounded_state_exports_as_the_repeated_order(tmp_path: Path) -> None:
    from regions_cli.interop.original.export import export_workflow
    from regions_cli.workflow.api import load_workflow

    result = import_files([_write(tmp_path, "x_regions.json", REGISTRY),
                           _write(tmp_path, "x_executions.json", LOOP_PLAN)])  # fmt: skip
    path = tmp_path / "x.yaml"
    path.write_text(result.dump())
    exported = export_workflow(load_workflow(path)).executions
    # (identical layers are written once: layers 0 and 2 are one layer there)
    assert [exported["execution_config"][i] for i in exported["execution_order"]] == [
        LOOP_PLAN["execution_config"][i] for i in LOOP_PLAN["execution_order"]
    ]


def test_what_the_original_cannot_run_is_not_exported(tmp_path: Path) -> None:
    from regions_cli.interop.original.export import export_workflow
    from regions_cli.workflow.api import load_workflow

    path = tmp_path / "x.yaml"
    path.write_text(
        "version: 1\nname: x\nregions:\n  A: {type: Region, task: Ask.}\n"
        "inject: [{to: A, content: hi}]\nstates:\n  one:\n    max_visits: 2\n"
        "    plan: [{chains: {a: [A.make_replies]}}]\n"
        "    next: [{when: {region: A, says: more}, to: one}]\n"
    )
    with pytest.raises(ValueError, match="state one: a transition with a condition"):
        export_workflow(load_workflow(path))
