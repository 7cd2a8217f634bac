"""Writing our commented YAML from the original Regions framework's files.

`import_files` reads the original's files (`regions_cli.interop.original.parse`) and turns the
`SeedWorkflow` into a YAML document in our format whose comments say what was converted and what
was dropped; `schema_reference` is the ``$schema`` path such a document points at.
"""

from __future__ import annotations

import io
import os
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.scalarstring import FoldedScalarString

from regions_cli.interop.original.parse import (
    DEFAULT_THRESHOLD,
    SeedRegion,
    SeedWorkflow,
    read_seed,
)
from regions_cli.model import END, split_step
from regions_cli.text import plural

_FOLD_WIDTH = 88


@dataclass
class ImportResult:
    """The YAML document of an import and the warnings it produced (each also a comment)."""

    document: CommentedMap
    warnings: list[str]

    def dump(self) -> str:
        """The document as YAML text, comments included."""
        return dump_yaml(self.document)

    def data(self) -> dict[str, Any]:
        """The document as plain data (what the YAML loader would give back)."""
        loaded: dict[str, Any] = YAML(typ="safe").load(self.dump())
        return loaded


def _flow(items: Sequence[Any]) -> CommentedSeq:
    seq = CommentedSeq(items)
    seq.fa.set_flow_style()
    return seq


def _flow_map(**items: Any) -> CommentedMap:
    mapping = CommentedMap(items)
    mapping.fa.set_flow_style()
    return mapping


def _text(value: str) -> str:
    """Long one-line text as a folded block scalar (``>-``) so lines stay readable."""
    if len(value) <= _FOLD_WIDTH or "\n" in value or value != value.strip() or "\t" in value:
        return value
    folded = FoldedScalarString(value)
    positions: list[int] = []
    line_start = 0
    last_space = -1
    for index, char in enumerate(value):
        # Fold only at a single space between two words (a fold at a double space would change
        # the text when read back).
        if (
            char == " "
            and value[index - 1] != " "
            and value[index + 1 : index + 2] not in (" ", "")
        ):
            if index - line_start > _FOLD_WIDTH and last_space > line_start:
                positions.append(last_space)
                line_start = last_space + 1
            last_space = index
    if len(value) - line_start > _FOLD_WIDTH and last_space > line_start:
        positions.append(last_space)
    folded.fold_pos = positions
    return str(folded) if not positions else folded


@dataclass(frozen=True)
class Stretch:
    """A stretch of ``execution_order``: `layers` run `times` times back to back."""

    layers: tuple[int, ...]
    times: int = 1


