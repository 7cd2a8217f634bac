"""Cross-reference checks on a workflow, one function per rule id.

`RULES` is the registry of every rule id `regions verify` can report, including those of the
loader (`workflow.load`) and the schema layer (`workflow.schema`): id -> (severity, summary).
The ids are stable: docs, the GUI and users' CI configurations refer to them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from regions_cli.model import END, FORMAT_VERSION, LLM_REGION_TYPES, METHODS
from regions_cli.model.templates import template_problems
from regions_cli.model.tools import find_program
from regions_cli.text import did_you_mean, plural
from regions_cli.workflow.findings import Finding
from regions_cli.workflow.load import Document, PathT, Pos
from regions_cli.workflow.schema import SINGULAR, describe

#: Name comparisons "did you mean" may spend on one file. Plenty for the typos of a real
#: workflow; a generated file with thousands of unknown names among thousands of regions would
#: otherwise take minutes (each suggestion compares the name with every candidate).
SUGGESTION_BUDGET = 100_000

#: `rags:` defaults the overlap check must apply (they match `model.RagConfig`).
DEFAULT_CHUNK_SIZE = 512
DEFAULT_OVERLAP = 50


class RuleInfo(NamedTuple):
    """A rule's default severity and its one-line summary."""

    severity: str  # "error" | "warning"
    summary: str


#: Every rule id, in the order the documentation lists them.
RULES: dict[str, RuleInfo] = {
    # --- reading and parsing (workflow.load) ---
    "io-error": RuleInfo("error", "The file cannot be read (missing, a directory, no permission)."),
    "file-too-large": RuleInfo("error", "The file is larger than the 1 MiB limit."),
    "bad-encoding": RuleInfo("error", "The file is not valid UTF-8."),
    "yaml-syntax": RuleInfo(
        "error", "The file is not valid YAML (or holds more than one document)."
    ),
    "duplicate-key": RuleInfo("error", "A mapping has the same key twice."),
    "not-a-mapping": RuleInfo("error", "The document is empty or is not a mapping."),
    "non-string-key": RuleInfo("error", "A mapping key is not a string (quote it)."),
    "alias-bomb": RuleInfo("error", "YAML aliases expand past the safety limit (billion laughs)."),
    "recursive-alias": RuleInfo("error", "A YAML alias refers to a node that contains it."),
    "bad-interpolation": RuleInfo("error", "A `${...}` is malformed."),
    "unset-variable": RuleInfo(
        "warning",
        "A `${VAR}` names an unset environment variable (an error with --strict, or where the "
        "value cannot be empty).",
    ),
    # --- the JSON Schema (workflow.schema) ---
    "unknown-key": RuleInfo("error", "A key the format does not define (often a typo)."),
    "key-not-for-type": RuleInfo(
        "error", "A key that does not apply to this region type, backend or tool kind."
    ),
    "missing-key": RuleInfo("error", "A required key is missing."),
    "wrong-type": RuleInfo("error", "A value has the wrong type."),
    "invalid-value": RuleInfo("error", "A value is outside the allowed set, pattern or range."),
    # --- cross-references (this module) ---
    "unsupported-version": RuleInfo("error", "`version` is not a supported format version."),
    "unknown-region": RuleInfo(
        "error",
        "A connection, step, inject, tap, reroute target, wait, condition, route or region tool "
        "names no region.",
    ),
    "unknown-method": RuleInfo("error", "A step calls a method the region's type does not offer."),
    "region-in-two-chains": RuleInfo("error", "A region appears in two chains of one layer."),
    "cross-chain-message": RuleInfo(
        "warning",
        "Connected regions run in two chains of one layer: what one sends the other sees only "
        "from the next layer.",
    ),
    "unknown-llm": RuleInfo("error", "A region names an LLM that `llms:` does not define."),
    "unknown-rag": RuleInfo(
        "error", "A RAGRegion or a rag tool names a store that `rags:` does not define."
    ),
    "unknown-embedder": RuleInfo(
        "error", "A store names an embedder that `embedders:` does not define."
    ),
    "missing-default-llm": RuleInfo(
        "error", "An LLM region names no `llm:` and `llms:` has no `default`."
    ),
    "missing-default-embedder": RuleInfo(
        "error", "A store names no `embedder:` and `embedders:` has no `default`."
    ),
    "overlap-too-large": RuleInfo("error", "A store's `overlap` is not smaller than `chunk_size`."),
    "bad-prompt-template": RuleInfo(
        "error", "A `prompts:` template has a stray `$` or a placeholder it does not offer."
    ),
    "missing-file": RuleInfo(
        "error", "A document, inject, cassette, sub-workflow or local model file does not exist."
    ),
    "empty-plan": RuleInfo("error", "The plan has no layers."),
    "empty-layer": RuleInfo("error", "A layer has no chains."),
    "empty-chain": RuleInfo("error", "A chain has no steps."),
    "duplicate-layer-label": RuleInfo("error", "Two layers have the same label."),
    "missing-reroute-target": RuleInfo(
        "error", "`delivery.undeliverable: reroute` without `reroute_to`."
    ),
    "unused-region": RuleInfo("warning", "A region no plan step uses."),
    "variable-outside-secrets": RuleInfo(
        "warning",
        "A `${VAR}` outside api_key, base_url and headers that `env:` does not declare.",
    ),
    "path-outside-workflow": RuleInfo(
        "warning",
        "A file the workflow reads or writes lies outside its folder (needs "
        "--allow-outside-paths to run).",
    ),
    "tls-verification-off": RuleInfo(
        "warning", "`verify_tls: false`: the server's certificate is not checked."
    ),
    "credentials-over-http": RuleInfo(
        "warning", "A key or credential goes over plain http:// to a host that is not this machine."
    ),
    "self-connection": RuleInfo("warning", "A region is connected to itself."),
    "unreachable-replies": RuleInfo(
        "warning", "`make_replies` on a region that nothing can send a request to."
    ),
    # --- control flow: states, conditions, routers, sub-workflows ---
    "unknown-state": RuleInfo(
        "error", "A transition's `to`, `start` or `on_exhausted` names no state."
    ),
    "unbounded-cycle": RuleInfo(
        "error", "A cycle of transitions passes through no state with `max_visits`."
    ),
    "exhausted-to-itself": RuleInfo("error", "A state's `on_exhausted` names the state itself."),
    "unreachable-state": RuleInfo(
        "warning", "No transition leads to a state, and it is not the start state."
    ),
    "field-without-schema": RuleInfo(
        "error", "A `field:` condition tests a region that has no `output_schema`."
    ),
    "unknown-field": RuleInfo(
        "error", "A `field:` condition names a path the region's `output_schema` cannot produce."
    ),
    "invalid-schema": RuleInfo(
        "error",
        "An `output_schema`, `input_schema` or tool `parameters` is not a valid JSON Schema "
        "(`parameters`: not one of an object).",
    ),
    "bad-regex": RuleInfo("error", "A `says`, `matches` or `output` regex does not compile."),
    "route-not-connected": RuleInfo(
        "error", "A router's route or default names a region that is not one of its connections."
    ),
    "invalid-sub-workflow": RuleInfo(
        "error", "A WorkflowRegion's sub-workflow has errors (the first one is shown)."
    ),
    "recursive-workflow": RuleInfo(
        "error", "A WorkflowRegion runs a workflow that runs the workflow it is in."
    ),
    "unknown-entry": RuleInfo(
        "error", "A WorkflowRegion's `entry` is not a region of its sub-workflow."
    ),
    # --- tools ---
    "unknown-tool": RuleInfo(
        "error", "A region's `tools` or a ToolRegion's `tool` names no `tools:` entry."
    ),
    "terminal-tool-not-offered": RuleInfo(
        "error", "A `tool_loop.terminal_tools` entry is not one of the region's tools."
    ),
    "self-tool": RuleInfo(
        "error", "A region can call itself: one of its tools is a `region:` tool naming it."
    ),
    "region-tool-cannot-answer": RuleInfo(
        "error", "A `region:` tool names a region whose type has no `make_replies`."
    ),
    "command-not-found": RuleInfo(
        "warning",
        "A command tool's or MCP server's program is neither on PATH nor a file beside the "
        "workflow.",
    ),
    "tool-loop-without-tools": RuleInfo("warning", "`tool_loop` on a region that has no `tools`."),
    "unused-tool": RuleInfo("warning", "A `tools:` entry that no region uses."),
    "internal-error": RuleInfo("error", "A check crashed: a bug in regions (please report it)."),
}


