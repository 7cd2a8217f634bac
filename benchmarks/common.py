"""Shared helpers for the benchmark modules: the result row and the table renderer."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One measured figure, compared with a baseline measured in the same run.

    `ratio` is figure/baseline (lower is better unless `higher_is_better`); `target` is the
    bound the ratio (or the figure, when there is no baseline) must respect.
    """

    benchmark: str
    figure: float
    unit: str
    baseline: float | None = None
    target: float | None = None
    higher_is_better: bool = False
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        assert self.baseline is not None
        return self.figure / self.baseline

    @property
    def ok(self) -> bool:
        if self.target is None:
            return True
        value = self.ratio if self.ratio is not None else self.figure
        return value >= self.target if self.higher_is_better else value <= self.target


def best_of(repeats: int, fn: Callable[[], object]) -> float:
    """The fastest of `repeats` timed calls of `fn`, in seconds (least disturbed by noise)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def render(rows: list[Row]) -> str:
    """A Markdown table (pastes into docs/benchmarks.md as is)."""
    lines = [
        "| benchmark | figure | baseline | ratio | target | ok |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        baseline = f"{r.baseline:.4g} {r.unit}" if r.baseline is not None else "-"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        sign = ">=" if r.higher_is_better else "<="
        suffix = "x" if r.baseline is not None else f" {r.unit}"
        target = f"{sign} {r.target:g}{suffix}" if r.target is not None else "-"
        note = f" ({r.note})" if r.note else ""
        lines.append(
            f"| {r.benchmark}{note} | {r.figure:.4g} {r.unit} | {baseline} | {ratio} | {target} "
            f"| {'yes' if r.ok else 'NO'} |"
        )
    return "\n".join(lines)
