"""Reading the original Regions framework's JSON files into the intermediate form.

The original describes a workflow in two files written by its flow editor or by hand (see the
docs' page docs/import-export.md):

* the registry, ``<name>_regions.json``: a list of ``{name, type, task, connections,
  reply_with_actors, threshold, delay}``;
* the plan, ``<name>_executions.json``: ``{layer_config, execution_config, execution_order}``;

and the flow editor also saves a full state (``*_state.json`` / ``*_full_state.json``) with node
positions. `read_seed` reads any of these forms into a `SeedWorkflow` (the original's view: layer
indices, not labels), checking every value; `regions_cli.interop.original.to_yaml` writes it as
our YAML.

Problems with the input raise `SeedFormatError`, whose message names the file and the JSON path
of the offending value.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from regions_cli.model import METHODS

#: The registry keys the original's `RegionEntry` accepts (``rag``/``llm``/``region`` are set
#: in Python and never appear in files; we accept and ignore them).
REGISTRY_KEYS = frozenset(
    {"name", "type", "task", "connections", "reply_with_actors", "threshold", "delay"}
)
_PROGRAMMATIC_KEYS = frozenset({"rag", "llm", "region"})
PLAN_KEYS = ("layer_config", "execution_config", "execution_order")
#: The original's region types (ours add RouterRegion and WorkflowRegion, which it lacks).
ORIGINAL_TYPES = ("Region", "FeedForwardRegion", "RAGRegion", "BroadcastRegion", "ListenerRegion")
STATE_KEYS = ("flowNodes", "flowEdges", "layerConfig", "executionConfig", "executionOrder")

#: The original RAGRegion's default threshold; an explicit 0.5 is not repeated in the YAML.
DEFAULT_THRESHOLD = 0.5
_NAME_SUFFIXES = ("_full_state", "_state", "_regions", "_executions", "_registry", "_plan")
_REGION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class SeedFormatError(ValueError):
    """The input is not a valid original-framework file; `str()` is one line for the user."""

    def __init__(self, file: str, path: str, message: str) -> None:
        super().__init__(f"{file}: {path}: {message}")
        self.file = file
        self.path = path
        self.message = message


# --------------------------------------------------------------------------------------------
# The intermediate form an import goes through
# --------------------------------------------------------------------------------------------


@dataclass
class SeedRegion:
    """One registry entry, after type coercion (``"0.65"`` -> 0.65, ``[]`` -> no connections)."""

    name: str
    type: str
    task: str = ""
    connections: dict[str, str] = field(default_factory=dict)
    reply_with_actors: bool = False
    threshold: float | None = None


@dataclass
class SeedWorkflow:
    """A registry plus a plan, as the original sees them (layer indices, not labels)."""

    name: str
    sources: list[str]
    regions: list[SeedRegion]
    layer_config: list[dict[str, list[str]]]
    execution_config: list[list[tuple[str, str]]]
    execution_order: list[int]
    layout: dict[str, tuple[float, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was converted (header comments)
    warnings: list[str] = field(default_factory=list)  # what was dropped (stderr + comments)


# --------------------------------------------------------------------------------------------
# Reading the original's files
# --------------------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM, as some editors write, is fine
    except OSError as exc:
        raise SeedFormatError(path.name, "$", f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SeedFormatError(path.name, "$", "not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SeedFormatError(
            path.name, "$", f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None


def _type_name(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _expect(value: Any, kind: type | tuple[type, ...], file: str, path: str, what: str) -> None:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SeedFormatError(file, path, f"expected {what}, got {_type_name(value)}")


def _key_path(base: str, key: str) -> str:
    return f"{base}.{key}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else f"{base}[{key!r}]"


def _threshold(value: Any, file: str, path: str) -> float | None:
    """The original passes a threshold only when truthy and then calls float() on it."""
    if not value:
        return None
    if isinstance(value, bool):
        raise SeedFormatError(file, path, "expected a number, got a boolean")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SeedFormatError(file, path, f"not a number: {value!r}") from None
    if not math.isfinite(number) or not 0.0 <= number <= 1.0:
        raise SeedFormatError(file, path, f"threshold must be between 0 and 1, got {value!r}")
    return number


def _region_type(value: Any, file: str, path: str) -> str:
    """`value` if it names one of the original's region types (its test doubles do not)."""
    if value not in ORIGINAL_TYPES:
        expected = ", ".join(ORIGINAL_TYPES)
        raise SeedFormatError(
            file, path, f"unknown region type {value!r} (expected one of {expected})"
        )
    return str(value)


