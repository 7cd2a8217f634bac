"""The response cache, through real ``regions`` processes against a loopback model server that
counts the requests it answers, and on its own (keys, concurrent writers, bad files)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
from clirun import regions, regions_argv
from openai_server import OpenAIServer

from regions_cli.llm.base import ChatMessage, Completion, CompletionRequest, Usage
from regions_cli.llm.cache import CacheError, ResponseCache, cache_key

SECRET = "sk-cache-test-4f1d9a77"


@pytest.fixture(autouse=True)
def cache_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every ``regions`` here sees the key its workflows name, and writes each line as it comes."""
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    monkeypatch.setenv("CACHE_TEST_KEY", SECRET)


def workflow(folder: Path, base_url: str, *, cache: str = "true", extra: str = "") -> Path:
    """Three regions ask one question each, then one answers all: four calls."""
    path = folder / "wf.yaml"
    path.write_text(
        f"""version: 1
name: cached
llms:
  default:
    backend: openai
    base_url: "{base_url}"
    model: m
    api_key: ${{CACHE_TEST_KEY}}
    cache: {cache}
regions:
  A: {{type: Region, task: Answer as A.}}
  B: {{type: Region, task: Answer as B.}}
  C: {{type: Region, task: Answer as C.}}
inject:
  - {{from: user, to: A, role: request, content: Question for A}}
  - {{from: user, to: B, role: request, content: Question for B}}
  - {{from: user, to: C, role: request, content: Question for C}}
plan:
  - layer: answer
    chains:
      a: [A.make_replies]
      b: [B.make_replies]
      c: [C.make_replies]
{extra}""",
        encoding="utf-8",
    )
    return path


