"""YAML task import: idempotent by key, every rejected entry says why, nothing rejected silently."""

from __future__ import annotations

import itertools
import sqlite3
import subprocess
import sys
from pathlib import Path

import asyncpg

from owp_bot.config import Settings
from owp_bot.keys import SCHEDULER, SETTINGS
from owp_bot.scheduler import github_operations as gh
from owp_bot.scheduler.postgres_store import PostgresStore
from owp_bot.scheduler.service import NOW
from owp_bot.scheduler.sqlite_store import SQLiteStore
from owp_bot.scheduler.store import Store
from tests.conftest import ADMIN_TOKEN, Pool

DOCUMENT = """
repos:
  acme/api: {max_open_prs: 2}
defaults: {repo: acme/api, estimate_points: 2}
tasks:
  - {key: api-1, title: "Rate-limit /login", required_skills: [Python, security], area: Auth, priority: high}
  - {id: 2, title: "Paginate invoices"}
  - {key: api-3, title: ""}
  - {key: api-4, title: "Unknown field", colour: blue}
  - {key: api-1, title: "Same key again"}
  - {key: web-1, repo: acme/web, title: "Repo not in the pool"}
  - just a string
"""


async def import_yaml(pool: Pool, text: str, status: int = 200) -> dict:  # type: ignore[type-arg]
    return await pool.call("POST", "/v1/tasks/import", admin=True, expect=status, data=text.encode(),
                           headers={"Content-Type": "application/yaml"})


async def test_import_reports_every_entry(pool: Pool) -> None:
    report = await import_yaml(pool, DOCUMENT)
    assert (report["created"], report["updated"], report["unchanged"], report["rejected"]) == (2, 0, 0, 5)
    assert report["repos"] == ["acme/api"]
    outcomes = {e["index"]: (e["outcome"], e["errors"]) for e in report["entries"]}
    assert outcomes[0][0] == outcomes[1][0] == "created"
    assert "title" in outcomes[2][1][0]
    assert "colour" in outcomes[3][1][0]
    assert "already used by entry 0" in outcomes[4][1][0]
    assert "acme/web" in outcomes[5][1][0] and "PUT /v1/repos/acme/web" in outcomes[5][1][0]
    assert "mapping" in outcomes[6][1][0]
    created = (await pool.get_task(report["entries"][0]["task_id"]))
    assert (created["required_skills"], created["area"], created["priority"], created["key"]) == (
        ["python", "security"], "auth", "high", "api-1")


async def test_import_is_idempotent_and_updates_by_key(pool: Pool) -> None:
    first = await import_yaml(pool, DOCUMENT)
    again = await import_yaml(pool, DOCUMENT)
    assert (again["created"], again["unchanged"]) == (0, 2)
    assert [e["task_id"] for e in again["entries"][:2]] == [e["task_id"] for e in first["entries"][:2]]
    changed = await import_yaml(pool, DOCUMENT.replace("Paginate invoices", "Paginate all invoices"))
    assert (changed["updated"], changed["unchanged"]) == (1, 1)
    assert len((await pool.call("GET", "/v1/tasks"))["tasks"]) == 2


async def test_import_refuses_documents_it_cannot_read(pool: Pool) -> None:
    assert "not valid YAML" in (await import_yaml(pool, "tasks: [unclosed", 400))["detail"]
    assert "tasks:" in (await import_yaml(pool, "just words", 422))["detail"]
    assert "unknown top-level" in (await import_yaml(pool, "tasks: []\nextra: 1", 422))["detail"]
    wrong_type = await pool.call("POST", "/v1/tasks/import", admin=True, expect=415, json={"tasks": []})
    assert "application/yaml" in wrong_type["detail"]


def test_owp_import_writes_straight_into_a_database(tmp_path: Path) -> None:
    document = tmp_path / "tasks.yaml"
    document.write_text(DOCUMENT)
    result = subprocess.run(
        [sys.executable, "-m", "owp_bot", "import", str(document), "--db", str(tmp_path / "pool.db")],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "OWP_ADMIN_TOKEN": ADMIN_TOKEN}, check=False)
    assert result.returncode == 1, result.stderr  # some entries were rejected: say so in the exit code
    assert '"created": 2' in result.stdout and '"rejected": 5' in result.stdout


