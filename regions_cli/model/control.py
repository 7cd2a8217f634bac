"""The frozen types of control flow: states and their transitions, conditions, waits for a
person, and a router's rules. `regions_cli.workflow.convert` builds them from a file; the
engine's `machine` module runs them.

A workflow without ``states:`` has one implicit state, `PLAN_STATE`, whose plan is the
workflow's ``plan:`` and which ends the run when its plan ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

#: The name of the one state a plain ``plan:`` workflow has.
PLAN_STATE = "plan"
#: The transition target that finishes the run.
END = "end"


@dataclass(frozen=True)
class Says:
    """``{region: R, says: REGEX}``: a regex search in the last message R posted in this visit
    (``{output: REGEX}`` is `region` None: any message to an external address in this visit)."""

    pattern: str
    region: str | None = None


@dataclass(frozen=True)
class FieldTest:
    """``{region: R, field: PATH, equals: V | in: [...] | matches: REGEX}`` on the JSON of the
    last message R posted in this visit. `path` is dotted (``verdict.score``, ``items.0``)."""

    region: str
    path: str
    test: Literal["equals", "in", "matches"]
    value: Any


@dataclass(frozen=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Says | FieldTest | AllOf | AnyOf | Not


@dataclass(frozen=True)
class Transition:
    """One ``next:`` entry: go `to` a state (or `END`) when `when` holds (None: always)."""

    to: str
    when: Condition | None = None


@dataclass(frozen=True)
class State:
    """A state: a layered plan (the workflow's layers ``first`` .. ``first + count - 1``, run in
    full on each visit) and the transitions checked, in order, when it ends.

    No transition matching ends the run. `max_visits` bounds the visits; one more visit is
    `on_exhausted`: ``fail`` (the run fails with the reason), ``end``, or a state's name.
    """

    name: str
    first: int
    count: int
    next: tuple[Transition, ...] = ()
    max_visits: int | None = None
    on_exhausted: str = "fail"

    @property
    def layers(self) -> range:
        return range(self.first, self.first + self.count)


@dataclass(frozen=True)
class Wait:
    """A plan item ``- wait: {for: REGION, prompt: TEXT}``: the run pauses here until a message
    to `region` is injected."""

    region: str
    prompt: str = ""


@dataclass(frozen=True)
class Route:
    """One rule of a ``RouterRegion``: requests whose text matches `when` go `to` a region."""

    to: str
    when: Says


def condition_text(condition: Condition | None) -> str:
    """A short text of a transition's condition (``Critic says /APPROVED/``; "" for always)."""
    match condition:
        case None:
            return ""
        case Says(pattern, None):
            return f"output /{pattern}/"
        case Says(pattern, region):
            return f"{region} says /{pattern}/"
        case FieldTest(region, path, "equals", value):
            return f"{region}.{path} = {_value(value)}"
        case FieldTest(region, path, "in", values):
            return f"{region}.{path} in [{', '.join(_value(v) for v in values)}]"
        case FieldTest(region, path, _, pattern):
            return f"{region}.{path} matches /{pattern}/"
        case AllOf(items):
            return " and ".join(_grouped(item) for item in items)
        case AnyOf(items):
            return " or ".join(_grouped(item) for item in items)
        case Not(item):
            return f"not {_grouped(item)}"
    return ""  # pragma: no cover - the cases above are exhaustive


def _grouped(condition: Condition) -> str:
    text = condition_text(condition)
    return f"({text})" if isinstance(condition, (AllOf, AnyOf)) else text


def _value(value: object) -> str:
    if isinstance(value, str):
        return f"'{value}'"
    return str(value).lower() if isinstance(value, bool) else str(value)
