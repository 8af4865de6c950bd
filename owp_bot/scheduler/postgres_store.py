"""The PostgreSQL backend (asyncpg): several replicas of the pool share one database.

Selected by `OWP_DATABASE_URL=postgresql://…`. It runs the same sans-I/O operations as the SQLite backend
(see store.py), one await per statement inside one transaction, with the statements of sql/postgres/*.sql
and the migrations of migrations/postgres/*.sql.

Why claims, budgets and area locks hold across replicas — the writers' lock
---------------------------------------------------------------------------
Every write transaction begins with `pg_advisory_xact_lock(87, hashtext(current_schema()))`, in the same
round trip as its `BEGIN`, before it reads anything; PostgreSQL releases a transaction's locks only after
its commit is recorded and visible to new snapshots (CommitTransaction: commit record, proc array, then
locks), or after its rollback. So write transactions run one after the other, across all
replicas, each seeing everything committed before it (READ COMMITTED takes a new snapshot per statement,
and every statement runs after the previous writer's commit). That is exactly the serial execution the
operations are written for and that SQLite gives with `BEGIN IMMEDIATE`; every rule the operations check
by reading first — a task is `ready`, the repo's in-flight count is below `max_open_prs`, no area lock
exists, the offer is still pending — is still true when they write. Two replicas therefore never offer or
lease the same task, and budgets and area locks cannot be exceeded by two claims racing on different
replicas. The unique indexes (one pending offer and one active lease per task, one lock per repo and area)
stay as a second line of defence.

Why not row locks with `FOR UPDATE SKIP LOCKED`: a claim reads a worker, a task, its repo's budget and area
locks, and then writes four tables; under READ COMMITTED, locking only the candidate task row lets two
claims in one repo both pass the budget check, and locking repo rows as well makes lock order depend on
the operation (claim: task → repo; accept: offer → task; lapse: task → offer), which PostgreSQL can only
resolve by aborting one transaction as a deadlock after `deadlock_timeout` (a second), and with group commit a
transaction holds the locks of many operations. Besides, the serial part could not shrink much: numbering
events in commit order (below) already serialises every transaction from its first event to its COMMIT. A
lease (the claim, then the report of its pull request) is five statements and about one more round trip
under the lock; the benchmark shows what that allows (bench/RESULTS.md). Read-only transactions
(`write=False`) take no lock: they run `REPEATABLE READ READ ONLY` on one snapshot.

Group commit, as on SQLite: within one replica a single task runs the writes (with `owp serve --processes N`, in
the replica's writer process, to which its fronts send theirs: writer_link.py), and the operations that waited
while it ran share the next transaction (at most MAX_GROUP). A group pays for `BEGIN`, the lock and the
`COMMIT` (and its flush to disk) once. Unlike SQLite, where a savepoint costs nothing, here each would be a round
trip under the lock; so an operation that fails before writing (the usual failures: a 404, a refused
transition) simply leaves the transaction as it was, and one that fails after writing has the transaction
rolled back and the rest of its group made and run again without it (see `_write_group`). Each caller gets its
answer after the commit. Only that task holds a connection for writing, so readers are never starved of
connections by writers waiting for the database lock.

Sweeping is therefore safe on every replica: `expire_due` runs under the writers' lock and reads what is
due at that moment, so a second replica sweeping right after finds nothing left to lapse. Webhook
deliveries are deduplicated by the primary key on the delivery id, which every replica's insert hits.

Why the event stream has no gaps — numbering under the same lock
-----------------------------------------------------------------
A PostgreSQL sequence hands out numbers at insert time, and transactions may commit in another order (or
roll back, leaving a hole), so a reader that resumes "after 41" could miss 40 committed a moment later.
Here `event_insert` takes the next numbers from the one-row `event_counter` while holding the writers' lock:
numbers are allocated in commit order, a rolled-back transaction gives its numbers back (the counter rolls
back with it), pruning old events never leads to a number being reused, and once any replica learns that
event N committed, every event below N is committed and visible. A transaction's events are inserted together
(`_Transaction`), and the insert runs `pg_notify('owp_events.<md5 of the schema>', last seq)` (a channel
name must fit in 63 bytes; a schema's name may take them all), which PostgreSQL delivers
to every listener only on commit, in commit order. Each replica's `EventBridge` listens on that channel and
feeds `SequencedHub`, which publishes each event once and strictly in sequence — events of its own
transactions immediately, others' after reading them from the log — so an SSE client on replica B sees a
lease granted on replica A within milliseconds, and `Last-Event-ID` resume (which reads the log) works on any
replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from owp_bot.config import ConfigError
from owp_bot.errors import Problem
from owp_bot.events import SequencedHub
from owp_bot.scheduler.reputation import OUTCOME_EVENTS
from owp_bot.scheduler.store import (
    Committed,
    Emit,
    Event,
    MakeOp,
    Op,
    Outcome,
    Row,
    Stmt,
    compact_json,
    load_queries,
    migrations,
    share_prelude,
)

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Conn = asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]

T = TypeVar("T")
log = logging.getLogger(__name__)
_HERE = Path(__file__).parent
QUERIES = load_queries(_HERE / "sql" / "postgres")
MIGRATIONS = migrations(_HERE / "migrations" / "postgres")


def _statements_matching(pattern: str) -> frozenset[str]:
    return frozenset(name for name, sql in QUERIES.items()
                     if re.search(pattern, re.sub(r"--[^\n]*", "", sql), re.IGNORECASE))


# Statements that change rows (`FOR UPDATE` counts too: on the safe side), and statements that read what
# inserting an event changes: the log, its counter, and the outcome counters kept by its trigger (migrations 005,
# 010; tests/test_postgres_parity.py checks that no other trigger reads or writes them); and, once an outcome
# event is held back, statements on `workers`, whose score and review flag that trigger sets.
WRITES = _statements_matching(r"\b(INSERT|UPDATE|DELETE)\b")
SEES_EVENTS = _statements_matching(r"\b(events|event_counter|worker_outcomes|worker_scores)\b")
SEES_OUTCOMES = _statements_matching(r"\bworkers\b")

# Advisory locks are (87, hash of the schema): one pool per schema, so test runs in other schemas never meet.
# A session lock while migrating (replicas starting together migrate once); the writers' lock per transaction.
_MIGRATION_LOCK = "SELECT pg_advisory_lock(87, hashtext(current_schema() || '.migrate'))"
_MIGRATION_UNLOCK = "SELECT pg_advisory_unlock(87, hashtext(current_schema() || '.migrate'))"
_BEGIN_WRITE = ("BEGIN ISOLATION LEVEL READ COMMITTED; "
                "SELECT pg_advisory_xact_lock(87, hashtext(current_schema()))")
# Operations per write transaction: bounds how long the first waits for the others, and what one operation that
# fails after writing costs (the rest of its group runs again).
MAX_GROUP = 32
# Plan each named statement once per connection: the assignment query takes ~10 ms to plan and well under
# one to run, and PostgreSQL's default would keep re-planning it for every call with its parameters. No JIT: every
# statement here is short, and a generic plan's cost estimate can be high enough (the recursive `kinds` of
# ready_candidate) to compile it on every execution: 1.3 s each.
SERVER_SETTINGS = {"plan_cache_mode": "force_generic_plan", "jit": "off"}
_BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
_EVENT_PAGE = 1000
# After a bulk import the planner's statistics still describe the table before it (autovacuum catches up within
# a minute or so): finding a candidate then took 100 ms walking every ready task instead of 3 ms down tasks_ready.
ANALYZE_AFTER_CREATED = 500
_CLOSE_TIMEOUT = 10.0  # seconds to wait for busy connections on close before cutting them
# The database is down, restarting or out of connections: a 503 with Retry-After, not a 500.
_UNREACHABLE = (OSError, asyncpg.ConnectionDoesNotExistError, asyncpg.PostgresConnectionError,
                asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError, asyncpg.CrashShutdownError,
                asyncpg.TooManyConnectionsError)
RETRY_AFTER = 5


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and url.split(":", 1)[0] in {"postgresql", "postgres"}  # type: ignore[union-attr]


def without_password(url: str) -> str:
    """The URL as it may be shown: its password masked."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def cannot_connect(url: str, exc: Exception, setting: str) -> ConfigError:
    reason = str(exc) or type(exc).__name__
    return ConfigError(f"cannot connect to PostgreSQL at {without_password(url)}: {reason}; check {setting} (user, "
                       "password, host, port, database) and that the server is running")