# --- the checks --------------------------------------------------------------------------------

#: How a plan step is written (also the schema's pattern).
STEP_PATTERN = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)\.([A-Za-z_][A-Za-z0-9_]*)$")

Check = Callable[["Context"], Iterable[Finding]]
#: rule id -> the function that checks it (cross-reference rules only; in run order).
CHECKS: dict[str, Check] = {}


def check(rule_id: str) -> Callable[[Check], Check]:
    """Register a function as the check for `rule_id` (which must be in `RULES`)."""

    def register(fn: Check) -> Check:
        assert rule_id in RULES, rule_id
        CHECKS[rule_id] = fn
        return fn

    return register


@dataclass(frozen=True)
class StepRef:
    """One plan step, parsed: where it is and what it calls."""

    layer: PathT  # the layer's path: ("plan", i) or ("states", NAME, "plan", i)
    chain: str
    path: PathT  # the string's path (for a mapping step: its `step:` value)
    region: str
    method: str


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class Context:
    """A parsed document plus helpers the checks share. Every accessor tolerates data the
    schema rejected (wrong types come back empty), so checks never crash on bad input."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.data: dict[str, Any] = doc.data or {}
        self.regions: dict[str, dict[str, Any]] = {
            name: spec
            for name, spec in _mapping(self.data.get("regions")).items()
            if isinstance(spec, dict)
        }
        self.tools: dict[str, dict[str, Any]] = {
            name: spec
            for name, spec in _mapping(self.data.get("tools")).items()
            if isinstance(spec, dict)
        }
        self.states: dict[str, dict[str, Any]] = {
            name: spec
            for name, spec in _mapping(self.data.get("states")).items()
            if isinstance(spec, dict)
        }
        self.steps: list[StepRef] = list(self._steps())
        self._suggestions_left = SUGGESTION_BUDGET

    def plans(self) -> list[tuple[PathT, Any]]:
        """(path, value) of every plan: each state's, or the workflow's ``plan:``."""
        if "states" in self.data:
            return [
                ((("states", name, "plan")), spec.get("plan")) for name, spec in self.states.items()
            ]
        return [(("plan",), self.data.get("plan"))]

    def layers(self) -> Iterator[tuple[PathT, dict[str, Any]]]:
        """(path, item) of every plan item (layers and waits), in the order they run in a
        plain plan and in state declaration order in a machine."""
        for path, items in self.plans():
            for i, item in enumerate(_list(items)):
                yield (*path, i), _mapping(item)

    def _steps(self) -> Iterator[StepRef]:
        for at, layer in self.layers():
            for chain, steps in _mapping(layer.get("chains")).items():
                for j, step in enumerate(_list(steps)):
                    path: PathT = (*at, "chains", chain, j)
                    if isinstance(step, dict):
                        step, path = step.get("step"), (*path, "step")
                    match = STEP_PATTERN.match(step) if isinstance(step, str) else None
                    if match:
                        yield StepRef(at, chain, path, match.group(1), match.group(2))

    def transitions(self) -> Iterator[tuple[str, PathT, dict[str, Any]]]:
        """(state, path, entry) of every ``next:`` entry."""
        for name, spec in self.states.items():
            for i, entry in enumerate(_list(spec.get("next"))):
                if isinstance(entry, dict):
                    yield name, ("states", name, "next", i), entry

    def conditions(self) -> Iterator[tuple[dict[str, Any], PathT]]:
        """(condition, path) of every condition, those inside ``all``/``any``/``not`` too."""
        stack = [
            (entry["when"], (*path, "when"))
            for _, path, entry in self.transitions()
            if isinstance(entry.get("when"), dict)
        ]
        stack.reverse()
        while stack:
            condition, path = stack.pop()
            yield condition, path
            inner: list[tuple[Any, PathT]] = [
                (item, (*path, key, i))
                for key in ("all", "any")
                for i, item in enumerate(_list(condition.get(key)))
            ]
            inner.append((condition.get("not"), (*path, "not")))
            stack.extend((c, p) for c, p in reversed(inner) if isinstance(c, dict))

    def waits(self) -> Iterator[tuple[str, PathT]]:
        """(region, path of its name) of every ``- wait: {for: REGION}`` item."""
        for at, item in self.layers():
            region = _mapping(item.get("wait")).get("for")
            if isinstance(region, str):
                yield region, (*at, "wait", "for")

    def block(self, name: str) -> dict[str, Any] | None:
        """A top-level NAME -> spec block, or None when the key is absent (or null)."""
        value = self.data.get(name)
        return value if isinstance(value, dict) else None

    def region_type(self, name: str) -> str | None:
        rtype = self.regions.get(name, {}).get("type")
        return rtype if isinstance(rtype, str) and rtype in METHODS else None

    def connections(self, name: str) -> list[tuple[str, PathT, bool]]:
        """(target, path, is_key) for each connection of region `name`."""
        raw = self.regions.get(name, {}).get("connections")
        base: PathT = ("regions", name, "connections")
        if isinstance(raw, list):
            return [(t, (*base, i), False) for i, t in enumerate(raw) if isinstance(t, str)]
        if isinstance(raw, dict):
            return [(t, (*base, t), True) for t in raw]
        return []

    def finding(
        self,
        rule: str,
        message: str,
        path: PathT,
        *,
        hint: str | None = None,
        key: bool = False,
        char: int | None = None,
        token: str | None = None,
    ) -> Finding:
        """A finding at the key or value of `path` (at its `char`-th character, if given).

        The finding spans `token` (default: the key, or the value) when the file spells it
        out right there.
        """
        positions = self.doc.positions
        line, col = positions.key(path) if key else positions.value(path, char)
        exact = path in (positions.keys if key else positions.values)
        if char is not None:
            exact = exact and path in positions.text_offsets
        if token is None:
            token = path[-1] if key and path and isinstance(path[-1], str) else None
            if not key and char is None:
                value = self.lookup(path)
                token = value if isinstance(value, str) else None
        end = self.doc.span_end((line, col), token) if exact and token else None
        severity = RULES[rule].severity
        return self.doc.finding(rule, message, (line, col), hint=hint, severity=severity, end=end)

    def lookup(self, path: PathT) -> Any:
        """The raw (un-interpolated) value at `path`, or None."""
        node: Any = self.doc.raw
        for part in path:
            if isinstance(node, dict) and isinstance(part, str):
                node = node.get(part)
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                return None
        return node

    def suggest(self, name: str, choices: Iterable[str]) -> str:
        """`` (did you mean 'X'?)`` for a close match of `name` among `choices`, else ``""``
        (also once the file's `SUGGESTION_BUDGET` is spent)."""
        choices = list(choices)
        if len(choices) > self._suggestions_left:
            return ""
        self._suggestions_left -= len(choices)
        close = did_you_mean(name, choices)
        return f" (did you mean '{close}'?)" if close else ""

    def resolve(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.doc.base_dir / path


def _names(names: Iterable[str], limit: int = 8) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "") or "none"


@check("unsupported-version")
def unsupported_version(ctx: Context) -> Iterator[Finding]:
    version = ctx.data.get("version")
    if isinstance(version, int) and not isinstance(version, bool) and version != FORMAT_VERSION:
        yield ctx.finding(
            "unsupported-version",
            f"version {version} is not supported; this regions reads version {FORMAT_VERSION}",
            ("version",),
            hint=f"set `version: {FORMAT_VERSION}`",
        )


@check("unknown-region")
def unknown_region(ctx: Context) -> Iterator[Finding]:
    names = list(ctx.regions)
    hint = f"regions defined: {_names(names)}"

    def unknown(
        target: str, what: str, path: PathT, *, key: bool = False, char: int | None = None
    ) -> Finding:
        message = f"{what} unknown region '{target}'{ctx.suggest(target, names)}"
        return ctx.finding(
            "unknown-region", message, path, hint=hint, key=key, char=char, token=target
        )

    for name in ctx.regions:
        for target, path, is_key in ctx.connections(name):
            if target not in ctx.regions:
                yield unknown(target, f"region '{name}' connects to", path, key=is_key)
        for i, tap in enumerate(_list(ctx.regions[name].get("taps"))):
            if isinstance(tap, str) and tap not in ctx.regions:
                yield unknown(tap, f"listener '{name}' taps", ("regions", name, "taps", i))
    for step in ctx.steps:
        if step.region not in ctx.regions:
            what = f"step '{step.region}.{step.method}' calls"
            yield unknown(step.region, what, step.path, char=0)
    for i, item in enumerate(_list(ctx.data.get("inject"))):
        to = _mapping(item).get("to")
        if isinstance(to, str) and to not in ctx.regions:
            yield unknown(to, "inject sends to", ("inject", i, "to"))
    reroute = _mapping(ctx.data.get("delivery")).get("reroute_to")
    if isinstance(reroute, str) and reroute not in ctx.regions:
        yield unknown(reroute, "delivery reroutes to", ("delivery", "reroute_to"))
    for region, path in ctx.waits():
        if region not in ctx.regions:
            yield unknown(region, "a wait is for", path)
    for condition, path in ctx.conditions():
        tested = condition.get("region")
        if isinstance(tested, str) and tested not in ctx.regions:
            yield unknown(tested, "a condition tests", (*path, "region"))
    for name, target, path in _router_targets(ctx):
        if target not in ctx.regions:
            yield unknown(target, f"router '{name}' routes to", path)
    for name, spec in ctx.tools.items():
        asked = spec.get("region")
        if isinstance(asked, str) and asked not in ctx.regions:
            yield unknown(asked, f"tool '{name}' asks", ("tools", name, "region"))


def _router_targets(ctx: Context) -> Iterator[tuple[str, str, PathT]]:
    """(router, target, path) of every route's `to` and every `default` of a RouterRegion."""
    for name, spec in ctx.regions.items():
        if spec.get("type") != "RouterRegion":
            continue
        for i, route in enumerate(_list(spec.get("routes"))):
            to = _mapping(route).get("to")
            if isinstance(to, str):
                yield name, to, ("regions", name, "routes", i, "to")
        if isinstance(spec.get("default"), str):
            yield name, spec["default"], ("regions", name, "default")


@check("unknown-method")
def unknown_method(ctx: Context) -> Iterator[Finding]:
    for step in ctx.steps:
        rtype = ctx.region_type(step.region)
        if rtype is None:
            continue
        offered = METHODS[rtype]
        if step.method not in offered:
            yield ctx.finding(
                "unknown-method",
                f"{step.region} ({rtype}) has no method '{step.method}'"
                f"{ctx.suggest(step.method, offered)}",
                step.path,
                char=len(step.region) + 1,
                token=step.method,
                hint=f"{rtype} offers: {', '.join(offered)}",
            )


@check("region-in-two-chains")
def region_in_two_chains(ctx: Context) -> Iterator[Finding]:
    first_chain: dict[tuple[PathT, str], str] = {}
    reported: set[tuple[PathT, str]] = set()
    for step in ctx.steps:
        key = (step.layer, step.region)
        chain = first_chain.setdefault(key, step.chain)
        if chain != step.chain and key not in reported:
            reported.add(key)
            yield ctx.finding(
                "region-in-two-chains",
                f"region '{step.region}' is in chain '{chain}' and chain '{step.chain}' "
                f"of {describe(step.layer, ctx.data)}",
                step.path,
                hint="chains of a layer run concurrently; run all of a region's steps in one "
                "chain, or move them to another layer",
            )


#: The roles of the messages each method may post, and of the stored messages it reads.
_POSTS: Mapping[str, frozenset[str]] = {
    "make_questions": frozenset({"request"}),
    "make_replies": frozenset({"request", "reply"}),  # a FeedForwardRegion also forwards
    "request_summaries": frozenset({"request"}),
    "broadcast": frozenset({"request", "reply"}),
}
_READS: Mapping[str, frozenset[str]] = {
    "make_questions": frozenset({"reply"}),
    "make_replies": frozenset({"request", "reply"}),
    "summarize_replies": frozenset({"reply"}),
    "make_updates": frozenset({"reply"}),
    "broadcast": frozenset({"request", "reply"}),
    "clear_replies": frozenset({"reply"}),
    "keep_last_reply_per_source": frozenset({"reply"}),
}


@check("cross-chain-message")
def cross_chain_message(ctx: Context) -> Iterator[Finding]:
    """Chains of a layer exchange messages only at the layer's barrier (the super-step model):
    warn where a step reads what a connected region of another chain of the same layer may
    post there, since it will see that only from the next layer."""
    by_layer: dict[PathT, dict[str, list[StepRef]]] = {}
    for step in ctx.steps:
        by_layer.setdefault(step.layer, {}).setdefault(step.region, []).append(step)
    connected = {name: {t for t, _, _ in ctx.connections(name)} for name in ctx.regions}
    for layer, regions in by_layer.items():
        chain_of = {
            region: steps[0].chain
            for region, steps in regions.items()
            if len({s.chain for s in steps}) == 1  # else region-in-two-chains says it
        }
        reported: set[frozenset[str]] = set()
        for sender, chain in chain_of.items():
            for target, other in chain_of.items():
                if other == chain or frozenset((sender, target)) in reported:
                    continue
                # requests go to connections; replies also back to whoever asked
                roles = {"request", "reply"} if target in connected.get(sender, ()) else set()
                if sender in connected.get(target, ()):
                    roles.add("reply")
                posted = roles & set().union(*(_POSTS.get(s.method, ()) for s in regions[sender]))
                reader = next(
                    (s for s in regions[target] if posted & _READS.get(s.method, frozenset())),
                    None,
                )
                if reader is None:
                    continue
                reported.add(frozenset((sender, target)))
                yield ctx.finding(
                    "cross-chain-message",
                    f"{reader.region}.{reader.method} reads what '{sender}' (chain '{chain}') "
                    f"may send it, but runs in chain '{other}' of "
                    f"{describe(layer, ctx.data)}: it sees those messages only "
                    "from the next layer",
                    reader.path,
                    hint="chains of a layer run side by side and exchange messages at the "
                    "layer's end; put both steps in one chain, in order, or in consecutive layers",
                )


def _reference_check(
    ctx: Context, rule: str, block: str, refs: Iterable[tuple[str, PathT, str]]
) -> Iterator[Finding]:
    defined = ctx.block(block)
    names = list(defined) if defined is not None else ["default"]
    kind = block.rstrip("s")
    for name, path, owner in refs:
        if name not in names:
            yield ctx.finding(
                rule,
                f"{owner} uses unknown {kind} '{name}'{ctx.suggest(name, names)}",
                path,
                hint=f"{block} defined: {_names(names)}"
                + ("" if defined is not None else f" (implied: there is no `{block}:` block)"),
            )


@check("unknown-llm")
def unknown_llm(ctx: Context) -> Iterator[Finding]:
    refs = [
        (spec["llm"], ("regions", name, "llm"), f"region '{name}'")
        for name, spec in ctx.regions.items()
        if isinstance(spec.get("llm"), str)
        and ctx.region_type(name) in (*LLM_REGION_TYPES, "RouterRegion")
    ]
    yield from _reference_check(ctx, "unknown-llm", "llms", refs)


@check("unknown-rag")
def unknown_rag(ctx: Context) -> Iterator[Finding]:
    rags = ctx.block("rags") or {}
    users: list[tuple[str, Any, PathT]] = [
        (f"region '{name}'", spec.get("rag"), ("regions", name, "rag"))
        for name, spec in ctx.regions.items()
        if spec.get("type") == "RAGRegion"
    ]
    users += [
        (f"tool '{name}'", spec.get("rag"), ("tools", name, "rag"))
        for name, spec in ctx.tools.items()
    ]
    for owner, rag, path in users:
        if isinstance(rag, str) and rag not in rags:
            yield ctx.finding(
                "unknown-rag",
                f"{owner} uses unknown rag '{rag}'{ctx.suggest(rag, rags)}",
                path,
                hint=f"rags defined: {_names(rags)}" if rags else "define the store under `rags:`",
            )


@check("unknown-embedder")
def unknown_embedder(ctx: Context) -> Iterator[Finding]:
    refs = [
        (spec["embedder"], ("rags", name, "embedder"), f"rag '{name}'")
        for name, spec in (ctx.block("rags") or {}).items()
        if isinstance(spec, dict) and isinstance(spec.get("embedder"), str)
    ]
    yield from _reference_check(ctx, "unknown-embedder", "embedders", refs)


@check("missing-default-llm")
def missing_default_llm(ctx: Context) -> Iterator[Finding]:
    llms = ctx.block("llms")
    if llms is None or "default" in llms:
        return  # no llms: block at all means the implied local `default`
    for name, spec in ctx.regions.items():
        if ctx.region_type(name) in LLM_REGION_TYPES and "llm" not in spec:
            yield ctx.finding(
                "missing-default-llm",
                f"region '{name}' names no llm and `llms:` has no 'default'",
                ("regions", name),
                key=True,
                hint=f"add `llm: <name>` to the region ({_names(llms)}) or an `llms.default` entry",
            )


@check("missing-default-embedder")
def missing_default_embedder(ctx: Context) -> Iterator[Finding]:
    embedders = ctx.block("embedders")
    if embedders is None or "default" in embedders:
        return
    for name, spec in (ctx.block("rags") or {}).items():
        if isinstance(spec, dict) and "embedder" not in spec:
            yield ctx.finding(
                "missing-default-embedder",
                f"rag '{name}' names no embedder and `embedders:` has no 'default'",
                ("rags", name),
                key=True,
                hint=f"add `embedder: <name>` to the store ({_names(embedders)}) or an "
                "`embedders.default` entry",
            )


@check("overlap-too-large")
def overlap_too_large(ctx: Context) -> Iterator[Finding]:
    for name, spec in (ctx.block("rags") or {}).items():
        if not isinstance(spec, dict):
            continue
        chunk = spec.get("chunk_size", DEFAULT_CHUNK_SIZE)
        overlap = spec.get("overlap", DEFAULT_OVERLAP)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (chunk, overlap)):
            continue
        if chunk < 1 or overlap < 0:
            continue  # out of range: the schema reports it
        if overlap >= chunk:
            at = "overlap" if "overlap" in spec else "chunk_size"
            yield ctx.finding(
                "overlap-too-large",
                f"rag '{name}': overlap {overlap} must be smaller than chunk_size {chunk}"
                + ("" if "overlap" in spec else " (overlap defaults to 50)"),
                ("rags", name, at),
                hint="chunking advances by chunk_size - overlap characters; make overlap smaller",
            )


@check("bad-prompt-template")
def bad_prompt_template(ctx: Context) -> Iterator[Finding]:
    for region, spec in ctx.regions.items():
        for name, text in _mapping(spec.get("prompts")).items():
            if not isinstance(text, str):
                continue  # the schema reports it
            path: PathT = ("regions", region, "prompts", name)
            # Offsets are into the value a run uses; they point into the file when no ${VAR}
            # changed it.
            same = ctx.lookup(path) == text
            for offset, problem in template_problems(name, text):
                message = f"region '{region}', prompts.{name}: {problem}"
                hint = "placeholders are $field or ${field}; write $$ for a literal '$'"
                block = _in_literal_block(ctx.doc, path, text, offset) if same else None
                if block is not None:
                    yield ctx.doc.finding("bad-prompt-template", message, block, hint=hint)
                else:
                    yield ctx.finding(
                        "bad-prompt-template",
                        message,
                        path,
                        char=offset if same else None,
                        hint=hint,
                    )


def _in_literal_block(doc: Document, path: PathT, text: str, offset: int) -> Pos | None:
    """Where character `offset` of `text` is written, when `text` is the literal block
    (``|``) at `path`; None for any other way of writing it."""
    line, col = doc.positions.value(path)
    lines = doc.text.splitlines()
    if not 0 < line <= len(lines) or not lines[line - 1][col - 1 :].startswith("|"):
        return None
    row = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    written = text.split("\n")[row]
    target = line + 1 + row
    if target > len(lines) or not lines[target - 1].endswith(written):
        return None
    indent = len(lines[target - 1]) - len(written)
    return target, indent + (offset - start) + 1


