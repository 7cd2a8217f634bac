"""Run files: what journaling costs a whole run, and how fast a run file is read back.

* the generated 1,000-region x 100-layer workflow (`bench_engine.generated_workflow`), end to
  end with the journal on, against the same run without it (measured side by side);
* replaying a run file: events read back and rebuilt per second (`regions replay --json`);
* the start of a resume on that run file: open, integrity check, resume point.
"""

from __future__ import annotations

import asyncio
import gc
import tempfile
import time
from pathlib import Path

from bench_engine import generated_workflow
from common import Row

from regions_cli.build import build_engine
from regions_cli.engine.events import EventBus
from regions_cli.engine.executor import Engine
from regions_cli.model import Workflow
from regions_cli.runs.codec import event_from_json
from regions_cli.runs.resume import resume_point, workflow_info
from regions_cli.runs.run import Run
from regions_cli.runs.store import RunFile, WorkflowRecord


async def run_once(workflow: Workflow, run_path: Path | None) -> float:
    """Seconds for one run of `workflow` (its engine built, then run), journaled to `run_path`
    through the library's `Run` when given."""

    async def build(workflow: Workflow, bus: EventBus) -> Engine:
        return build_engine(workflow, bus)

    if run_path is None:
        gc.collect()
        start = time.perf_counter()
        engine = await build(workflow, EventBus())
        result = await engine.run()
        assert result.ok, result.error
        await engine.aclose()
        return time.perf_counter() - start
    record = WorkflowRecord(workflow.name, str(run_path), "", "{}", "0", workflow_info(workflow))
    run = Run(
        workflow, record, run_file=RunFile.create(run_path, workflow=record), path=None,
        kind="run", build=build,
    )  # fmt: skip
    gc.collect()
    start = time.perf_counter()
    with run:
        finished = await run.execute()  # the last write is part of the cost
    assert finished.status == "ok", finished
    return time.perf_counter() - start


def main(quick: bool = False) -> list[Row]:
    regions, layers = (100, 10) if quick else (1000, 100)
    workflow = generated_workflow(regions, layers)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated.db"
        bare = asyncio.run(run_once(workflow, None))
        journaled = asyncio.run(run_once(workflow, path))
        size = (path.stat().st_size + _wal_size(path)) / 2**20
        rows.append(
            Row(f"runs: {regions} regions x {layers} layers with the journal on", journaled, "s",
                bare, note=f"vs the same run unjournaled; run file {size:.1f} MiB")
        )  # fmt: skip

        with RunFile.open(path) as run:
            start = time.perf_counter()
            count = sum(1 for data in run.events() if event_from_json(data) is not None)
            read = time.perf_counter() - start
        rows.append(
            Row("runs: replay reads events back", count / read, "events/s",
                note=f"{count} events, rebuilt as engine events (regions replay --instant)",
                higher_is_better=True)
        )  # fmt: skip

        start = time.perf_counter()
        with RunFile.open(path) as run:
            resume_point(run)
        rows.append(
            Row("runs: open a run file and find its resume point", time.perf_counter() - start,
                "s", note=f"{regions} regions, {layers} layers committed")
        )  # fmt: skip
    return rows


def _wal_size(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0