def no_schema(url: str, setting: str) -> ConfigError:
    return ConfigError(f"PostgreSQL at {without_password(url)} has no schema to create the pool's tables in: the "
                       f"search_path of {setting} names one that does not exist; create it (CREATE SCHEMA …) or "
                       "name another")


class PostgresStore:
    """The store interface of store.py on an asyncpg pool; `hub` is the replica's event hub (see below).

    `writes=False`: reads only, for a front process of `owp serve --processes N` (writer_link.py), whose writes
    and event stream come from its writer process, which migrated the database before the fronts started; it
    neither migrates nor listens for other replicas' commits (the writer does, and sends their events on)."""

    def __init__(self, url: str, *, pool_size: int = 10, hub: SequencedHub | None = None, writes: bool = True) -> None:
        if not is_postgres_url(url):
            raise ValueError(f"{url!r} is not a postgresql:// URL")
        self.url = url
        self.pool_size = pool_size
        self.writes = writes
        self.hub = hub or SequencedHub()
        self._pool: asyncpg.Pool | None = None
        self._waiting: list[tuple[MakeOp[Any], MakeOp[Committed] | None, asyncio.Future[tuple[Any, list[Event]]]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._running: set[asyncio.Future[Any]] = set()  # read transactions
        # clear from a group's COMMIT until its events are in the hub: the bridge, woken by that commit's
        # notification (it may come first), waits instead of reading them back from the log
        self.published = asyncio.Event()
        self.published.set()
        self.bridge: EventBridge | None = None

    # -- lifecycle

    async def open(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(self.url, min_size=1, max_size=self.pool_size,
                                                   server_settings=SERVER_SETTINGS, reset=_no_session_state)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise cannot_connect(self.url, exc, "OWP_DATABASE_URL") from None
        if not self.writes:
            return
        try:
            async with self._pool.acquire() as conn:
                await migrate(conn)
                self.hub.last_seq = await conn.fetchval(QUERIES["events_last_seq"])
        except asyncpg.InvalidSchemaNameError:
            await self._pool.close()
            raise no_schema(self.url, "OWP_DATABASE_URL") from None
        self.bridge = EventBridge(self, self.hub)
        await self.bridge.start()

    async def close(self) -> None:
        if self._committer is not None:  # what was asked before close is answered (as on SQLite)
            await self._committer
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        if self.bridge is not None:
            await self.bridge.stop()
            self.bridge = None
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), _CLOSE_TIMEOUT)
            except TimeoutError:
                log.warning("PostgreSQL connections were still busy after %ss; closing them", _CLOSE_TIMEOUT)
                self._pool.terminate()
            self._pool = None

    async def ready(self) -> bool:
        if self._pool is None:
            return False
        try:
            async with self._pool.acquire() as conn:
                applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        except (asyncpg.PostgresError, OSError):
            return False
        return applied >= {version for version, _, _ in MIGRATIONS}

    async def connections_left(self) -> int:
        """How many more connections the server would take now: `max_connections`, less the superusers' reserve and
        the client connections open (this store's among them)."""
        assert self._pool is not None
        return int(await self._pool.fetchval(
            "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
            " - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')"))

    # -- operations

    async def run(self, make_op: MakeOp[T], *, write: bool = True, slow: bool = False,
                  prelude: MakeOp[Committed] | None = None) -> tuple[T, list[Event]]:
        """Run the operation in one transaction (a write in a group, see above). Once begun it runs to its end
        even if the caller is cancelled (a client that went away, a background loop stopping): cancelling
        asyncpg mid-statement can leave a connection waiting on its cancellation, and SQLite behaves the same
        way. (Every statement is awaited: `slow` changes nothing here.)"""
        if self._pool is None:
            raise RuntimeError("the PostgreSQL store is not open")
        if write and not self.writes:
            raise RuntimeError("this PostgreSQL store only reads: a front process sends its writes to the writer "
                               "process")
        try:
            if write:
                answer: asyncio.Future[tuple[Any, list[Event]]] = asyncio.get_running_loop().create_future()
                self._waiting.append((make_op, prelude, answer))
                if self._committer is None or self._committer.done():
                    self._committer = asyncio.create_task(self._commit_waiting(), name="owp-pg-group-commit")
                return await answer
            work = asyncio.ensure_future(self._read(make_op))
            self._running.add(work)
            work.add_done_callback(self._finished)
            return await asyncio.shield(work)
        except _UNREACHABLE as exc:  # a client asks again once the database is back
            raise Problem(503, f"the database cannot be reached right now ({type(exc).__name__}); try again in "
                               f"{RETRY_AFTER} s", headers={"Retry-After": RETRY_AFTER}) from exc

    def _finished(self, work: asyncio.Future[Any]) -> None:
        self._running.discard(work)
        if not work.cancelled():
            work.exception()  # read, so that a failure whose caller went away is not reported as unretrieved

    async def _commit_waiting(self) -> None:
        """Run what waits, a group at a time, until nothing does; then end (run() starts it again)."""
        while self._waiting:
            await asyncio.sleep(0)  # the other requests of this turn of the loop join the group
            group, self._waiting = self._waiting[:MAX_GROUP], self._waiting[MAX_GROUP:]
            prelude = next((p for _, p, _ in group if p is not None), None)
            try:
                outcomes = await self._write_group([make_op for make_op, _, _ in group], prelude)
            except Exception as exc:  # BEGIN, the prelude, COMMIT or the connection failed: nothing was kept
                outcomes = [exc] * len(group)
            else:
                try:  # committed: whatever happens now, the callers get their answers
                    await self._after_commit([e for o in outcomes if not isinstance(o, Exception) for e in o[1]])
                except Exception:  # a gap it leaves in the hub, the event stream fills from the log
                    log.warning("after a commit, reading others' events or refreshing statistics failed",
                                exc_info=True)
            finally:
                self.published.set()
            for (_, _, answer), outcome in zip(group, outcomes, strict=True):
                if answer.done():  # the caller went away; its operation ran all the same
                    continue
                if isinstance(outcome, Exception):
                    answer.set_exception(outcome)
                else:
                    answer.set_result(outcome)

    async def _write_group(self, makers: list[MakeOp[Any]], prelude: MakeOp[Committed] | None) -> list[Outcome]:
        """One transaction under the writers' lock, the prelude first: each operation's answer and events, or
        what it raised.

        An operation that raises before it wrote anything (a 404, a refused transition: the usual failures)
        leaves the transaction as it was, and the group goes on. One that raises after writing, or whose
        statement PostgreSQL refused (which aborts the whole transaction), gets its error; the transaction is
        rolled back and the others are made and run again without it. Each round removes one operation, so
        this ends; savepoints would cost a round trip per operation every time instead."""
        assert self._pool is not None
        failed: dict[int, Exception] = {}
        async with self._pool.acquire() as conn:
            while (answers := await self._attempt(conn, makers, prelude, failed)) is None:
                pass
        return answers

    async def _attempt(self, conn: Conn, makers: list[MakeOp[Any]], prelude: MakeOp[Committed] | None,
                       failed: dict[int, Exception]) -> list[Outcome] | None:
        """One try at a group's transaction: the answers, or None when an operation failed after writing (it is
        in `failed` now) and the transaction was rolled back."""
        transaction = _Transaction(conn)
        await conn.execute(_BEGIN_WRITE)
        try:
            committed, first = await transaction.drive(prelude()) if prelude is not None else (None, None)
            outcomes: list[tuple[Any, int] | Exception] = []
            for index, make_op in enumerate(makers):
                if index in failed:
                    outcomes.append(failed[index])
                    continue
                try:
                    outcomes.append(await transaction.drive(make_op()))
                except (OSError, asyncpg.InterfaceError):
                    raise  # the connection, not the operation
                except Exception as exc:
                    if not (transaction.wrote or transaction.refused):
                        outcomes.append(exc)
                        continue
                    failed[index] = exc
                    await conn.execute("ROLLBACK")
                    return None
            await transaction.insert_events()
            answers = [transaction.answer(o) for o in outcomes]
            if not share_prelude(transaction.events_of(first) if first is not None else [], answers):
                await conn.execute("ROLLBACK")
                return answers
            self.published.clear()  # set again once the group's events are in the hub (_commit_waiting)
            await conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                await conn.execute("ROLLBACK")
            raise
        if committed is not None:
            committed()
        return answers

    async def _after_commit(self, events: list[Event]) -> None:
        """Publish what other replicas committed before this group (when the bridge has not read it yet), then
        the group's own events (the callers publish them again, and the hub drops them: the bridge is not left
        to read them back), and refresh the planner's statistics after a bulk import."""
        assert self._pool is not None
        behind = events[0].seq - 1 - self.hub.last_seq if events else 0
        if behind > 0:
            self.hub.publish(await self.events_after(self.hub.last_seq, behind))
        self.hub.publish(sorted(events, key=lambda event: event.seq))
        self.published.set()  # the bridge need not wait for the ANALYZE below
        if sum(e.type == "task.created" for e in events) >= ANALYZE_AFTER_CREATED:
            await self._pool.execute("ANALYZE tasks, task_skills")

    async def _read(self, make_op: MakeOp[T]) -> tuple[T, list[Event]]:
        assert self._pool is not None
        async with self._pool.acquire() as conn:
            await conn.execute(_BEGIN_READ)
            try:
                transaction = _Transaction(conn)
                value, _ = await transaction.drive(make_op())
                await transaction.insert_events()  # none, or PostgreSQL refuses: the transaction is read-only
                return value, []
            finally:
                with contextlib.suppress(asyncpg.PostgresError, OSError, asyncpg.InterfaceError):
                    await conn.execute("COMMIT")

    async def events_after(self, after: int, limit: int = _EVENT_PAGE) -> list[Event]:
        """Committed events with seq > after, in order (the bridge reads others' events with this)."""
        assert self._pool is not None
        no_filter = (None,) * 6
        found = await self._pool.fetch(QUERIES["events_page"], after, *no_filter, limit)
        return [Event.from_row(cast(Row, r)) for r in found]


class _Transaction:
    """Runs operations one after another in one transaction on `conn`, holding back their events.

    Inserting an event is a round trip of its own, and nothing an operation does next usually reads it; so the
    events wait and go in together, numbered in order, with the notification to the other replicas, just
    before COMMIT, or before a statement that reads what inserting them changes (`SEES_EVENTS`: the log,
    its counter, the outcome counters its trigger keeps; `SEES_OUTCOMES`: the workers, whose score that trigger
    sets, when an outcome event is held). `wrote` tells whether the running operation has
    changed anything yet, and `refused` whether PostgreSQL refused one of its statements.
    """

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self._held: list[tuple[int, Emit]] = []  # (which operation, its event), in the order emitted
        self._events: dict[int, list[Event]] = {}  # the operations' inserted events
        self._operation = -1
        self._outcome_held = False  # an event the outcome trigger counts is among those held
        self.wrote = self.refused = False

    async def drive(self, op: Op[T]) -> tuple[T, int]:
        """Run `op`; its value and its number here (its events are in the answer, after insert_events)."""
        self._operation += 1
        self.wrote = self.refused = False
        answer: Any = None
        try:
            while True:
                try:
                    request = op.send(answer)
                except StopIteration as done:
                    return done.value, self._operation
                if isinstance(request, Emit):
                    self._held.append((self._operation, request))
                    self._outcome_held = self._outcome_held or request.type in OUTCOME_EVENTS
                    answer = None
                    continue
                if request.name in SEES_EVENTS or (self._outcome_held and request.name in SEES_OUTCOMES):
                    await self.insert_events()
                self.wrote = self.wrote or request.name in WRITES
                answer = await self._execute(request)
        except BaseException:
            self._held = [(n, e) for n, e in self._held if n != self._operation]  # not inserted: dropped
            self._outcome_held = any(e.type in OUTCOME_EVENTS for _, e in self._held)
            raise

    async def _execute(self, stmt: Stmt) -> Any:
        sql = QUERIES[stmt.name]
        try:
            if stmt.fetch == "one":
                return await self.conn.fetchrow(sql, *stmt.params)
            if stmt.fetch == "all":
                return await self.conn.fetch(sql, *stmt.params)
            status = await self.conn.execute(sql, *stmt.params)  # "UPDATE 3", "INSERT 0 1", "DELETE 0"
            return int(status.rsplit(" ", 1)[-1])
        except asyncpg.PostgresError:
            self.refused = True
            raise

    async def insert_events(self) -> None:
        """Insert the events held back, numbered from the counter (under the writers' lock: in commit order)."""
        if not self._held:
            return
        held, self._held, self._outcome_held = self._held, [], False
        if any(n == self._operation for n, _ in held):
            self.wrote = True
        columns = ([e.ts for _, e in held], [e.type for _, e in held], [e.actor for _, e in held],
                   [e.target for _, e in held], [e.repo for _, e in held], [compact_json(e.details) for _, e in held])
        try:
            first = await self.conn.fetchval(QUERIES["event_insert"], *columns)
        except asyncpg.PostgresError:
            self.refused = True
            raise
        for seq, (n, e) in enumerate(held, start=first):
            self._events.setdefault(n, []).append(
                Event(seq, e.ts, e.type, e.actor, e.target, e.repo, e.details))

    def answer(self, outcome: tuple[T, int] | Exception) -> tuple[T, list[Event]] | Exception:
        if isinstance(outcome, Exception):
            return outcome
        value, operation = outcome
        return value, self.events_of(operation)

    def events_of(self, operation: int) -> list[Event]:
        return self._events.get(operation, [])


async def _no_session_state(conn: Conn) -> None:
    """The pool's reset when a connection comes back: nothing to undo. The store leaves no session state behind
    (no SET, LISTEN or cursor; `migrate` releases its lock), and asyncpg itself rolls back a transaction left
    open. The default reset (`RESET ALL`, `UNLISTEN *`, …) was one more round trip per transaction, which the
    committer waited for before answering its group."""


async def migrate(conn: Conn) -> list[int]:
    """Apply the migrations this schema lacks, each in its own transaction; return the versions applied."""
    await conn.execute(_MIGRATION_LOCK)
    try:
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
                           " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        done = []
        for version, name, sql in MIGRATIONS:
            if version in applied:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                                   version, name)
            done.append(version)
        return done
    finally:
        await conn.execute(_MIGRATION_UNLOCK)


