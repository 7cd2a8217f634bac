"""Mermaid and dot diagrams of a workflow."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from workflow_helpers import FIXTURE_ENV, VALID_FIXTURES

from regions_cli.model import Injection, Workflow
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


LOOP = """\
version: 1
name: loop
llms: {default: {backend: scripted}}
regions:
  Writer: {type: Region, task: Write., connections: [Critic]}
  Critic: {type: Region, task: Judge., output_schema: {type: object}}
inject:
  - {to: Writer, content: "A haiku."}
states:
  draft:
    plan:
      - layer: write
        chains: {w: [Writer.make_questions]}
      - wait: {for: Writer, prompt: "Any notes?"}
    next:
      - to: review
  review:
    max_visits: 4
    on_exhausted: end
    plan:
      - chains: {c: [Critic.make_replies, Writer.make_replies]}
    next:
      - when: {region: Critic, says: "APPROVED"}
        to: end
      - when: {any: [{region: Critic, field: verdict, in: [revise, redo]}, {not: {output: x}}]}
        to: draft
"""


def _loop(tmp_path: Path) -> Workflow:
    path = tmp_path / "loop.yaml"
    path.write_text(LOOP)
    return load_workflow(path)


def test_a_machine_is_a_mermaid_state_diagram(tmp_path: Path) -> None:
    assert to_mermaid(_loop(tmp_path)) == (
        "stateDiagram-v2\n"
        "  %% workflow loop\n"
        "  [*] --> draft\n"
        "  state draft {\n"
        "    draft_L0 : write\n"
        "    draft_L0 : w = Writer.make_questions\n"
        "    draft_L1 : wait-Writer\n"
        "    draft_L1 : wait for Writer\n"
        "    draft_L1 : asks Any notes?\n"
        "    draft_L0 --> draft_L1\n"
        "  }\n"
        "  state review {\n"
        "    review_L2 : layer-2\n"
        "    review_L2 : c = Critic.make_replies, Writer.make_replies\n"
        "  }\n"
        "  draft --> review\n"
        "  review --> [*] : Critic says /APPROVED/\n"
        "  review --> draft : Critic.verdict in ['revise', 'redo'] or not output /x/\n"
        "  review --> [*] : after 4 visits\n"
    )


def test_a_machine_in_dot_has_a_cluster_per_state(tmp_path: Path) -> None:
    text = to_dot(_loop(tmp_path))
    machine = text.split('  "[start]"', 1)[1]
    assert machine == (
        ' [shape=circle, label="", style=filled, fillcolor=black, width=0.2];\n'
        '  "[end]" [shape=doublecircle, label="", style=filled, fillcolor=black, width=0.15];\n'
        "  subgraph cluster_state0 {\n"
        '    label="state draft";\n'
        "    style=rounded;\n"
        '    "state.draft" [label="draft", shape=box, style=rounded];\n'
        '    "L0" [label="write\\nw = Writer.make_questions"];\n'
        '    "state.draft" -> "L0" [style=bold, color=gray];\n'
        '    "L1" [label="wait-Writer\\nwait for Writer\\nasks Any notes?"];\n'
        '    "L0" -> "L1" [style=bold, color=gray];\n'
        "  }\n"
        "  subgraph cluster_state1 {\n"
        '    label="state review (at most 4 visits)";\n'
        "    style=rounded;\n"
        '    "state.review" [label="review", shape=box, style=rounded];\n'
        '    "L2" [label="layer-2\\nc = Critic.make_replies, Writer.make_replies"];\n'
        '    "state.review" -> "L2" [style=bold, color=gray];\n'
        "  }\n"
        '  "[start]" -> "state.draft";\n'
        '  "state.draft" -> "state.review";\n'
        '  "state.review" -> "[end]" [label="Critic says /APPROVED/"];\n'
        '  "state.review" -> "state.draft" '
        "[label=\"Critic.verdict in ['revise', 'redo'] or not output /x/\"];\n"
        '  "state.review" -> "[end]" [style=dashed, label="after 4 visits"];\n'
        "}\n"
    )
    assert text.startswith('digraph "loop" {') and '"Writer" -> "Critic";' in text
    assert "cluster_plan" not in text


def test_condition_texts() -> None:
    from regions_cli.model import AllOf, FieldTest, Not, Says
    from regions_cli.workflow.graph import condition_text

    both = AllOf((Says("a", "R"), Not(FieldTest("R", "ok", "equals", True))))
    assert condition_text(both) == "R says /a/ and not R.ok = true"
    assert condition_text(FieldTest("R", "n.0", "matches", "^1")) == "R.n.0 matches /^1/"
    assert condition_text(None) == ""
