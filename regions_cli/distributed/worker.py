"""The worker side: run one `Job` and say what it did.

A worker builds each workflow once (per hash), from the job's text (the file as written: the
order of a mapping means something), after verifying it as `regions verify` would: a job whose
workflow does not verify, whose text does not match its hash, or that names a region the
workflow lacks is refused with the reason, and its step fails. Models, embedders and stores
are built from the worker's own environment (``${VAR}`` and secrets resolve here; none travel
in the job). Each job gets a fresh region object with the job's state: the worker keeps
nothing of a run between jobs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

from regions_cli.distributed.jobs import Job, JobResult
from regions_cli.engine.events import Event, EventBus, TokenStreamed
from regions_cli.engine.message import Origin
from regions_cli.engine.regions import make_region
from regions_cli.engine.regions.base import StepFailed
from regions_cli.engine.steps import LocalSteps

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from regions_cli.engine.executor import Engine
    from regions_cli.llm.factory import LLMOptions


class JobRefused(Exception):
    """The worker cannot run this job (its workflow does not verify or build here)."""


class Worker:
    """Runs jobs; `name` says which worker did (in results and logs)."""

    def __init__(
        self,
        name: str = "worker",
        *,
        llm_options: LLMOptions | None = None,
        env: Mapping[str, str] | None = None,
        workflows: Callable[[str], Awaitable[str | None]] | None = None,
    ) -> None:
        self.name = name
        #: Where a job that carries only its workflow's hash finds the text (None: nowhere).
        self.workflows = workflows
        self.llm_options = llm_options
        self.env = env
        self._engines: dict[str, asyncio.Task[Engine]] = {}
        self._steps = LocalSteps()

    async def execute(self, job: Job, live: Callable[[Event], None] | None = None) -> JobResult:
        """Run `job` once. Never raises for the job's own failure: the result says it.
        Streamed tokens go to `live` as they come (and not into the result), if given."""
        try:
            engine = await self._engine(job)
        except JobRefused as exc:
            return JobResult(job.id, error=f"worker {self.name}: {exc}", worker=self.name)
        template = engine.regions.get(job.region)
        if template is None:
            reason = f"worker {self.name}: the workflow has no region {job.region!r}"
            return JobResult(job.id, error=reason, worker=self.name)
        events: list[Event] = []

        def emit(event: Event) -> None:
            if live is not None and isinstance(event, TokenStreamed):
                live(event)
            else:
                events.append(event)

        context = dataclasses.replace(template.context, emit=emit)
        region = make_region(template.config, context)
        region.restore(job.state)
        region.begin_step(Origin(**job.origin))
        try:
            outcome = await self._steps.run(region, job.method)
        except StepFailed as exc:
            error = str(exc)
        except Exception as exc:  # a bug in a method: the step fails, the worker goes on
            error = f"{type(exc).__name__}: {exc}"
        else:
            return JobResult(
                job.id,
                outcome.status,
                outcome.detail,
                state=region.snapshot(),
                outbox=tuple(m.to_dict() for m in region.take_outbox()),
                events=tuple(e.to_json() for e in events),
                worker=self.name,
            )
        return JobResult(
            job.id, error=error, events=tuple(e.to_json() for e in events), worker=self.name
        )

    async def _engine(self, job: Job) -> Engine:
        key = json.dumps([job.workflow_hash, job.base_dir, job.llm_overrides, job.replay])
        task = self._engines.get(key)
        if task is None:
            task = self._engines[key] = asyncio.ensure_future(self._build(job))
        try:
            return await asyncio.shield(task)
        except JobRefused:
            self._engines.pop(key, None)  # the next job may find it fixed
            raise

    async def _build(self, job: Job) -> Engine:
        from regions_cli.build import build_engine_async
        from regions_cli.llm.factory import LLMOptions, apply_llm_overrides
        from regions_cli.workflow.api import check_document
        from regions_cli.workflow.convert import build_workflow
        from regions_cli.workflow.load import load_text

        text = job.workflow
        if not text and self.workflows is not None:
            text = await self.workflows(job.workflow_hash) or ""
        if not text:
            raise JobRefused(f"the workflow {job.workflow_hash[:12]} is not in the bucket")
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != job.workflow_hash:
            raise JobRefused("the workflow text does not match its hash")
        base_dir = Path(job.base_dir)
        where = f"<workflow {job.workflow_hash[:12]}>"
        document = load_text(text, file=where, base_dir=base_dir, env=self.env)
        errors = [f for f in check_document(document) if f.is_error]
        if errors or document.data is None:
            first = errors[0] if errors else None
            reason = f"{first.message} ({first.rule})" if first else "it is empty"
            raise JobRefused(f"the workflow does not verify here: {reason}")
        try:
            workflow = build_workflow(document.data, base_dir=base_dir)
            workflow = apply_llm_overrides(workflow, job.llm_overrides)
            options = self.llm_options or LLMOptions(base_dir=base_dir)
            if job.replay is not None:
                options = dataclasses.replace(options, replay=Path(job.replay))
            return await build_engine_async(workflow, EventBus(), options)
        except (OSError, ValueError) as exc:
            raise JobRefused(f"the workflow cannot be built here: {exc}") from exc

    async def aclose(self) -> None:
        """Close every workflow built (models, stores)."""
        engines, self._engines = self._engines, {}
        for task in engines.values():
            if task.done() and not task.cancelled() and task.exception() is None:
                await task.result().aclose()
            else:
                task.cancel()
