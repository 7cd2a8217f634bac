"""`load_workflow` / `verify` (also exported lazily from `regions_cli`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from workflow_helpers import FIXTURE_ENV, RULE_FIXTURES, VALID_FIXTURES

import regions_cli
from regions_cli.workflow.api import WorkflowInvalid, load_workflow, verify, verify_text


def test_package_exports_the_api() -> None:
    assert regions_cli.load_workflow is load_workflow
    assert regions_cli.verify is verify


def test_load_workflow_builds_the_model() -> None:
    workflow = load_workflow(VALID_FIXTURES / "full.yaml", env=FIXTURE_ENV)
    assert workflow.name == "full.example-1"
    assert workflow.llms["remote"].api_key == "sk-test-secret-value"
    assert "sk-test" not in repr(workflow.llms["remote"])
    assert workflow.llms["default"].options["model"] == "models/smol.gguf"
    assert workflow.rags["facts"].path == (VALID_FIXTURES / "facts.db").absolute()
    assert workflow.inject[0].content == "Who led the Zebras? Costs ${PRICE}."
    assert workflow.inject[1].content == "Context for the historian.\n"
    assert [layer.label for layer in workflow.plan] == ["ask", "lookup", "answer", "layer-3"]
    other = workflow.plan[0].chains[1].steps[0]
    assert (other.region, other.method, other.policy.timeout, other.policy.retries) == (
        "Writer",
        "make_questions",
        60,
        2,
    )
    assert workflow.delivery.reroute_to == "Fallback"
    assert workflow.regions["Writer"].connections == {"Historian": "where questions go"}
    assert workflow.regions["Historian"].connections["Relay"] == ""  # a BroadcastRegion has no task
    assert workflow.source == (VALID_FIXTURES / "full.yaml").absolute()


def test_load_workflow_with_no_llms_block_gets_the_implied_default() -> None:
    workflow = load_workflow(VALID_FIXTURES / "implied-default.yaml")
    assert workflow.llms["default"].backend == "local" and workflow.llms["default"].implied
    assert workflow.regions["Asker"].llm == "default"


def test_load_workflow_raises_with_the_errors_only() -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow(RULE_FIXTURES / "unknown-region.yaml")
    assert {f.rule for f in caught.value.findings} == {"unknown-region"}
    assert str(caught.value).startswith(f"{RULE_FIXTURES / 'unknown-region.yaml'}:")
    assert "(and 5 more)" in str(caught.value)


def test_load_workflow_accepts_warnings() -> None:
    assert load_workflow(RULE_FIXTURES / "unused-region.yaml").regions["C"].task == "Idle."


def test_load_workflow_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        load_workflow(tmp_path / "nope.yaml")
    assert [f.rule for f in caught.value.findings] == ["io-error"]


def test_verify_text_resolves_files_against_base_dir() -> None:
    text = (VALID_FIXTURES / "full.yaml").read_text()
    assert verify_text(text, base_dir=VALID_FIXTURES, env=FIXTURE_ENV) == []
    elsewhere = verify_text(text, base_dir=RULE_FIXTURES, env=FIXTURE_ENV)
    assert {f.rule for f in elsewhere} == {"missing-file"}


def test_findings_are_sorted_and_unique() -> None:
    findings = verify(RULE_FIXTURES / "unknown-region.yaml")
    assert findings == sorted(set(findings))
