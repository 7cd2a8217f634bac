"""Shared helpers for the seed import/export tests: where the original's files are, and how a
converted document is checked (the same verifier `regions verify` uses).

(Not in conftest.py: test modules import these names, and `from conftest import` would find
whichever conftest.py of another test folder was loaded first.)"""

from __future__ import annotations

from pathlib import Path

from regions_cli.interop.original.to_yaml import ImportResult

ROOT = Path(__file__).resolve().parents[2]
#: The original framework's example files (``../shared/seed-examples`` beside the repository).
SEED = ROOT.parent / "shared" / "seed-examples"

#: Every registry + plan pair among the seed examples.
PAIRS = {
    "lookup": ("lookup/lookup_regions.json", "lookup/lookup_executions.json"),
    "lit_crit": ("lit_crit/lit_demo_regions.json", "lit_crit/lit_demo_executions.json"),
    "double_hegel": (
        "double_hegel/double_hegel_regions.json",
        "double_hegel/double_hegel_executions.json",
    ),
    "refine": ("refine/refine_regions.json", "refine/refine_executions.json"),
}
#: Every flow-editor full state among the seed examples.
STATES = {
    "lookup": "lookup/lookup_full_state.json",
    "lit_crit": "lit_crit/lit_demo_state.json",
    "double_hegel": "double_hegel/double_hegel_state.json",
    "refine": "refine/refine_full_state.json",
}
REGISTRY_ONLY = "minimal_regions.json"

#: Every input form, as lists of paths relative to SEED.
ALL_INPUTS = {
    **{f"{name}-pair": list(files) for name, files in PAIRS.items()},
    **{f"{name}-state": [file] for name, file in STATES.items()},
    "minimal-registry": [REGISTRY_ONLY],
}


def verify_errors(result: ImportResult, folder: Path, name: str = "imported.yaml") -> list[str]:
    """Write the import next to nothing else and run the real verifier on it; return errors."""
    path = folder / name
    path.write_text(result.dump(), encoding="utf-8")
    from regions_cli.workflow.api import verify

    return [f"{f.location()}: {f.rule}: {f.message}" for f in verify(path) if f.is_error]
