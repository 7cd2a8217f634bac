"""The documentation pages on the format and on `regions verify` stay true: every rule is
listed, the examples verify, and every key the snippets use is in the schema."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from schema_keys import unknown_keys

from regions_cli.workflow.api import verify
from regions_cli.workflow.rules import RULES
from regions_cli.workflow.schema import schema

ROOT = Path(__file__).resolve().parents[2]
FORMAT = (ROOT / "docs" / "workflow-format.md").read_text(encoding="utf-8")
VERIFY = (ROOT / "docs" / "verify.md").read_text(encoding="utf-8")


def yaml_blocks(text: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", text, re.S)


def test_every_rule_is_documented_with_its_severity() -> None:
    text = VERIFY
    for rule_id, info in RULES.items():
        assert f"| `{rule_id}` | {info.severity} | {info.summary} |" in text


def test_the_complete_example_verifies(tmp_path: Path) -> None:
    example = next(b for b in yaml_blocks(FORMAT) if b.startswith("# yaml") and "plan:" in b)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "facts.txt").write_text("The Zebras were led by Zed.\n")
    path = tmp_path / "lookup.yaml"
    path.write_text(example)
    assert verify(path) == []


def test_the_sample_output_is_what_verify_prints(tmp_path: Path, monkeypatch: Any) -> None:
    """The `regions verify` sample in the docs: the format page's complete example with two
    typos."""
    from regions_cli.workflow.findings import format_text

    example = next(b for b in yaml_blocks(FORMAT) if b.startswith("# yaml") and "plan:" in b)
    typos = example.replace("    connections: [Historical", "    conections: [Historical", 1)
    typos = typos.replace("[HistoricalFacts.make_replies]", "[HistoricalFacts.make_reply]", 1)
    assert typos.count("conections") == typos.count(".make_reply]") == 1
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "facts.txt").write_text("The Zebras were led by Zed.\n")
    (tmp_path / "lookup.yaml").write_text(typos)
    monkeypatch.chdir(tmp_path)
    printed = format_text(verify("lookup.yaml"), files=1)
    sample = VERIFY.split("$ regions verify lookup.yaml\n", 1)[1]
    assert sample.startswith(printed + "```")


def test_the_graph_sample_is_what_graph_prints() -> None:
    from regions_cli.workflow.api import load_workflow
    from regions_cli.workflow.graph import to_mermaid

    sample = VERIFY.split("$ regions graph workflows/lookup.yaml\n")[1]
    shown = sample.split("  ...\n", 1)[0]
    assert shown.count("\n") > 10
    lookup = Path(__file__).resolve().parents[2] / "workflows" / "lookup.yaml"
    assert to_mermaid(load_workflow(lookup)).startswith(shown)


def test_every_key_in_the_format_section_is_in_the_schema() -> None:
    yaml = YAML(typ="rt")
    unknown: list[str] = []
    blocks = yaml_blocks(FORMAT)
    assert len(blocks) >= 8
    for block in blocks:
        if block.lstrip().startswith("- run:"):
            continue
        loaded = yaml.load(block)
        if loaded is not None:  # the editor-support block is only a comment
            unknown.extend(unknown_keys(loaded, schema()))
    assert unknown == []


@pytest.mark.parametrize("page", ["README.md", "docs/getting-started.md"])
def test_the_first_workflows_a_reader_sees_verify(tmp_path: Path, page: str) -> None:
    """The short examples of the README and of Getting started, saved as a user would."""
    text = (ROOT / page).read_text(encoding="utf-8")
    examples = [b for b in yaml_blocks(text) if b.startswith("# yaml") and "plan:" in b]
    assert examples, f"{page} has no workflow example"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "facts.txt").write_text("The Zebras were led by Zed.\n")
    for number, example in enumerate(examples):
        path = tmp_path / f"example{number}.yaml"
        path.write_text(example)
        assert [f"{f.location()}: {f.rule}: {f.message}" for f in verify(path)] == []


CONTROL_FLOW = (ROOT / "docs" / "control-flow.md").read_text(encoding="utf-8")


def test_the_control_flow_page_keys_are_in_the_schema() -> None:
    yaml = YAML(typ="rt")
    blocks = [yaml.load(block) for block in yaml_blocks(CONTROL_FLOW)]
    complete = [b for b in blocks if isinstance(b, dict) and "version" in b]
    assert complete
    for block in complete:
        assert unknown_keys(block, schema()) == []
    # The fragments: each is a part of a workflow (a `regions:`, `states:`, `next:` or `budget:`).
    for block in blocks:
        if isinstance(block, dict) and "version" not in block:
            whole = {"states": {"s": block}} if "next" in block else block
            assert unknown_keys(whole, schema()) == [], block


def test_the_control_flow_example_verifies_runs_and_refuses_its_unbounded_twin(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    example = next(b for b in yaml_blocks(CONTROL_FLOW) if b.startswith("# yaml"))
    path = tmp_path / "review_loop.yaml"
    path.write_text(example)
    assert verify(path) == []
    run = subprocess.run(
        [sys.executable, "-m", "regions_cli", "run", "--json", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    (last,) = [e for e in events if e["kind"] == "transition" and e["to"] == "end"]
    assert last["reason"] == "Critic says /APPROVED/"
    unbounded = [line for line in example.splitlines() if "max_visits: 4" not in line]
    path.write_text("\n".join(unbounded) + "\n")
    (finding,) = verify(path)
    sample = CONTROL_FLOW.split("$ regions verify review_loop.yaml\n", 1)[1].split("\n", 1)[0]
    assert (
        f"review_loop.yaml:{finding.line}:{finding.col}: error[{finding.rule}] " + (finding.message)
        == sample
    )


def test_the_state_diagram_sample_is_what_graph_prints() -> None:
    from regions_cli.workflow.api import load_workflow
    from regions_cli.workflow.graph import to_mermaid

    sample = VERIFY.split("$ regions graph workflows/review_loop.yaml\n")[1].split("```", 1)[0]
    assert sample.startswith("stateDiagram-v2\n")
    assert to_mermaid(load_workflow(ROOT / "workflows" / "review_loop.yaml")) == sample
