"""`regions verify` on state machines, waits, conditions, routers and sub-workflows: the schema's
forms and each control-flow rule, with the exact position and message."""

from __future__ import annotations

from pathlib import Path

import pytest
from workflow_helpers import RULE_FIXTURES, VALID_FIXTURES

from regions_cli.workflow.api import load_workflow, verify, verify_text

HEAD = (
    "version: 1\nname: t\nregions:\n  A: {type: Region, task: Ask.}\n"
    "inject: [{to: A, content: hi}]\n"
)
STATES = "states:\n  one:\n    plan:\n      - chains: {a: [A.make_replies]}\n"


def found(text: str) -> list[tuple[str, int, int, str]]:
    return [(f.rule, f.line, f.col, f.message) for f in verify_text(text)]


def test_a_machine_verifies_and_builds() -> None:
    workflow = load_workflow(VALID_FIXTURES / "machine.yaml")
    assert list(workflow.states) == ["draft", "review", "ask"]
    assert workflow.start == "draft"
    assert [layer.label for layer in workflow.plan] == [
        "write",
        "layer-1",
        "wait-Writer",
        "layer-3",
    ]
    assert workflow.budget.max_seconds == 60 and workflow.budget.max_transitions == 100


def test_plan_and_states_together_are_refused_at_plan() -> None:
    text = HEAD + STATES + "plan:\n  - chains: {a: [A.make_replies]}\n"
    assert found(text) == [
        (
            "invalid-value",
            10,
            1,
            "a workflow has `plan:` or `states:`, not both (a state has its own plan)",
        )
    ]


def test_neither_plan_nor_states_asks_for_plan() -> None:
    assert found(HEAD)[0] == ("missing-key", 1, 1, "the workflow is missing required key 'plan'")


def test_start_needs_states() -> None:
    text = HEAD + "plan:\n  - chains: {a: [A.make_replies]}\nstart: one\n"
    assert found(text) == [("missing-key", 8, 1, "'start' in the workflow needs 'states'")]


def test_end_is_no_state_name() -> None:
    text = HEAD + STATES.replace("  one:", "  end:")
    assert found(text) == [
        (
            "invalid-value",
            7,
            3,
            "key 'end' in 'states': 'end' is not a state's name: a transition to `end` finishes "
            "the run",
        )
    ]


def test_a_wait_item_has_no_chains() -> None:
    text = HEAD + STATES + "      - {wait: {for: A}, chains: {a: [A.make_replies]}}\n"
    assert found(text) == [
        (
            "invalid-value",
            10,
            26,
            "key 'chains' in layer 2 of state 'one': a wait item has `wait:` and an optional "
            "`layer:` label, no `chains:`",
        )
    ]


def test_wait_items_are_allowed_in_a_plain_plan() -> None:
    text = HEAD + "plan:\n  - wait: {for: A, prompt: Go on?}\n  - chains: {a: [A.make_replies]}\n"
    assert found(text) == []


@pytest.mark.parametrize(
    ("when", "col"),
    [
        ("{region: A}", 9),
        ("{region: A, says: x, output: y}", 9),
        ("{region: A, field: f, equals: 1, in: [1]}", 9),
        ("{field: f, equals: 1}", 9),
        ("{all: []}", 21),
    ],
)
def test_malformed_conditions_are_refused(when: str, col: int) -> None:
    text = HEAD + STATES + f"    next:\n      - when: {when}\n        to: end\n"
    (finding,) = [f for f in found(text) if f[0] == "invalid-value"]
    assert finding[1:3] == (11, col)


def test_conditions_nest() -> None:
    when = "{all: [{any: [{region: A, says: x}, {output: y}]}, {not: {region: A, says: z}}]}"
    assert found(HEAD + STATES + f"    next:\n      - when: {when}\n        to: end\n") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("    max_visits: 0\n", "'max_visits' in state 'one' must be >= 1; got 0"),
        ("budget: {max_seconds: 0}\n", "'max_seconds' in 'budget' must be > 0; got 0"),
        ("budget: {max_transitions: 0}\n", "'max_transitions' in 'budget' must be >= 1; got 0"),
    ],
)
def test_bounds(text: str, message: str) -> None:
    assert [f[3] for f in found(HEAD + STATES + text)] == [message]


