"""The options ``regions run`` and ``regions step`` share, declared once (the same flag reads
the same in every command's help)."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from regions_cli.cli.runner import RunOptions

LLM: list[str] = typer.Option(
    [],
    "--llm",
    metavar="NAME=URL",
    help="Override an llms: entry: NAME=URL (an OpenAI-compatible server), NAME=local, "
    "NAME=scripted or NAME=replay:FILE. Repeatable.",
    show_default=False,
)
REPLAY: Path | None = typer.Option(
    None,
    "--replay",
    metavar="FILE",
    help="Answer every LLM call from this cassette (written by --record), no model.",
    show_default=False,
)
CACHE: bool = typer.Option(
    False,
    "--cache",
    help="Answer repeated LLM calls from the response cache .regions/cache.db beside FILE; "
    "a call not in it asks the model and is kept.",
)
CACHE_FILE: Path | None = typer.Option(
    None,
    "--cache-file",
    metavar="PATH",
    help="Like --cache, with this cache file.",
    show_default=False,
)
KEEP_CREDENTIALS: bool = typer.Option(
    False,
    "--keep-credentials",
    help="With --llm NAME=URL: send the entry's api_key and headers to the new URL even "
    "when it is another server (by default they are dropped).",
)
ALLOW_OUTSIDE_PATHS: bool = typer.Option(
    False,
    "--allow-outside-paths",
    help="Let the workflow read and write files outside its folder (inject files, "
    "documents, sinks, cassettes, caches, stores). Only for workflows you trust.",
)
FORCE: bool = typer.Option(
    False,
    "--force",
    help="Continue a run although the workflow was edited (compatible edits only).",
)


TRANSPORT: str | None = typer.Option(
    None,
    "--transport",
    metavar="URL",
    help="Send the steps to `regions worker`s on this NATS server (nats://HOST:PORT, with "
    "JetStream) instead of running them here; overrides the workflow's transport:.",
    show_default=False,
)
WORKERS: int = typer.Option(
    0,
    "--workers",
    min=0,
    metavar="N",
    help="With a NATS transport: also start N local workers for this run.",
)


def cache_setting(cache: bool, cache_file: Path | None) -> str | None:
    """`RunOptions.cache` from ``--cache`` / ``--cache-file``."""
    return str(cache_file) if cache_file is not None else ("" if cache else None)


def repeated_flags(options: RunOptions) -> list[str]:
    """The flags a command that goes on with this run must be given again: which models
    answer (``--llm``, ``--replay``, ``--cache``), the trust given (``--allow-outside-paths``,
    ``--keep-credentials``) and an accepted edit (``--force``). Credentials in an ``--llm`` URL
    are left out: they belong in the environment or the entry's api_key."""
    from regions_cli.http.settings import strip_userinfo
    from regions_cli.llm.factory import override_without_credentials

    flags: list[str] = []
    for override in options.llm_overrides:
        flags += ["--llm", override_without_credentials(override)]
    if options.replay is not None:
        flags += ["--replay", str(options.replay)]
    if options.transport is not None:
        flags += ["--transport", strip_userinfo(options.transport)]
    if options.workers:
        flags += ["--workers", str(options.workers)]
    if options.cache is not None:
        flags += ["--cache-file", options.cache] if options.cache else ["--cache"]
    if options.keep_credentials:
        flags.append("--keep-credentials")
    if options.allow_outside_paths:
        flags.append("--allow-outside-paths")
    if options.force:
        flags.append("--force")
    return flags


def command_line(words: Sequence[str | Path]) -> str:
    """A ``regions`` command as a shell line that runs verbatim (quoted where needed)."""
    return shlex.join(["regions", *(str(word) for word in words)])


#: What `inject_command` puts where the person's answer goes.
ANSWER_PLACEHOLDER = "your answer"


def inject_command(run: str | Path, region: str) -> str:
    """The ``regions inject`` line that answers a run waiting for `region` (the text to
    replace: `ANSWER_PLACEHOLDER`)."""
    return command_line(["inject", "--run", run, "--to", region, ANSWER_PLACEHOLDER])
