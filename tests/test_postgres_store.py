"""The PostgreSQL store as two replicas in one process: two stores (each with its own pool, hub and
listener) on one schema. Claims racing across them, sweeping on both, the event stream fanned out to both
hubs in order without gaps, a listener that loses its connection, and a rolled-back transaction."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from itertools import cycle
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiohttp import ClientSession

from owp_bot.clock import ManualClock
from owp_bot.config import Settings
from owp_bot.errors import Problem
from owp_bot.events import EventHub
from owp_bot.scheduler import analytics, postgres_store
from owp_bot.scheduler import operations as ops
from owp_bot.scheduler.postgres_store import ANALYZE_AFTER_CREATED, PostgresStore
from owp_bot.scheduler.service import NOW, Scheduler
from owp_bot.scheduler.store import Op
from tests.conftest import ADMIN_TOKEN, start_server

SETTINGS = Settings(admin_token="x" * 20, sweep_interval=3600, heartbeat_flush_interval=3600, offer_ttl=60)


@asynccontextmanager
async def replicas(url: str, clock: ManualClock, count: int = 2) -> AsyncIterator[list[Scheduler]]:
    stores = [PostgresStore(url, pool_size=4) for _ in range(count)]
    await asyncio.gather(*(store.open() for store in stores))  # replicas starting together migrate once
    try:
        yield [Scheduler(store, SETTINGS, clock, store.hub) for store in stores]
    finally:
        for store in stores:
            await store.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def reaches(hub: EventHub, seq: int, seconds: float = 2.0) -> None:
    """Wait until the hub has published event `seq`."""
    with hub.subscribe() as watcher:
        async with asyncio.timeout(seconds):
            while hub.last_seq < seq:
                await watcher.queue.get()


def seqs(queue: asyncio.Queue[ops.Event]) -> Iterator[int]:
    while not queue.empty():
        yield queue.get_nowait().seq


async def test_both_replicas_stream_every_event_in_order(postgres_url: str, clock: ManualClock) -> None:
    async with replicas(postgres_url, clock) as (a, b):
        subs = [a.hub.subscribe(), b.hub.subscribe()]
        writes = [replica.run(ops.upsert_repo, ops.RepoSpec(f"acme/r{i}", 2), NOW)
                  for i, replica in zip(range(40), cycle((a, b)), strict=False)]
        await asyncio.gather(*writes)
        last = await a.run(ops.last_event_seq, write=False)
        assert last == 40
        await reaches(a.hub, last)
        await reaches(b.hub, last)
        for sub in subs:
            assert list(seqs(sub.queue)) == list(range(1, 41))


async def test_a_lease_granted_on_one_replica_reaches_the_other_within_a_second(
        postgres_url: str, clock: ManualClock) -> None:
    async with replicas(postgres_url, clock) as (a, b):
        await a.run(ops.upsert_repo, ops.RepoSpec("acme/api", 3), NOW)
        await a.run(ops.put_task, ops.TaskSpec("acme/api", "fix it"), NOW, "api")
        worker_id, _ = await a.register("ann", None, [], 3, 1)
        await reaches(b.hub, a.hub.last_seq)  # b has streamed everything so far
        with b.hub.subscribe() as watcher:
            await a.run(ops.fetch_work, worker_id, NOW, SETTINGS)
            event = await asyncio.wait_for(watcher.queue.get(), timeout=1.0)
            assert event.type == "lease.granted"
            assert event.details["worker_id"] == worker_id


async def test_a_replica_does_not_read_its_own_events_back_from_the_log(
        postgres_url: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit's notification may reach the replica's listener before the group's callers have their answers: its
    bridge waits for the group's events to be published instead of reading them back (3% of a lease's CPU)."""
    async with replicas(postgres_url, clock) as (a, b):
        reads: list[int] = []
        read = a.store.events_after  # type: ignore[attr-defined]

        async def counted(after: int, limit: int = 1000) -> list[ops.Event]:
            reads.append(after)
            return await read(after, limit)

        monkeypatch.setattr(a.store, "events_after", counted)
        with a.hub.subscribe() as stream:
            for i in range(30):
                await asyncio.gather(*(a.run(ops.upsert_repo, ops.RepoSpec(f"acme/r{i}-{j}", 1), NOW)
                                       for j in range(3)))
            await asyncio.sleep(0.3)  # every notification has come
            assert list(seqs(stream.queue)) == list(range(1, 91))
        await reaches(b.hub, 90)  # the other replica reads them, as it must
        assert reads == []


