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
* ``barriers``    each committed layer barrier (``position`` = the layers run so far, which for a
                  plain plan is the next layer to run; a state machine's ``cursor`` says
                  which state and layer come next, the visits and the current visit's log).
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
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regions_cli.engine.message import ROLES, Message
from regions_cli.private_files import create_private_file
from regions_cli.runs.codec import injected_message, message_event
from regions_cli.text import unknown

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
    event_seq INTEGER NOT NULL, cursor TEXT);
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

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: a file already exists there; choose another --run path")


# ---------------------------------------------------------------------------------------------
# The run file


@dataclass(frozen=True)
class WorkflowRecord:
    """What a run file remembers of its workflow."""

    name: str
    path: str  # the workflow file, absolute, as it was when the run was created
    text: str  # the file's raw text (``${VAR}`` not interpolated: no secrets)
    canonical: str  # canonical JSON of the document (see `regions_cli.runs.resume`)
    hash: str  # sha256 of `canonical`
    info: Mapping[str, Any]  # {"regions": {name: type}, "plan": [...], "inject": n}

    @property
    def regions(self) -> Mapping[str, str]:
        return dict(self.info.get("regions") or {})

    @property
    def plan(self) -> list[dict[str, Any]]:
        """``[{"label": ..., "chains": {chain: ["Region.method", ...]}}]`` in plan order."""
        return list(self.info.get("plan") or [])

    @property
    def states(self) -> Mapping[str, Mapping[str, int]]:
        """A machine's states: ``{name: {"first": index, "count": layers}}`` ({} for a plan)."""
        return dict(self.info.get("states") or {})

    def injection_problem(self, to: str, role: str) -> str | None:
        """Why a message to `to` with `role` cannot be injected into this run, or None."""
        if to not in self.regions:
            return unknown("region", to, self.regions)
        if role not in ROLES:
            return f"bad role {role!r} (use request or reply)"
        return None


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
        self._has_cursor = any(
            row[1] == "cursor" for row in conn.execute("PRAGMA table_info(barriers)")
        )

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
            raise RunFileExistsError(path) from None
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
        `regions_cli.runs.resume.resume_point`), except the deliveries of the injections the
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
        """The layers run so far (0 before the first barrier); for a plain plan, the next
        layer to run (``len(plan)`` when finished)."""
        row = self.conn.execute("SELECT MAX(position) FROM barriers").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    def cursor(self, position: int | None = None) -> dict[str, Any] | None:
        """A state machine's cursor at barrier `position` (default: the latest); None for a
        plain plan (or before the first barrier)."""
        if not self._has_cursor:
            return None
        row = self.conn.execute(
            "SELECT cursor FROM barriers WHERE position = ?",
            (self.position if position is None else position,),
        ).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def next_layer(self, position: int | None = None) -> int:
        """The plan index of the layer that runs after barrier `position` (default: the
        latest): the position itself for a plain plan, the cursor's layer for a machine."""
        cursor = self.cursor(position)
        if cursor is not None:
            return int(cursor["layer"])
        return self.position if position is None else position

    @property
    def started(self) -> bool:
        """True once the first barrier (after the initial ``inject:``) is committed."""
        row = self.conn.execute("SELECT COUNT(*) FROM barriers").fetchone()
        return bool(row and row[0])

    @property
    def finished(self) -> bool:
        """True once the run has nothing left to run (its last barrier is committed): every
        layer of a plan, or a machine's transition to ``end``."""
        return self.started and self.next_layer() >= len(self.workflow.plan)

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
            if self.finished:
                what = "reached end" if self.cursor() is not None else f"all {layers} layers"
                raise RunFileError(
                    f"{self.path}: the run has finished {what}; nothing would deliver the message"
                )
            row = self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM injections").fetchone()
            number = int(row[0]) + 1
            message = injected_message(
                source, destination, role, content, first_ordinal + number - 1
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
        """Every recorded event's JSON (as `Event.to_json` gives it), in emission order.

        Message events live in `messages` only; they are rebuilt here and merged by sequence.
        """
        import heapq

        where = "" if include_rolled_back else " WHERE rolled_back = 0"
        stored = (
            (int(seq), json.loads(data))
            for seq, data in self.conn.execute(f"SELECT seq, data FROM events{where} ORDER BY seq")
        )
        messages = (
            (int(row["event_seq"]), message_event(row))
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

    # -- what the recorder writes, inside its `transaction` ---------------------------------

    def last_seqs(self) -> tuple[int, int, int, int]:
        """The last sequence numbers of events, messages, steps and LLM calls."""
        row = self.conn.execute(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM events), "
            "(SELECT COALESCE(MAX(seq), 0) FROM messages), "
            "(SELECT COALESCE(MAX(seq), 0) FROM steps), "
            "(SELECT COALESCE(MAX(seq), 0) FROM llm_calls)"
        ).fetchone()
        events, messages, steps, llm_calls = (int(v) for v in row)
        return events, messages, steps, llm_calls

    def last_delivery_seq(self) -> int:
        """The delivery number of the last delivery that stands (rolled-back ones do not)."""
        row = self.conn.execute(
            "SELECT COALESCE(MAX(delivery_seq), 0) FROM messages WHERE rolled_back = 0"
        ).fetchone()
        return int(row[0])

    def write_chains_done(self, rows: Iterable[tuple[Any, ...]]) -> None:
        """Rows ``(layer, chain, t, event_seq, states, events, held)``, JSON where structured."""
        self.conn.executemany(
            "INSERT OR REPLACE INTO chains_done (layer, chain, t, event_seq, states, events, "
            "held) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )

    def write_journal(
        self,
        events: Sequence[tuple[Any, ...]],
        messages: Sequence[tuple[Any, ...]],
        rejections: Sequence[tuple[Any, ...]],
        steps: Sequence[tuple[Any, ...]],
        llm_calls: Sequence[tuple[Any, ...]],
    ) -> None:
        """Insert journal rows, each in its table's column order (see the schema)."""
        for sql, rows in (
            (
                "INSERT INTO events (seq, invocation, kind, t, layer, chain, region, data) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                events,
            ),
            (
                "INSERT INTO messages (seq, event_seq, id, source, destination, role, content, "
                "layer, chain, step, ordinal, injected, cause, delivery, delivery_seq, "
                "recipient, t) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                messages,
            ),
            (
                "INSERT INTO rejections (message_seq, rule, reason, action, sender) "
                "VALUES (?, ?, ?, ?, ?)",
                rejections,
            ),
            (
                "INSERT INTO steps (seq, event_seq, layer, chain, step, region, method, outcome, "
                "started, finished, duration, error, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                steps,
            ),
            (
                "INSERT INTO llm_calls (seq, event_seq, region, llm, purpose, prompt_tokens, "
                "completion_tokens, duration, error, t) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                llm_calls,
            ),
        ):
            if rows:
                self.conn.executemany(sql, rows)

    def barrier_committed(self, position: int) -> bool:
        row = self.conn.execute("SELECT 1 FROM barriers WHERE position = ?", (position,))
        return row.fetchone() is not None

    def write_barrier(
        self,
        position: int,
        invocation: int,
        event_seq: int,
        states: Iterable[tuple[str, str]],
        cursor: Mapping[str, Any] | None = None,
    ) -> None:
        """Commit the barrier at `position`: the changed region `states` (name, JSON), a
        machine's `cursor`, and the end of the records of chains completed before it."""
        if cursor is not None and not self._has_cursor:  # a file from before machines
            self.conn.execute("ALTER TABLE barriers ADD COLUMN cursor TEXT")
            self._has_cursor = True
        columns = "position, t, invocation, event_seq"
        values: list[Any] = [position, time.time(), invocation, event_seq]
        if self._has_cursor:
            columns += ", cursor"
            values.append(None if cursor is None else json.dumps(cursor, sort_keys=True))
        marks = ", ".join("?" * len(values))
        self.conn.execute(f"INSERT INTO barriers ({columns}) VALUES ({marks})", values)
        self.conn.executemany(
            "INSERT OR REPLACE INTO states (region, position, state) VALUES (?, ?, ?)",
            [(region, position, text) for region, text in states],
        )
        self.conn.execute("DELETE FROM chains_done WHERE layer < ?", (position,))

    def take_injections(self, position: int) -> list[Message]:
        """Mark the pending injections consumed by the barrier before layer `position`."""
        pending = self.injections(pending_only=True)
        self.conn.executemany(
            "UPDATE injections SET consumed_at = ? WHERE id = ?",
            [(position, item.row) for item in pending],
        )
        return [item.message for item in pending]

    def messages_after(self, event_seq: int) -> list[dict[str, Any]]:
        """Messages journaled after event `event_seq`, rejected ones left out, in order."""
        return list(
            self.db.query(
                "SELECT * FROM messages WHERE event_seq > ? AND delivery != 'rejected' "
                "ORDER BY seq",
                (event_seq,),
            )
        )


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


def _injected(row: Sequence[Any]) -> Injected:
    number, source, destination, role, content, ordinal, created, consumed_at = row
    message = injected_message(source, destination, role, content, int(ordinal))
    return Injected(int(number), message, float(created), consumed_at)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
