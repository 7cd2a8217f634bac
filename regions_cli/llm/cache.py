"""The response cache: a model's answers kept in a sqlite file, so a re-run costs nothing.

A `CachingModel` wraps any backend. Each request is keyed by the SHA-256 of everything that
can change its answer (`cache_key`): the backend, the entry's options that shape the answer
(model, params, seed, ...; never credentials, URLs, timeouts or concurrency), the messages
(with their tool calls and results), the JSON schema, max_tokens and, when tools are offered,
the tools and ``tool_choice``. An answer that calls tools is kept with its calls (a model's
choice, like its text); a tool's results never are: its calls run every time. A hit returns
the stored answer without calling the model (its text reaches ``on_token`` in one piece); a
miss calls the model and stores a successful answer.
Failures are never stored.

The file is shared safely by concurrent runs: WAL mode, one ``INSERT OR IGNORE`` per answer
(the first writer wins; an answer is a single row, so none is ever torn) and a busy timeout
instead of errors when two processes write at once. It holds hashes and answers only: no
prompt, URL, header or key.

A cassette (``--record``/``--replay``) is something else: an exact, closed recording for CI,
where a miss is an error. The cache is open: a miss simply asks the model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from regions_cli.llm.base import (
    Completion,
    CompletionModel,
    CompletionRequest,
    ModelWrapper,
    TokenCallback,
    Usage,
    canonical_messages,
    canonical_tools,
    json_ready,
)
from regions_cli.llm.tool_protocol import calls_from_json, calls_to_json
from regions_cli.private_files import create_private_file

#: The file ``cache: true`` (and ``--cache`` without a FILE) uses, beside the workflow.
DEFAULT_CACHE_PATH = Path(".regions") / "cache.db"

#: Bumped when the key or the table changes; a file of another version is refused.
CACHE_VERSION = 1

#: Options of an ``llms:`` entry that never change an answer (transport, secrets, the cache
#: itself); every other option is part of the key.
NON_ANSWER_OPTIONS = frozenset(
    {
        "api_key",
        "base_url",
        "headers",
        "timeout",
        "connect_timeout",
        "retries",
        "max_retries",
        "concurrency",
        "verify_tls",
        "cache",
        "cassette",
        "n_threads",
        "n_parallel",
        "_implied",
    }
)

_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE answers (key TEXT PRIMARY KEY, llm TEXT NOT NULL, text TEXT NOT NULL, "
    "model TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, "
    "created REAL NOT NULL, tool_calls TEXT NOT NULL DEFAULT '')",
)
#: Added to a file made before tools (the default '' = no calls; older regions ignore it).
_ADD_TOOL_CALLS = "ALTER TABLE answers ADD COLUMN tool_calls TEXT NOT NULL DEFAULT ''"

_BUSY_TIMEOUT_SECONDS = 30.0


class CacheError(Exception):
    """The cache file cannot be used (not a cache, newer version, unwritable). One line."""


def cache_key(backend: str, options: Mapping[str, Any], request: CompletionRequest) -> str:
    """The SHA-256 of everything that can change the answer to `request` (see module doc).

    The entry's name is not part of it: two entries with the same backend and options share
    their answers."""
    answer_options = {k: v for k, v in options.items() if k not in NON_ANSWER_OPTIONS}
    canonical = {
        "backend": backend,
        "options": json_ready(answer_options),
        "messages": canonical_messages(request.messages),
        "json_schema": json_ready(request.json_schema) if request.json_schema is not None else None,
        "max_tokens": request.max_tokens,
        **canonical_tools(request),
    }
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CacheStats:
    """What ``regions cache stats`` shows."""

    path: Path
    entries: int
    bytes: int
    by_llm: dict[str, int]
    oldest: float | None
    newest: float | None


class ResponseCache:
    """One cache file. Thread-safe; open it with `ResponseCache.open`."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> ResponseCache:
        """Open (or create, with `create`) the cache at `path`; `CacheError` if unusable."""
        path = Path(path)
        if path.is_dir():
            raise CacheError(f"{path}: is a directory, not a cache file")
        if not create and not path.is_file():
            raise CacheError(f"{path}: no such cache file")
        try:
            if not path.exists():  # owner-only: answers may quote the prompts
                with contextlib.suppress(FileExistsError):  # another run made it just now
                    create_private_file(path)
            conn = sqlite3.connect(
                path, timeout=_BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
            )
            row = cls._prepare(conn, create)
        except sqlite3.DatabaseError as exc:
            raise CacheError(f"{path}: not a regions cache ({exc})") from exc
        except OSError as exc:
            raise CacheError(f"{path}: cannot open the cache: {exc.strerror or exc}") from exc
        if row is None or row[0] != str(CACHE_VERSION):
            conn.close()
            raise CacheError(
                f"{path}: cache version {row[0] if row else '?'} is not supported "
                f"(this regions uses version {CACHE_VERSION}); delete the file to start a new one"
            )
        return cls(path, conn)

    @staticmethod
    def _prepare(conn: sqlite3.Connection, create: bool) -> tuple[str] | None:
        """Make an empty file a cache (with `create`), in one write transaction so that two
        runs creating the same file at once both find it whole; the file's version row."""
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = {
                name
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if not tables and create:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('cache_version', ?)",
                    (str(CACHE_VERSION),),
                )
                tables = {"meta", "answers"}
            if "meta" not in tables:
                raise sqlite3.DatabaseError(
                    "no such table: meta" if tables else "the file is empty"
                )
            columns = {row[1] for row in conn.execute("PRAGMA table_info(answers)")}
            if columns and "tool_calls" not in columns:
                conn.execute(_ADD_TOOL_CALLS)
            row: tuple[str] | None = conn.execute(
                "SELECT value FROM meta WHERE key = 'cache_version'"
            ).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        # WAL lets readers and one writer work at once. Switching needs the file to itself
        # (sqlite does not wait for that): if another run holds it just now, the file stays in
        # rollback mode, still safe, and a later open switches it.
        with contextlib.suppress(sqlite3.OperationalError):
            conn.execute("PRAGMA journal_mode=WAL")
        return row

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT text, model, prompt_tokens, completion_tokens, tool_calls FROM answers "
                "WHERE key = ?",
                (key,),
            ).fetchone()
        if row is None:
            return None
        text, model, prompt_tokens, completion_tokens, calls = row
        return Completion(
            str(text),
            Usage(int(prompt_tokens), int(completion_tokens)),
            str(model),
            tool_calls=calls_from_json(json.loads(calls)) if calls else (),
        )

    def put(self, key: str, llm: str, completion: Completion) -> None:
        """Store an answer; if another run stored one for `key` meanwhile, the first stays."""
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO answers (key, llm, text, model, prompt_tokens, "
                "completion_tokens, created, tool_calls) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    llm,
                    completion.text,
                    completion.model,
                    completion.usage.prompt_tokens,
                    completion.usage.completion_tokens,
                    time.time(),
                    json.dumps(calls_to_json(completion.tool_calls))
                    if completion.tool_calls
                    else "",
                ),
            )

    def stats(self) -> CacheStats:
        with self._lock:
            by_llm = dict(
                self._conn.execute(
                    "SELECT llm, COUNT(*) FROM answers GROUP BY llm ORDER BY llm"
                ).fetchall()
            )
            oldest, newest = self._conn.execute(
                "SELECT MIN(created), MAX(created) FROM answers"
            ).fetchone()
        size = sum(
            p.stat().st_size
            for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm"))
            if p.exists()
        )
        return CacheStats(
            self.path,
            sum(by_llm.values()),
            size,
            {str(k): int(v) for k, v in by_llm.items()},
            oldest,
            newest,
        )

    def clear(self, llm: str | None = None) -> int:
        """Delete every answer (or those of one ``llms:`` name); returns how many."""
        with self._lock:
            if llm is None:
                cursor = self._conn.execute("DELETE FROM answers")
            else:
                cursor = self._conn.execute("DELETE FROM answers WHERE llm = ?", (llm,))
            self._conn.execute("VACUUM")
        return int(cursor.rowcount)

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class CachingModel(ModelWrapper):
    """A `CompletionModel` that answers from a `ResponseCache` when it can."""

    def __init__(
        self,
        inner: CompletionModel,
        cache: ResponseCache,
        *,
        backend: str,
        options: Mapping[str, Any],
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.cache = cache
        self.backend = backend
        self.options = dict(options)

    async def complete(
        self, request: CompletionRequest, on_token: TokenCallback | None = None
    ) -> Completion:
        key = cache_key(self.backend, self.options, request)
        cached = self.cache.get(key)
        if cached is not None:
            if on_token is not None and cached.text:
                on_token(cached.text)
            return replace(cached, cached=True)
        completion = await self.inner.complete(request, on_token)
        if completion.text or completion.tool_calls:  # an empty answer is worth asking again
            self.cache.put(key, self.name, completion)
        return completion

    async def aclose(self) -> None:
        await self.inner.aclose()
        self.cache.close()
