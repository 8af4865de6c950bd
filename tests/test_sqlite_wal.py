"""The SQLite write-ahead log stays bounded under writes that never pause.

A checkpoint copies the WAL into the database, but only the writer can start the WAL again from its beginning,
and only once every frame in it was copied. A background checkpoint never catches up with a writer that commits
every few milliseconds, so the WAL grew by the whole write volume (about 60 MB/s in the benchmark's worker loop,
and every COMMIT got slower with it). The store therefore finishes each round's checkpoint on the writer's own
turn, between two groups, where nothing new can be appended meanwhile.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from owp_bot.scheduler import operations as ops
from owp_bot.scheduler import sqlite_store
from owp_bot.scheduler.models import TrustTier
from owp_bot.scheduler.sqlite_store import SQLiteStore

START = 1_767_225_600.0


def _wal_salt(path: Path) -> bytes:
    """The WAL header's salts (bytes 16-23): new ones each time the WAL starts again from its beginning."""
    with open(path.with_name(path.name + "-wal"), "rb") as wal:
        return wal.read(24)[16:]


async def test_the_wal_starts_again_while_writes_never_pause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 0.05)
    store = SQLiteStore(tmp_path / "pool.db")
    await store.open()
    salts: set[bytes] = set()
    done = asyncio.Event()

    async def write(writer: int) -> None:
        n = 0
        while not done.is_set():
            n += 1
            worker_id = f"w{writer}_{n}"
            await store.run(lambda w=worker_id: ops.register_worker(w, f"hash-{w}", w, None, ["python"] * 20,
                                                                    3, 1, TrustTier.BASIC, START))

    try:
        writers = [asyncio.create_task(write(i)) for i in range(16)]
        deadline = asyncio.get_running_loop().time() + 30  # a round every 0.05 s: about a second, on a fast disk
        while len(salts) < 5 and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            salts.add(await asyncio.to_thread(_wal_salt, store.path))
        done.set()
        await asyncio.gather(*writers)
    finally:
        await store.close()
    assert len(salts) >= 5, "the WAL never started again: it grows as long as the writes go on"


async def test_the_checkpoint_step_starts_the_wal_again_itself(tmp_path: Path) -> None:
    """The first write after a complete checkpoint starts the WAL again and syncs its header (20-25 ms): the
    writer's checkpoint step, off the event loop's thread, makes that write, not the next COMMIT."""
    store = SQLiteStore(tmp_path / "pool.db")
    await store.open()
    try:
        await store.run(lambda: ops.register_worker("w1", "hash-w1", "w1", None, ["python"], 3, 1,
                                                    TrustTier.BASIC, START))
        before = _wal_salt(store.path)
        checkpoints, writer = store._checkpoints, store._writer
        assert checkpoints is not None and writer is not None
        await asyncio.to_thread(checkpoints.finish, writer)
        assert _wal_salt(store.path) != before  # started again, before any other write
    finally:
        await store.close()
