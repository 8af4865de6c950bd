"""Group commit, in both stores: operations that wait together share one COMMIT, and each one's failure undoes
only that operation, never its neighbours' (SQLite: a savepoint each; PostgreSQL: the group runs again without
an operation that failed after writing)."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from owp_bot.clock import ManualClock
from owp_bot.config import Settings
from owp_bot.errors import Problem
from owp_bot.events import EventHub
from owp_bot.scheduler import operations as ops
from owp_bot.scheduler import postgres_store, reputation
from owp_bot.scheduler.models import TrustTier
from owp_bot.scheduler.postgres_store import MAX_GROUP, PostgresStore
from owp_bot.scheduler.service import NOW, Scheduler
from owp_bot.scheduler.sqlite_store import SQLiteStore
from owp_bot.scheduler.store import Committed, MakeOp, Op, Store

START = 1_767_225_600.0
T = TypeVar("T")


def register(worker_id: str, token_hash: str) -> Op[None]:
    return ops.register_worker(worker_id, token_hash, worker_id, None, ["python"], 3, 1, TrustTier.BASIC, START)


def register_then_refuse(worker_id: str) -> Op[None]:
    yield from register(worker_id, f"hash-{worker_id}")
    raise Problem(409, "refused after writing")


def make_store(settings: Settings) -> Store:
    return PostgresStore(settings.database_url) if settings.database_url else SQLiteStore(settings.db_path)


async def test_a_failing_operation_in_a_group_is_rolled_back_alone(settings: Settings) -> None:
    store = make_store(settings)
    await store.open()
    try:
        answers = await asyncio.gather(
            store.run(lambda: register("w_a", "hash-a")),
            store.run(lambda: register("w_dup", "hash-a")),  # the token hash is unique: IntegrityError
            store.run(lambda: register_then_refuse("w_refused")),
            store.run(lambda: register("w_b", "hash-b")),
            return_exceptions=True,
        )
        assert isinstance(answers[1], sqlite3.IntegrityError | asyncpg.UniqueViolationError)
        assert isinstance(answers[2], Problem) and answers[2].status == 409
        (_, events_a), (_, events_b) = answers[0], answers[3]  # type: ignore[misc]
        assert [e.type for e in events_a + events_b] == ["worker.registered", "worker.registered"]
        assert events_b[0].seq == events_a[0].seq + 1  # the rolled-back operations' events left no gap
        found, _ = await store.run(lambda: ops.list_workers("", 10), write=False)
        assert [w["id"] for w in found] == ["w_a", "w_b"]
    finally:
        await store.close()


class Made:
    """Counts how often the store made each operation."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}

    def __call__(self, name: str, make: MakeOp[T]) -> MakeOp[T]:
        def counted() -> Op[T]:
            self.count[name] = self.count.get(name, 0) + 1
            return make()
        return counted


def refuse_before_writing() -> Op[None]:
    yield ops.one("worker_get", "w_nobody")
    raise Problem(404, "refused before writing")


async def test_only_a_failure_after_writing_makes_the_others_run_again(settings: Settings) -> None:
    store, made = make_store(settings), Made()
    await store.open()
    try:
        first = await asyncio.gather(
            store.run(made("a", lambda: register("w_a", "hash-a"))),
            store.run(made("refused early", refuse_before_writing)),
            store.run(made("b", lambda: register("w_b", "hash-b"))),
            return_exceptions=True)
        second = await asyncio.gather(
            store.run(made("c", lambda: register("w_c", "hash-c"))),
            store.run(made("refused late", lambda: register_then_refuse("w_refused"))),
            store.run(made("d", lambda: register("w_d", "hash-d"))),
            return_exceptions=True)
        found, _ = await store.run(lambda: ops.list_workers("", 10), write=False)
    finally:
        await store.close()
    assert isinstance(first[1], Problem) and isinstance(second[1], Problem)
    assert [w["id"] for w in found] == ["w_a", "w_b", "w_c", "w_d"]  # each once, whatever ran again
    # PostgreSQL rolled back the second group and ran "c" again; SQLite undid the failed one alone (a savepoint)
    again = 2 if settings.database_url else 1
    assert made.count == {"a": 1, "refused early": 1, "b": 1, "c": again, "refused late": 1, "d": 1}
    seqs = [e.seq for answer in (*first, *second) if not isinstance(answer, BaseException) for e in answer[1]]
    assert seqs == list(range(seqs[0], seqs[0] + 4))


