"""The writer process's side of `owp serve --processes N` (writer_link.py), without processes."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import tempfile
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path

import asyncpg
import pytest
from aiohttp import web

from owp_bot.app import create_app
from owp_bot.config import Settings
from owp_bot.errors import Problem
from owp_bot.events import EventHub
from owp_bot.fronts import check_connections, writer
from owp_bot.keys import HUB, SCHEDULER, STORE
from owp_bot.observability import RequestStats
from owp_bot.scheduler import operations as ops
from owp_bot.scheduler import writer_link
from owp_bot.scheduler.postgres_store import PostgresStore
from owp_bot.scheduler.service import _nothing
from owp_bot.scheduler.sqlite_store import SQLiteStore
from owp_bot.scheduler.store import Event
from owp_bot.scheduler.writer_link import WriterLink, WriterService
from tests.conftest import Pool


@pytest.mark.sqlite_only
@pytest.mark.one_process
async def test_a_renewal_asked_before_its_deadline_reaches_the_writer_after_a_later_write(pool: Pool) -> None:
    """Fronts send their writes over separate sockets: the writer may queue a write asked after a lease's deadline
    (on another front, or its own sweeper) before a renewal asked before it. Their group must judge what ran out by
    the earliest arrival, as one process does (there, queue order is arrival order)."""
    await pool.repo()
    await pool.task()
    worker_id, token = await pool.worker()
    lease = (await pool.work(token))["leases"][0]
    deadline = datetime.fromisoformat(lease["lease_expires_at"].replace("Z", "+00:00")).timestamp()
    scheduler = pool.app[SCHEDULER]
    pool.clock.advance(deadline - 1 - pool.clock.now())
    await pool.heartbeat(token)  # the worker is alive; only the lease's deadline matters
    asked = pool.clock.now()  # the renewal is asked on front B a second before the deadline …
    pool.clock.advance(2)
    later = scheduler.write(partial(_nothing), pool.clock.now())  # … front A's write, asked after it, comes first
    renewal = scheduler.write(partial(ops.renew_lease, worker_id, lease["lease_id"], asked, scheduler.settings), asked)
    _, (expires_at, _) = await asyncio.gather(later, renewal)
    assert expires_at > deadline


class _TwoArgs(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code}: {text}")


@pytest.mark.sqlite_only
@pytest.mark.one_process
async def test_what_a_failed_write_sends_a_front_loads_there_and_is_noted_once(pool: Pool) -> None:
    service = WriterService(pool.app)
    shared = RuntimeError("BEGIN failed")  # a failed group gives every one of its writes the same exception
    for _ in range(3):
        sent = service._portable(shared)
        again = writer_link._loads(writer_link._dumps(sent))
    assert len(getattr(again, "__notes__", [])) == 1
    odd = service._portable(_TwoArgs(1, "x"))  # pickles, but does not load: the front would lose its link
    assert isinstance(writer_link._loads(writer_link._dumps(odd)), Exception)
    problem = service._portable(Problem(409, "no"))
    assert isinstance(writer_link._loads(writer_link._dumps(problem)), Problem)


@pytest.mark.sqlite_only
@pytest.mark.one_process
async def test_a_front_running_other_code_is_refused(pool: Pool) -> None:
    """A front started again after an upgrade on disk would send operations the writer does not have: refused."""
    scheduler = pool.app[SCHEDULER]
    with tempfile.TemporaryDirectory(prefix="owp-") as directory:
        path = Path(directory) / "writer.sock"
        service = WriterService(pool.app)
        await service.start(path)
        try:
            link = WriterLink(path, EventHub(), scheduler.settings)
            link.code = "0123456789abcdef"
            await link.open()
            await asyncio.wait_for(link.lost.wait(), 5)
            assert link.refused is not None and "restart it" in link.refused
            assert service.front_count == 0
            same = WriterLink(path, EventHub(), scheduler.settings)
            await same.open()
            await asyncio.wait_for(service.connected.wait(), 5)
            assert service.front_count == 1 and same.refused is None
            await same.close()
        finally:
            await service.stop()


@pytest.mark.sqlite_only
@pytest.mark.one_process
async def test_a_front_that_stops_reading_is_dropped_not_kept_in_memory(
    pool: Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A front that reads nothing (stopped) would make the writer keep every event it sends: past the backlog
    limit the writer disconnects it (the front process ends and is started again)."""
    monkeypatch.setattr(writer_link, "BACKLOG_LIMIT", 64 * 1024)
    with tempfile.TemporaryDirectory(prefix="owp-") as directory:
        path = Path(directory) / "writer.sock"
        service = WriterService(pool.app)
        await service.start(path)
        try:
            _, writer = await asyncio.open_unix_connection(str(path))  # a front that says hello, then sleeps
            hello = writer_link._frame(("hello", service.code))
            writer.write(hello)
            await asyncio.wait_for(service.connected.wait(), 5)
            writer.transport.pause_reading()
            big = Event(0, 0.0, "test.note", "test", None, None, {"text": "x" * 100_000})
            for _ in range(100):  # past the socket's own buffers, then the limit
                service._broadcast([big])
                await asyncio.sleep(0.01)
                if service.front_count == 0:
                    break
            assert service.front_count == 0
            writer.close()
        finally:
            await service.stop()


