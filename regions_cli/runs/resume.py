"""Continuing a run: which workflow a run file belongs to, whether an edited workflow may
continue it, where new run files go and which is the latest, and where a resumed run starts.

The storage is `regions_cli.runs.store`; the writing, `regions_cli.runs.recorder`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regions_cli.engine.message import Message
from regions_cli.model import Workflow, split_step
from regions_cli.runs.codec import message_from_row
from regions_cli.runs.store import (
    ChainDone,
    RunFile,
    RunFileError,
    RunFileExistsError,
    WorkflowRecord,
)

if TYPE_CHECKING:
    from regions_cli.workflow.load import Document

#: Keys that never change what a run does (the editor's node positions, free text).
_COSMETIC_KEYS = ("layout", "description")

#: How many changes an error message names before summing up the rest.
_MAX_CHANGES_SHOWN = 6


def canonical_text(document: Mapping[str, Any]) -> str:
    """The canonical JSON of a workflow document as written (``${VAR}`` not interpolated).

    Keys are sorted and the cosmetic keys (`layout`, `description`) left out, so reformatting
    the YAML, adding comments or moving nodes in the editor does not change the hash.
    """
    data = {k: v for k, v in document.items() if k not in _COSMETIC_KEYS}
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def workflow_info(workflow: Workflow) -> dict[str, Any]:
    """The small description of a workflow that a run file keeps for `inject`, `show`, `step`
    (a machine's layers also name their state, and ``states`` lists where each begins)."""
    plan = []
    for layer in workflow.plan:
        item: dict[str, Any] = {
            "label": layer.label,
            "chains": {c.name: [step.label for step in c.steps] for c in layer.chains},
        }
        if workflow.is_machine:
            item["state"] = layer.state
        if layer.wait is not None:
            item["wait"] = {"for": layer.wait.region, "prompt": layer.wait.prompt}
        plan.append(item)
    info: dict[str, Any] = {
        "regions": {name: region.type for name, region in workflow.regions.items()},
        "plan": plan,
        "inject": len(workflow.inject),
    }
    if workflow.is_machine:
        info["states"] = {
            name: {"first": state.first, "count": state.count}
            for name, state in workflow.states.items()
        }
    return info


def workflow_record(
    source: Path, workflow: Workflow, text: str, document: Mapping[str, Any]
) -> WorkflowRecord:
    """Describe the workflow file `source` for a run file.

    `text` is the file's raw text, `document` its parsed YAML before ``${VAR}`` interpolation
    (so no secret reaches the run file) and `workflow` the validated model.
    """
    canonical = canonical_text(document)
    return WorkflowRecord(
        name=workflow.name,
        path=str(source.resolve()),
        text=text,
        canonical=canonical,
        hash=hashlib.sha256(canonical.encode("utf-8")).hexdigest(),
        info=workflow_info(workflow),
    )


def create_default_run_file(source: Path, workflow: WorkflowRecord) -> RunFile:
    """A new run file at `default_run_path`; if another run takes that path first (two runs
    started in the same second), the next free name."""
    for _ in range(100):
        try:
            return RunFile.create(default_run_path(source, workflow.name), workflow=workflow)
        except RunFileExistsError:
            continue
    raise RunFileError(f"{source}: no free run file name in {default_run_path(source, '')}")


def default_run_path(source: Path, name: str, now: float | None = None) -> Path:
    """``.regions/runs/<name>-<UTC time>.db`` beside the workflow file; never an existing file.
    The file's name without ``.db`` is the run's id (``run_id`` in its events)."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now if now is not None else time.time()))
    folder = source.resolve().parent / ".regions" / "runs"
    path = folder / f"{name}-{stamp}.db"
    counter = 1
    while path.exists():
        counter += 1
        path = folder / f"{name}-{stamp}-{counter}.db"
    return path


# ---------------------------------------------------------------------------------------------
# Has the workflow changed?


def describe_changes(old: str, new: str) -> list[str]:
    """What differs between two canonical texts, as dotted paths (``regions.A.task changed``)."""
    changes: list[str] = []
    _diff(json.loads(old), json.loads(new), "", changes)
    return changes


def _diff(old: Any, new: Any, path: str, out: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in new:
                out.append(f"{where} removed")
            elif key not in old:
                out.append(f"{where} added")
            else:
                _diff(old[key], new[key], where, out)
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            _diff(a, b, f"{path}[{index}]", out)
    elif old != new:
        out.append(f"{path or 'the document'} changed")


def breaking_changes(stored: WorkflowRecord, current: WorkflowRecord, run: RunFile) -> list[str]:
    """Changes that make `current` unable to continue `run`, even with ``--force``.

    A continued run restores every region's state, so a region that has state must still
    exist with the same type; the plan must still reach the run's position; and a layer with
    chains already completed must still have those chains with the same steps.
    """
    problems: list[str] = []
    old_regions, new_regions = stored.regions, current.regions
    for name in sorted(run.states()):
        if name not in new_regions:
            problems.append(f"region {name} (which has state in the run) was removed")
        elif old_regions.get(name) not in (None, new_regions[name]):
            problems.append(
                f"region {name} changed type from {old_regions[name]} to {new_regions[name]}"
            )
    position, index = run.position, run.next_layer()
    if len(current.plan) < index:
        problems.append(
            f"the plan has {len(current.plan)} layers but the run already finished {index}"
        )
    cursor = run.cursor()
    if cursor is not None and cursor["state"] not in current.states:
        problems.append(f"state {cursor['state']} (where the run is) was removed")
    done = run.chains_done(position)
    if done and index < len(current.plan):
        old_chains = stored.plan[index]["chains"] if index < len(stored.plan) else {}
        new_chains = current.plan[index]["chains"]
        for chain in done:
            if new_chains.get(chain) != old_chains.get(chain):
                problems.append(
                    f"chain {chain} of layer {position + 1}, already completed, was changed"
                )
    return problems


def check_workflow(run: RunFile, current: WorkflowRecord, *, force: bool) -> None:
    """Refuse (`RunFileError`) to continue `run` with a workflow that changed, unless `force`
    and the change is compatible. The message names what changed."""
    stored = run.workflow
    if stored.hash == current.hash:
        return
    if stored.name != current.name:
        raise RunFileError(
            f"{run.path}: this run belongs to workflow {stored.name!r} ({stored.path}), "
            f"not {current.name!r}"
        )
    changes = describe_changes(stored.canonical, current.canonical) or ["the document changed"]
    shown = ", ".join(changes[:_MAX_CHANGES_SHOWN])
    if len(changes) > _MAX_CHANGES_SHOWN:
        shown += f" and {len(changes) - _MAX_CHANGES_SHOWN} more"
    breaking = breaking_changes(stored, current, run)
    if breaking:
        raise RunFileError(
            f"{run.path}: the workflow changed in a way that breaks this run: "
            + "; ".join(breaking)
        )
    if not force:
        raise RunFileError(
            f"{run.path}: the workflow changed since this run started ({shown}); "
            "use --force to continue with a compatible edit"
        )


# ---------------------------------------------------------------------------------------------
# Where a continued run starts


@dataclass(frozen=True)
class ResumePoint:
    """Everything `Engine.run` needs to continue a run file exactly where it stopped."""

    start_layer: int
    states: dict[str, dict[str, Any]]  # region -> state to restore
    completed: Mapping[str, ChainDone]  # chains of `start_layer` that completed: not run again
    reinject: tuple[Message, ...]  # injections taken but never journaled: delivered again
    # (recipient, message): what the barrier's injections and the completed chains delivered
    # (copies to listeners included) to a region whose state was not kept: put back into that
    # region without a new delivery
    redeliver: tuple[tuple[str, Message], ...]
    fresh: bool  # nothing committed yet: apply the workflow's ``inject:`` first
    cursor: Mapping[str, Any] | None = None  # a state machine's cursor at the barrier

    @property
    def skip_chains(self) -> frozenset[str]:
        """The names of the `completed` chains."""
        return frozenset(self.completed)


#: Where a run that has committed nothing starts: layer 0, the workflow's ``inject:`` first.
FRESH = ResumePoint(0, {}, {}, (), (), True)


def resume_point(run: RunFile) -> ResumePoint:
    """Where `run` continues: its last committed barrier plus the chains completed after it.

    The restored state is the barrier's snapshot with each completed chain's regions replaced
    by their state when that chain ended. A completed chain counts only if no chain that has
    to run again touched its regions before it ended (shared region, or a message delivered
    to it); otherwise it runs again too. Messages delivered after the barrier to a region whose
    state was not kept are handed back to it (their deliveries are in the journal already):
    the injections the barrier took and what the completed chains delivered, listener copies
    included. Injections the barrier took that were never journaled are delivered again.
    """
    if not run.started:
        return FRESH
    position, index = run.position, run.next_layer()
    after = run.barrier_seq(position)
    plan = run.workflow.plan
    chain_regions: dict[str, set[str]] = {}
    if index < len(plan):
        for chain, steps in (plan[index].get("chains") or {}).items():
            chain_regions[str(chain)] = {split_step(str(step))[0] for step in steps}
    completed = run.chains_done(position)
    rows = run.messages_after(after)

    done = {chain for chain in completed if chain in chain_regions}
    while True:
        rerun_regions = set().union(*(chain_regions[c] for c in chain_regions if c not in done))
        demote = {chain for chain in done if chain_regions[chain] & rerun_regions}
        owner = {region: chain for chain in done for region in chain_regions[chain]}
        for row in rows:
            from_done = row["layer"] == position and row["chain"] in done
            if from_done or row["injected"]:  # injections precede every chain's snapshot
                continue
            chain = owner.get(row["recipient"] or row["destination"])
            if chain is not None and row["event_seq"] <= completed[chain].event_seq:
                demote.add(chain)
        if not demote:
            break
        done -= demote

    states = run.states(position)
    owner = {region: chain for chain in done for region in chain_regions[chain]}
    for chain in done:
        states.update(completed[chain].states)

    def kept(recipient: str, event_seq: int) -> bool:
        chain = owner.get(recipient)
        return chain is not None and event_seq <= completed[chain].event_seq

    journaled = {row["id"] for row in rows if row["injected"] and not row["rolled_back"]}
    reinject = tuple(  # taken at the barrier by a process that died before writing them
        item.message
        for item in run.injections()
        if item.consumed_at == position and item.message.id not in journaled
    )
    redeliver: list[tuple[str, Message]] = []
    for row in rows:
        recipient = row["recipient"] or row["destination"]
        if (
            row["rolled_back"]
            or not (row["injected"] or (row["layer"] == position and row["chain"] in done))
            or recipient not in run.workflow.regions  # an output: nothing to put back
            or kept(recipient, int(row["event_seq"]))
        ):
            continue
        redeliver.append((recipient, message_from_row(row)))
    return ResumePoint(
        position,
        states,
        {chain: completed[chain] for chain in done},
        reinject,
        tuple(redeliver),
        False,
        run.cursor(),
    )


def current_record(
    source: Path, workflow: Workflow, document: Document | None = None
) -> WorkflowRecord:
    """The `WorkflowRecord` of the workflow file as it is now (raw text, no secrets).

    `document` is the file as verification parsed it; without it the file is read again."""
    if document is None or document.raw is None:
        from regions_cli.workflow.load import load_file

        document = load_file(source)
    return workflow_record(source, workflow, document.text, document.raw or {})
