"""Steps as jobs: a run whose every step goes through the job codec to a `Worker` (which
builds the workflow from its text, keeps nothing between jobs and returns the
region's new state) gives the same transcript as the run in one process."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import Any

import pytest
from transcripts import engine_with_events, of_events

from regions_cli.distributed.jobs import Job, JobResult
from regions_cli.distributed.remote import RemoteSteps
from regions_cli.distributed.worker import Worker
from regions_cli.engine.events import Event
from regions_cli.runs.codec import event_from_json

FIXTURES = Path(__file__).resolve().parents[1] / "journal" / "fixtures"
NAMES = ["ask_answer", "fanout", "loop"]


async def run(path: Path, workers: list[Worker] | None) -> tuple[Any, list[Event]]:
    engine, events = await engine_with_events(path)
    jobs: list[Job] = []
    if workers is not None:
        text = path.read_text(encoding="utf-8")
        turn = iter(range(10**6))

        async def dispatch(job: Job, labels: Any, live: Any) -> JobResult:
            jobs.append(job)
            worker = workers[next(turn) % len(workers)]  # any worker takes any job
            wire = Job.from_bytes(job.to_bytes())
            return JobResult.from_bytes((await worker.execute(wire, live)).to_bytes())

        engine.steps = RemoteSteps(
            dispatch, run_id="r1", workflow=text, base_dir=path.parent, decode=event_from_json
        )
    try:
        result = await engine.run()
    finally:
        await engine.aclose()
    if workers is not None:
        assert jobs, "no step went through a worker"
        assert len({job.id for job in jobs}) == len(jobs)
    return result, events


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("count", [1, 2])
async def test_steps_through_workers_give_the_same_transcript(
    tmp_path: Path, name: str, count: int
) -> None:
    path = tmp_path / f"{name}.yaml"
    shutil.copy(FIXTURES / f"{name}.yaml", path)
    local, local_events = await run(path, None)
    workers = [Worker(f"w{i}") for i in range(count)]
    try:
        remote, remote_events = await run(path, workers)
    finally:
        for worker in workers:
            await worker.aclose()
    assert remote.status == local.status == "ok"
    assert of_events(remote_events) == of_events(local_events)
    assert remote.tokens == local.tokens  # model calls on workers count in the budget
    llm_calls = [e for e in remote_events if e.kind == "llm_call"]
    assert len(llm_calls) == len([e for e in local_events if e.kind == "llm_call"])


async def test_a_worker_refuses_a_workflow_whose_text_does_not_match_its_hash(
    tmp_path: Path,
) -> None:
    worker = Worker("w")
    job = Job(
        id="r/0/main/0/1",
        workflow_hash=hashlib.sha256(b"something else").hexdigest(),
        workflow='{"version": 1}',
        base_dir=str(tmp_path),
        region="A",
        method="make_replies",
        origin={"layer": 0, "chain": "main", "step": 0, "ordinal": 0, "injected": False},
        state={},
    )
    result = await worker.execute(job)
    assert result.error == "worker w: the workflow text does not match its hash"


async def test_a_worker_refuses_a_workflow_that_does_not_verify(tmp_path: Path) -> None:
    text = '{"version": 1, "name": "bad", "regions": {}, "plan": [{"chains": {"a": ["X.go"]}}]}'
    job = Job(
        id="r/0/a/0/1",
        workflow_hash=hashlib.sha256(text.encode()).hexdigest(),
        workflow=text,
        base_dir=str(tmp_path),
        region="X",
        method="go",
        origin={"layer": 0, "chain": "a", "step": 0, "ordinal": 0, "injected": False},
        state={},
    )
    result = await Worker("w").execute(job)
    assert result.error is not None
    assert result.error.startswith("worker w: the workflow does not verify here: ")
    with pytest.raises(ValueError, match="job version"):
        Job.from_bytes(b'{"version": 99}')
