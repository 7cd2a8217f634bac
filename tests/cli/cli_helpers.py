"""`regions` in a real process, as a user runs it, for the CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def regions(
    *args: str | Path, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``regions ARGS`` (``python -m regions_cli``) with `env` added to this environment
    (and NO_COLOR, so the text is the same on a terminal or not); stdout and stderr as text."""
    return subprocess.run(
        [sys.executable, "-m", "regions_cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )
