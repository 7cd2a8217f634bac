"""Cross-reference checks on a workflow, one function per rule id.

`RULES` is the registry of every rule id `regions verify` can report, including those of the
loader (`workflow.load`) and the schema layer (`workflow.schema`): id -> (severity, summary).
The ids are stable: docs, the GUI and users' CI configurations refer to them.
"""

from __future__ import annotations

from typing import NamedTuple


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
        "warning", "A `${VAR}` names an unset environment variable (an error with --strict)."
    ),
    # --- the JSON Schema (workflow.schema) ---
    "unknown-key": RuleInfo("error", "A key the format does not define (often a typo)."),
    "key-not-for-type": RuleInfo(
        "error", "A key that does not apply to this region type or backend."
    ),
    "missing-key": RuleInfo("error", "A required key is missing."),
    "wrong-type": RuleInfo("error", "A value has the wrong type."),
    "invalid-value": RuleInfo("error", "A value is outside the allowed set, pattern or range."),
    # --- cross-references (this module) ---
    "unsupported-version": RuleInfo("error", "`version` is not a supported format version."),
    "unknown-region": RuleInfo(
        "error", "A connection, step, inject, tap or reroute target names no region."
    ),
    "unknown-method": RuleInfo("error", "A step calls a method the region's type does not offer."),
    "region-in-two-chains": RuleInfo("error", "A region appears in two chains of one layer."),
    "unknown-llm": RuleInfo("error", "A region names an LLM that `llms:` does not define."),
    "unknown-rag": RuleInfo("error", "A RAGRegion names a store that `rags:` does not define."),
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
    "missing-file": RuleInfo("error", "A document, inject or cassette file does not exist."),
    "empty-plan": RuleInfo("error", "The plan has no layers."),
    "empty-layer": RuleInfo("error", "A layer has no chains."),
    "empty-chain": RuleInfo("error", "A chain has no steps."),
    "duplicate-layer-label": RuleInfo("error", "Two layers have the same label."),
    "missing-reroute-target": RuleInfo(
        "error", "`delivery.undeliverable: reroute` without `reroute_to`."
    ),
    "unused-region": RuleInfo("warning", "A region no plan step uses."),
    "self-connection": RuleInfo("warning", "A region is connected to itself."),
    "unreachable-replies": RuleInfo(
        "warning", "`make_replies` on a region that nothing can send a request to."
    ),
    "internal-error": RuleInfo("error", "A check crashed: a bug in regions (please report it)."),
}