@check("missing-file")
def missing_file(ctx: Context) -> Iterator[Finding]:
    llms = ctx.block("llms") or {}
    for file, path, owner in workflow_files(ctx):
        # the files it reads (not what it writes); an empty string (an unset ${VAR}) is
        # reported elsewhere
        reads = path[-1] in ("file", "workflow") or (
            path[-1] == "cassette" and _mapping(llms.get(str(path[1]))).get("backend") == "replay"
        )
        if file and reads:
            yield from _missing(ctx, file, path, owner)
    # The local backends' model files: `regions run` refuses a model that is not there.
    for block, keys in (("llms", ("model",)), ("embedders", ("model", "tokenizer"))):
        for name, spec in (ctx.block(block) or {}).items():
            if _mapping(spec).get("backend") != "local":
                continue
            for key in keys:
                file = spec.get(key)
                if isinstance(file, str) and file:
                    owner = f"{SINGULAR[block]} '{name}'"
                    yield from _missing(ctx, file, (block, name, key), owner)


def _missing(ctx: Context, file: str, path: PathT, owner: str) -> Iterator[Finding]:
    """A `missing-file` finding when `file` (as written at `path`) is not a file."""
    resolved = ctx.resolve(file)
    if not resolved.is_file():
        problem = "is a directory" if resolved.is_dir() else "does not exist"
        yield ctx.finding(
            "missing-file",
            f"{owner}: file '{file}' {problem}",
            path,
            hint=f"paths are relative to the workflow file's folder ({resolved})",
        )


@check("empty-plan")
def empty_plan(ctx: Context) -> Iterator[Finding]:
    for path, items in ctx.plans():
        if items == []:
            owner = "the plan" if len(path) == 1 else describe(path[:2], ctx.data)
            yield ctx.finding(
                "empty-plan",
                f"{owner} has no layers; nothing would run",
                path,
                key=True,
                hint="add a layer: `- chains: {main: [Region.method]}`",
            )


@check("empty-layer")
def empty_layer(ctx: Context) -> Iterator[Finding]:
    for path, layer in ctx.layers():
        if layer.get("chains") == {}:
            yield ctx.finding(
                "empty-layer",
                f"{describe(path, ctx.data)} has no chains",
                (*path, "chains"),
                key=True,
                hint="add a chain with steps, or remove the layer",
            )


@check("empty-chain")
def empty_chain(ctx: Context) -> Iterator[Finding]:
    for path, layer in ctx.layers():
        for chain, steps in _mapping(layer.get("chains")).items():
            if steps == []:
                yield ctx.finding(
                    "empty-chain",
                    f"chain '{chain}' in {describe(path, ctx.data)} has no steps",
                    (*path, "chains", chain),
                    key=True,
                    hint="add steps (Region.method), or remove the chain",
                )


def _numbered(path: PathT) -> str:
    """A layer's path as its number: ``layer 2`` or ``layer 2 of state 'review'``."""
    number = f"layer {int(path[-1]) + 1}"
    return number if len(path) == 2 else f"{number} of state '{path[1]}'"


