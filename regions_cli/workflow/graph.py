"""Diagrams of a workflow (``regions graph``): regions, connections, injected messages and the
plan, as Mermaid or Graphviz dot text, so a plan can be seen without the GUI.

The diagram has two parts: the region graph (an arrow for each connection, a dashed arrow from
each external sender of an ``inject:`` message, a dotted "tap" arrow into each listener) and
the plan (one box per layer, in order; each chain is a row of its steps).

A workflow with ``states:`` is a state machine: in Mermaid a ``stateDiagram-v2`` (each state a
composite state holding its layers, each transition labelled with its condition), in dot the
region graph plus a cluster per state.
"""

from __future__ import annotations

import itertools
import re

from regions_cli.model import (
    END,
    AllOf,
    AnyOf,
    Condition,
    FieldTest,
    Layer,
    Not,
    Says,
    State,
    Workflow,
)


def _mermaid_label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def to_mermaid(workflow: Workflow) -> str:
    """A Mermaid ``flowchart`` of `workflow` (paste into Markdown on GitHub to render it); a
    ``stateDiagram-v2`` for a state machine."""
    if workflow.is_machine:
        return _machine_mermaid(workflow)
    ids = {name: f"r{i}" for i, name in enumerate(workflow.regions)}
    out = ["flowchart LR", f"  %% workflow {workflow.name}"]
    for name, region in workflow.regions.items():
        out.append(f"  {ids[name]}[{_mermaid_label(f'{name}<br/>{region.type}')}]")
    for name, region in workflow.regions.items():
        for target in region.connections:
            if target in ids:
                out.append(f"  {ids[name]} --> {ids[target]}")
        for tapped in region.taps:  # a listener copies this region's traffic
            if tapped in ids:
                out.append(f"  {ids[tapped]} -. tap .-> {ids[name]}")
    externals: dict[str, str] = {}
    for injection in workflow.inject:
        if injection.source not in ids and injection.source not in externals:
            externals[injection.source] = f"x{len(externals)}"
            out.append(f"  {externals[injection.source]}([{_mermaid_label(injection.source)}])")
        source = ids.get(injection.source) or externals[injection.source]
        if injection.destination in ids:
            out.append(f"  {source} -. {injection.role} .-> {ids[injection.destination]}")
    if workflow.plan:
        out.append('  subgraph plan["plan"]')
        out.append("    direction TB")
        for layer in workflow.plan:
            out.append(f"    subgraph L{layer.index}[{_mermaid_label(_layer_title(layer))}]")
            out.append("      direction LR")
            for c, chain in enumerate(layer.chains):
                previous = None
                for s, step in enumerate(chain.steps):
                    node = f"L{layer.index}c{c}s{s}"
                    label = f"{chain.name}: {step.label}" if s == 0 else step.label
                    out.append(f"      {node}[{_mermaid_label(label)}]")
                    if previous:
                        out.append(f"      {previous} --> {node}")
                    previous = node
            out.append("    end")
        for before, after in itertools.pairwise(workflow.plan):
            out.append(f"    L{before.index} ==> L{after.index}")
        out.append("  end")
    return "\n".join(out) + "\n"


def _layer_title(layer: Layer) -> str:
    return f"layer {layer.index + 1}: {layer.label}"


