"""``regions llm check``: real servers on loopback, a refused port, exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import regions
from openai_server import Fault, OpenAIServer, closed_port


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with OpenAIServer() as s:
        yield s


def write_workflow(folder: Path, llms: str) -> Path:
    path = folder / "w.yaml"
    path.write_text(
        "version: 1\nname: t\nllms:\n" + llms + "regions:\n  A: {type: Region, task: t}\n"
        "plan:\n  - chains: {main: [A.make_replies]}\n"
    )
    return path


def openai_entry(url: str) -> str:
    return f"  default: {{backend: openai, base_url: '{url}'}}\n"


def test_all_endpoints_answer(server: OpenAIServer, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        f"  default: {{backend: openai, base_url: '{server.base_url}', model: test-model}}\n"
        "  fake: {backend: scripted}\n",
    )
    result = regions("llm", "check", str(wf), "--json", in_process=True)
    assert result.code == 0, result.output
    report = {r["llm"]: r for r in json.loads(result.out)}
    remote = report["default"]
    assert remote["ok"] and remote["health"]["detail"] == "ok"
    assert remote["models"]["detail"] == "test-model"
    assert "echo: Say OK." in remote["generation"]["detail"]
    assert remote["generation"]["seconds"] > 0
    assert report["fake"]["ok"] and report["fake"]["health"]["detail"] == "-"
    (gen,) = server.generation_requests()
    assert gen.body["max_tokens"] == 1


def test_a_dead_endpoint_fails_with_exit_1(server: OpenAIServer, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path,
        f"  default: {{backend: openai, base_url: '{server.base_url}'}}\n"
        f"  dead: {{backend: openai, base_url: 'http://127.0.0.1:{closed_port()}/v1'}}\n",
    )
    result = regions("llm", "check", str(wf), env={"COLUMNS": "200"}, in_process=True)
    assert result.code == 1
    assert "1 of 2 failed: dead" in result.out
    assert "cannot connect" in result.out


def test_a_failing_generation_is_reported(server: OpenAIServer, tmp_path: Path) -> None:
    server.faults.append(Fault(status=404))  # 400 would only drop stream_options and retry
    wf = write_workflow(tmp_path, openai_entry(server.base_url))
    result = regions("llm", "check", str(wf), "--json", in_process=True)
    assert result.code == 1
    (report,) = json.loads(result.out)
    assert report["health"]["ok"] and not report["generation"]["ok"]
    assert "HTTP 404" in report["generation"]["detail"]


def test_a_hung_server_is_cut_off_by_the_probe_timeout(
    server: OpenAIServer, tmp_path: Path
) -> None:
    server.faults.append(Fault(delay=10))
    wf = write_workflow(tmp_path, openai_entry(server.base_url))
    result = regions("llm", "check", str(wf), "--json", "--timeout", "0.3", in_process=True)
    assert result.code == 1
    (report,) = json.loads(result.out)
    assert report["generation"]["detail"] == "no answer within 0.3 s"


def test_override_from_the_command_line(server: OpenAIServer, tmp_path: Path) -> None:
    wf = write_workflow(
        tmp_path, f"  default: {{backend: openai, base_url: 'http://127.0.0.1:{closed_port()}'}}\n"
    )
    result = regions(
        "llm", "check", str(wf), "--json", "--llm", f"default={server.base_url}", in_process=True
    )
    assert result.code == 0, result.output
    assert json.loads(result.out)[0]["endpoint"] == server.base_url


def test_a_replay_cassette_is_checked_without_a_model(tmp_path: Path) -> None:
    cassette = tmp_path / "c.jsonl"
    cassette.write_text(
        '{"cassette": 1}\n'
        '{"llm": "default", "request": {"messages": [["user", "hi"]]}, '
        '"response": {"text": "hello"}}\n'
    )
    wf = write_workflow(tmp_path, "  default: {backend: replay, cassette: c.jsonl}\n")
    result = regions("llm", "check", str(wf), "--json", in_process=True)
    assert result.code == 0, result.output
    (report,) = json.loads(result.out)
    assert report["generation"]["detail"] == "1 recorded calls"


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = regions("llm", "check", str(tmp_path / "nope.yaml"), in_process=True)
    assert missing.code == 2 and "cannot read" in missing.output
    wf = write_workflow(tmp_path, "  default: {backend: scripted}\n")
    bad = regions("llm", "check", str(wf), "--llm", "other=local", in_process=True)
    assert bad.code == 2 and "the workflow has no llm 'other'" in bad.output
    invalid = tmp_path / "bad.yaml"
    invalid.write_text("version: 1\nname: t\n")
    result = regions("llm", "check", str(invalid), in_process=True)
    assert result.code == 2 and "Traceback" not in result.output
