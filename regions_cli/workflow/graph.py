"""Diagrams of a workflow (``regions graph``): regions, connections, injected messages and the
plan, as Mermaid or Graphviz dot text, so a plan can be seen without the GUI.

The diagram has two parts: the region graph (an arrow for each connection, a dashed arrow from
each external sender of an ``inject:`` message, a dotted "tap" arrow into each listener) and
the plan (one box per layer, in order; each chain is a row of its steps).
"""

from __future__ import annotations

import itertools

from regions_cli.model import Layer, Workflow


def _mermaid_label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def to_mermaid(workflow: Workflow) -> str:
    """A Mermaid ``flowchart`` of `workflow` (paste into Markdown on GitHub to render it)."""
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
    """A Graphviz ``digraph`` of `workflow` (render with ``dot -Tsvg``)."""
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
    if workflow.plan:
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
