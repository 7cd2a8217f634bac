"""Token and call accounting against ``budget:`` limits.

Every model call is recorded (its usage, even when it failed: a failed call may still cost).
The executor asks `BudgetTracker.exceeded` at each layer barrier; a run over budget stops
there with status ``budget_exceeded`` and keeps what it has done so far.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from regions_cli.llm.base import Usage
from regions_cli.model import Budget


@dataclass
class Spend:
    """What one region (or the whole run) has used."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class BudgetTracker:
    """Counts model usage per region and in total, and says when a limit is passed."""

    def __init__(self, budget: Budget | None = None) -> None:
        self.budget = budget or Budget()
        self.total = Spend()
        self.per_region: defaultdict[str, Spend] = defaultdict(Spend)
        self.cached_calls = 0  # answers from the response cache: free, so never counted above

    def record(self, region: str, usage: Usage, cached: bool = False) -> None:
        """Count one model call; an answer from the response cache costs nothing."""
        if cached:
            self.cached_calls += 1
            return
        self.add(region, Spend(1, usage.prompt_tokens, usage.completion_tokens))

    def add(self, region: str, spent: Spend) -> None:
        """Count `spent` against `region` and the run (one call, or what earlier invocations
        of a run file used: a budget covers the whole run, not one ``step``)."""
        for spend in (self.total, self.per_region[region]):
            spend.calls += spent.calls
            spend.prompt_tokens += spent.prompt_tokens
            spend.completion_tokens += spent.completion_tokens

    def exceeded(self) -> str | None:
        """Why the run is over budget (one line), or None while it is within every limit."""
        b = self.budget
        if b.max_tokens is not None and self.total.tokens > b.max_tokens:
            return f"the run used {self.total.tokens} tokens (budget.max_tokens: {b.max_tokens})"
        if b.max_calls is not None and self.total.calls > b.max_calls:
            return f"the run made {self.total.calls} model calls (budget.max_calls: {b.max_calls})"
        for name, spend in self.per_region.items():
            if b.region_max_tokens is not None and spend.tokens > b.region_max_tokens:
                return (
                    f"region {name} used {spend.tokens} tokens "
                    f"(budget.per_region.max_tokens: {b.region_max_tokens})"
                )
            if b.region_max_calls is not None and spend.calls > b.region_max_calls:
                return (
                    f"region {name} made {spend.calls} model calls "
                    f"(budget.per_region.max_calls: {b.region_max_calls})"
                )
        return None
