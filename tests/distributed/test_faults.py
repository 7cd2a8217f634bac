"""Faults of a distributed run, with real processes: a worker killed with SIGKILL in the middle
of a step, the NATS server restarted mid-run, the coordinator killed and resumed. Each run ends
with the traffic of the same run in one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import regions, regions_argv, regions_env
from natsserver import NatsServer
from transcripts import of_run_file

FIXTURES = Path(__file__).resolve().parents[1] / "journal" / "fixtures"


@pytest.fixture
def slow_loop(tmp_path: Path) -> Path:
    """loop.yaml whose model takes `latency` per call (the same answers)."""
    path = tmp_path / "loop.yaml"
    text = (FIXTURES / "loop.yaml").read_text(encoding="utf-8")
    path.write_text(text.replace("latency: 0\n", "latency: 0.6\n"), encoding="utf-8")
    return path


class Worker:
    """A `regions worker` process whose log lines are read as they come."""

    def __init__(self, url: str, name: str, *extra: str) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, "-m", "regions_cli", "worker", "--nats", url, "--name", name,
             *extra],
            stderr=subprocess.PIPE, text=True, env=regions_env(),
        )  # fmt: skip
        self.lines: list[str] = []
        self.ran = threading.Event()  # set at each job it finishes
        self.serving = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)
            if ": serving " in line:
                self.serving.set()
            if ": ran " in line:
                self.ran.set()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=15)


@pytest.fixture
def start_worker(nats_server: NatsServer) -> Iterator[object]:
    made: list[Worker] = []

    def start(name: str, *extra: str) -> Worker:
        worker = Worker(nats_server.url, name, *extra)
        assert worker.serving.wait(30), worker.lines
        made.append(worker)
        return worker

    yield start
    for worker in made:
        worker.stop()


def coordinator(workflow: Path, url: str, run: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        regions_argv("run", workflow, "--transport", url, "--run", run, "--json", *extra),
        stdout=subprocess.PIPE, text=True, env=regions_env(), cwd=workflow.parent,
    )  # fmt: skip


def read_until(process: subprocess.Popen[str], kind: str, count: int = 1) -> None:
    assert process.stdout is not None
    seen = 0
    for line in process.stdout:
        if json.loads(line)["kind"] == kind:
            seen += 1
            if seen == count:
                return
    raise AssertionError(f"the run ended before {count} {kind} events")


def test_a_worker_killed_mid_step_hands_its_job_to_another(
    slow_loop: Path, nats_server: NatsServer, start_worker: object, tmp_path: Path
) -> None:
    local = tmp_path / "local.db"
    assert regions("run", slow_loop, "--run", local, "-q").code == 0
    doomed = start_worker("doomed", "--ack-wait", "2")  # type: ignore[operator]
    run = tmp_path / "remote.db"
    process = coordinator(slow_loop, nats_server.url, run)
    assert doomed.ran.wait(60), doomed.lines  # it finished a step: the next is under way
    read_until(process, "step_started", 2)
    os.kill(doomed.process.pid, signal.SIGKILL)
    rescuer = start_worker("rescuer", "--ack-wait", "2")  # type: ignore[operator]
    assert process.wait(timeout=120) == 0
    assert of_run_file(run) == of_run_file(local)
    assert any(": ran " in line for line in rescuer.lines)


def test_a_nats_server_restart_mid_run_loses_nothing(
    slow_loop: Path, nats_server: NatsServer, start_worker: object, tmp_path: Path
) -> None:
    local = tmp_path / "local.db"
    assert regions("run", slow_loop, "--run", local, "-q").code == 0
    start_worker("w1", "--ack-wait", "3")  # type: ignore[operator]
    run = tmp_path / "remote.db"
    process = coordinator(slow_loop, nats_server.url, run)
    read_until(process, "step_started", 3)
    nats_server.stop()  # mid-step: the job is in the stream (file storage)
    nats_server.start()  # same port, same store
    assert process.wait(timeout=120) == 0
    assert of_run_file(run) == of_run_file(local)


def test_the_coordinator_killed_mid_run_resumes(
    slow_loop: Path, nats_server: NatsServer, start_worker: object, tmp_path: Path
) -> None:
    local = tmp_path / "local.db"
    assert regions("run", slow_loop, "--run", local, "-q").code == 0
    start_worker("w1")  # type: ignore[operator]
    run = tmp_path / "remote.db"
    process = coordinator(slow_loop, nats_server.url, run)
    read_until(process, "state_entered", 5)  # the third visit of draft
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    resumed = regions(
        "run", slow_loop, "--resume", run, "--transport", nats_server.url, "-q", timeout=180
    )
    assert resumed.code == 0, resumed.output
    assert of_run_file(run) == of_run_file(local)


def test_no_worker_is_exit_2_with_the_command_to_start_one(
    slow_loop: Path, nats_server: NatsServer, tmp_path: Path
) -> None:
    result = regions("run", slow_loop, "--transport", nats_server.url, "-q", timeout=60)
    assert result.code == 2
    assert result.err == (
        f"error: no worker on {nats_server.url} within 10 s: start one with "
        f"`regions worker --nats {nats_server.url}`\n"
    )
    assert not list((tmp_path / ".regions").glob("runs/*.db"))  # refused before any run file