def emit_then_read(worker_id: str) -> Op[tuple[int, int]]:
    """An outcome event, then the statements that read what inserting it changed (in the same operation)."""
    yield from register(worker_id, f"hash-{worker_id}")
    yield ops.emit(START, "lease.completed", worker_id, "t_1", "acme/api", worker_id=worker_id)
    last = yield from ops.last_event_seq()
    completed = (yield from reputation.outcomes_of(worker_id)).completed
    return last, completed


async def test_an_operation_reads_its_own_events(settings: Settings) -> None:
    """PostgreSQL holds events back to insert them together; a statement that reads the log or the outcome
    counters gets them first."""
    store = make_store(settings)
    await store.open()
    try:
        (last, completed), events = await store.run(lambda: emit_then_read("w_a"))
        (later, _), more = await store.run(lambda: emit_then_read("w_b"))
    finally:
        await store.close()
    assert [e.type for e in events] == ["worker.registered", "lease.completed"]
    assert last == events[-1].seq and completed == 1
    assert later == more[-1].seq == last + 2


def complete(worker_id: str) -> Op[None]:
    yield ops.emit(START, "lease.completed", worker_id, "t_1", "acme/api", worker_id=worker_id)


def score_of(worker_id: str) -> Op[tuple[float, int]]:
    worker = yield from ops.load_worker(worker_id)
    return worker["reputation"], worker["rep_review"]


async def test_the_next_operation_in_a_group_sees_the_score_an_outcome_set(settings: Settings) -> None:
    """The outcome trigger sets the worker's score; on PostgreSQL, where the outcome event is held back, a
    statement on workers after it (the next operation's, in the same transaction) has it inserted first."""
    store = make_store(settings)
    await store.open()
    try:
        await store.run(lambda: register("w_a", "hash-a"))
        _, ((score, review), _) = await asyncio.gather(store.run(lambda: complete("w_a")),
                                                       store.run(lambda: score_of("w_a")))  # one group
        (after, _), _ = await store.run(lambda: score_of("w_a"), write=False)
    finally:
        await store.close()
    assert score == after == reputation.score(reputation.Outcomes(completed=1)) and review == 1


class Prelude:
    """A prelude that registers a worker (a write, with its event) and counts what the store did with it."""

    def __init__(self) -> None:
        self.made = self.committed = 0

    def __call__(self) -> Op[Committed]:
        self.made += 1
        yield from register(f"w_prelude_{self.made}", f"hash-prelude-{self.made}")
        return self.on_commit

    def on_commit(self) -> None:
        self.committed += 1


async def test_a_group_runs_one_prelude_and_its_first_success_carries_its_events(settings: Settings) -> None:
    store, prelude = make_store(settings), Prelude()
    await store.open()
    try:
        answers = await asyncio.gather(
            store.run(refuse_before_writing, prelude=prelude),
            store.run(lambda: register("w_a", "hash-a"), prelude=prelude),
            store.run(lambda: register("w_b", "hash-b"), prelude=prelude),
            return_exceptions=True)
    finally:
        await store.close()
    assert (prelude.made, prelude.committed) == (1, 1)
    assert isinstance(answers[0], Problem)
    (_, events_a), (_, events_b) = answers[1], answers[2]  # type: ignore[misc]
    assert [e.target for e in events_a] == ["w_prelude_1", "w_a"] and [e.target for e in events_b] == ["w_b"]


async def test_a_group_where_nothing_succeeds_keeps_nothing_not_even_its_prelude(settings: Settings) -> None:
    store, prelude = make_store(settings), Prelude()
    await store.open()
    try:
        answers = await asyncio.gather(store.run(refuse_before_writing, prelude=prelude),
                                       store.run(refuse_before_writing, prelude=prelude), return_exceptions=True)
        found, _ = await store.run(lambda: ops.list_workers("", 10), write=False)
    finally:
        await store.close()
    assert all(isinstance(answer, Problem) for answer in answers)
    assert found == [] and (prelude.made, prelude.committed) == (1, 0)