@check("duplicate-layer-label")
def duplicate_layer_label(ctx: Context) -> Iterator[Finding]:
    # A layer without a label is called layer-<index in the whole workflow>, a wait
    # wait-<region>; an explicit label may collide with those, two waits for one region too.
    layers = list(ctx.layers())
    explicit = [
        item.get("layer") if isinstance(item.get("layer"), str) else None for _, item in layers
    ]
    effective = [
        label
        or (f"wait-{_mapping(item.get('wait')).get('for')}" if "wait" in item else f"layer-{i}")
        for i, (label, (_, item)) in enumerate(zip(explicit, layers, strict=True))
    ]
    for i, label in enumerate(effective):
        first = effective.index(label)
        if first == i:
            continue
        # Point at an explicit label: this one if it has one, else the earlier one.
        at = i if explicit[i] is not None else first
        key = "layer"
        if explicit[at] is None:
            if "wait" not in layers[i][1]:
                continue  # two default layer labels never collide (indices differ)
            at, key = i, "wait"
        implied = explicit[first] is None or explicit[i] is None
        note = ""
        if implied:
            note = (
                " (a wait without a label is named wait-<region>)"
                if label.startswith("wait-")
                else " (an unlabelled layer is named layer-<index from 0>)"
            )
        one, other = layers[first][0], layers[i][0]
        where = (
            f"layers {first + 1} and {i + 1}"
            if len(one) == len(other) == 2
            else f"{_numbered(one)} and {_numbered(other)}"
        )
        yield ctx.finding(
            "duplicate-layer-label",
            f"layer label '{label}' is used by {where}{note}",
            (*layers[at][0], key),
            key=key == "wait",
            hint="labels name layers for `regions step --layer`; make them unique",
        )


@check("missing-reroute-target")
def missing_reroute_target(ctx: Context) -> Iterator[Finding]:
    delivery = _mapping(ctx.data.get("delivery"))
    if delivery.get("undeliverable") == "reroute" and not delivery.get("reroute_to"):
        yield ctx.finding(
            "missing-reroute-target",
            "`undeliverable: reroute` needs `reroute_to`: the region that gets such messages",
            ("delivery", "undeliverable"),
            hint="add `reroute_to: <region>` under `delivery:`",
        )


@check("unused-region")
def unused_region(ctx: Context) -> Iterator[Finding]:
    used = {step.region for step in ctx.steps}
    tools = ctx.data.get("tools")
    if isinstance(tools, dict):  # a region asked as a tool (`{region: NAME}`) is used too
        used |= {str(t["region"]) for t in tools.values() if isinstance(t, dict) and "region" in t}
    for name, spec in ctx.regions.items():
        # A listener taps traffic passively; it needs no step.
        if name not in used and spec.get("type") != "ListenerRegion":
            yield ctx.finding(
                "unused-region",
                f"region '{name}' is never used in the plan",
                ("regions", name),
                key=True,
                hint=f"add a step such as {name}.{_first_method(ctx, name)} to a layer, "
                "or remove the region",
            )


def _first_method(ctx: Context, name: str) -> str:
    rtype = ctx.region_type(name)
    return METHODS[rtype][0] if rtype else "method"


@check("self-connection")
def self_connection(ctx: Context) -> Iterator[Finding]:
    for name in ctx.regions:
        for target, path, is_key in ctx.connections(name):
            if target == name:
                yield ctx.finding(
                    "self-connection",
                    f"region '{name}' is connected to itself",
                    path,
                    key=is_key,
                    hint="a region answering its own questions is rarely intended; remove it",
                )


@check("unreachable-replies")
def unreachable_replies(ctx: Context) -> Iterator[Finding]:
    senders: set[str] = set()
    for name in ctx.regions:
        senders.update(target for target, _, _ in ctx.connections(name))
    for item in _list(ctx.data.get("inject")):
        target = _mapping(item).get("to")
        if isinstance(target, str):
            senders.add(target)
    reroute = _mapping(ctx.data.get("delivery")).get("reroute_to")
    if isinstance(reroute, str):
        senders.add(reroute)
    senders.update(region for region, _ in ctx.waits())  # a person's message arrives there
    reported: set[str] = set()
    for step in ctx.steps:
        if (
            step.method == "make_replies"
            and step.region in ctx.regions
            and step.region not in senders
            and step.region not in reported
        ):
            reported.add(step.region)
            yield ctx.finding(
                "unreachable-replies",
                f"{step.region}.make_replies can never have a request to answer: no region "
                f"connects to '{step.region}', no inject sends to it and no wait is for it",
                step.path,
                hint=f"add '{step.region}' to another region's connections, or inject a request",
            )


#: Keys of an llms/embedders entry where a secret from the environment belongs.
_SECRET_KEYS = frozenset({"api_key", "base_url", "headers"})


@check("variable-outside-secrets")
def variable_outside_secrets(ctx: Context) -> Iterator[Finding]:
    """A workflow is code: ``${VAR}`` can pull any environment variable into a prompt, and from
    there to the model's server, the run file and ``--json``. Where secrets belong (an entry's
    api_key, base_url, headers; the NATS transport's url) that is the point; elsewhere the
    variable must be declared."""
    declared = {name for name in _list(ctx.data.get("env")) if isinstance(name, str)}
    for path, name, offset in ctx.doc.variables:
        if len(path) >= 3 and path[0] in ("llms", "embedders") and path[2] in _SECRET_KEYS:
            continue
        if tuple(path[:2]) == ("transport", "url"):  # the server's address: from the environment
            continue
        if name in declared:
            continue
        where = ".".join(str(part) for part in path)
        yield ctx.finding(
            "variable-outside-secrets",
            f"${{{name}}} in {where} pulls the environment variable {name} into text that "
            "reaches the model's server, the run file and --json",
            path,
            char=offset,
            hint=f"if that is meant, declare it: `env: [{name}]` at the top of the file; "
            "keep secrets in api_key, base_url or headers",
        )


def workflow_files(ctx: Context) -> Iterator[tuple[str, PathT, str]]:
    """(path as written, where, owner) of every file the workflow reads or writes."""
    for name, spec in (ctx.block("rags") or {}).items():
        if isinstance(_mapping(spec).get("path"), str):
            yield spec["path"], ("rags", name, "path"), f"rag '{name}'"
        for i, document in enumerate(_list(_mapping(spec).get("documents"))):
            file = _mapping(document).get("file")
            if isinstance(file, str):
                yield file, ("rags", name, "documents", i, "file"), f"rag '{name}'"
    for i, item in enumerate(_list(ctx.data.get("inject"))):
        file = _mapping(item).get("file")
        if isinstance(file, str):
            yield file, ("inject", i, "file"), f"inject entry {i + 1}"
    for name, spec in (ctx.block("llms") or {}).items():
        for key in ("cassette", "cache"):
            value = _mapping(spec).get(key)
            if isinstance(value, str):
                yield value, ("llms", name, key), f"llm '{name}'"
    for name, spec in ctx.regions.items():
        if isinstance(spec.get("sink"), str):
            yield spec["sink"], ("regions", name, "sink"), f"region '{name}'"
        if spec.get("type") == "WorkflowRegion" and isinstance(spec.get("workflow"), str):
            yield spec["workflow"], ("regions", name, "workflow"), f"region '{name}'"


@check("path-outside-workflow")
def path_outside_workflow(ctx: Context) -> Iterator[Finding]:
    folder = ctx.doc.base_dir.resolve()
    for file, path, owner in workflow_files(ctx):
        if not file:
            continue
        resolved = ctx.resolve(file).resolve()
        if not resolved.is_relative_to(folder):
            yield ctx.finding(
                "path-outside-workflow",
                f"{owner}: '{file}' is outside the workflow's folder ({folder})",
                path,
                hint="keep the files beside the workflow, or run with --allow-outside-paths if "
                "the workflow is yours and that is meant",
            )


#: Header names that carry a credential (compared in lower case).
_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "api-key", "x-api-key", "cookie")


