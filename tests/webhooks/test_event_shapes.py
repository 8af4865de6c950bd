"""Event shapes GitHub really sends that move a task: issues deleted or transferred away, PRs reported by a
worker's API call, PRs edited to name another issue."""

from __future__ import annotations

import asyncio
import re
import sqlite3

from aiohttp import ClientSession

from owp_bot.clock import ManualClock
from owp_bot.config import Settings
from owp_bot.devtools import github_payloads as gp
from owp_bot.devtools.fake_github import FakeGitHub
from owp_bot.keys import SCHEDULER
from owp_bot.scheduler.analytics import prune_events
from owp_bot.scheduler.service import NOW
from owp_bot.scheduler.sqlite_store import SQLiteStore
from owp_bot.webhooks.service import GITHUB
from tests.conftest import ADMIN_TOKEN, start_server
from tests.webhooks.conftest import INSTALLATION_ID, REPO, GitHubWorld, example


def issue_gone(action: str, number: int, title: str) -> gp.Payload:
    """`issues.deleted` / `issues.transferred` as GitHub sends them: the issue as it was, still open and
    labelled (a transfer also says where it went, in `changes`)."""
    issue = gp.issue(REPO, number, title, labels=["pool:ready"], state="open")
    return gp.issues_event(action, issue, REPO, installation_id=INSTALLATION_ID, base=example("issues", action))