async def test_a_key_written_twice_is_refused_not_kept_last(pool: Pool) -> None:
    """YAML keys are unique: PyYAML would keep the last silently, and a second `tasks:` would drop the first's."""
    await pool.repo()
    twice = "tasks:\n  - {repo: acme/api, key: a, title: A}\ntasks:\n  - {repo: acme/api, key: b, title: B}\n"
    body = await import_yaml(pool, twice, 400)
    assert "'tasks' twice" in body["detail"] and "line 3" in body["detail"]
    body = await import_yaml(pool, "tasks:\n  - {repo: acme/api, title: A, title: B}\n", 400)
    assert "'title' twice" in body["detail"]
    assert (await pool.call("GET", "/v1/tasks"))["tasks"] == []
    merged = "tasks:\n  - <<: {repo: acme/api, title: default}\n    title: mine\n"  # a merge key may be overridden
    report = await import_yaml(pool, merged)
    assert report["created"] == 1 and (await pool.get_task(report["entries"][0]["task_id"]))["title"] == "mine"


async def test_import_refuses_a_repo_name_that_is_not_owner_name(pool: Pool) -> None:
    body = await import_yaml(pool, "repos:\n  not a repo: {max_open_prs: 3}\ntasks: []\n", 422)
    assert "repos.not a repo" in body["detail"] and "owner/name" in body["detail"]
    assert (await pool.call("GET", "/v1/repos"))["repos"] == []


_VIEWS = itertools.count(1_700_000_000)  # each view of an issue is newer than the last (GitHub's updated_at)


def _issue(number: int, title: str, state: str = "open") -> gh.IssueRef:
    return gh.IssueRef("acme/api", number, title, f"https://github.com/acme/api/issues/{number}", ("pool:ready",),
                       state, float(next(_VIEWS)))


async def _tasks(pool: Pool) -> set[tuple[str | None, int | None, str, str, str]]:
    return {(t["key"], t["issue_number"], t["source"], t["title"], t["status"])
            for t in (await pool.call("GET", "/v1/tasks", admin=True))["tasks"]}


async def test_an_imported_key_and_a_github_issue_of_that_number_are_two_tasks(pool: Pool) -> None:
    """Key `12` of a task file and issue #12 of the same repo never meet: neither overwrites the other, and what
    GitHub says about #12 (closed, `Closes #12`) concerns only the task made from the issue."""
    await pool.repo()
    settings, scheduler = pool.app[SETTINGS], pool.app[SCHEDULER]
    first = await import_yaml(pool, "tasks:\n  - {repo: acme/api, key: 12, title: Twelfth row of the sheet}\n")
    await scheduler.run(gh.issue_changed, _issue(12, "Issue twelve"), "github:test", settings, NOW)
    again = await import_yaml(pool, "tasks:\n  - {repo: acme/api, id: '12', title: Twelfth row renamed}\n")
    assert (first["created"], again["updated"]) == (1, 1)
    assert again["entries"][0]["task_id"] == first["entries"][0]["task_id"]
    assert await _tasks(pool) == {("12", None, "yaml", "Twelfth row renamed", "ready"),
                                  (None, 12, "github", "Issue twelve", "ready")}
    pull = gh.PullRef("acme/api", 40, "https://github.com/acme/api/pull/40", "ann", "Fix", "Closes #12", "fix",
                      "open", merged=False)
    linked = await scheduler.run(gh.linked_tasks, pull, write=False)
    assert [(t["source"], t["issue_number"]) for t in linked] == [("github", 12)]
    await scheduler.run(gh.issue_changed, _issue(12, "Issue twelve", "closed"), "github:test", settings, NOW)
    assert await _tasks(pool) == {("12", None, "yaml", "Twelfth row renamed", "ready"),
                                  (None, 12, "github", "Issue twelve", "cancelled")}


