"""Statements that a webhook or a worker's request runs find their rows by index on SQLite, whatever the planner's
statistics say (`PRAGMA optimize` runs ANALYZE when the store closes, on whatever the pool then holds)."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path

from owp_bot.clock import ManualClock
from owp_bot.config import Settings
from owp_bot.events import EventHub
from owp_bot.scheduler.models import IN_FLIGHT, LEASED
from owp_bot.scheduler.service import Scheduler
from owp_bot.scheduler.sqlite_store import QUERIES, SQLiteStore, statements_of


async def test_a_worker_is_found_by_its_handle_when_most_have_none(tmp_path: Path) -> None:
    """Pull request and review webhooks look their author up by GitHub handle. With most workers registered
    without one, ANALYZE records the handle index as one value for every row, and SQLite scanned every worker."""
    path = tmp_path / "pool.db"
    store = SQLiteStore(path)
    await store.open()
    try:
        scheduler = Scheduler(store, Settings(admin_token="x"), ManualClock(), EventHub())
        await scheduler.register("first", None, ["python"], 5, 1)
    finally:
        await store.close()
    with closing(sqlite3.connect(path)) as db:
        columns = ", ".join(row[1] for row in db.execute("PRAGMA table_info(workers)"))
        copied = columns.replace("token_hash", "id || '-' || n").replace("id,", "id || '-' || n,", 1)
        db.execute(f"WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 999) "
                   f"INSERT INTO workers ({columns}) SELECT {copied} FROM workers CROSS JOIN c")
        db.commit()
        db.execute("ANALYZE")
        assert db.execute("SELECT stat FROM sqlite_stat1 WHERE idx = 'workers_handle'").fetchone()[0] == "1000 1000"
        plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + QUERIES["worker_by_handle"], ["octocat"])]
        assert any("INDEX workers_handle" in step for step in plan), plan


async def test_what_every_lease_runs_builds_no_list_of_values(tmp_path: Path) -> None:
    """SQLite builds a temporary b-tree for an IN list of three or more values each time it evaluates one (a page
    allocated and zeroed), and for a RETURNING clause: the triggers' conditions, which run on every status change
    and every event, the event insert and the read that begins a holder's report, which run on every lease, build
    none (migration 030). They cost a lease 19% of its instructions (bench/RESULTS.md, seventeenth session). The
    report's UPDATEs still build one each, for their RETURNING: a statement more to read the row back cost more."""
    path = tmp_path / "pool.db"
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    with closing(sqlite3.connect(path)) as db:
        triggers = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
        assert {"tasks_into_flight", "tasks_out_of_flight", "events_count_outcomes"} <= set(triggers)
        for name, sql in triggers.items():
            condition = sql.split("WHEN", 1)[1].split("BEGIN", 1)[0] if " WHEN " in sql.split("BEGIN")[0] else ""
            assert not re.search(r"\bIN\s*\(\s*'[^']*'\s*,\s*'[^']*'\s*,", condition), (name, condition)
        for name in ("event_insert", "task_report_held"):
            first, arity, _ = statements_of(QUERIES[name])[0]
            program = [row[1] for row in db.execute("EXPLAIN " + first, [0] * arity)]
            assert "OpenEphemeral" not in program, name


async def test_the_sets_the_sql_spells_out_are_the_models(tmp_path: Path) -> None:
    """The statuses the in-flight triggers and a holder's report ask for by instr() are models.IN_FLIGHT and
    models.LEASED."""
    path = tmp_path / "pool.db"
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    with closing(sqlite3.connect(path)) as db:
        triggers = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))

    def sets(sql: str) -> set[frozenset[str]]:
        return {frozenset(found.strip("|").split("|")) for found in re.findall(r"instr\('(\|[a-z_|]+\|)'", sql)}

    in_flight = frozenset(status.value for status in IN_FLIGHT)
    assert sets(triggers["tasks_into_flight"]) == sets(triggers["tasks_out_of_flight"]) == {in_flight}
    assert sets(QUERIES["task_report_held"]) == {frozenset(status.value for status in LEASED)}
