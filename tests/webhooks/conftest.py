"""The GitHub side of the tests, once: the fake GitHub on 127.0.0.1, real webhook payloads, the app key.

Payloads start from the published `@octokit/webhooks-examples` package (scripts/setup-webhook-fixtures.sh
installs it under tests/webhooks/fixtures/node_modules); builders overwrite only the fields a case needs.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from owp_bot.clock import ManualClock
from owp_bot.config import Settings
from owp_bot.devtools.fake_github import FakeGitHub
from owp_bot.webhooks.service import GITHUB
from tests.conftest import ADMIN_TOKEN, Pool, on_postgres, postgres_schema_url

EXAMPLES = (
    Path(__file__).parent / "fixtures/node_modules/@octokit/webhooks-examples/api.github.com/index.json"
)
WEBHOOK_SECRET = "test-webhook-secret-42"
APP_ID = 4242
INSTALLATION_ID = 77
REPO = "acme/api"


@cache
def _examples() -> dict[tuple[str, str | None], dict[str, Any]]:
    if not EXAMPLES.exists():
        raise RuntimeError(f"{EXAMPLES} is missing; run scripts/setup-webhook-fixtures.sh")
    found: dict[tuple[str, str | None], dict[str, Any]] = {}
    for entry in json.loads(EXAMPLES.read_text(encoding="utf-8")):
        for example in entry["examples"]:
            found.setdefault((entry["name"], example.get("action")), example)
            found.setdefault((entry["name"], "*"), example)
    return found


def example(event: str, action: str | None) -> dict[str, Any]:
    """A real payload GitHub sent for this event and action, or for another action of the event when the
    package has none for this one (the builders set `action`; they deep-copy what they use)."""
    examples = _examples()
    return examples.get((event, action)) or examples[(event, "*")]


@pytest.fixture(scope="session")
def app_private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
async def fake_github(clock: ManualClock, app_private_key: str) -> AsyncIterator[FakeGitHub]:
    async with FakeGitHub(
        webhook_secret=WEBHOOK_SECRET,
        app_id=APP_ID,
        app_private_key=app_private_key,
        clock=clock,
        examples=example,
        static_tokens=frozenset({"ghp_readonly"}),
    ) as fake:
        yield fake


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, fake_github: FakeGitHub, app_private_key: str
) -> Iterator[Settings]:
    """SQLite; a test that takes `backend` (the store is part of what it checks) runs on PostgreSQL too."""
    base = Settings(
        admin_token=ADMIN_TOKEN,
        db_path=tmp_path / "pool.db",
        sweep_interval=3600,
        heartbeat_flush_interval=3600,
        github_api_url=fake_github.url,
        github_app_id=APP_ID,
        github_private_key=app_private_key,
        github_webhook_secret=WEBHOOK_SECRET,
        github_outbox_poll=3600,
    )
    if "backend" not in request.fixturenames or not on_postgres(request.getfixturevalue("backend")):
        yield base
        return
    url, drop = postgres_schema_url()
    yield base.with_overrides(database_url=url)
    drop()


@dataclass
class GitHubWorld:
    """The pool and the fake GitHub, connected: the fake's helpers deliver webhooks to the pool."""

    pool: Pool
    fake: FakeGitHub

    async def drain(self) -> int:
        """Make the due GitHub calls now (the outbox worker would, on its next wake-up)."""
        return await self.pool.app[GITHUB].outbox.run_due()

    async def tasks(self, **query: Any) -> list[Any]:
        return list((await self.pool.call("GET", "/v1/tasks", admin=True, params=query))["tasks"])

    async def task_of_issue(self, number: int, repo: str = REPO) -> Any:
        found = [t for t in await self.tasks(repo=repo) if t["issue_number"] == number]
        assert len(found) == 1, found
        return found[0]

    async def ready_issue(self, title: str = "Fix the README", *labels: str, repo: str = REPO) -> int:
        item = await self.fake.open_issue(repo, title)
        delivered = await self.fake.label_issue(repo, item.number, *labels, "pool:ready")
        assert delivered is not None and delivered.status == 200, delivered
        return item.number

    async def online_worker(
        self, handle: str, skills: list[str] | None = None, **fields: Any
    ) -> tuple[str, str]:
        worker_id, token = await self.pool.worker(handle, skills=skills, github_handle=handle, **fields)
        await self.pool.heartbeat(token)
        return worker_id, token


@pytest.fixture
async def world(pool: Pool, fake_github: FakeGitHub) -> GitHubWorld:
    fake_github.connect(str(pool.http.make_url("/")))
    fake_github.add_repo(REPO, INSTALLATION_ID)
    await pool.repo(REPO, max_open_prs=3)
    return GitHubWorld(pool, fake_github)