def stretches(order: Sequence[int]) -> list[Stretch]:
    """`order` cut into stretches: each block of layers repeated back to back (two or more
    times) is one stretch, the layers between such blocks are stretches run once.

    Where blocks compete, the one that covers the most of the order wins, then the shortest
    (``[1, 1, 1, 1]`` is layer 1 four times, not ``[1, 1]`` twice).
    """
    out: list[Stretch] = []
    once: list[int] = []
    i = 0
    while i < len(order):
        best: tuple[int, int] | None = None  # (length, times)
        for length in range(1, (len(order) - i) // 2 + 1):
            block = list(order[i : i + length])
            times = 1
            while list(order[i + times * length : i + (times + 1) * length]) == block:
                times += 1
            if times >= 2 and (best is None or length * times > best[0] * best[1]):
                best = (length, times)
        if best is None:
            once.append(order[i])
            i += 1
            continue
        if once:
            out.append(Stretch(tuple(once)))
            once = []
        out.append(Stretch(tuple(order[i : i + best[0]]), best[1]))
        i += best[0] * best[1]
    if once:
        out.append(Stretch(tuple(once)))
    return out


@dataclass
class _Plan:
    """The converted plan: the layers in execution order, or (when a block of layers repeats
    back to back) the states that run them."""

    layers: CommentedSeq  # every layer written, in order (a loop's layers once)
    states: CommentedMap | None
    loops: list[str]  # what became a bounded state, in words
    warnings: list[str]


def _plan(seed: SeedWorkflow) -> _Plan:
    """Layers in execution order, with each chain's steps (see `_Plan`)."""
    warnings: list[str] = []
    order = seed.execution_order or list(range(len(seed.layer_config)))
    identity = order == list(range(len(seed.layer_config)))
    built: dict[int, CommentedMap | None] = {}
    for index in order:
        if index not in built:
            built[index] = _layer(seed, index, warnings)
    runnable = [index for index in order if built[index] is not None]
    parts = stretches(runnable)
    machine = any(part.times > 1 for part in parts)
    written: dict[int, int] = {}

    def layer(index: int) -> CommentedMap:
        written[index] = written.get(index, 0) + 1
        out = CommentedMap()
        if not identity:
            n = written[index]
            out["layer"] = f"layer-{index}" if n == 1 else f"layer-{index}-{n}"
        out["chains"] = built[index]
        return out

    layers = CommentedSeq()
    states: CommentedMap | None = None
    loops: list[str] = []
    if not machine:
        for index in runnable:
            layers.append(layer(index))
    else:
        states = CommentedMap()
        names = _state_names(parts)
        for number, (part, name) in enumerate(zip(parts, names, strict=True)):
            following = names[number + 1] if number + 1 < len(names) else END
            state = CommentedMap()
            if part.times > 1:
                state["max_visits"] = part.times
                state["on_exhausted"] = following
                loops.append(
                    f"{_layers_words(part.layers)} run {part.times} times in a row: state {name}"
                )
            own = CommentedSeq(layer(index) for index in part.layers)
            layers.extend(own)
            state["plan"] = own
            if part.times > 1:
                state["next"] = [_flow_map(to=name)]  # again, until its visits are spent
            elif following != END:
                state["next"] = [_flow_map(to=following)]
            states[name] = state
    extra = len(seed.execution_config) - len(seed.layer_config)
    if extra > 0:
        warnings.append(
            f"execution_config has {plural(extra, 'layer')} more than layer_config: dropped "
            "(they have no chains to run in)"
        )
    for index in range(len(seed.layer_config)):
        if index not in built:
            warnings.append(f"layer {index} is not in execution_order, so it never runs: dropped")
    return _Plan(layers, states, loops, warnings)


def _span(layers: Sequence[int]) -> str:
    """``0-to-3`` for consecutive layers, else ``3-1``."""
    if len(layers) > 2 and list(layers) == list(range(layers[0], layers[-1] + 1)):
        return f"{layers[0]}-to-{layers[-1]}"
    return "-".join(str(index) for index in layers)


def _state_names(parts: Sequence[Stretch]) -> list[str]:
    """A unique name per stretch: ``repeat-<layers>`` for a loop, ``layers-<layers>`` else."""
    names: list[str] = []
    for part in parts:
        if part.times > 1:
            base = f"repeat-{_span(part.layers)}"
        else:
            base = f"layer{'s' if len(part.layers) > 1 else ''}-{_span(part.layers)}"
        name, n = base, 1
        while name in names:
            n += 1
            name = f"{base}-{n}"
        names.append(name)
    return names


def _layers_words(layers: Sequence[int]) -> str:
    return f"layer{'s' if len(layers) > 1 else ''} {', '.join(str(i) for i in layers)}"


def _layer(seed: SeedWorkflow, index: int, warnings: list[str]) -> CommentedMap | None:
    chains = seed.layer_config[index]
    pairs = seed.execution_config[index] if index < len(seed.execution_config) else []
    members = {m for chain in chains.values() for m in chain}
    stale = [f"{r}.{m}" for r, m in pairs if r not in members]
    if stale:
        warnings.append(
            f"layer {index}: dropped {', '.join(stale)} (not in that layer's chains; "
            "the original skips them)"
        )
    out = CommentedMap()
    for chain, regions in chains.items():
        steps = [f"{r}.{m}" for r in regions for (pr, m) in pairs if pr == r]
        idle = [r for r in regions if not any(pr == r for pr, _ in pairs)]
        if idle:
            warnings.append(
                f"layer {index}, chain {chain}: {', '.join(idle)} has no methods there: skipped"
            )
        if steps:
            # One line when it fits, one step a line when it does not.
            fits = len(chain) + sum(len(s) + 2 for s in steps) < _FOLD_WIDTH - 8
            out[chain] = _flow(steps) if fits else CommentedSeq(steps)
        else:
            warnings.append(f"layer {index}: chain {chain} has no steps: dropped")
    if not out:
        if chains or pairs:
            warnings.append(f"layer {index} has nothing to run: dropped")
        return None
    return out


def _region_doc(region: SeedRegion, by_name: Mapping[str, SeedRegion]) -> CommentedMap:
    doc = CommentedMap()
    doc["type"] = region.type
    if region.task and region.type != "ListenerRegion":
        doc["task"] = _text(region.task)
    if region.type == "RAGRegion":
        doc["rag"] = rag_store_name(region.name)
        if region.threshold is not None and region.threshold != DEFAULT_THRESHOLD:
            doc["threshold"] = region.threshold
        if region.reply_with_actors:
            doc["reply_with_actors"] = True
    if region.connections:
        # A list when every description is the target's task (our format fills that in), a
        # mapping when any description says something else.
        if all(desc == by_name[t].task for t, desc in region.connections.items()):
            doc["connections"] = _flow(list(region.connections))
        else:
            conns = CommentedMap()
            for target, desc in region.connections.items():
                conns[target] = _text(desc)
            doc["connections"] = conns
    return doc


def rag_store_name(region: str) -> str:
    """The store an imported RAGRegion gets: one per region, as the original's examples do."""
    return f"{region}_store"


def to_document(seed: SeedWorkflow, *, schema_ref: str | None = None) -> ImportResult:
    """Build our commented YAML document from a `SeedWorkflow`."""
    converted_plan = _plan(seed)
    plan = converted_plan.layers
    warnings = [*seed.warnings, *converted_plan.warnings]
    by_name = {r.name: r for r in seed.regions}

    doc = CommentedMap()
    doc["version"] = 1
    doc["name"] = seed.name
    doc["description"] = _text(
        f"Imported from the original Regions framework ({', '.join(seed.sources)})."
    )

    llm_regions = [r.name for r in seed.regions if r.type in ("Region", "FeedForwardRegion")]
    rag_regions = [r for r in seed.regions if r.type == "RAGRegion"]
    if rag_regions:
        rags = CommentedMap()
        for region in rag_regions:
            rags[rag_store_name(region.name)] = _flow_map(path=f"{region.name}.db")
        doc["rags"] = rags

    regions = CommentedMap()
    for region in seed.regions:
        regions[region.name] = _region_doc(region, by_name)
    doc["regions"] = regions
    plan_key = "plan" if converted_plan.states is None else "states"
    doc[plan_key] = plan if converted_plan.states is None else converted_plan.states
    if seed.layout:
        layout = CommentedMap()
        for name, (x, y) in seed.layout.items():
            layout[name] = _flow_map(x=x, y=y)
        doc["layout"] = layout

    # --- comments: what was converted and what was dropped ---
    converted = [
        "each layer's chains list Region.method steps: a chain's regions in order, each with "
        "its methods in execution_config order"
    ]
    if converted_plan.loops:
        converted.append(
            f"execution_order {seed.execution_order}: a block of layers repeated back to back "
            "is a state visited that many times (max_visits, a transition to itself, "
            f"on_exhausted: the next state): {'; '.join(converted_plan.loops)}; the other "
            "layers are states run once, in order (labels name the original layer)"
        )
    elif seed.execution_order and seed.execution_order != list(range(len(seed.layer_config))):
        converted.append(
            f"execution_order {seed.execution_order} is spelled out as layers in that order "
            "(labels name the original layer)"
        )
    converted += seed.notes
    converted.append(
        "`terminal` and the original's injector names are external addresses here: messages "
        "sent to them are the run's output"
    )
    listeners = [r.name for r in seed.regions if r.type == "ListenerRegion"]
    if listeners:
        converted.append(
            f"listener {', '.join(listeners)}: records the traffic between its start and stop "
            "steps (kept); give it a `sink:` file to write that traffic as JSONL"
        )
    header = [
        f"yaml-language-server: $schema={schema_ref or '../schemas/workflow.schema.json'}",
        f"Converted by `regions import` from {' + '.join(seed.sources)}.",
        "Converted:",
        *_bullets(converted),
    ]
    if warnings:
        header.append("Dropped:")
        header += _bullets(warnings)
    doc.yaml_set_start_comment("\n".join(header))

    if rag_regions:
        doc.yaml_set_comment_before_after_key(
            "rags",
            before=(
                "\n"
                + _llms_comment(llm_regions)
                + "\nThe original builds its RAG stores in Python: one empty store per RAGRegion"
                "\nhere. Add documents to each, e.g.\n"
                "  documents: [{file: data/docs.json}]   # a JSON list of {content, actors}\n"
                "or add files with `regions rag ingest WORKFLOW STORE FILE...`."
            ),
        )
    else:
        doc.yaml_set_comment_before_after_key("regions", before="\n" + _llms_comment(llm_regions))
    plan_comment = "\nThe original injects its first messages in Python; add them here, e.g.\n"
    target = _first_speaker(plan, by_name) or (seed.regions[0].name if seed.regions else "Region")
    plan_comment += f'inject:\n  - {{from: terminal, to: {target}, role: request, content: "..."}}'
    if not plan:
        plan_comment += "\n\nThe input has no plan and no region that could answer: add layers."
    doc.yaml_set_comment_before_after_key(plan_key, before=plan_comment)
    return ImportResult(doc, warnings)


def _bullets(items: Sequence[str]) -> list[str]:
    """Header comment lines: each item a ``  - `` bullet, wrapped with its continuation indented."""
    lines: list[str] = []
    for item in items:
        lines += textwrap.wrap(item, _FOLD_WIDTH, initial_indent="  - ", subsequent_indent="    ")
    return lines


def _first_speaker(plan: Sequence[Mapping[str, Any]], by_name: Mapping[str, SeedRegion]) -> str:
    """The first region the plan runs that is not a listener: where a prompt would go."""
    for layer in plan:
        for steps in layer["chains"].values():
            for step in steps:
                region = split_step(str(step))[0]
                if by_name[region].type != "ListenerRegion":
                    return region
    return ""


def _llms_comment(llm_regions: Sequence[str]) -> str:
    if not llm_regions:
        return ""
    return (
        "The original sets each region's LLM in Python. Without an llms: block every LLM region\n"
        "uses the embedded local model, as if this were uncommented:\n"
        "llms:\n"
        "  default: {backend: local}\n"
        "To use a server instead:\n"
        "  default: {backend: openai, base_url: 'http://127.0.0.1:8080/v1', model: my-model}\n"
    )


def import_files(paths: Sequence[Path], *, output: Path | None = None) -> ImportResult:
    """Import one state file, a registry, or a registry and a plan, into a YAML document.

    `output` (where the YAML will be written) only sets the relative schema reference.
    """
    seed = read_seed(paths)
    return to_document(seed, schema_ref=schema_reference(output))


#: What a workflow's ``$schema`` line names when no schema is found around it: the file
#: ``regions schema > workflow.schema.json`` writes beside the workflow (the docs say so).
SCHEMA_BESIDE = "workflow.schema.json"


def schema_reference(output: Path | None) -> str:
    """The ``$schema`` path for a YAML file at `output` (or in the current folder).

    The nearest schema the user has, relative to the file: ``workflow.schema.json`` or
    ``schemas/workflow.schema.json`` in the file's folder or a folder above it. Never the copy
    inside the installed package: a path into the environment breaks when it moves and means
    nothing on another machine. With no schema around, `SCHEMA_BESIDE`.
    """
    folder = (output.parent if output is not None else Path.cwd()).resolve()
    for above in (folder, *folder.parents):
        for candidate in (above / SCHEMA_BESIDE, above / "schemas" / SCHEMA_BESIDE):
            if candidate.is_file():
                return Path(os.path.relpath(candidate, folder)).as_posix()
    return SCHEMA_BESIDE


def dump_yaml(document: Any) -> str:
    """YAML text in the house style (2-space indents, lists indented under their key)."""
    yaml = YAML()
    yaml.width = 100
    yaml.indent(mapping=2, sequence=4, offset=2)
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue()