def _dot(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(workflow: Workflow) -> str:
    """A Graphviz ``digraph`` of `workflow` (render with ``dot -Tsvg``); a state machine has a
    cluster per state."""
    out = [f"digraph {_dot(workflow.name)} {{", "  rankdir=LR;", "  node [shape=box];"]
    for name, region in workflow.regions.items():
        label = _dot(name + "\n" + region.type)
        out.append(f"  {_dot(name)} [label={label}];")
    for name, region in workflow.regions.items():
        for target in region.connections:
            if target in workflow.regions:
                out.append(f"  {_dot(name)} -> {_dot(target)};")
        for tapped in region.taps:
            if tapped in workflow.regions:
                out.append(f'  {_dot(tapped)} -> {_dot(name)} [style=dotted, label="tap"];')
    for injection in workflow.inject:
        if injection.source not in workflow.regions:
            out.append(f"  {_dot(injection.source)} [shape=ellipse, style=dashed];")
        out.append(
            f"  {_dot(injection.source)} -> {_dot(injection.destination)} "
            f"[style=dashed, label={_dot(injection.role)}];"
        )
    if workflow.is_machine:
        out.extend(_machine_dot(workflow))
    elif workflow.plan:
        out.append("  subgraph cluster_plan {")
        out.append('    label="plan";')
        firsts: list[str] = []
        for layer in workflow.plan:
            out.append(f"    subgraph cluster_layer{layer.index} {{")
            out.append(f"      label={_dot(_layer_title(layer))};")
            first = ""
            for c, chain in enumerate(layer.chains):
                previous = None
                for s, step in enumerate(chain.steps):
                    node = _dot(f"L{layer.index}.{c}.{s}")
                    label = f"{chain.name}: {step.label}" if s == 0 else step.label
                    out.append(f"      {node} [label={_dot(label)}];")
                    if previous:
                        out.append(f"      {previous} -> {node};")
                    previous = node
                    first = first or node
            out.append("    }")
            if first:
                firsts.append(first)
        for before, after in itertools.pairwise(firsts):
            out.append(f"    {before} -> {after} [style=bold, color=gray];")
        out.append("  }")
    out.append("}")
    return "\n".join(out) + "\n"


# --- state machines ------------------------------------------------------------------------------


def condition_text(condition: Condition | None) -> str:
    """A short text of a transition's condition (``Critic says /APPROVED/``; "" for always)."""
    match condition:
        case None:
            return ""
        case Says(pattern, None):
            return f"output /{pattern}/"
        case Says(pattern, region):
            return f"{region} says /{pattern}/"
        case FieldTest(region, path, "equals", value):
            return f"{region}.{path} = {_value(value)}"
        case FieldTest(region, path, "in", values):
            return f"{region}.{path} in [{', '.join(_value(v) for v in values)}]"
        case FieldTest(region, path, _, pattern):
            return f"{region}.{path} matches /{pattern}/"
        case AllOf(items):
            return " and ".join(_grouped(item) for item in items)
        case AnyOf(items):
            return " or ".join(_grouped(item) for item in items)
        case Not(item):
            return f"not {_grouped(item)}"
    return ""  # pragma: no cover - the cases above are exhaustive


def _grouped(condition: Condition) -> str:
    text = condition_text(condition)
    return f"({text})" if isinstance(condition, (AllOf, AnyOf)) else text


def _value(value: object) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _exhausted_text(state: State) -> str:
    return f"after {state.max_visits} visits" + (", fails" if state.on_exhausted == "fail" else "")


def _state_ids(workflow: Workflow) -> dict[str, str]:
    """A Mermaid id per state: its name where Mermaid reads it as one, else a safe variant."""
    ids: dict[str, str] = {}
    for name in workflow.states:
        base = re.sub(r"[^A-Za-z0-9_]", "_", name)
        ident, n = base, 1
        while ident in ids.values() or ident == END:
            n += 1
            ident = f"{base}_{n}"
        ids[name] = ident
    return ids


def _mermaid_text(text: str) -> str:
    """Text after ``id :`` or a transition's ``:`` (one line, no quotes or colons)."""
    return " ".join(text.replace('"', "#quot;").replace(":", "#colon;").split())


def _layer_lines(layer: Layer) -> list[str]:
    """A layer in words: its title, then a line per chain (or what a wait asks)."""
    if layer.wait is not None:
        lines = [f"wait for {layer.wait.region}"]
        if layer.wait.prompt:
            lines.append(f"asks {layer.wait.prompt}")
        return [f"{layer.label}", *lines]
    return [
        f"{layer.label}",
        *(
            f"{chain.name} = {', '.join(step.label for step in chain.steps)}"
            for chain in layer.chains
        ),
    ]


def _machine_mermaid(workflow: Workflow) -> str:
    ids = _state_ids(workflow)
    out = ["stateDiagram-v2", f"  %% workflow {workflow.name}", f"  [*] --> {ids[workflow.start]}"]
    for name, state in workflow.states.items():
        sid = ids[name]
        out.append(f"  state {sid} {{")
        layers = [workflow.plan[i] for i in state.layers]
        for layer in layers:
            for line in _layer_lines(layer):
                out.append(f"    {sid}_L{layer.index} : {_mermaid_text(line)}")
        for before, after in itertools.pairwise(layers):
            out.append(f"    {sid}_L{before.index} --> {sid}_L{after.index}")
        out.append("  }")
    for name, state in workflow.states.items():
        for transition in state.next:
            target = "[*]" if transition.to == END else ids.get(transition.to, transition.to)
            label = _mermaid_text(condition_text(transition.when))
            out.append(f"  {ids[name]} --> {target}" + (f" : {label}" if label else ""))
        if state.max_visits is not None:
            exhausted = state.on_exhausted
            target = "[*]" if exhausted in (END, "fail") else ids.get(exhausted, exhausted)
            out.append(f"  {ids[name]} --> {target} : {_mermaid_text(_exhausted_text(state))}")
    return "\n".join(out) + "\n"


def _machine_dot(workflow: Workflow) -> list[str]:
    out = [
        '  "[start]" [shape=circle, label="", style=filled, fillcolor=black, width=0.2];',
        '  "[end]" [shape=doublecircle, label="", style=filled, fillcolor=black, width=0.15];',
    ]
    anchors = {name: f"state.{name}" for name in workflow.states}
    for s, (name, state) in enumerate(workflow.states.items()):
        visits = f" (at most {state.max_visits} visits)" if state.max_visits is not None else ""
        out.append(f"  subgraph cluster_state{s} {{")
        out.append(f"    label={_dot(f'state {name}{visits}')};")
        out.append("    style=rounded;")
        out.append(f"    {_dot(anchors[name])} [label={_dot(name)}, shape=box, style=rounded];")
        previous = _dot(anchors[name])
        for index in state.layers:
            layer = workflow.plan[index]
            node = _dot(f"L{layer.index}")
            label = "\n".join(_layer_lines(layer))
            out.append(f"    {node} [label={_dot(label)}];")
            out.append(f"    {previous} -> {node} [style=bold, color=gray];")
            previous = node
        out.append("  }")
    out.append(f'  "[start]" -> {_dot(anchors[workflow.start])};')
    for name, state in workflow.states.items():
        for transition in state.next:
            target = "[end]" if transition.to == END else anchors.get(transition.to, transition.to)
            label = condition_text(transition.when)
            attrs = f" [label={_dot(label)}]" if label else ""
            out.append(f"  {_dot(anchors[name])} -> {_dot(target)}{attrs};")
        if state.max_visits is not None:
            exhausted = state.on_exhausted
            target = "[end]" if exhausted in (END, "fail") else anchors.get(exhausted, exhausted)
            label = _dot(_exhausted_text(state))
            out.append(f"  {_dot(anchors[name])} -> {_dot(target)} [style=dashed, label={label}];")
    return out
