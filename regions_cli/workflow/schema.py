"""JSON Schema validation of a workflow, with every error mapped to a line and column.

The schema (``workflow.schema.json`` next to this module, published as
``schemas/workflow.schema.json``) is JSON Schema 2020-12. jsonschema's messages are written for
JSON paths; here each error becomes a `Finding` that names the region, store or step in words,
points at the offending key or value, and suggests the closest valid key or value.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from importlib import resources
from typing import Any

from regions_cli.text import did_you_mean
from regions_cli.workflow.findings import Finding
from regions_cli.workflow.load import Document, PathT

SCHEMA_FILE = "workflow.schema.json"

# What a pattern means, for messages (the schema's patterns are regexes).
_PATTERN_MEANING = {
    r"^[A-Za-z0-9_.-]+$": "must use only letters, digits, '_', '-' and '.'",
    r"^[A-Za-z_][A-Za-z0-9_-]*$": "must start with a letter or '_' and go on with letters, "
    "digits, '_' or '-'",
    r"^[A-Za-z_][A-Za-z0-9_-]*\.[A-Za-z_][A-Za-z0-9_]*$": "must be written Region.method",
    r"^(https?://|\$\{)": "must be a URL starting with http:// or https://",
}

#: A top-level block's entries, in the singular (for messages).
SINGULAR = {"llms": "llm", "embedders": "embedder", "rags": "rag", "regions": "region"}


def schema_text() -> str:
    """The schema as shipped in the package (what ``regions schema`` prints)."""
    return resources.files("regions_cli.workflow").joinpath(SCHEMA_FILE).read_text("utf-8")


@cache
def schema() -> dict[str, Any]:
    """The workflow JSON Schema as a mapping."""
    loaded: dict[str, Any] = json.loads(schema_text())
    return loaded


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(schema())


def validate(doc: Document) -> list[Finding]:
    """Schema findings for a parsed document (empty if it has no data)."""
    if doc.data is None:
        return []
    explain = _Explainer(doc)
    found: dict[tuple[str, int, int, str], Finding] = {}
    try:
        errors = list(_validator().iter_errors(doc.data))
    except RecursionError:  # the loader caps nesting, so this is a last line of defence
        return [doc.finding("wrong-type", "the document is nested too deeply")]
    for error in errors:
        for f in explain(error):
            found.setdefault((f.rule, f.line, f.col, f.message), f)
    return list(found.values())


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = did_you_mean(word, choices)
    return f" (did you mean '{close}'?)" if close else ""


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


def _show(value: Any) -> str:
    """A value for a message: short, and from the raw (un-interpolated) text."""
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= 60 else text[:57] + "..."


def describe(path: PathT, data: Any = None) -> str:
    """A path in words: ``('regions', 'A', 'llm')`` -> ``'llm' in region 'A'``."""

    def layer(i: int, state: str | None = None) -> str:
        label = None
        owner = data
        if state is not None:
            states = data.get("states") if isinstance(data, dict) else None
            owner = states.get(state) if isinstance(states, dict) else None
        plan = owner.get("plan") if isinstance(owner, dict) else None
        if isinstance(plan, list) and i < len(plan) and isinstance(plan[i], dict):
            label = plan[i].get("layer")
        named = f"layer '{label}'" if isinstance(label, str) else f"layer {i + 1}"
        return named if state is None else f"{named} of state '{state}'"

    match path:
        case ():
            return "the workflow"
        case ("states", str(name)):
            return f"state '{name}'"
        case ("states", str(name), "plan", int(i)):
            return layer(i, name)
        case ("states", str(name), "plan", int(i), "chains", str(chain)):
            return f"chain '{chain}' in {layer(i, name)}"
        case ("states", str(name), "plan", int(i), "chains", str(chain), int(j)):
            return f"step {j + 1} of chain '{chain}' in {layer(i, name)}"
        case ("states", str(name), "next", int(i)):
            return f"transition {i + 1} of state '{name}'"
        case ("llms" | "embedders" | "rags" | "regions" as block, str(name)):
            return f"{SINGULAR[block]} '{name}'"
        case ("rags", str(name), "documents", int(i)):
            return f"document {i + 1} of rag '{name}'"
        case ("inject", int(i)):
            return f"inject entry {i + 1}"
        case ("plan", int(i)):
            return layer(i)
        case ("plan", int(i), "chains", str(chain)):
            return f"chain '{chain}' in {layer(i)}"
        case ("plan", int(i), "chains", str(chain), int(j)):
            return f"step {j + 1} of chain '{chain}' in {layer(i)}"
        case ("layout", str(name)):
            return f"the layout of '{name}'"
        case (str(key),):
            return f"'{key}'"
        case (*parent, str(key)):
            return f"'{key}' in {describe(tuple(parent), data)}"
        case (*parent, int(i)):
            return f"item {i + 1} of {describe(tuple(parent), data)}"
    return ".".join(str(p) for p in path)  # pragma: no cover - the cases above are exhaustive


def _lookup(data: Any, path: PathT) -> Any:
    for part in path:
        if isinstance(data, dict) and isinstance(part, str):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            return None
    return data


def _schema_at(schema_path: Sequence[Any]) -> Any:
    """The schema node at a jsonschema ``absolute_schema_path`` (which leaves out the ``$ref``
    keywords it went through: they are followed here)."""
    node: Any = schema()
    for part in schema_path:
        while isinstance(node, dict) and part not in node and "$ref" in node:
            node = _referenced(node["$ref"])
        node = node[part]
    return node


def _referenced(ref: str) -> Any:
    """The node a local ``$ref`` (``#/$defs/NAME``) points at."""
    node: Any = schema()
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _keys_for_selected(object_schema: dict[str, Any], instance: dict[str, Any]) -> list[str]:
    """The keys an object may have given its ``type``/``backend`` (from the if/then branches)."""
    for branch in object_schema.get("allOf", []):
        condition = branch.get("if", {}).get("properties", {})
        allowed = branch.get("then", {}).get("propertyNames", {}).get("enum")
        if len(condition) != 1 or not allowed:
            continue
        ((selector, rule),) = condition.items()
        if instance.get(selector) == rule.get("const"):
            order = list(object_schema.get("properties", {}))
            return sorted(allowed, key=lambda k: order.index(k) if k in order else len(order))
    return []


#: Schema keywords that judge a string's content: when one fails on a value that holds an unset
#: ${VAR}, the variable is the cause.
_VALUE_CHECKS = ("pattern", "enum", "const", "format", "minLength")


class _Explainer:
    """Turns one jsonschema `ValidationError` into findings for the document."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc

    def __call__(self, error: Any) -> Iterator[Finding]:
        path: PathT = tuple(error.absolute_path)
        schema_path = list(error.absolute_schema_path)
        validator = error.validator
        if path in self.doc.unset_variables and validator in _VALUE_CHECKS:
            # The value is wrong because a ${VAR} in it is unset: the loader's `unset-variable`
            # warning becomes an error here, since `regions run` would stop on this value.
            where = describe(path, self.doc.data)
            for name, pos in self.doc.unset_variables[path]:
                yield self.doc.finding(
                    "unset-variable",
                    f"environment variable {name} is not set, and {where} cannot do without it",
                    pos,
                    hint=f"export {name}=... or write ${{{name}:-default}}",
                )
            return
        if "propertyNames" in schema_path:
            yield from self._property_name(error, path, schema_path)
            return
        handler = getattr(self, f"_{validator}", None)
        if handler is not None:
            yield from handler(error, path)
        else:
            yield self._at(
                path, "invalid-value", f"{describe(path, self.doc.data)}: {error.message}"
            )

    # --- helpers ---

    def _at(
        self, path: PathT, rule: str, message: str, hint: str | None = None, *, key: bool = False
    ) -> Finding:
        positions = self.doc.positions
        exact = path in (positions.keys if key else positions.values)
        pos = positions.key(path) if key else positions.value(path)
        written = (path[-1] if path else None) if key else self._raw(path)
        end = self.doc.span_end(pos, written) if exact else None
        return self.doc.finding(rule, message, pos, hint=hint, end=end)

    def _raw(self, path: PathT) -> Any:
        return _lookup(self.doc.raw, path)

    # --- one method per JSON Schema keyword ---

    def _additionalProperties(self, error: Any, path: PathT) -> Iterator[Finding]:
        known = list(error.schema.get("properties", {}))
        instance = error.instance if isinstance(error.instance, dict) else {}
        where = describe(path, self.doc.data)
        valid = _keys_for_selected(error.schema, instance) or known
        for name in instance:
            if name in known:
                continue
            close = did_you_mean(name, valid) or did_you_mean(name, known)
            message = f"unknown key '{name}' in {where}"
            if close:
                message += f" (did you mean '{close}'?)"
            hint = f"valid keys here: {', '.join(valid)}" if valid else None
            yield self._at((*path, name), "unknown-key", message, hint, key=True)

    def _property_name(self, error: Any, path: PathT, schema_path: list[Any]) -> Iterator[Finding]:
        name = str(error.instance)
        child = (*path, name)
        if error.validator == "pattern":
            meaning = _PATTERN_MEANING.get(error.validator_value, error.validator_value)
            kind = SINGULAR.get(str(path[-1]), "entry") if path else "key"
            yield self._at(child, "invalid-value", f"{kind} name '{name}' {meaning}", key=True)
            return
        if "allOf" not in schema_path:  # not a per-type key list: report it as it comes
            reason = error.schema.get("x-error") or error.message
            message = f"key '{name}' in {describe(path, self.doc.data)}: {reason}"
            yield self._at(child, "invalid-value", message, key=True)
            return
        # A key the object knows, but not for this region type / backend (an if/then branch).
        owner = _schema_at(schema_path[: schema_path.index("allOf")])
        if name not in owner.get("properties", {}):
            return  # an unknown key: additionalProperties reports it
        mapping = _lookup(self.doc.data, path)
        selector = "type" if "type" in owner.get("properties", {}) else "backend"
        value = mapping.get(selector) if isinstance(mapping, dict) else None
        users = []
        for branch in owner.get("allOf", []):
            allowed = branch.get("then", {}).get("propertyNames", {}).get("enum", [])
            if name in allowed:
                users.append(branch["if"]["properties"][selector]["const"])
        noun = "a region of type" if selector == "type" else "backend"
        message = f"'{name}' does not apply to {noun} {value} in {describe(path, self.doc.data)}"
        hint = f"'{name}' is for: {', '.join(users)}" if users else None
        yield self._at(child, "key-not-for-type", message, hint, key=True)

    def _required(self, error: Any, path: PathT) -> Iterator[Finding]:
        instance = error.instance if isinstance(error.instance, dict) else {}
        for name in error.validator_value:
            if name in instance:
                continue
            where = describe(path, self.doc.data)
            description = (self._property_description(error, name) or "").strip()
            hint = f"{name}: {description}" if description else None
            yield self._at(
                path, "missing-key", f"{where} is missing required key '{name}'", hint, key=True
            )

    def _property_description(self, error: Any, name: str) -> str | None:
        # The property may be declared in the object schema that owns this `required`
        # (possibly several levels up when `required` sits in an if/then branch).
        schema_path = list(error.absolute_schema_path)[:-1]
        while True:
            node = _schema_at(schema_path)
            prop = node.get("properties", {}).get(name) if isinstance(node, dict) else None
            if isinstance(prop, dict) and "description" in prop:
                return str(prop["description"])
            if not schema_path:
                return None
            schema_path.pop()

    def _type(self, error: Any, path: PathT) -> Iterator[Finding]:
        expected = error.validator_value
        types = [expected] if isinstance(expected, str) else list(expected)
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in types)
        message = (
            f"{describe(path, self.doc.data)} must be {words}, not {_json_type(error.instance)}"
        )
        yield self._at(path, "wrong-type", message)

    def _enum(self, error: Any, path: PathT) -> Iterator[Finding]:
        options = [str(o) for o in error.validator_value]
        value = self._raw(path)
        where = describe(path, self.doc.data)
        message = f"{where} must be one of {', '.join(options)}; got {_show(value)}"
        if isinstance(value, str):
            message += _suggest(value, options)
        yield self._at(path, "invalid-value", message)

    def _const(self, error: Any, path: PathT) -> Iterator[Finding]:
        message = f"{describe(path, self.doc.data)} must be {_show(error.validator_value)}"
        yield self._at(path, "invalid-value", f"{message}; got {_show(self._raw(path))}")

    def _pattern(self, error: Any, path: PathT) -> Iterator[Finding]:
        meaning = _PATTERN_MEANING.get(error.validator_value, f"must match {error.validator_value}")
        message = f"{describe(path, self.doc.data)} {meaning}; got {_show(self._raw(path))}"
        yield self._at(path, "invalid-value", message)

    def _minLength(self, error: Any, path: PathT) -> Iterator[Finding]:
        yield self._at(path, "invalid-value", f"{describe(path, self.doc.data)} must not be empty")

    def _bound(self, path: PathT, relation: str, bound: Any) -> Iterator[Finding]:
        message = f"{describe(path, self.doc.data)} must be {relation} {bound}"
        yield self._at(path, "invalid-value", f"{message}; got {_show(self._raw(path))}")

    def _minimum(self, error: Any, path: PathT) -> Iterator[Finding]:
        yield from self._bound(path, ">=", error.validator_value)

    def _maximum(self, error: Any, path: PathT) -> Iterator[Finding]:
        yield from self._bound(path, "<=", error.validator_value)

    def _exclusiveMinimum(self, error: Any, path: PathT) -> Iterator[Finding]:
        yield from self._bound(path, ">", error.validator_value)

    def _exclusiveMaximum(self, error: Any, path: PathT) -> Iterator[Finding]:
        yield from self._bound(path, "<", error.validator_value)

    def _minProperties(self, error: Any, path: PathT) -> Iterator[Finding]:
        n = error.validator_value
        message = (
            f"{describe(path, self.doc.data)} needs at least {n} entr{'y' if n == 1 else 'ies'}"
        )
        yield self._at(path, "invalid-value", message, key=True)

    def _uniqueItems(self, error: Any, path: PathT) -> Iterator[Finding]:
        items = error.instance if isinstance(error.instance, list) else []
        seen: list[Any] = []
        for index, item in enumerate(items):
            if item in seen:
                message = f"{_show(item)} is listed twice in {describe(path, self.doc.data)}"
                yield self._at((*path, index), "invalid-value", message, "remove the duplicate")
                return
            seen.append(item)

    def _not(self, error: Any, path: PathT) -> Iterator[Finding]:
        # `{not: {required: [KEY]}}` forbids a key (e.g. `plan:` beside `states:`): point at it.
        forbidden = error.validator_value.get("required", []) if error.validator_value else []
        message = error.schema.get("x-error") or error.message
        if path:
            message = f"{describe(path, self.doc.data)}: {message}"
        if len(forbidden) == 1 and isinstance(error.instance, dict):
            yield self._at((*path, forbidden[0]), "invalid-value", message, key=True)
        else:
            yield self._at(path, "invalid-value", message)

    def _dependentRequired(self, error: Any, path: PathT) -> Iterator[Finding]:
        instance = error.instance if isinstance(error.instance, dict) else {}
        for key, needed in error.validator_value.items():
            missing = [name for name in needed if key in instance and name not in instance]
            if missing:
                message = f"'{key}' in {describe(path, self.doc.data)} needs '{missing[0]}'"
                yield self._at((*path, key), "missing-key", message, key=True)

    def _oneOf(self, error: Any, path: PathT) -> Iterator[Finding]:
        message = error.schema.get("x-error") or error.message
        yield self._at(
            path, "invalid-value", f"{describe(path, self.doc.data)}: {message}", key=True
        )