@pytest.mark.sqlite_only
@pytest.mark.one_process
async def test_metrics_sum_every_fronts_requests_and_keep_those_of_fronts_that_ended(pool: Pool) -> None:
    """Whichever front a scrape reaches, GET /metrics shows the pool's request counters: the sum of every front's,
    and of fronts that ended (a counter never goes down)."""
    def answered(n: int) -> RequestStats:
        stats = RequestStats()
        for _ in range(n):
            stats.answered("/v1/work", "GET", 200, 0.002)
        return stats

    def count(text: bytes) -> float:
        line = next(ln for ln in text.decode().splitlines()
                    if ln.startswith('owp_http_requests_total{method="GET",route="/v1/work",status="200"}'))
        return float(line.rpartition(" ")[2])

    with tempfile.TemporaryDirectory(prefix="owp-") as directory:
        path = Path(directory) / "writer.sock"
        service = WriterService(pool.app)
        await service.start(path)
        try:
            a, b = (WriterLink(path, EventHub(), pool.app[SCHEDULER].settings) for _ in range(2))
            await a.open()
            await b.open()
            assert count(await a.metrics(answered(3))) == 3
            assert count(await b.metrics(answered(4))) == 7
            await a.close()
            for _ in range(100):
                if service.front_count == 1:
                    break
                await asyncio.sleep(0.01)
            assert count(await b.metrics(answered(5))) == 8  # a's 3, kept, and b's 5
            await b.close()
        finally:
            await service.stop()


def _answers_what_does_not_load(now: float) -> ops.Op[_TwoArgs]:
    return _TwoArgs(1, "x")  # pickles, but does not load (its __init__ takes two arguments)
    yield


@pytest.mark.sqlite_only
@pytest.mark.one_process
async def test_an_answer_a_front_cannot_load_fails_that_request_not_the_link(pool: Pool) -> None:
    scheduler = pool.app[SCHEDULER]
    with tempfile.TemporaryDirectory(prefix="owp-") as directory:
        path = Path(directory) / "writer.sock"
        service = WriterService(pool.app)
        await service.start(path)
        try:
            link = WriterLink(path, EventHub(), scheduler.settings)
            await link.open()
            with pytest.raises(RuntimeError, match="could not be read here"):
                await link.write(partial(_answers_what_does_not_load, 0.0), 0.0, False)
            assert not link.lost.is_set()
            assert await link.write(partial(_nothing), 0.0, False) is None  # the link still answers
            await link.close()
        finally:
            await service.stop()


_RUN_BY_THE_WRITER: list[float] = []


def _noted(now: float) -> ops.Op[None]:
    _RUN_BY_THE_WRITER.append(now)
    return None
    yield


@pytest.mark.sqlite_only
@pytest.mark.one_process
async def test_a_refused_front_has_none_of_its_writes_made(pool: Pool) -> None:
    """A front sends its hello and, without waiting for an answer, the writes of the requests it takes at once: those
    that reach the writer in the same read as a refused hello (or with no hello at all) are not made."""
    _RUN_BY_THE_WRITER.clear()
    with tempfile.TemporaryDirectory(prefix="owp-") as directory:
        path = Path(directory) / "writer.sock"
        service = WriterService(pool.app)
        await service.start(path)
        try:
            for hello in ([("hello", "0123456789abcdef")], []):  # other code; no hello
                _, writer = await asyncio.open_unix_connection(str(path))
                write = ("write", 1, service._operations.dumps(partial(_noted, 1.0)), 1.0, False)
                writer.write(b"".join(writer_link._frame(m) for m in [*hello, write]))  # one read for the writer
                await writer.drain()
                await asyncio.sleep(0.2)
                writer.close()
            assert _RUN_BY_THE_WRITER == []
        finally:
            await service.stop()


