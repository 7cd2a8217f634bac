"""Build the model types from a workflow document: `build_workflow` turns a plain mapping
(the YAML document after schema validation and ``${VAR}`` interpolation) into a
`regions_cli.model.Workflow`. It applies the documented defaults (an implied ``default`` LLM and
embedder, per-step timeouts from ``defaults:``) so the engine never has to know how the file
was written. It assumes the schema has already been checked; it does not report positions
(that is `workflow.rules`' job).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from regions_cli.model import (
    LLM_REGION_TYPES,
    PLAN_STATE,
    AllOf,
    AnyOf,
    Budget,
    Chain,
    Condition,
    DeliveryConfig,
    DocumentSource,
    EmbedderConfig,
    FieldTest,
    Injection,
    Layer,
    LLMConfig,
    Not,
    RagConfig,
    RegionConfig,
    Route,
    Says,
    State,
    Step,
    StepPolicy,
    Transition,
    Wait,
    Workflow,
    split_step,
)


def _connections(raw: Any, regions: Mapping[str, Any]) -> dict[str, str]:
    if raw is None:
        return {}
    if isinstance(raw, Mapping):
        return {str(k): str(v if v is not None else "") for k, v in raw.items()}
    # A list of names: describe each by its task, as the original's editor does.
    out: dict[str, str] = {}
    for name in raw:
        target = regions.get(name) or {}
        out[str(name)] = str(target.get("task", "") if isinstance(target, Mapping) else "")
    return out


def _policy(raw: Mapping[str, Any] | None, base: StepPolicy) -> StepPolicy:
    if not raw:
        return base
    return StepPolicy(
        timeout=raw.get("timeout", base.timeout),
        retries=int(raw.get("retries", base.retries)),
        on_failure=raw.get("on_failure", base.on_failure),
        on_false=raw.get("on_false", base.on_false),
    )


def _step(raw: Any, defaults: StepPolicy) -> Step:
    if isinstance(raw, str):
        return Step(*split_step(raw), defaults)
    return Step(*split_step(str(raw["step"])), _policy(raw, defaults))


def condition(raw: Mapping[str, Any]) -> Condition:
    """A ``when:`` mapping (schema-valid) as a `Condition`."""
    if "all" in raw:
        return AllOf(tuple(condition(item) for item in raw["all"]))
    if "any" in raw:
        return AnyOf(tuple(condition(item) for item in raw["any"]))
    if "not" in raw:
        return Not(condition(raw["not"]))
    if "output" in raw:
        return Says(str(raw["output"]))
    if "field" in raw:
        region, path = str(raw["region"]), str(raw["field"])
        if "equals" in raw:
            return FieldTest(region, path, "equals", raw["equals"])
        if "in" in raw:
            return FieldTest(region, path, "in", tuple(raw["in"]))
        return FieldTest(region, path, "matches", str(raw["matches"]))
    return Says(str(raw["says"]), raw.get("region"))


def _layers(items: Any, defaults: StepPolicy, first: int, state: str) -> list[Layer]:
    layers = []
    for i, item in enumerate(items or (), start=first):
        if "wait" in item:
            wait = item["wait"]
            layers.append(
                Layer(
                    index=i,
                    label=str(item.get("layer") or f"wait-{wait['for']}"),
                    chains=(),
                    state=state,
                    wait=Wait(str(wait["for"]), str(wait.get("prompt") or "")),
                )
            )
            continue
        layers.append(
            Layer(
                index=i,
                label=str(item.get("layer") or f"layer-{i}"),
                chains=tuple(
                    Chain(chain, tuple(_step(s, defaults) for s in steps))
                    for chain, steps in (item.get("chains") or {}).items()
                ),
                state=state,
            )
        )
    return layers


def _machine(
    raw_states: Mapping[str, Any], defaults: StepPolicy
) -> tuple[list[Layer], dict[str, State]]:
    """Every state's layers, one after the other in declaration order, and the states."""
    layers: list[Layer] = []
    states: dict[str, State] = {}
    for name, spec in raw_states.items():
        own = _layers(spec.get("plan"), defaults, len(layers), name)
        states[name] = State(
            name=name,
            first=len(layers),
            count=len(own),
            next=tuple(
                Transition(str(t["to"]), condition(t["when"]) if t.get("when") else None)
                for t in spec.get("next") or ()
            ),
            max_visits=spec.get("max_visits"),
            on_exhausted=str(spec.get("on_exhausted", "fail")),
        )
        layers.extend(own)
    return layers, states


def _llm_of(rtype: str, spec: Mapping[str, Any]) -> str | None:
    """An LLM region's model (``default`` if omitted); a RouterRegion's optional one (without
    it the router uses its rules only); None for the other types."""
    if rtype in LLM_REGION_TYPES:
        return str(spec.get("llm", "default"))
    return spec.get("llm") if rtype == "RouterRegion" else None


