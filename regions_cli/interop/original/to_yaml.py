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
from regions_cli.model import split_step
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


def _plan(seed: SeedWorkflow) -> tuple[CommentedSeq, list[str]]:
    """Layers in execution order, with each chain's steps; returns the warnings it made."""
    warnings: list[str] = []
    order = seed.execution_order or list(range(len(seed.layer_config)))
    identity = order == list(range(len(seed.layer_config)))
    plan = CommentedSeq()
    built: dict[int, CommentedMap | None] = {}
    runs: dict[int, int] = {}
    for index in order:
        runs[index] = runs.get(index, 0) + 1
        if index not in built:
            built[index] = _layer(seed, index, warnings)
        chains = built[index]
        if chains is None:
            continue
        layer = CommentedMap()
        if not identity:
            label = f"layer-{index}" if runs[index] == 1 else f"layer-{index}-{runs[index]}"
            layer["layer"] = label
        layer["chains"] = chains
        plan.append(layer)
    extra = len(seed.execution_config) - len(seed.layer_config)
    if extra > 0:
        warnings.append(
            f"execution_config has {plural(extra, 'layer')} more than layer_config: dropped "
            "(they have no chains to run in)"
        )
    for index in range(len(seed.layer_config)):
        if index not in runs:
            warnings.append(f"layer {index} is not in execution_order, so it never runs: dropped")
    return plan, warnings


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
    plan, plan_warnings = _plan(seed)
    warnings = [*seed.warnings, *plan_warnings]
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
    doc["plan"] = plan
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
    if seed.execution_order and seed.execution_order != list(range(len(seed.layer_config))):
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
    doc.yaml_set_comment_before_after_key("plan", before=plan_comment)
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