async def test_buffered_heartbeats_wait_for_a_transaction_that_commits(settings: Settings) -> None:
    """The scheduler writes buffered heartbeats in the prelude; rolled back, they return to the buffer."""
    clock = ManualClock()
    store = make_store(settings)
    await store.open()
    scheduler = Scheduler(store, settings, clock, EventHub())
    try:
        worker_id, _ = await scheduler.register("ann", None, ["python"], 3, 1)
        clock.advance(60)
        scheduler.heartbeat(worker_id, "busy", "on it")
        with pytest.raises(Problem):
            await scheduler.run(refuse_before_writing)
        assert scheduler.pending_heartbeats == 1  # nothing succeeded: rolled back, kept for the next one
        worker = await scheduler.run(ops.get_worker, worker_id, write=False)
        assert worker["status"] == "idle"
        await scheduler.flush()
        assert scheduler.pending_heartbeats == 0
        worker = await scheduler.run(ops.get_worker, worker_id, write=False)
        assert (worker["status"], worker["last_heartbeat"]) == ("busy", clock.now())
    finally:
        await store.close()


async def test_the_buffered_heartbeats_of_many_workers_are_written_together(settings: Settings) -> None:
    """Two statements for any number of heartbeats; an event for each status that changed, none for the rest."""
    clock = ManualClock()
    store = make_store(settings)
    await store.open()
    scheduler = Scheduler(store, settings, clock, EventHub())
    try:
        ids = [(await scheduler.register(f"w{i}", None, ["python"], 3, 1))[0] for i in range(5)]
        clock.advance(61.123456789)
        for i, worker_id in enumerate(ids):
            scheduler.heartbeat(worker_id, "busy" if i % 2 else "idle", f"note {i}" if i else None)
        await scheduler.flush()
        events = await scheduler.run(ops.list_events, 0, "worker.status", None, None, None, None, None, 10, write=False)
        workers = {w["id"]: w for w in await scheduler.run(ops.list_workers, "", 10, write=False)}
    finally:
        await store.close()
    assert [(e.target, e.details["status"], e.details["previous"]) for e in events] == [
        (ids[1], "busy", "idle"), (ids[3], "busy", "idle")]
    assert [(workers[w]["status"], workers[w]["note"], workers[w]["last_heartbeat"]) for w in ids] == [
        ("busy" if i % 2 else "idle", f"note {i}" if i else None, clock.now()) for i in range(5)]


async def test_a_heartbeat_older_than_the_one_recorded_changes_nothing(settings: Settings) -> None:
    """Replicas buffer heartbeats apart: a worker's later beat may be written first (by the replica it reached),
    and the earlier one, flushed after it by another replica, must not take its place or its status."""
    clock = ManualClock()
    store = make_store(settings)
    await store.open()
    scheduler = Scheduler(store, settings, clock, EventHub())
    try:
        worker_id, _ = await scheduler.register("ann", None, ["python"], 3, 1)
        now = clock.now()
        await scheduler.run(ops.apply_heartbeats, {worker_id: (now + 20, "paused", "lunch")})
        await scheduler.run(ops.apply_heartbeats, {worker_id: (now + 10, "busy", None)})
        worker = await scheduler.run(ops.get_worker, worker_id, write=False)
        events = await scheduler.run(ops.list_events, 0, "worker.status", None, None, None, None, None, 10,
                                     write=False)
    finally:
        await store.close()
    assert (worker["status"], worker["note"], worker["last_heartbeat"]) == ("paused", "lunch", now + 20)
    assert [e.details["status"] for e in events] == ["paused"]  # no event for the beat that was not kept


async def test_every_waiting_operation_is_answered_and_close_waits_for_them(settings: Settings) -> None:
    store = make_store(settings)
    await store.open()
    pending = [asyncio.ensure_future(store.run(lambda i=i: register(f"w_{i}", f"hash-{i}"))) for i in range(150)]
    await asyncio.sleep(0)  # all are queued before the first group runs: several groups (of at most MAX_GROUP)
    await store.close()
    assert all(task.done() and task.exception() is None for task in pending)
    assert sorted(e.seq for task in pending for e in task.result()[1]) == list(range(1, 151))
    reopened = make_store(settings)
    await reopened.open()
    try:
        found, _ = await reopened.run(lambda: ops.list_workers("", 200), write=False)
        assert len(found) == 150
    finally:
        await reopened.close()