@pytest.mark.sqlite_only
@pytest.mark.one_process
async def test_concurrent_scrapes_count_each_domain_event_once(pool: Pool) -> None:
    """Two scrapes at once (two Prometheus servers, or a scrape and a curl, on any fronts: the writer answers all)
    count each lease granted once."""
    from owp_bot.observability import exposition

    def granted(text: bytes) -> float:
        return float(next(ln for ln in text.decode().splitlines() if ln.startswith("owp_leases_granted_total "))
                     .rpartition(" ")[2])

    await exposition(pool.app)  # a baseline
    await pool.repo()
    for _ in range(3):
        await pool.task()
    _, token = await pool.worker()
    leases = len((await pool.work(token))["leases"])
    texts = await asyncio.gather(*(exposition(pool.app) for _ in range(4)))
    assert leases > 0 and [granted(t) for t in texts] == [leases] * 4
    assert granted(await exposition(pool.app)) == leases


def test_an_operation_travels_with_the_settings_as_a_reference_and_rows_as_dicts(settings: Settings) -> None:
    """The writer's settings take the place of the front's, as arguments and keywords; anything else travels as it
    is. Only a partial (what Scheduler.run makes) can be sent: a closure would not pickle, and says so."""
    front, writer = writer_link._Operations(settings), writer_link._Operations(replace(settings))
    sent = writer.loads(front.dumps(partial(ops.renew_lease, "w", "l", 1.5, settings)))
    assert isinstance(sent, partial) and sent.func is ops.renew_lease
    assert sent.args == ("w", "l", 1.5, writer.settings) and sent.args[3] is writer.settings
    keyed = writer.loads(front.dumps(partial(_noted, 2.0, settings=settings, other=[settings.admin_token])))
    assert keyed.keywords == {"settings": writer.settings, "other": [settings.admin_token]}
    assert keyed.keywords["settings"] is writer.settings
    deeper = writer.loads(front.dumps(partial(_noted, 3.0, changes=[partial(_noted, 4.0, settings=settings)])))
    assert deeper.keywords["changes"][0].keywords["settings"] == settings  # by value there: the same values
    with pytest.raises(TypeError, match=r"functools\.partial"):
        front.dumps(lambda: _noted(1.0))
    connection = sqlite3.connect(":memory:")
    connection.row_factory = sqlite3.Row
    row = connection.execute("SELECT 1 AS a, 'x' AS b").fetchone()
    assert writer_link._loads(writer_link._dumps([row])) == [{"a": 1, "b": "x"}]


async def test_a_postgresql_row_travels_as_a_dict(postgres_url: str) -> None:
    connection = await asyncpg.connect(postgres_url)
    try:
        row = await connection.fetchrow("SELECT 1 AS a, 'x'::text AS b, NULL::float8 AS c")
    finally:
        await connection.close()
    assert writer_link._loads(writer_link._dumps({"task": row})) == {"task": {"a": 1, "b": "x", "c": None}}


@pytest.mark.sqlite_only
@pytest.mark.one_process
async def test_a_fronts_heartbeats_reach_the_writer_before_its_next_request_within_a_moment_and_when_it_closes(
        pool: Pool) -> None:
    """A front gathers heartbeats for BEATS_EVERY and sends them in one message: before any request it sends the
    writer after them (the worker's next call is judged by its beat), after BEATS_EVERY when none comes, and when
    the front closes."""
    scheduler = pool.app[SCHEDULER]
    worker_id, _ = await pool.worker()
    beat = pool.clock.now() + 10

    async def last_seen() -> float:  # a write in the writer process: its prelude writes the beats it has
        return float((await scheduler.run(ops.get_worker, worker_id))["last_heartbeat"])

    with tempfile.TemporaryDirectory(prefix="owp-") as directory:
        path = Path(directory) / "writer.sock"
        service = WriterService(pool.app)
        await service.start(path)
        try:
            link = WriterLink(path, EventHub(), scheduler.settings)
            await link.open()
            link.heartbeat(worker_id, (beat, "busy", None))
            worker = await link.write(partial(ops.get_worker, worker_id), beat, False)  # at once
            assert worker["last_heartbeat"] == beat and worker["status"] == "busy"
            link.heartbeat(worker_id, (beat + 1, "idle", None))
            link.heartbeat(worker_id, (beat + 2, "busy", None))  # the newest counts
            await asyncio.sleep(writer_link.BEATS_EVERY * 4)
            assert await last_seen() == beat + 2
            link.heartbeat(worker_id, (beat + 3, "busy", None))
            await link.close()
            for _ in range(100):
                if service.front_count == 0:
                    break
                await asyncio.sleep(0.01)
            assert await last_seen() == beat + 3
        finally:
            await service.stop()


