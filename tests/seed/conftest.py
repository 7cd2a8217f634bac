"""The `seed` fixture: the original framework's example files, or a skip if they are absent."""

from __future__ import annotations

from pathlib import Path

import pytest
from seed_files import SEED


@pytest.fixture(scope="session")
def seed() -> Path:
    if not SEED.is_dir():
        pytest.skip(f"the seed examples are not at {SEED}")
    return SEED
