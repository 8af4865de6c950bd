"""The SQLite backend: one connection on one database thread, one hop per whole operation.

Why not a statement-at-a-time async driver (aiosqlite): every await is a thread hop (~85 µs here), and on a
shared connection one request's COMMIT would also commit another request's half-done statements. Here an
operation (a generator, see store.py) runs start to finish on the database thread inside
`BEGIN IMMEDIATE … COMMIT`, so operations are serialised by construction and cost one hop each.

Group commit: operations that arrive while the database thread is busy are run together in the next hop, each
inside its own SAVEPOINT (a failing one is rolled back alone), under one COMMIT. Under load this shares the
cost of the hop and of the commit (every index page a transaction touches is written to the WAL once per
commit) among many requests; each caller still gets its answer only after the commit (bench/RESULTS.md).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from owp_bot.scheduler.store import Emit, Event, Op, Stmt, load_queries, migrations

T = TypeVar("T")
MAX_GROUP = 64  # operations per group commit: bounds how long the first one in a group waits for the others
_HERE = Path(__file__).parent
QUERIES = load_queries(_HERE / "sql" / "sqlite")
MIGRATIONS = migrations(_HERE / "migrations" / "sqlite")


class SQLiteStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._waiting: list[tuple[Op[Any], bool, asyncio.Future[tuple[Any, list[Event]]]]] = []
        self._committer: asyncio.Task[None] | None = None

    # -- lifecycle

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="owp-sqlite")
        await self._call(self._open)

    def _open(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        # the default page cache (2 MB) is smaller than the indexes at 100k tasks (bench/RESULTS.md)
        conn.execute("PRAGMA cache_size=-65536")
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
        self._conn = conn

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._committer is not None:
            await self._committer  # what was asked before close is answered
        if self._conn is not None:
            await self._call(self._close)
        self._executor.shutdown(wait=True)
        self._executor = None

    def _close(self) -> None:
        assert self._conn is not None
        self._conn.execute("PRAGMA optimize")
        self._conn.close()
        self._conn = None

    async def ready(self) -> bool:
        if self._conn is None:
            return False
        try:
            return bool(await self._call(self._ready))
        except sqlite3.Error:
            return False

    def _ready(self) -> bool:
        assert self._conn is not None
        applied = {row[0] for row in self._conn.execute("SELECT version FROM schema_migrations")}
        return applied >= {version for version, _, _ in MIGRATIONS}

    # -- operations

    async def run(self, op: Op[T], *, write: bool = True) -> tuple[T, list[Event]]:
        if self._executor is None:
            raise RuntimeError("the SQLite store is not open")
        answer: asyncio.Future[tuple[Any, list[Event]]] = asyncio.get_running_loop().create_future()
        self._waiting.append((op, write, answer))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_waiting(), name="owp-sqlite-group-commit")
        return await answer

    async def _commit_waiting(self) -> None:
        """Run what waits, a group per hop, until nothing does; then end (run() starts it again)."""
        while self._waiting:
            group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            try:
                outcomes = await self._call(self._drive_group, [(op, write) for op, write, _ in group])
            except Exception as exc:  # BEGIN or COMMIT failed: nothing of the group was kept
                outcomes = [exc] * len(group)
            except BaseException:  # cancelled (the loop is closing): the callers are cancelled too
                for _, _, answer in group:
                    answer.cancel()
                raise
            for (_, _, answer), outcome in zip(group, outcomes, strict=True):
                if answer.done():  # the caller went away; its operation ran all the same
                    continue
                if isinstance(outcome, BaseException):
                    answer.set_exception(outcome)
                else:
                    answer.set_result(outcome)

    async def _call(self, fn: Any, *args: Any) -> Any:
        if self._executor is None:
            raise RuntimeError("the SQLite store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _drive_group(self, group: list[tuple[Op[Any], bool]]) -> list[tuple[Any, list[Event]] | Exception]:
        """One transaction; each operation in a savepoint: its answer and events, or what it raised."""
        conn = self._conn
        if conn is None:
            raise RuntimeError("the SQLite store is closed")
        outcomes: list[tuple[Any, list[Event]] | Exception] = []
        conn.execute("BEGIN IMMEDIATE" if any(write for _, write in group) else "BEGIN")
        try:
            for op, _ in group:
                conn.execute("SAVEPOINT operation")
                try:
                    outcomes.append(self._drive(conn, op))
                except Exception as exc:
                    conn.execute("ROLLBACK TO operation")
                    outcomes.append(exc)
                conn.execute("RELEASE operation")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return outcomes

    def _drive(self, conn: sqlite3.Connection, op: Op[T]) -> tuple[T, list[Event]]:
        events: list[Event] = []
        answer: Any = None
        while True:
            try:
                request = op.send(answer)
            except StopIteration as done:
                return done.value, events
            if isinstance(request, Emit):
                answer = self._emit(conn, request)
                events.append(Event(answer, request.ts, request.type, request.actor, request.target,
                                    request.repo, request.details))
            else:
                answer = self._execute(conn, request)

    @staticmethod
    def _execute(conn: sqlite3.Connection, stmt: Stmt) -> Any:
        cursor = conn.execute(QUERIES[stmt.name], stmt.params)
        if stmt.fetch == "one":
            return cursor.fetchone()
        if stmt.fetch == "all":
            return cursor.fetchall()
        return cursor.rowcount

    @staticmethod
    def _emit(conn: sqlite3.Connection, event: Emit) -> int:
        row = conn.execute(QUERIES["event_insert"], (event.ts, event.type, event.actor, event.target, event.repo,
                                                     json.dumps(event.details, separators=(",", ":")))).fetchone()
        return int(row[0])


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
