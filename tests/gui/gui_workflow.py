"""The workflow the `regions gui` tests edit and run (also read by gui/e2e/run.mjs)."""

from pathlib import Path

#: A small valid workflow: scripted LLM (no model), two regions that talk, comments to keep.
WORKFLOW = Path(__file__).with_name("scripted.yaml").read_text("utf-8")
