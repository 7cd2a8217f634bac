"""The job of one step attempt and its result, as JSON (what travels between processes)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

#: Bumped when a field changes meaning: a worker refuses jobs of another version.
JOB_VERSION = 1


@dataclass(frozen=True)
class Job:
    """One step attempt for a worker. `id` is unique per attempt (run, position, chain, step,
    attempt), so a redelivered job's result is used once."""

    id: str
    workflow_hash: str
    # The workflow file as written (``${VAR}`` unresolved; key order kept), or "" when it was
    # put once in the workflows bucket under `workflow_hash` (then no job carries it).
    workflow: str
    base_dir: str  # where the workflow's relative paths point (a path the worker can read)
    region: str
    method: str
    origin: Mapping[str, Any]  # `Origin` fields: what the step posts carries them
    state: Mapping[str, Any]  # the region's `snapshot()` before the step
    # How the coordinator was told to answer model calls (``--llm NAME=VALUE`` without
    # credentials, ``--replay FILE``): the worker builds its models the same way.
    llm_overrides: tuple[str, ...] = ()
    replay: str | None = None
    version: int = JOB_VERSION

    def to_bytes(self) -> bytes:
        # The fields are JSON-ready (a snapshot, an origin's fields): no `asdict` deep copy,
        # which cost a tenth of a millisecond per step.
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Job:
        raw = json.loads(data)
        if raw.get("version") != JOB_VERSION:
            raise ValueError(f"job version {raw.get('version')!r}; this worker reads {JOB_VERSION}")
        raw["llm_overrides"] = tuple(raw.get("llm_overrides") or ())
        return cls(**raw)


@dataclass(frozen=True)
class JobResult:
    """What a worker did with a `Job`. `error` is set when the step raised (its one-line
    reason); otherwise `status`/`detail` are the step's `Outcome` and `state`/`outbox` its
    effects. `events` are the events the step emitted, as `Event.to_json` objects."""

    id: str
    status: str = "ok"
    detail: str | None = None
    error: str | None = None
    state: Mapping[str, Any] = field(default_factory=dict)
    outbox: tuple[Mapping[str, Any], ...] = ()
    events: tuple[Mapping[str, Any], ...] = ()
    worker: str = ""  # which worker ran it (for logs)

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")).encode()

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (its fields are JSON already: no deep copy)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_bytes(cls, data: bytes) -> JobResult:
        return cls.from_dict(json.loads(data))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> JobResult:
        data = dict(raw)
        data["outbox"] = tuple(data.get("outbox") or ())
        data["events"] = tuple(data.get("events") or ())
        return cls(**data)
