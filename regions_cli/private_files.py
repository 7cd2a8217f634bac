"""Files that hold prompts and answers (run files, cassettes, response caches, listener sinks)
belong to the user alone: their folders are created 0700 and the files 0600, never through a
symbolic link. Files and folders that already exist keep their modes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def private_folder(path: Path) -> None:
    """Create `path` and its missing parents, each 0700."""
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir(mode=PRIVATE_FOLDER, exist_ok=True)


def create_private_file(path: Path) -> None:
    """Create the empty file `path` (0600, its folder 0700); `FileExistsError` if it exists."""
    private_folder(path.parent)
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | _NOFOLLOW, PRIVATE_FILE))


def open_private(path: Path, mode: str, buffering: int = -1) -> IO[str]:
    """`path` opened for text writing (``"w"``: truncated, ``"a"``: appended), created 0600 in
    a 0700 folder if new; refuses a symbolic link (`OSError`)."""
    flags = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | (os.O_APPEND if mode == "a" else os.O_TRUNC)
    private_folder(path.parent)
    return os.fdopen(
        os.open(path, flags, PRIVATE_FILE), mode, encoding="utf-8", buffering=buffering
    )
