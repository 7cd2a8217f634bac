"""``regions worker --nats URL``: run the steps of any run on a NATS server (JetStream)."""

from __future__ import annotations

import os
import socket
import sys

import typer

from regions_cli.cli.help import Typer
from regions_cli.exit_codes import ExitCode


def worker(
    nats_url: str = typer.Option(
        ..., "--nats", metavar="URL", help="The NATS server with JetStream, e.g. nats://HOST:4222."
    ),
    label: list[str] = typer.Option(
        [],
        "--label",
        metavar="LABEL",
        help="A label of this worker (repeatable): it also takes the steps of regions whose "
        "placement asks for its labels.",
    ),
    concurrency: int = typer.Option(
        1, "--concurrency", min=1, metavar="N", help="Steps this worker runs at once."
    ),
    name: str | None = typer.Option(
        None, "--name", metavar="NAME", help="Its name in logs (default: host and pid)."
    ),
    ack_wait: float = typer.Option(
        30.0,
        "--ack-wait",
        min=1.0,
        metavar="SECONDS",
        help="How soon a step of a worker that died goes to another (it must say it is alive "
        "that often).",
    ),
) -> None:
    """Run steps for any run on the NATS server, until stopped (Ctrl-C).

    The worker builds each workflow it is sent once, after verifying it; models, embedders,
    stores and secrets come from this machine (its environment: NATS_USER/NATS_PASSWORD,
    NATS_TOKEN or NATS_CREDS for the server, NATS_CA/NATS_CERT/NATS_KEY for TLS). It keeps
    nothing of a run between steps. Exit code 2: the server cannot be reached or refused it.

    Examples:

        regions worker --nats nats://127.0.0.1:4222
        regions worker --nats nats://gpu-box:4222 --label gpu --concurrency 4
    """
    import asyncio

    from regions_cli.distributed.jetstream import (
        NatsSettings,
        TransportError,
        check_labels,
        run_worker,
    )

    try:
        check_labels(label)
    except ValueError as exc:
        typer.echo(f"regions worker: --label {exc}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    settings = NatsSettings.from_env(nats_url)
    shown = name or f"{socket.gethostname()}-{os.getpid()}"

    def log(line: str) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    try:
        asyncio.run(
            run_worker(
                settings, name=shown, labels=label, concurrency=concurrency, ack_wait=ack_wait,
                log=log,
            )
        )  # fmt: skip
    except TransportError as exc:
        typer.echo(f"regions worker: {exc}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None
    except KeyboardInterrupt:
        raise typer.Exit(ExitCode.INTERRUPTED) from None


def register(app: Typer) -> None:
    app.command("worker", short_help="Run the steps of runs on a NATS server (scale-out).")(worker)