def events(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_a_second_run_of_an_unchanged_workflow_asks_the_model_nothing(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        wf = workflow(tmp_path, server.base_url)
        code, first, err = regions("run", str(wf), "--json")
        assert code == 0, err
        assert len(server.generation_requests()) == 3
        code, second, err = regions("run", str(wf), "--json")
        assert code == 0, err
        assert len(server.generation_requests()) == 3  # no new request
    calls = [e for e in events(second) if e["kind"] == "llm_call"]
    assert [c["cached"] for c in calls] == [True, True, True]
    finished = events(second)[-1]
    assert (finished["llm_calls"], finished["cached_calls"]) == (3, 3)
    outputs = [
        [e["message"]["content"] for e in events(out) if e.get("delivery") == "output"]
        for out in (first, second)
    ]
    assert outputs[0] == outputs[1] and len(outputs[0]) == 3
    assert (tmp_path / ".regions" / "cache.db").is_file()  # `cache: true`: beside the workflow


def test_changing_one_task_asks_again_only_what_changed(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        wf = workflow(tmp_path, server.base_url)
        assert regions("run", str(wf), "--json").code == 0
        wf.write_text(wf.read_text().replace("Answer as B.", "Answer as B briefly."))
        code, out, err = regions("run", str(wf), "--json")
        assert code == 0, err
        asked = server.generation_requests()[3:]
    assert len(asked) == 1 and "Answer as B briefly." in json.dumps(asked[0].body)
    cached = {e["region"]: e["cached"] for e in events(out) if e["kind"] == "llm_call"}
    assert cached == {"A": True, "B": False, "C": True}


def test_the_summary_and_the_plain_view_say_how_many_came_from_the_cache(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        wf = workflow(tmp_path, server.base_url)
        assert regions("run", str(wf), "--no-live").code == 0
        code, out, err = regions("run", str(wf), "--no-live")
    assert code == 0, err
    assert "\ncalls      3 (3 from cache)\n" in out
    assert "\ntokens     0 (0 prompt + 0 completion)\n" in out  # a cached answer costs nothing


def test_cached_answers_do_not_count_against_the_budget(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        wf = workflow(tmp_path, server.base_url)
        assert regions("run", str(wf), "--json").code == 0
        wf.write_text(wf.read_text() + "budget: {max_calls: 1}\n")
        code, _, err = regions("run", str(wf), "--json")
        assert code == 0, err  # three answers, none from the model
        wf.write_text(wf.read_text().replace("Answer as", "Reply as"))
        code, _, _ = regions("run", str(wf), "--json")
        assert code == 4  # three new calls: over budget


def test_the_run_wide_cache_flags(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        wf = workflow(tmp_path, server.base_url, cache="false")
        text = wf.read_text().replace("    cache: false\n", "")
        wf.write_text(text)
        assert regions("run", str(wf), "--json").code == 0
        assert regions("run", str(wf), "--json").code == 0
        assert len(server.generation_requests()) == 6  # no cache unless asked
        elsewhere = tmp_path / "shared" / "answers.db"
        assert regions("run", str(wf), "--json", "--cache-file", str(elsewhere)).code == 0
        assert regions("run", str(wf), "--json", "--cache-file", str(elsewhere)).code == 0
        assert len(server.generation_requests()) == 9
        assert regions("run", str(wf), "--json", "--cache").code == 0
        assert regions("run", str(wf), "--json", "--cache").code == 0
        assert len(server.generation_requests()) == 12
        # `cache: false` on the entry wins over --cache
        wf.write_text(text.replace("    model: m\n", "    model: m\n    cache: false\n"))
        assert regions("run", str(wf), "--json", "--cache").code == 0
        assert len(server.generation_requests()) == 15


def test_two_runs_sharing_one_cache_at_once_lose_and_tear_nothing(tmp_path: Path) -> None:
    with OpenAIServer(latency=0.05) as server:
        wf = workflow(tmp_path, server.base_url)
        procs = [
            subprocess.Popen(
                regions_argv("run", wf, "--json"),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for _ in range(2)
        ]
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
        asked = len(server.generation_requests())
        assert 3 <= asked <= 6
        code, out, err = regions("run", str(wf), "--json")
        assert code == 0, err
        assert len(server.generation_requests()) == asked  # everything was kept, once
    cache = ResponseCache.open(tmp_path / ".regions" / "cache.db", create=False)
    try:
        assert cache.stats().entries == 3
    finally:
        cache.close()
    assert all(e["cached"] for e in events(out) if e["kind"] == "llm_call")


def test_the_cache_file_holds_no_secret_and_is_private(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        wf = workflow(tmp_path, server.base_url)
        assert regions("run", str(wf), "--json").code == 0
        url = server.base_url
    path = tmp_path / ".regions" / "cache.db"
    stored = b"".join(p.read_bytes() for p in path.parent.glob("cache.db*"))
    assert SECRET.encode() not in stored and url.encode() not in stored
    assert path.stat().st_mode & 0o077 == 0


def test_a_recording_keeps_the_calls_the_cache_answered(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        wf = workflow(tmp_path, server.base_url)
        assert regions("run", str(wf), "--json").code == 0
        cassette = tmp_path / "c.jsonl"
        assert regions("run", str(wf), "--json", "--record", str(cassette)).code == 0
        assert len(server.generation_requests()) == 3
    assert len(cassette.read_text().splitlines()) == 1 + 3  # header + every call
    code, _, err = regions("run", str(wf), "--json", "--replay", str(cassette))
    assert code == 0, err


def test_cache_stats_and_clear(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        wf = workflow(tmp_path, server.base_url)
        assert regions("run", str(wf), "--json").code == 0
    code, out, err = regions("cache", "stats", str(wf))
    assert code == 0, err
    assert "answers  3\n" in out and "llm      default: 3\n" in out
    code, out, err = regions("cache", "stats", cwd=tmp_path)  # ./.regions/cache.db
    assert code == 0 and "answers  3\n" in out, err
    code, out, err = regions("cache", "clear", str(wf), "--llm", "other")
    assert (code, out) == (0, f"removed 0 answers from {tmp_path / '.regions' / 'cache.db'}\n")
    code, out, err = regions("cache", "clear", str(tmp_path / ".regions" / "cache.db"))
    assert code == 0 and out.startswith("removed 3 answers from "), err
    assert "answers  0\n" in regions("cache", "stats", str(wf)).out


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: None, "no such cache file"),
        (lambda p: p.mkdir(), "is a directory, not a cache file"),
        (lambda p: p.write_text("not sqlite at all, " * 100), "not a regions cache"),
        (
            lambda p: sqlite3.connect(p).execute("CREATE TABLE other (x)").connection.commit(),
            "not a regions cache",
        ),
    ],
    ids=["missing", "folder", "garbage", "foreign-sqlite"],
)
def test_bad_cache_files_are_one_line_errors(tmp_path: Path, make: object, expected: str) -> None:
    path = tmp_path / "c.db"
    make(path)  # type: ignore[operator]
    before = path.read_bytes() if path.is_file() else None
    for command in ("stats", "clear"):
        code, out, err = regions("cache", command, str(path))
        assert code == 2 and out == ""
        assert err.startswith(f"regions cache {command}: {path}: {expected}"), err
        assert len(err.strip().splitlines()) == 1
    assert (path.read_bytes() if path.is_file() else None) == before  # never written to


def test_a_run_with_an_unusable_cache_stops_before_it_starts(tmp_path: Path) -> None:
    with OpenAIServer() as server:
        wf = workflow(tmp_path, server.base_url, cache='"answers.db"')
        (tmp_path / "answers.db").write_text("garbage " * 100)
        code, _, err = regions("run", str(wf), "--json")
        assert code == 2 and server.generation_requests() == []
    assert "llms.default: " in err and "answers.db: not a regions cache" in err


# -- the key and the file, in-process ---------------------------------------------------------


def request(text: str = "hi", **changes: object) -> CompletionRequest:
    return CompletionRequest((ChatMessage("user", text),), **changes)  # type: ignore[arg-type]


def test_the_key_covers_what_changes_an_answer_and_nothing_else() -> None:
    base = cache_key("openai", {"model": "m", "params": {"temperature": 0}}, request())
    same = [
        cache_key(
            "openai",
            {
                "model": "m",
                "params": {"temperature": 0},
                "api_key": "sk-x",
                "base_url": "http://elsewhere/v1",
                "timeout": 5,
                "retries": 3,
                "headers": {"X": "y"},
                "cache": True,
            },
            request(),
        ),
    ]
    different = [
        cache_key("local", {"model": "m", "params": {"temperature": 0}}, request()),
        cache_key("openai", {"model": "n", "params": {"temperature": 0}}, request()),
        cache_key("openai", {"model": "m", "params": {"temperature": 1}}, request()),
        cache_key("openai", {"model": "m", "params": {"temperature": 0}, "seed": 1}, request()),
        cache_key("openai", {"model": "m", "params": {"temperature": 0}}, request("ho")),
        cache_key("openai", {"model": "m", "params": {"temperature": 0}}, request(max_tokens=5)),
        cache_key(
            "openai",
            {"model": "m", "params": {"temperature": 0}},
            request(json_schema={"type": "object"}),
        ),
    ]
    assert same == [base]
    assert base not in different and len(set(different)) == len(different)


def test_concurrent_writers_in_threads_keep_the_first_answer(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    caches = [ResponseCache.open(path) for _ in range(4)]
    keys = [f"k{i}" for i in range(200)]

    def write(index: int) -> None:
        for key in keys:
            caches[index].put(key, "default", Completion(f"{key}-{index}", Usage(1, 2), "m"))

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    answers = [caches[0].get(key) for key in keys]
    assert all(
        a is not None and a.text.startswith(f"{k}-") for a, k in zip(answers, keys, strict=True)
    )
    assert caches[0].stats().entries == 200
    for cache in caches:
        cache.close()


def test_a_cache_of_another_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    ResponseCache.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'cache_version'")
    conn.commit()
    conn.close()
    with pytest.raises(CacheError, match="cache version 99 is not supported"):
        ResponseCache.open(path)
