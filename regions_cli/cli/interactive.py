"""``regions run --interactive``: the dialogue at each barrier (continue, inject, show, quit).

It is the `regions_cli.runs.run.Pause` callback of the run: blocking terminal input runs in a
daemon thread, the live view paused meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO, TypeVar

from regions_cli.engine.barrier import Barrier
from regions_cli.model import Wait
from regions_cli.runs.run import Run
from regions_cli.text import unknown
from regions_cli.view.state import region_state_lines

T = TypeVar("T")


class Dialogue:
    """Asks the user at each barrier; True quits (the run pauses there and can be resumed)."""

    def __init__(
        self,
        view: Any,
        resume_command: Callable[[], str],
        *,
        inp: TextIO | None = None,
        out: TextIO | None = None,
    ) -> None:
        self.view = view  # a view with ``paused()`` is paused while the dialogue runs
        self.resume_command = resume_command  # what continues the run after a quit
        self.inp = inp
        self.out = out

    async def __call__(self, run: Run, barrier: Barrier) -> bool:
        paused = getattr(self.view, "paused", None)
        with paused() if paused is not None else contextlib.nullcontext():
            return await _in_daemon_thread(lambda: self._ask(run, barrier))

    async def answer(self, run: Run, wait: Wait) -> str | None:
        """The run's `Answer` at a ``wait:``: the user's line for the wait's region (an
        empty line or the end of input: None, the run pauses there)."""
        paused = getattr(self.view, "paused", None)
        with paused() if paused is not None else contextlib.nullcontext():
            return await _in_daemon_thread(lambda: self._answer(wait))

    def _answer(self, wait: Wait) -> str | None:
        out = self.out or sys.stderr
        inp = self.inp or sys.stdin
        out.write(f"\n{wait.prompt or 'input'} (for {wait.region}; empty line: pause) > ")
        out.flush()
        line = inp.readline()
        if not line.strip():
            out.write(f"paused; continue with: {self.resume_command()}\n")
            return None
        return line.rstrip("\n")

    def _ask(self, run: Run, barrier: Barrier) -> bool:
        out = self.out or sys.stderr
        inp = self.inp or sys.stdin
        plan = run.record.plan
        index = barrier.layer_index
        label = plan[index].get("label", "")
        in_state = f" of state {plan[index]['state']}" if "state" in plan[index] else ""
        out.write(
            f"\npaused before layer {index + 1}/{len(plan)} {label}{in_state} "
            f"(run file {run.path})\n"
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
                out.write(f"paused; continue with: {self.resume_command()}\n")
                return True
            if command in ("s", "show"):
                name = rest.strip()
                state = barrier.states.get(name)
                if state is None:
                    out.write(unknown("region", name, barrier.states) + "\n")
                else:
                    out.write("\n".join(region_state_lines(name, state)) + "\n")
            elif command in ("i", "inject"):
                self._inject(run, inp, out)
            else:
                out.write(f"unknown command {command!r}\n")

    @staticmethod
    def _inject(run: Run, inp: TextIO, out: TextIO) -> None:
        def ask(prompt: str, default: str = "") -> str:
            out.write(f"  {prompt}{f' [{default}]' if default else ''}: ")
            out.flush()
            return inp.readline().strip() or default

        to = ask("to region")
        role = ask("role (request|reply)", "request")
        source = ask("from", "user")
        text = ask("text")
        problem = run.record.injection_problem(to, role)
        if problem is None and not text:
            problem = "empty text"
        if problem is not None or run.file is None:
            out.write(f"  not injected: {problem}\n")
            return
        queued = run.file.add_injection(source, to, role, text)
        out.write(f"  queued message {queued.message.id} for {to}\n")


async def _in_daemon_thread(work: Callable[[], T]) -> T:
    """Run blocking terminal input off the event loop, in a daemon thread: unlike
    `asyncio.to_thread`, a Ctrl-C while it waits for a line does not hang the exit."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result, error = work(), None
        except Exception as exc:
            result, error = None, exc
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=run, name="regions-interactive", daemon=True).start()
    return await future