async def test_claims_racing_on_two_replicas_respect_budget_and_area_locks(
        postgres_url: str, clock: ManualClock) -> None:
    async with replicas(postgres_url, clock) as (a, b):
        await a.run(ops.upsert_repo, ops.RepoSpec("acme/api", 4), NOW)
        for i in range(30):
            spec = ops.TaskSpec("acme/api", f"task {i}", area=f"area{i % 3}" if i % 2 else None)
            await a.run(ops.put_task, spec, NOW, "api")
        workers = [(await a.register(f"w{i}", None, [], 5, 2))[0] for i in range(12)]
        claims = [replica.run(ops.fetch_work, w, NOW, SETTINGS)
                  for w, replica in zip(workers, cycle((a, b)), strict=False)]
        held = [lease for leases in await asyncio.gather(*claims) for lease in leases]
        assert len(held) == 4  # the review budget, although 24 slots asked
        assert len({lease["id"] for lease in held}) == 4  # no task twice
        areas = [lease["area"] for lease in held if lease["area"] is not None]
        assert len(areas) == len(set(areas))  # one task per area
        repo, budget = await b.run(ops.get_repo, "acme/api", write=False)
        assert (repo["in_flight"], budget.leases) == (4, 4)


async def test_sweeping_on_every_replica_lapses_each_offer_once(postgres_url: str, clock: ManualClock,
                                                                ) -> None:
    async with replicas(postgres_url, clock, count=3) as sweepers:
        first = sweepers[0]
        await first.run(ops.upsert_repo, ops.RepoSpec("acme/api", 5), NOW)
        for i in range(5):
            await first.run(ops.put_task, ops.TaskSpec("acme/api", f"t{i}"), NOW, "api")
        worker_id, _ = await first.register("ann", None, [], 5, 5)
        offers, _ = await first.run(ops.request_offers, worker_id, NOW, SETTINGS)
        assert len(offers) == 5
        clock.advance(61)
        await asyncio.gather(*(replica.flush() for replica in sweepers for _ in range(3)))
        expired = await first.run(all_events, "offer.expired", write=False)
        assert len(expired) == 5
        repo, _ = await first.run(ops.get_repo, "acme/api", write=False)
        assert repo["in_flight"] == 0


async def test_two_replicas_sample_the_review_budgets_once_per_interval(postgres_url: str, clock: ManualClock) -> None:
    """Each replica's insights loop samples on its own timer (here 100 s apart, and each twice at once); the
    writers' lock runs them one after the other, and the later ones find the first one's sample."""
    later = ManualClock(clock.now() + 100)
    async with replicas(postgres_url, clock) as (a, b):
        b = Scheduler(b.store, SETTINGS, later, b.hub)
        for name in ("acme/api", "acme/web"):
            await a.run(ops.upsert_repo, ops.RepoSpec(name, 2), NOW)
        for _ in range(3):
            await asyncio.gather(*(replica.run(analytics.housekeeping, NOW, SETTINGS, slow=True)
                                   for replica in (a, b, a, b)))
            clock.advance(SETTINGS.insights_interval)
            later.advance(SETTINGS.insights_interval)
        _, found = await a.run(analytics.pool_analytics, 0, a.now() + 3600, SETTINGS.lease_max, write=False)
    assert found.samples == 2 * 3  # one per repo and interval


def all_events(type_: str | None) -> Op[list[ops.Event]]:
    return (yield from ops.list_events(0, type_, None, None, None, None, None, 1000))


def _emit_then_fail() -> Op[None]:
    yield ops.emit(0.0, "test.doomed", "system", None, None)
    raise Problem(409, "rolled back on purpose")


async def test_a_rolled_back_transaction_leaves_no_hole_in_the_log(postgres_url: str, clock: ManualClock,
                                                                   ) -> None:
    async with replicas(postgres_url, clock, count=1) as (a,):
        await a.run(ops.upsert_repo, ops.RepoSpec("acme/one", 1), NOW)
        with pytest.raises(Problem):
            await a.run(_emit_then_fail)
        await a.run(ops.upsert_repo, ops.RepoSpec("acme/two", 1), NOW)
        log = await a.run(all_events, None, write=False)
        assert [(e.seq, e.target) for e in log] == [(1, "acme/one"), (2, "acme/two")]


