"""The sqlite run file: every event, message, step and LLM call of a run, and committed
snapshots of every region's state at each layer barrier.

A run file is what ``regions step``, ``inject``, ``run --resume``, ``show``, ``replay`` and
``runs`` build on. It is one sqlite database (WAL mode, so readers never block the writer):

* ``meta``        key/value: format marker, schema version, the workflow's raw text, canonical
                  text, hash and a small description of its regions and plan.
* ``invocations`` one row per process that ran part of the run (``run``, ``step``, resume).
* ``events``      every engine event but messages, as its documented JSON, by emission order.
* ``messages``    every delivered or rejected message with its delivery sequence number (and
                  ``rejections`` the rule it broke); `RunFile.events` merges them back into
                  the event stream, so replay sees exactly what the run emitted.
* ``steps``       every finished step attempt: start, end, outcome, timing.
* ``llm_calls``   every model call with its token usage.
* ``barriers``    each committed layer barrier (``position`` = the next layer to run).
* ``states``      region snapshots; a row is written only when a region's state changed, so the
                  state at barrier ``p`` is the newest row with ``position <= p``.
* ``chains_done`` chains of a not-yet-committed layer that finished, with their regions' state,
                  so a resumed run does not run them again.
* ``injections``  messages queued by ``regions inject``; consumed (delivered) at a barrier in
                  the same transaction that commits the barrier's snapshot.

Writes are batched: events are buffered in memory and written when a chain that took a while
ends, at each barrier (one ``BEGIN IMMEDIATE`` transaction with the snapshot) and at the end of
the run, so journaling costs a list append per event on the hot path. Rows written after the
last barrier by a process that died are marked ``rolled_back`` when the run is resumed: the
journal's traffic is then exactly what an uninterrupted run would have recorded.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from regions_cli.engine import events as ev
from regions_cli.engine.message import Message, Origin
from regions_cli.private_files import create_private_file

#: Written in ``meta.format``; a sqlite file without it is not a run file.
FORMAT = "regions-run"
#: Bumped whenever the schema changes incompatibly. Version 2: the journal is in plan order
#: (chains in declaration order, whatever order they finished in) and a completed chain's
#: record carries its events and what it held for the barrier.
SCHEMA_VERSION = 2
#: Versions this regions can show and replay; only `SCHEMA_VERSION` can be continued.
READABLE_VERSIONS = (1, 2)

#: How long a writer waits for another process's transaction (``inject`` vs a running run).
BUSY_TIMEOUT_SECONDS = 30.0

#: A chain that worked this long (seconds) has its completion committed at once.
CHAIN_COMMIT_SECONDS = 0.05

#: Flush the event buffer early when it grows past this many events (bounds memory).
MAX_BUFFERED_EVENTS = 5000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invocations (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, pid INTEGER NOT NULL, started REAL NOT NULL,
    start_position INTEGER NOT NULL, finished REAL, status TEXT, exit_code INTEGER);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY, invocation INTEGER NOT NULL, kind TEXT NOT NULL, t REAL NOT NULL,
    layer INTEGER, chain TEXT, region TEXT, data TEXT NOT NULL,
    rolled_back INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY, event_seq INTEGER NOT NULL, id TEXT NOT NULL, source TEXT NOT NULL,
    destination TEXT NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL, layer INTEGER,
    chain TEXT, step INTEGER, ordinal INTEGER NOT NULL, injected INTEGER NOT NULL, cause TEXT,
    delivery TEXT NOT NULL, delivery_seq INTEGER, recipient TEXT, t REAL NOT NULL,
    rolled_back INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS rejections (
    message_seq INTEGER PRIMARY KEY, rule TEXT NOT NULL, reason TEXT NOT NULL,
    action TEXT NOT NULL, sender TEXT);

CREATE TABLE IF NOT EXISTS steps (
    seq INTEGER PRIMARY KEY, event_seq INTEGER NOT NULL, layer INTEGER NOT NULL,
    chain TEXT NOT NULL, step INTEGER NOT NULL, region TEXT NOT NULL, method TEXT NOT NULL,
    outcome TEXT NOT NULL, started REAL NOT NULL, finished REAL NOT NULL, duration REAL NOT NULL,
    error TEXT, detail TEXT, rolled_back INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS llm_calls (
    seq INTEGER PRIMARY KEY, event_seq INTEGER NOT NULL, region TEXT NOT NULL,
    llm TEXT NOT NULL, purpose TEXT NOT NULL, prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL, duration REAL NOT NULL, error TEXT, t REAL NOT NULL,
    rolled_back INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS barriers (
    position INTEGER PRIMARY KEY, t REAL NOT NULL, invocation INTEGER NOT NULL,
    event_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS states (
    region TEXT NOT NULL, position INTEGER NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY (region, position));
CREATE TABLE IF NOT EXISTS chains_done (
    layer INTEGER NOT NULL, chain TEXT NOT NULL, t REAL NOT NULL, event_seq INTEGER NOT NULL,
    states TEXT NOT NULL, events TEXT NOT NULL DEFAULT '[]', held TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (layer, chain));
CREATE TABLE IF NOT EXISTS injections (
    id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL, destination TEXT NOT NULL,
    role TEXT NOT NULL, content TEXT NOT NULL, message_id TEXT NOT NULL, ordinal INTEGER NOT NULL,
    created REAL NOT NULL, consumed_at INTEGER);
"""


