"""Turn an ``llms:`` entry into a `CompletionModel`.

Backends are imported lazily: a workflow that only uses ``scripted`` never imports httpx or
xllamacpp. ``record``/``replay`` wrap or replace backends with a cassette (`llm/replay.py`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from regions_cli.llm.base import CompletionModel, LLMConfigError
from regions_cli.model import LLMConfig, Workflow
from regions_cli.tools.base import LiveTape, ToolTape


@dataclass(frozen=True)
class LLMOptions:
    """Run-wide choices that change how every endpoint is built (from ``regions run`` flags)."""

    record: Path | None = None  # write every request/response to this cassette
    replay: Path | None = None  # answer every request from this cassette, no model
    cache: Path | None = None  # a response cache for every endpoint (``regions run --cache``)
    # Where relative paths of llms entries (``cassette:``, a local ``model:``) resolve: the
    # workflow's folder (`Workflow.base_dir`); None -> the current directory.
    base_dir: Path | None = None

    def resolve(self, value: str | Path) -> Path:
        """`value` as a path, relative ones against `base_dir`."""
        path = Path(value).expanduser()
        if path.is_absolute() or self.base_dir is None:
            return path
        return self.base_dir / path


def make_llm(config: LLMConfig, options: LLMOptions | None = None) -> CompletionModel:
    """Build the backend `config` names (not yet connected or loaded: that happens lazily)."""
    options = options or LLMOptions()
    model: CompletionModel
    if options.replay is not None or config.backend == "replay":
        from regions_cli.llm.replay import ReplayModel

        if options.replay is not None:
            return ReplayModel(config.name, options.replay)
        if not config.options.get("cassette"):
            raise ValueError(f"llms.{config.name}: the replay backend needs `cassette: FILE`")
        return ReplayModel(config.name, options.resolve(str(config.options["cassette"])))
    if config.backend == "scripted":
        from regions_cli.llm.scripted import ScriptedModel

        model = ScriptedModel.from_config(config)
    elif config.backend == "openai":
        from regions_cli.llm.openai import OpenAIModel

        model = OpenAIModel.from_config(config)
    elif config.backend == "local":
        from regions_cli.llm.local import LocalModel

        model = LocalModel.from_config(config, base_dir=options.base_dir)
    else:  # the schema rules this out; a clear error beats a KeyError if it ever happens
        raise ValueError(f"llms.{config.name}: unknown backend {config.backend!r}")
    cache_path = _cache_path(config, options)
    if cache_path is not None:
        from regions_cli.llm.cache import CacheError, CachingModel, ResponseCache

        try:
            cache = ResponseCache.open(cache_path)
        except CacheError as exc:
            raise LLMConfigError(f"llms.{config.name}: {exc}") from exc
        model = CachingModel(model, cache, backend=config.backend, options=config.options)
    if options.record is not None:  # outside the cache: a cassette has every call
        from regions_cli.llm.replay import RecordingModel

        model = RecordingModel(model, options.record)
    return model


class RunTape(ToolTape, Protocol):
    """The `ToolTape` of a run, which the run closes at its end (after its models)."""

    async def aclose(self) -> None: ...


class _LiveRunTape(LiveTape):
    async def aclose(self) -> None:
        return None


def tool_tape(options: LLMOptions | None = None) -> RunTape:
    """Where a run's tool calls go, from its cassette flags: ``--record FILE`` runs each call
    and writes its result into FILE (beside the models' calls: open it while they are open,
    since the first user of a cassette path starts the file afresh),
    ``--replay FILE`` answers from FILE and runs no tool, otherwise every call just runs (the
    response cache never holds a tool's results: its side effects must happen). Raises
    `LLMConfigError` for a replay cassette that is missing or malformed."""
    options = options or LLMOptions()
    if options.replay is not None:
        from regions_cli.llm.replay import ReplayingTape

        return ReplayingTape(options.replay)
    if options.record is not None:
        from regions_cli.llm.replay import RecordingTape

        return RecordingTape(options.record)
    return _LiveRunTape()


def _cache_path(config: LLMConfig, options: LLMOptions) -> Path | None:
    """The response cache of an endpoint: its ``cache:`` key (``true``: the default file
    beside the workflow; ``false``: none, whatever the run asks), else the run's ``--cache``."""
    from regions_cli.llm.cache import DEFAULT_CACHE_PATH

    entry = config.options.get("cache")
    if entry is False:
        return None
    if entry is True:
        return options.resolve(DEFAULT_CACHE_PATH)
    if isinstance(entry, str) and entry:
        return options.resolve(entry)
    return options.cache


class LLMOverrideError(ValueError):
    """A bad ``--llm NAME=...`` value; the message is one line, fit for a usage error."""


def override_without_credentials(override: str) -> str:
    """An ``--llm NAME=VALUE`` override fit to repeat or to send on: a URL's userinfo left out
    (credentials belong in the environment or the entry's api_key)."""
    from regions_cli.http.settings import strip_userinfo

    name, _, value = override.partition("=")
    return f"{name}={strip_userinfo(value)}" if "://" in value else override


def apply_llm_overrides(
    workflow: Workflow, overrides: Iterable[str], *, keep_credentials: bool = False
) -> Workflow:
    """`workflow` with ``llms`` entries replaced from the command line (``regions run --llm``).

    Each override is ``NAME=VALUE`` where VALUE is

    - an ``http(s)://`` URL: the endpoint becomes ``backend: openai`` at that base URL; an entry
      that already was ``openai`` keeps its other keys (model, params, timeouts...), and its
      credentials (``api_key``, ``headers``) only if the new URL has the same origin (scheme,
      host, port) or `keep_credentials` is set: a key meant for one server never goes to another
      by accident;
    - ``local``: the embedded model (an entry that already was ``local`` keeps its keys);
    - ``scripted``: the deterministic scripted backend with no rules (echo answers);
    - ``replay:FILE``: answers from a cassette.

    ``params`` survive every switch. NAME must be an ``llms:`` name of the workflow (``default``
    always exists when the workflow has no ``llms:`` block). Raises `LLMOverrideError`.
    """
    llms = dict(workflow.llms)
    for text in overrides:
        name, sep, value = text.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise LLMOverrideError(
                f"--llm {text!r}: expected NAME=URL, NAME=local, NAME=scripted or NAME=replay:FILE"
            )
        if name not in llms:
            known = ", ".join(sorted(llms)) or "none"
            raise LLMOverrideError(
                f"--llm {text!r}: the workflow has no llm {name!r} (its llms: {known})"
            )
        llms[name] = _override(llms[name], value, text, keep_credentials)
    return replace(workflow, llms=llms)


def _override(old: LLMConfig, value: str, text: str, keep_credentials: bool) -> LLMConfig:
    keep: dict[str, Any] = {}
    if "params" in old.options:
        keep["params"] = old.options["params"]
    lowered = value.lower()
    if lowered.startswith(("http://", "https://")):
        from regions_cli.http import same_origin

        options = dict(old.options) if old.backend == "openai" else keep
        options.pop("_implied", None)
        api_key = old.api_key if old.backend == "openai" else None
        if not keep_credentials and not same_origin(str(options.get("base_url", "")), value):
            api_key = None
            options.pop("api_key", None)
            options.pop("headers", None)
        options["base_url"] = value
        return LLMConfig(old.name, "openai", options, api_key=api_key)
    if lowered == "local":
        options = dict(old.options) if old.backend == "local" else keep
        return LLMConfig(old.name, "local", options)
    if lowered == "scripted":
        return LLMConfig(old.name, "scripted", keep)
    if lowered.startswith("replay:") and value[7:].strip():
        return LLMConfig(old.name, "replay", {**keep, "cassette": value[7:].strip()})
    raise LLMOverrideError(
        f"--llm {text!r}: {value!r} is not an http(s) URL, local, scripted or replay:FILE"
    )
