"""How far a RAG store's ingestion got: a progress bar per store on a terminal's stderr.

Used by ``regions rag ingest``, and meant for ``regions run`` while it builds its stores
(`regions_cli.build.build_engine_async` takes the same report function). Off a terminal nothing
is drawn: the bar is a live, transient display, not a log.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO


@contextmanager
def embedding_progress(stream: TextIO | None = None) -> Iterator[Callable[[str, int, int], None]]:
    """Yield ``report(store, chunks embedded, chunks to embed)``, drawing a bar per store on
    `stream` (standard error by default) while the block runs. `report` may be called from a
    worker thread."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    console = Console(file=stream or sys.stderr)
    if not console.is_terminal:
        yield lambda _store, _done, _total: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("chunks"),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, object] = {}

        def report(store: str, done: int, total: int) -> None:
            if total == 0:
                return
            if store not in tasks:
                tasks[store] = bar.add_task(f"embedding {store}", total=total)
            bar.update(tasks[store], completed=done, total=total)  # type: ignore[arg-type]

        yield report