#: Messages with their rejection details (rule, reason, action, sender: NULL if delivered).
_MESSAGES = (
    "SELECT messages.*, rule, reason, action, sender FROM messages "
    "LEFT JOIN rejections ON rejections.message_seq = messages.seq"
)


class RunFileError(Exception):
    """The run file is missing, corrupt, foreign, too new, or in use. The message says which."""


class RunFileExistsError(RunFileError):
    """`RunFile.create` found a file at the path (perhaps another run created it just now)."""


# ---------------------------------------------------------------------------------------------
# Events <-> JSON


def _message_json(message: Message) -> dict[str, Any]:
    origin = message.origin
    return {
        "source": message.source,
        "destination": message.destination,
        "role": message.role,
        "content": message.content,
        "origin": {
            "layer": origin.layer,
            "chain": origin.chain,
            "step": origin.step,
            "ordinal": origin.ordinal,
            "injected": origin.injected,
        },
        "cause": message.cause,
        "id": message.id,
    }


_FIELD_NAMES: dict[type[ev.Event], tuple[str, ...]] = {}


def event_json(event: ev.Event) -> dict[str, Any]:
    """`event.to_json()`, computed without `dataclasses.asdict`'s deep copy (several times faster).

    The result is equal to ``event.to_json()`` for every event type; a test checks this.
    """
    names = _FIELD_NAMES.get(type(event))
    if names is None:
        names = tuple(f.name for f in fields(event))
        _FIELD_NAMES[type(event)] = names
    data: dict[str, Any] = {"kind": event.kind}
    for name in names:
        value = getattr(event, name)
        data[name] = _message_json(value) if isinstance(value, Message) else value
    return data


def _event_classes() -> dict[str, type[ev.Event]]:
    found: dict[str, type[ev.Event]] = {}
    pending: list[type[ev.Event]] = [ev.Event]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.kind, cls)
        pending.extend(cls.__subclasses__())
    return found


def event_from_json(data: Mapping[str, Any]) -> ev.Event | None:
    """Rebuild the event `event_json` wrote; ``None`` for a kind this version does not know."""
    cls = _event_classes().get(str(data.get("kind")))
    if cls is None or cls is ev.Event:
        return None
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name == "message" and isinstance(value, Mapping):
            value = Message.from_dict(dict(value))
        kwargs[f.name] = value
    try:
        return cls(**kwargs)
    except TypeError:  # a field this version requires is missing: skip rather than crash
        return None


# ---------------------------------------------------------------------------------------------
# The run file


@dataclass(frozen=True)
class WorkflowRecord:
    """What a run file remembers of its workflow."""

    name: str
    path: str  # the workflow file, absolute, as it was when the run was created
    text: str  # the file's raw text (``${VAR}`` not interpolated: no secrets)
    canonical: str  # canonical JSON of the document (see `regions_cli.engine.runfile`)
    hash: str  # sha256 of `canonical`
    info: Mapping[str, Any]  # {"regions": {name: type}, "plan": [...], "inject": n}

    @property
    def regions(self) -> Mapping[str, str]:
        return dict(self.info.get("regions") or {})

    @property
    def plan(self) -> list[dict[str, Any]]:
        """``[{"label": ..., "chains": {chain: ["Region.method", ...]}}]`` in plan order."""
        return list(self.info.get("plan") or [])


@dataclass(frozen=True)
class ChainDone:
    """A chain that completed inside a layer whose barrier is not committed yet."""

    chain: str
    event_seq: int  # events up to this one were journaled when it completed
    states: dict[str, dict[str, Any]]  # its regions' states when it completed
    events: list[dict[str, Any]]  # its events (JSON), journaled at the barrier
    held: list[dict[str, Any]]  # what it posted for the barrier (`Held.to_json`)


@dataclass(frozen=True)
class Injected:
    """A message queued by ``regions inject``."""

    row: int
    message: Message
    created: float
    consumed_at: int | None


def _connect(path: Path) -> sqlite3.Connection:
    # check_same_thread off: `regions run --interactive` queues injections from the thread that
    # reads the terminal while the event loop waits for it (never two threads at once).
    conn = sqlite3.connect(
        str(path),
        timeout=BUSY_TIMEOUT_SECONDS,
        isolation_level=None,
        check_same_thread=False,
    )
    conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable at checkpoints, fast
    return conn


