"""Every connection of the SQLite store is set up the same way: foreign keys on, a page cache that holds the
indexes, and temporary b-trees in memory (bench/RESULTS.md, eleventh session: on a temporary file each `IN (…)`
list of a trigger cost a lease ~270 µs)."""

from __future__ import annotations

from pathlib import Path

from owp_bot.scheduler.sqlite_store import SQLiteStore

MEMORY = 2  # PRAGMA temp_store: 0 default, 1 file, 2 memory


async def test_the_writer_and_the_reader_keep_temporary_btrees_in_memory(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "pool.db")
    await store.open()
    try:
        assert store._writer is not None
        writer = store._writer.execute("PRAGMA temp_store").fetchone()[0]
        reader = await store._read(lambda: store._reader.execute("PRAGMA temp_store").fetchone()[0])
        assert (writer, reader) == (MEMORY, MEMORY)
        assert store._writer.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        await store.close()
