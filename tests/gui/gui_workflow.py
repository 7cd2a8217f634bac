"""The workflows the `regions gui` tests edit and run (also read by gui/e2e/run.mjs)."""

import importlib.util
import json
from pathlib import Path

HERE = Path(__file__).parent

#: A small valid workflow: scripted LLM (no model), two regions that talk, comments to keep.
WORKFLOW = (HERE / "scripted.yaml").read_text("utf-8")

#: A `states:` machine that waits for a person (the run tab's answer box).
WAITING = (HERE / "waiting.yaml").read_text("utf-8")


def machines_run() -> bool:
    """Whether this checkout verifies and runs `states:` machines: the schema knows `states`
    and the engine has its machine (issue 14, built on other branches). Tests of waits in the
    editor run once both are there."""
    schema = HERE.parents[1] / "schemas" / "workflow.schema.json"
    known = "states" in json.loads(schema.read_text("utf-8")).get("properties", {})
    return known and importlib.util.find_spec("regions_cli.engine.machine") is not None
