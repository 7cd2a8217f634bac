"""Snapshot comparison for the view tests.

A snapshot is a text file under ``tests/view/snapshots/``. To accept a deliberate change of
output, run the tests once with ``REGIONS_UPDATE_SNAPSHOTS=1`` and review the diff in git.
A missing snapshot fails (it is never silently created by a normal run).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).parent / "snapshots"


@pytest.fixture
def snapshot() -> Callable[[str, str], None]:
    def check(name: str, actual: str) -> None:
        path = SNAPSHOTS / name
        if os.environ.get("REGIONS_UPDATE_SNAPSHOTS") == "1":
            path.write_text(actual, encoding="utf-8")
            return
        assert path.is_file(), f"missing snapshot {path}; run with REGIONS_UPDATE_SNAPSHOTS=1"
        assert actual == path.read_text(encoding="utf-8")

    return check
