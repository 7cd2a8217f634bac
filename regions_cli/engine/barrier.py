"""The layer barrier: the one point where the outside (the journal, `regions inject`) meets a run.

The executor calls `BarrierHook.at_barrier` after the initial ``inject:`` delivery (before the
first layer it runs) and after every layer. At that moment no step is running, every message
posted so far has been delivered, and `Barrier.states` holds each region's `snapshot()`: enough
to resume the run from `Barrier.next_layer` with `Engine.run(start_layer=..., states=...)`.
The messages the hook returns are delivered as injected messages before the next layer starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from regions_cli.engine.message import Message


@dataclass(frozen=True)
class Barrier:
    """The state of a run between two layers."""

    next_layer: int  # the position: layers run so far (a plain plan's next layer index)
    states: Mapping[str, dict[str, Any]]  # region name -> region.snapshot()
    # A state machine's `Cursor.to_json()` (state, next layer, visits, ...); None for a plan,
    # whose position says it all. `finished` is True once nothing is left to run.
    cursor: Mapping[str, Any] | None = None
    finished: bool = False

    @property
    def layer_index(self) -> int:
        """The plan index of the layer about to run (``len(plan)`` once finished)."""
        return int(self.cursor["layer"]) if self.cursor is not None else self.next_layer


class PauseRun(Exception):
    """Raised by a barrier hook to stop the run at this barrier on purpose: it ends with status
    ``paused``, its state committed, and can be resumed from there."""


class BarrierHook(Protocol):
    """Called at every barrier; returns messages to inject now (usually none)."""

    async def at_barrier(self, barrier: Barrier) -> Sequence[Message]: ...