class RunFile:
    """An open run file. Use `RunFile.create` for a new run and `RunFile.open` for an existing one.

    Reads go through `db` (a `sqlite_utils.Database`); every write is an explicit
    ``BEGIN IMMEDIATE`` transaction so concurrent writers (a running run and ``regions inject``)
    serialise instead of losing or duplicating rows.
    """

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        import sqlite_utils

        self.path = path
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self._workflow: WorkflowRecord | None = None
        self.version = SCHEMA_VERSION

    def check_continuable(self) -> None:
        """Refuse (`RunFileError`) to continue a run recorded by an earlier regions."""
        if self.version < SCHEMA_VERSION:
            raise RunFileError(
                f"{self.path}: recorded by an earlier regions (run file version {self.version}), "
                "whose delivery order inside a layer depended on timing; it can be shown and "
                "replayed but not continued: start a new run"
            )

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: Path,
        *,
        workflow: WorkflowRecord,
    ) -> RunFile:
        """Create a new run file at `path` (its folder is created). Refuses to overwrite."""
        path = Path(path)
        try:
            # O_EXCL: of two runs creating the same path at once, exactly one gets it
            create_private_file(path)
        except FileExistsError:
            raise RunFileExistsError(
                f"{path}: a file already exists there; choose another --run path"
            ) from None
        except OSError as exc:
            raise RunFileError(f"{path}: cannot create the run file: {exc}") from exc
        try:
            conn = _connect(path)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise RunFileError(f"{path}: cannot create the run file: {exc}") from exc
        run = cls(path, conn)
        meta = {
            "format": FORMAT,
            "schema_version": str(SCHEMA_VERSION),
            "created": repr(time.time()),
            "workflow_name": workflow.name,
            "workflow_path": workflow.path,
            "workflow_text": workflow.text,
            "workflow_canonical": workflow.canonical,
            "workflow_hash": workflow.hash,
            "workflow_info": json.dumps(workflow.info, sort_keys=True),
        }
        with run.transaction():
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", meta.items())
        return run

    @classmethod
    def open(cls, path: Path) -> RunFile:
        """Open an existing run file, checking that it is one and that this version can read it."""
        path = Path(path)
        if path.is_dir():
            raise RunFileError(f"{path}: is a directory, not a run file")
        if not path.is_file():
            raise RunFileError(f"{path}: no such run file")
        try:
            with path.open("rb") as handle:
                header = handle.read(16)
        except OSError as exc:
            raise RunFileError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        if header != b"SQLite format 3\x00":
            raise RunFileError(f"{path}: not a run file (not a sqlite database)")
        try:
            conn = _connect(path)
            rows = dict(
                conn.execute(
                    "SELECT key, value FROM meta WHERE key IN ('format', 'schema_version')"
                ).fetchall()
            )
        except sqlite3.DatabaseError as exc:
            message = str(exc)
            if "no such table" in message:
                raise RunFileError(
                    f"{path}: not a run file (a sqlite database without regions run data)"
                ) from exc
            raise RunFileError(f"{path}: corrupt run file ({message})") from exc
        if rows.get("format") != FORMAT:
            conn.close()
            raise RunFileError(f"{path}: not a run file (no '{FORMAT}' marker)")
        try:
            version = int(rows.get("schema_version", ""))
        except ValueError:
            version = -1
        if version not in READABLE_VERSIONS:
            conn.close()
            raise RunFileError(
                f"{path}: run file schema version {rows.get('schema_version')!r} is not supported "
                f"(this regions reads versions {', '.join(map(str, READABLE_VERSIONS))})"
            )
        run = cls(path, conn)
        run.version = version
        try:
            conn.execute("PRAGMA quick_check(1)").fetchone()
            run.workflow  # noqa: B018 - parse the workflow record now: fail early, clearly
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise RunFileError(f"{path}: corrupt run file ({exc})") from exc
        except KeyError as exc:
            conn.close()
            raise RunFileError(f"{path}: corrupt run file (no {exc} in its meta table)") from exc
        except ValueError as exc:
            conn.close()
            raise RunFileError(f"{path}: corrupt run file (bad workflow record: {exc})") from exc
        return run

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> RunFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions --------------------------------------------------------------------------

    def transaction(self) -> _Transaction:
        """``with run.transaction():`` is one ``BEGIN IMMEDIATE`` ... ``COMMIT`` (or rollback)."""
        return _Transaction(self.conn)

    # -- metadata ------------------------------------------------------------------------------

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    @property
    def workflow(self) -> WorkflowRecord:
        if self._workflow is None:
            rows = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
            self._workflow = WorkflowRecord(
                name=rows["workflow_name"],
                path=rows["workflow_path"],
                text=rows["workflow_text"],
                canonical=rows["workflow_canonical"],
                hash=rows["workflow_hash"],
                info=json.loads(rows["workflow_info"]),
            )
        return self._workflow

    @property
    def created(self) -> float:
        return float(self.meta("created") or 0.0)

    # -- invocations ---------------------------------------------------------------------------

    def begin_invocation(self, kind: str, keep_chains: Iterable[str] = ()) -> int:
        """Record that this process starts working on the run; refuses if another one is.

        Rows a dead process wrote after the last committed barrier are marked rolled back in
        the same transaction (they are redone, or journaled again from the records of
        `keep_chains`: chains of the next layer that completed and will not run again, see
        `regions_cli.engine.runfile.resume_point`), except the deliveries of the injections the
        barrier took. The other chains' completion records go.
        """
        with self.transaction():
            for inv_id, pid in self.conn.execute(
                "SELECT id, pid FROM invocations WHERE finished IS NULL"
            ).fetchall():
                if pid != os.getpid() and pid_alive(int(pid)):
                    raise RunFileError(
                        f"{self.path}: the run is in use by another process (pid {pid})"
                    )
                self.conn.execute(
                    "UPDATE invocations SET finished = ?, status = 'interrupted' WHERE id = ?",
                    (time.time(), inv_id),
                )
            position = self.position
            keep = set(keep_chains)
            self.conn.executemany(
                "DELETE FROM chains_done WHERE layer = ? AND chain = ?",
                [(position, chain) for chain in set(self.chains_done(position)) - keep],
            )
            self._roll_back_uncommitted(position)
            cursor = self.conn.execute(
                "INSERT INTO invocations (kind, pid, started, start_position) VALUES (?, ?, ?, ?)",
                (kind, os.getpid(), time.time(), position),
            )
            return int(cursor.lastrowid or 0)

    def end_invocation(self, invocation: int, status: str, exit_code: int) -> None:
        with self.transaction():
            self.conn.execute(
                "UPDATE invocations SET finished = ?, status = ?, exit_code = ? WHERE id = ?",
                (time.time(), status, exit_code, invocation),
            )

    def invocations(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM invocations ORDER BY id"))

    def barrier_seq(self, position: int) -> int:
        """The last event journaled before barrier `position` was committed (0 if none)."""
        row = self.conn.execute(
            "SELECT event_seq FROM barriers WHERE position = ?", (position,)
        ).fetchone()
        return int(row[0]) if row else 0

    def _roll_back_uncommitted(self, position: int) -> None:
        """Mark what was journaled after barrier `position` as rolled back, except the
        deliveries of the injections the barrier took (delivered as part of it; a resume hands
        them back, see `resume_point`). The completed chains that are kept are journaled again,
        their model calls included, from their `chains_done` records, in plan order (see
        `Recorder.resume_chains`)."""
        after = self.barrier_seq(position)
        self.conn.execute("UPDATE events SET rolled_back = 1 WHERE seq > ?", (after,))
        self.conn.execute(
            "UPDATE messages SET rolled_back = 1 WHERE event_seq > ? AND injected = 0", (after,)
        )
        self.conn.execute("UPDATE steps SET rolled_back = 1 WHERE event_seq > ?", (after,))
        self.conn.execute("UPDATE llm_calls SET rolled_back = 1 WHERE event_seq > ?", (after,))

    # -- plan position and state ---------------------------------------------------------------

    @property
    def position(self) -> int:
        """The next layer to run: 0 before the first barrier, ``len(plan)`` when finished."""
        row = self.conn.execute("SELECT MAX(position) FROM barriers").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    @property
    def started(self) -> bool:
        """True once the first barrier (after the initial ``inject:``) is committed."""
        row = self.conn.execute("SELECT COUNT(*) FROM barriers").fetchone()
        return bool(row and row[0])

    def states(self, position: int | None = None) -> dict[str, dict[str, Any]]:
        """Every region's committed state at barrier `position` (default: the latest)."""
        return {region: json.loads(text) for region, text in self.state_texts(position).items()}

    def state_texts(self, position: int | None = None) -> dict[str, str]:
        """`states`, as the stored JSON text."""
        if position is None:
            position = self.position
        rows = self.conn.execute(
            "SELECT region, state FROM states s WHERE position = (SELECT MAX(position) FROM "
            "states WHERE region = s.region AND position <= ?)",
            (position,),
        ).fetchall()
        return {str(region): str(state) for region, state in rows}

    def chains_done(self, layer: int) -> dict[str, ChainDone]:
        """Chains of `layer` that completed after its barrier, in completion order."""
        if self.version < 2:
            sql = "SELECT chain, event_seq, states, '[]', '[]' FROM chains_done"
        else:
            sql = "SELECT chain, event_seq, states, events, held FROM chains_done"
        return {
            str(chain): ChainDone(
                str(chain), int(seq), json.loads(states), json.loads(events), json.loads(held)
            )
            for chain, seq, states, events, held in self.conn.execute(
                f"{sql} WHERE layer = ? ORDER BY event_seq", (layer,)
            ).fetchall()
        }

    # -- injections ----------------------------------------------------------------------------

    def add_injection(self, source: str, destination: str, role: str, content: str) -> Injected:
        """Queue a message for delivery at the next barrier (safe beside a running run).

        Refused (`RunFileError`) once the run has committed its last barrier: checked in the
        same transaction, so a message is never queued where no barrier would deliver it.
        """
        self.check_continuable()
        first_ordinal = int(self.workflow.info.get("inject", 0))
        layers = len(self.workflow.plan)
        with self.transaction():
            if self.started and self.position >= layers:
                raise RunFileError(
                    f"{self.path}: the run has finished all {layers} layers; "
                    "nothing would deliver the message"
                )
            row = self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM injections").fetchone()
            number = int(row[0]) + 1
            message = Message(
                source=source,
                destination=destination,
                role=role,
                content=content,
                origin=Origin(injected=True, ordinal=first_ordinal + number - 1),
            )
            created = time.time()
            self.conn.execute(
                "INSERT INTO injections (id, source, destination, role, content, message_id, "
                "ordinal, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    number,
                    source,
                    destination,
                    role,
                    content,
                    message.id,
                    message.origin.ordinal,
                    created,
                ),
            )
        return Injected(number, message, created, None)

    def injections(self, *, pending_only: bool = False) -> list[Injected]:
        where = " WHERE consumed_at IS NULL" if pending_only else ""
        sql = "SELECT id, source, destination, role, content, ordinal, created, consumed_at FROM "
        sql += f"injections{where} ORDER BY id"
        return [_injected(row) for row in self.conn.execute(sql).fetchall()]

    # -- reading the record --------------------------------------------------------------------

    def events(self, *, include_rolled_back: bool = False) -> Iterator[dict[str, Any]]:
        """Every recorded event's JSON (as `event_json` gives it), in emission order.

        Message events live in `messages` only; they are rebuilt here and merged by sequence.
        """
        import heapq

        where = "" if include_rolled_back else " WHERE rolled_back = 0"
        stored = (
            (int(seq), json.loads(data))
            for seq, data in self.conn.execute(f"SELECT seq, data FROM events{where} ORDER BY seq")
        )
        messages = (
            (int(row["event_seq"]), _message_event(row))
            for row in self.db.query(f"{_MESSAGES}{where} ORDER BY seq")
        )
        for _, data in heapq.merge(stored, messages, key=lambda item: item[0]):
            yield data

    def messages(self, *, include_rolled_back: bool = False) -> list[dict[str, Any]]:
        where = "" if include_rolled_back else " WHERE rolled_back = 0"
        return list(self.db.query(f"{_MESSAGES}{where} ORDER BY seq"))

    def steps(self) -> list[dict[str, Any]]:
        return list(self.db.query("SELECT * FROM steps WHERE rolled_back = 0 ORDER BY seq"))

    def usage(self, *, include_rolled_back: bool = False) -> dict[str, dict[str, int]]:
        """Tokens and calls per region (with `include_rolled_back`, also the calls of work a
        dead process did after its last barrier, redone since: what was spent)."""
        out: dict[str, dict[str, int]] = {}
        where = "" if include_rolled_back else " WHERE rolled_back = 0"
        for row in self.db.query(
            "SELECT region, COUNT(*) AS calls, SUM(prompt_tokens) AS prompt_tokens, "
            f"SUM(completion_tokens) AS completion_tokens FROM llm_calls{where} "
            "GROUP BY region ORDER BY region"
        ):
            out[str(row["region"])] = {
                "calls": int(row["calls"]),
                "prompt_tokens": int(row["prompt_tokens"] or 0),
                "completion_tokens": int(row["completion_tokens"] or 0),
            }
        return out