def test_region_keys_per_type() -> None:
    text = (
        "version: 1\nname: t\nregions:\n"
        "  A: {type: Region, task: Ask., routes: []}\n"
        "  R: {type: RouterRegion}\n"
        "  W: {type: WorkflowRegion, output_schema: {}}\n"
        "plan:\n  - chains: {a: [A.make_questions, R.make_replies, W.make_replies]}\n"
    )
    assert [f[:3] for f in found(text) if f[0] != "unreachable-replies"] == [
        ("key-not-for-type", 4, 33),
        ("missing-key", 5, 3),
        ("missing-key", 6, 3),
        ("key-not-for-type", 6, 29),
    ]


def _messages(name: str) -> list[tuple[int, int, str]]:
    return [(f.line, f.col, f.message) for f in verify(RULE_FIXTURES / name)]


def test_unknown_states_suggest_the_closest() -> None:
    assert _messages("unknown-state.yaml") == [
        (13, 19, "state 'draft' on_exhausted goes to unknown state 'nowhere'"),
        (17, 13, "state 'draft' goes to unknown state 'reveiw'"),
        (19, 8, "`start` names unknown state 'drat' (did you mean 'draft'?)"),
    ]


def test_unbounded_cycles_are_named_where_they_close() -> None:
    assert _messages("unbounded-cycle.yaml") == [
        (20, 13, "draft -> review -> draft has no state with max_visits"),
        (27, 13, "polish -> polish has no state with max_visits"),
    ]


def test_a_bounded_state_left_by_on_exhausted_does_not_bound_a_cycle() -> None:
    text = HEAD + (
        "states:\n"
        "  a:\n    max_visits: 2\n    on_exhausted: b\n"
        "    plan: [{chains: {a: [A.make_replies]}}]\n    next: [{to: a}]\n"
        "  b:\n    plan: [{chains: {a: [A.make_replies]}}]\n    next: [{to: a}]\n"
    )
    assert found(text) == [
        (
            "unbounded-cycle",
            14,
            17,
            "a -> b -> a can go round forever: a leaves it through on_exhausted, which runs on "
            "every round once its visits are spent",
        )
    ]


def test_bounded_loops_verify() -> None:
    text = HEAD + (
        "states:\n"
        "  a:\n    plan: [{chains: {a: [A.make_replies]}}]\n    next: [{to: b}]\n"
        "  b:\n    max_visits: 3\n    on_exhausted: end\n"
        "    plan: [{chains: {a: [A.make_replies]}}]\n    next: [{to: a}, {to: b}]\n"
    )
    assert found(text) == []


def test_exhausted_to_itself() -> None:
    assert _messages("exhausted-to-itself.yaml") == [
        (11, 19, "state 'loop' goes to itself when its visits are spent: it would never stop")
    ]


def test_unreachable_state() -> None:
    assert _messages("unreachable-state.yaml") == [
        (12, 3, "state 'orphan' is never entered: no transition from 'first' leads to it")
    ]


def test_fields_need_a_schema_that_produces_them() -> None:
    assert _messages("field-without-schema.yaml") == [
        (
            13,
            34,
            "a condition tests field 'verdict' of 'A', which has no output_schema: its replies "
            "are text, not JSON",
        )
    ]
    assert _messages("unknown-field.yaml") == [
        (24, 34, "'A' cannot produce field 'verdcit': its output_schema has no 'verdcit'"),
        (
            26,
            48,
            "'A' cannot produce field 'scores.first': its output_schema has no 'first' under "
            "'scores'",
        ),
        (
            28,
            48,
            "'A' cannot produce field 'verdict.x': its output_schema has no 'x' under 'verdict'",
        ),
    ]


