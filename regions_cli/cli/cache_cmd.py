"""``regions cache stats|clear [FILE]``: look into or empty a response cache.

FILE is a cache file, or a workflow file (then its default cache, ``.regions/cache.db`` beside
it); without FILE, ``.regions/cache.db`` in the current folder. Exit codes: 0 done, 2 the
file is missing or not a cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from regions_cli.cli.help import Typer
from regions_cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from regions_cli.llm.cache import ResponseCache


cache_app = Typer(
    name="cache",
    help="Look into or empty a response cache.",
    epilog="Example:\n\n    regions cache stats hello.yaml",
    no_args_is_help=True,
)

_FILE_HELP = (
    "A cache file, or a workflow file (its cache: .regions/cache.db beside it). "
    "Default: .regions/cache.db here."
)


def _cache_path(file: Path | None) -> Path:
    from regions_cli.llm.cache import DEFAULT_CACHE_PATH

    if file is None:
        return DEFAULT_CACHE_PATH
    if file.suffix in (".yaml", ".yml"):
        return file.parent / DEFAULT_CACHE_PATH
    return file


def _open(command: str, file: Path | None) -> ResponseCache:
    from regions_cli.llm.cache import CacheError, ResponseCache

    try:
        return ResponseCache.open(_cache_path(file), create=False)
    except CacheError as exc:
        typer.echo(f"regions cache {command}: {exc}", err=True)
        raise typer.Exit(ExitCode.USAGE) from None


@cache_app.command("stats")
def stats(
    file: Path | None = typer.Argument(None, metavar="FILE", help=_FILE_HELP, show_default=False),
) -> None:
    """How many answers the cache holds, per LLM, its size and age.

    Example:

        regions cache stats hello.yaml
    """
    import time

    cache = _open("stats", file)
    try:
        info = cache.stats()
    finally:
        cache.close()

    def when(t: float | None) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"

    lines = [
        f"cache    {info.path}",
        f"answers  {info.entries:,}",
        f"size     {info.bytes:,} bytes",
        f"oldest   {when(info.oldest)}",
        f"newest   {when(info.newest)}",
    ]
    lines.extend(f"llm      {name}: {count:,}" for name, count in info.by_llm.items())
    typer.echo("\n".join(lines))


@cache_app.command("clear")
def clear(
    file: Path | None = typer.Argument(None, metavar="FILE", help=_FILE_HELP, show_default=False),
    llm: str | None = typer.Option(
        None, "--llm", metavar="NAME", help="Only the answers of this llms: entry."
    ),
) -> None:
    """Delete the cached answers (all, or one LLM's); the next run asks the model again.

    Example:

        regions cache clear hello.yaml --llm default
    """
    cache = _open("clear", file)
    try:
        removed = cache.clear(llm)
    finally:
        cache.close()
    noun = "answer" if removed == 1 else "answers"
    typer.echo(f"removed {removed:,} {noun} from {cache.path}")


def register(app: typer.Typer) -> None:
    """Add the ``cache`` command group to `app`."""
    app.add_typer(cache_app)
