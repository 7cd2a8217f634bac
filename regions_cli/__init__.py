"""regions: a declarative workflow runner for multi-agent LLM systems.

The public API is deliberately small::

    from regions_cli import load_workflow, verify
    workflow = load_workflow("workflows/hello.yaml")

The command line (``regions``) is a thin layer over these functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "load_workflow", "verify"]

if TYPE_CHECKING:
    from regions_cli.workflow.api import load_workflow, verify


def __getattr__(name: str) -> Any:
    # Lazy so that `import regions_cli` (and the CLI's start-up) stays cheap.
    if name in ("load_workflow", "verify"):
        from regions_cli.workflow import api

        return getattr(api, name)
    raise AttributeError(f"module 'regions_cli' has no attribute {name!r}")
