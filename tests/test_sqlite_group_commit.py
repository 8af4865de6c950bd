"""Group commit in the SQLite store: operations that wait together share one COMMIT, and each one's failure
rolls back only that operation (its own SAVEPOINT), never its neighbours'."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from owp_bot.errors import Problem
from owp_bot.scheduler import operations as ops
from owp_bot.scheduler.models import TrustTier
from owp_bot.scheduler.sqlite_store import SQLiteStore
from owp_bot.scheduler.store import Op

NOW = 1_767_225_600.0


def register(worker_id: str, token_hash: str) -> Op[None]:
    return ops.register_worker(worker_id, token_hash, worker_id, None, ["python"], 3, 1, TrustTier.BASIC, NOW)


def register_then_refuse(worker_id: str) -> Op[None]:
    yield from register(worker_id, f"hash-{worker_id}")
    raise Problem(409, "refused after writing")


async def test_a_failing_operation_in_a_group_is_rolled_back_alone(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "pool.db")
    await store.open()
    try:
        answers = await asyncio.gather(
            store.run(register("w_a", "hash-a")),
            store.run(register("w_dup", "hash-a")),  # the token hash is unique: IntegrityError
            store.run(register_then_refuse("w_refused")),
            store.run(register("w_b", "hash-b")),
            return_exceptions=True,
        )
        assert isinstance(answers[1], sqlite3.IntegrityError)
        assert isinstance(answers[2], Problem) and answers[2].status == 409
        (_, events_a), (_, events_b) = answers[0], answers[3]  # type: ignore[misc]
        assert [e.type for e in events_a + events_b] == ["worker.registered", "worker.registered"]
        assert events_b[0].seq == events_a[0].seq + 1  # the rolled-back operations' events left no gap
        found, _ = await store.run(ops.list_workers("", 10), write=False)
        assert [w["id"] for w in found] == ["w_a", "w_b"]
    finally:
        await store.close()


async def test_every_waiting_operation_is_answered_and_close_waits_for_them(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "pool.db")
    await store.open()
    pending = [asyncio.ensure_future(store.run(register(f"w_{i}", f"hash-{i}"))) for i in range(150)]
    await asyncio.sleep(0)  # all are queued before the first group runs: several groups of at most 64
    await store.close()
    assert all(task.done() and task.exception() is None for task in pending)
    with sqlite3.connect(tmp_path / "pool.db") as db:
        assert db.execute("SELECT count(*) FROM workers").fetchone()[0] == 150
        assert db.execute("SELECT max(seq) FROM events").fetchone()[0] == 150


async def test_a_closed_store_refuses_operations(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "pool.db")
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
