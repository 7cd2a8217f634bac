"""Fixtures for the engine tests (helpers live in `engine_helpers`)."""

from __future__ import annotations

import pytest
from engine_helpers import FakeStore


@pytest.fixture
def store() -> FakeStore:
    return FakeStore(
        {
            1: ("The Roman Empire fell in 476 AD", ("historian",)),
            2: ("World War II ended in 1945", ("historian", "archivist")),
            3: ("Bananas are yellow", ()),
        }
    )
