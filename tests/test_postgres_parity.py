"""Both backends define the same statements and the same migrations, and every PostgreSQL statement is
valid SQL against the migrated schema (prepared, so a typo fails here, not in production)."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import asyncpg
import pytest

from owp_bot.scheduler import postgres_store, sqlite_store
from owp_bot.scheduler.models import IN_FLIGHT
from owp_bot.scheduler.reputation import OUTCOME_EVENTS
from owp_bot.scheduler.store import Stmt, load_queries, migrations

SCHEDULER = Path(postgres_store.__file__).parent


def test_every_statement_exists_for_both_backends() -> None:
    sqlite, postgres = set(sqlite_store.QUERIES), set(postgres_store.QUERIES)
    assert sorted(sqlite - postgres) == [], "add these statements to owp_bot/scheduler/sql/postgres/"
    assert sorted(postgres - sqlite) == [], "these PostgreSQL statements have no SQLite twin"


def test_statement_files_match_one_to_one() -> None:
    sqlite = sorted(p.name for p in (SCHEDULER / "sql" / "sqlite").glob("*.sql"))
    postgres = sorted(p.name for p in (SCHEDULER / "sql" / "postgres").glob("*.sql"))
    assert postgres == sqlite
    for name in sqlite:
        assert set(load_queries_of(SCHEDULER / "sql" / "postgres" / name)) == set(
            load_queries_of(SCHEDULER / "sql" / "sqlite" / name)), f"{name}: statement names differ"


def load_queries_of(file: Path) -> list[str]:
    return re.findall(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", file.read_text(encoding="utf-8"), re.MULTILINE)


def test_every_migration_exists_for_both_backends() -> None:
    sqlite = [(v, n) for v, n, _ in migrations(SCHEDULER / "migrations" / "sqlite")]
    postgres = [(v, n) for v, n, _ in migrations(SCHEDULER / "migrations" / "postgres")]
    assert postgres == sqlite


def test_in_flight_triggers_count_the_in_flight_statuses() -> None:
    """Migration 007's triggers keep budgets and area locks: every status list in them is models.IN_FLIGHT."""
    expected = sorted(status.value for status in IN_FLIGHT)
    for backend in ("sqlite", "postgres"):
        sql = (SCHEDULER / "migrations" / backend / "007_in_flight_trigger.sql").read_text(encoding="utf-8")
        code = re.sub(r"--[^\n]*", "", sql)
        lists = re.findall(r"IN \(([^)]*)\)", code)
        assert len(lists) >= 3, backend
        for found in lists:
            assert sorted(re.findall(r"'([a-z_]+)'", found)) == expected, f"{backend}: ({found})"


def test_parameters_are_numbered_alike() -> None:
    """`?n` on SQLite and `$n` on PostgreSQL: the same highest parameter number in each statement."""
    sqlite = load_queries(SCHEDULER / "sql" / "sqlite")
    for name, sql in postgres_store.QUERIES.items():
        highest_pg = max((int(n) for n in re.findall(r"\$(\d+)", sql)), default=0)
        highest_sqlite = max((int(n) for n in re.findall(r"\?(\d+)", sqlite[name])), default=0)
        assert highest_pg == highest_sqlite, (
            f"{name}: ${highest_pg} on PostgreSQL, ?{highest_sqlite} on SQLite")


def sqlite_fingerprint(sql: str) -> str:
    """What a PostgreSQL twin records of the SQLite statement it was written from (comments and spacing aside)."""
    code = " ".join(re.sub(r"--[^\n]*", "", sql).split())
    return hashlib.sha256(code.encode()).hexdigest()[:12]


def test_postgres_twins_follow_their_sqlite_statements() -> None:
    """Each PostgreSQL statement starts `-- mirrors sqlite <fingerprint>`: when the SQLite statement changes,
    this fails until its twin is brought up to date (then refresh the fingerprint)."""
    sqlite = load_queries(SCHEDULER / "sql" / "sqlite")
    stale = []
    for name, sql in postgres_store.QUERIES.items():
        recorded = re.search(r"^-- mirrors sqlite ([0-9a-f]+)$", sql, re.MULTILINE)
        expected = sqlite_fingerprint(sqlite[name]) if name in sqlite else None
        if recorded is None or recorded.group(1) != expected:
            stale.append(f"{name}: {expected}")
    assert stale == [], "update these PostgreSQL statements to match SQLite, then their fingerprints"


