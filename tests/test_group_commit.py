"""Group commit, in both stores: operations that wait together share one COMMIT, and each one's failure rolls
back only that operation (its own SAVEPOINT), never its neighbours'."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import asyncpg
import pytest

from owp_bot.config import Settings
from owp_bot.errors import Problem
from owp_bot.scheduler import operations as ops
from owp_bot.scheduler import postgres_store
from owp_bot.scheduler.models import TrustTier
from owp_bot.scheduler.postgres_store import MAX_GROUP, PostgresStore
from owp_bot.scheduler.sqlite_store import SQLiteStore
from owp_bot.scheduler.store import Op, Store

NOW = 1_767_225_600.0


def register(worker_id: str, token_hash: str) -> Op[None]:
    return ops.register_worker(worker_id, token_hash, worker_id, None, ["python"], 3, 1, TrustTier.BASIC, NOW)


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
            store.run(register("w_a", "hash-a")),
            store.run(register("w_dup", "hash-a")),  # the token hash is unique: IntegrityError
            store.run(register_then_refuse("w_refused")),
            store.run(register("w_b", "hash-b")),
            return_exceptions=True,
        )
        assert isinstance(answers[1], sqlite3.IntegrityError | asyncpg.UniqueViolationError)
        assert isinstance(answers[2], Problem) and answers[2].status == 409
        (_, events_a), (_, events_b) = answers[0], answers[3]  # type: ignore[misc]
        assert [e.type for e in events_a + events_b] == ["worker.registered", "worker.registered"]
        assert events_b[0].seq == events_a[0].seq + 1  # the rolled-back operations' events left no gap
        found, _ = await store.run(ops.list_workers("", 10), write=False)
        assert [w["id"] for w in found] == ["w_a", "w_b"]
    finally:
        await store.close()


async def test_every_waiting_operation_is_answered_and_close_waits_for_them(settings: Settings) -> None:
    store = make_store(settings)
    await store.open()
    pending = [asyncio.ensure_future(store.run(register(f"w_{i}", f"hash-{i}"))) for i in range(150)]
    await asyncio.sleep(0)  # all are queued before the first group runs: several groups (of at most MAX_GROUP)
    await store.close()
    assert all(task.done() and task.exception() is None for task in pending)
    assert sorted(e.seq for task in pending for e in task.result()[1]) == list(range(1, 151))
    reopened = make_store(settings)
    await reopened.open()
    try:
        found, _ = await reopened.run(ops.list_workers("", 200), write=False)
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
        answers = await asyncio.gather(*(store.run(record_transaction()) for _ in range(2 * MAX_GROUP + 1)))
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
        await store.run(register("w_a", "hash-a"))


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
        await store.run(record_thread(seen))
        await store.run(record_thread(seen), slow=True)
        await store.run(record_thread(seen), write=False)
    finally:
        await store.close()
    assert seen[0] == threading.current_thread().name
    assert seen[1].startswith("owp-sqlite-slow-write") and seen[2].startswith("owp-sqlite-read")