def test_schemas_are_checked_as_json_schemas() -> None:
    assert _messages("invalid-schema.yaml") == [
        (
            9,
            64,
            "the output_schema of region 'A' is not a valid JSON Schema: 'strng' is not valid "
            "under any of the given schemas",
        ),
        (
            10,
            44,
            "the input_schema of region 'A' is not a valid JSON Schema: 'none' is not of type "
            "'number'",
        ),
    ]


def test_regexes_compile() -> None:
    assert _messages("bad-regex.yaml") == [
        (
            12,
            24,
            "'(unclosed' is not a valid regex: missing ), unterminated subpattern at position 0",
        ),
        (21, 41, "'[a-' is not a valid regex: unterminated character set at position 0"),
        (21, 58, "'*x' is not a valid regex: nothing to repeat at position 0"),
    ]


def test_routes_go_to_connections() -> None:
    assert _messages("route-not-connected.yaml") == [
        (13, 33, "router 'R' routes to 'B', which is not one of its connections"),
        (14, 14, "router 'R' routes to 'C', which is not one of its connections"),
    ]


def test_unknown_regions_in_waits_conditions_and_routes() -> None:
    text = (
        "version: 1\nname: t\nregions:\n"
        "  A: {type: Region, task: Ask.}\n"
        "  R: {type: RouterRegion, connections: [A, Ghost], routes: [{when: {says: x}, to: Ax}]}\n"
        "inject: [{to: R, content: hi}]\n"
        "states:\n  one:\n    plan:\n"
        "      - wait: {for: Nobody}\n"
        "      - chains: {r: [R.make_replies], a: [A.make_replies]}\n"
        "    next:\n      - {when: {region: B, says: x}, to: end}\n"
    )
    assert [f[1:] for f in found(text) if f[0] == "unknown-region"] == [
        (5, 44, "region 'R' connects to unknown region 'Ghost'"),
        (5, 83, "router 'R' routes to unknown region 'Ax' (did you mean 'A'?)"),
        (10, 21, "a wait is for unknown region 'Nobody'"),
        (13, 25, "a condition tests unknown region 'B'"),
    ]


def test_sub_workflows_are_verified_with_their_own_positions() -> None:
    (finding,) = verify(RULE_FIXTURES / "invalid-sub-workflow.yaml")
    broken = RULE_FIXTURES / "sub" / "broken.yaml"
    assert (finding.line, finding.col) == (5, 39)
    assert finding.message == (
        f"the sub-workflow of region 'S' has errors: {broken}:6:24: Judge (Region) has no "
        "method 'make_reply' (did you mean 'make_replies'?)"
    )


def test_recursion_is_refused_directly_and_through_another_file() -> None:
    assert _messages("recursive-workflow.yaml") == [
        (
            6,
            42,
            "region 'Self' runs a workflow that runs this one (recursive-workflow.yaml -> "
            "recursive-workflow.yaml): it would never end",
        ),
        (
            7,
            43,
            "region 'Other' runs a workflow that runs this one (recursive-workflow.yaml -> "
            "back.yaml -> recursive-workflow.yaml): it would never end",
        ),
    ]
    # The other file of the loop reports it too, from its side.
    (back,) = [f for f in verify(RULE_FIXTURES / "sub" / "back.yaml") if f.is_error]
    assert (
        back.rule == "recursive-workflow" and "back.yaml -> recursive-workflow.yaml" in back.message
    )


def test_a_missing_sub_workflow_and_an_unknown_entry(tmp_path: Path) -> None:
    assert _messages("unknown-entry.yaml") == [
        (8, 12, "region 'S': 'Judg' is not a region of ok.yaml (did you mean 'Judge'?)")
    ]
    path = tmp_path / "w.yaml"
    path.write_text(
        "version: 1\nname: t\nregions:\n  S: {type: WorkflowRegion, workflow: gone.yaml}\n"
        "inject: [{to: S, content: hi}]\nplan:\n  - chains: {s: [S.make_replies]}\n"
    )
    (finding,) = verify(path)
    assert (finding.rule, finding.line, finding.col) == ("missing-file", 4, 39)
    assert finding.message == "region 'S': file 'gone.yaml' does not exist"