def _region_entry(item: Any, index: int, file: str, warnings: list[str]) -> SeedRegion:
    """One registry entry -> `SeedRegion` (connections are checked later, against all names)."""
    base = f"$[{index}]"
    _expect(item, dict, file, base, "an object with name, type, task, connections")
    for key in item:
        if key not in REGISTRY_KEYS and key not in _PROGRAMMATIC_KEYS:
            raise SeedFormatError(file, _key_path(base, key), f"unknown key {key!r}")
    if "name" not in item:
        raise SeedFormatError(file, base, "missing key 'name'")
    name = item["name"]
    _expect(name, str, file, f"{base}.name", "a string")
    if not _REGION_NAME.match(name):
        raise SeedFormatError(
            file, f"{base}.name", f"{name!r} is not a valid region name ([A-Za-z_][A-Za-z0-9_-]*)"
        )
    rtype = _region_type(item.get("type"), file, f"{base}.type")
    task = item.get("task")
    if task is None:
        task = ""
    _expect(task, str, file, f"{base}.task", "a string")
    if not task and rtype not in ("ListenerRegion", "BroadcastRegion"):
        raise SeedFormatError(file, f"{base}.task", f"region {name!r} ({rtype}) needs a task")
    connections = _connections(item.get("connections"), file, f"{base}.connections")
    region = SeedRegion(name=name, type=rtype, task=task, connections=connections)
    _type_specific(region, item, file, base, warnings)
    return region


def _connections(raw: Any, file: str, path: str) -> dict[str, str]:
    # The original treats [], {} and null alike: no connections.
    if raw is None or raw == []:
        return {}
    _expect(raw, dict, file, path, "an object {region: description}")
    out: dict[str, str] = {}
    for target, description in raw.items():
        if description is None:
            description = ""
        _expect(description, str, file, _key_path(path, target), "a string description")
        out[target] = description
    return out


def _type_specific(
    region: SeedRegion, item: Mapping[str, Any], file: str, base: str, warnings: list[str]
) -> None:
    """Apply the fields only some types take; drop (with a warning) what ours cannot use."""
    threshold = _threshold(item.get("threshold"), file, f"{base}.threshold")
    actors = item.get("reply_with_actors")
    if actors is not None and not isinstance(actors, bool):
        raise SeedFormatError(file, f"{base}.reply_with_actors", "expected true or false")
    if region.type == "RAGRegion":
        region.threshold = threshold
        region.reply_with_actors = bool(actors)
    else:
        # The original passes these only when truthy, and a non-RAG class rejects them.
        if threshold is not None:
            warnings.append(f"{region.name}: dropped threshold (only a RAGRegion has one)")
        if actors:
            warnings.append(f"{region.name}: dropped reply_with_actors (only a RAGRegion has it)")
    if item.get("delay"):
        warnings.append(
            f"{region.name}: dropped delay {item['delay']!r} (our listeners are event-driven)"
        )
    if region.type == "ListenerRegion":
        if region.connections:
            warnings.append(
                f"{region.name}: dropped connections of a ListenerRegion "
                f"({', '.join(region.connections)}); a listener only receives"
            )
            region.connections = {}
        region.task = ""


