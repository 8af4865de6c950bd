"""The dashboard in real Chromium against a real server: live updates without reload, resuming after the
stream drops, filters, admin edits, audit export, the private mode; screenshots at desktop and phone width."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Route, expect

from owp_bot.app import create_app
from owp_bot.config import Settings
from owp_bot.keys import SETTINGS
from owp_bot.web.stream import close_streams
from tests.browser.conftest import ADMIN_TOKEN, DESKTOP, PHONE, Dashboard
from tests.conftest import Pool

pytestmark = pytest.mark.asyncio(loop_scope="session")  # the tests share one Chromium, started once


async def feed_seqs(dash: Dashboard) -> list[int]:
    return [int(s) for s in await dash.page.get_by_test_id("feed").locator("li").evaluate_all(
        "items => items.map(i => i.dataset.seq)")]


async def test_overview_updates_live_as_work_happens(dashboard: Dashboard) -> None:
    pool, page = dashboard.pool, dashboard.page
    await dashboard.open("/")
    await expect(page.get_by_test_id("connection")).to_have_text("live")
    await expect(page.get_by_text("no workers yet")).to_be_visible()
    await expect(page.get_by_text("no activity yet")).to_be_visible()

    await pool.repo("acme/api", max_open_prs=3)
    await pool.repo("acme/web", max_open_prs=2)
    task_id = await pool.task("Rate-limit /login", required_skills=["python"], area="auth")
    await pool.task("Dark mode", repo="acme/web", required_skills=["css"])
    _, token = await pool.worker("ann", skills=["python"])
    offer = (await pool.offers(token))["offers"][0]
    await pool.accept(token, offer["offer_id"])

    feed = page.get_by_test_id("feed")
    await expect(feed.locator("li[data-type='lease.granted']")).to_have_count(1)
    await expect(page.get_by_test_id("workers-online").locator(".stat-value")).to_have_text("1")
    await expect(page.get_by_test_id("tasks-leased").locator(".stat-value")).to_have_text("1")
    await expect(page.get_by_test_id("budget-acme/api").get_by_test_id("budget-count")).to_have_text("1/3")
    await pool.heartbeat(token, "working")
    await expect(page.get_by_test_id("workers-working").locator(".stat-value")).to_have_text("1")
    await pool.status(task_id, "in_progress", token=token)
    await expect(feed.locator("li[data-type='task.in_progress']")).to_have_count(1)
    assert sorted(await feed_seqs(dashboard)) == [e["seq"] for e in await pool.events()]
    await dashboard.at_width(DESKTOP, "overview-desktop")
    await dashboard.at_width(PHONE, "overview-phone")


async def test_stream_resumes_after_a_drop_with_nothing_missed(dashboard: Dashboard) -> None:
    pool, page = dashboard.pool, dashboard.page
    await pool.repo("acme/api", max_open_prs=3)
    await dashboard.open("/")
    await expect(page.get_by_test_id("connection")).to_have_text("live")
    await expect(page.get_by_test_id("feed").locator("li")).to_have_count(1)

    await close_streams(dashboard.app)  # the connection drops; the page notices and reconnects
    await expect(page.get_by_test_id("connection")).to_have_text("reconnecting…")
    task_id = await pool.task("Happens while the page is disconnected")
    _, token = await pool.worker("bob")
    offer = (await pool.offers(token))["offers"][0]
    await pool.reject(token, offer["offer_id"])
    await expect(page.get_by_test_id("connection")).to_have_text("live")
    await pool.repo("acme/web")  # live again
    await expect(page.get_by_test_id("feed").locator("li[data-type='repo.created']")).to_have_count(2)

    logged = [e["seq"] for e in await pool.events()]
    seqs = await feed_seqs(dashboard)
    assert seqs == sorted(seqs, reverse=True)  # newest first, each once
    assert sorted(seqs) == logged
    assert (await pool.get_task(task_id))["status"] == "ready"


async def test_after_a_restart_on_a_new_database_the_page_follows_the_new_log(dashboard: Dashboard,
                                                                           browser_settings: Settings,
                                                                           tmp_path: Path) -> None:
    """A fresh `owp demo` (or a restored backup) numbers its events from 1 again: the open page must drop
    what it showed of the old pool and show the new one live, not skip every event up to its old id."""
    pool, page = dashboard.pool, dashboard.page
    await pool.repo("acme/api", max_open_prs=3)
    for title in ("one", "two", "three"):
        await pool.task(title)
    await dashboard.open("/")
    feed = page.get_by_test_id("feed").locator("li")
    await expect(page.get_by_test_id("connection")).to_have_text("live")
    await expect(feed).to_have_count(4)

    port = dashboard.server.port
    await dashboard.server.close()
    await expect(page.get_by_test_id("connection")).to_have_text("reconnecting…")
    fresh = TestServer(create_app(browser_settings.with_overrides(db_path=tmp_path / "fresh.db")),
                       host="127.0.0.1", port=port)
    client: TestClient[Any, Any] = TestClient(fresh)
    await client.start_server()
    pool = Pool(client, None)  # type: ignore[arg-type]
    try:
        await expect(page.get_by_test_id("connection")).to_have_text("live")
        await pool.repo("acme/web", max_open_prs=2)  # seq 1 of the new log
        await expect(page.get_by_test_id("budget-acme/web")).to_be_visible()
        await expect(page.get_by_test_id("budget-acme/api")).to_have_count(0)
        await expect(feed).to_have_count(1)
        await expect(feed.first).to_have_attribute("data-seq", "1")
        await pool.task("four", repo="acme/web")
        await expect(feed).to_have_count(2)
        await expect(page.get_by_test_id("task-stats")).to_contain_text("1")
    finally:
        await client.close()


async def test_a_rotated_admin_token_signs_the_page_out(dashboard: Dashboard, browser_settings: Settings) -> None:
    """The server restarts with a new OWP_ADMIN_TOKEN: the page, which finds out from its event stream, must
    show it is no longer signed in (and offer to sign in again), not keep an admin badge and admin buttons."""
    pool, page = dashboard.pool, dashboard.page
    await pool.repo("acme/api", max_open_prs=3)
    await dashboard.open("/dashboard/repos")
    await dashboard.sign_in()
    await expect(page.locator("button[data-edit='acme/api']")).to_have_count(1)

    port = dashboard.server.port
    await dashboard.server.close()
    await expect(page.get_by_test_id("connection")).to_have_text("reconnecting…")
    rotated = TestServer(create_app(browser_settings.with_overrides(admin_token="a-new-admin-token-after-rotation")),
                         host="127.0.0.1", port=port)
    await rotated.start_server()
    try:
        await expect(page.get_by_test_id("connection")).to_have_text("live")
        await expect(page.get_by_test_id("signin")).to_be_visible()
        await expect(page.get_by_test_id("admin-badge")).to_have_count(0)
        await expect(page.locator("button[data-edit]")).to_have_count(0)
        await expect(page.get_by_text("Sign in with the admin token to change budgets.")).to_be_visible()
        await expect(page.get_by_test_id("budget-acme/api")).to_be_visible()
    finally:
        await rotated.close()


async def test_a_change_while_the_lists_load_is_shown_after_that_load(dashboard: Dashboard) -> None:
    """The lists reload after each event. A read still under way when the next change comes (a big pool's pages
    take a while) ends first, then the reload the event asked for: two reads at once could land the older last."""
    pool, page = dashboard.pool, dashboard.page
    await pool.repo("acme/api", max_open_prs=3)
    task_id = await pool.task("Listed before the change")
    reads: list[str] = []
    first_answered, release = asyncio.Event(), asyncio.Event()

    async def first_read_arrives_late(route: Route) -> None:
        reads.append(route.request.url)
        answer = await route.fetch()  # the pool as it is now, before the change
        if len(reads) == 1:
            first_answered.set()
            await release.wait()
        await route.fulfill(response=answer)

    await page.route("**/v1/tasks?*", first_read_arrives_late)
    await dashboard.open("/")
    await expect(page.get_by_test_id("connection")).to_have_text("live")
    await first_answered.wait()
    await pool.status(task_id, "cancelled", admin=True)
    await expect(page.get_by_test_id("feed").locator("li[data-type='task.cancelled']")).to_have_count(1)
    await page.wait_for_timeout(1200)  # past the refresh throttle (1 s): the event's reload is due
    assert len(reads) == 1  # it waits for the read under way
    release.set()
    await expect(page.get_by_test_id("tasks-cancelled").locator(".stat-value")).to_have_text("1")
    await expect(page.get_by_test_id("tasks-ready")).to_have_count(0)
    assert len(reads) == 2


async def test_tasks_filter_search_and_history(dashboard: Dashboard) -> None:
    pool, page = dashboard.pool, dashboard.page
    await pool.repo("acme/api", max_open_prs=3)
    await pool.repo("acme/web", max_open_prs=3)
    login = await pool.task("Rate-limit /login", required_skills=["python"], area="auth")
    await pool.task("Session cookies", required_skills=["python"], area="auth")
    await pool.task("Dark mode", repo="acme/web", required_skills=["css"], area="ui")
    await pool.task("Typo in README", repo="acme/web")
    _, token = await pool.worker("ann", skills=["python"])
    await pool.accept(token, (await pool.offers(token))["offers"][0]["offer_id"])

    await dashboard.open("/dashboard/tasks")
    count = page.get_by_test_id("task-count")
    await expect(count).to_have_text("4 of 4 tasks")
    await page.get_by_label("Repository").select_option("acme/web")
    await expect(count).to_have_text("2 of 4 tasks")
    await page.get_by_label("Area").fill("ui")
    await expect(page.get_by_test_id("tasks-table").locator("tbody tr")).to_have_count(1)
    await expect(page.get_by_test_id("tasks-table")).to_contain_text("Dark mode")
    assert "repo=acme%2Fweb" in page.url and "area=ui" in page.url
    await page.get_by_label("Repository").select_option("")
    await page.get_by_label("Area").fill("")
    await page.get_by_label("Skill").fill("python")
    await page.get_by_label("Status").select_option("leased")
    await expect(count).to_have_text("1 of 4 tasks")
    await page.get_by_label("Status").select_option("")
    await page.get_by_label("Search").fill("cookies")
    await expect(count).to_have_text("1 of 4 tasks")
    await page.get_by_label("Search").fill("nothing like this")
    await expect(page.get_by_text("no task matches these filters")).to_be_visible()
    await page.get_by_label("Search").fill("")
    await page.get_by_label("Skill").fill("")

    await page.locator(f"a[data-task='{login}']").click()
    history = page.get_by_test_id("task-history")
    await expect(history.locator("li")).to_have_count(4)  # created, offered, accepted, leased
    await pool.status(login, "in_progress", token=token)  # the open task's history follows live
    await expect(history.locator("li").first).to_have_attribute("data-type", "task.in_progress")
    await expect(page.get_by_role("button", name="Requeue")).to_have_count(0)  # read-only without the token
    await dashboard.at_width(DESKTOP, "tasks-desktop")
    await dashboard.at_width(PHONE, "tasks-phone")

    await page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
    await dashboard.sign_in()  # the open task stays open (it is in the URL) and gains the admin actions
    await page.get_by_test_id("task-detail").get_by_role("button", name="Requeue").click()
    await expect(history.locator("li").first).to_have_attribute("data-type", "task.ready")
    await page.get_by_test_id("task-detail").get_by_role("button", name="Cancel task").click()
    await expect(page.get_by_test_id("task-detail").locator(".badge").first).to_have_text("cancelled")
    assert (await pool.get_task(login))["status"] == "cancelled"


async def test_admin_edits_a_repo_budget_without_the_token_in_any_url(dashboard: Dashboard) -> None:
    pool, page = dashboard.pool, dashboard.page
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    await pool.repo("acme/api", max_open_prs=3)
    await dashboard.open("/dashboard/repos")
    await expect(page.get_by_text("Sign in with the admin token to change budgets.")).to_be_visible()
    await expect(page.locator("button[data-edit]")).to_have_count(0)

    await page.get_by_label("Admin token").fill("not-the-admin-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_text("that is not the admin token")).to_be_visible()
    await dashboard.sign_in()
    await page.locator("button[data-edit='acme/api']").click()
    form = page.get_by_test_id("edit-acme/api")
    await form.get_by_label("Review budget (max open PRs)").fill("5")
    await form.get_by_label("Lease TTL").fill("2h")
    await form.get_by_role("button", name="Save").click()
    await expect(page.get_by_test_id("budget-acme/api").get_by_test_id("budget-count")).to_have_text("0/5")
    repo = await pool.call("GET", "/v1/repos/acme/api")
    assert (repo["max_open_prs"], repo["lease_ttl_seconds"]) == (5, 7200)

    add = page.get_by_test_id("add-repo")
    await add.get_by_label("Repository").fill("acme/docs")
    await add.get_by_label("Review budget (max open PRs)").fill("1")
    await add.get_by_role("button", name="Add repository").click()
    await expect(page.get_by_test_id("budget-acme/docs")).to_be_visible()
    await dashboard.at_width(DESKTOP, "repos-admin-desktop")
    await dashboard.at_width(PHONE, "repos-admin-phone")
    assert urls and not [u for u in urls if ADMIN_TOKEN in u]
    assert await page.evaluate("sessionStorage.getItem('owp.adminToken')") == ADMIN_TOKEN


async def test_audit_log_pages_filters_and_exports(dashboard: Dashboard) -> None:
    pool, page = dashboard.pool, dashboard.page
    for i in range(60):
        await pool.repo(f"acme/r{i:02d}")
    await dashboard.open("/dashboard/audit")
    await expect(page.get_by_text("The audit log needs the admin token")).to_be_visible()
    await dashboard.sign_in()
    await page.get_by_role("link", name="Tasks").click()
    await page.get_by_role("link", name="Audit log").click()
    rows = page.get_by_test_id("audit-table").locator("tbody tr")
    await expect(rows).to_have_count(50)
    await page.get_by_role("button", name="Next →").click()
    await expect(rows).to_have_count(10)
    await expect(rows.first.locator("td").first).to_have_text("51")
    await page.get_by_label("Target").fill("acme/r07")
    await page.get_by_role("button", name="Apply").click()
    await expect(rows).to_have_count(1)

    async with page.expect_download() as csv_download:
        await page.get_by_role("button", name="Export CSV").click()
    csv_file = await (await csv_download.value).path()
    assert re.match(r"owp-audit-[\d-]+\.csv", (await csv_download.value).suggested_filename)
    assert "acme/r07" in csv_file.read_text()
    async with page.expect_download() as jsonl_download:
        await page.get_by_role("button", name="Export JSONL").click()
    lines = (await (await jsonl_download.value).path()).read_text().splitlines()
    assert len(lines) == 1 and '"acme/r07"' in lines[0]
    await dashboard.at_width(DESKTOP, "audit-desktop")


async def test_private_pool_shows_nothing_until_the_admin_signs_in(private_dashboard: Dashboard) -> None:
    dash = private_dashboard
    await dash.pool.repo("acme/secret")
    await dash.open("/")
    await expect(dash.page.get_by_test_id("private")).to_be_visible()
    await expect(dash.page.get_by_test_id("connection")).to_have_text("private pool")
    await expect(dash.page.get_by_text("acme/secret")).to_have_count(0)
    await dash.sign_in()
    await expect(dash.page.get_by_test_id("budget-acme/secret")).to_be_visible()
    await expect(dash.page.get_by_test_id("connection")).to_have_text("live")
    await expect(dash.page.get_by_test_id("feed").locator("li[data-type='repo.created']")).to_have_count(1)


async def test_every_page_renders_its_states_at_phone_width(dashboard: Dashboard) -> None:
    pool, page = dashboard.pool, dashboard.page
    await pool.repo("acme/api", max_open_prs=2)
    _, token = await pool.worker("ann", skills=["python", "sql"], github_handle="ann-dev")
    for title in ("Rate-limit /login", "Session cookies"):  # a merged PR and a closed one, for the charts
        task_id = await pool.task(title, required_skills=["python"])
        await pool.accept(token, (await pool.offers(token))["offers"][0]["offer_id"])
        await pool.status(task_id, "pr_opened", token=token,
                          artifact={"pr_url": f"https://github.com/acme/api/pull/{len(title)}"})
        await pool.status(task_id, "merged" if title.startswith("Rate") else "ready", admin=True)
    await dashboard.open("/")
    await dashboard.sign_in()
    for name, marker in (("workers", "workers-table"), ("analytics", "analytics-summary"),
                         ("system", "health")):
        await page.get_by_role("link", name=name.capitalize()).click()
        await expect(page.get_by_test_id(marker)).to_be_visible()
        await expect(page.locator("[data-state=loading]")).to_have_count(0)
        await dashboard.at_width(DESKTOP, f"{name}-desktop")
        await dashboard.at_width(PHONE, f"{name}-phone")
        await page.set_viewport_size(DESKTOP)  # type: ignore[arg-type]
    await expect(page.get_by_test_id("health")).to_contain_text("ready")
    await page.get_by_role("link", name="Analytics").click()
    await expect(page.get_by_test_id("analytics-summary")).to_contain_text("tasks completed")
    await expect(page.locator("canvas[aria-label=throughput]")).to_be_visible()


async def test_analytics_opened_directly_offers_every_repository(dashboard: Dashboard) -> None:
    """Opened by its URL (a reload, a bookmark), the page mounts before the repos have loaded: its repository
    filter must still fill in once they do."""
    pool, page = dashboard.pool, dashboard.page
    await pool.repo("acme/api")
    await pool.repo("acme/web")
    await dashboard.open("/dashboard/analytics")
    await expect(page.get_by_test_id("analytics-summary")).to_be_visible()
    repo = page.get_by_label("Repository")
    await expect(repo.locator("option")).to_have_count(3)
    await repo.select_option("acme/web")
    await expect(page.get_by_test_id("analytics-summary").get_by_role("heading", level=2)).to_contain_text("acme/web")


async def test_admin_sets_a_workers_trust_tier_and_sees_its_reputation(dashboard: Dashboard) -> None:
    pool, page = dashboard.pool, dashboard.page
    worker_id, _ = await pool.worker("ann", skills=["python"])
    await dashboard.open("/dashboard/workers")
    await dashboard.sign_in()
    await page.locator(f"a[data-worker='{worker_id}']").click()
    await expect(page.get_by_test_id("reputation")).to_contain_text("/ 100")
    form = page.get_by_test_id("trust-form")
    await form.get_by_label("Trust tier").select_option("trusted")
    await form.get_by_label("Reason").fill("five merged PRs in acme/api")
    await form.get_by_role("button", name="Set tier").click()
    await expect(page.get_by_test_id("workers-table").locator("tbody tr").first).to_contain_text("trusted")
    assert (await pool.call("GET", f"/v1/workers/{worker_id}"))["trust_tier"] == "trusted"
    await dashboard.at_width(PHONE, "worker-detail-phone")


async def deliver_malformed(dashboard: Dashboard, delivery_id: str) -> None:
    """A signed `issues` delivery the pool cannot apply: it is recorded as failed."""
    secret = dashboard.app[SETTINGS].github_webhook_secret
    assert secret
    body = json.dumps({"action": "labeled", "issue": {"number": "not a number"}}).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    await dashboard.pool.call("POST", "/webhooks/github", data=body, expect=400, headers={
        "X-GitHub-Event": "issues", "X-GitHub-Delivery": delivery_id, "X-Hub-Signature-256": signature,
        "Content-Type": "application/json"})


async def test_a_failed_webhook_delivery_is_listed_and_retried(dashboard: Dashboard) -> None:
    pool, page = dashboard.pool, dashboard.page
    await deliver_malformed(dashboard, "d-0001")
    await dashboard.open("/dashboard/system")
    await expect(page.get_by_text("Sign in with the admin token to see webhook deliveries.")).to_be_visible()
    await dashboard.sign_in()
    await page.get_by_role("link", name="System").click()
    deliveries = page.get_by_test_id("deliveries-table")
    await expect(deliveries.locator("tbody tr")).to_have_count(1)
    await expect(deliveries).to_contain_text("issues.labeled")
    await page.locator("button[data-retry='d-0001']").click()
    await expect(page.get_by_test_id("deliveries")).to_contain_text("retry of d-0001 failed")  # malformed
    await expect(deliveries.locator("tbody tr td").nth(3)).to_have_text("2")
    attempts = (await pool.call("GET", "/v1/github/deliveries", admin=True))["deliveries"][0]["attempts"]
    assert attempts == 2
    await dashboard.at_width(DESKTOP, "system-deliveries-desktop")


async def test_failed_deliveries_past_the_first_page_are_shown_on_request(dashboard: Dashboard) -> None:
    """The card shows the newest 100 failed deliveries and reads older ones a page at a time on request; a retry
    reloads as many as were shown."""
    pool, page = dashboard.pool, dashboard.page
    for n in range(103):
        await deliver_malformed(dashboard, f"d-{n:04d}")
    newest_first: list[str] = []
    cursor = ""
    while True:
        listed = await pool.call("GET", "/v1/github/deliveries", admin=True,
                                 params={"outcome": "failed", "limit": 40, "cursor": cursor})
        newest_first += [d["delivery_id"] for d in listed["deliveries"]]
        if listed["next_cursor"] is None:
            break
        cursor = listed["next_cursor"]
    assert sorted(newest_first) == [f"d-{n:04d}" for n in range(103)]

    await dashboard.open("/dashboard/system")
    await dashboard.sign_in()
    await page.get_by_role("link", name="System").click()
    rows = page.get_by_test_id("deliveries-table").locator("tbody tr")
    await expect(rows).to_have_count(100)
    await expect(page.get_by_test_id("deliveries-count")).to_have_text("100 shown; older ones follow")
    shown = lambda: rows.locator("td:first-child").all_inner_texts()  # noqa: E731
    assert await shown() == newest_first[:100]

    await page.get_by_test_id("deliveries-more").click()
    await expect(rows).to_have_count(103)
    await expect(page.get_by_test_id("deliveries-count")).to_have_text("103 shown")
    await expect(page.get_by_test_id("deliveries-more")).to_have_count(0)
    assert await shown() == newest_first

    oldest = newest_first[-1]
    await page.locator(f"button[data-retry='{oldest}']").click()
    await expect(page.get_by_test_id("deliveries")).to_contain_text(f"retry of {oldest} failed")
    await expect(rows).to_have_count(103)
    assert await shown() == newest_first