def _resolve(base_dir: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else (base_dir / path)


def build_workflow(
    data: Mapping[str, Any], *, source: Path | None = None, base_dir: Path | None = None
) -> Workflow:
    """Turn a schema-valid mapping into a `Workflow`, applying every documented default.

    Relative paths (documents, stores, sinks, injected files) resolve against `base_dir`, which
    defaults to the folder of `source`.
    """
    if base_dir is None:
        base_dir = source.parent if source is not None else Path(".")
    raw_regions: Mapping[str, Any] = data.get("regions") or {}

    if "llms" in data and data["llms"] is not None:
        llms = {
            name: LLMConfig(
                name=name,
                backend=spec["backend"],
                options={k: v for k, v in spec.items() if k not in ("backend", "api_key")},
                api_key=spec.get("api_key"),
            )
            for name, spec in data["llms"].items()
        }
    else:
        llms = {"default": LLMConfig("default", "local", {"_implied": True})}

    if "embedders" in data and data["embedders"] is not None:
        embedders = {
            name: EmbedderConfig(
                name=name,
                backend=spec["backend"],
                options={k: v for k, v in spec.items() if k not in ("backend", "api_key")},
                api_key=spec.get("api_key"),
            )
            for name, spec in data["embedders"].items()
        }
    else:
        embedders = {"default": EmbedderConfig("default", "local", {"_implied": True})}

    rags = {
        name: RagConfig(
            name=name,
            path=_resolve(base_dir, spec["path"]),
            embedder=spec.get("embedder", "default"),
            chunk_size=int(spec.get("chunk_size", 512)),
            overlap=int(spec.get("overlap", 50)),
            max_results=int(spec.get("max_results", 5)),
            documents=tuple(
                DocumentSource(
                    file=_resolve(base_dir, doc["file"]) if "file" in doc else None,
                    text=doc.get("text"),
                    actors=tuple(doc.get("actors") or ()),
                    id=doc.get("id"),
                )
                for doc in spec.get("documents") or ()
            ),
        )
        for name, spec in (data.get("rags") or {}).items()
    }

    regions: dict[str, RegionConfig] = {}
    for name, spec in raw_regions.items():
        rtype = spec["type"]
        regions[name] = RegionConfig(
            name=name,
            type=rtype,
            task=str(spec.get("task") or ""),
            connections=_connections(spec.get("connections"), raw_regions),
            llm=_llm_of(rtype, spec),
            rag=spec.get("rag") if rtype == "RAGRegion" else None,
            threshold=float(spec.get("threshold", 0.5)),
            reply_with_actors=bool(spec.get("reply_with_actors", False)),
            max_results=spec.get("max_results"),
            prompts=dict(spec.get("prompts") or {}),
            sink=_resolve(base_dir, spec["sink"]) if spec.get("sink") else None,
            taps=tuple(spec.get("taps") or ()),
            output_schema=spec.get("output_schema"),
            input_schema=spec.get("input_schema"),
            routes=tuple(
                Route(str(r["to"]), Says(str(r["when"]["says"]))) for r in spec.get("routes") or ()
            ),
            default_route=spec.get("default"),
            workflow=_resolve(base_dir, spec["workflow"]) if spec.get("workflow") else None,
            entry=spec.get("entry"),
        )

    defaults = _policy(data.get("defaults"), StepPolicy())
    states: dict[str, State] = {}
    if data.get("states"):
        layers, states = _machine(data["states"], defaults)
        start = str(data.get("start") or next(iter(states)))
    else:
        layers = _layers(data.get("plan"), defaults, 0, PLAN_STATE)
        start = PLAN_STATE
    plan = tuple(layers)

    injections = []
    for item in data.get("inject") or ():
        content = item.get("content")
        if content is None and "file" in item:
            content = _resolve(base_dir, item["file"]).read_text(encoding="utf-8")
        injections.append(
            Injection(
                source=str(item.get("from", "user")),
                destination=str(item["to"]),
                role=item.get("role", "request"),
                content=str(content or ""),
            )
        )

    delivery_raw = data.get("delivery") or {}
    budget_raw = data.get("budget") or {}
    per_region = budget_raw.get("per_region") or {}
    return Workflow(
        name=str(data["name"]),
        version=int(data["version"]),
        description=str(data.get("description") or ""),
        regions=regions,
        plan=plan,
        llms=llms,
        embedders=embedders,
        rags=rags,
        inject=tuple(injections),
        delivery=DeliveryConfig(
            undeliverable=delivery_raw.get("undeliverable", "error"),
            reroute_to=delivery_raw.get("reroute_to"),
            max_hops=int(delivery_raw.get("max_hops", 3)),
        ),
        defaults=defaults,
        budget=Budget(
            max_tokens=budget_raw.get("max_tokens"),
            max_calls=budget_raw.get("max_calls"),
            region_max_tokens=per_region.get("max_tokens"),
            region_max_calls=per_region.get("max_calls"),
            max_seconds=budget_raw.get("max_seconds"),
            max_transitions=budget_raw.get("max_transitions"),
        ),
        source=source,
        base_dir=base_dir,
        states=states,
        start=start,
    )