def _check_regions(regions: list[SeedRegion], file: str, path_of: Sequence[str]) -> None:
    """Names unique; every connection names a region of the registry."""
    seen: dict[str, int] = {}
    for index, region in enumerate(regions):
        if region.name in seen:
            raise SeedFormatError(
                file, f"{path_of[index]}.name", f"duplicate region name {region.name!r}"
            )
        seen[region.name] = index
    for index, region in enumerate(regions):
        for target in region.connections:
            if target not in seen:
                raise SeedFormatError(
                    file,
                    _key_path(f"{path_of[index]}.connections", target),
                    f"connection to {target!r}, which is not in the registry",
                )


def parse_registry(data: Any, file: str) -> tuple[list[SeedRegion], list[str]]:
    """A registry JSON value -> regions and warnings. Raises `SeedFormatError`."""
    _expect(data, list, file, "$", "an array of region entries")
    warnings: list[str] = []
    regions = [_region_entry(item, i, file, warnings) for i, item in enumerate(data)]
    _check_regions(regions, file, [f"$[{i}]" for i in range(len(regions))])
    return regions, warnings


def _list_or_empty(value: Any) -> Any:
    # A missing key or null means "none" (the original resets missing keys to []); any other
    # value is checked for its type by the caller.
    return [] if value is None else value


@dataclass
class _PlanKeys:
    layers: str
    executions: str
    order: str


_PLAN_JSON = _PlanKeys("layer_config", "execution_config", "execution_order")
_PLAN_STATE = _PlanKeys("layerConfig", "executionConfig", "executionOrder")


def parse_plan(
    data: Any, file: str, regions: Sequence[SeedRegion], keys: _PlanKeys = _PLAN_JSON
) -> tuple[list[dict[str, list[str]]], list[list[tuple[str, str]]], list[int]]:
    """Check a plan against the registry; return (layer_config, execution_config, order)."""
    _expect(data, dict, file, "$", "an object with layer_config, execution_config")
    if not any(k in data for k in (keys.layers, keys.executions, keys.order)):
        raise SeedFormatError(
            file, "$", f"not a plan: none of {keys.layers}, {keys.executions}, {keys.order}"
        )
    types = {r.name: r.type for r in regions}

    raw_layers = _list_or_empty(data.get(keys.layers))
    _expect(raw_layers, list, file, f"$.{keys.layers}", "an array of layers")
    layer_config: list[dict[str, list[str]]] = []
    for i, layer in enumerate(raw_layers):
        lpath = f"$.{keys.layers}[{i}]"
        _expect(layer, dict, file, lpath, "an object {chain: [regions]}")
        chains: dict[str, list[str]] = {}
        placed: dict[str, str] = {}
        for chain, members in layer.items():
            cpath = _key_path(lpath, chain)
            _expect(members, list, file, cpath, "an array of region names")
            for j, member in enumerate(members):
                mpath = f"{cpath}[{j}]"
                _expect(member, str, file, mpath, "a region name")
                if member not in types:
                    raise SeedFormatError(file, mpath, f"region {member!r} is not in the registry")
                if member in placed:
                    raise SeedFormatError(
                        file,
                        mpath,
                        f"region {member!r} appears twice in layer {i} "
                        f"(chains {placed[member]!r} and {chain!r})",
                    )
                placed[member] = chain
            chains[chain] = list(members)
        layer_config.append(chains)

    raw_exec = _list_or_empty(data.get(keys.executions))
    _expect(raw_exec, list, file, f"$.{keys.executions}", "an array of layers of pairs")
    execution_config: list[list[tuple[str, str]]] = []
    for i, pairs in enumerate(raw_exec):
        epath = f"$.{keys.executions}[{i}]"
        _expect(pairs, list, file, epath, "an array of [region, method] pairs")
        members = {
            m
            for chain in (layer_config[i] if i < len(layer_config) else {}).values()
            for m in chain
        }
        layer_pairs: list[tuple[str, str]] = []
        for j, pair in enumerate(pairs):
            ppath = f"{epath}[{j}]"
            if (
                not isinstance(pair, list)
                or len(pair) != 2
                or not all(isinstance(p, str) and p for p in pair)
            ):
                raise SeedFormatError(file, ppath, f"expected [region, method], got {pair!r}")
            region, method = pair
            # Pairs of regions outside this layer's chains never run (the caller warns); only
            # check the ones that will.
            if region in members and method not in METHODS[types[region]]:
                raise SeedFormatError(
                    file,
                    f"{ppath}[1]",
                    f"{types[region]} {region!r} has no method {method!r} "
                    f"(it has {', '.join(METHODS[types[region]])})",
                )
            layer_pairs.append((region, method))
        execution_config.append(layer_pairs)

    raw_order = _list_or_empty(data.get(keys.order))
    _expect(raw_order, list, file, f"$.{keys.order}", "an array of layer indices")
    order: list[int] = []
    for k, index in enumerate(raw_order):
        opath = f"$.{keys.order}[{k}]"
        _expect(index, int, file, opath, "a layer index")
        if not 0 <= index < len(layer_config):
            raise SeedFormatError(
                file, opath, f"layer {index} does not exist ({len(layer_config)} layers)"
            )
        order.append(index)
    return layer_config, execution_config, order