# ------------------------------------------------------------------ the event stream across replicas


class EventBridge:
    """LISTEN for other replicas' commits and publish their events into this replica's hub, in order.

    One dedicated connection listens on `owp_events.<md5 of the schema>`; a notification (or a gap the hub reports)
    raises the `committed` mark, and one task reads the log from `hub.last_seq` up to it (this replica's
    own commits are notified too, which covers callers that run operations without publishing). If the
    listening connection drops, it reconnects and catches up from the log: nothing is missed meanwhile.
    A connection can also drop without either end being told (a NAT, firewall or load balancer on the way
    forgets it when idle): a listener only reads, so it would wait forever; it asks the database something
    every CHECK_EVERY seconds (which also keeps it from looking idle), and reconnects when no answer comes.
    """

    RECONNECT_DELAY = 1.0
    CHECK_EVERY = 30.0
    CHECK_TIMEOUT = 10.0

    def __init__(self, store: PostgresStore, hub: SequencedHub) -> None:
        self._store = store
        self._hub = hub
        self._committed = hub.last_seq
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.listener_pid: int | None = None  # the listening connection's server process

    def committed(self, seq: int) -> None:
        """Event `seq` is committed: every event up to it will be published."""
        if seq > self._committed:
            self._committed = seq
            self._wake.set()

    async def start(self) -> None:
        listening = asyncio.Event()
        self._tasks = [asyncio.create_task(self._listen(listening), name="owp-pg-listen"),
                       asyncio.create_task(self._catch_up(), name="owp-pg-catch-up")]
        await listening.wait()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _listen(self, listening: asyncio.Event) -> None:
        def on_notify(conn: Conn, pid: int, channel: str, payload: object) -> None:
            self.committed(int(str(payload)))

        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._store.url)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                channel = "owp_events." + await conn.fetchval("SELECT md5(current_schema())")
                await conn.add_listener(channel, on_notify)
                self.listener_pid = conn.get_server_pid()
                self.committed(await conn.fetchval(QUERIES["events_last_seq"]))  # what passed while away
                listening.set()
                while not await _within(self.CHECK_EVERY, lost.wait()):
                    if not await _within(self.CHECK_TIMEOUT, conn.fetchval("SELECT 1")):
                        log.warning("the PostgreSQL event listener's connection stopped answering")
                        conn.terminate()
                        break
                log.warning("the PostgreSQL event listener lost its connection; reconnecting")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("the PostgreSQL event listener cannot connect (%s); retrying", exc)
                listening.set()  # start-up goes on; the pool itself reports the database state
            finally:
                if conn is not None and not conn.is_closed():  # cut after CHECK_TIMEOUT if it does not answer
                    with contextlib.suppress(OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                        await conn.close(timeout=self.CHECK_TIMEOUT)
            await asyncio.sleep(self.RECONNECT_DELAY)

    async def _catch_up(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._store.published.wait()  # this replica's own commit: its events come without a read
            try:
                while self._hub.last_seq < self._committed:
                    found = await self._store.events_after(self._hub.last_seq)
                    if not found:
                        break
                    self._hub.publish(found)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("reading events from PostgreSQL failed (%s); retrying", exc)
                await asyncio.sleep(self.RECONNECT_DELAY)
                self._wake.set()


async def _within(seconds: float, awaitable: Awaitable[object]) -> bool:
    """Whether `awaitable` finished within `seconds` (it is cancelled if not)."""
    try:
        async with asyncio.timeout(seconds):
            await awaitable
    except TimeoutError:
        return False
    return True


# ------------------------------------------------------------------ moving a SQLite pool to PostgreSQL


class MigrationRefused(Exception):
    """The copy cannot start; the message says why and what to do."""


_PG_INTEGER = {"smallint", "integer", "bigint"}
# Kept by a trigger on events (migration 005); the source's rows also count events that retention removed.
_KEPT_BY_TRIGGERS = frozenset({"worker_outcomes"})


async def copy_from_sqlite(sqlite_path: Path, url: str) -> dict[str, int]:
    """Copy every table of a stopped SQLite pool into an empty PostgreSQL schema, in one transaction.

    Tables are copied parents first (by their foreign keys); event numbers are kept, and the event counter
    and identity columns continue after the highest copied value. Returns the rows copied per table.
    """
    from owp_bot.scheduler.sqlite_store import SQLiteStore

    if not await asyncio.to_thread(sqlite_path.is_file):
        raise MigrationRefused(f"{sqlite_path} does not exist; give the pool's database file (OWP_DB_PATH)")
    sqlite_store = SQLiteStore(sqlite_path)  # brings the source up to the current migrations first
    await sqlite_store.open()
    await sqlite_store.close()
    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    try:
        try:
            conn = await asyncpg.connect(url)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise cannot_connect(url, exc, "--to") from None
        try:
            try:
                await migrate(conn)
            except asyncpg.InvalidSchemaNameError:
                raise no_schema(url, "--to") from None
            if await conn.fetchval("SELECT (SELECT seq FROM event_counter) + (SELECT count(*) FROM repos)"):
                raise MigrationRefused("the PostgreSQL database already holds a pool; migrate into an empty "
                                       "database (or schema) so that nothing is overwritten")
            async with conn.transaction():
                return await _copy_tables(source, conn)
        finally:
            await conn.close()
    finally:
        source.close()


_SEEDED = frozenset({"gh_cursor", "pool_clock"})  # one-row tables a migration fills: the source's row wins


async def _copy_tables(source: sqlite3.Connection, conn: asyncpg.Connection) -> dict[str, int]:
    copied: dict[str, int] = {}
    for table in sorted(_parents_first(source), key=lambda t: t in _KEPT_BY_TRIGGERS):  # those last
        columns = [row[1] for row in source.execute("SELECT * FROM pragma_table_info(?)", (table,))]
        types = {r["column_name"]: r["data_type"] for r in await conn.fetch(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = $1", table)}
        missing = [c for c in columns if c not in types]
        if missing:
            raise MigrationRefused(f"table {table} has columns PostgreSQL lacks: {missing}; "
                                   "both backends must be at the same version of owp")
        convert = [_converter(types[c]) for c in columns]
        select = f"SELECT {', '.join(map(_quoted, columns))} FROM {_quoted(table)}"  # noqa: S608 - schema names
        records = [tuple(None if v is None else f(v) for f, v in zip(convert, row, strict=True))
                   for row in source.execute(select)]
        if table in _SEEDED or table in _KEPT_BY_TRIGGERS:  # seeded by the migration, or counted by a
            await conn.execute(f"DELETE FROM {_quoted(table)}")  # noqa: S608 - trigger counts: the source wins
        if records:
            await conn.copy_records_to_table(table, records=records, columns=columns)
        copied[table] = len(records)
        for column in (c for c in columns if types[c] in _PG_INTEGER):
            sequence = await conn.fetchval("SELECT pg_get_serial_sequence($1, $2)", table, column)
            if sequence is not None and records:
                top = await conn.fetchval(f"SELECT max({_quoted(column)}) FROM {_quoted(table)}")  # noqa: S608
                await conn.execute("SELECT setval($1::regclass, $2)", sequence, top)
    last = source.execute("SELECT coalesce(max(seq), 0) FROM (SELECT seq FROM events UNION ALL "
                          "SELECT seq FROM sqlite_sequence WHERE name = 'events')").fetchone()[0]
    await conn.execute("UPDATE event_counter SET seq = $1", last)
    return copied


def _quoted(identifier: str) -> str:
    """An identifier read from the schema itself, quoted for SQL."""
    return '"' + identifier.replace('"', '""') + '"'


def _converter(pg_type: str) -> Callable[[Any], Any]:
    if pg_type in _PG_INTEGER:
        return int
    if pg_type in {"double precision", "real", "numeric"}:
        return float
    if pg_type == "boolean":
        return bool
    return lambda value: value if isinstance(value, str) else str(value)


def _parents_first(source: sqlite3.Connection) -> list[str]:
    tables = [row[0] for row in source.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name <> 'schema_migrations' ORDER BY name")]
    parents = {t: {row[2] for row in source.execute("SELECT * FROM pragma_foreign_key_list(?)", (t,))} - {t}
               for t in tables}
    ordered: list[str] = []
    while len(ordered) < len(tables):
        ready = [t for t in tables if t not in ordered and parents[t] <= set(ordered)]
        if not ready:
            raise MigrationRefused(f"foreign keys form a cycle among {sorted(set(tables) - set(ordered))}")
        ordered += ready
    return ordered
