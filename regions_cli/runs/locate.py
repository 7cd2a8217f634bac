"""Finding run files: where ``regions run`` writes them (``.regions/runs/`` beside each
workflow), which run a command means when it names none (the newest of the same workflow
file), and what a run reference may be (a path, a bare name as ``regions runs`` prints it, or
a workflow file meaning its newest run).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from regions_cli.runs.store import RunFile, RunFileError

#: Where run files live, relative to a workflow's folder.
RUNS_FOLDER = Path(".regions") / "runs"

#: How deep below the current folder `run_folders` looks for workflows' run folders.
SEARCH_DEPTH = 3

#: Folders never searched (they hold no workflows of the user's, and can be huge).
_SKIPPED = {"node_modules", "__pycache__", "site-packages"}

_WORKFLOW_SUFFIXES = (".yaml", ".yml")


class RunNotFound(Exception):
    """No run file matches a reference; the message is one line and says what was tried."""


def run_folders(start: Path) -> list[Path]:
    """The ``.regions/runs`` folders at `start` and below it (a few levels, hidden folders
    other than ``.regions`` skipped), nearest first."""
    found: list[Path] = []
    for folder in _walk(start, SEARCH_DEPTH):
        runs = folder / RUNS_FOLDER
        if runs.is_dir():
            found.append(runs)
    return found


def _walk(folder: Path, depth: int) -> Iterator[Path]:
    yield folder
    if depth == 0:
        return
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name in _SKIPPED:
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path), depth - 1)


def run_files(folders: list[Path]) -> list[Path]:
    """Every ``*.db`` file in `folders`."""
    return [path for folder in folders for path in sorted(folder.glob("*.db"))]


def latest_run(workflow_file: Path, *, unfinished: bool = False) -> Path | None:
    """The newest run file of `workflow_file` (this file, not another of the same name) in
    ``.regions/runs`` beside it; only one with layers left to run, if `unfinished`."""
    target = str(workflow_file.resolve())
    folder = workflow_file.resolve().parent / RUNS_FOLDER
    if not folder.is_dir():
        return None
    candidates = sorted(folder.glob("*.db"), key=lambda p: p.stat().st_mtime, reverse=True)
    for path in candidates:
        try:
            with RunFile.open(path) as run:
                if run.workflow.path != target:
                    continue
                if unfinished and run.finished:
                    continue
                return path
        except RunFileError:
            continue
    return None


def resolve_run(reference: Path, start: Path | None = None) -> Path:
    """The run file `reference` names: an existing file (a run file, or a workflow file for its
    newest run), or a bare name (with or without ``.db``) of a run file in `run_folders`.
    `RunNotFound` otherwise."""
    if reference.is_file() and reference.suffix not in _WORKFLOW_SUFFIXES:
        return reference
    if reference.is_file():  # a workflow: its newest run
        newest = latest_run(reference)
        if newest is None:
            raise RunNotFound(
                f"{reference}: no run of this workflow yet (start one: regions run {reference})"
            )
        return newest
    if reference.parent == Path(".") or str(reference.parent) == "":
        name = reference.name if reference.suffix == ".db" else f"{reference.name}.db"
        matches = [p for p in run_files(run_folders(start or Path.cwd())) if p.name == name]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            where = ", ".join(str(p) for p in matches)
            raise RunNotFound(f"{reference}: more than one run file has this name ({where})")
    raise RunNotFound(f"{reference}: no such run file (see `regions runs`)")