def _endpoints(ctx: Context) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(block, name, spec) of every entry that talks to a server (llms and embedders)."""
    for block in ("llms", "embedders"):
        for name, spec in (ctx.block(block) or {}).items():
            if isinstance(spec, dict):
                yield block, str(name), spec


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@check("tls-verification-off")
def tls_verification_off(ctx: Context) -> Iterator[Finding]:
    for block, name, spec in _endpoints(ctx):
        if spec.get("verify_tls") is False:
            yield ctx.finding(
                "tls-verification-off",
                f"{SINGULAR[block]} '{name}' does not check the server's certificate: "
                "anyone on the way can read and change its traffic, the key included",
                (block, name, "verify_tls"),
                hint="remove `verify_tls: false`, or give the server a certificate this "
                "machine trusts",
            )


@check("credentials-over-http")
def credentials_over_http(ctx: Context) -> Iterator[Finding]:
    from urllib.parse import urlsplit

    for block, name, spec in _endpoints(ctx):
        url = spec.get("base_url")
        if not isinstance(url, str) or "${" in url or not url.lower().startswith("http://"):
            continue
        parts = urlsplit(url)
        if _is_loopback(parts.hostname or ""):
            continue
        headers = spec.get("headers") if isinstance(spec.get("headers"), dict) else {}
        carried = [
            what
            for what, present in (
                ("api_key", bool(spec.get("api_key"))),
                ("a password in base_url", bool(parts.password)),
                (
                    "a credential header",
                    any(str(h).lower() in _CREDENTIAL_HEADERS for h in headers or {}),
                ),
            )
            if present
        ]
        if carried:
            yield ctx.finding(
                "credentials-over-http",
                f"{SINGULAR[block]} '{name}' sends {' and '.join(carried)} over plain "
                f"http:// to {parts.hostname}, which is not this machine: anyone on the way can "
                "read it",
                (block, name, "base_url"),
                hint="use https://, or a server on this machine (127.0.0.1)",
            )


# --- control flow ------------------------------------------------------------------------------

#: Transition targets and `on_exhausted` values that are not states.
_NOT_STATES = frozenset({END})
_EXHAUSTED_WORDS = frozenset({"fail", END})


def _state_refs(ctx: Context) -> Iterator[tuple[str, PathT, str]]:
    """(name, path, what) of every place that names a state."""
    for state, path, entry in ctx.transitions():
        to = entry.get("to")
        if isinstance(to, str) and to not in _NOT_STATES:
            yield to, (*path, "to"), f"state '{state}' goes to"
    start = ctx.data.get("start")
    if isinstance(start, str) and "states" in ctx.data:
        yield start, ("start",), "`start` names"
    for name, spec in ctx.states.items():
        target = spec.get("on_exhausted")
        if isinstance(target, str) and target not in _EXHAUSTED_WORDS:
            yield target, ("states", name, "on_exhausted"), f"state '{name}' on_exhausted goes to"


@check("unknown-state")
def unknown_state(ctx: Context) -> Iterator[Finding]:
    names = list(ctx.states)
    for target, path, what in _state_refs(ctx):
        if target not in ctx.states:
            yield ctx.finding(
                "unknown-state",
                f"{what} unknown state '{target}'{ctx.suggest(target, names)}",
                path,
                hint=f"states defined: {_names(names)}; `end` finishes the run",
            )


def _edges(ctx: Context) -> dict[str, list[tuple[str, PathT, bool]]]:
    """state -> (next state, where it is written, is on_exhausted) for every transition and
    every on_exhausted that leads to a known state, in the order they are written."""
    edges: dict[str, list[tuple[str, PathT, bool]]] = {name: [] for name in ctx.states}
    for state, path, entry in ctx.transitions():
        to = entry.get("to")
        if isinstance(to, str) and to in ctx.states:
            edges[state].append((to, (*path, "to"), False))
    for name, spec in ctx.states.items():
        target = spec.get("on_exhausted")
        if isinstance(target, str) and target in ctx.states and target != name:
            # (to itself: exhausted-to-itself says it)
            edges[name].append((target, ("states", name, "on_exhausted"), True))
    return edges


def _start(ctx: Context) -> str | None:
    start = ctx.data.get("start")
    if isinstance(start, str) and start in ctx.states:
        return start
    return next(iter(ctx.states), None)


def _bounded(spec: dict[str, Any]) -> bool:
    visits = spec.get("max_visits")
    return isinstance(visits, int) and not isinstance(visits, bool) and visits >= 1


@check("unbounded-cycle")
def unbounded_cycle(ctx: Context) -> Iterator[Finding]:
    """A run may go round a cycle as long as no state on it runs out of visits. A bounded state
    bounds a cycle only when the cycle leaves it by a transition: leaving by `on_exhausted`
    happens on every round once it has run out. So the cycles that matter are those of the graph
    where a bounded state keeps only its `on_exhausted` edge; each back edge a depth-first walk
    meets closes one, and is reported where it is written."""
    edges = {
        state: [e for e in out if e[2] == _bounded(ctx.states[state])]
        for state, out in _edges(ctx).items()
    }
    order = list(ctx.states)
    start = _start(ctx)
    if start is not None:
        order.remove(start)
        order.insert(0, start)
    done: set[str] = set()
    for root in order:
        if root in done:
            continue
        stack: list[str] = [root]
        on_stack = {root}
        pending = [iter(edges[root])]
        while pending:
            step = next(pending[-1], None)
            if step is None:
                pending.pop()
                done.add(stack[-1])
                on_stack.discard(stack.pop())
                continue
            target, path, _ = step
            if target in on_stack:
                cycle = [*stack[stack.index(target) :], target]
                yield _cycle_finding(ctx, cycle, path)
            elif target not in done:
                stack.append(target)
                on_stack.add(target)
                pending.append(iter(edges[target]))


def _cycle_finding(ctx: Context, cycle: list[str], path: PathT) -> Finding:
    shown = " -> ".join(cycle)
    bounded = [s for s in cycle[:-1] if _bounded(ctx.states[s])]
    if bounded:
        message = (
            f"{shown} can go round forever: {bounded[0]} leaves it through on_exhausted, "
            "which runs on every round once its visits are spent"
        )
    else:
        message = f"{shown} has no state with max_visits"
    return ctx.finding(
        "unbounded-cycle",
        message,
        path,
        hint=f"add `max_visits: N` to one of {', '.join(dict.fromkeys(cycle))}; a visit past "
        "it does what its `on_exhausted` says (default: the run fails)",
    )


@check("exhausted-to-itself")
def exhausted_to_itself(ctx: Context) -> Iterator[Finding]:
    for name, spec in ctx.states.items():
        if spec.get("on_exhausted") == name:
            yield ctx.finding(
                "exhausted-to-itself",
                f"state '{name}' goes to itself when its visits are spent: it would never stop",
                ("states", name, "on_exhausted"),
                hint="use `fail`, `end` or another state",
            )


@check("unreachable-state")
def unreachable_state(ctx: Context) -> Iterator[Finding]:
    start = _start(ctx)
    if start is None:
        return
    edges = _edges(ctx)
    seen = {start}
    todo = [start]
    while todo:
        for target, _, _ in edges[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    for name in ctx.states:
        if name not in seen:
            yield ctx.finding(
                "unreachable-state",
                f"state '{name}' is never entered: no transition from '{start}' leads to it",
                ("states", name),
                key=True,
                hint=f"add `- to: {name}` to another state's `next:`, or remove the state",
            )


def _field_tests(ctx: Context) -> Iterator[tuple[str, str, PathT]]:
    """(region, field path, where the field is written) of every `field:` condition on a
    region that exists."""
    for condition, path in ctx.conditions():
        region, field = condition.get("region"), condition.get("field")
        if isinstance(region, str) and isinstance(field, str) and region in ctx.regions:
            yield region, field, (*path, "field")


@check("field-without-schema")
def field_without_schema(ctx: Context) -> Iterator[Finding]:
    for region, field, path in _field_tests(ctx):
        if not isinstance(ctx.regions[region].get("output_schema"), dict):
            yield ctx.finding(
                "field-without-schema",
                f"a condition tests field '{field}' of '{region}', which has no output_schema: "
                "its replies are text, not JSON",
                path,
                hint=f"give '{region}' an `output_schema:`, or test its text with `says:`",
            )


def _unproducible(schema: Any, parts: list[str]) -> int | None:
    """The index of the first part of a dotted path that `schema` cannot produce, or None when
    it can (or when that cannot be told: ``$ref``, combinators, open objects)."""
    node = schema
    for index, part in enumerate(parts):
        if not isinstance(node, dict):
            return None  # `true` or a malformed schema: anything goes
        if any(key in node for key in ("$ref", "anyOf", "oneOf", "allOf", "if")):
            return None
        types = node.get("type")
        types = {types} if isinstance(types, str) else set(_list(types))
        if "properties" in node or "object" in types:
            # Declared properties are what a model produces; an object that declares none
            # may hold any key unless additionalProperties is false.
            properties = _mapping(node.get("properties"))
            extra = node.get("additionalProperties", "properties" not in node)
            if part in properties:
                node = properties[part]
            elif node.get("patternProperties") or isinstance(extra, dict) or extra is True:
                node = extra if isinstance(extra, dict) else True
            else:
                return index
        elif "items" in node or "prefixItems" in node or "array" in types:
            if not part.isdigit():
                return index
            prefix = _list(node.get("prefixItems"))
            node = prefix[int(part)] if int(part) < len(prefix) else node.get("items", True)
        elif types:
            return index  # a string, number, boolean or null has no fields
        else:
            return None
    return None


@check("unknown-field")
def unknown_field(ctx: Context) -> Iterator[Finding]:
    for region, field, path in _field_tests(ctx):
        schema = ctx.regions[region].get("output_schema")
        if not isinstance(schema, dict):
            continue
        parts = field.split(".")
        bad = _unproducible(schema, parts)
        if bad is None:
            continue
        known = ".".join(parts[:bad])
        under = f" under '{known}'" if known else ""
        yield ctx.finding(
            "unknown-field",
            f"'{region}' cannot produce field '{field}': its output_schema has no "
            f"'{parts[bad]}'{under}",
            path,
            char=len(known) + 1 if known else 0,
            hint="name a property of the schema (dotted: `verdict`, `scores.0`)",
        )


@check("invalid-schema")
def invalid_schema(ctx: Context) -> Iterator[Finding]:
    from jsonschema.exceptions import SchemaError
    from jsonschema.validators import validator_for

    for name, spec in ctx.regions.items():
        for key in ("output_schema", "input_schema"):
            schema = spec.get(key)
            if not isinstance(schema, dict):
                continue
            try:
                validator_for(schema).check_schema(schema)
            except SchemaError as exc:
                path: PathT = ("regions", name, key, *exc.path)
                yield ctx.finding(
                    "invalid-schema",
                    f"the {key} of region '{name}' is not a valid JSON Schema: {exc.message}",
                    path,
                    hint="see https://json-schema.org/understanding-json-schema/",
                )
    yield from _invalid_parameters(ctx)


def _invalid_parameters(ctx: Context) -> Iterator[Finding]:
    """Tool `parameters` are checked as the run checks them: JSON Schema 2020-12 (whatever
    `$schema` says), and of an object, since a call's arguments are a JSON object."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    for name, spec in ctx.tools.items():
        schema = spec.get("parameters")
        if not isinstance(schema, dict):
            continue
        at: PathT = ("tools", name, "parameters")
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            yield ctx.finding(
                "invalid-schema",
                f"the parameters of tool '{name}' are not a valid JSON Schema: {exc.message}",
                (*at, *exc.path),
                hint="see https://json-schema.org/understanding-json-schema/",
            )
            continue
        if schema.get("type", "object") != "object":
            yield ctx.finding(
                "invalid-schema",
                f"the parameters of tool '{name}' must be the schema of an object "
                f"(type: object), not type: {schema.get('type')}",
                (*at, "type"),
                hint="a call's arguments are a JSON object: put each argument under `properties:`",
            )