async def test_every_postgres_statement_prepares(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        await postgres_store.migrate(conn)
        for name, sql in postgres_store.QUERIES.items():
            try:
                await conn.prepare(sql)
            except asyncpg.PostgresError as exc:
                raise AssertionError(f"{name}: {exc}") from exc
    finally:
        await conn.close()


async def test_only_the_outcome_trigger_reacts_to_events(postgres_url: str) -> None:
    """The store holds events back until a statement reads what inserting them changes (SEES_EVENTS: the log,
    its counter, the outcome counters; SEES_OUTCOMES: the workers, once an event of OUTCOME_EVENTS is held). That
    is right only while no other trigger reads or writes those, and the one on events fires for those types only."""
    conn = await asyncpg.connect(postgres_url)
    try:
        await postgres_store.migrate(conn)
        triggers = await conn.fetch(
            "SELECT c.relname AS on_table, t.tgname AS name, p.prosrc AS code, pg_get_triggerdef(t.oid) AS def "
            "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid "
            "WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace")
    finally:
        await conn.close()
    for trigger in triggers:
        code = re.sub(r"--[^\n]*", "", trigger["code"])
        written = set(re.findall(r"\b(?:INSERT INTO|(?<!DO )UPDATE|DELETE FROM)\s+([a-z_]+)", code, re.IGNORECASE))
        if trigger["on_table"] != "events":
            assert not re.search(r"\b(events|event_counter|worker_outcomes|worker_scores|workers)\b", code), (
                trigger["name"])
        elif written:
            assert written <= {"worker_outcomes", "workers"}, f"{trigger['name']} writes {written}: extend SEES_EVENTS"
            assert set(re.findall(r"'([a-z_.]+)'::text", trigger["def"])) == OUTCOME_EVENTS, trigger["def"]
    assert "rep_outcomes_get" in postgres_store.SEES_EVENTS and "task_get" not in postgres_store.SEES_EVENTS
    assert "worker_claimant" in postgres_store.SEES_OUTCOMES and "task_get" not in postgres_store.SEES_OUTCOMES
    assert "lease_next" in postgres_store.WRITES and "ready_window" not in postgres_store.WRITES


def test_a_named_statement_may_be_several_statements_on_sqlite() -> None:
    """Where PostgreSQL saves a round trip with a data-modifying WITH, SQLite runs the parts in order, each bound
    to the parameters it names (a comment ending in ';' splits nothing)."""
    assert sqlite_store.statements_of("INSERT INTO a VALUES (?1, ?2); -- first;\nUPDATE b SET c = ?2 RETURNING *") == [
        ("INSERT INTO a VALUES (?1, ?2)", 2, False), ("UPDATE b SET c = ?2 RETURNING *", 2, False)]


def test_a_later_statement_may_name_the_columns_an_earlier_one_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    """`:column` in a later part is what the earlier part returned (null when it returned no row), beside the
    operation's own `?n` (which SQLite would otherwise number after `:column`, binding `?2` to it)."""
    parts = sqlite_store.statements_of("SELECT ?2 * 10 AS tens WHERE ?1;\nSELECT :tens + ?2 AS total, ?3 AS third")
    assert parts[1] == ("SELECT :tens + :p2 AS total, :p3 AS third", 3, True)
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    monkeypatch.setitem(sqlite_store._STATEMENTS, "test_named", parts)
    found = sqlite_store._execute(conn, Stmt("test_named", (1, 4, "c"), "one"))
    assert dict(found) == {"tens": 40, "total": 44, "third": "c"}
    none = sqlite_store._execute(conn, Stmt("test_named", (0, 4, "c"), "one"))
    assert dict(none) == {"tens": None, "total": None, "third": "c"}


def test_the_compound_statements_are_one_on_postgresql() -> None:
    compound = {name for name, sql in sqlite_store.QUERIES.items() if len(sqlite_store.statements_of(sql)) > 1}
    assert compound == {"gh_lease_unvoid", "gh_lease_void", "gh_repo_name_seen", "gh_repo_rename", "lease_grant",
                        "lease_next", "offer_next", "pool_resume", "task_complete_lease", "task_report_held"}
    assert all(re.search(r"^WITH ", postgres_store.QUERIES[name], re.MULTILINE) for name in compound)
