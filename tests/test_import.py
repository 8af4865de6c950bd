"""YAML task import: idempotent by key, every rejected entry says why, nothing rejected silently."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