async def test_deleted_issue_leaves_the_pool(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Spam, deleted by a maintainer")
    task = await world.task_of_issue(number)
    del fake.repos[REPO].issues[number]
    delivered = await fake.deliver(None, "issues", issue_gone("deleted", number, "Spam, deleted by a maintainer"))
    assert delivered.status == 200, delivered.answer
    assert (await pool.get_task(task["task_id"]))["status"] == "cancelled"
    _, token = await world.online_worker("ann")
    assert (await pool.work(token))["leases"] == []  # nobody is sent to work on an issue that does not exist


async def test_transferred_issue_leaves_the_pool_of_its_old_repo(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Belongs in the docs repo")
    task = await world.task_of_issue(number)
    _, token = await world.online_worker("ann")
    await pool.work(token)
    assert (await pool.get_task(task["task_id"]))["status"] == "leased"
    delivered = await fake.deliver(None, "issues", issue_gone("transferred", number, "Belongs in the docs repo"))
    assert delivered.status == 200, delivered.answer
    assert (await pool.get_task(task["task_id"]))["status"] == "cancelled"
    repo = await pool.call("GET", f"/v1/repos/{REPO}")
    assert repo["budget"]["in_flight"] == 0  # the lease no longer holds the review budget


async def test_pr_reported_through_the_api_follows_its_merge(world: GitHubWorld) -> None:
    """A worker reports `pr_opened` with the PR's URL (protocol.md); its PR says neither `Closes #N` nor uses
    branch `owp/<task>`. GitHub's events for that PR are the task's: not an external PR, and its merge
    merges the task."""
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Reported by API")
    task = await world.task_of_issue(number)
    _, token = await world.online_worker("ann")
    await pool.work(token)
    pr_number = fake.repos[REPO].next_number
    pr_url = f"https://github.com/{REPO}/pull/{pr_number}"
    await pool.status(task["task_id"], "pr_opened", token=token, artifact={"pr_url": pr_url})
    pull = await fake.open_pull(REPO, body="Part of the README work", user="ann", head_ref="readme")
    assert pull.number == pr_number
    repo = await pool.call("GET", f"/v1/repos/{REPO}")
    assert repo["budget"]["in_flight"] == 1, repo["budget"]  # the task's PR, counted once
    await fake.merge_pull(REPO, pull.number)
    assert (await pool.get_task(task["task_id"]))["status"] == "merged"
    repo = await pool.call("GET", f"/v1/repos/{REPO}")
    assert repo["budget"]["in_flight"] == 0, repo["budget"]


async def test_pr_edited_to_name_another_issue_does_not_strand_the_first(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    first = await world.ready_issue("First")
    second = await world.ready_issue("Second")
    task_1, task_2 = await world.task_of_issue(first), await world.task_of_issue(second)
    pull = await fake.open_pull(REPO, body=f"Closes #{first}", user="zed")
    assert (await pool.get_task(task_1["task_id"]))["status"] == "pr_opened"
    await fake.edit_pull(REPO, pull.number, body=f"Closes #{second}")  # oops, it was the other one
    assert (await pool.get_task(task_2["task_id"]))["status"] == "pr_opened"
    await fake.close_pull(REPO, pull.number)
    assert (await pool.get_task(task_2["task_id"]))["status"] == "ready"
    assert (await pool.get_task(task_1["task_id"]))["status"] == "ready"  # back in the pool, not holding the budget
    repo = await pool.call("GET", f"/v1/repos/{REPO}")
    assert repo["budget"]["in_flight"] == 0, repo["budget"]


async def test_two_replicas_post_each_reply_once(
    settings: Settings, postgres_url: str, fake_github: FakeGitHub, clock: ManualClock
) -> None:
    """On PostgreSQL every replica runs the outbox worker, and every commit wakes them all (LISTEN): a job
    is made by one of them, not by each."""
    shared = settings.with_overrides(database_url=postgres_url)
    first, second = await start_server(shared, clock), await start_server(shared, clock)
    try:
        fake_github.connect(str(first.make_url("/")))
        fake_github.add_repo(REPO, INSTALLATION_ID)
        async with (
            ClientSession() as http,
            http.put(
                first.make_url(f"/v1/repos/{REPO}"),
                headers={"X-Admin-Token": ADMIN_TOKEN},
                json={"max_open_prs": 3},
            ) as answer,
        ):
            assert answer.status in (200, 201), await answer.text()
        item = await fake_github.open_issue(REPO, "Asked about")
        delivered = await fake_github.comment(REPO, item.number, "/owp status", author="ann")
        assert delivered is not None and delivered.status == 200, delivered.answer
        await asyncio.gather(first.app[GITHUB].outbox.run_due(), second.app[GITHUB].outbox.run_due())
        assert len(fake_github.bot_comments(REPO, item.number)) == 1
    finally:
        await first.close()
        await second.close()


async def test_an_app_created_on_one_replica_is_used_by_the_others(
    settings: Settings, postgres_url: str, fake_github: FakeGitHub, clock: ManualClock
) -> None:
    """The manifest flow's callback reaches one replica; GitHub's deliveries and the outbox work reach any."""
    shared = settings.with_overrides(
        database_url=postgres_url, github_app_id=None, github_private_key=None, github_webhook_secret=None
    )
    first, second = await start_server(shared, clock), await start_server(shared, clock)
    admin = {"X-Admin-Token": ADMIN_TOKEN}
    try:
        async with ClientSession() as http:
            async with http.post(first.make_url("/github/setup"), data={"admin_token": ADMIN_TOKEN}) as answer:
                page = await answer.text()
            state = re.search(r"state=([\w-]+)", page).group(1)  # type: ignore[union-attr]
            async with http.get(
                first.make_url("/github/setup/callback"), params={"code": "c0de", "state": state}
            ) as answer:
                assert answer.status == 200, await answer.text()
            async with http.put(
                second.make_url(f"/v1/repos/{REPO}"), headers=admin, json={"max_open_prs": 3}
            ) as answer:
                assert answer.status in (200, 201), await answer.text()
        fake_github.connect(str(second.make_url("/")))
        fake_github.add_repo(REPO, INSTALLATION_ID)
        item = await fake_github.open_issue(REPO, "Asked about")
        delivered = await fake_github.comment(REPO, item.number, "/owp status", author="ann")
        assert delivered is not None and delivered.status == 200, delivered.answer
        await second.app[GITHUB].outbox.run_due()
        assert [c.body for c in fake_github.bot_comments(REPO, item.number)] == ["@ann this issue is not in the pool."]
    finally:
        await first.close()
        await second.close()


async def test_a_repo_added_in_other_letter_case_gets_its_deliveries(world: GitHubWorld) -> None:
    """GitHub's names are case-insensitive: `PUT /v1/repos/Acme/Docs` and GitHub's `acme/docs` are one repo."""
    pool, fake = world.pool, world.fake
    fake.add_repo("acme/docs", INSTALLATION_ID)
    await pool.repo("Acme/Docs", max_open_prs=3)
    number = await world.ready_issue("Typo in the guide", repo="acme/docs")
    task = await world.task_of_issue(number, repo="Acme/Docs")
    assert task["status"] == "ready"
    pull = await fake.open_pull("acme/docs", body=f"Closes #{number}", user="zed")
    assert (await pool.get_task(task["task_id"]))["status"] == "pr_opened"
    await fake.merge_pull("acme/docs", pull.number)
    assert (await pool.get_task(task["task_id"]))["status"] == "merged"


async def test_a_dismissed_review_no_longer_counts(world: GitHubWorld, backend: str) -> None:
    """A maintainer who dismisses a review takes it back: its weight leaves the author's reputation, once."""
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Cache headers")
    worker_id, token = await world.online_worker("bob")
    await pool.work(token)
    pull = await fake.open_pull(REPO, body=f"Closes #{number}", user="bob")
    reviewed = await fake.review_pull(REPO, pull.number, "changes_requested")
    assert reviewed is not None
    review_id = reviewed.payload["review"]["id"]
    before = await pool.call("GET", f"/v1/workers/{worker_id}/reputation", admin=True)
    assert before["metrics"]["changes"] == 1
    delivered = await fake.dismiss_review(REPO, pull.number, review_id)
    assert delivered is not None and delivered.status == 200, delivered.answer
    again = await fake.dismiss_review(REPO, pull.number, review_id)  # GitHub sends each once; twice changes nothing
    assert again is not None and again.status == 202 and again.answer["outcome"] == "ignored", again.answer
    after = await pool.call("GET", f"/v1/workers/{worker_id}/reputation", admin=True)
    assert after["metrics"]["changes"] == 0 and after["reputation_score"] > before["reputation_score"]
    [dismissed] = await pool.events(type="review.dismissed")
    assert (dismissed["details"]["dismissed"], dismissed["details"]["worker_id"]) == ("changes_requested", worker_id)


async def test_a_review_dismissed_after_retention_pruned_its_event_is_taken_back(
    world: GitHubWorld, backend: str
) -> None:
    """OWP_EVENT_RETENTION removed the `review.approved` event; what the review counted for is kept apart."""
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Gzip the export")
    worker_id, token = await world.online_worker("bob")
    await pool.work(token)
    pull = await fake.open_pull(REPO, body=f"Closes #{number}", user="bob")
    reviewed = await fake.review_pull(REPO, pull.number, "approved")
    assert reviewed is not None
    review_id = reviewed.payload["review"]["id"]
    pool.clock.advance(31 * 86400)
    assert await pool.app[SCHEDULER].run(prune_events, NOW, 30 * 86400) > 0
    assert await pool.events(type="review.approved") == []
    before = await pool.call("GET", f"/v1/workers/{worker_id}/reputation", admin=True)
    assert before["metrics"]["approved"] == 1
    delivered = await fake.dismiss_review(REPO, pull.number, review_id)
    assert delivered is not None and delivered.status == 200, delivered.answer
    again = await fake.dismiss_review(REPO, pull.number, review_id)
    assert again is not None and again.answer["outcome"] == "ignored", again.answer
    after = await pool.call("GET", f"/v1/workers/{worker_id}/reputation", admin=True)
    assert after["metrics"]["approved"] == 0 and after["reputation_score"] < before["reputation_score"]
    [dismissed] = await pool.events(type="review.dismissed")
    assert (dismissed["details"]["dismissed"], dismissed["details"]["worker_id"]) == ("approved", worker_id)


async def test_migration_019_keeps_what_the_log_shows_reviews_counted(world: GitHubWorld, settings: Settings) -> None:
    """A pool upgraded from 018 knows its reviews from the log: an approval counted before can be dismissed, a
    change request dismissed before is not taken back twice."""
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Vary on Accept")
    worker_id, token = await world.online_worker("bob")
    await pool.work(token)
    pull = await fake.open_pull(REPO, body=f"Closes #{number}", user="bob")
    approval = await fake.review_pull(REPO, pull.number, "approved")
    change_request = await fake.review_pull(REPO, pull.number, "changes_requested")
    assert approval is not None and change_request is not None
    await fake.dismiss_review(REPO, pull.number, change_request.payload["review"]["id"])
    with sqlite3.connect(settings.db_path) as db:  # back to version 18
        db.executescript(
            "DROP TABLE gh_reviews; DROP TABLE gh_issue_seen; DELETE FROM schema_migrations WHERE version = 19;")
    store = SQLiteStore(settings.db_path)
    await store.open()
    await store.close()
    again = await fake.dismiss_review(REPO, pull.number, change_request.payload["review"]["id"])
    assert again is not None and again.answer["outcome"] == "ignored", again.answer
    dismissed = await fake.dismiss_review(REPO, pull.number, approval.payload["review"]["id"])
    assert dismissed is not None and dismissed.status == 200, dismissed.answer
    metrics = (await pool.call("GET", f"/v1/workers/{worker_id}/reputation", admin=True))["metrics"]
    assert (metrics["approved"], metrics["changes"]) == (0, 0)


async def test_a_review_of_a_tasks_old_pr_is_not_credited_to_its_new_holder(world: GitHubWorld) -> None:
    """Ann's PR was closed and the task went to Bob: a late review of Ann's PR is not Bob's work."""
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Retry budget")
    _, ann = await world.online_worker("ann")
    await pool.work(ann)
    pull = await fake.open_pull(REPO, body=f"Closes #{number}", user="ann")
    await fake.close_pull(REPO, pull.number)
    bob_id, bob = await world.online_worker("bob")
    assert len((await pool.work(bob))["leases"]) == 1
    await fake.review_pull(REPO, pull.number, "changes_requested")
    bobs = await pool.call("GET", f"/v1/workers/{bob_id}/reputation", admin=True)
    assert bobs["metrics"]["changes"] == 0
    [review] = await pool.events(type="review.changes_requested")
    assert "worker_id" not in review["details"]  # recorded, counted for nobody
