"""Fixtures for the whole suite. Being here also puts ``tests/`` on ``sys.path``, so test modules
import the shared helpers (``from clirun import regions``)."""

from collections.abc import Callable

import pytest
from clirun import Result
from clirun import regions as run_regions


@pytest.fixture
def regions() -> Callable[..., Result]:
    """Runs the ``regions`` command: :func:`clirun.regions`."""
    return run_regions
