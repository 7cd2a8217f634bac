"""``regions verify`` / ``regions schema`` / ``regions graph`` from the command line: output
formats, exit codes (0 valid, 1 errors, 2 usage or I/O), no tracebacks, fast start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regions_cli.cli.app import app
from regions_cli.workflow.schema import schema_text

FIXTURES = Path(__file__).resolve().parents[1] / "workflow" / "fixtures"
VALID = FIXTURES / "valid" / "full.yaml"
IMPLIED = FIXTURES / "valid" / "implied-default.yaml"
ERRORS = FIXTURES / "rules" / "unknown-region.yaml"
WARNINGS = FIXTURES / "rules" / "unused-region.yaml"
UNSET = FIXTURES / "rules" / "unset-variable.yaml"
ENV = {"TEST_API_KEY": "sk-cli-secret"}

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={**ENV, **(env or {})})
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def run_process(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **ENV}
    env.pop("REGIONS_TEST_UNSET", None)
    return subprocess.run(
        [sys.executable, "-m", "regions_cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_valid_file_exits_0() -> None:
    code, out = run("verify", str(VALID))
    assert (code, out) == (0, "No problems found in 1 file.\n")


def test_warnings_alone_exit_0() -> None:
    code, out = run("verify", str(WARNINGS))
    assert code == 0
    assert "warning[unused-region]" in out and out.endswith("0 errors, 1 warning in 1 file.\n")


def test_errors_exit_1_and_every_file_is_reported() -> None:
    code, out = run("verify", str(VALID), str(ERRORS), str(WARNINGS))
    assert code == 1
    assert out.count("error[unknown-region]") == 6
    assert "warning[unused-region]" in out
    assert out.endswith("6 errors, 1 warning in 3 files.\n")


def test_strict_turns_unset_variables_into_errors() -> None:
    assert run("verify", str(UNSET))[0] == 0
    code, out = run("verify", "--strict", str(UNSET))
    assert code == 1 and "error[unset-variable]" in out


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_paths_exit_2(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "nope.yaml" if kind == "missing" else tmp_path
    code, out = run("verify", str(VALID), str(path), str(ERRORS))
    assert code == 2
    assert f"{path}: error[io-error] cannot read {path}" in out
    assert "error[unknown-region]" in out  # the other files are still checked


def test_usage_errors_exit_2() -> None:
    assert run("verify")[0] == 2
    assert run("verify", "--format", "xml", str(VALID))[0] == 2
    assert run("graph", str(VALID), "--format", "png")[0] == 2


def test_json_format() -> None:
    code, out = run("verify", "--format", "json", str(ERRORS))
    assert code == 1
    items = json.loads(out)
    assert {item["rule"] for item in items} == {"unknown-region"}
    assert {"file", "line", "col", "rule", "severity", "message", "hint"} <= set(items[0])


def test_sarif_format() -> None:
    code, out = run("verify", "-f", "sarif", str(ERRORS), str(WARNINGS))
    log = json.loads(out)
    assert code == 1 and log["version"] == "2.1.0"
    assert len(log["runs"][0]["results"]) == 7


def test_github_format() -> None:
    code, out = run("verify", "-f", "github", str(WARNINGS))
    assert code == 0
    assert out.startswith(
        f"::warning file={WARNINGS},line=12,col=3,endLine=12,endColumn=4,title=unused-region::"
    )


def test_schema_prints_the_schema() -> None:
    code, out = run("schema")
    assert code == 0 and out == schema_text()
    assert json.loads(out)["title"] == "regions workflow"


def test_graph_mermaid_and_dot() -> None:
    code, out = run("graph", str(IMPLIED))
    assert code == 0 and out.startswith("flowchart LR\n")
    code, out = run("graph", "--format", "dot", str(IMPLIED))
    assert code == 0 and out.startswith('digraph "implied" {')


def test_graph_of_an_invalid_workflow_reports_and_exits_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["graph", str(ERRORS)])
    assert result.exit_code == 1
    assert "error[unknown-region]" in result.output and "flowchart" not in result.output
    assert runner.invoke(app, ["graph", str(tmp_path / "x.yaml")]).exit_code == 2


def test_help_lists_the_commands() -> None:
    code, out = run("--help")
    assert code == 0
    for command in ("verify", "schema", "graph"):
        assert command in out


def test_real_process_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"version: 1\nname: [\n\xff")
    results = {
        "valid": run_process("verify", str(VALID)),
        "errors": run_process("verify", str(ERRORS)),
        "bad": run_process("verify", str(bad)),
        "missing": run_process("verify", str(tmp_path / "missing.yaml")),
        "usage": run_process("verify", "--format", "nope", str(VALID)),
    }
    assert {k: r.returncode for k, r in results.items()} == {
        "valid": 0,
        "errors": 1,
        "bad": 1,
        "missing": 2,
        "usage": 2,
    }
    for result in results.values():
        assert "Traceback" not in result.stdout + result.stderr
    assert "sk-cli-secret" not in "".join(r.stdout + r.stderr for r in results.values())
    assert "error[bad-encoding]" in results["bad"].stdout
    assert "\033[" not in results["errors"].stdout  # not a terminal: no colour


def test_verify_does_not_import_heavy_modules() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "regions_cli", "verify", str(VALID)],
        capture_output=True,
        text=True,
        env={**os.environ, **ENV},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    imported = {
        line.split("|")[-1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "regions_cli" in imported and "ruamel" in imported  # the probe works
    assert imported.isdisjoint({"numpy", "httpx", "llama_cpp", "sqlite_utils"})