class _Transaction:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


def _message_event(row: Mapping[str, Any]) -> dict[str, Any]:
    message = {
        "source": row["source"],
        "destination": row["destination"],
        "role": row["role"],
        "content": row["content"],
        "origin": {
            "layer": row["layer"],
            "chain": row["chain"],
            "step": row["step"],
            "ordinal": row["ordinal"],
            "injected": bool(row["injected"]),
        },
        "cause": row["cause"],
        "id": row["id"],
    }
    if row["delivery"] == "rejected":
        return {
            "kind": ev.MessageRejected.kind,
            "t": row["t"],
            "message": message,
            "rule": row["rule"],
            "reason": row["reason"],
            "action": row["action"],
            "sender": row["sender"],
        }
    return {
        "kind": ev.MessageDelivered.kind,
        "t": row["t"],
        "message": message,
        "delivery": row["delivery"],
        "seq": row["delivery_seq"],
        "recipient": row["recipient"],
    }


def _injected(row: Sequence[Any]) -> Injected:
    number, source, destination, role, content, ordinal, created, consumed_at = row
    message = Message(
        source=source,
        destination=destination,
        role=role,
        content=content,
        origin=Origin(injected=True, ordinal=int(ordinal)),
    )
    return Injected(int(number), message, float(created), consumed_at)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------------------------------
