"""Mermaid and dot diagrams of a workflow."""

from __future__ import annotations

import re
from dataclasses import replace

from workflow_helpers import FIXTURE_ENV, VALID_FIXTURES

from regions_cli.model import Injection
from regions_cli.workflow.api import load_workflow
from regions_cli.workflow.graph import to_dot, to_mermaid


def test_mermaid_shows_regions_connections_injections_and_plan() -> None:
    workflow = load_workflow(VALID_FIXTURES / "full.yaml", env=FIXTURE_ENV)
    text = to_mermaid(workflow)
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    ids = {
        m.group(2): m.group(1)
        for m in (re.match(r'\s+(r\d+)\["(\w+)<br/>', line) for line in lines)
        if m
    }
    assert set(ids) == set(workflow.regions)
    assert f"  {ids['Historian']} --> {ids['HistoricalFacts']}" in lines
    assert f"  {ids['Relay']} --> {ids['Writer']}" in lines
    assert f"  {ids['Historian']} -. tap .-> {ids['Trace']}" in lines
    assert '  x0(["user"])' in lines and f"  x0 -. request .-> {ids['Historian']}" in lines
    assert '    subgraph L0["layer 1: ask"]' in lines
    assert '      L1c0s0["facts: HistoricalFacts.make_replies"]' in lines
    assert "      L1c0s0 --> L1c0s1" in lines
    assert "    L0 ==> L1" in lines and "    L2 ==> L3" in lines
    assert text.count("subgraph") == 1 + len(workflow.plan)
    assert text.count("\n    end") == len(workflow.plan)


def test_labels_are_escaped() -> None:
    workflow = load_workflow(VALID_FIXTURES / "implied-default.yaml")
    odd = replace(workflow, inject=(Injection('say "hi"\\', "Asker", "request", "x"),))
    assert '  x0(["say #quot;hi#quot;\\"])' in to_mermaid(odd).splitlines()
    assert '"say \\"hi\\"\\\\" -> "Asker"' in to_dot(odd)
    dot = to_dot(workflow)
    assert dot.startswith('digraph "implied" {')
    assert '"Asker" -> "Answerer";' in dot
    assert '"user" -> "Answerer" [style=dashed, label="request"];' in dot
    assert dot.count("{") == dot.count("}")
    assert dot.rstrip().endswith("}")