async def test_a_listener_that_loses_its_connection_catches_up(postgres_url: str, clock: ManualClock) -> None:
    async with replicas(postgres_url, clock) as (a, b):
        bridge = b.store.bridge  # type: ignore[attr-defined]
        conn = await asyncpg.connect(postgres_url)
        try:
            await conn.execute("SELECT pg_terminate_backend($1)", bridge.listener_pid)
        finally:
            await conn.close()
        for i in range(3):  # committed while replica b is not listening
            await a.run(ops.upsert_repo, ops.RepoSpec(f"acme/r{i}", 1), NOW)
        await reaches(b.hub, 3, seconds=5.0)


async def test_a_bulk_import_refreshes_the_planner_statistics(postgres_url: str, clock: ManualClock) -> None:
    """Else lease_next keeps a plan made for an empty table and walks every ready task (100 ms at 20k)."""
    async with replicas(postgres_url, clock, count=1) as (a,):
        specs = [(i, ops.TaskSpec("acme/api", f"task {i}", key=f"k{i}")) for i in range(ANALYZE_AFTER_CREATED)]
        await a.run(ops.import_tasks, [ops.RepoSpec("acme/api", 3)], specs, NOW)
        conn = await asyncpg.connect(postgres_url)
        try:
            counted = await conn.fetchval("SELECT reltuples FROM pg_class WHERE oid = 'tasks'::regclass")
        finally:
            await conn.close()
        assert counted == ANALYZE_AFTER_CREATED


async def test_a_workers_load_reads_only_its_tasks_in_flight(postgres_url: str) -> None:
    """A worker's finished tasks keep its id; counting its load must not walk them (migration 013)."""
    conn = await asyncpg.connect(postgres_url)
    try:
        await postgres_store.migrate(conn)
        await conn.execute(postgres_store.QUERIES["repo_insert"], "acme/api", 3, 1, None, None, 0.0)
        await conn.execute(postgres_store.QUERIES["worker_insert"], "w_1", "ann", None, "[]", 5, 2, 1, "h", 0.0)
        await conn.execute(
            "INSERT INTO tasks (id, repo, title, estimate_points, required_skills, priority, min_trust, status,"
            " worker_id, source, created_at, updated_at)"
            " SELECT 't_' || n, 'acme/api', 'done', 1, '[]', 1, 0, CASE WHEN n < 3 THEN 'leased' ELSE 'merged' END,"
            " 'w_1', 'api', n, n FROM generate_series(1, 5000) n")
        await conn.execute("ANALYZE tasks")
        plan = "\n".join(r[0] for r in await conn.fetch(
            "EXPLAIN (ANALYZE, BUFFERS) " + postgres_store.QUERIES["worker_claimant"], "w_1", 0.0, 1, "[3]", 0.0))
        load = await conn.fetchrow(postgres_store.QUERIES["worker_claimant"], "w_1", 0.0, 1, "[3]", 0.0)
    finally:
        await conn.close()
    assert (load["tasks_in_use"], load["points_in_use"]) == (2, 2)
    assert "tasks_in_use_by_worker" in plan and "tasks_by_worker" not in plan, plan


class Link:
    """A TCP proxy to PostgreSQL whose connections can go silent: no byte passes either way and neither end is
    told, as when a NAT or load balancer between a replica and the database forgets an idle connection."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.server: asyncio.Server | None = None
        self.silent: dict[int, asyncio.Event] = {}  # the local port of each upstream connection -> silenced
        self.sockets: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        reader, writer = await asyncio.open_connection(*self.upstream)
        self.sockets += [client_writer, writer]
        silent = self.silent.setdefault(writer.get_extra_info("sockname")[1], asyncio.Event())

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                if silent.is_set():
                    continue  # lost on the way; the connection stays open
                sink.write(data)
                await sink.drain()
            sink.close()

        with contextlib.suppress(OSError):
            await asyncio.gather(pump(client_reader, writer), pump(reader, client_writer))

    async def close(self) -> None:
        """Cut every connection (both ends see it closed) and stop listening."""
        assert self.server is not None
        self.server.close()
        for socket in self.sockets:
            socket.close()
        await self.server.wait_closed()


async def test_a_listener_whose_connection_goes_silent_reconnects_and_catches_up(
        postgres_url: str, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """A connection that drops without a word (an idle timeout on the network path) ends no read: the listener
    must find out by itself, or replica b stops streaming a's events for good."""
    monkeypatch.setattr(postgres_store.EventBridge, "CHECK_EVERY", 0.2)
    monkeypatch.setattr(postgres_store.EventBridge, "CHECK_TIMEOUT", 0.5)
    parts = urlsplit(postgres_url)
    link = Link((parts.hostname or "127.0.0.1", parts.port or 5432))
    port = await link.start()
    via_link = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}"))
    a, b = PostgresStore(postgres_url, pool_size=2), PostgresStore(via_link, pool_size=2)
    await a.open()
    await b.open()
    try:
        writer = Scheduler(a, SETTINGS, clock, a.hub)
        assert b.bridge is not None
        listener_port = await a._pool.fetchval(  # type: ignore[union-attr]
            "SELECT client_port FROM pg_stat_activity WHERE pid = $1", b.bridge.listener_pid)
        link.silent[listener_port].set()
        for i in range(3):  # committed while nothing reaches replica b's listener
            await writer.run(ops.upsert_repo, ops.RepoSpec(f"acme/r{i}", 1), NOW)
        await reaches(b.hub, 3, seconds=5.0)
    finally:
        await link.close()
        await a.close()
        await b.close()