def parse_state(data: Any, file: str) -> SeedWorkflow:
    """The flow editor's full state -> `SeedWorkflow` (connections come from the edges)."""
    _expect(data, dict, file, "$", "the flow editor's full state (an object)")
    for key in STATE_KEYS:
        if key not in data:
            raise SeedFormatError(file, "$", f"missing key {key!r} of a flow-editor state")
    nodes = data["flowNodes"]
    _expect(nodes, list, file, "$.flowNodes", "an array of nodes")
    warnings: list[str] = []
    regions: list[SeedRegion] = []
    by_id: dict[str, SeedRegion] = {}
    layout: dict[str, tuple[float, float]] = {}
    paths: list[str] = []
    for i, node in enumerate(nodes):
        npath = f"$.flowNodes[{i}]"
        _expect(node, dict, file, npath, "a node object")
        node_data = node.get("data")
        _expect(node_data, dict, file, f"{npath}.data", "an object with typeName and params")
        rtype = _region_type(node_data.get("typeName"), file, f"{npath}.data.typeName")
        params = node_data.get("params")
        _expect(params, dict, file, f"{npath}.data.params", "an object")
        # The editor keeps a stale `type` key and its own `connections` copy in params; the
        # type comes from typeName and the connections from the edges, as its export does.
        entry = {k: v for k, v in params.items() if k in REGISTRY_KEYS and k != "connections"}
        entry["type"] = rtype
        try:
            region = _region_entry(entry, i, file, warnings)
        except SeedFormatError as exc:
            raise SeedFormatError(
                file, exc.path.replace(f"$[{i}]", f"{npath}.data.params", 1), exc.message
            ) from None
        node_id = node.get("id")
        _expect(node_id, str, file, f"{npath}.id", "a string id")
        by_id[node_id] = region
        regions.append(region)
        paths.append(f"{npath}.data.params")
        position = node.get("position")
        if isinstance(position, dict) and all(
            isinstance(position.get(c), int | float) for c in ("x", "y")
        ):
            layout[region.name] = (round(position["x"], 1), round(position["y"], 1))

    edges = data["flowEdges"]
    _expect(edges, list, file, "$.flowEdges", "an array of edges")
    for i, edge in enumerate(edges):
        epath = f"$.flowEdges[{i}]"
        _expect(edge, dict, file, epath, "an edge object")
        for end in ("source", "target"):
            if edge.get(end) not in by_id:
                raise SeedFormatError(file, f"{epath}.{end}", f"no node with id {edge.get(end)!r}")
        source, target = by_id[edge["source"]], by_id[edge["target"]]
        if source.type == "ListenerRegion":
            warnings.append(
                f"{source.name}: dropped an edge to {target.name} (a listener only receives)"
            )
            continue
        source.connections[target.name] = target.task
    _check_regions(regions, file, paths)

    layer_config, execution_config, order = parse_plan(data, file, regions, _PLAN_STATE)
    seed = SeedWorkflow(
        name=workflow_name(Path(file)),
        sources=[file],
        regions=regions,
        layer_config=layer_config,
        execution_config=execution_config,
        execution_order=order,
        layout=layout,
        warnings=warnings,
    )
    seed.notes.append("connections come from the editor's edges (described by the target's task)")
    seed.notes.append("node positions are kept under layout:")
    return seed


