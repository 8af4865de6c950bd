"""The SQLite backend: writes on the event loop's own thread, reads on a reader thread, checkpoints apart.

Why writes run on the loop's thread: an operation (a generator, see store.py) is a handful of statements of
a few microseconds each. Handing it to a database thread costs more than running it: every statement
releases the GIL, and getting it back from a busy event loop waited up to a switch interval (measured: 0.5
ms per `BEGIN`, the candidate search 270 µs instead of 60; bench/RESULTS.md). So a write operation runs start to
finish on the loop's thread inside `BEGIN IMMEDIATE … COMMIT` without awaiting anything: write operations are
serialised by construction and no other coroutine sees one half done.

Group commit: write operations that arrive in the same turn of the event loop run together, each inside its
own SAVEPOINT (a failing one is rolled back alone), under one COMMIT, after the prelude of the first (see
store.py). Each caller gets its answer only after the commit.

A slow write (`slow=True`: a bulk import, pruning the log) runs the same way but on a thread, so that
heartbeats, reads and the event stream are answered meanwhile; the writes that arrive wait for it.

Reads (`write=False`: lists, analytics, exports, which may be long) run on a reader thread with a
connection of their own, so they never hold up the loop; WAL gives each a consistent snapshot of what was
committed. Checkpoints (copying the WAL back into the database, the only step that syncs to disk) run on a
checkpoint thread with a third connection, instead of inside whichever COMMIT crossed the threshold; the
writer finishes each round between two groups, so that the WAL starts again (`_Checkpointer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from owp_bot.config import ConfigError
from owp_bot.scheduler.store import (
    Committed,
    Emit,
    Event,
    MakeOp,
    Op,
    Outcome,
    Stmt,
    compact_json,
    load_queries,
    migrations,
    share_prelude,
)

T = TypeVar("T")
R = TypeVar("R")
MAX_GROUP = 64  # operations per group commit: bounds how long the first one in a group waits for the others
# seconds between checkpoint rounds (a no-op when nothing was written). Not more often: restarting the WAL
# makes every connection drop its page cache, and the candidate search then took 150 µs instead of 45 (bench/RESULTS.md)
CHECKPOINT_EVERY = 10.0
# When the WAL starts again it is cut back to this size if it grew past it. Cutting a WAL of a few hundred MB
# back to 64 MB took 50-100 ms every round in the benchmark's worker loop, all of it with the writes waiting;
# so only a WAL grown past 1 GiB (a burst far beyond the benchmark's) is cut, and the file otherwise keeps the
# size of the largest round and is written over from its beginning (docs/operations.md, "Disk").
WAL_SIZE_LIMIT = 1 << 30
_HERE = Path(__file__).parent
QUERIES = load_queries(_HERE / "sql" / "sqlite")
MIGRATIONS = migrations(_HERE / "migrations" / "sqlite")


def statements_of(sql: str) -> list[tuple[str, int, bool]]:
    """The statements of a named statement, each with how many parameters it binds (its highest `?n`) and
    whether it names a column an earlier one returned.

    A few named statements are several statements here and one on PostgreSQL, where a data-modifying `WITH` saves
    round trips (`lease_grant`: insert the lease, lease the task); they run in order in the operation's
    transaction, and the answer is the last one's, with the columns an earlier one returned (as the `WITH`'s
    `RETURNING …, (SELECT … FROM earlier)`: null when it returned no row). A later statement may name those
    columns as parameters, `:column` (as the `WITH` names `earlier.column`); its `?n` become `:pn` then, because
    SQLite numbers `:name` parameters after the highest `?n`, and `?2` beside `:column` may be the same one."""
    code = re.sub(r"--[^\n]*", "", sql)  # a comment may end in ";" too
    parts = [part.strip() for part in re.split(r";\s*\n", code) if part.strip()]
    found = []
    for index, part in enumerate(parts):
        arity = max((int(n) for n in re.findall(r"\?(\d+)", part)), default=0)
        named = index > 0 and re.search(r"(?<![:\w]):[a-z_]+", part) is not None
        found.append((re.sub(r"\?(\d+)", r":p\1", part) if named else part, arity, named))
    return found


_STATEMENTS = {name: statements_of(sql) for name, sql in QUERIES.items()}


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    # the default page cache (2 MB) is smaller than the indexes at 100k tasks (bench/RESULTS.md)
    conn.execute("PRAGMA cache_size=-65536")
    # Temporary b-trees (an `IN (…)` list, GROUP BY, DISTINCT) in memory. With SQLite's default, each one got a
    # pager of its own for a temporary file, and fresh page-cache memory from the OS every time a statement or
    # trigger ran: the in-flight trigger's `status IN (…)` lists alone cost a lease ~270 µs (bench/RESULTS.md,
    # eleventh session). They stay small: the lists are a few values, the sorts a page of answers. In memory one
    # still costs ~20,000 instructions (a page allocated and zeroed), so what every lease runs builds none
    # (migration 030, tests/test_query_plans.py).
    conn.execute("PRAGMA temp_store=MEMORY")
    return conn


@dataclass(slots=True)
class _Waiting:
    """A write operation waiting for its group."""

    make_op: MakeOp[Any]
    slow: bool
    prelude: MakeOp[Committed] | None
    answer: asyncio.Future[tuple[Any, list[Event]]]


class SQLiteStore:
    """`writes=False`: reads only, for a front process (writer_link.py), whose writes the writer process makes;
    the database must exist, migrated."""

    def __init__(self, path: Path | str, *, writes: bool = True) -> None:
        self.path = Path(path)
        self.writes = writes
        self._writer: sqlite3.Connection | None = None
        self._reads: ThreadPoolExecutor | None = None
        self._reader: sqlite3.Connection | None = None
        self._checkpoints: _Checkpointer | None = None
        self._slow_writes: ThreadPoolExecutor | None = None
        self._waiting: list[_Waiting] = []
        self._committer: asyncio.Task[None] | None = None

    # -- lifecycle

    async def open(self) -> None:
        if self.writes:
            self._writer = self._open_writer()
            self._slow_writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="owp-sqlite-slow-write")
            self._checkpoints = _Checkpointer(self.path)
        self._reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="owp-sqlite-read")
        self._reader = await self._read(lambda: _reader_connection(self.path))

    def _open_writer(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            writer = _connect(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"cannot open the SQLite database {self.path}: {exc}; set OWP_DB_PATH to a file in "
                              "a directory this user may write") from None
        try:
            writer.execute("PRAGMA journal_mode=WAL")
            writer.execute("PRAGMA synchronous=NORMAL")
            writer.execute("PRAGMA wal_autocheckpoint=0")  # the checkpoint thread does it
            writer.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            _migrate(writer)
        except BaseException:
            writer.close()
            raise
        return writer

    async def close(self) -> None:
        if self._reads is None:
            return
        if self._committer is not None:
            await self._committer  # what was asked before close is answered
        if self._reader is not None:
            await self._read(self._reader.close)
            self._reader = None
        self._reads.shutdown(wait=True)
        self._reads = None
        if self._writer is None:
            return
        assert self._checkpoints is not None
        if self._slow_writes is not None:
            self._slow_writes.shutdown(wait=True)
            self._slow_writes = None
        await asyncio.get_running_loop().run_in_executor(None, self._checkpoints.stop)
        self._writer.execute("PRAGMA optimize")
        self._writer.close()  # the last connection out checkpoints the rest
        self._writer = self._checkpoints = None

    async def ready(self) -> bool:
        reader = self._reader
        if reader is None:
            return False
        try:
            found = await self._read(lambda: reader.execute("SELECT version FROM schema_migrations").fetchall())
        except sqlite3.Error:
            return False
        return {row[0] for row in found} >= {version for version, _, _ in MIGRATIONS}

    # -- operations

    async def run(self, make_op: MakeOp[T], *, write: bool = True, slow: bool = False,
                  prelude: MakeOp[Committed] | None = None) -> tuple[T, list[Event]]:
        reader = self._reader
        if reader is None:
            raise RuntimeError("the SQLite store is not open")
        if not write:
            return await self._read(lambda: _read_transaction(reader, make_op()))
        if self._writer is None:
            raise RuntimeError("this SQLite store only reads: a front process sends its writes to the writer process")
        answer: asyncio.Future[tuple[Any, list[Event]]] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(make_op, slow, prelude, answer))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_waiting(), name="owp-sqlite-group-commit")
        return await answer

    async def _commit_waiting(self) -> None:
        """Run what waits, a group per turn of the loop, until nothing does; then end (run() starts it again)."""
        writer, checkpoints = self._writer, self._checkpoints
        assert writer is not None and checkpoints is not None  # close() waits for this task before closing them
        while self._waiting:
            if checkpoints.copied.is_set():  # writes wait meanwhile; the loop goes on serving everything else
                await asyncio.get_running_loop().run_in_executor(self._slow_writes, checkpoints.finish, writer)
            await asyncio.sleep(0)  # the other requests of this turn join the group
            group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            makers = [w.make_op for w in group]
            prelude = next((w.prelude for w in group if w.prelude is not None), None)
            try:
                if any(w.slow for w in group):  # the writes arriving meanwhile wait in self._waiting
                    outcomes, committed = await asyncio.get_running_loop().run_in_executor(
                        self._slow_writes, _write_group, writer, makers, prelude)
                else:
                    outcomes, committed = _write_group(writer, makers, prelude)
                if committed is not None:
                    committed()
            except Exception as exc:  # BEGIN, the prelude or COMMIT failed: nothing of the group was kept
                outcomes = [exc] * len(group)
            for waiting, outcome in zip(group, outcomes, strict=True):
                if waiting.answer.done():  # the caller went away; its operation ran all the same
                    continue
                if isinstance(outcome, BaseException):
                    waiting.answer.set_exception(outcome)
                else:
                    waiting.answer.set_result(outcome)

    async def _read(self, fn: Callable[[], R]) -> R:
        if self._reads is None:
            raise RuntimeError("the SQLite store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._reads, fn)


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                 " applied_at TEXT NOT NULL DEFAULT (datetime('now')))")
    applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    for version, name, sql in MIGRATIONS:
        if version in applied:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_script(sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (version, name))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _reader_connection(path: Path) -> sqlite3.Connection:
    conn = _connect(path)
    conn.execute("PRAGMA query_only=ON")
    return conn


def _write_group(conn: sqlite3.Connection, makers: list[MakeOp[Any]],
                 prelude: MakeOp[Committed] | None) -> tuple[list[Outcome], Committed | None]:
    """One transaction, the prelude first; each operation in a savepoint: its answer and events, or what it
    raised; and what the prelude asks to do now that the transaction is committed (None if it was not)."""
    outcomes: list[Outcome] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        committed, first = _drive(conn, prelude()) if prelude is not None else (None, [])
        for make_op in makers:
            conn.execute("SAVEPOINT operation")
            try:
                outcomes.append(_drive(conn, make_op()))
            except Exception as exc:
                conn.execute("ROLLBACK TO operation")
                outcomes.append(exc)
            conn.execute("RELEASE operation")
        if not share_prelude(first, outcomes):
            conn.execute("ROLLBACK")
            return outcomes, None
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return outcomes, committed


def _read_transaction(conn: sqlite3.Connection, op: Op[T]) -> tuple[T, list[Event]]:
    conn.execute("BEGIN")  # one snapshot for the whole operation
    try:
        return _drive(conn, op)
    finally:
        conn.execute("COMMIT")


def _drive(conn: sqlite3.Connection, op: Op[T]) -> tuple[T, list[Event]]:
    events: list[Event] = []
    answer: Any = None
    while True:
        try:
            request = op.send(answer)
        except StopIteration as done:
            return done.value, events
        if isinstance(request, Emit):
            events.append(Event(_emit(conn, request), request.ts, request.type, request.actor, request.target,
                                request.repo, request.details))
            answer = None
        else:
            answer = _execute(conn, request)


def _execute(conn: sqlite3.Connection, stmt: Stmt) -> Any:
    *earlier, last = _STATEMENTS[stmt.name]
    returned: dict[str, Any] = {}

    def bound(arity: int, named: bool) -> Any:
        params = stmt.params[:arity]
        return {**{f"p{n}": value for n, value in enumerate(params, 1)}, **returned} if named else params

    for part, arity, named in earlier:
        cursor = conn.execute(part, bound(arity, named))
        row = cursor.fetchone()
        returned.update(dict(row) if row is not None else dict.fromkeys(d[0] for d in cursor.description or ()))
    sql, arity, named = last
    cursor = conn.execute(sql, bound(arity, named))
    if returned and stmt.fetch == "one":
        row = cursor.fetchone()
        return None if row is None else {**dict(row), **returned}
    if stmt.fetch == "one":
        return cursor.fetchone()
    if stmt.fetch == "all":
        return cursor.fetchall()
    return cursor.rowcount


def _emit(conn: sqlite3.Connection, event: Emit) -> int:
    cursor = conn.execute(QUERIES["event_insert"], (event.ts, event.type, event.actor, event.target, event.repo,
                                                    compact_json(event.details)))
    if cursor.lastrowid is None:  # never after an INSERT into a rowid table; an event is not numbered 0 instead
        raise RuntimeError("the event's insert gave no rowid")
    return cursor.lastrowid


class _Checkpointer:
    """Copies the WAL back into the database every CHECKPOINT_EVERY seconds, in two steps.

    A thread copies what the WAL holds (PASSIVE: it never waits for, or holds up, the writer or the readers).
    The WAL can start again from its beginning only once every frame in it is copied, and a writer that commits
    every few milliseconds appends new ones while the thread copies; so the writer finishes the round itself
    (`finish`), before its next group, copying only what it appended meanwhile. It does that on a thread of
    its own, because the copy ends with an fsync (25-45 ms in the benchmark), which the event loop must not
    wait for; writes wait, everything else is served. Its next transaction then starts the WAL again. Without
    that step the WAL grew by every byte written for as long as the writes went on (60 MB/s in the benchmark's
    worker loop), and each COMMIT took longer as it grew.
    """

    def __init__(self, path: Path) -> None:
        self._conn = _connect(path)
        self._stop = threading.Event()
        self.copied = threading.Event()  # the thread's round is done: the writer finishes it
        self._thread = threading.Thread(target=self._loop, name="owp-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(CHECKPOINT_EVERY):
            try:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:  # busy or locked: the next round tries again
                continue
            self.copied.set()

    def finish(self, writer: sqlite3.Connection) -> None:
        """On the writer's connection, between its transactions: copy what the thread's round left, then start
        the WAL again with a one-page write. The first write after a complete checkpoint starts the WAL from
        its beginning, and with `synchronous=NORMAL` it syncs the new header to disk first: made by the next
        COMMIT, that held up the event loop's thread for 20-25 ms every round (bench/RESULTS.md); here it
        holds up only the writes, which wait for this step anyway. (`user_version` is otherwise unused.)"""
        self.copied.clear()
        with contextlib.suppress(sqlite3.Error):  # a reader still on an old snapshot: the next round
            busy, frames, copied = writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if not busy and frames == copied > 0:
                writer.execute("PRAGMA user_version = 0")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._conn.close()


def _split_script(sql: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies (BEGIN … END;) whole."""
    statements, current = [], []
    for line in sql.splitlines():
        current.append(line)
        candidate = "\n".join(current).strip()
        if candidate.endswith(";") and sqlite3.complete_statement(candidate):
            statements.append(candidate)
            current = []
    tail = "\n".join(current).strip()
    if tail and not all(ln.strip().startswith("--") or not ln.strip() for ln in current):
        statements.append(tail)
    return statements
