"""Every rule id has a fixture that triggers it at a known line and column, and the valid
fixtures (which use every key of the format) trigger nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from workflow_helpers import FIXTURE_ENV, RULE_FIXTURES, VALID_FIXTURES, expectations

from regions_cli.workflow import rules
from regions_cli.workflow.api import verify, verify_text
from regions_cli.workflow.findings import Finding

RULE_FILES = sorted(RULE_FIXTURES.glob("*.yaml"))
VALID_FILES = sorted(VALID_FIXTURES.glob("*.yaml"))
# Rules whose input cannot be a checked-in fixture; each has its own test below.
NOT_FIXTURES = {"io-error", "file-too-large", "internal-error"}


def test_every_rule_has_a_negative_fixture() -> None:
    covered = {path.name.split("--")[0].removesuffix(".yaml") for path in RULE_FILES}
    assert set(rules.RULES) - NOT_FIXTURES <= covered
    assert covered <= set(rules.RULES), "a fixture is named after no rule"


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.stem)
def test_rule_fixture(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} announces no finding"
    assert path.stem.split("--")[0] in {rule for rule, _, _ in expected}
    findings = verify(path, env=FIXTURE_ENV)
    got = {(f.rule, f.line, f.col) for f in findings}
    assert got == expected, "\n".join(f.location() + " " + f.message for f in findings)
    for finding in findings:
        assert finding.severity == rules.RULES[finding.rule].severity
        assert finding.message and "\n" not in finding.message


@pytest.mark.parametrize("path", VALID_FILES, ids=lambda p: p.stem)
def test_valid_fixture_has_no_findings(path: Path) -> None:
    assert verify(path, env=FIXTURE_ENV) == []


def test_every_check_is_registered_under_a_known_rule() -> None:
    assert set(rules.CHECKS) <= set(rules.RULES)
    for rule_id, info in rules.RULES.items():
        assert info.severity in ("error", "warning"), rule_id
        assert info.summary.endswith("."), rule_id
        assert rule_id == rule_id.lower() and " " not in rule_id


def test_findings_carry_a_hint_for_cross_reference_rules() -> None:
    findings = [f for path in RULE_FILES for f in verify(path, env=FIXTURE_ENV)]
    for finding in findings:
        if finding.rule in rules.CHECKS:
            assert finding.hint, f"{finding.rule} has no fix hint"


def test_did_you_mean_suggests_the_closest_name() -> None:
    by_rule = {f.rule: f for f in verify(RULE_FIXTURES / "unknown-llm.yaml", env=FIXTURE_ENV)}
    assert "did you mean 'remot'?" in by_rule["unknown-llm"].message
    methods = verify(RULE_FIXTURES / "unknown-method.yaml", env=FIXTURE_ENV)
    assert any("did you mean 'make_replies'?" in f.message for f in methods)
    keys = verify(RULE_FIXTURES / "unknown-key.yaml", env=FIXTURE_ENV)
    assert keys[0].message == "unknown key 'conections' in region 'A' (did you mean 'connections'?)"


def test_unset_variable_is_an_error_with_strict() -> None:
    path = RULE_FIXTURES / "unset-variable.yaml"
    (loose,) = verify(path, env={})
    (strict,) = verify(path, env={}, strict=True)
    assert (loose.severity, strict.severity) == ("warning", "error")
    assert (loose.line, loose.col) == (strict.line, strict.col)


def test_implied_default_llm_only_without_an_llms_block(tmp_path: Path) -> None:
    text = (VALID_FIXTURES / "implied-default.yaml").read_text()
    assert verify(VALID_FIXTURES / "implied-default.yaml") == []
    with_block = tmp_path / "w.yaml"
    with_block.write_text(text.replace("regions:", "llms:\n  other: {backend: local}\nregions:"))
    assert {f.rule for f in verify(with_block)} == {"missing-default-llm"}


def test_a_crashing_check_becomes_an_internal_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(ctx: rules.Context) -> list[Finding]:
        raise ZeroDivisionError("boom")

    monkeypatch.setitem(rules.CHECKS, "self-connection", broken)
    findings = verify(VALID_FIXTURES / "full.yaml", env=FIXTURE_ENV)
    assert [(f.rule, f.severity) for f in findings] == [("internal-error", "error")]
    assert "self-connection" in findings[0].message and "boom" in findings[0].message


def test_findings_span_the_whole_name_when_written_on_one_line() -> None:
    findings = verify(RULE_FIXTURES / "unknown-region.yaml", env=FIXTURE_ENV)
    text = (RULE_FIXTURES / "unknown-region.yaml").read_text().splitlines()
    for f in findings:
        assert f.end_line == f.line and f.end_col is not None
        name = f.message.rsplit("'", 2)[1]
        assert text[f.line - 1][f.col - 1 : f.end_col - 1] == name
    quoted = verify(RULE_FIXTURES / "unknown-method.yaml", env=FIXTURE_ENV)
    broadcast = next(f for f in quoted if "'broadcast'" in f.message)
    assert (broadcast.end_col or 0) - broadcast.col == len("broadcast")
    (bad,) = verify(RULE_FIXTURES / "unknown-key.yaml", env=FIXTURE_ENV)
    assert (bad.end_line, bad.end_col) == (bad.line, bad.col + len("conections"))


# One small edit turns each near miss of valid/near-misses.yaml into the finding it sits beside:
# together with that file verifying clean, a positive and a negative case per rule.
NEAR_MISS_EDITS = [
    ("version: 1  ", "version: 2  ", "unsupported-version"),
    ("overlap: 99", "overlap: 100", "overlap-too-large"),
    ("Costs $$5: $question", "Costs 5$: $qestion", "bad-prompt-template"),
    ("embedder: words", "embedder: word", "unknown-embedder"),
    ("rag: facts", "rag: fact", "unknown-rag"),
    ("data/facts.txt", "data/fact.txt", "missing-file"),
    (
        "    task: Take what cannot be delivered.\n    llm: main\n",
        "    task: T.\n",
        "missing-default-llm",
    ),
    ("    embedder: words", "    # embedder: words", "missing-default-embedder"),
    ("write: [Writer.make_replies]", "write: [Facts.make_replies]", "region-in-two-chains"),
    ("    type: ListenerRegion", "    type: BroadcastRegion", "unused-region"),
    ("reroute_to: Spare}", "reroute_to: Asker}", "unreachable-replies"),
    (
        "{undeliverable: reroute, reroute_to: Spare}",
        "{undeliverable: reroute}",
        "missing-reroute-target",
    ),
    ("layer: layer-1 ", "layer: layer-0 ", "duplicate-layer-label"),
    ("${WHO:-nobody}", "${WHO}", "unset-variable"),
    ("$${PRICE}", "${PRICE", "bad-interpolation"),
    ("    threshold: 1 ", "    timeout: 1 ", "unknown-key"),
    ("connections: [Writer]", "connections: [Writer, Relay]", "self-connection"),
    ("taps: [Asker]", "taps: [Askr]", "unknown-region"),
    ("Relay.broadcast]", "Relay.make_replies]", "unknown-method"),
    (
        "    llm: main                                # missing",
        "    llm: mian  # missing",
        "unknown-llm",
    ),
    ("ask: [Asker.make_questions, Relay.broadcast]", "ask: []", "empty-chain"),
    ("verify_tls: true}", "verify_tls: false}", "tls-verification-off"),
    ("env: [WHO]\n", "env: []\n", "variable-outside-secrets"),
    ("{file: data/facts.txt}", "{file: ../near-misses/data/facts.txt}", "path-outside-workflow"),
    ("http://127.0.0.1:8080/v1", "http://models.example.org:8080/v1", "credentials-over-http"),
    (
        "      write: [Writer.make_replies]\n",
        "      write: [Writer.make_replies]\n      asker: [Asker.make_questions]\n",
        "cross-chain-message",
    ),
]


# The same for the control-flow rules, on valid/machine.yaml and the flow/ fixtures (routers
# and sub-workflows, which stay out of valid/ until the engine builds them).
FLOW_FIXTURES = VALID_FIXTURES.parent / "flow"
FLOW_EDITS = (
    [
        (VALID_FIXTURES / "machine.yaml", old, new, rule)
        for old, new, rule in [
            ("      - to: review ", "      - to: reveiw ", "unknown-state"),
            ("    max_visits: 3 ", "    # max_visits: 3 ", "unbounded-cycle"),
            ("    on_exhausted: ask ", "    on_exhausted: review ", "exhausted-to-itself"),
            ("    on_exhausted: ask ", "    on_exhausted: end ", "unreachable-state"),
            ("field: scores.0,", "field: scores.first,", "unknown-field"),
            ("    output_schema: ", "    output_schema_: ", "field-without-schema"),
            ("enum: [ok, revise]", "enum: ok", "invalid-schema"),
            ('says: "(?i)revise"', 'says: "(?i)revise("', "bad-regex"),
            ("{for: Writer,", "{for: Writr,", "unknown-region"),
        ]
    ]
    + [
        (FLOW_FIXTURES / "router.yaml", old, new, rule)
        for old, new, rule in [
            ("connections: [Billing, Support]", "connections: [Billing]", "route-not-connected"),
            ("    llm: default ", "    llm: defualt ", "unknown-llm"),
            ("input_schema: {type: string}", "input_schema: {type: strin}", "invalid-schema"),
        ]
    ]
    + [
        (FLOW_FIXTURES / "parent.yaml", old, new, rule)
        for old, new, rule in [
            ("workflow: sub/child.yaml", "workflow: sub/chld.yaml", "missing-file"),
            ("workflow: sub/child.yaml", "workflow: parent.yaml", "recursive-workflow"),
            (
                "workflow: sub/child.yaml",
                "workflow: ../rules/sub/broken.yaml",
                "invalid-sub-workflow",
            ),
            ("entry: Judge ", "entry: Jduge ", "unknown-entry"),
        ]
    ]
)


def test_near_misses_cover_every_cross_reference_rule() -> None:
    # An empty plan or layer has no near miss worth writing: every valid file is its positive.
    covered = {rule for *_, rule in NEAR_MISS_EDITS} | {rule for *_, rule in FLOW_EDITS}
    assert set(rules.CHECKS) - covered == {"empty-plan", "empty-layer"}


@pytest.mark.parametrize("path", sorted(FLOW_FIXTURES.glob("*.yaml")), ids=lambda p: p.stem)
def test_flow_fixture_has_no_findings(path: Path) -> None:
    assert verify(path) == []


@pytest.mark.parametrize(
    ("source", "old", "new", "rule"), FLOW_EDITS, ids=[f"{s.stem}-{r}" for s, _, _, r in FLOW_EDITS]
)
def test_flow_near_misses_turn_into_their_finding(
    tmp_path: Path, source: Path, old: str, new: str, rule: str
) -> None:
    text = source.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    shutil.copytree(source.parent, tmp_path / source.parent.name)
    edited = tmp_path / source.parent.name / source.name
    edited.write_text(text.replace(old, new), encoding="utf-8")
    shutil.copytree(source.parent.parent / "rules" / "sub", tmp_path / "rules" / "sub")
    found = {f.rule for f in verify(edited, env=FIXTURE_ENV)}
    assert rule in found


@pytest.mark.parametrize(
    ("old", "new", "rule"), NEAR_MISS_EDITS, ids=[r for *_, r in NEAR_MISS_EDITS]
)
def test_near_misses_turn_into_their_finding(tmp_path: Path, old: str, new: str, rule: str) -> None:
    source = VALID_FIXTURES / "near-misses.yaml"
    text = source.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    shutil.copytree(source.parent / "data", tmp_path / "data")
    edited = tmp_path / "near-misses.yaml"
    edited.write_text(text.replace(old, new), encoding="utf-8")
    found = {f.rule for f in verify(edited, env=FIXTURE_ENV)}
    assert rule in found  # (an edit may have knock-on findings: a region no longer used...)


def test_did_you_mean_has_a_budget_per_file() -> None:
    # n unknown names among n regions: n * n comparisons without a budget (minutes for n in the
    # thousands). The first suggestions are still made; then the budget is spent.
    n = 2 * int(rules.SUGGESTION_BUDGET**0.5)
    lines = ["version: 1", "name: many", "regions:"]
    lines += [f"  Region{i}: {{type: Region, task: t, connections: [Regoin{i}]}}" for i in range(n)]
    lines += [
        "plan:",
        "  - chains:",
        f"      c: [{', '.join(f'Region{i}.make_questions' for i in range(n))}]",
    ]
    findings = verify_text("\n".join(lines) + "\n")
    assert [f.rule for f in findings] == ["unknown-region"] * n
    suggested = [f for f in findings if "did you mean" in f.message]
    assert "(did you mean 'Region0'?)" in findings[0].message
    assert len(suggested) == rules.SUGGESTION_BUDGET // n