def workflow_name(path: Path) -> str:
    """``lit_demo_regions.json`` -> ``lit_demo``: the file stem without the editor's suffixes."""
    stem = path.stem
    for suffix in _NAME_SUFFIXES:
        if stem.endswith(suffix) and len(stem) > len(suffix):
            stem = stem[: -len(suffix)]
            break
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_")
    return name or "imported"


def starter_plan(seed: SeedWorkflow) -> SeedWorkflow:
    """Give a registry that came without a plan the usual three layers, so it can run.

    Ask (every LLM region with connections asks them), look up (whoever was asked answers),
    answer (the askers answer what they were asked). Without askers: one layer in which every
    region that can answer does. The header comment says the plan was generated.
    """
    askers = [
        r for r in seed.regions if r.type in ("Region", "FeedForwardRegion") and r.connections
    ]
    answering = ("Region", "FeedForwardRegion", "RAGRegion")
    by_name = {r.name: r for r in seed.regions}
    asked = [
        name
        for name in dict.fromkeys(t for r in askers for t in r.connections)
        if by_name[name].type in answering
    ]
    layers: list[list[tuple[str, str]]] = []
    if askers:
        layers.append([(r.name, "make_questions") for r in askers])
        if asked:
            layers.append([(name, "make_replies") for name in asked])
        layers.append([(r.name, "make_replies") for r in askers])
    else:
        repliers = [(r.name, "make_replies") for r in seed.regions if r.type in answering]
        if repliers:
            layers.append(repliers)
    seed.layer_config = [{region: [region] for region, _ in layer} for layer in layers]
    seed.execution_config = [list(layer) for layer in layers]
    seed.execution_order = list(range(len(layers)))
    if layers:
        seed.notes.append(
            "the registry came without a plan: this starter plan was generated (ask, look up, "
            "answer); edit it to suit"
        )
    return seed


def read_seed(paths: Sequence[Path]) -> SeedWorkflow:
    """Read one state file, a registry alone, or a registry and a plan."""
    if not 1 <= len(paths) <= 2:
        raise ValueError("give a full-state file, a registry, or a registry and a plan")
    first = _read_json(paths[0])
    file = paths[0].name
    if len(paths) == 1 and isinstance(first, dict) and "flowNodes" in first:
        return parse_state(first, file)
    if isinstance(first, dict) and any(k in first for k in PLAN_KEYS):
        raise SeedFormatError(
            file,
            "$",
            "this is a plan; give the registry first: regions import REGIONS.json PLAN.json",
        )
    regions, warnings = parse_registry(first, file)
    if len(paths) == 1:
        seed = starter_plan(SeedWorkflow(workflow_name(paths[0]), [file], regions, [], [], []))
        seed.warnings.extend(warnings)
        return seed
    plan_file = paths[1].name
    layer_config, execution_config, order = parse_plan(_read_json(paths[1]), plan_file, regions)
    seed = SeedWorkflow(
        workflow_name(paths[0]), [file, plan_file], regions, layer_config, execution_config, order
    )
    seed.warnings.extend(warnings)
    return seed
