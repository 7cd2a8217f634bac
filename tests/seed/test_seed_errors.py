"""Malformed input: one line naming the file and the JSON path; never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from regions_cli.interop.original.parse import SeedFormatError
from regions_cli.interop.original.to_yaml import import_files

REGISTRY: list[dict[str, Any]] = [
    {"name": "Historian", "type": "Region", "task": "Ask", "connections": {"Biography": "x"}},
    {"name": "Biography", "type": "RAGRegion", "task": "Answer", "connections": []},
]
PLAN: dict[str, Any] = {
    "layer_config": [{"chain0": ["Historian"]}, {"chain0": ["Biography"]}],
    "execution_config": [[["Historian", "make_questions"]], [["Biography", "make_replies"]]],
    "execution_order": [0, 1],
}
STATE: dict[str, Any] = {
    "flowNodes": [
        {"id": "n1", "data": {"typeName": "Region", "params": {"name": "A", "task": "t"}}},
        {"id": "n2", "data": {"typeName": "Region", "params": {"name": "B", "task": "u"}}},
    ],
    "flowEdges": [{"source": "n1", "target": "n2"}],
    "layerConfig": [{"c": ["A"]}],
    "executionConfig": [[["A", "make_questions"]]],
    "executionOrder": [0],
    "chainColors": [{}],
}


def _edit(base: Any, path: list[Any], value: Any) -> Any:
    data = json.loads(json.dumps(base))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


def _import_pair(tmp_path: Path, registry: Any, plan: Any = None) -> None:
    reg = tmp_path / "lookup_regions.json"
    reg.write_text(registry if isinstance(registry, str) else json.dumps(registry))
    paths = [reg]
    if plan is not None:
        pl = tmp_path / "lookup_executions.json"
        pl.write_text(plan if isinstance(plan, str) else json.dumps(plan))
        paths.append(pl)
    import_files(paths)


BAD_PAIRS = {
    "registry-not-json": (
        '[{"name": "A",}]',
        PLAN,
        "lookup_regions.json: $: not JSON: Expecting property name enclosed in double quotes "
        "(line 1, column ",
    ),
    "plan-not-json": (REGISTRY, "{", "lookup_executions.json: $: not JSON: "),
    "registry-not-a-list": (
        {"name": "A"},
        PLAN,
        "lookup_regions.json: $: expected an array of region entries, got an object",
    ),
    "entry-not-an-object": (
        ["Historian"],
        None,
        "lookup_regions.json: $[0]: expected an object with name, type, task, connections, "
        "got a string",
    ),
    "missing-name": (
        [{"type": "Region", "task": "t"}],
        None,
        "lookup_regions.json: $[0]: missing key 'name'",
    ),
    "unknown-key": (
        _edit(REGISTRY, [0, "colour"], "red"),
        PLAN,
        "lookup_regions.json: $[0].colour: unknown key 'colour'",
    ),
    "unknown-region-type": (
        _edit(REGISTRY, [1, "type"], "MockRAGRegion"),
        PLAN,
        "lookup_regions.json: $[1].type: unknown region type 'MockRAGRegion' (expected one of "
        "Region, FeedForwardRegion, RAGRegion, BroadcastRegion, ListenerRegion)",
    ),
    "missing-task": (
        _edit(REGISTRY, [0, "task"], ""),
        PLAN,
        "lookup_regions.json: $[0].task: region 'Historian' (Region) needs a task",
    ),
    "connections-as-a-list": (
        _edit(REGISTRY, [0, "connections"], ["Biography"]),
        PLAN,
        "lookup_regions.json: $[0].connections: expected an object {region: description}, "
        "got an array",
    ),
    "connection-to-a-missing-region": (
        _edit(REGISTRY, [0, "connections"], {"Bio": "x"}),
        PLAN,
        "lookup_regions.json: $[0].connections.Bio: connection to 'Bio', which is not in the "
        "registry",
    ),
    "duplicate-name": (
        _edit(REGISTRY, [1, "name"], "Historian"),
        None,
        "lookup_regions.json: $[1].name: duplicate region name 'Historian'",
    ),
    "bad-threshold": (
        _edit(REGISTRY, [1, "threshold"], "high"),
        PLAN,
        "lookup_regions.json: $[1].threshold: not a number: 'high'",
    ),
    "threshold-out-of-range": (
        _edit(REGISTRY, [1, "threshold"], "1.5"),
        PLAN,
        "lookup_regions.json: $[1].threshold: threshold must be between 0 and 1, got '1.5'",
    ),
    "plan-names-a-missing-region": (
        REGISTRY,
        _edit(PLAN, ["layer_config", 1, "chain0", 0], "Bio"),
        "lookup_executions.json: $.layer_config[1].chain0[0]: region 'Bio' is not in the registry",
    ),
    "plan-not-an-object": (
        REGISTRY,
        [],
        "lookup_executions.json: $: expected an object with layer_config, execution_config, "
        "got an array",
    ),
    "plan-without-plan-keys": (
        REGISTRY,
        {"layers": []},
        "lookup_executions.json: $: not a plan: none of layer_config, execution_config, "
        "execution_order",
    ),
    "layer-not-an-object": (
        REGISTRY,
        _edit(PLAN, ["layer_config", 0], ["Historian"]),
        "lookup_executions.json: $.layer_config[0]: expected an object {chain: [regions]}, "
        "got an array",
    ),
    "bad-pair": (
        REGISTRY,
        _edit(PLAN, ["execution_config", 1, 0], ["Biography"]),
        "lookup_executions.json: $.execution_config[1][0]: expected [region, method], "
        "got ['Biography']",
    ),
    "unknown-method": (
        REGISTRY,
        _edit(PLAN, ["execution_config", 1, 0, 1], "make_questions"),
        "lookup_executions.json: $.execution_config[1][0][1]: RAGRegion 'Biography' has no "
        "method 'make_questions' (it has make_replies, make_updates, request_summaries, "
        "clear_replies, keep_last_reply_per_source)",
    ),
    "region-twice-in-a-layer": (
        REGISTRY,
        _edit(PLAN, ["layer_config", 1, "chain1"], ["Biography"]),
        "lookup_executions.json: $.layer_config[1].chain1[0]: region 'Biography' appears twice "
        "in layer 1 (chains 'chain0' and 'chain1')",
    ),
    "layers-of-the-wrong-type": (
        REGISTRY,
        _edit(PLAN, ["layer_config"], {}),
        "lookup_executions.json: $.layer_config: expected an array of layers, got an object",
    ),
    "order-out-of-range": (
        REGISTRY,
        _edit(PLAN, ["execution_order", 1], 2),
        "lookup_executions.json: $.execution_order[1]: layer 2 does not exist (2 layers)",
    ),
    "order-not-integers": (
        REGISTRY,
        _edit(PLAN, ["execution_order", 0], "0"),
        "lookup_executions.json: $.execution_order[0]: expected a layer index, got a string",
    ),
    "plan-given-alone": (
        PLAN,
        None,
        "lookup_regions.json: $: this is a plan; give the registry first: regions import "
        "REGIONS.json PLAN.json",
    ),
    "plan-and-registry-swapped": (
        PLAN,
        REGISTRY,
        "lookup_regions.json: $: this is a plan; give the registry first: regions import "
        "REGIONS.json PLAN.json",
    ),
}


@pytest.mark.parametrize(("registry", "plan", "message"), BAD_PAIRS.values(), ids=list(BAD_PAIRS))
def test_bad_registry_or_plan(tmp_path: Path, registry: Any, plan: Any, message: str) -> None:
    with pytest.raises(SeedFormatError) as caught:
        _import_pair(tmp_path, registry, plan)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


BAD_STATES = {
    "missing-key": (
        {k: v for k, v in STATE.items() if k != "flowEdges"},
        "x_state.json: $: missing key 'flowEdges' of a flow-editor state",
    ),
    "unknown-type-name": (
        _edit(STATE, ["flowNodes", 1, "data", "typeName"], "MockRegion"),
        "x_state.json: $.flowNodes[1].data.typeName: unknown region type 'MockRegion'",
    ),
    "bad-params": (
        _edit(STATE, ["flowNodes", 0, "data", "params", "threshold"], True),
        "x_state.json: $.flowNodes[0].data.params.threshold: expected a number, got a boolean",
    ),
    "edge-to-no-node": (
        _edit(STATE, ["flowEdges", 0, "target"], "n9"),
        "x_state.json: $.flowEdges[0].target: no node with id 'n9'",
    ),
    "plan-names-a-missing-region": (
        _edit(STATE, ["layerConfig", 0, "c", 0], "Z"),
        "x_state.json: $.layerConfig[0].c[0]: region 'Z' is not in the registry",
    ),
}


@pytest.mark.parametrize(("state", "message"), BAD_STATES.values(), ids=list(BAD_STATES))
def test_bad_state(tmp_path: Path, state: Any, message: str) -> None:
    path = tmp_path / "x_state.json"
    path.write_text(json.dumps(state))
    with pytest.raises(SeedFormatError) as caught:
        import_files([path])
    assert str(caught.value).startswith(message)


def test_a_good_state_imports(tmp_path: Path) -> None:
    path = tmp_path / "x_state.json"
    path.write_text(json.dumps(STATE))
    data = import_files([path]).data()
    assert data["regions"]["A"]["connections"] == ["B"]


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(SeedFormatError, match=r"^nope\.json: \$: cannot read: "):
        import_files([tmp_path / "nope.json"])
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SeedFormatError, match=r"^bin\.json: \$: not UTF-8 text$"):
        import_files([binary])


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom_regions.json"
    path.write_bytes("\ufeff".encode() + json.dumps(REGISTRY).encode())
    assert list(import_files([path]).data()["regions"]) == ["Historian", "Biography"]
