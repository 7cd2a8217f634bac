"""The library-level run: open or resume a run file, build the engine, run it with subscribers,
finish. ``regions run``, ``step``, ``run --resume``, ``regions gui`` and the tests all use it::

    from regions_cli import Run, load

    workflow, document = load("hello.yaml")
    with Run.open(workflow, document) as run:
        run.subscribe(print)            # every event, as it happens
        finished = await run.execute()  # a RunFinished: status, exit_code, counts
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regions_cli.engine.barrier import Barrier, PauseRun
from regions_cli.engine.budget import Spend
from regions_cli.engine.events import Event, EventBus, Notice, RunFinished
from regions_cli.engine.message import Message
from regions_cli.engine.postmaster import Held
from regions_cli.exit_codes import ExitCode, status_of
from regions_cli.model import Wait
from regions_cli.runs.recorder import Recorder
from regions_cli.runs.resume import (
    FRESH,
    check_workflow,
    create_default_run_file,
    current_record,
    resume_point,
)
from regions_cli.runs.store import RunFile, RunFileError, RunFileExistsError, WorkflowRecord

if TYPE_CHECKING:
    from regions_cli.build import StoreProgress
    from regions_cli.engine.executor import Engine
    from regions_cli.llm.factory import LLMOptions
    from regions_cli.model import Workflow
    from regions_cli.workflow.load import Document

#: Builds the engine of a workflow, reporting to a bus (default: `build_engine_async`).
Builder = Callable[["Workflow", EventBus], Awaitable["Engine"]]

#: Asked at each barrier in interactive mode: True pauses the run there (it can be resumed).
Pause = Callable[["Run", Barrier], Awaitable[bool]]
#: Asked at a ``wait:`` with nothing injected for its region: the text to inject (None: the
#: run pauses, status ``waiting``).
Answer = Callable[["Run", Wait], Awaitable[str | None]]


class RunError(Exception):
    """A run that cannot start or go on, with its exit code; the message is one line that
    says where and what."""

    def __init__(self, message: str, exit_code: int = ExitCode.USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class Run:
    """One invocation of a workflow (a run, a step, a resume) and its run file.

    Use `Run.open`. A new run's file is created once its engine is built, so a workflow that
    cannot build leaves no run file behind.
    """

    def __init__(
        self,
        workflow: Workflow,
        record: WorkflowRecord,
        *,
        run_file: RunFile | None,
        path: Path | None,
        kind: str,
        max_layers: int | None = None,
        llm_options: LLMOptions | None = None,
        build: Builder | None = None,
        pause: Pause | None = None,
        answer: Answer | None = None,
        transport: str | None = None,
        workers: int = 0,
        llm_overrides: tuple[str, ...] = (),
    ) -> None:
        self.workflow = workflow
        self.record = record
        self.file = run_file
        self.point = resume_point(run_file) if run_file is not None else FRESH
        self.kind = kind
        self.max_layers = max_layers
        self.llm_options = llm_options
        self._path = path
        self._build = build
        self.pause = pause
        self.answer = answer
        # NATS: the workflow's ``transport:`` unless given; `workers` local ones started too
        self.transport = transport or workflow.transport
        self.workers = workers
        self.llm_overrides = llm_overrides  # the --llm the workers must apply too
        self._coordinator: Any = None
        #: why the run file could not be written, if it could not (the run's exit code stands)
        self.failure: str | None = None
        self._subscribers: list[Callable[[Event], None]] = []
        self._recorder: Recorder | None = None
        self._invocation: int | None = None
        self._first_barrier = True
        self._engine: Engine | None = None
        self._built: tuple[Engine, EventBus] | None = None  # by `prepare`
        self._task: asyncio.Task[Any] | None = None

    @classmethod
    def open(
        cls,
        workflow: Workflow,
        document: Document | None = None,
        *,
        run_file: Path | None = None,
        resume: Path | None = None,
        force: bool = False,
        kind: str | None = None,
        max_layers: int | None = None,
        llm_options: LLMOptions | None = None,
        build: Builder | None = None,
        pause: Pause | None = None,
        answer: Answer | None = None,
        transport: str | None = None,
        workers: int = 0,
        llm_overrides: tuple[str, ...] = (),
    ) -> Run:
        """A run of `workflow` (`document`: its file as loaded; read again if not given).

        `run_file`: where the new run file goes (default ``.regions/runs/`` beside the
        workflow); `resume`: the run file to continue instead (`force` accepts a compatible
        edit of the workflow). `max_layers` stops after that many layers (``regions step``).
        `build` replaces how the engine is built (e.g. with models of your own); `pause` is
        asked at each barrier and `answer` at a ``wait:`` with nothing injected (interactive
        mode: the text it returns is injected for the wait's region). `transport` (a NATS URL;
        default: the workflow's ``transport:``) sends the steps to ``regions worker``s, `workers`
        of them started here; `llm_overrides` (``--llm``) reach them. Raises `RunError`.
        """
        source = workflow.source
        if source is None:
            raise RunError(f"workflow {workflow.name!r}: a run needs the file it was loaded from")
        try:
            record = current_record(source, workflow, document)
            file = None
            if resume is not None:
                file = RunFile.open(Path(resume))
                try:
                    file.check_continuable()
                    check_workflow(file, record, force=force)
                    if file.finished:
                        what = (
                            "reached end"
                            if workflow.is_machine
                            else f"finished all {len(workflow.plan)} layers"
                        )
                        raise RunFileError(f"{file.path}: the run has already {what}")
                except RunFileError:
                    file.close()
                    raise
            elif run_file is not None and Path(run_file).exists():  # said before building
                raise RunFileExistsError(Path(run_file))
        except RunFileError as exc:
            raise RunError(str(exc)) from exc
        except OSError as exc:
            raise RunError(f"{source}: cannot read: {exc.strerror or exc}") from exc
        return cls(
            workflow,
            record,
            run_file=file,
            path=run_file,
            kind=kind or ("resume" if resume is not None else "run"),
            max_layers=max_layers,
            llm_options=llm_options,
            build=build,
            pause=pause,
            answer=answer,
            transport=transport,
            workers=workers,
            llm_overrides=llm_overrides,
        )

    @property
    def path(self) -> Path | None:
        """The run file (None until a new run's file is created)."""
        return self.file.path if self.file is not None else self._path

    def subscribe(self, subscriber: Callable[[Event], None]) -> None:
        """Call `subscriber` with every event of the run, after the run file has it. A
        subscriber that raises is dropped (a notice says so) and the run goes on."""
        self._subscribers.append(subscriber)

    def cancel(self) -> None:
        """Stop the run as Ctrl-C does (it ends "interrupted" and can be resumed)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running ---------------------------------------------------------------------------------

    async def execute(self) -> RunFinished:
        """Build, run and record the workflow; the `RunFinished` says how it ended.

        Raises `RunError` if the engine cannot be built (nothing is recorded then) or the run
        file cannot be created. Cancelling (Ctrl-C) ends the run "interrupted", recorded.
        """
        await self.prepare()
        assert self._built is not None
        engine, bus = self._built
        finished: list[RunFinished] = []
        try:
            self._start_recording(engine, bus)
        except BaseException:
            await engine.aclose()
            raise
        bus.subscribe(lambda e: finished.append(e) if isinstance(e, RunFinished) else None)
        for subscriber in self._subscribers:
            bus.subscribe(_guarded(subscriber, bus))
        started = time.time()
        exit_code: int = ExitCode.FAILED
        # The engine runs in its own task: cancelling this coroutine (Ctrl-C) or `cancel` (a
        # closed output) cancels it, and the engine turns that into an orderly "interrupted".
        self._task = asyncio.create_task(engine.run(barrier_hook=self, **self.run_kwargs()))
        try:
            exit_code = (await self._task).exit_code
        except asyncio.CancelledError:  # cancelled before the engine started or after it ended
            exit_code = finished[-1].exit_code if finished else ExitCode.INTERRUPTED
        except Exception as exc:  # a bug, not a run failure: one line, no traceback
            bus.emit(Notice(level="error", text=f"internal error: {type(exc).__name__}: {exc}"))
        finally:
            self._task = None
            _uncancel()  # a Ctrl-C was handled: let the clean-up below run
            await engine.aclose()
            if self._coordinator is not None:
                await self._coordinator.aclose()
        if not finished:  # the engine ended without saying so
            bus.emit(empty_finish(exit_code, time.time() - started, str(self.path)))
        self.finish(finished[-1], exit_code)
        return finished[-1]

    async def prepare(self, store_progress: StoreProgress | None = None) -> None:
        """Build the engine now (`execute` does it if this was not called): the RAG stores
        ingest their new documents, telling `store_progress` how far each got, and the
        embedded model starts loading. Raises `RunError` as `execute` does."""
        if self._built is None:
            bus = EventBus()
            engine = await self._build_engine(bus, store_progress)
            if self.transport is not None:
                await self._coordinate(engine)
            self._built = (engine, bus)

    async def _coordinate(self, engine: Engine) -> None:
        """Send the steps to workers over NATS (`regions_cli.distributed`)."""
        from regions_cli.distributed.coordinator import coordinate
        from regions_cli.distributed.jetstream import TransportError
        from regions_cli.llm.factory import override_without_credentials
        from regions_cli.runs.codec import event_from_json

        assert self.transport is not None
        options = self.llm_options
        overrides = tuple(override_without_credentials(o) for o in self.llm_overrides)
        try:
            self._coordinator = await coordinate(
                engine,
                self.transport,
                workflow_text=self.record.text,  # as written: a mapping's order is meaningful
                base_dir=self.workflow.base_dir,
                decode=event_from_json,
                placement={n: r.placement for n, r in self.workflow.regions.items() if r.placement},
                workers=self.workers,
                llm_overrides=overrides,
                replay=options.replay if options is not None else None,
            )
        except TransportError as exc:
            await engine.aclose()
            raise RunError(str(exc), ExitCode.USAGE) from None

    async def _build_engine(
        self, bus: EventBus, store_progress: StoreProgress | None = None
    ) -> Engine:
        from regions_cli.build import build_engine_async

        try:
            if self._build is not None:
                return await self._build(self.workflow, bus)
            return await build_engine_async(
                self.workflow, bus, self.llm_options, progress=store_progress
            )
        except (OSError, ValueError) as exc:  # BuildError is a ValueError with a located message
            raise RunError(f"{self.workflow.source}: {exc}") from exc
        except asyncio.CancelledError:  # Ctrl-C while the stores were being opened
            raise RunError(
                "interrupted while opening the RAG stores", ExitCode.INTERRUPTED
            ) from None

    def _start_recording(self, engine: Engine, bus: EventBus) -> None:
        """Create the run file of a new run, begin this invocation, subscribe the recorder,
        and let the engine continue the run file's numbering and budget."""
        if self.file is None:
            try:
                if self._path is not None:
                    self.file = RunFile.create(self._path, workflow=self.record)
                else:
                    self.file = create_default_run_file(Path(self.record.path), self.record)
            except RunFileError as exc:
                raise RunError(str(exc)) from exc
            except OSError as exc:
                raise RunError(f"{self._path}: cannot create: {exc.strerror or exc}") from exc
        file = self.file
        self._invocation = file.begin_invocation(self.kind, keep_chains=self.point.skip_chains)
        recorder = self._recorder = Recorder(file, self._invocation)
        recorder.resume_chains(self.point.start_layer, self.point.completed)
        regions: Mapping[str, Any] = engine.regions

        def snapshot(names: Sequence[str]) -> dict[str, dict[str, Any]]:
            return {name: regions[name].snapshot() for name in names if name in regions}

        recorder.snapshot = snapshot
        recorder.held = engine.postmaster.held
        bus.subscribe(recorder)  # first: the run file sees every event before the views
        self._engine = engine
        engine.postmaster.seq = file.last_delivery_seq()
        for region, used in file.usage(include_rolled_back=True).items():
            engine.budget.add(region, Spend(**used))

    def run_kwargs(self) -> dict[str, Any]:
        """The `Engine.run` arguments that continue this run file where it stopped."""
        return {
            "start_layer": self.point.start_layer,
            "states": self.point.states or None,
            "inject_initial": self.point.fresh,
            "max_layers": self.max_layers,
            "run_file": str(self.path),
            "run_id": self.path.stem if self.path is not None else None,
            "completed_chains": {
                chain: [Held.from_json(item) for item in done.held]
                for chain, done in self.point.completed.items()
            },
            "cursor": self.point.cursor,
            "on_wait": self._on_wait if self.answer is not None else None,
        }

    def finish(self, finished: RunFinished, exit_code: int) -> None:
        """Record how this invocation ended (a run file that could not be written is said in
        `failure`: the run's own exit code stands, the caller reports it)."""
        if self.file is None or self._recorder is None or self._invocation is None:
            return
        status = finished.status
        recorder = self._recorder
        try:
            recorder.flush()
            self.file.end_invocation(self._invocation, status, exit_code)
        except sqlite3.Error as exc:
            recorder.failure = recorder.failure or f"{self.file.path}: {exc}"
        self.failure = recorder.failure

    # -- the barrier hook ------------------------------------------------------------------------

    async def at_barrier(self, barrier: Barrier) -> Sequence[Message]:
        """The executor's barrier hook: commit the barrier, hand over queued injections, and
        in interactive mode ask `pause`."""
        assert self._recorder is not None and self._engine is not None
        messages: list[Message] = []
        if self._first_barrier:
            self._first_barrier = False
            await self._hand_back(self._engine)
            if self.point.skip_chains:
                self._engine.bus.emit(
                    Notice(
                        level="info",
                        text=f"resuming layer {barrier.next_layer + 1}: "
                        f"{'chain' if len(self.point.skip_chains) == 1 else 'chains'} "
                        f"{', '.join(sorted(self.point.skip_chains))} already completed",
                    )
                )
        recorder = self._recorder
        messages.extend(recorder.commit_barrier(barrier.next_layer, barrier.states, barrier.cursor))
        if self.pause is not None and not barrier.finished:
            if await self.pause(self, barrier):
                raise PauseRun  # the engine stops here, cleanly: status "paused"
            # the barrier is committed: this only takes what was queued during the pause
            messages.extend(
                recorder.commit_barrier(barrier.next_layer, barrier.states, barrier.cursor)
            )
        return messages

    async def _on_wait(self, wait: Wait) -> Sequence[Message]:
        """At a ``wait:`` with nothing injected: ask `answer` (interactive mode), queue its
        text as an injection (recorded like ``regions inject``) and take it at once."""
        if self.answer is None or self.file is None or self._recorder is None:
            return []
        text = await self.answer(self, wait)
        if text is None:
            return []
        self.file.add_injection("user", wait.region, "request", text)
        position = self.file.position
        return self._recorder.commit_barrier(
            position, self._engine.snapshot() if self._engine else {}, self.file.cursor()
        )

    async def _hand_back(self, engine: Engine) -> None:
        """Give back what the regions restored from the last barrier had received after it:
        the injections taken at that barrier (delivered and journaled again, in their order),
        then what the completed chains had delivered (put back only, see `Postmaster.hand_back`:
        no delivery number is taken, so numbers stay unique)."""
        assert self._recorder is not None
        if self.point.reinject:
            await engine.postmaster.inject(list(self.point.reinject))
        for recipient, message in self.point.redeliver:
            await engine.postmaster.hand_back(recipient, message)
            self._recorder.touch(recipient)


def _guarded(subscriber: Callable[[Event], None], bus: EventBus) -> Callable[[Event], None]:
    """`subscriber` as one that never raises into the engine: one that fails (a bug, a
    terminal gone) is dropped, and a notice says so to the others; the run goes on."""
    failed = False

    def guarded(event: Event) -> None:
        nonlocal failed
        if failed:
            return
        try:
            subscriber(event)
        except Exception as exc:
            failed = True
            bus.emit(
                Notice(
                    level="error",
                    text=f"the view stopped ({type(exc).__name__}: {exc}); the run goes on",
                )
            )

    return guarded


def _uncancel() -> None:
    """Clear the cancellation Ctrl-C requested of this task once the engine has stopped."""
    task = asyncio.current_task()
    while task is not None and task.cancelling():
        task.uncancel()


def empty_finish(exit_code: int, duration: float, run_file: str | None) -> RunFinished:
    """The `RunFinished` of a run that ended before its engine could say so."""
    return RunFinished(
        status=status_of(exit_code),
        exit_code=exit_code,
        layers_run=0,
        steps_ok=0,
        steps_failed=0,
        messages=0,
        prompt_tokens=0,
        completion_tokens=0,
        duration=duration,
        run_file=run_file,
    )