async def test_a_pool_whose_github_tasks_had_keys_keeps_them(pool: Pool, settings: Settings) -> None:
    """GitHub-made tasks were keyed by their issue number (and an import with that key overwrote them, even their
    issue number): the migration finds them by the issue again, with no key, so the key is free for an import."""
    await pool.repo()
    scheduler = pool.app[SCHEDULER]
    for number in (12, 13):
        await scheduler.run(gh.issue_changed, _issue(number, f"Issue {number}"), "github:test", settings, NOW)
    undo = ["DROP INDEX tasks_github_issue", "UPDATE tasks SET external_key = CAST(issue_number AS TEXT)",
               "UPDATE tasks SET issue_number = NULL WHERE issue_number = 13",  # what a colliding import did
               "DELETE FROM schema_migrations WHERE name = 'issue_tasks_unkeyed'"]
    if settings.database_url:
        conn = await asyncpg.connect(settings.database_url)
        try:
            for statement in undo:
                await conn.execute(statement)
        finally:
            await conn.close()
        store: Store = PostgresStore(settings.database_url)
    else:
        with sqlite3.connect(settings.db_path) as db:
            for statement in undo:
                db.execute(statement)
        store = SQLiteStore(settings.db_path)
    await store.open()
    await store.close()
    assert await _tasks(pool) == {(None, 12, "github", "Issue 12", "ready"), (None, 13, "github", "Issue 13", "ready")}
    await scheduler.run(gh.issue_changed, _issue(13, "Issue 13, edited"), "github:test", settings, NOW)
    report = await import_yaml(pool, "tasks:\n  - {repo: acme/api, key: 13, title: Row 13}\n")
    assert report["created"] == 1
    assert await _tasks(pool) == {(None, 12, "github", "Issue 12", "ready"),
                                  (None, 13, "github", "Issue 13, edited", "ready"),
                                  ("13", None, "yaml", "Row 13", "ready")}


async def test_a_keyed_task_github_had_taken_as_its_issues_stays_the_issues(pool: Pool, settings: Settings) -> None:
    """Before migration 018 GitHub found an issue's task by the key equal to its number, whatever made the task: an
    imported or POSTed task keyed `20` that says it is issue #20 (the issue's delivery had made it so, or its
    maintainer) was that issue's task. After the upgrade it still is: no second task for #20 appears beside it."""
    await pool.repo()
    scheduler = pool.app[SCHEDULER]
    await scheduler.run(gh.issue_changed, _issue(12, "Issue 12"), "github:test", settings, NOW)
    await import_yaml(pool, "tasks:\n  - {repo: acme/api, key: 20, title: Row 20}\n")
    await pool.call("POST", "/v1/tasks", admin=True, json={"repo": "acme/api", "key": "40", "title": "API 40",
                                                           "issue_number": 40}, expect=201)
    await import_yaml(pool, "tasks:\n  - {repo: acme/api, key: 60, title: Row 60}\n")  # never an issue's
    undo = ["DROP INDEX tasks_github_issue",
            "UPDATE tasks SET external_key = CAST(issue_number AS TEXT) WHERE source = 'github'",
            # what issue #20's delivery did to the task keyed 20 (put_task found it by the key)
            "UPDATE tasks SET title = 'Issue 20', issue_number = 20, url = 'https://github.com/acme/api/issues/20'"
            " WHERE external_key = '20'",
            "DELETE FROM schema_migrations WHERE name IN ('issue_tasks_unkeyed', 'keyed_issue_tasks')"]
    if settings.database_url:
        conn = await asyncpg.connect(settings.database_url)
        try:
            for statement in undo:
                await conn.execute(statement)
        finally:
            await conn.close()
        store: Store = PostgresStore(settings.database_url)
    else:
        with sqlite3.connect(settings.db_path) as db:
            for statement in undo:
                db.execute(statement)
        store = SQLiteStore(settings.db_path)
    await store.open()
    await store.close()
    for number in (20, 40):
        await scheduler.run(gh.issue_changed, _issue(number, f"Issue {number}, edited"), "github:test", settings,
                            NOW)
    assert await _tasks(pool) == {(None, 12, "github", "Issue 12", "ready"),
                                  (None, 20, "github", "Issue 20, edited", "ready"),
                                  (None, 40, "github", "Issue 40, edited", "ready"),
                                  ("60", None, "yaml", "Row 60", "ready")}


