"""Hypothesis throws arbitrary text, bytes and YAML-shaped documents at the whole verify
pipeline: it must always return findings, never raise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regions_cli.model import METHODS, REGION_TYPES, Workflow
from regions_cli.workflow.api import check_document
from regions_cli.workflow.convert import build_workflow
from regions_cli.workflow.findings import Finding
from regions_cli.workflow.graph import to_dot, to_mermaid
from regions_cli.workflow.load import load_bytes, load_text
from regions_cli.workflow.rules import RULES

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

YAML_TOKENS = st.sampled_from(
    [*"abcRAGegion._-: \n\t[]{},&*!|>'\"#%@`?$~01", "\n  ", ": ", "- ", "${X}", "<<: ", "&a ", "*a"]
)
YAML_TEXT = st.lists(YAML_TOKENS, max_size=80).map("".join)


def assert_sane(findings: list[Finding]) -> None:
    for f in findings:
        # A crashing check is caught and reported as internal-error: for the fuzzer, a crash.
        assert f.rule in RULES and f.rule != "internal-error", f.message
        assert f.severity in ("error", "warning")
        assert f.line >= 0 and f.col >= 0
        assert f.message


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes(data: bytes) -> None:
    assert_sane(check_document(load_bytes(data, env={})))


@FUZZ
@given(YAML_TEXT)
def test_yaml_looking_text(text: str) -> None:
    assert_sane(check_document(load_text(text, env={})))


@FUZZ
@given(st.text(max_size=200))
def test_arbitrary_unicode(text: str) -> None:
    assert_sane(check_document(load_text(text, env={})))


KEYS = st.sampled_from(
    [
        "version",
        "name",
        "regions",
        "plan",
        "llms",
        "rags",
        "embedders",
        "inject",
        "delivery",
        "defaults",
        "budget",
        "layout",
        "type",
        "task",
        "connections",
        "llm",
        "rag",
        "chains",
        "layer",
        "step",
        "to",
        "file",
        "documents",
        "chunk_size",
        "overlap",
        "A",
        "B",
        "A.make_replies",
        "Region",
        "RAGRegion",
        "backend",
        "reroute_to",
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 600),
    st.floats(allow_nan=False),
    KEYS,
    st.text(max_size=8),
)
DOCS = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(KEYS, children, max_size=5)
    ),
    max_leaves=30,
)


def _to_yaml(value: Any) -> str:
    import json

    return json.dumps(value)  # JSON is YAML; the structure is what matters here


@FUZZ
@given(st.dictionaries(KEYS, DOCS, max_size=8))
def test_structured_documents(doc: dict[str, Any]) -> None:
    assert_sane(check_document(load_text(_to_yaml(doc), env={})))


@FUZZ
@given(
    st.fixed_dictionaries(
        {"version": st.just(1), "name": st.just("f"), "regions": DOCS, "plan": DOCS},
        optional={"rags": DOCS, "llms": DOCS, "inject": DOCS, "delivery": DOCS},
    )
)
def test_nearly_valid_workflows(doc: dict[str, Any]) -> None:
    assert_sane(check_document(load_text(_to_yaml(doc), env={})))


def mostly(good: list[Any], bad: Any) -> st.SearchStrategy[Any]:
    """One of `good`, and now and then `bad` (so that about half the workflows are valid)."""
    return st.sampled_from([*good * 12, bad])


@st.composite
def workflows(draw: st.DrawFn) -> dict[str, Any]:
    """Workflows of the right shape, mostly valid: a stray name, method or type now and then."""
    names = draw(st.lists(st.sampled_from("ABCD"), min_size=1, max_size=4, unique=True))
    name = mostly(names, "ghost")
    regions: dict[str, Any] = {}
    for region in names:
        rtype = draw(mostly(list(REGION_TYPES), "Regoin"))
        spec: dict[str, Any] = {"type": rtype, "task": "t"}
        if rtype == "RAGRegion":
            spec["rag"] = draw(mostly(["facts"], "fact"))
        elif rtype == "ListenerRegion":
            spec = {"type": rtype, "taps": draw(st.lists(name, max_size=2, unique=True))}
        else:
            spec["connections"] = draw(st.lists(name, max_size=3, unique=True))
        regions[region] = spec

    @st.composite
    def step(draw: st.DrawFn) -> str:
        region = draw(name)
        offered = METHODS.get(regions.get(region, {}).get("type", ""), ("make_replies",))
        return f"{region}.{draw(mostly(list(offered), 'make_reply'))}"

    steps = st.lists(step(), min_size=1, max_size=3)
    layer = st.fixed_dictionaries(
        {"chains": st.dictionaries(st.sampled_from("xy"), steps, min_size=1)}
    )
    return {
        "version": 1,
        "name": "fuzz",
        "rags": {"facts": {"path": "f.db", "chunk_size": draw(mostly([512], 40)), "overlap": 40}},
        "embedders": {"default": {"backend": "hash"}},
        "regions": regions,
        "inject": draw(st.lists(st.fixed_dictionaries({"to": name, "content": st.just("hi")}))),
        "plan": draw(st.lists(layer, min_size=1, max_size=3)),
    }


def built_if_valid(doc: dict[str, Any]) -> Workflow | None:
    """`doc` verified (the findings sane) and, if it has no errors, built and drawn."""
    loaded = load_text(_to_yaml(doc), env={})
    findings = check_document(loaded)
    assert_sane(findings)
    if any(f.is_error for f in findings):
        return None
    assert loaded.data is not None
    workflow = build_workflow(loaded.data, base_dir=Path("."))
    assert set(workflow.regions) == set(doc["regions"])
    assert to_dot(workflow).endswith("}\n")
    return workflow


@FUZZ
@given(workflows())
def test_a_workflow_without_errors_builds_and_draws(doc: dict[str, Any]) -> None:
    workflow = built_if_valid(doc)
    if workflow is not None:
        assert to_mermaid(workflow).startswith("flowchart")


@st.composite
def machines(draw: st.DrawFn) -> dict[str, Any]:
    """The workflows above as state machines: random transitions, bounds and conditions, now
    and then an unknown state, an unbounded cycle or a stray condition."""
    doc = draw(workflows())
    layers = doc.pop("plan")
    names = draw(st.lists(st.sampled_from(["s", "t", "u"]), min_size=1, max_size=3, unique=True))
    target = mostly([*names, "end"], "ghost")
    regions = list(doc["regions"])
    condition = st.one_of(
        st.none(),
        st.fixed_dictionaries({"region": st.sampled_from(regions), "says": st.just("x")}),
        st.fixed_dictionaries({"output": mostly(["ok"], "(")}),
        st.fixed_dictionaries(
            {"region": st.sampled_from(regions), "field": st.just("a.0"), "equals": st.just(1)}
        ),
        st.fixed_dictionaries({"not": st.fixed_dictionaries({"output": st.just("y")})}),
    )
    states: dict[str, Any] = {}
    for name in names:
        state: dict[str, Any] = {"plan": layers}
        transitions = draw(st.lists(st.tuples(target, condition), max_size=3))
        state["next"] = [{"to": to, **({"when": when} if when else {})} for to, when in transitions]
        if draw(st.booleans()):
            state["max_visits"] = draw(st.integers(1, 3))
            state["on_exhausted"] = draw(mostly(["fail", "end", *names], "ghost"))
        states[name] = state
    doc["states"] = states
    if draw(st.booleans()):
        doc["start"] = draw(mostly(names, "ghost"))
    return doc


@FUZZ
@given(machines())
def test_a_machine_without_errors_builds_and_draws(doc: dict[str, Any]) -> None:
    workflow = built_if_valid(doc)
    if workflow is not None:
        assert set(workflow.states) == set(doc["states"])
        assert to_mermaid(workflow).startswith("stateDiagram-v2")
