"""Record and replay LLM calls: run a workflow once against a real model, then in CI without one.

A *cassette* is a JSONL file. Its first line is a header (``{"cassette": 1, ...}``); every
other line is one call::

    {"key": "<sha256>", "llm": "default", "purpose": "make_replies",
     "request": {"messages": [["system", "..."], ["user", "..."]], "json_schema": null,
                 "max_tokens": null},
     "response": {"text": "...", "usage": {"prompt_tokens": 12, "completion_tokens": 30},
                  "model": "..."}}

The key is the SHA-256 of the canonical request (`canonical_request`): the llms name, the
messages (with their tool calls and results, `base.canonical_messages`), the JSON schema,
max_tokens and, when tools are offered, the tools and ``tool_choice``. Nothing else goes in:
no URL, header or API key, so a cassette is safe to commit. An answer that called tools has
``"tool_calls": [{"id", "name", "arguments"}]`` in its response. `RecordingModel` wraps a
real backend and appends each answered call; `ReplayModel` answers from the file. When one
request was made several times, the answers come back in recorded order (the last one
repeats). A call that failed is recorded as
``"response": {"error": "..."}`` and fails the same way on replay. A request that was never
recorded fails loudly, naming the closest recorded request and how it differs.

Tool results go in the same file, one line a call (`RecordingTape`, a `ToolTape`)::

    {"tool": "add", "arguments": "{\"a\": 2, \"b\": 3}",
     "result": {"content": "5", "is_error": false, "truncated": false}}

`ReplayingTape` hands them back in recorded order per (tool, arguments), the last one repeating
like a model's answers, and never runs a tool; a call that was never recorded gets an error
result naming it. Arguments match as JSON (key order and spacing aside), or as text when they
are not JSON.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, ClassVar

from regions_cli.llm.base import (
    Completion,
    CompletionModel,
    CompletionRequest,
    LLMConfigError,
    LLMError,
    ModelWrapper,
    TokenCallback,
    ToolDefinition,
    Usage,
    canonical_messages,
    canonical_tools,
    json_ready,
    messages_from_canonical,
    prompt_text,
)
from regions_cli.llm.tool_protocol import calls_from_json, calls_to_json
from regions_cli.private_files import open_private
from regions_cli.tools.base import ToolResult

#: Version 2: recorded with deterministic delivery (the prompts of a fan-in list what the
#: concurrent chains sent in plan order, not in the order they finished).
CASSETTE_VERSION = 2
#: Versions `load_cassette` reads. A version-1 cassette still answers the requests it has; a
#: miss then says why (its prompts may have followed the timing of the run that recorded it).
READABLE_CASSETTE_VERSIONS = (1, 2)
_DIFF_LINES = 24


def canonical_request(llm: str, request: CompletionRequest) -> dict[str, Any]:
    """What identifies a call in a cassette (secrets and transport details excluded)."""
    return {
        "llm": llm,
        "messages": canonical_messages(request.messages),
        "json_schema": json_ready(request.json_schema) if request.json_schema is not None else None,
        "max_tokens": request.max_tokens,
        **canonical_tools(request),
    }


def request_key(llm: str, request: CompletionRequest) -> str:
    """The cassette key of a call: SHA-256 of its canonical JSON."""
    canonical = json.dumps(
        canonical_request(llm, request), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class _CassetteWriter:
    """One open cassette file shared by every `RecordingModel` of a run (one per llms entry)."""

    _open: ClassVar[dict[Path, _CassetteWriter]] = {}

    def __init__(self, path: Path) -> None:
        self.path = path
        self.users = 0
        self._file: IO[str] | None = open_private(path, "w")
        header = {"cassette": CASSETTE_VERSION, "created": datetime.now(UTC).isoformat()}
        self.write(header)

    @classmethod
    def acquire(cls, path: Path) -> _CassetteWriter:
        """The writer for `path`; the first user of a path starts the file afresh."""
        key = path.resolve()
        writer = cls._open.get(key)
        if writer is None:
            try:
                writer = cls._open[key] = cls(key)
            except OSError as exc:
                raise LLMConfigError(
                    f"cannot write the cassette {path}: {exc.strerror or exc}"
                ) from exc
        writer.users += 1
        return writer

    def write(self, entry: Mapping[str, Any]) -> None:
        # One line per call, flushed at once: a run that dies keeps every answered call.
        assert self._file is not None, "cassette already closed"
        self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._file.flush()

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0 and self._file is not None:
            self._file.close()
            self._file = None
            self._open.pop(self.path, None)


class RecordingModel(ModelWrapper):
    """Wraps a backend and records every answered call into a cassette (``--record FILE``)."""

    def __init__(self, inner: CompletionModel, cassette: Path) -> None:
        self.inner = inner
        self.name = inner.name
        self.cassette = Path(cassette)
        self._writer: _CassetteWriter | None = _CassetteWriter.acquire(self.cassette)

    async def complete(
        self, request: CompletionRequest, on_token: TokenCallback | None = None
    ) -> Completion:
        try:
            completion = await self.inner.complete(request, on_token)
        except LLMError as exc:  # a failed call replays as the same failure
            self._write(request, {"error": str(exc)})
            raise
        response: dict[str, Any] = {
            "text": completion.text,
            "usage": {
                "prompt_tokens": completion.usage.prompt_tokens,
                "completion_tokens": completion.usage.completion_tokens,
            },
            "model": completion.model,
        }
        if completion.tool_calls:
            response["tool_calls"] = calls_to_json(completion.tool_calls)
        self._write(request, response)
        return completion

    def _write(self, request: CompletionRequest, response: Mapping[str, Any]) -> None:
        if self._writer is None:
            raise LLMError(f"llms.{self.name}: the cassette {self.cassette} is already closed")
        canonical = canonical_request(self.name, request)
        del canonical["llm"]
        self._writer.write(
            {
                "key": request_key(self.name, request),
                "llm": self.name,
                "purpose": request.purpose,
                "request": canonical,
                "response": response,
            }
        )

    async def aclose(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.release()
        await self.inner.aclose()


class RecordingTape:
    r"""A `ToolTape` that runs every call and writes its result into the cassette the run's
    `RecordingModel`\ s write (``--record FILE``; the file's writer is shared). Make it while
    the models are open (the first user of a path starts the file afresh) and close it with
    them (`aclose`)."""

    def __init__(self, cassette: Path) -> None:
        self.cassette = Path(cassette)
        self._writer: _CassetteWriter | None = _CassetteWriter.acquire(self.cassette)

    async def call(
        self, tool: str, arguments: str, run: Callable[[], Awaitable[ToolResult]]
    ) -> ToolResult:
        result = await run()
        if self._writer is None:
            raise LLMError(f"the cassette {self.cassette} is already closed")
        self._writer.write(
            {
                "tool": tool,
                "arguments": arguments,
                "result": {
                    "content": result.content,
                    "is_error": result.is_error,
                    "truncated": result.truncated,
                },
            }
        )
        return result

    async def aclose(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.release()


class ReplayingTape:
    """A `ToolTape` that answers from a cassette's tool lines and never runs a tool
    (``--replay FILE``); see the module doc."""

    def __init__(self, cassette: Path) -> None:
        self.cassette = Path(cassette)
        self._results = load_tool_results(self.cassette, "--replay")
        self._served: dict[tuple[str, str], int] = {}

    async def call(
        self, tool: str, arguments: str, run: Callable[[], Awaitable[ToolResult]]
    ) -> ToolResult:
        key = (tool, _arguments_key(arguments))
        results = self._results.get(key)
        if not results:
            return ToolResult(
                f"not in the cassette: {tool} with the arguments {arguments} (the workflow or "
                f"the model's calls changed since recording; record again with "
                f"`regions run --record {self.cassette}`)",
                is_error=True,
            )
        served = self._served.get(key, 0)
        self._served[key] = served + 1
        return results[min(served, len(results) - 1)]

    async def aclose(self) -> None:
        return None


def load_tool_results(path: Path, where: str) -> dict[tuple[str, str], list[ToolResult]]:
    """A cassette's tool lines: (tool, arguments as matched) -> results in recorded order;
    `LLMConfigError` (with the line) if one is malformed."""
    results: dict[tuple[str, str], list[ToolResult]] = {}
    for number, item in _cassette_lines(path, where):
        if "tool" not in item:
            continue
        try:
            raw = item["result"]
            result = ToolResult(
                str(raw["content"]), bool(raw.get("is_error")), bool(raw.get("truncated"))
            )
            key = (str(item["tool"]), _arguments_key(str(item["arguments"])))
        except (KeyError, TypeError) as exc:
            raise _malformed(where, path, number, exc) from exc
        results.setdefault(key, []).append(result)
    return results


def _arguments_key(arguments: str) -> str:
    """Arguments as matched on replay: canonical JSON, or the text itself if it is not JSON."""
    try:
        value = json.loads(arguments)
    except ValueError:
        return arguments
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class _Entry:
    __slots__ = ("canonical", "completions", "purpose", "served")

    def __init__(self, canonical: dict[str, Any], purpose: str) -> None:
        self.canonical = canonical
        self.purpose = purpose
        self.completions: list[Completion | str] = []  # a str is a recorded failure
        self.served = 0


def cassette_version(path: Path) -> int:
    """The version in a cassette's header line (1 when it has none)."""
    try:
        with path.open(encoding="utf-8") as handle:
            first = json.loads(handle.readline() or "{}")
    except (OSError, UnicodeDecodeError, ValueError):
        return CASSETTE_VERSION
    version = first.get("cassette", 1) if isinstance(first, dict) else 1
    return version if isinstance(version, int) else CASSETTE_VERSION


def _cassette_lines(path: Path, where: str) -> list[tuple[int, dict[str, Any]]]:
    """A cassette's entries as (line number, JSON object), the header checked and left out;
    `LLMConfigError` (with the line) if a line is not JSON or the version is unknown."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise LLMConfigError(
            f"{where}: the cassette {path} does not exist (write one with "
            f"`regions run --record {path}`)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LLMConfigError(f"{where}: cannot read the cassette {path}: {exc}") from exc
    out = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise ValueError(f"a JSON {type(item).__name__}, not an object")
            if "cassette" in item:
                if item["cassette"] not in READABLE_CASSETTE_VERSIONS:
                    raise ValueError(f"unsupported cassette version {item['cassette']!r}")
                continue
        except ValueError as exc:
            raise _malformed(where, path, number, exc) from exc
        out.append((number, item))
    return out


def _malformed(where: str, path: Path, number: int, exc: Exception) -> LLMConfigError:
    detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
    return LLMConfigError(f"{where}: {path}:{number}: not a cassette entry ({detail})")


def load_cassette(path: Path, where: str) -> dict[str, _Entry]:
    """Read a cassette's model calls into key -> entry (tool lines are `load_tool_results`'s);
    `LLMConfigError` (with the line) if it is malformed."""
    entries: dict[str, _Entry] = {}
    for number, item in _cassette_lines(path, where):
        if "tool" in item:
            continue
        try:
            request = item["request"]
            canonical = {
                "llm": str(item["llm"]),
                "messages": canonical_messages(messages_from_canonical(request["messages"])),
                "json_schema": request.get("json_schema"),
                "max_tokens": request.get("max_tokens"),
            }
            if request.get("tools"):
                canonical["tools"] = request["tools"]
                canonical["tool_choice"] = request.get("tool_choice", "auto")
            response = item["response"]
            usage = response.get("usage") or {}
            completion: Completion | str = (
                str(response["error"])
                if "error" in response
                else Completion(
                    str(response["text"]),
                    Usage(
                        int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
                    ),
                    str(response.get("model", "")),
                    tool_calls=calls_from_json(response.get("tool_calls")),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise _malformed(where, path, number, exc) from exc
        key = str(item.get("key") or _key_of(canonical))
        entry = entries.setdefault(key, _Entry(canonical, str(item.get("purpose", ""))))
        entry.completions.append(completion)
    return entries


def _key_of(canonical: Mapping[str, Any]) -> str:
    tools = tuple(
        ToolDefinition(str(t["name"]), str(t.get("description", "")), t.get("parameters") or {})
        for t in canonical.get("tools") or ()
    )
    request = CompletionRequest(
        messages_from_canonical(canonical["messages"]),
        canonical["json_schema"],
        canonical["max_tokens"],
        tools=tools,
        tool_choice=canonical.get("tool_choice", "auto"),
    )
    return request_key(str(canonical["llm"]), request)


class ReplayModel:
    """Answers from a cassette, with no model (``--replay FILE`` or ``backend: replay``)."""

    def __init__(self, name: str, cassette: Path) -> None:
        self.name = name
        self.cassette = Path(cassette)
        self._entries = load_cassette(self.cassette, f"llms.{name}")
        self.version = cassette_version(self.cassette)

    @property
    def size(self) -> int:
        """How many recorded calls (answers and failures) this endpoint has."""
        return sum(
            len(e.completions) for e in self._entries.values() if e.canonical["llm"] == self.name
        )

    async def complete(
        self, request: CompletionRequest, on_token: TokenCallback | None = None
    ) -> Completion:
        entry = self._entries.get(request_key(self.name, request))
        if entry is None:
            raise LLMError(self._miss(request))
        completion = entry.completions[min(entry.served, len(entry.completions) - 1)]
        entry.served += 1
        if isinstance(completion, str):
            raise LLMError(completion)
        if on_token is not None and completion.text:
            on_token(completion.text)
        return completion

    async def aclose(self) -> None:
        return None

    def _miss(self, request: CompletionRequest) -> str:
        if self.version < CASSETTE_VERSION:
            return (
                f"llms.{self.name}: this {request.purpose or 'request'} is not in the cassette "
                f"{self.cassette}, recorded by an earlier regions (cassette version "
                f"{self.version}) whose prompts followed the timing of that run; record it again "
                f"with `regions run --record {self.cassette}`"
            )
        head = (
            f"llms.{self.name}: this {request.purpose or 'request'} is not in the cassette "
            f"{self.cassette} (the workflow, its input or the prompts changed since recording; "
            "record again with `regions run --record`)"
        )
        wanted = canonical_request(self.name, request)
        closest = closest_entry(wanted, list(self._entries.values()))
        if closest is None:
            return head + f"; the cassette has no calls for llms.{self.name}"
        return head + "\n" + describe_difference(wanted, closest.canonical, closest.purpose)


def _render(canonical: Mapping[str, Any]) -> str:
    return prompt_text(messages_from_canonical(canonical["messages"]))


def closest_entry(wanted: Mapping[str, Any], entries: Sequence[_Entry]) -> _Entry | None:
    """The recorded request most like `wanted` (same llms name first, then by text)."""
    if not entries:
        return None
    target = _render(wanted)

    def score(entry: _Entry) -> tuple[bool, float]:
        matcher = difflib.SequenceMatcher(None, target, _render(entry.canonical), autojunk=False)
        return entry.canonical["llm"] == wanted["llm"], matcher.ratio()

    return max(entries, key=score)


def describe_difference(
    wanted: Mapping[str, Any], recorded: Mapping[str, Any], purpose: str = ""
) -> str:
    """How `wanted` differs from `recorded`, for the replay-miss error: field by field, then a
    unified diff of the prompts (cut to a screenful)."""
    label = f" ({purpose})" if purpose else ""
    lines = [f"closest recorded request{label} differs in:"]
    for field in ("llm", "max_tokens", "json_schema", "tools", "tool_choice"):
        if wanted.get(field) != recorded.get(field):
            lines.append(f"  {field}: recorded {recorded.get(field)!r}, now {wanted.get(field)!r}")
    if wanted["messages"] != recorded["messages"]:
        diff = list(
            difflib.unified_diff(
                _render(recorded).splitlines(),
                _render(wanted).splitlines(),
                "recorded",
                "now",
                n=1,
                lineterm="",
            )
        )
        lines.append("  messages:")
        lines.extend(f"    {line}" for line in diff[:_DIFF_LINES])
        if len(diff) > _DIFF_LINES:
            lines.append(f"    ... ({len(diff) - _DIFF_LINES} more diff lines)")
    return "\n".join(lines)
