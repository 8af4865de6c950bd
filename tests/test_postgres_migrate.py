"""`owp migrate-db --from sqlite:PATH --to postgresql://…`: a SQLite pool moves to PostgreSQL whole — tasks,
leases, workers (their tokens still work), the event log with its numbers — and carries on there."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from owp_bot.clock import ManualClock
from owp_bot.config import Settings
from owp_bot.events import EventHub
from owp_bot.scheduler import operations as ops
from owp_bot.scheduler import reputation
from owp_bot.scheduler.postgres_store import PostgresStore
from owp_bot.scheduler.service import NOW, Scheduler
from owp_bot.scheduler.sqlite_store import SQLiteStore
from owp_bot.scheduler.store import Event, Op, Store

OWP = Path(sys.executable).parent / "owp"
SETTINGS = Settings(admin_token="x" * 20)


async def owp(*args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(str(OWP), *args, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.STDOUT)
    output, _ = await process.communicate()
    return await process.wait(), output.decode()


def everything() -> Op[tuple[list[Event], list[dict[str, object]], list[dict[str, object]]]]:
    events = yield from ops.list_events(0, None, None, None, None, None, None, 1000)
    tasks = yield from ops.list_tasks("", None, None, None, None, None, 1000)
    workers = yield from ops.list_workers("", 1000)
    return events, [dict(t) for t in tasks], [dict(w) for w in workers]


async def snapshot(store: Store) -> tuple[list[Event], list[dict[str, object]], list[dict[str, object]]]:
    result, _ = await store.run(everything, write=False)
    return result


async def test_a_sqlite_pool_moves_to_postgres_and_carries_on(tmp_path: Path, postgres_url: str) -> None:
    clock = ManualClock()
    sqlite = SQLiteStore(tmp_path / "pool.db")
    await sqlite.open()
    pool = Scheduler(sqlite, SETTINGS, clock, EventHub())
    await pool.run(ops.upsert_repo, ops.RepoSpec("acme/api", 3), NOW)
    for i in range(4):
        spec = ops.TaskSpec("acme/api", f"task {i}", key=f"k{i}", area="auth" if i == 0 else None,
                            required_skills=("python",))
        await pool.run(ops.put_task, spec, NOW, "yaml")
    ann, ann_token = await pool.register("ann", "ann-gh", ["python"], 5, 2)
    held = await pool.run(ops.fetch_work, ann, NOW, SETTINGS)
    done = held[0]["id"]  # rows of tasks with their lease
    await pool.run(ops.report_status, done, "pr_opened", NOW, worker_id=ann, pr_url="https://github.com/acme/api/pull/1")
    outcomes, _ = await sqlite.run(lambda: reputation.outcomes_of(ann), write=False)
    assert outcomes.completed == 1
    before = await snapshot(sqlite)
    await sqlite.close()

    code, output = await owp("migrate-db", "--from", f"sqlite:{tmp_path / 'pool.db'}", "--to", postgres_url)
    assert code == 0, output
    assert "tasks" in output and "events" in output

    postgres = PostgresStore(postgres_url)
    await postgres.open()
    try:
        after = await snapshot(postgres)
        assert after == before  # same rows, same event numbers and details
        assert (await postgres.run(lambda: reputation.outcomes_of(ann), write=False))[0] == outcomes  # counted once
        moved = Scheduler(postgres, SETTINGS, clock, postgres.hub)
        assert await moved.authenticate(ann_token) == ann
        bob, _ = await moved.register("bob", None, ["python"], 5, 2)
        leases = await moved.run(ops.fetch_work, bob, NOW, SETTINGS)
        assert len(leases) == 1  # ann holds one and has a PR open (one in area auth), budget 3: one left
        events, _, _ = await snapshot(postgres)
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert len(events) == len(before[0]) + 2  # worker.registered, lease.granted: numbering continues
    finally:
        await postgres.close()

    code, output = await owp("migrate-db", "--from", f"sqlite:{tmp_path / 'pool.db'}", "--to", postgres_url)
    assert code == 1 and "already holds a pool" in output
    code, output = await owp("migrate-db", "--from", str(tmp_path / "pool.db"), "--to", postgres_url)
    assert code == 2 and "sqlite:PATH" in output


async def test_a_database_it_cannot_reach_is_a_clear_error(tmp_path: Path, postgres_url: str) -> None:
    sqlite = SQLiteStore(tmp_path / "pool.db")
    await sqlite.open()
    await sqlite.close()
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    parts = urlsplit(postgres_url)
    closed_port = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{port}"))
    no_database = urlunsplit(parts._replace(path="/owp_no_such_database"))
    for target, reason in [(closed_port, "Connect call failed"), (no_database, "does not exist")]:
        code, output = await owp("migrate-db", "--from", f"sqlite:{tmp_path / 'pool.db'}", "--to", target)
        assert code == 2, output
        assert "cannot connect to PostgreSQL" in output and reason in output and "Traceback" not in output
    no_schema = urlunsplit(parts._replace(query="search_path=owp_no_such_schema"))
    code, output = await owp("migrate-db", "--from", f"sqlite:{tmp_path / 'pool.db'}", "--to", no_schema)
    assert code == 2 and "has no schema to create the pool's tables in" in output and "Traceback" not in output
