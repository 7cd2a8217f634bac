"""The plan as a state machine: where a run is (`Cursor`), what happened in the current visit
(`VisitLog`), and which transition a state takes when its plan ends (`Machine.transition`).

Every workflow runs as a machine: a plain ``plan:`` is one implicit state that ends the run
when its plan ends. A state's plan is run in full on each visit; then its ``next:`` entries are
checked in order and the first whose condition holds is taken (none: the run ends). Entering a
state that has had `State.max_visits` visits takes its ``on_exhausted`` instead. Conditions
read only what the regions posted in the state's current visit (`VisitLog`), so a transition
never depends on timing; the cursor and the log are small and go into every barrier, so a run
resumes in the middle of a visit with the same decisions ahead of it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from regions_cli.engine.message import Message
from regions_cli.model import (
    END,
    AllOf,
    AnyOf,
    Condition,
    FieldTest,
    Not,
    Says,
    State,
    Transition,
    Workflow,
)


@dataclass
class VisitLog:
    """What the regions posted in the current visit: each region's last message, and the
    output (messages to external addresses). Cleared when a state is entered."""

    said: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)

    def record(self, message: Message, delivery: str) -> None:
        """Note a delivered message (copies to listeners and injections are not "posted")."""
        if delivery == "output":
            self.outputs.append(message.content)
            self.said[message.source] = message.content
        elif delivery == "delivered" and not message.origin.injected:
            self.said[message.source] = message.content

    def clear(self) -> None:
        self.said.clear()
        self.outputs.clear()


@dataclass
class Cursor:
    """Where a run is: the state, the plan index of the next layer to run (``len(plan)`` when
    the run has ended), the visits per state and the transitions so far, the active seconds of
    earlier invocations, and the current visit's log."""

    state: str
    layer: int
    visits: dict[str, int]
    transitions: int = 0
    elapsed: float = 0.0
    log: VisitLog = field(default_factory=VisitLog)

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "layer": self.layer,
            "visits": dict(self.visits),
            "transitions": self.transitions,
            "elapsed": round(self.elapsed, 6),
            "said": dict(self.log.said),
            "outputs": list(self.log.outputs),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Cursor:
        return cls(
            state=str(data["state"]),
            layer=int(data["layer"]),
            visits={str(k): int(v) for k, v in dict(data.get("visits") or {}).items()},
            transitions=int(data.get("transitions") or 0),
            elapsed=float(data.get("elapsed") or 0.0),
            log=VisitLog(
                {str(k): str(v) for k, v in dict(data.get("said") or {}).items()},
                [str(o) for o in data.get("outputs") or ()],
            ),
        )


@dataclass(frozen=True)
class Decision:
    """Where a state goes when its plan ends, and why."""

    to: str  # a state, or END
    rule: int | None  # the index of the `next:` entry taken; None: none matched, or exhausted
    reason: str
    failed: str | None = None  # why the run fails here (a state exhausted, ``on_exhausted: fail``)