def _patterns(ctx: Context) -> Iterator[tuple[str, PathT]]:
    """(regex, path) of every `says`, `matches` and `output` of conditions and routes."""
    for condition, path in ctx.conditions():
        for key in ("says", "matches", "output"):
            if isinstance(condition.get(key), str):
                yield condition[key], (*path, key)
    for name, spec in ctx.regions.items():
        for i, route in enumerate(_list(spec.get("routes"))):
            says = _mapping(_mapping(route).get("when")).get("says")
            if isinstance(says, str):
                yield says, ("regions", name, "routes", i, "when", "says")


@check("bad-regex")
def bad_regex(ctx: Context) -> Iterator[Finding]:
    for pattern, path in _patterns(ctx):
        try:
            re.compile(pattern)
        except re.error as exc:
            yield ctx.finding(
                "bad-regex",
                f"'{pattern}' is not a valid regex: {exc.msg}"
                + (f" at position {exc.pos}" if exc.pos is not None else ""),
                path,
                char=exc.pos,
                hint="a Python regex (re.search); escape special characters with \\",
            )


@check("route-not-connected")
def route_not_connected(ctx: Context) -> Iterator[Finding]:
    for name, target, path in _router_targets(ctx):
        connected = [t for t, _, _ in ctx.connections(name)]
        if target in ctx.regions and target not in connected:
            yield ctx.finding(
                "route-not-connected",
                f"router '{name}' routes to '{target}', which is not one of its connections",
                path,
                hint=f"add '{target}' to the connections of '{name}' ({_names(connected)})",
            )


#: The workflow files being verified, outermost first: a sub-workflow that is already being
#: verified is not verified again (its recursion is reported in the file where it starts).
_VERIFYING: ContextVar[tuple[Path, ...]] = ContextVar("verifying", default=())


def _sub_workflows(ctx: Context) -> Iterator[tuple[str, Path, PathT]]:
    """(region, resolved file, path of `workflow:`) of every WorkflowRegion whose file exists."""
    for name, spec in ctx.regions.items():
        file = spec.get("workflow")
        if spec.get("type") == "WorkflowRegion" and isinstance(file, str) and file:
            resolved = ctx.resolve(file)
            if resolved.is_file():
                yield name, resolved, ("regions", name, "workflow")


def _workflow_files_used(path: Path) -> list[Path]:
    """The sub-workflow files the workflow at `path` runs (parsed, not verified)."""
    from regions_cli.workflow.load import load_file

    doc = load_file(path)
    found = []
    for spec in _mapping(doc.data and doc.data.get("regions")).values():
        file = _mapping(spec).get("workflow")
        if _mapping(spec).get("type") == "WorkflowRegion" and isinstance(file, str) and file:
            resolved = (path.parent / Path(file).expanduser()).resolve()
            if resolved.is_file():
                found.append(resolved)
    return found


def _path_back(start: Path, home: Path) -> list[Path] | None:
    """The shortest chain of sub-workflows from `start` back to `home`, or None."""
    paths = {start: [start]}
    todo = [start]
    while todo:
        current = todo.pop(0)
        if current == home:
            return paths[current]
        for used in _workflow_files_used(current):
            if used not in paths:
                paths[used] = [*paths[current], used]
                todo.append(used)
    return None


def _home(ctx: Context) -> Path | None:
    """The workflow's own file, when it is one."""
    file = Path(ctx.doc.file)
    return file.resolve() if file.is_file() else None


@check("recursive-workflow")
def recursive_workflow(ctx: Context) -> Iterator[Finding]:
    home = _home(ctx)
    if home is None:
        return
    for name, resolved, path in _sub_workflows(ctx):
        chain = _path_back(resolved.resolve(), home)
        if chain is None:
            continue
        shown = " -> ".join(p.name for p in [home, *chain])
        yield ctx.finding(
            "recursive-workflow",
            f"region '{name}' runs a workflow that runs this one ({shown}): it would never end",
            path,
            hint="a sub-workflow must not use the workflow it is part of",
        )