async def test_a_fronts_store_reads_what_the_writer_committed_and_refuses_to_write(settings: Settings) -> None:
    """A front's store (`writes=False`) reads on its own connections and leaves every write to the writer process."""
    def store(writes: bool) -> SQLiteStore | PostgresStore:
        if settings.database_url:
            return PostgresStore(settings.database_url, writes=writes)
        return SQLiteStore(settings.db_path, writes=writes)

    writer, front = store(True), store(False)
    await writer.open()  # migrates the database, as the writer process does before its fronts start
    await front.open()
    try:
        await writer.run(partial(ops.upsert_repo, ops.RepoSpec("acme/api", 2), 1.0))
        (repo, _), _ = await front.run(partial(ops.get_repo, "acme/api"), write=False)
        assert repo["max_open_prs"] == 2
        with pytest.raises(RuntimeError, match="only reads: a front process sends its writes to the writer"):
            await front.run(partial(ops.upsert_repo, ops.RepoSpec("acme/web", 2), 1.0))
    finally:
        await front.close()
        await writer.close()


async def test_a_postgresql_front_streams_what_another_replica_commits_and_neither_migrates_nor_listens(
        postgres_url: str, tmp_path: Path) -> None:
    """A front's events come from its writer process, whose bridge reads what the other replicas commit; the front
    itself neither migrates the database nor listens for commits (its writer does both, before the fronts start)."""
    unmigrated = PostgresStore(postgres_url, writes=False)
    await unmigrated.open()
    try:
        assert unmigrated.bridge is None and not await unmigrated.ready()  # no schema_migrations: it did not migrate
    finally:
        await unmigrated.close()
    settings = Settings(admin_token="test-admin-token-0123456789", database_url=postgres_url,
                        db_path=tmp_path / "unused.db", sweep_interval=3600)
    with tempfile.TemporaryDirectory(prefix="owp-") as directory:  # short: a Unix socket's path has 107 bytes
        path = Path(directory) / "writer.sock"
        async with writer(create_app(settings), path):
            front = web.AppRunner(create_app(settings, writer_socket=path))
            await front.setup()  # its store and its link to the writer
            try:
                assert front.app[STORE].bridge is None
                with front.app[HUB].subscribe() as subscription:
                    other = PostgresStore(postgres_url)  # another replica of the pool
                    await other.open()
                    try:
                        _, events = await other.run(partial(ops.upsert_repo, ops.RepoSpec("acme/api", 2), 1.0))
                    finally:
                        await other.close()
                    streamed = await asyncio.wait_for(subscription.queue.get(), 10)
                assert (streamed.seq, streamed.type) == (events[0].seq, events[0].type)
            finally:
                await front.cleanup()


async def test_the_writer_warns_when_postgresql_has_too_few_connections_left_for_its_fronts(
        postgres_url: str, caplog: pytest.LogCaptureFixture) -> None:
    for pool_size in (10, 1):
        store = PostgresStore(postgres_url, pool_size=pool_size)
        await store.open()
        try:
            left = await store.connections_left()
            assert 0 < left < 10_000
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="owp_bot.fronts"):
                await check_connections(store, left // pool_size + 1 if pool_size > 1 else 1)
        finally:
            await store.close()
        warned = [r.getMessage() for r in caplog.records if r.name == "owp_bot.fronts"]
        if pool_size > 1:  # more fronts than the server has connections for
            assert len(warned) == 1 and f"the server takes {left} more now" in warned[0], warned
            assert "raise its max_connections or lower OWP_PROCESSES" in warned[0]
        else:  # one front with a pool of one: room enough
            assert warned == []
