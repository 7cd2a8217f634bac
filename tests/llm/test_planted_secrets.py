"""Secrets planted in every place a workflow can hold one (an api_key, a credential header, a
password in base_url) appear in no output, run file, cassette, cache or sink, on any path a run
can take: answered, failed (the server says 401 and echoes what it got), recorded, replayed,
shown, listed and checked."""

from __future__ import annotations

from pathlib import Path

from clirun import Result, regions
from openai_server import OpenAIServer

KEY = "sk-planted-key-5b2e9c"
HEADER = "hdr-planted-value-77aa10"
PASSWORD = "pw-planted-3c4d8e"
SECRETS = (KEY, HEADER, PASSWORD)


PLANTED = {"PLANTED_KEY": KEY, "PLANTED_HEADER": HEADER, "PLANTED_PW": PASSWORD}


def workflow(folder: Path, port: int) -> None:
    (folder / "wf.yaml").write_text(
        "version: 1\nname: planted\nllms:\n  default:\n    backend: openai\n"
        f"    base_url: http://reg:${{PLANTED_PW}}@127.0.0.1:{port}/v1\n"
        "    api_key: ${PLANTED_KEY}\n"
        "    headers: {X-Api-Key: '${PLANTED_HEADER}'}\n"
        "    retries: 0\n    cache: true\n"
        "regions:\n  A: {type: Region, task: Answer.}\n"
        "  Trace: {type: ListenerRegion, sink: trace.jsonl}\n"
        "inject: [{from: user, to: A, role: request, content: hi}]\n"
        "plan: [{chains: {a: [Trace.start, A.make_replies, Trace.stop]}}]\n",
        encoding="utf-8",
    )


def test_no_planted_secret_leaks_anywhere(tmp_path: Path) -> None:
    outputs: list[Result] = []
    with OpenAIServer(api_key="the-right-key") as server:  # 401s echo what was sent
        workflow(tmp_path, server.port)
        outputs.append(
            regions("run", "wf.yaml", "--json", "--run", "failed.db", cwd=tmp_path, env=PLANTED)
        )
        outputs.append(
            regions("run", "wf.yaml", "--no-live", "--run", "failed2.db", cwd=tmp_path, env=PLANTED)
        )
    with OpenAIServer() as server:
        workflow(tmp_path, server.port)
        outputs.append(
            regions(
                "run",
                "wf.yaml",
                "--json",
                "--run",
                "ok.db",
                "--record",
                "c.jsonl",
                cwd=tmp_path,
                env=PLANTED,
            )
        )
        outputs.append(
            regions("run", "wf.yaml", "--no-live", "--run", "cached.db", cwd=tmp_path, env=PLANTED)
        )
        outputs.append(regions("llm", "check", "wf.yaml", cwd=tmp_path, env=PLANTED))
        outputs.append(regions("llm", "check", "wf.yaml", "--json", cwd=tmp_path, env=PLANTED))
        assert server.generation_requests(), "the run reached the server"
    outputs.append(
        regions(
            "run",
            "wf.yaml",
            "--replay",
            "c.jsonl",
            "--json",
            "--run",
            "r.db",
            cwd=tmp_path,
            env=PLANTED,
        )
    )
    for run_file in ("failed.db", "ok.db", "cached.db", "r.db"):
        outputs.append(regions("show", run_file, cwd=tmp_path, env=PLANTED))
        outputs.append(regions("show", run_file, "--region", "A", cwd=tmp_path, env=PLANTED))
        outputs.append(regions("replay", run_file, "--json", cwd=tmp_path, env=PLANTED))
        outputs.append(regions("replay", run_file, "--no-live", cwd=tmp_path, env=PLANTED))
    outputs.append(regions("runs", ".", cwd=tmp_path, env=PLANTED))
    outputs.append(regions("cache", "stats", "wf.yaml", cwd=tmp_path, env=PLANTED))
    for done in outputs:
        assert "Traceback" not in done.err, done.err
    texts = [done.out + done.err for done in outputs]
    assert any("401" in text for text in texts[:2])  # the failure path was taken
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, (secret, text[:2000])
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "c.jsonl" for p in files) and any(p.name == "cache.db" for p in files)
    assert any(p.name == "trace.jsonl" for p in files)
    for path in files:
        data = path.read_bytes()
        for secret in SECRETS:
            assert secret.encode() not in data, (secret, path)
