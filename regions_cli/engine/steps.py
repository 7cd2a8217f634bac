"""Where a step's method runs: here, or on a worker.

The executor never calls a region's method itself: it asks its `StepRunner`. `LocalSteps`
calls the method on the region in this process. A distributed runner
(`regions_cli.distributed`) ships the region's state and the method to a worker and loads the
worker's answer back: the region's new state and what it posted. Everything around the call
(the state captured for a rollback, the origin of posted messages, the postmaster's checks,
retries and timeouts) stays in the executor, so a step means the same wherever it runs.
"""

from __future__ import annotations

from typing import Protocol

from regions_cli.engine.regions.base import BaseRegion, Outcome


class StepRunner(Protocol):
    """Runs one step: `method` of `region`, whose `begin_step` has been called. On return,
    the region holds its new state and its outbox what the step posted."""

    async def run(self, region: BaseRegion, method: str) -> Outcome: ...


class LocalSteps:
    """Runs every step in this process (the default)."""

    async def run(self, region: BaseRegion, method: str) -> Outcome:
        result: Outcome = await getattr(region, method)()
        return result
