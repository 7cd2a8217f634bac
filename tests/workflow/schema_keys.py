"""Which keys of a YAML snippet the workflow schema does not know (for the docs tests)."""

from __future__ import annotations

from typing import Any

from regions_cli.workflow.schema import schema

ROOT = schema()


def _resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """`node`, or what its local ``$ref`` points at."""
    while "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _subschema(node: dict[str, Any], key: str) -> dict[str, Any] | None:
    """The schema of `key` inside `node`: a property, a conditional branch's, or the map's."""
    node = _resolve(node, ROOT)
    if key in node.get("properties", {}):
        return node["properties"][key]  # type: ignore[no-any-return]
    for branch in ("then", "else"):
        if isinstance(node.get(branch), dict):
            found = _subschema(node[branch], key)
            if found is not None:
                return found
    extra = node.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def _items(node: dict[str, Any]) -> dict[str, Any]:
    node = _resolve(node, ROOT)
    for candidate in (node, node.get("then", {}), node.get("else", {})):
        if "items" in candidate:
            return candidate["items"]  # type: ignore[no-any-return]
    return node


def unknown_keys(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Dotted paths of every key in `value` that `schema` has no place for. ``params`` is not
    entered: it is passed through to the model as is; nor are the JSON Schemas of
    ``output_schema``, ``input_schema`` and a tool's ``parameters``, nor a scripted tool call's
    free-form ``arguments``."""
    unknown: list[str] = []
    if isinstance(value, dict):
        for key, child in value.items():
            sub = _subschema(schema, str(key))
            if sub is None:
                unknown.append(f"{where}.{key}")
            elif key not in ("params", "output_schema", "input_schema", "parameters", "arguments"):
                unknown.extend(unknown_keys(child, sub, f"{where}.{key}"))
    elif isinstance(value, list):
        for item in value:
            unknown.extend(unknown_keys(item, _items(schema), f"{where}[]"))
    return unknown