async def test_yaml_words_and_numbers_stay_as_written_where_the_field_is_text(pool: Pool) -> None:
    """YAML 1.1 (PyYAML's) reads `on`, `yes`, `no` as booleans and `1.10`, `0o17`, `017`, `1_000`, `0x1F`,
    `2024-05-01` as numbers or dates: a key, title, area or skill would change without a word. Text fields keep
    what the author wrote, as keys of a mapping too; number fields read numbers from it."""
    await pool.repo()
    document = """
defaults: {repo: acme/api}
tasks:
  - {key: on, title: yes, area: 1.10, required_skills: [no, 3.10]}
  - {key: 0o17, title: 017, area: 1_000, estimate_points: 3, priority: high}
  - {key: 0x1F, title: 2024-05-01, area: off, issue_number: 017}
  - {key: 1.10, title: ~version, estimate_points: 2.0}
  - {key: 1.1, title: .inf, area: 6.0e1}
"""
    report = await import_yaml(pool, document)
    assert (report["created"], report["rejected"]) == (5, 0), report
    assert [e["key"] for e in report["entries"]] == ["on", "0o17", "0x1F", "1.10", "1.1"]
    tasks = [await pool.get_task(e["task_id"]) for e in report["entries"]]
    assert [(t["key"], t["title"], t["area"], t["required_skills"], t["estimate_points"], t["issue_number"])
            for t in tasks] == [("on", "yes", "1.10", ["3.10", "no"], 1, None),
                                ("0o17", "017", "1_000", [], 3, None),
                                ("0x1F", "2024-05-01", "off", [], 1, 17),
                                ("1.10", "~version", None, [], 2, None),
                                ("1.1", ".inf", "6.0e1", [], 1, None)]
    keys_of_a_mapping = "repos:\n  acme/on: {max_open_prs: 2}\ntasks:\n  - {repo: acme/on, key: k, title: t, yes: 1}\n"
    assert (await import_yaml(pool, keys_of_a_mapping))["entries"][0]["errors"] == [
        "yes: Extra inputs are not permitted"]
    twice = "tasks:\n  - {repo: acme/api, title: A, on: 1, 'on': 2}\n"
    assert "'on' twice" in (await import_yaml(pool, twice, 400))["detail"]


async def test_a_value_of_the_wrong_type_is_refused_naming_its_field(pool: Pool) -> None:
    await pool.repo()
    document = """
tasks:
  - {repo: acme/api, key: a, title: true}
  - {repo: acme/api, key: true, title: B}
  - {repo: acme/api, key: c, title: C, estimate_points: 0o17}
  - {repo: acme/api, key: d, title: D, estimate_points: 2.5}
  - {repo: acme/api, key: e, title: E, estimate_points: yes}
  - {repo: acme/api, key: f, title: F, priority: yes}
"""
    report = await import_yaml(pool, document)
    assert report["rejected"] == 6
    errors = [e["errors"] for e in report["entries"]]
    assert errors[0] == ['title: true is a boolean, and title takes none; to mean the word, quote it: "true"']
    assert errors[1] == ['key: true is a boolean, and key takes none; to mean the word, quote it: "true"']
    assert [e[0].split(":")[0] for e in errors[2:]] == ["estimate_points"] * 3 + ["priority"]
    assert "valid integer" in errors[2][0] and "valid integer" in errors[3][0]
    body = await import_yaml(pool, "repos:\n  acme/api: {max_open_prs: 3, area_locks: yes}\ntasks: []\n", 422)
    assert body["detail"] == "repos.acme/api: area_locks: Input should be a valid boolean; write true or false"
    body = await import_yaml(pool, "repos:\n  acme/api: {max_open_prs: 1.10}\ntasks: []\n", 422)
    assert body["detail"].startswith("repos.acme/api: max_open_prs: ")
    assert "unknown top-level keys ['on']" in (await import_yaml(pool, "tasks: []\non: 1\n", 422))["detail"]
