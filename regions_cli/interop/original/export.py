"""Exporting our workflow as the original Regions framework's registry and plan JSON.

`export_workflow` turns a `Workflow` into what the original's files can say, and lists what they
cannot express (inject, llms, rags, per-step policies...); `ExportResult.write` writes the two
files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regions_cli.interop.original.parse import DEFAULT_THRESHOLD, ORIGINAL_TYPES
from regions_cli.model import END, Budget, DeliveryConfig, Layer, StepPolicy, Workflow
from regions_cli.text import plural


@dataclass
class ExportResult:
    """The two JSON documents of an export and what could not be expressed in them."""

    name: str
    regions: list[dict[str, Any]]
    executions: dict[str, Any]
    dropped: list[str]

    def write(self, directory: Path, *, force: bool = False) -> list[Path]:
        """Write ``<name>_regions.json`` and ``<name>_executions.json`` into `directory`.

        Refuses (FileExistsError) to replace an existing file unless `force` is set.
        """
        directory.mkdir(parents=True, exist_ok=True)
        targets = [
            (directory / f"{self.name}_regions.json", self.regions),
            (directory / f"{self.name}_executions.json", self.executions),
        ]
        if not force:
            for path, _ in targets:
                if path.exists():
                    raise FileExistsError(f"{path} exists (use --force to replace it)")
        for path, payload in targets:
            path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", "utf-8")
        return [path for path, _ in targets]


def export_workflow(workflow: Workflow) -> ExportResult:
    """The registry and plan for `workflow`, and a list of what they cannot express.

    Raises `ValueError` when the plan has a shape the original cannot run (a chain that
    interleaves the steps of two regions, or a region in two chains of one layer), or the
    workflow needs what it lacks (conditions, waits, routers, sub-workflows, tools).
    """
    dropped: list[str] = []
    registry: list[dict[str, Any]] = []
    plan = unrolled(workflow)
    for region in workflow.regions.values():
        if region.type not in ORIGINAL_TYPES:
            raise ValueError(f"region {region.name}: the original has no {region.type}")
        if region.tools:  # without them the region could not do its task: refuse, not drop
            raise ValueError(f"region {region.name}: the original has no tools")
        registry.append(
            {
                "name": region.name,
                "type": region.type,
                "task": region.task if region.type != "ListenerRegion" else "",
                "connections": dict(region.connections),
                "reply_with_actors": region.reply_with_actors
                if region.type == "RAGRegion"
                else False,
                "threshold": region.threshold
                if region.type == "RAGRegion" and region.threshold != DEFAULT_THRESHOLD
                else None,
            }
        )
        if region.type == "RAGRegion" and region.threshold == 0:
            dropped.append(f"{region.name}: threshold 0 (the original reads 0 as its default 0.5)")
        if region.prompts:
            dropped.append(f"{region.name}: prompts ({', '.join(region.prompts)})")
        if region.max_results is not None:
            dropped.append(f"{region.name}: max_results")
        if region.sink is not None or region.taps:
            dropped.append(f"{region.name}: the listener's sink/taps")
        if region.llm not in (None, "default"):
            dropped.append(f"{region.name}: llm {region.llm!r}")

    layer_config: list[dict[str, list[str]]] = []
    execution_config: list[list[list[str]]] = []
    order: list[int] = []
    seen: dict[str, int] = {}
    policies = False
    for layer in plan:
        chains, pairs = _export_layer(layer)
        key = json.dumps([chains, pairs])
        if key not in seen:
            seen[key] = len(layer_config)
            layer_config.append(chains)
            execution_config.append(pairs)
        order.append(seen[key])
        policies = policies or any(
            step.policy != workflow.defaults for chain in layer.chains for step in chain.steps
        )

    labels = [layer.label for layer in workflow.plan]
    if workflow.is_machine or any(label != f"layer-{i}" for i, label in enumerate(labels)):
        dropped.append("layer labels (the original numbers its layers)")
    if policies:
        dropped.append("per-step timeout/retries/on_failure")
    if workflow.defaults != StepPolicy():
        dropped.append("defaults:")
    if workflow.inject:
        messages = plural(len(workflow.inject), "message")
        dropped.append(f"inject: ({messages}; the original injects in Python)")
    if not all(llm.implied for llm in workflow.llms.values()):
        dropped.append(f"llms: ({', '.join(workflow.llms)})")
    if workflow.rags:
        dropped.append(f"rags: ({', '.join(workflow.rags)}) and each RAGRegion's rag:")
    if not all(e.options.get("_implied") for e in workflow.embedders.values()):
        dropped.append(f"embedders: ({', '.join(workflow.embedders)})")
    if workflow.delivery != DeliveryConfig():
        dropped.append("delivery:")
    if workflow.budget != Budget():
        dropped.append("budget:")
    return ExportResult(
        name=workflow.name,
        regions=registry,
        executions={
            "layer_config": layer_config,
            "execution_config": execution_config,
            "execution_order": order,
        },
        dropped=dropped,
    )


#: Most layers an unrolled state machine may have (far more than any real plan).
MAX_UNROLLED = 10_000


def unrolled(workflow: Workflow) -> list[Layer]:
    """The layers a run goes through, in order: the plan, or a state machine whose transitions
    are all unconditional written out (as `regions import` reads a bounded state back).

    Raises `ValueError` for what a fixed ``execution_order`` cannot say: a condition, a wait,
    ``on_exhausted: fail``, or more than `MAX_UNROLLED` layers.
    """
    if not workflow.is_machine:
        layers = list(workflow.plan)
    else:
        layers = []
        visits: dict[str, int] = {}
        current = workflow.start
        for _ in range(MAX_UNROLLED):  # each round enters a state or follows on_exhausted
            if current == END:
                break
            state = workflow.states[current]
            if state.max_visits is not None and visits.get(current, 0) >= state.max_visits:
                if state.on_exhausted == "fail":
                    raise ValueError(
                        f"state {current}: on_exhausted: fail has no counterpart in the original"
                    )
                current = state.on_exhausted
                continue
            visits[current] = visits.get(current, 0) + 1
            layers.extend(workflow.plan[i] for i in state.layers)
            if len(layers) > MAX_UNROLLED:
                raise ValueError(f"the states run more than {MAX_UNROLLED} layers unrolled")
            first = state.next[0] if state.next else None
            if first is not None and first.when is not None:
                raise ValueError(
                    f"state {current}: a transition with a condition has no counterpart in the "
                    "original (it runs a fixed execution_order)"
                )
            current = first.to if first is not None else END
        else:
            raise ValueError(f"the states run more than {MAX_UNROLLED} layers unrolled")
    for layer in layers:
        if layer.wait is not None:
            raise ValueError(f"layer {layer.label}: the original cannot wait for a person")
    return layers


def _export_layer(layer: Layer) -> tuple[dict[str, list[str]], list[list[str]]]:
    chains: dict[str, list[str]] = {}
    pairs: list[list[str]] = []
    owner: dict[str, str] = {}
    for chain in layer.chains:
        members: list[str] = []
        for step in chain.steps:
            if step.region in owner and owner[step.region] != chain.name:
                raise ValueError(
                    f"layer {layer.label}: {step.region} is in chains {owner[step.region]!r} "
                    f"and {chain.name!r}; the original allows a region in one chain per layer"
                )
            if members and members[-1] != step.region and step.region in members:
                raise ValueError(
                    f"layer {layer.label}, chain {chain.name}: the steps of {step.region} are "
                    "not together; the original runs all of a region's steps in a row"
                )
            owner[step.region] = chain.name
            if not members or members[-1] != step.region:
                members.append(step.region)
            pairs.append([step.region, step.method])
        chains[chain.name] = members
    return chains, pairs
