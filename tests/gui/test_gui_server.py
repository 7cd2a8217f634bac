"""The local API of `regions gui`, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from clirun import regions
from gui_workflow import WAITING, WORKFLOW

from regions_cli.gui_server import GuiServer, text_hash

JSON = {"Content-Type": "application/json"}
ROOT = Path(__file__).resolve().parents[2]


def test_serves_the_editor_page_and_its_assets(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    asset = client.get("/assets/app-1234.js")
    assert asset.text == "console.log('editor');"
    assert "immutable" in asset.headers["cache-control"]
    assert client.get("/assets/missing.js").status_code == 404


def test_refuses_paths_outside_the_build(server: GuiServer, workflow_file: Path) -> None:
    for path in ("/../flows/demo.yaml", "/assets/../../flows/demo.yaml", "/%2e%2e/flows/demo.yaml"):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("GET", path)
        response = connection.getresponse()
        assert response.status == 404, path
        assert b"gui-test" not in response.read()
        connection.close()


def test_get_file_returns_text_and_hash(client: httpx.Client, workflow_file: Path) -> None:
    state = client.get("/api/file").json()
    # No schema around the file: the one `regions schema` would write beside it.
    assert state.pop("schema_ref") == "workflow.schema.json"
    assert state == {
        "path": str(workflow_file.resolve()),
        "text": WORKFLOW,
        "exists": True,
        "hash": text_hash(WORKFLOW),
    }


def test_put_file_saves_and_returns_the_new_hash(client: httpx.Client, workflow_file: Path) -> None:
    edited = WORKFLOW.replace("name: gui-test", "name: edited")
    response = client.put("/api/file", json={"text": edited, "base_hash": text_hash(WORKFLOW)})
    assert response.status_code == 200
    assert response.json()["hash"] == text_hash(edited)
    assert workflow_file.read_text("utf-8") == edited
    assert client.get("/api/file").json()["text"] == edited
    # No temporary files are left beside the workflow.
    assert sorted(p.name for p in workflow_file.parent.iterdir()) == ["demo.yaml"]


def test_put_refuses_to_overwrite_a_file_changed_on_disk(
    client: httpx.Client, workflow_file: Path
) -> None:
    workflow_file.write_text(WORKFLOW + "# edited elsewhere\n", "utf-8")
    response = client.put(
        "/api/file", json={"text": "version: 1\n", "base_hash": text_hash(WORKFLOW)}
    )
    assert response.status_code == 409
    assert "changed on disk" in response.json()["error"]
    assert workflow_file.read_text("utf-8").endswith("# edited elsewhere\n")


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        (b'{"text": 1}', JSON, 400, "`text` must be a string"),
        (b"not json", JSON, 400, "not JSON"),
        (b"[1, 2]", JSON, 400, "JSON object"),
        (b'{"text": "x", "base_hash": 5}', JSON, 400, "base_hash"),
        (b'{"text": "x"}', {"Content-Type": "text/plain"}, 415, "application/json"),
    ],
)
def test_put_rejects_bad_bodies_with_one_line(
    client: httpx.Client,
    workflow_file: Path,
    body: bytes,
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    response = client.put("/api/file", content=body, headers=headers)
    assert response.status_code == status
    error = response.json()["error"]
    assert message in error
    assert "\n" not in error
    assert workflow_file.read_text("utf-8") == WORKFLOW


def test_put_refuses_a_workflow_over_the_size_limit(
    client: httpx.Client, workflow_file: Path
) -> None:
    big = "#" * (1024 * 1024 + 1)
    response = client.put("/api/file", json={"text": big, "base_hash": text_hash(WORKFLOW)})
    assert response.status_code == 413
    assert workflow_file.read_text("utf-8") == WORKFLOW


def test_refuses_foreign_hosts_and_origins(client: httpx.Client, workflow_file: Path) -> None:
    rebinding = client.get("/api/file", headers={"Host": "evil.example:80"})
    assert rebinding.status_code == 403
    cross_site = client.put(
        "/api/file",
        json={"text": "version: 1\n", "base_hash": text_hash(WORKFLOW)},
        headers={"Origin": "http://evil.example"},
    )
    assert cross_site.status_code == 403
    assert workflow_file.read_text("utf-8") == WORKFLOW
    same_origin = client.get("/api/file", headers={"Origin": str(client.base_url).rstrip("/")})
    assert same_origin.status_code == 200


def test_unknown_endpoints_and_methods(client: httpx.Client) -> None:
    assert client.get("/api/nothing").status_code == 404
    assert client.post("/index.html", json={}).status_code == 405


def test_new_file_is_created_on_first_save(
    make_server: Callable[[Path | None], GuiServer], tmp_path: Path
) -> None:
    path = tmp_path / "new.yaml"
    server = make_server(path)
    with httpx.Client(base_url=server.base_url, headers={"X-Regions-Token": server.token}) as http:
        state = http.get("/api/file").json()
        assert state["schema_ref"].endswith("workflow.schema.json")
        del state["schema_ref"]
        assert state == {"path": str(path.resolve()), "text": "", "exists": False, "hash": None}
        assert http.post("/api/run", json={}).status_code == 409
        assert http.put("/api/file", json={"text": WORKFLOW, "base_hash": None}).status_code == 200
    assert path.read_text("utf-8") == WORKFLOW


def test_without_a_file_nothing_can_be_saved(
    make_server: Callable[[Path | None], GuiServer],
) -> None:
    server = make_server(None)
    with httpx.Client(base_url=server.base_url, headers={"X-Regions-Token": server.token}) as http:
        assert http.get("/api/file").json()["path"] is None
        response = http.put("/api/file", json={"text": WORKFLOW, "base_hash": None})
        assert response.status_code == 409
        assert "regions gui FILE" in response.json()["error"]


def test_schema_is_the_published_one(client: httpx.Client) -> None:
    published = json.loads((ROOT / "schemas" / "workflow.schema.json").read_text("utf-8"))
    assert client.get("/api/schema").json() == published


def test_verify_uses_the_python_verifier(client: httpx.Client, workflow_file: Path) -> None:
    good = client.post("/api/verify", json={"text": WORKFLOW}).json()
    assert good["ok"] is True
    assert not [f for f in good["findings"] if f["severity"] == "error"]
    bad = client.post(
        "/api/verify", json={"text": WORKFLOW.replace("[Asker.make_questions]", "[Asker.fly]")}
    ).json()
    assert bad["ok"] is False
    finding = next(f for f in bad["findings"] if f["rule"] == "unknown-method")
    assert finding["file"] == "demo.yaml"
    assert finding["line"] == WORKFLOW.splitlines().index("      main: [Asker.make_questions]") + 1
    # The text was checked beside the real file, which is untouched, and nothing is left over.
    assert workflow_file.read_text("utf-8") == WORKFLOW
    assert sorted(p.name for p in workflow_file.parent.iterdir()) == ["demo.yaml"]


REGISTRY = [
    {
        "name": "foo",
        "type": "Region",
        "task": "Important job",
        "connections": {"bar": "Does things"},
    },
    {"name": "bar", "type": "Region", "task": "Does things", "connections": {}},
]
PLAN = {
    "layer_config": [{"chain0": ["foo"]}, {"chain0": ["bar"]}],
    "execution_config": [[["foo", "make_questions"]], [["bar", "make_replies"]]],
    "execution_order": [0, 1],
}


def test_import_converts_the_originals_json(client: httpx.Client) -> None:
    files = {"demo_executions.json": json.dumps(PLAN), "demo_regions.json": json.dumps(REGISTRY)}
    result = client.post("/api/import", json={"files": files})
    assert result.status_code == 200, result.text
    text = result.json()["text"]
    assert "foo:" in text and "bar:" in text
    assert "foo.make_questions" in text
    verified = client.post("/api/verify", json={"text": text}).json()
    assert [f for f in verified["findings"] if f["severity"] == "error"] == []


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a_regions.json": "{not json"}, "a_regions.json"),
        ({}, "registry"),
        ({"a.json": "[]", "b.json": "[]", "c.json": "[]"}, "registry"),
    ],
)
def test_import_rejects_bad_input_with_one_line(
    client: httpx.Client, files: dict[str, str], message: str
) -> None:
    response = client.post("/api/import", json={"files": files})
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error
    assert "\n" not in error


def test_export_gives_the_originals_registry_and_plan(client: httpx.Client) -> None:
    result = client.post("/api/export", json={"text": WORKFLOW})
    assert result.status_code == 200, result.text
    payload = result.json()
    files = {name: json.loads(text) for name, text in payload["files"].items()}
    registry = files["gui-test_regions.json"]
    assert [r["name"] for r in registry] == ["Asker", "Expert"]
    plan = files["gui-test_executions.json"]
    assert plan["execution_config"][0] == [["Asker", "make_questions"]]
    assert any("inject" in item for item in payload["dropped"])


def test_export_refuses_an_invalid_workflow(client: httpx.Client) -> None:
    result = client.post(
        "/api/export", json={"text": WORKFLOW.replace("Asker.make_questions", "X.y")}
    )
    assert result.status_code == 422
    assert result.json()["error"].startswith("fix the workflow first: demo.yaml:")


def test_run_streams_the_same_events_as_run_json(
    client: httpx.Client, server: GuiServer, workflow_file: Path
) -> None:
    with (
        httpx.Client(
            base_url=server.base_url, timeout=60, headers={"X-Regions-Token": server.token}
        ) as stream_client,
        stream_client.stream("GET", "/api/events") as events,
    ):
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = events.iter_lines()
        assert next(lines) == ": connected"
        started = client.post("/api/run", json={})
        assert started.status_code == 202
        kinds: list[str] = []
        messages: list[dict[str, object]] = []
        for line in lines:
            if not line.startswith("data: "):
                continue
            event = json.loads(line.removeprefix("data: "))
            kinds.append(event["kind"])
            if event["kind"] == "message":
                messages.append(event["message"])
            if event["kind"] == "run_exit":
                break
    assert kinds[0] == "run_started"
    assert "run_finished" in kinds
    assert event["exit_code"] == 0
    assert any(m["source"] == "Expert" and m["destination"] == "Asker" for m in messages)
    # The same events, in the same order, as `regions run --json` prints for the file.
    cli = regions("run", "--json", workflow_file)
    assert cli.code == 0, cli.err
    assert [json.loads(line)["kind"] for line in cli.lines] == kinds[:-1]
    # A page that connects after the run still gets the whole run.
    with (
        httpx.Client(
            base_url=server.base_url, timeout=60, headers={"X-Regions-Token": server.token}
        ) as late,
        late.stream("GET", "/api/events") as replay,
    ):
        replayed = []
        for line in replay.iter_lines():
            if line.startswith("data: "):
                replayed.append(json.loads(line.removeprefix("data: "))["kind"])
                if replayed[-1] == "run_exit":
                    break
    assert replayed == kinds


def test_run_of_an_invalid_file_reports_its_findings(
    client: httpx.Client, server: GuiServer, workflow_file: Path
) -> None:
    workflow_file.write_text(WORKFLOW.replace("[Asker.make_questions]", "[Asker.fly]"), "utf-8")
    assert client.post("/api/run", json={}).status_code == 202
    with client.stream("GET", "/api/events") as events:
        seen = []
        for line in events.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line.removeprefix("data: ")))
                if seen[-1]["kind"] == "run_exit":
                    break
    assert seen[-1]["exit_code"] == 1
    findings = next(e for e in seen if e["kind"] == "findings")
    assert any(f["rule"] == "unknown-method" for f in findings["findings"])


def test_one_run_at_a_time(client: httpx.Client, server: GuiServer, workflow_file: Path) -> None:
    slow = WORKFLOW.replace(
        "backend: scripted   # deterministic, no model", "backend: scripted\n    latency: 1.0"
    )
    workflow_file.write_text(slow, "utf-8")
    with client.stream("GET", "/api/events") as events:
        assert client.post("/api/run", json={}).status_code == 202
        second = client.post("/api/run", json={})
        assert second.status_code == 409
        assert second.json() == {"error": "a run is already in progress"}
        for line in events.iter_lines():
            if line.startswith("data: ") and '"run_exit"' in line:
                assert json.loads(line.removeprefix("data: "))["exit_code"] == 0
                break
    # Free again once it ended (the run thread ends right after its last event).
    server.hub.thread.join(timeout=30)  # type: ignore[union-attr]
    assert client.post("/api/run", json={}).status_code == 202
    with client.stream("GET", "/api/events") as events:  # replays this run from its start
        assert any('"run_exit"' in line for line in events.iter_lines())


def _events_until_exit(lines: Iterator[str]) -> list[dict[str, Any]]:
    """The events of one invocation from an event stream, up to its ``run_exit``."""
    seen: list[dict[str, Any]] = []
    for line in lines:
        if line.startswith("data: "):
            seen.append(json.loads(line.removeprefix("data: ")))
            if seen[-1]["kind"] == "run_exit":
                break
    return seen


def test_answer_needs_a_run_that_waits(client: httpx.Client) -> None:
    nothing = client.post("/api/answer", json={"region": "Asker", "text": "yes"})
    assert nothing.status_code == 409 and "not waiting" in nothing.json()["error"]
    for body in ({"text": "yes"}, {"region": 3, "text": "yes"}, {"region": "Asker"}):
        bad = client.post("/api/answer", json=body)
        assert bad.status_code == 400 and "must be a string" in bad.json()["error"]
    # A run that finished (not waiting) cannot be answered either.
    with client.stream("GET", "/api/events") as events:
        assert client.post("/api/run", json={}).status_code == 202
        assert _events_until_exit(events.iter_lines())[-1]["exit_code"] == 0
    after = client.post("/api/answer", json={"region": "Asker", "text": "yes"})
    assert after.status_code == 409 and "not waiting" in after.json()["error"]


def test_an_answer_is_injected_and_the_same_run_resumes(
    client: httpx.Client, server: GuiServer, workflow_file: Path
) -> None:
    """The answer's path on its own: a plain plan stopped after its first layer (``regions
    step``) stands in for a run that waits (the hub is told it waits); the injection, the resume
    and the events are the real thing."""
    assert regions("step", workflow_file).code == 0
    (run_file,) = (workflow_file.parent / ".regions" / "runs").glob("*.db")
    server.hub.run_file, server.hub.status = run_file, "waiting"
    with client.stream("GET", "/api/events") as events:
        answered = client.post("/api/answer", json={"region": "Expert", "text": "Tell them 42."})
        assert answered.status_code == 202
        resumed = _events_until_exit(events.iter_lines())
    assert resumed[0]["kind"] == "run_started"
    assert resumed[0]["run_file"] == str(run_file)
    assert resumed[0]["resumed_from_layer"] == 1
    told = [e for e in resumed if e["kind"] == "message" and e["delivery"] == "injected"]
    assert [(e["message"]["destination"], e["message"]["content"]) for e in told] == [
        ("Expert", "Tell them 42.")
    ]
    finished = next(e for e in resumed if e["kind"] == "run_finished")
    assert (finished["status"], resumed[-1]["exit_code"]) == ("ok", 0)
    # Finished now: nothing waits any more.
    again = client.post("/api/answer", json={"region": "Expert", "text": "more"})
    assert again.status_code == 409 and "not waiting" in again.json()["error"]


def test_a_wait_is_answered_and_the_run_resumes(
    make_server: Callable[[Path | None], GuiServer], tmp_path: Path
) -> None:
    path = tmp_path / "wait.yaml"
    path.write_text(WAITING, "utf-8")
    server = make_server(path)
    headers = {"X-Regions-Token": server.token}
    with (
        httpx.Client(base_url=server.base_url, timeout=60, headers=headers) as http,
        http.stream("GET", "/api/events") as events,
    ):
        lines = events.iter_lines()
        assert http.post("/api/run", json={}).status_code == 202
        first = _events_until_exit(lines)
        wait = next(e for e in first if e["kind"] == "wait")
        assert (wait["region"], wait["prompt"]) == ("Asker", "What should Asker be told?")
        finished = next(e for e in first if e["kind"] == "run_finished")
        assert (finished["status"], finished["exit_code"]) == ("waiting", 5)
        assert first[-1]["exit_code"] == 5
        # Bad answers are refused in one line; the run still waits.
        empty = http.post("/api/answer", json={"region": "Asker", "text": "  "})
        assert empty.status_code == 400 and "empty" in empty.json()["error"]
        nobody = http.post("/api/answer", json={"region": "Nobody", "text": "42"})
        assert nobody.status_code == 422 and "Nobody" in nobody.json()["error"]
        # The answer is injected to the region and the same run goes on to its end.
        answered = http.post("/api/answer", json={"region": "Asker", "text": "Tell them 42."})
        assert answered.status_code == 202
        second = _events_until_exit(lines)
        told = [
            e["message"]
            for e in second
            if e["kind"] == "message" and e["message"]["content"] == "Tell them 42."
        ]
        assert told and told[0]["destination"] == "Asker"
        finished = next(e for e in second if e["kind"] == "run_finished")
        assert (finished["status"], second[-1]["exit_code"]) == ("ok", 0)
        assert second[0]["kind"] == "run_started" and second[0]["run_file"] == first[0]["run_file"]
        again = http.post("/api/answer", json={"region": "Asker", "text": "more"})
        assert again.status_code == 409
