"""Turn an ``llms:`` entry into a `CompletionModel`.

Backends are imported lazily: a workflow that only uses ``scripted`` never imports httpx or
llama_cpp. ``record``/``replay`` wrap or replace backends with a cassette (`llm/replay.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from regions_cli.llm.base import CompletionModel
from regions_cli.workflow.model import LLMConfig


@dataclass(frozen=True)
class LLMOptions:
    """Run-wide choices that change how every endpoint is built (from ``regions run`` flags)."""

    record: Path | None = None  # write every request/response to this cassette
    replay: Path | None = None  # answer every request from this cassette, no model


def make_llm(config: LLMConfig, options: LLMOptions | None = None) -> CompletionModel:
    """Build the backend `config` names (not yet connected or loaded: that happens lazily)."""
    options = options or LLMOptions()
    model: CompletionModel
    if options.replay is not None or config.backend == "replay":
        from regions_cli.llm.replay import ReplayModel

        cassette = options.replay or Path(str(config.options["cassette"]))
        return ReplayModel(config.name, cassette)
    if config.backend == "scripted":
        from regions_cli.llm.scripted import ScriptedModel

        model = ScriptedModel.from_config(config)
    elif config.backend == "openai":
        from regions_cli.llm.openai import OpenAIModel

        model = OpenAIModel.from_config(config)
    elif config.backend == "local":
        from regions_cli.llm.local import LocalModel

        model = LocalModel.from_config(config)
    else:  # the schema rules this out; a clear error beats a KeyError if it ever happens
        raise ValueError(f"llms.{config.name}: unknown backend {config.backend!r}")
    if options.record is not None:
        from regions_cli.llm.replay import RecordingModel

        model = RecordingModel(model, options.record)
    return model
