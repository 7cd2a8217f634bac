"""regions: a declarative workflow runner for multi-agent LLM systems.

The public API is deliberately small::

    import asyncio
    from regions_cli import Run, load

    loaded = load("workflows/hello.yaml")       # parse, verify, build the workflow
    for finding in loaded.findings:             # errors and warnings, as `regions verify`
        print(finding.location(), finding.message)
    with Run.open(loaded.workflow, loaded.document) as run:
        run.subscribe(print)                    # every event of the run, as it happens
        finished = asyncio.run(run.execute())   # status, exit code, counts

The command line (``regions``) is a thin layer over these names; docs/python-api.md says more.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "ExitCode",
    "Loaded",
    "Run",
    "RunError",
    "WorkflowInvalid",
    "__version__",
    "load",
    "load_workflow",
    "verify",
]

if TYPE_CHECKING:
    from regions_cli.exit_codes import ExitCode
    from regions_cli.runs.run import Run, RunError
    from regions_cli.workflow.api import Loaded, WorkflowInvalid, load, load_workflow, verify

#: Where each public name lives (imported on first use, so that `import regions_cli` and the
#: CLI's start-up stay cheap).
_HOMES = {
    "ExitCode": "regions_cli.exit_codes",
    "Run": "regions_cli.runs.run",
    "RunError": "regions_cli.runs.run",
    "Loaded": "regions_cli.workflow.api",
    "WorkflowInvalid": "regions_cli.workflow.api",
    "load": "regions_cli.workflow.api",
    "load_workflow": "regions_cli.workflow.api",
    "verify": "regions_cli.workflow.api",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'regions_cli' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)