async def test_one_postgres_transaction_holds_at_most_max_group_operations(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each operation is a subtransaction; PostgreSQL caches at most 64 per transaction."""
    monkeypatch.setitem(postgres_store.QUERIES, "txid_current", "SELECT txid_current() AS xid")
    store = PostgresStore(postgres_url)
    await store.open()
    try:
        answers = await asyncio.gather(*(store.run(record_transaction) for _ in range(2 * MAX_GROUP + 1)))
    finally:
        await store.close()
    per_transaction: dict[int, int] = {}
    for xid, _ in answers:  # the id of the transaction each one ran in
        per_transaction[xid] = per_transaction.get(xid, 0) + 1
    assert max(per_transaction.values()) <= MAX_GROUP
    assert len(per_transaction) < len(answers)  # and they did share transactions


def record_transaction() -> Op[int]:
    row = yield ops.one("txid_current")
    return int(row["xid"])


async def test_a_closed_store_refuses_operations(settings: Settings) -> None:
    store = make_store(settings)
    with pytest.raises(RuntimeError, match="not open"):
        await store.run(lambda: register("w_a", "hash-a"))


def record_thread(seen: list[str]) -> Op[None]:
    seen.append(threading.current_thread().name)  # the body runs where the store drives the operation
    return None
    yield  # a generator that yields nothing


async def test_writes_run_on_the_loop_thread_and_slow_ones_on_their_own(tmp_path: Path) -> None:
    """A write is a few statements: it runs on the event loop's thread. A slow one (a bulk import) runs on a
    thread, so that the loop answers heartbeats and reads meanwhile."""
    store = SQLiteStore(tmp_path / "pool.db")
    await store.open()
    seen: list[str] = []
    try:
        await store.run(lambda: record_thread(seen))
        await store.run(lambda: record_thread(seen), slow=True)
        await store.run(lambda: record_thread(seen), write=False)
    finally:
        await store.close()
    assert seen[0] == threading.current_thread().name
    assert seen[1].startswith("owp-sqlite-slow-write") and seen[2].startswith("owp-sqlite-read")


KINDS = st.lists(st.sampled_from(["ok", "fails early", "fails late", "refused"]), min_size=1, max_size=12)


def test_any_group_keeps_exactly_what_succeeded(settings: Settings) -> None:
    """Whatever mix of successes and failures waits together (PostgreSQL runs a group again after a failure
    that wrote; SQLite rolls back a savepoint): each caller gets its own answer, the database keeps exactly the
    successful operations, and their events are numbered without a gap."""
    loop = asyncio.new_event_loop()
    store = make_store(settings)
    loop.run_until_complete(store.open())
    loop.run_until_complete(store.run(lambda: register("w_taken", "hash-taken")))
    groups = itertools.count()

    @given(kinds=KINDS)
    @hypothesis_settings(max_examples=60, deadline=None)
    def check(kinds: list[str]) -> None:
        loop.run_until_complete(one_group(store, kinds, next(groups)))

    try:
        check()
    finally:
        loop.run_until_complete(store.close())
        loop.close()


async def one_group(store: Store, kinds: list[str], group: int) -> None:
    ids = [f"w_{group:03}_{i:02}" for i in range(len(kinds))]
    makers: dict[str, Callable[[str], MakeOp[None]]] = {
        "ok": lambda worker_id: lambda: register(worker_id, f"hash-{worker_id}"),
        "fails early": lambda worker_id: refuse_before_writing,
        "fails late": lambda worker_id: lambda: register_then_refuse(worker_id),
        "refused": lambda worker_id: lambda: register(worker_id, "hash-taken"),  # the token hash is unique
    }
    before, _ = await store.run(ops.last_event_seq, write=False)
    waiting = [store.run(makers[kind](worker_id)) for kind, worker_id in zip(kinds, ids, strict=True)]
    answers = await asyncio.gather(*waiting, return_exceptions=True)
    after, _ = await store.run(ops.last_event_seq, write=False)
    found, _ = await store.run(lambda: ops.list_workers(f"w_{group:03}_", 100), write=False)
    kept = [worker_id for kind, worker_id in zip(kinds, ids, strict=True) if kind == "ok"]
    assert [w["id"] for w in found if w["id"].startswith(f"w_{group:03}_")] == kept
    seqs = []
    for kind, worker_id, answer in zip(kinds, ids, answers, strict=True):
        if kind == "ok":
            assert not isinstance(answer, BaseException), answer
            assert [(e.type, e.target) for e in answer[1]] == [("worker.registered", worker_id)]
            seqs.append(answer[1][0].seq)
        elif kind == "refused":
            assert isinstance(answer, sqlite3.IntegrityError | asyncpg.UniqueViolationError), answer
        else:
            assert isinstance(answer, Problem), answer
    assert seqs == list(range(before + 1, after + 1))


@asynccontextmanager
async def writer_busy(scheduler: Scheduler, settings: Settings) -> AsyncIterator[None]:
    """The writer busy for as long as the block runs: with a bulk import (a slow write) on SQLite, with another
    replica's transaction holding the writers' lock on PostgreSQL. Writes that arrive meanwhile wait."""
    if settings.database_url:
        other_replica = await asyncpg.connect(settings.database_url)
        await other_replica.execute(postgres_store._BEGIN_WRITE)
        try:
            yield
        finally:
            await other_replica.execute("ROLLBACK")
            await other_replica.close()
        return
    started, done = threading.Event(), threading.Event()

    def bulk_import() -> Op[None]:
        started.set()
        done.wait()  # on the slow-write thread: the event loop serves requests meanwhile
        return None
        yield

    importing = asyncio.ensure_future(scheduler.run(bulk_import, slow=True))
    await asyncio.to_thread(started.wait)
    try:
        yield
    finally:
        done.set()
        await importing


async def test_a_request_is_judged_when_it_arrived_not_when_its_group_ran(settings: Settings) -> None:
    """A renewal, a status report and a heartbeat that arrive a second before their deadlines, then wait for the
    writer while the deadlines pass, are judged as of their arrival: nothing of theirs lapses."""
    settings = settings.with_overrides(lease_ttl=1000, heartbeat_timeout=100)
    clock = ManualClock()
    store = make_store(settings)
    await store.open()
    scheduler = Scheduler(store, settings, clock, EventHub())
    try:
        await scheduler.run(ops.upsert_repo, ops.RepoSpec("acme/api", 3), NOW)
        for title in ("renewed", "reported"):
            await scheduler.run(ops.put_task, ops.TaskSpec("acme/api", title), NOW, "api")
        ann, _ = await scheduler.register("ann", None, ["python"], 3, 2)
        bob, _ = await scheduler.register("bob", None, ["python"], 3, 1)
        renewed, reported = sorted(await scheduler.run(ops.fetch_work, ann, NOW, settings),
                                   key=lambda lease: lease["title"], reverse=True)
        for _ in range(18):  # both call in every 50 s until 900 s after the grant: silent at 1000, as the leases end
            clock.advance(50)
            scheduler.heartbeat(ann, "busy", None)
            scheduler.heartbeat(bob, "idle", None)
        await scheduler.flush()
        clock.advance(99)
        arrived = clock.now()  # a second before every deadline
        async with writer_busy(scheduler, settings):
            renewal = asyncio.ensure_future(scheduler.run(
                ops.renew_lease, ann, renewed["lease_id"], NOW, settings))
            report = asyncio.ensure_future(scheduler.run(
                ops.report_status, reported["id"], "in_progress", NOW, worker_id=ann))
            scheduler.heartbeat(ann, "busy", None)
            scheduler.heartbeat(bob, "idle", "still here")
            await asyncio.sleep(0)  # the requests have arrived, and wait for the writer
            clock.advance(2)  # meanwhile the deadlines pass
        expires_at, _ = await renewal
        assert expires_at == arrived + 1000
        assert (await report)["status"] == "in_progress"
        for worker_id, status in ((ann, "busy"), (bob, "idle")):
            found = await scheduler.run(ops.get_worker, worker_id, write=False)
            assert (found["status"], found["last_heartbeat"]) == (status, arrived)
        events = await scheduler.run(ops.list_events, 0, None, None, None, None, None, None, 100,
                                     write=False)
        assert [e for e in events if e.type in ("lease.expired", "worker.offline")] == []
        clock.advance(1000)  # the reported task's lease, not renewed, lapses as ever
        await scheduler.flush()
        task, _ = await scheduler.run(ops.get_task, reported["id"], write=False)
        assert task["status"] == "ready"
    finally:
        await store.close()


async def test_a_request_that_arrived_after_its_deadline_is_refused_though_its_group_began_before(
    settings: Settings,
) -> None:
    """Each operation is judged as of its own arrival: a renewal that arrives after its lease ran out is refused,
    though it waited for the writer behind a request that arrived before the deadline (and shares its group)."""
    settings = settings.with_overrides(lease_ttl=1000, heartbeat_timeout=10_000)
    clock = ManualClock()
    store = make_store(settings)
    await store.open()
    scheduler = Scheduler(store, settings, clock, EventHub())
    try:
        await scheduler.run(ops.upsert_repo, ops.RepoSpec("acme/api", 3), NOW)
        await scheduler.run(ops.put_task, ops.TaskSpec("acme/api", "late"), NOW, "api")
        ann, _ = await scheduler.register("ann", None, ["python"], 3, 1)
        (lease,) = await scheduler.run(ops.fetch_work, ann, NOW, settings)
        clock.advance(999)  # a second before the lease's deadline
        async with writer_busy(scheduler, settings):
            early = asyncio.ensure_future(scheduler.flush())  # arrives before the deadline
            await asyncio.sleep(0)
            clock.advance(2)  # the deadline passes; then the renewal arrives
            renewal = asyncio.ensure_future(scheduler.run(
                ops.renew_lease, ann, lease["lease_id"], NOW, settings))
            await asyncio.sleep(0)
        await early
        with pytest.raises(Problem) as refused:
            await renewal
        assert refused.value.status == 409 and "expired" in refused.value.detail
        await scheduler.flush()
        task, history = await scheduler.run(ops.get_task, lease["id"], write=False)
        assert task["status"] == "ready"
        assert [e.type for e in history if e.type.startswith("lease.")] == ["lease.granted", "lease.expired"]
    finally:
        await store.close()


async def test_an_offer_answered_after_it_ran_out_is_refused_though_its_group_began_before(
    settings: Settings,
) -> None:
    """As a renewal: an accept that arrives after its offer ran out gets no lease, whether or not it shares a
    transaction with a request that arrived before the offer's deadline."""
    settings = settings.with_overrides(offer_ttl=100, heartbeat_timeout=10_000)
    clock = ManualClock()
    store = make_store(settings)
    await store.open()
    scheduler = Scheduler(store, settings, clock, EventHub())
    try:
        await scheduler.run(ops.upsert_repo, ops.RepoSpec("acme/api", 3), NOW)
        await scheduler.run(ops.put_task, ops.TaskSpec("acme/api", "late"), NOW, "api")
        ann, _ = await scheduler.register("ann", None, ["python"], 3, 1)
        (offer,), _ = await scheduler.run(ops.request_offers, ann, NOW, settings)
        clock.advance(99)  # a second before the offer's deadline
        async with writer_busy(scheduler, settings):
            early = asyncio.ensure_future(scheduler.flush())  # arrives before the deadline
            await asyncio.sleep(0)
            clock.advance(2)  # the deadline passes; then the accept arrives
            accept = asyncio.ensure_future(scheduler.run(
                ops.accept_offer, ann, offer["offer_id"], NOW, settings))
            await asyncio.sleep(0)
        await early
        with pytest.raises(Problem) as refused:
            await accept
        assert refused.value.status == 409 and "expired" in refused.value.detail
        await scheduler.flush()
        task, history = await scheduler.run(ops.get_task, offer["id"], write=False)
        assert task["status"] == "ready"
        assert [e.type for e in history if e.type.startswith(("offer.", "lease."))] == ["offer.created",
                                                                                         "offer.expired"]
    finally:
        await store.close()
