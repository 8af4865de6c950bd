"""App identity: the manifest flow, app JWT and installation tokens, and the initial sync of a repo."""

from __future__ import annotations

import contextlib
import html
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import yaml
from aiohttp.test_utils import TestServer

from owp_bot.clock import ManualClock
from owp_bot.config import Settings
from owp_bot.devtools.fake_github import FakeGitHub
from owp_bot.scheduler import github_operations as gh
from owp_bot.webhooks import setup
from owp_bot.webhooks.service import GITHUB
from tests.conftest import ADMIN_TOKEN, start_server
from tests.webhooks.conftest import APP_ID, INSTALLATION_ID, REPO, GitHubWorld

ROOT = Path(__file__).parents[2]
ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


@contextlib.asynccontextmanager
async def pool_with(settings: Settings) -> AsyncIterator[tuple[TestServer, aiohttp.ClientSession]]:
    """A pool of its own, for settings the shared fixture does not have (no app, no secret, …)."""
    server = await start_server(settings)
    try:
        async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as http:
            yield server, http
    finally:
        await server.close()


async def sync(http: aiohttp.ClientSession, repo: str) -> tuple[int, Any]:
    async with http.put(f"/v1/repos/{repo}", json={"max_open_prs": 2}, headers=ADMIN) as answer:
        assert answer.status == 201
    async with http.post(f"/v1/github/repos/{repo}/sync", headers=ADMIN) as answer:
        return answer.status, await answer.json()


def test_app_manifest_file_matches_what_setup_posts() -> None:
    document = yaml.safe_load((ROOT / "app-manifest.yml").read_text(encoding="utf-8"))
    posted = setup.manifest("https://pool.example.org")
    assert document["default_permissions"] == posted["default_permissions"] == setup.PERMISSIONS
    assert document["default_events"] == posted["default_events"]
    assert "repository" in posted["default_events"]  # renames and transfers (docs/github-app.md)
    assert document["hook_attributes"] == posted["hook_attributes"]
    assert document["redirect_url"] == posted["redirect_url"]


async def test_installation_tokens_are_cached_until_shortly_before_expiry(world: GitHubWorld) -> None:
    auth = world.pool.app[GITHUB].auth
    first = await auth.installation_token(INSTALLATION_ID)
    assert await auth.installation_token(INSTALLATION_ID) == first
    claims = jwt.decode(
        world.fake.calls_to("POST", "/access_tokens")[0].authorization.split()[1],
        options={"verify_signature": False},
    )
    assert claims["iss"] == str(APP_ID) and claims["exp"] - claims["iat"] <= 600
    world.pool.clock.advance(3600 - 301)  # GitHub's tokens last an hour; ours are replaced 5 minutes early
    assert await auth.installation_token(INSTALLATION_ID) == first
    world.pool.clock.advance(1)
    assert await auth.installation_token(INSTALLATION_ID) != first
    assert auth.token_requests == 2