class Machine:
    """The states of a workflow and the rules that move a `Cursor` between them."""

    def __init__(self, workflow: Workflow) -> None:
        self.states: Mapping[str, State] = workflow.machine()
        self.start = workflow.start
        self.end_layer = len(workflow.plan)
        self.state_of_layer = {i: s.name for s in self.states.values() for i in s.layers}

    def fresh(self) -> Cursor:
        """The cursor of a run that has not started: the first visit of the start state."""
        state = self.states[self.start]
        return Cursor(self.start, state.first, {self.start: 1})

    def at_layer(self, layer: int) -> Cursor:
        """A plain plan's cursor before layer `layer` (its one state is visited once)."""
        return Cursor(self.start, layer, {self.start: 1})

    def state_ended(self, cursor: Cursor) -> bool:
        """True when the cursor's state has no layer left in this visit."""
        state = self.states[cursor.state]
        return cursor.layer >= state.first + state.count

    def decide(self, cursor: Cursor) -> Decision:
        """The transition the cursor's state takes now that its plan has ended."""
        state = self.states[cursor.state]
        for index, transition in enumerate(state.next):
            if transition.when is None or holds(transition.when, cursor.log):
                return self._enter(transition.to, index, _reason(transition), cursor, ())
        return Decision(END, None, "no transition matched" if state.next else "plan ended")

    def _enter(
        self, to: str, rule: int | None, reason: str, cursor: Cursor, seen: tuple[str, ...]
    ) -> Decision:
        """Going to `to`: follow `on_exhausted` while the target has used up its visits."""
        if to == END:
            return Decision(END, rule, reason)
        target = self.states[to]
        if target.max_visits is None or cursor.visits.get(to, 0) < target.max_visits:
            return Decision(to, rule, reason)
        why = f"{to} exhausted ({target.max_visits} visits)"
        if target.on_exhausted == "fail":
            return Decision(END, None, why, failed=f"state {why}")
        if target.on_exhausted in seen:  # verify refuses this; never loop on a bad file
            return Decision(END, None, why, failed=f"state {why}; on_exhausted loops")
        return self._enter(target.on_exhausted, None, why, cursor, (*seen, to))

    def move(self, cursor: Cursor, decision: Decision) -> None:
        """Apply a transition: count it, and enter the target (its first layer, a new visit)."""
        cursor.transitions += 1
        cursor.log.clear()
        if decision.to == END or decision.failed:
            cursor.layer = self.end_layer
            return
        state = self.states[decision.to]
        cursor.state = state.name
        cursor.layer = state.first
        cursor.visits[state.name] = cursor.visits.get(state.name, 0) + 1


def _reason(transition: Transition) -> str:
    return "always" if transition.when is None else describe(transition.when)


def describe(condition: Condition) -> str:
    """A short text of a condition, as written (for events, the live view and graphs)."""
    if isinstance(condition, Says):
        if condition.region is None:
            return f"output ~ /{condition.pattern}/"
        return f"{condition.region} says /{condition.pattern}/"
    if isinstance(condition, FieldTest):
        value = json.dumps(condition.value, ensure_ascii=False)
        op = {"equals": "==", "in": "in", "matches": "~"}[condition.test]
        return f"{condition.region}.{condition.path} {op} {value}"
    if isinstance(condition, AllOf):
        return "(" + " and ".join(describe(c) for c in condition.items) + ")"
    if isinstance(condition, AnyOf):
        return "(" + " or ".join(describe(c) for c in condition.items) + ")"
    return f"not {describe(condition.item)}"


def holds(condition: Condition, log: VisitLog) -> bool:
    """Whether `condition` holds for what was posted in the visit `log` describes."""
    if isinstance(condition, Says):
        pattern = _regex(condition.pattern)
        if condition.region is None:
            return any(pattern.search(text) for text in log.outputs)
        text = log.said.get(condition.region)
        return text is not None and pattern.search(text) is not None
    if isinstance(condition, FieldTest):
        return _field_holds(condition, log.said.get(condition.region))
    if isinstance(condition, AllOf):
        return all(holds(c, log) for c in condition.items)
    if isinstance(condition, AnyOf):
        return any(holds(c, log) for c in condition.items)
    assert isinstance(condition, Not)
    return not holds(condition.item, log)


#: What `field_value` returns for a path the document does not have.
MISSING = object()


def _field_holds(test: FieldTest, text: str | None) -> bool:
    if text is None:
        return False
    try:
        value: Any = json.loads(text)
    except ValueError:
        return False
    value = field_value(value, test.path)
    if value is MISSING:
        return False
    if test.test == "equals":
        return bool(value == test.value)
    if test.test == "in":
        return any(value == v for v in test.value)
    return isinstance(value, str) and _regex(str(test.value)).search(value) is not None


def field_value(document: Any, path: str) -> Any:
    """The value at dotted `path` (``a.b.0``) in a JSON document; `MISSING` if absent."""
    value = document
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)
