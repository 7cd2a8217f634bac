"""Ctrl-C while `regions run` builds a RAG store: the run stops within a second or two, says so
in one line and exits non-zero, in a real process with the real local embedder (which would
take most of a minute on this document)."""

from __future__ import annotations

import os
import pty
import random
import re
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
from clirun import regions_argv

from regions_cli.rag.embedders import local_embedder_available

WORKFLOW = """\
version: 1
name: big
llms:
  default: {backend: scripted}
rags:
  facts:
    path: facts.db
    documents:
      - {file: big.txt}
regions:
  Facts: {type: RAGRegion, task: Provide facts., rag: facts}
inject:
  - {to: Facts, content: "Who?"}
plan:
  - chains: {a: [Facts.make_replies]}
"""


def _big_workflow(tmp_path: Path) -> None:
    rng = random.Random(1)
    words = [
        "zebra",
        "stripe",
        "battle",
        "river",
        "king",
        "army",
        "treaty",
        "harbour",
        "grain",
        "winter",
    ]
    sentences = (" ".join(rng.choices(words, k=rng.randint(8, 20))) + "." for _ in range(16_000))
    (tmp_path / "big.txt").write_text("\n".join(sentences), encoding="utf-8")  # about 1.5 MB
    (tmp_path / "big.yaml").write_text(WORKFLOW, encoding="utf-8")


@pytest.mark.skipif(not local_embedder_available(), reason="needs the local extra")
def test_ctrl_c_while_a_store_is_built_stops_the_run_at_once(tmp_path: Path) -> None:
    _big_workflow(tmp_path)
    process = subprocess.Popen(
        regions_argv("run", "--no-live", tmp_path / "big.yaml"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        # The store file appears when the build opens the store, just before it ingests: the
        # moment a user who sees nothing happen presses Ctrl-C. (Nothing in the process's
        # output marks it, so the test looks for the file.)
        deadline = time.monotonic() + 60
        while not (tmp_path / "facts.db").exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the store was never opened"
            time.sleep(0.05)
        time.sleep(1.0)  # into the embedding of the document
        assert process.poll() is None, "the build ended before Ctrl-C"
        pressed = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        took = time.monotonic() - pressed
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert took < 2.0, f"Ctrl-C took {took:.1f} s"
    assert process.returncode == 130
    assert err.splitlines() == ["error: interrupted while opening the RAG stores"], err
    assert "Traceback" not in out + err


@pytest.mark.skipif(not local_embedder_available(), reason="needs the local extra")
def test_a_store_build_shows_its_progress_on_a_terminal(tmp_path: Path) -> None:
    """With stderr on a terminal, `regions run` draws a bar per store while it embeds."""
    _big_workflow(tmp_path)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        regions_argv("run", "--no-live", tmp_path / "big.yaml"),
        stdout=subprocess.PIPE,
        stderr=terminal,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "100"},
    )
    os.close(terminal)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while b"embedding facts" not in seen or not re.search(rb"\d+/\d+", seen):
            assert time.monotonic() < deadline, seen[-500:]
            ready, _, _ = select.select([controller], [], [], 1.0)
            if ready:
                seen += os.read(controller, 65536)
        assert b"chunks" in seen, seen[-500:]  # the bar: chunks embedded of chunks to embed
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
        os.close(controller)
    assert process.returncode == 130