async def test_initial_sync_imports_ready_issues_and_counts_open_prs(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    fake.pool_url = None  # GitHub state that exists before the app: no webhooks
    for n in range(1, 251):
        await fake.open_issue(REPO, f"Issue {n}", labels=["pool:ready", "points:2"] if n % 2 else ["bug"])
    await fake.open_pull(REPO, body="Closes #1", user="ann")
    await fake.open_pull(REPO, body="Unrelated", user="zed")
    report = await pool.call("POST", f"/v1/github/repos/{REPO}/sync", admin=True)
    assert (report["issues_seen"], report["created"], report["unchanged"]) == (125, 125, 0)
    assert (report["pulls_seen"], report["pulls_linked"], report["external_open_prs"]) == (2, 1, 1)
    assert report["installation_id"] == INSTALLATION_ID and report["permissions"]["issues"] == "write"
    assert report["webhook_url"].endswith("/webhooks/github") and report["ready_label"] == "pool:ready"
    issue_pages = [c for c in fake.calls_to("GET", f"/repos/{REPO}/issues") if c.query.get("labels")]
    assert len(issue_pages) == 2  # 125 issues, 100 per page
    tasks = await world.tasks(limit=1000)
    assert len(tasks) == 125 and all(t["estimate_points"] == 2 for t in tasks)
    assert (await world.task_of_issue(1))["status"] == "pr_opened"
    again = await pool.call("POST", f"/v1/github/repos/{REPO}/sync", admin=True)
    assert (again["created"], again["unchanged"]) == (0, 125)
    await pool.call("POST", "/v1/github/repos/nobody/here/sync", admin=True, expect=404)


async def test_sync_with_a_read_only_token_and_no_app(settings: Settings, fake_github: FakeGitHub) -> None:
    settings = settings.with_overrides(
        github_app_id=None, github_private_key=None, github_token="ghp_readonly"
    )
    fake_github.add_repo("acme/docs", installation_id=None)
    await fake_github.open_issue("acme/docs", "Read me", labels=["pool:ready"])
    async with pool_with(settings) as (_, http):
        status, report = await sync(http, "acme/docs")
    assert status == 200, report
    assert report["created"] == 1 and report["installation_id"] is None
    assert fake_github.calls_to("GET", "/issues")[0].authorization == "token ghp_readonly"


async def test_sync_rate_limited_answers_502_with_retry_after(world: GitHubWorld) -> None:
    world.fake.fail("GET", r"/issues$", 429, headers={"Retry-After": "90"})
    answer = await world.pool.http.post(f"/v1/github/repos/{REPO}/sync", headers=world.pool.admin)
    assert answer.status == 502 and answer.headers["Retry-After"] == "90"
    assert "rate limit" in (await answer.json())["detail"]


async def test_manifest_flow_creates_and_stores_the_app(settings: Settings, fake_github: FakeGitHub) -> None:
    settings = settings.with_overrides(
        github_app_id=None,
        github_private_key=None,
        github_webhook_secret=None,
        github_web_url="https://github.example",
    )
    async with pool_with(settings) as (server, http):
        async with http.get("/github/setup") as answer:
            assert answer.status == 200 and "Admin token" in await answer.text()
        async with http.post("/github/setup", data={"admin_token": "wrong"}) as answer:
            assert answer.status == 401
        async with http.post(
            "/github/setup", data={"admin_token": ADMIN_TOKEN, "organization": "acme"}
        ) as answer:
            page = await answer.text()
        action = html.unescape(re.search(r'action="([^"]+)"', page).group(1))  # type: ignore[union-attr]
        assert action.startswith("https://github.example/organizations/acme/settings/apps/new?state=")
        state = action.split("state=")[1]
        posted = json.loads(html.unescape(re.search(r'name=manifest value="([^"]+)"', page).group(1)))  # type: ignore[union-attr]
        assert posted["hook_attributes"]["url"] == f"{server.make_url('/webhooks/github')}"
        async with http.get("/webhooks/github") as answer:
            assert answer.status == 405
        async with http.post("/webhooks/github", data=b"{}", headers={"X-GitHub-Event": "ping"}) as answer:
            assert answer.status == 503  # no secret yet: no delivery can be verified
        async with http.get("/github/setup/callback", params={"code": "c0de", "state": "forged"}) as answer:
            assert answer.status == 403
        async with http.get("/github/setup/callback", params={"code": "c0de", "state": state}) as answer:
            page = await answer.text()
            assert answer.status == 200, page
        secret = fake_github.manifest_conversions["c0de"]["webhook_secret"]
        pem = fake_github.manifest_conversions["c0de"]["pem"]
        assert secret not in page and "PRIVATE KEY" not in page and "owp-pool" in page
        async with http.get("/github/setup/callback", params={"code": "c0de", "state": state}) as answer:
            assert answer.status == 403  # a state works once
        github = server.app[GITHUB]
        assert github.auth.credentials.source == "manifest" and github.auth.credentials.private_key == pem
        fake_github.connect(str(server.make_url("/")))
        pong = await fake_github.deliver(None, "ping", {"zen": "hi", "hook_id": 1})
        assert pong.status == 200  # signed with the secret GitHub just issued


async def test_unsigned_posts_read_the_stored_credentials_at_most_once_a_second(
    settings: Settings, fake_github: FakeGitHub, monkeypatch: Any
) -> None:
    """Without GITHUB_WEBHOOK_SECRET the secret is the one /github/setup stored, maybe on another replica, so a
    delivery that does not verify reads it again; a flood of unsigned POSTs (webhooks are not rate limited) must
    not turn into a flood of database reads."""
    settings = settings.with_overrides(github_app_id=None, github_private_key=None, github_webhook_secret=None)
    clock = ManualClock()
    reads = 0
    stored = gh.stored_credentials

    def counted() -> Any:
        nonlocal reads
        reads += 1
        return stored()

    server = await start_server(settings, clock)
    monkeypatch.setattr(gh, "stored_credentials", counted)
    try:
        async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as http:
            for _ in range(20):
                async with http.post("/webhooks/github", data=b"{}", headers={"X-GitHub-Event": "ping"}) as answer:
                    assert answer.status == 503  # no secret stored: nothing can be verified
            assert reads == 1
            clock.advance(1.5)
            async with http.post("/webhooks/github", data=b"{}", headers={"X-GitHub-Event": "ping"}) as answer:
                assert answer.status == 503
            assert reads == 2
    finally:
        await server.close()


async def test_setup_form_rejects_other_bodies(world: GitHubWorld) -> None:
    http = world.pool.http
    answer = await http.post("/github/setup", data=b"x", headers={"Content-Type": "multipart/form-data"})
    assert answer.status == 415 and answer.content_type == "application/problem+json"
    answer = await http.post("/github/setup", json={"admin_token": ADMIN_TOKEN})
    assert answer.status == 415


async def test_sync_without_credentials_says_what_to_set(settings: Settings, fake_github: FakeGitHub) -> None:
    settings = settings.with_overrides(github_app_id=None, github_private_key=None)
    async with pool_with(settings) as (_, http):
        status, problem = await sync(http, "acme/none")
        assert status == 409 and "GITHUB_TOKEN" in problem["detail"]
        async with http.post("/github/setup") as answer:  # no form at all: no admin token
            assert answer.status == 401


async def test_sync_of_a_repo_github_does_not_show(world: GitHubWorld) -> None:
    await world.pool.repo("acme/ghost", max_open_prs=1)
    problem = await world.pool.call("POST", "/v1/github/repos/acme/ghost/sync", admin=True, expect=404)
    assert "does not show acme/ghost" in problem["detail"]
