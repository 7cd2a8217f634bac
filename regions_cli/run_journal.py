"""The journal side of ``regions run`` / ``step`` / ``run --resume`` / ``run --interactive``.

`RunJournal` is what `regions_cli.runner` calls around the engine: it opens or creates the
run file, works out where the run continues (`regions_cli.engine.runfile.resume_point`),
subscribes the `Recorder` to the event bus, and is the executor's barrier hook (committing
each barrier, delivering queued injections, and in interactive mode asking the user what to do).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from regions_cli.engine.barrier import Barrier
from regions_cli.engine.budget import Spend
from regions_cli.engine.events import EventBus, Notice, RunFinished
from regions_cli.engine.journal import Recorder, RunFile, RunFileError, WorkflowRecord
from regions_cli.engine.message import ROLES, Message
from regions_cli.engine.postmaster import Held
from regions_cli.engine.runfile import (
    ResumePoint,
    check_workflow,
    create_default_run_file,
    resume_point,
    workflow_record,
)
from regions_cli.workflow.model import Workflow

if TYPE_CHECKING:
    from regions_cli.runner import RunOptions
    from regions_cli.workflow.load import Document


class JournalError(Exception):
    """The run file cannot be used for this run (a usage error); the message is one line."""


def current_record(
    source: Path, workflow: Workflow, document: Document | None = None
) -> WorkflowRecord:
    """The `WorkflowRecord` of the workflow file as it is now (raw text, no secrets).

    `document` is the file as verification parsed it; without it the file is read again."""
    if document is None or document.raw is None:
        from regions_cli.workflow.load import load_file

        document = load_file(source)
    return workflow_record(source, workflow, document.text, document.raw or {})


def latest_run(source: Path, name: str, *, unfinished: bool = True) -> Path | None:
    """The newest run file of workflow `name` beside `source` (not finished, if asked)."""
    folder = source.resolve().parent / ".regions" / "runs"
    candidates = sorted(folder.glob(f"{name}-*.db"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        try:
            with RunFile.open(path) as run:
                if run.workflow.name != name:
                    continue
                if unfinished and run.started and run.position >= len(run.workflow.plan):
                    continue
                return path
        except RunFileError:
            continue
    return None


class RunJournal:
    """The run file of one invocation (``run``, ``step`` or a resume), as the runner uses it.

    It is the executor's barrier hook: ``engine.run(barrier_hook=journal, **journal.run_kwargs)``.
    """

    def __init__(
        self,
        run: RunFile,
        point: ResumePoint,
        *,
        kind: str,
        max_layers: int | None = None,
        interactive: bool = False,
        prompt_in: TextIO | None = None,
        prompt_out: TextIO | None = None,
    ) -> None:
        self.run = run
        self.point = point
        self.kind = kind
        self.max_layers = max_layers
        self.interactive = interactive
        self.invocation = run.begin_invocation(kind, keep_chains=point.skip_chains)
        self.recorder = Recorder(run, self.invocation)
        self.recorder.resume_chains(point.start_layer, point.completed)
        self.paused = False
        self._first_barrier = True
        self._view: Any = None
        self._prompt_in = prompt_in
        self._prompt_out = prompt_out
        self._bus: EventBus | None = None
        self._postmaster: Any = None

    # -- what the runner calls -------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def path_text(self) -> str:
        return str(self.run.path)

    @classmethod
    def open(
        cls, options: RunOptions, workflow: Workflow, document: Document | None = None
    ) -> RunJournal:
        """Create the run file (``options.run_file``, or the default path) or open the one to
        continue (``options.resume``); `JournalError` if it cannot be used for this run."""
        source = Path(options.workflow)
        try:
            current = current_record(source, workflow, document)
            if options.resume is not None:
                run = RunFile.open(Path(options.resume))
                try:
                    run.check_continuable()
                    check_workflow(run, current, force=options.force)
                except RunFileError:
                    run.close()
                    raise
                kind = options.kind or "resume"
            else:
                if options.run_file is not None:
                    run = RunFile.create(Path(options.run_file), workflow=current)
                else:
                    run = create_default_run_file(source, current)
                kind = options.kind or "run"
            point = resume_point(run)
            if not point.fresh and point.start_layer >= len(workflow.plan):
                run.close()
                raise RunFileError(
                    f"{run.path}: the run has already finished all {len(workflow.plan)} layers"
                )
            return cls(
                run,
                point,
                kind=kind,
                max_layers=options.max_layers,
                interactive=options.interactive,
            )
        except RunFileError as exc:
            raise JournalError(str(exc)) from exc
        except OSError as exc:
            raise JournalError(f"{source}: cannot read: {exc.strerror or exc}") from exc

    def attach(self, engine: Any, view: Any = None) -> None:
        """Let the journal snapshot `engine`'s regions at chain ends; remember the view
        (interactive mode pauses it to ask). Delivery numbers continue the run's, and the
        budget counts what the earlier invocations of the run file spent."""
        regions: Mapping[str, Any] = engine.regions

        def snapshot(names: Sequence[str]) -> dict[str, dict[str, Any]]:
            return {name: regions[name].snapshot() for name in names if name in regions}

        self.recorder.snapshot = snapshot
        self.recorder.held = engine.postmaster.held
        self._view = view
        self._bus = engine.bus
        self._postmaster = engine.postmaster
        row = self.run.conn.execute(
            "SELECT COALESCE(MAX(delivery_seq), 0) FROM messages WHERE rolled_back = 0"
        ).fetchone()
        self._postmaster.seq = int(row[0])
        for region, used in self.run.usage(include_rolled_back=True).items():
            engine.budget.add(region, Spend(**used))

    @property
    def run_kwargs(self) -> dict[str, Any]:
        """The `Engine.run` arguments that continue this run file where it stopped."""
        return {
            "start_layer": self.point.start_layer,
            "states": self.point.states or None,
            "inject_initial": self.point.fresh,
            "max_layers": self.max_layers,
            "run_file": self.path_text,
            "completed_chains": {
                chain: [Held.from_json(item) for item in done.held]
                for chain, done in self.point.completed.items()
            },
        }

    def subscribe(self, bus: EventBus) -> None:
        bus.subscribe(self.recorder)

    def finish(
        self, finished: RunFinished | None, exit_code: int, err: TextIO | None = None
    ) -> None:
        """Record how this invocation ended (a run file that cannot be written is reported on
        `err`, default stderr: the run's own exit code stands)."""
        status = "paused" if self.paused else (finished.status if finished else "failed")
        try:
            self.recorder.flush()
            self.run.end_invocation(self.invocation, status, exit_code)
        except sqlite3.Error as exc:
            self.recorder.failure = self.recorder.failure or f"{self.path}: {exc}"
        if self.recorder.failure is not None:
            (err or sys.stderr).write(f"error: {self.recorder.failure}\n")

    def close(self) -> None:
        self.run.close()

    # -- the barrier hook ------------------------------------------------------------------------

    async def at_barrier(self, barrier: Barrier) -> Sequence[Message]:
        messages: list[Message] = []
        if self._first_barrier:
            self._first_barrier = False
            await self._hand_back()
            if self.point.skip_chains and self._bus is not None:
                self._bus.emit(
                    Notice(
                        level="info",
                        text=f"resuming layer {barrier.next_layer + 1}: chain(s) "
                        f"{', '.join(sorted(self.point.skip_chains))} already completed",
                    )
                )
        messages.extend(self.recorder.commit_barrier(barrier.next_layer, barrier.states))
        if self.interactive and barrier.next_layer < len(self.run.workflow.plan):
            if await self._ask(barrier):
                self.paused = True
                raise asyncio.CancelledError  # the engine stops here, cleanly, status interrupted
            # the barrier is committed: this only takes what the user queued while paused
            messages.extend(self.recorder.commit_barrier(barrier.next_layer, barrier.states))
        return messages

    async def _hand_back(self) -> None:
        """Give back what the regions restored from the last barrier had received after it:
        the injections taken at that barrier (delivered and journaled again, in their order),
        then what the completed chains had delivered (put back only, see `Postmaster.hand_back`:
        no delivery number is taken, so numbers stay unique)."""
        if self.point.reinject:
            await self._postmaster.inject(list(self.point.reinject))
        for recipient, message in self.point.redeliver:
            await self._postmaster.hand_back(recipient, message)
            self.recorder.touch(recipient)

    # -- interactive mode ------------------------------------------------------------------------

    async def _ask(self, barrier: Barrier) -> bool:
        """Prompt until the user continues (False) or quits (True), the live view paused."""
        paused = getattr(self._view, "paused", None)
        with paused() if paused is not None else contextlib.nullcontext():
            return await _in_daemon_thread(lambda: self._dialogue(barrier))

    def _dialogue(self, barrier: Barrier) -> bool:
        out = self._prompt_out or sys.stderr
        inp = self._prompt_in or sys.stdin
        plan = self.run.workflow.plan
        label = plan[barrier.next_layer].get("label", "")
        out.write(
            f"\npaused before layer {barrier.next_layer + 1}/{len(plan)} {label} "
            f"(run file {self.run.path})\n"
        )
        while True:
            out.write("[c]ontinue, [i]nject, [s]how REGION, [q]uit > ")
            out.flush()
            line = inp.readline()
            if not line:  # end of input: stop here rather than run unattended
                out.write("\nend of input: quitting\n")
                return True
            command, _, rest = line.strip().partition(" ")
            command = command.lower()
            if command in ("", "c", "continue"):
                return False
            if command in ("q", "quit"):
                out.write(
                    f"paused; continue with: regions run {self.run.workflow.path} "
                    f"--resume {self.run.path}\n"
                )
                return True
            if command in ("s", "show"):
                name = rest.strip()
                state = barrier.states.get(name)
                if state is None:
                    out.write(f"no region {name!r}; regions: {', '.join(barrier.states)}\n")
                else:
                    out.write("\n".join(region_state_lines(name, state)) + "\n")
            elif command in ("i", "inject"):
                self._inject_dialogue(inp, out)
            else:
                out.write(f"unknown command {command!r}\n")

    def _inject_dialogue(self, inp: TextIO, out: TextIO) -> None:
        def ask(prompt: str, default: str = "") -> str:
            out.write(f"  {prompt}{f' [{default}]' if default else ''}: ")
            out.flush()
            return inp.readline().strip() or default

        to = ask("to region")
        role = ask("role (request|reply)", "request")
        source = ask("from", "user")
        text = ask("text")
        problem = injection_problem(self.run.workflow, to, role)
        if problem is None and not text:
            problem = "empty text"
        if problem is not None:
            out.write(f"  not injected: {problem}\n")
            return
        queued = self.run.add_injection(source, to, role, text)
        out.write(f"  queued message {queued.message.id} for {to}\n")


async def _in_daemon_thread(work: Callable[[], bool]) -> bool:
    """Run blocking terminal input off the event loop, in a daemon thread: unlike
    `asyncio.to_thread`, a Ctrl-C while it waits for a line does not hang the exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[bool] = loop.create_future()

    def settle(result: bool | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(bool(result))

    def run() -> None:
        try:
            result, error = work(), None
        except Exception as exc:
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="regions-interactive", daemon=True).start()
    return await future


def injection_problem(workflow: WorkflowRecord, to: str, role: str) -> str | None:
    """Why a message to `to` with `role` cannot be injected into a run of `workflow`, or None."""
    if to not in workflow.regions:
        names = ", ".join(sorted(workflow.regions)) or "none"
        return f"unknown region {to!r} (regions: {names})"
    if role not in ROLES:
        return f"bad role {role!r} (use request or reply)"
    return None


def region_state_lines(name: str, state: Mapping[str, Any], *, limit: int = 100) -> list[str]:
    """A region's snapshot for people: pending requests, knowledge (replies), held inbox."""
    from regions_cli.view.state import first_line

    lines = [f"{name} ({state.get('type', '?')})"]
    for title, key in (("requests (pending)", "requests"), ("replies (knowledge)", "replies")):
        entries = state.get(key) or []
        lines.append(f"  {title}: {len(entries)}")
        lines.extend(
            f"    {entry.get('source')}: {first_line(str(entry.get('content', '')), limit)}"
            for entry in entries
        )
    inbox = state.get("inbox") or []
    if inbox:
        lines.append(f"  inbox: {len(inbox)}")
        lines.extend(
            f"    {m.get('source')} -> {m.get('destination')} {m.get('role')}: "
            f"{first_line(str(m.get('content', '')), limit)}"
            for m in inbox
        )
    extra = state.get("extra") or {}
    if extra:
        lines.append(f"  other state: {', '.join(sorted(extra))}")
    return lines
