"""The workflows the `regions gui` tests edit and run (also read by gui/e2e/run.mjs)."""

from pathlib import Path

HERE = Path(__file__).parent

#: A small valid workflow: scripted LLM (no model), two regions that talk, comments to keep.
WORKFLOW = (HERE / "scripted.yaml").read_text("utf-8")

#: A `states:` machine that waits for a person (the run tab's answer box).
WAITING = (HERE / "waiting.yaml").read_text("utf-8")