async def test_an_import_whose_statistics_cannot_be_refreshed_is_still_answered(
        postgres_url: str, clock: ManualClock) -> None:
    """Refreshing the planner's statistics comes after the commit: when it fails (here: lock_timeout, while
    another session holds the lock ANALYZE needs), the import was kept and its caller must be told so."""
    async with replicas(postgres_url + "&lock_timeout=300", clock, count=1) as (a,):
        await a.run(ops.upsert_repo, ops.RepoSpec("acme/api", 3), NOW)
        holder = await asyncpg.connect(postgres_url)
        try:
            async with holder.transaction():
                await holder.execute("LOCK TABLE task_skills IN SHARE UPDATE EXCLUSIVE MODE")
                specs = [(i, ops.TaskSpec("acme/api", f"task {i}", key=f"k{i}"))
                         for i in range(ANALYZE_AFTER_CREATED)]
                results = await a.run(ops.import_tasks, [], specs, NOW)
        finally:
            await holder.close()
        assert len(results) == ANALYZE_AFTER_CREATED
        created = await a.run(all_events, "task.created", write=False)
        assert len(created) == ANALYZE_AFTER_CREATED


async def test_a_database_that_cannot_be_reached_is_a_503_to_retry(
        postgres_url: str, clock: ManualClock, tmp_path: Path) -> None:
    """PostgreSQL restarting or unreachable: the API answers 503 with Retry-After, which clients (the worker
    CLI among them) wait out, not a 500 that says the server failed."""
    parts = urlsplit(postgres_url)
    link = Link((parts.hostname or "127.0.0.1", parts.port or 5432))
    port = await link.start()
    via_link = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}"))
    settings = Settings(admin_token=ADMIN_TOKEN, db_path=tmp_path / "unused.db", database_url=via_link,
                        sweep_interval=3600, heartbeat_flush_interval=3600)
    server = await start_server(settings, clock)
    try:
        async with ClientSession() as http:
            async with http.get(server.make_url("/v1/tasks")) as answer:
                assert answer.status == 200
            await link.close()  # every connection cut, and no new one gets through
            admin = {"X-Admin-Token": ADMIN_TOKEN}
            for method, path, body in (("GET", "/v1/tasks", None), ("PUT", "/v1/repos/acme/api", {"max_open_prs": 1})):
                async with http.request(method, server.make_url(path), headers=admin, json=body) as answer:
                    problem = await answer.json(content_type=None)
                    assert answer.status == 503, problem
                    assert int(answer.headers["Retry-After"]) > 0
                    assert "database" in problem["detail"] and "again" in problem["detail"]
    finally:
        await server.close()


async def test_a_schema_with_a_long_name_still_carries_the_events(postgres_url: str, clock: ManualClock) -> None:
    """A notification channel is an identifier (at most 63 bytes): `owp_events.` and a long schema's name did not
    fit, and every write failed."""
    parts = urlsplit(postgres_url)
    schema = "owp_long_" + secrets.token_hex(4) + "x" * 45  # 62 characters: a name PostgreSQL allows
    admin = await asyncpg.connect(urlunsplit(parts._replace(query="")))
    await admin.execute(f'CREATE SCHEMA "{schema}"')
    in_schema = urlunsplit(parts._replace(query=f"search_path={schema}"))
    a, b = PostgresStore(in_schema, pool_size=2), PostgresStore(in_schema, pool_size=2)
    try:
        await a.open()
        await b.open()
        writer = Scheduler(a, SETTINGS, clock, a.hub)
        await writer.run(ops.upsert_repo, ops.RepoSpec("acme/api", 1), NOW)
        await reaches(b.hub, 1, seconds=5.0)  # replica b heard of it
    finally:
        await a.close()
        await b.close()
        await admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.close()
