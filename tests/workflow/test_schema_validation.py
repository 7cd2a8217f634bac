"""The JSON Schema: its own quality (descriptions, typo-catching) and how its errors are mapped
to positions and messages."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML
from schema_keys import unknown_keys
from workflow_helpers import VALID_FIXTURES

from regions_cli import model
from regions_cli.workflow.api import verify_text
from regions_cli.workflow.schema import schema, schema_text

ROOT = Path(__file__).resolve().parents[2]


def walk_schemas(node: Any, path: str = "#") -> Any:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from walk_schemas(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk_schemas(value, f"{path}/{i}")


def test_schema_is_valid_2020_12() -> None:
    Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_property_has_a_description() -> None:
    missing = [
        f"{path}/{name}"
        for path, node in walk_schemas(schema())
        for name, prop in (node.get("properties") or {}).items()
        if not path.endswith("/if") and "/if/" not in path and "description" not in prop
    ]
    assert missing == []


def test_objects_reject_unknown_keys() -> None:
    # Every object with named properties closes itself, except the pass-through `params`.
    open_objects = [
        path
        for path, node in walk_schemas(schema())
        if "properties" in node
        and "/if" not in path
        and node.get("additionalProperties") is not False
    ]
    assert open_objects == []


def test_published_schema_is_the_packaged_one() -> None:
    published = ROOT / "schemas" / "workflow.schema.json"
    assert published.is_symlink()
    assert os.readlink(published) == "../regions_cli/workflow/workflow.schema.json"
    assert published.read_text() == schema_text()


def test_enums_match_the_model() -> None:
    region = schema()["properties"]["regions"]["additionalProperties"]
    assert tuple(region["properties"]["type"]["enum"]) == model.REGION_TYPES


def _doc_examples() -> list[dict[str, Any]]:
    """The YAML blocks of the format page that are workflow documents (or parts of one)."""
    text = (ROOT / "docs" / "workflow-format.md").read_text()
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = True  # the page lists alternative backends' keys side by side
    blocks = [part.split("```", 1)[0] for part in text.split("```yaml\n")[1:]]
    loaded = [yaml.load(block) for block in blocks]
    return [doc for doc in loaded if isinstance(doc, dict)]


def test_every_key_of_the_format_page_is_in_the_schema() -> None:
    examples = _doc_examples()
    for example in examples:
        assert unknown_keys(example, schema()) == []
    shown = {key for example in examples for key in example}
    assert {"llms", "embedders", "rags", "regions", "inject", "delivery", "defaults"} <= shown


def errors(text: str) -> list[tuple[str, int, int, str]]:
    return [(f.rule, f.line, f.col, f.message) for f in verify_text(text, base_dir=VALID_FIXTURES)]


HEAD = "version: 1\nname: t\n"
ONE_REGION = "regions:\n  A:\n    type: Region\n    task: t\n"
PLAN = "plan:\n  - chains: {main: [A.make_questions]}\n"


def test_missing_top_level_keys_are_named() -> None:
    found = errors("version: 1\n")
    assert [f[0] for f in found] == ["missing-key"] * 3
    assert {f[3] for f in found} == {
        "the workflow is missing required key 'name'",
        "the workflow is missing required key 'regions'",
        "the workflow is missing required key 'plan'",
    }


def test_unknown_top_level_key_suggests_the_right_one() -> None:
    (found,) = errors(HEAD + ONE_REGION + PLAN + "budgets: {max_calls: 3}\n")
    assert found == (
        "unknown-key",
        9,
        1,
        "unknown key 'budgets' in the workflow (did you mean 'budget'?)",
    )


def test_key_of_another_backend_is_named_as_such() -> None:
    text = HEAD + "llms:\n  default: {backend: openai, base_url: 'http://x', cassette: c}\n"
    (found,) = errors(text + ONE_REGION + PLAN)
    assert found[:3] == ("key-not-for-type", 4, text.splitlines()[3].index("cassette") + 1)
    assert found[3] == "'cassette' does not apply to backend openai in llm 'default'"


def test_type_range_and_pattern_messages() -> None:
    text = (
        HEAD
        + "rags:\n  r:\n    path: r.db\n    chunk_size: 0\n    max_results: many\n"
        + ONE_REGION
        + "plan:\n  - chains: {main: [A.make_questions, A make_replies]}\n"
    )
    found = errors(text)
    assert [f[1:3] for f in found] == [(6, 17), (7, 18), (13, 39)]
    messages = [f[3] for f in found]
    assert "'chunk_size' in rag 'r' must be >= 1; got 0" in messages
    assert "'max_results' in rag 'r' must be an integer, not a string" in messages
    assert (
        "step 2 of chain 'main' in layer 1 must be written Region.method; got 'A make_replies'"
        in messages
    )


def test_exactly_one_of_file_or_text() -> None:
    text = HEAD + "rags:\n  r:\n    path: r.db\n    documents:\n      - {actors: [x]}\n"
    found = errors(text + ONE_REGION + PLAN)
    assert found == [
        (
            "invalid-value",
            7,
            9,
            "document 1 of rag 'r': a document needs exactly one of 'file' or 'text'",
        )
    ]


def test_invalid_value_from_unset_variable_is_not_reported_twice() -> None:
    text = HEAD + "llms:\n  default: {backend: openai, base_url: '${REGIONS_TEST_NO_URL}'}\n"
    found = verify_text(text + ONE_REGION + PLAN, env={})
    assert [f.rule for f in found] == ["unset-variable"]


def test_secrets_never_appear_in_messages() -> None:
    text = (
        HEAD
        + "llms:\n  default: {backend: openai, base_url: 'http://x',"
        + " api_key: '${K}', api: '${K}'}\n"
    )
    found = verify_text(text + ONE_REGION + PLAN, env={"K": "sk-SECRET"})
    assert sorted(f.rule for f in found) == [
        "credentials-over-http",
        "invalid-value",
        "variable-outside-secrets",  # `api` is no place for a secret
    ]
    assert "sk-SECRET" not in json.dumps([f.to_dict() for f in found])
    assert "${K}" in next(f for f in found if f.rule == "invalid-value").message


@pytest.mark.parametrize("block", ["llms", "embedders", "rags", "inject", "delivery", "layout"])
def test_optional_blocks_may_be_null(block: str) -> None:
    assert errors(HEAD + f"{block}:\n" + ONE_REGION + PLAN) == []