# The recorder: subscribes to the event bus, commits barriers


@dataclass(frozen=True)
class ChainInfo:
    """Which regions a chain touches and how many steps it has (to see when it ends)."""

    regions: tuple[str, ...]
    steps: int


class Recorder:
    """Journals a running engine: an `EventBus` subscriber plus the executor's barrier hook.

    `snapshot` returns the current state of the named regions (the engine's ``snapshot()``);
    with it, a chain that completes inside a layer is journaled with its regions' state so a
    resumed run does not run it again.
    """

    def __init__(
        self,
        run: RunFile,
        invocation: int,
        *,
        snapshot: Callable[[Sequence[str]], Mapping[str, Mapping[str, Any]]] | None = None,
    ) -> None:
        self.run = run
        self.invocation = invocation
        self.snapshot = snapshot
        self._buffer: list[ev.Event] = []
        self._layer: int | None = None
        self._layer_failed = False
        self._chains = _chain_table(run.workflow.plan)
        # the JSON of each region's last committed state; only regions touched since (a step
        # ran, a message arrived) are serialised again at the next barrier
        self._last_states: dict[str, str] = run.state_texts()
        self._touched: set[str] = set()
        row = run.conn.execute(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM events), "
            "(SELECT COALESCE(MAX(seq), 0) FROM messages), "
            "(SELECT COALESCE(MAX(seq), 0) FROM steps), "
            "(SELECT COALESCE(MAX(seq), 0) FROM llm_calls)"
        ).fetchone()
        self._event_seq, self._message_seq, self._step_seq, self._llm_seq = (int(v) for v in row)
        self._deferred: tuple[int, Mapping[str, Mapping[str, Any]]] | None = None
        self.failure: str | None = None  # why the run file could not be written, if it failed
        self._chain_work: dict[tuple[int, str], float] = {}  # seconds of steps, per chain
        self._pending_chains: list[
            tuple[int, str, float, int, dict[str, Any], list[ev.Event], list[Any]]
        ] = []
        # Plan order: the events of the running layer's chains wait here, per chain, and go
        # to the journal in declaration order when the layer's chains are over; delivery
        # numbers are given in that order (a listener's copy repeats its message's number).
        self._held: dict[str, list[ev.Event]] = {}
        self._order: list[str] = []
        self._resumed: tuple[int, dict[str, list[ev.Event]]] | None = None
        row = run.conn.execute(
            "SELECT COALESCE(MAX(delivery_seq), 0) FROM messages WHERE rolled_back = 0"
        ).fetchone()
        self._delivery_seq = int(row[0])
        self._numbered: dict[str, int] = {}  # message id -> its delivery number
        #: what a chain has posted for the barrier (the postmaster's `held`), set by the runner
        self.held: Callable[[str], Sequence[Any]] | None = None

    def resume_chains(self, layer: int, chains: Mapping[str, ChainDone]) -> None:
        """Journal the events of `chains`, completed in `layer` before a resume, in their
        place in the plan order (they do not run again)."""
        events: dict[str, list[ev.Event]] = {}
        for name, done in chains.items():
            events[name] = [e for e in map(event_from_json, done.events) if e is not None]
            self._touched.update(done.states)
        self._resumed = (layer, events)

    # -- the EventBus subscriber ---------------------------------------------------------------

    def __call__(self, event: ev.Event) -> None:
        """Buffer `event`; flush at chain ends, barriers and the end of the run.

        The hot path (a delivered message) is one type check and a list append. A subscriber
        must not raise: a failed write (disk full...) is kept in `failure` and stops the run
        at its next barrier (`commit_barrier` raises it).
        """
        if self.failure is not None:
            return
        try:
            self._take(event)
        except sqlite3.Error as exc:
            self.failure = f"{self.run.path}: cannot write the run file: {exc}"

    def _take(self, event: ev.Event) -> None:
        chain = ev.CURRENT_CHAIN.get()
        if chain is None:
            if self._held:  # the layer's chains are over: their events, in plan order
                self._release()
            target = self._buffer
        else:
            target = self._held.get(chain) or self._held.setdefault(chain, [])
        if isinstance(event, ev.MessageDelivered):
            self._touched.add(event.recipient or event.message.destination)
        elif isinstance(event, ev.StepFinished):
            target.append(event)
            self._touched.add(event.region)
            key = (event.layer, event.chain)
            work = self._chain_work.get(key, 0.0) + event.duration
            if event.outcome in ("failed", "timeout", "cancelled"):
                self._layer_failed = True
                self._chain_work[key] = work
            elif self._chain_complete(event):  # a step's last event: the chain is over
                self._chain_work.pop(key, None)
                self._record_chain_done(event.layer, event.chain, work)
            else:
                self._chain_work[key] = work
            return
        elif isinstance(event, ev.LayerStarted):
            self._layer_failed = False
            if self._deferred is not None:  # the run went on after a failed layer: commit it
                self._commit(*self._deferred, take_injections=False)
            self._start_layer(event.layer)
        elif isinstance(event, ev.LayerFinished):
            self._layer_failed = self._layer_failed or not event.ok
        elif isinstance(event, ev.RunFinished):
            self._buffer.append(event)
            self.flush()
            return
        target.append(event)
        if len(self._buffer) >= MAX_BUFFERED_EVENTS:
            self.flush()

    def _start_layer(self, layer: int) -> None:
        self._order = [chain for (index, chain) in self._chains if index == layer]
        self._held = {}
        if self._resumed is not None and self._resumed[0] == layer:
            self._held.update(self._resumed[1])
            self._resumed = None

    def _release(self) -> None:
        """Move the held chain events to the journal's buffer, chains in declaration order
        (a chain the plan does not name, which cannot happen from the CLI, goes last)."""
        held, self._held = self._held, {}
        for chain in self._order:
            self._buffer.extend(held.pop(chain, ()))
        for events in held.values():
            self._buffer.extend(events)

    def touch(self, region: str) -> None:
        """Say that `region`'s state changed without an event (a resume handing a message
        back): its state is written again at the next barrier."""
        self._touched.add(region)

    def _chain_complete(self, event: ev.StepFinished) -> bool:
        info = self._chains.get((event.layer, event.chain))
        return info is not None and event.step == info.steps - 1

    def _record_chain_done(self, layer: int, chain: str, work: float) -> None:
        """Keep the record of a chain that completed inside a layer (see `resume_point`): its
        regions' state, its events, and what it posted for the barrier.

        A chain that worked for `CHAIN_COMMIT_SECONDS` or more is committed at once, so a
        killed run does not redo it; a quicker one rides along with the next write (redoing
        it would cost less than a commit per chain).
        """
        if self.snapshot is None or self.failure is not None:
            return
        info = self._chains[(layer, chain)]
        states = {name: dict(state) for name, state in self.snapshot(info.regions).items()}
        # Kept as objects: serialised only if written before the barrier (which usually
        # comes first and makes the record unnecessary).
        events = list(self._held.get(chain, ()))
        held = list(self.held(chain)) if self.held is not None else []
        self._pending_chains.append(
            (layer, chain, time.time(), self._event_seq + len(self._buffer), states, events, held)
        )
        if work >= CHAIN_COMMIT_SECONDS:
            self.flush()

    def flush(self) -> None:
        """Write the buffered events (and completed chains) in one transaction."""
        if not self._buffer and not self._pending_chains:
            return
        with self.run.transaction() as conn:
            self._write_buffer(conn)

    def _write_buffer(self, conn: sqlite3.Connection) -> None:
        """Insert the buffered events. Messages go to `messages` only (their event is rebuilt
        from the row: see `RunFile.events`); other events are stored as their JSON."""
        if self._pending_chains:
            chains, self._pending_chains = self._pending_chains, []
            conn.executemany(
                "INSERT OR REPLACE INTO chains_done (layer, chain, t, event_seq, states, events, "
                "held) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        layer,
                        chain,
                        t,
                        seq,
                        json.dumps(states, sort_keys=True, ensure_ascii=False),
                        json.dumps([event_json(e) for e in events], ensure_ascii=False),
                        json.dumps([item.to_json() for item in held], ensure_ascii=False),
                    )
                    for layer, chain, t, seq, states, events, held in chains
                ],
            )
        if not self._buffer:
            return
        buffered, self._buffer = self._buffer, []
        event_rows: list[tuple[Any, ...]] = []
        message_rows: list[tuple[Any, ...]] = []
        rejection_rows: list[tuple[Any, ...]] = []
        step_rows: list[tuple[Any, ...]] = []
        llm_rows: list[tuple[Any, ...]] = []
        dumps = json.dumps
        invocation = self.invocation
        seq = self._event_seq
        message_seq = self._message_seq
        layer = self._layer
        numbered = self._numbered
        for event in buffered:
            seq += 1
            if isinstance(event, ev.MessageDelivered | ev.MessageRejected):
                m = event.message
                o = m.origin
                message_seq += 1
                if isinstance(event, ev.MessageDelivered):
                    delivery, recipient = event.delivery, event.recipient
                    delivery_seq = numbered.get(m.id)
                    if delivery_seq is None:
                        delivery_seq = numbered[m.id] = self._delivery_seq = self._delivery_seq + 1
                else:
                    delivery, delivery_seq, recipient = "rejected", None, None
                    rejection_rows.append(
                        (message_seq, event.rule, event.reason, event.action, event.sender)
                    )
                message_rows.append(
                    (
                        message_seq,
                        seq,
                        m.id,
                        m.source,
                        m.destination,
                        m.role,
                        m.content,
                        o.layer,
                        o.chain,
                        o.step,
                        o.ordinal,
                        o.injected,
                        m.cause,
                        delivery,
                        delivery_seq,
                        recipient,
                        event.t,
                    )
                )
                continue
            chain: str | None = None
            if isinstance(event, ev.LayerStarted):
                layer = event.layer
                numbered.clear()  # a message's deliveries all happen within one layer
            elif isinstance(event, ev.StepStarted | ev.StepFinished):
                chain = event.chain
            event_rows.append(
                (
                    seq,
                    invocation,
                    event.kind,
                    event.t,
                    layer,
                    chain,
                    getattr(event, "region", None),
                    dumps(event_json(event), ensure_ascii=False),
                )
            )
            if isinstance(event, ev.StepFinished):
                self._step_seq += 1
                step_rows.append(
                    (
                        self._step_seq,
                        seq,
                        event.layer,
                        event.chain,
                        event.step,
                        event.region,
                        event.method,
                        event.outcome,
                        event.t - event.duration,
                        event.t,
                        event.duration,
                        event.error,
                        event.detail,
                    )
                )
            elif isinstance(event, ev.LLMCalled):
                self._llm_seq += 1
                llm_rows.append(
                    (
                        self._llm_seq,
                        seq,
                        event.region,
                        event.llm,
                        event.purpose,
                        event.prompt_tokens,
                        event.completion_tokens,
                        event.duration,
                        event.error,
                        event.t,
                    )
                )
        self._event_seq, self._message_seq, self._layer = seq, message_seq, layer
        if event_rows:
            conn.executemany(
                "INSERT INTO events (seq, invocation, kind, t, layer, chain, region, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                event_rows,
            )
        if message_rows:
            conn.executemany(
                "INSERT INTO messages (seq, event_seq, id, source, destination, role, content, "
                "layer, chain, step, ordinal, injected, cause, delivery, delivery_seq, "
                "recipient, t) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                message_rows,
            )
        if rejection_rows:
            conn.executemany(
                "INSERT INTO rejections (message_seq, rule, reason, action, sender) "
                "VALUES (?, ?, ?, ?, ?)",
                rejection_rows,
            )
        if step_rows:
            conn.executemany(
                "INSERT INTO steps (seq, event_seq, layer, chain, step, region, method, outcome, "
                "started, finished, duration, error, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                step_rows,
            )
        if llm_rows:
            conn.executemany(
                "INSERT INTO llm_calls (seq, event_seq, region, llm, purpose, prompt_tokens, "
                "completion_tokens, duration, error, t) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                llm_rows,
            )

    # -- the barrier hook ----------------------------------------------------------------------

    def commit_barrier(
        self, next_layer: int, states: Mapping[str, Mapping[str, Any]]
    ) -> list[Message]:
        """Commit the barrier before layer `next_layer` and take the queued injections.

        One ``BEGIN IMMEDIATE`` transaction writes the buffered events, the changed region
        states, the plan position, and marks the pending injections consumed: a crash leaves
        either all of it or none.

        After a failed layer the commit waits: if the run goes on (``on_failure: continue``)
        it happens when the next layer starts; if the run stops there, the position stays, so
        a resume runs the failed chains again (the completed ones are kept). Injections wait
        for the next committed barrier.
        """
        if self.failure is not None:
            raise RunFileError(self.failure)
        try:
            if self._layer_failed and next_layer > 0:
                self._deferred = (next_layer, states)
                self.flush()
                return []
            return self._commit(next_layer, states, take_injections=True)
        except sqlite3.Error as exc:
            self.failure = f"{self.run.path}: cannot write the run file: {exc}"
            raise RunFileError(self.failure) from exc

    def _commit(
        self, next_layer: int, states: Mapping[str, Mapping[str, Any]], *, take_injections: bool
    ) -> list[Message]:
        self._deferred = None
        # chains of the layer that just ended need no record: the barrier covers them
        self._pending_chains = [c for c in self._pending_chains if c[0] >= next_layer]
        with self.run.transaction() as conn:
            self._write_buffer(conn)
            committed = conn.execute(
                "SELECT 1 FROM barriers WHERE position = ?", (next_layer,)
            ).fetchone()
            # A committed barrier is never rewritten: a resumed run or the next `step` starts
            # at it again, and only takes the injections queued meanwhile.
            if not committed:
                changed: list[tuple[str, int, str]] = []
                for region, state in states.items():
                    if region in self._last_states and region not in self._touched:
                        continue
                    text = json.dumps(state, sort_keys=True, ensure_ascii=False)
                    if self._last_states.get(region) != text:
                        changed.append((region, next_layer, text))
                        self._last_states[region] = text
                self._touched.clear()
                conn.execute(
                    "INSERT INTO barriers (position, t, invocation, event_seq) VALUES (?, ?, ?, ?)",
                    (next_layer, time.time(), self.invocation, self._event_seq),
                )
                conn.executemany(
                    "INSERT OR REPLACE INTO states (region, position, state) VALUES (?, ?, ?)",
                    changed,
                )
                conn.execute("DELETE FROM chains_done WHERE layer < ?", (next_layer,))
            if not take_injections:
                return []
            rows = conn.execute(
                "SELECT id, source, destination, role, content, ordinal, created, consumed_at "
                "FROM injections WHERE consumed_at IS NULL ORDER BY id"
            ).fetchall()
            conn.executemany(
                "UPDATE injections SET consumed_at = ? WHERE id = ?",
                [(next_layer, row[0]) for row in rows],
            )
        return [_injected(row).message for row in rows]

    async def at_barrier(self, barrier: Any) -> Sequence[Message]:
        """The executor's `BarrierHook`."""
        return self.commit_barrier(barrier.next_layer, barrier.states)


def _chain_table(plan: Sequence[Mapping[str, Any]]) -> dict[tuple[int, str], ChainInfo]:
    """(layer, chain) -> the chain's regions and step count, for the whole plan."""
    table: dict[tuple[int, str], ChainInfo] = {}
    for index, layer in enumerate(plan):
        for chain, steps in (layer.get("chains") or {}).items():
            regions = tuple(dict.fromkeys(str(step).partition(".")[0] for step in steps))
            table[(index, str(chain))] = ChainInfo(regions, len(steps))
    return table
