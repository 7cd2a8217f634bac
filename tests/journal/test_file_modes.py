"""Run files, cassettes, caches and listener sinks hold whole prompts: they are created 0600 in
folders created 0700, and a sink is never written through a symbolic link."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from clirun import regions


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def workflow(tmp_path: Path) -> Path:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "version: 1\nname: private\nllms: {default: {backend: scripted, cache: true}}\n"
        "regions:\n  A: {type: Region, task: Answer.}\n"
        "  Trace: {type: ListenerRegion, sink: trace/out.jsonl}\n"
        "inject: [{from: user, to: A, role: request, content: hi}]\n"
        "plan: [{chains: {a: [Trace.start, A.make_replies, Trace.stop]}}]\n",
        encoding="utf-8",
    )
    return path


def test_what_a_run_writes_is_private(workflow: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)  # a usual umask: without the guards, files come out 0644
    try:
        cassette = tmp_path / "tapes" / "c.jsonl"
        done = regions("run", str(workflow), "--no-live", "--record", str(cassette))
    finally:
        os.umask(old)
    assert done.code == 0, done.err
    (run_file,) = (tmp_path / ".regions" / "runs").glob("*.db")
    for folder in (tmp_path / ".regions", tmp_path / ".regions" / "runs", tmp_path / "tapes"):
        assert mode(folder) == 0o700, folder
    files = [run_file, cassette, tmp_path / ".regions" / "cache.db", tmp_path / "trace/out.jsonl"]
    for path in files:
        assert mode(path) == 0o600, path
    assert mode(tmp_path / "trace") == 0o700


def test_a_sink_that_is_a_symbolic_link_is_not_written(workflow: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me\n")
    (tmp_path / "trace").mkdir()
    (tmp_path / "trace" / "out.jsonl").symlink_to(outside)
    done = regions("run", str(workflow), "--no-live")
    assert done.code == 3  # the listener's start step fails
    assert outside.read_text() == "keep me\n"
