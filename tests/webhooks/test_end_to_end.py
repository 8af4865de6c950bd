"""A labelled issue travels the whole way: task → lease → PR → merged, with the bot's write-back on GitHub."""

from __future__ import annotations

from owp_bot.webhooks.service import GITHUB
from tests.webhooks.conftest import REPO, GitHubWorld


async def test_label_to_merge(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    opened = await fake.open_issue(REPO, "Fix the README")
    assert fake.deliveries[-1].status == 202  # not labelled yet: nothing to do
    assert fake.deliveries[-1].answer["outcome"] == "ignored"

    delivered = await fake.label_issue(
        REPO, opened.number, "skills:Python,docs", "points:2", "area:Docs", "priority:high", "pool:ready"
    )
    assert delivered is not None and delivered.status == 200, delivered.answer
    task = await world.task_of_issue(opened.number)
    assert (task["key"], task["source"], task["status"]) == (None, "github", "ready")  # keys are the maintainer's
    assert (task["required_skills"], task["estimate_points"], task["area"], task["priority"]) == (
        ["docs", "python"],
        2,
        "docs",
        "high",
    )
    assert task["url"] == f"https://github.com/{REPO}/issues/{opened.number}"
    await world.drain()
    assert fake.bot_comments(REPO, opened.number) == []  # a ready task needs no comment yet

    worker_id, token = await world.online_worker("ann", ["python", "docs"])
    work = await pool.work(token)
    assert [lease["task_id"] for lease in work["leases"]] == [task["task_id"]]

    await world.drain()
    issue = fake.issue(REPO, opened.number)
    assert "pool:leased" in issue.labels
    [status] = fake.bot_comments(REPO, opened.number)
    assert "Leased" in status.body and "@ann" in status.body

    pull = await fake.open_pull(
        REPO, body=f"This fixes the typo.\n\nCloses #{opened.number}", user="ann", head_ref="fix-readme"
    )
    assert fake.deliveries[-1].status == 200, fake.deliveries[-1].answer
    task = await pool.get_task(task["task_id"])
    assert task["status"] == "pr_opened"
    assert task["pr_url"] == f"https://github.com/{REPO}/pull/{pull.number}"
    assert task["worker_id"] == worker_id
    await world.drain()
    assert "pool:pr-open" in issue.labels and "pool:leased" not in issue.labels
    [status] = fake.bot_comments(REPO, opened.number)  # the same comment, edited
    assert "PR open" in status.body and f"#{pull.number}" in status.body

    await fake.merge_pull(REPO, pull.number)
    assert fake.deliveries[-1].status == 200, fake.deliveries[-1].answer
    task = await pool.get_task(task["task_id"])
    assert task["status"] == "merged"
    await world.drain()
    assert not {"pool:pr-open", "pool:leased"} & set(issue.labels)
    [status] = fake.bot_comments(REPO, opened.number)
    assert "Merged" in status.body and "@ann" in status.body
    assert len(fake.calls_to("PATCH", "/issues/comments/")) == 2
    # one installation token served every call of the hour
    assert pool.app[GITHUB].auth.token_requests == 1
    assert len(fake.calls_to("POST", "/access_tokens")) == 1
    types = [e["type"] for e in await pool.events(target=task["task_id"])]
    assert types[:1] == ["task.created"] and "task.pr_opened" in types and types[-1] == "task.merged"


async def test_branch_name_links_and_closed_unmerged_requeues(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Rate limiter")
    task = await world.task_of_issue(number)
    worker_id, token = await world.online_worker("bob")
    await pool.work(token)
    await world.drain()  # the issue says it is leased (the status comment the end of the test looks at)
    pull = await fake.open_pull(REPO, body="no reference here", user="bob", head_ref=f"owp/{task['task_id']}")
    assert (await pool.get_task(task["task_id"]))["status"] == "pr_opened"

    await fake.review_pull(REPO, pull.number, "changes_requested")
    [review] = await pool.events(type="review.changes_requested")  # counted by reputation
    assert review["details"]["state"] == "changes_requested" and review["details"]["worker_id"] == worker_id
    reputation = await pool.call("GET", f"/v1/workers/{worker_id}/reputation", admin=True)
    assert reputation["metrics"]["changes"] == 1

    await fake.close_pull(REPO, pull.number)
    task = await pool.get_task(task["task_id"])
    assert task["status"] == "ready"
    [closed] = await pool.events(type="github.pr_closed")
    assert closed["details"]["worker_id"] == worker_id
    await world.drain()
    issue = fake.issue(REPO, number)
    assert not {"pool:pr-open", "pool:leased"} & set(issue.labels)
    [status] = fake.bot_comments(REPO, number)
    assert "Open for the pool" in status.body


async def test_pr_from_someone_else_is_linked_and_everyone_told(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Docs typo")
    task = await world.task_of_issue(number)
    _, token = await world.online_worker("ann")
    await pool.work(token)
    await fake.open_pull(REPO, body=f"Fixes {REPO}#{number}", user="zed")
    assert (await pool.get_task(task["task_id"]))["status"] == "pr_opened"
    await world.drain()
    notes = [c.body for c in fake.bot_comments(REPO, number)]
    assert any("@zed opened" in n and "leased to @ann" in n for n in notes), notes


async def test_external_prs_count_against_the_review_budget(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    await fake.open_pull(REPO, body="An unrelated change", user="zed")
    await fake.open_pull(REPO, body="Closes other/repo#1", user="zed")
    repo = await pool.call("GET", f"/v1/repos/{REPO}")
    assert repo["budget"]["open_prs"] == 2 and repo["budget"]["in_flight"] == 2
    first = fake.deliveries[0].payload["pull_request"]["number"]
    await fake.close_pull(REPO, first)
    repo = await pool.call("GET", f"/v1/repos/{REPO}")
    assert repo["budget"]["open_prs"] == 1


async def test_issue_lifecycle_updates_cancels_and_revives_the_task(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Old title", "size:L", "trust:trusted")
    task = await world.task_of_issue(number)
    assert (task["estimate_points"], task["min_trust"]) == (5, "trusted")

    await fake.edit_issue(REPO, number, title="New title")
    assert (await pool.get_task(task["task_id"]))["title"] == "New title"

    await fake.unlabel_issue(REPO, number, "pool:ready")
    assert (await pool.get_task(task["task_id"]))["status"] == "cancelled"
    await fake.label_issue(REPO, number, "pool:ready")
    assert (await pool.get_task(task["task_id"]))["status"] == "ready"

    await fake.close_issue(REPO, number)
    assert (await pool.get_task(task["task_id"]))["status"] == "cancelled"
    await fake.reopen_issue(REPO, number)
    assert (await pool.get_task(task["task_id"]))["status"] == "ready"


async def test_closing_the_issue_keeps_a_task_with_an_open_pr(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Keep me")
    task = await world.task_of_issue(number)
    _, token = await world.online_worker("ann")
    await pool.work(token)
    await fake.open_pull(REPO, body=f"Closes #{number}", user="ann")
    await fake.close_issue(REPO, number)
    assert (await pool.get_task(task["task_id"]))["status"] == "pr_opened"


async def test_per_repo_ready_label(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    answer = await pool.call(
        "PUT", f"/v1/github/repos/{REPO}", admin=True, json={"ready_label": "help wanted"}
    )
    assert answer["ready_label"] == "help wanted"
    item = await fake.open_issue(REPO, "Custom label")
    await fake.label_issue(REPO, item.number, "pool:ready")
    assert await world.tasks() == []
    await fake.label_issue(REPO, item.number, "help wanted")
    assert (await world.task_of_issue(item.number))["status"] == "ready"


async def test_lease_expiry_puts_the_issue_back_and_says_so(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Ghosted")
    _, token = await world.online_worker("ann")
    await pool.work(token)
    await world.drain()
    assert "pool:leased" in fake.issue(REPO, number).labels
    pool.clock.advance(4 * 3600 + 1)  # past the lease TTL; the outbox's own transaction lapses it
    await world.drain()
    assert (await world.task_of_issue(number))["status"] == "ready"
    assert "pool:leased" not in fake.issue(REPO, number).labels
    [status] = fake.bot_comments(REPO, number)
    assert "Open for the pool" in status.body
