"""Every example workflow, run by 1, 2 and 4 worker processes over a real nats-server, gives
the transcript of the same run in one process (the scripted backend answers everywhere: the
coordinator's ``--llm`` reaches the workers)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import regions, regions_env
from natsserver import NatsServer
from transcripts import of_run_file

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.stem for p in (ROOT / "workflows").glob("*.yaml"))
COUNTS = (1, 2, 4)


@pytest.fixture(scope="module")
def copies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of workflows/ shared by every run (a shared folder, as on several hosts)."""
    folder = tmp_path_factory.mktemp("examples") / "workflows"
    shutil.copytree(ROOT / "workflows", folder, ignore=shutil.ignore_patterns(".regions", "*.db"))
    (folder.parent / "schemas").symlink_to(ROOT / "schemas")
    return folder


@pytest.fixture(scope="module")
def pools(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, str]]:
    """A nats-server per worker count, each with that many `regions worker` processes."""
    servers, workers, urls = [], [], {}
    try:
        for count in COUNTS:
            server = NatsServer(tmp_path_factory.mktemp(f"js{count}")).start()
            servers.append(server)
            urls[count] = server.url
            for i in range(count):
                argv = [sys.executable, "-m", "regions_cli", "worker", "--nats", server.url]
                argv += ["--name", f"w{count}-{i}"]
                process = subprocess.Popen(argv, stderr=subprocess.DEVNULL, env=regions_env())
                workers.append(process)
        yield urls
    finally:
        for process in workers:
            process.terminate()
        for process in workers:
            process.wait(timeout=30)
        for server in servers:
            server.stop()


@pytest.mark.parametrize("name", EXAMPLES)
def test_an_example_through_1_2_and_4_workers(
    name: str, copies: Path, pools: dict[int, str], tmp_path: Path
) -> None:
    example = copies / f"{name}.yaml"
    local = tmp_path / "local.db"
    alone = regions("run", example, "--llm", "default=scripted", "--run", local, "-q",
                    cwd=copies, timeout=300)  # fmt: skip
    assert alone.code in (0, 5), alone.err  # 5: an example that waits for a person
    expected = of_run_file(local)
    assert expected
    for count, url in pools.items():
        remote = tmp_path / f"remote{count}.db"
        result = regions(
            "run", example, "--llm", "default=scripted", "--run", remote, "-q",
            "--transport", url, cwd=copies, timeout=300,
        )  # fmt: skip
        assert result.code == alone.code, f"{count} workers: {result.err}"
        assert of_run_file(remote) == expected, f"{count} workers"