@check("invalid-sub-workflow")
def invalid_sub_workflow(ctx: Context) -> Iterator[Finding]:
    from regions_cli.workflow.api import check_document
    from regions_cli.workflow.load import load_file

    home = _home(ctx)
    outer = _VERIFYING.get()
    for name, resolved, path in _sub_workflows(ctx):
        sub = resolved.resolve()
        if sub == home or sub in outer or (home and _path_back(sub, home)):
            continue  # recursive-workflow says it
        token = _VERIFYING.set((*outer, *([home] if home else [])))
        try:
            errors = [f for f in check_document(load_file(resolved)) if f.is_error]
        finally:
            _VERIFYING.reset(token)
        if errors:
            first = errors[0]
            more = f" (and {plural(len(errors) - 1, 'more error')})" if len(errors) > 1 else ""
            yield ctx.finding(
                "invalid-sub-workflow",
                f"the sub-workflow of region '{name}' has errors: {first.location()}: "
                f"{first.message}{more}",
                path,
                hint=f"run `regions verify {resolved}` to see them all",
            )


@check("unknown-entry")
def unknown_entry(ctx: Context) -> Iterator[Finding]:
    from regions_cli.workflow.load import load_file

    for name, resolved, _ in _sub_workflows(ctx):
        entry = ctx.regions[name].get("entry")
        if not isinstance(entry, str):
            continue
        doc = load_file(resolved)
        regions = list(_mapping(doc.data and doc.data.get("regions")))
        if doc.data is not None and entry not in regions:
            yield ctx.finding(
                "unknown-entry",
                f"region '{name}': '{entry}' is not a region of {resolved.name}"
                f"{ctx.suggest(entry, regions)}",
                ("regions", name, "entry"),
                hint=f"its regions: {_names(regions)}",
            )


# --- tools -------------------------------------------------------------------------------------


def _tool_refs(ctx: Context) -> Iterator[tuple[str, str, PathT]]:
    """(region, tool name, path) of every name in a region's `tools` and a ToolRegion's
    `tool`."""
    for name, spec in ctx.regions.items():
        for i, tool in enumerate(_list(spec.get("tools"))):
            if isinstance(tool, str):
                yield name, tool, ("regions", name, "tools", i)
        if spec.get("type") == "ToolRegion" and isinstance(spec.get("tool"), str):
            yield name, spec["tool"], ("regions", name, "tool")


@check("unknown-tool")
def unknown_tool(ctx: Context) -> Iterator[Finding]:
    names = list(ctx.tools)
    for region, tool, path in _tool_refs(ctx):
        if tool not in ctx.tools:
            yield ctx.finding(
                "unknown-tool",
                f"region '{region}' uses unknown tool '{tool}'{ctx.suggest(tool, names)}",
                path,
                hint=f"tools defined: {_names(names)}"
                if names
                else "define the tool under a top-level `tools:`",
            )


@check("terminal-tool-not-offered")
def terminal_tool_not_offered(ctx: Context) -> Iterator[Finding]:
    for name, spec in ctx.regions.items():
        loop = _mapping(spec.get("tool_loop"))
        offered = [t for t in _list(spec.get("tools")) if isinstance(t, str)]
        if any("mcp" in _mapping(ctx.tools.get(t)) for t in offered):
            continue  # an MCP server's tool names are known once it runs: `regions tools`
        for i, tool in enumerate(_list(loop.get("terminal_tools"))):
            if isinstance(tool, str) and tool not in offered:
                yield ctx.finding(
                    "terminal-tool-not-offered",
                    f"region '{name}': terminal tool '{tool}' is not one of its tools"
                    f"{ctx.suggest(tool, offered)}",
                    ("regions", name, "tool_loop", "terminal_tools", i),
                    hint=f"its tools: {_names(offered)}; a terminal tool ends the step when the "
                    "model calls it, so the model must be offered it",
                )


def _region_tools_of(ctx: Context, region: str) -> Iterator[tuple[str, str, PathT]]:
    """(tool, region it asks, path) of every `region:` tool that `region` can call."""
    for owner, tool, path in _tool_refs(ctx):
        target = _mapping(ctx.tools.get(tool)).get("region")
        if owner == region and isinstance(target, str):
            yield tool, target, path


@check("self-tool")
def self_tool(ctx: Context) -> Iterator[Finding]:
    for name in ctx.regions:
        for tool, target, path in _region_tools_of(ctx, name):
            if target == name:
                yield ctx.finding(
                    "self-tool",
                    f"region '{name}' can call itself: its tool '{tool}' asks region '{name}', "
                    "which is busy with the step that calls it",
                    path,
                    hint="a region tool asks another region; give the work to a second region",
                )


@check("region-tool-cannot-answer")
def region_tool_cannot_answer(ctx: Context) -> Iterator[Finding]:
    for name, spec in ctx.tools.items():
        target = spec.get("region")
        rtype = ctx.region_type(target) if isinstance(target, str) else None
        if rtype is not None and "make_replies" not in METHODS[rtype]:
            yield ctx.finding(
                "region-tool-cannot-answer",
                f"tool '{name}' asks region '{target}', but a {rtype} does not answer requests "
                "(it has no make_replies)",
                ("tools", name, "region"),
                hint="a region tool needs a region that answers: Region, FeedForwardRegion, "
                "RAGRegion, RouterRegion, WorkflowRegion or ToolRegion",
            )


def _programs(ctx: Context) -> Iterator[tuple[str, str, PathT]]:
    """(tool, argv[0], path) of every command tool and stdio MCP server."""
    for name, spec in ctx.tools.items():
        for argv, path in (
            (spec.get("command"), ("tools", name, "command", 0)),
            (_mapping(spec.get("mcp")).get("command"), ("tools", name, "mcp", "command", 0)),
        ):
            argv = _list(argv)
            if argv and isinstance(argv[0], str) and argv[0]:
                yield name, argv[0], path


@check("command-not-found")
def command_not_found(ctx: Context) -> Iterator[Finding]:
    for name, program, path in _programs(ctx):
        if find_program(program, ctx.doc.base_dir) is not None:
            continue
        if "/" in program:
            resolved = ctx.resolve(program)
            problem = "is not executable" if resolved.is_file() else "does not exist"
            message = f"tool '{name}': the program '{program}' {problem} ({resolved})"
            hint = "a program with a '/' is relative to the workflow's folder (chmod +x it)"
        else:
            message = f"tool '{name}': the program '{program}' is not found on PATH"
            hint = "install it, or write its path (relative to the workflow's folder)"
        yield ctx.finding("command-not-found", message, path, hint=hint)


@check("tool-loop-without-tools")
def tool_loop_without_tools(ctx: Context) -> Iterator[Finding]:
    for name, spec in ctx.regions.items():
        if "tool_loop" in spec and not _list(spec.get("tools")):
            yield ctx.finding(
                "tool-loop-without-tools",
                f"region '{name}' has a tool_loop but no tools: the loop never runs",
                ("regions", name, "tool_loop"),
                key=True,
                hint="add `tools: [...]`, or remove `tool_loop:`",
            )


@check("unused-tool")
def unused_tool(ctx: Context) -> Iterator[Finding]:
    used = {tool for _, tool, _ in _tool_refs(ctx)}
    for name in ctx.tools:
        if name not in used:
            yield ctx.finding(
                "unused-tool",
                f"tool '{name}' is not used by any region",
                ("tools", name),
                key=True,
                hint=f"add '{name}' to a region's `tools:` (or a ToolRegion's `tool:`), or "
                "remove it",
            )


def run_checks(doc: Document) -> list[Finding]:
    """Every cross-reference finding for a parsed document (none when it has no data).

    A check that crashes is a bug; it becomes an ``internal-error`` finding rather than a
    traceback, and the other checks still run.
    """
    if doc.data is None:
        return []
    ctx = Context(doc)
    findings: list[Finding] = []
    for rule_id, fn in CHECKS.items():
        try:
            findings.extend(fn(ctx))
        except Exception as exc:  # a bug in a check must not hide the other findings
            message = f"check '{rule_id}' crashed: {type(exc).__name__}: {exc}"
            hint = "please report this with the workflow file"
            findings.append(doc.finding("internal-error", message, (0, 0), hint=hint))
    return findings
