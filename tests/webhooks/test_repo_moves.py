"""A pool repo renamed or transferred on GitHub: the pool follows it to its new name, with everything it holds."""

from __future__ import annotations

from owp_bot.keys import SCHEDULER, SETTINGS
from owp_bot.scheduler.analytics import sample_budgets
from owp_bot.webhooks.repository import former_name
from tests.webhooks.conftest import INSTALLATION_ID, REPO, GitHubWorld, example

NEW_NAME = "acme/service"


async def test_a_renamed_repo_keeps_its_work_and_gets_its_deliveries(world: GitHubWorld, backend: str) -> None:
    pool, fake = world.pool, world.fake
    await pool.repo(REPO, max_open_prs=2)
    number = await world.ready_issue("Split the router", "area:routing")
    task = await world.task_of_issue(number)
    _, token = await world.online_worker("ann")
    assert len((await pool.work(token))["leases"]) == 1
    await pool.app[SCHEDULER].run(lambda now: sample_budgets(now, pool.app[SETTINGS].insights_interval))
    await world.drain()

    delivered = await fake.rename_repo(REPO, "service")
    assert delivered is not None and delivered.status == 200, delivered.answer
    assert f"{REPO} renamed to {NEW_NAME}" in delivered.answer["detail"]

    await pool.call("GET", f"/v1/repos/{REPO}", expect=404)
    repo = await pool.call("GET", f"/v1/repos/{NEW_NAME}")
    assert repo["max_open_prs"] == 2 and repo["budget"]["in_flight"] == 1, repo
    moved = await pool.get_task(task["task_id"])
    assert (moved["repo"], moved["status"]) == (NEW_NAME, "leased")
    history = await pool.events(repo=NEW_NAME)
    assert {"task.created", "lease.granted", "repo.renamed"} <= {e["type"] for e in history}
    [renamed] = await pool.events(type="repo.renamed")
    assert renamed["details"] == {"previous_name": REPO, "change": "renamed"}
    assert renamed["actor"] == "github:maintainer"
    assert await pool.events(repo=REPO) == []
    analytics = (await pool.call("GET", f"/v1/analytics/repositories/{NEW_NAME}", admin=True))["metrics"]
    assert (analytics["leases_granted"], analytics["budget_samples"]) == (1, 1), analytics

    # the area lock and the budget still hold under the new name
    second = await world.ready_issue("Route by header", "area:routing", repo=NEW_NAME)
    _, bob = await world.online_worker("bob")
    assert (await pool.work(bob))["leases"] == []
    # GitHub's deliveries under the new name reach the task, and the bot writes to the new name
    pull = await fake.open_pull(NEW_NAME, body=f"Closes #{number}", user="ann")
    assert (await pool.get_task(task["task_id"]))["status"] == "pr_opened"
    await fake.merge_pull(NEW_NAME, pull.number)
    assert (await pool.get_task(task["task_id"]))["status"] == "merged"
    await world.drain()
    assert "Merged" in fake.bot_comments(NEW_NAME, number)[-1].body
    assert len((await pool.work(bob))["leases"]) == 1
    assert (await world.task_of_issue(second, repo=NEW_NAME))["status"] == "leased"


async def test_a_transferred_repo_follows_its_new_owner(world: GitHubWorld, backend: str) -> None:
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Document the limits")
    await world.online_worker("ann")
    delivered = await fake.transfer_repo(REPO, "octo-org")
    assert delivered is not None and delivered.status == 200, delivered.answer
    claimed = await fake.comment("octo-org/api", number, "/owp claim", author="ann")
    assert claimed is not None and claimed.status == 200, claimed.answer
    task = await world.task_of_issue(number, repo="octo-org/api")
    assert task["status"] == "leased"
    [renamed] = await pool.events(type="repo.renamed")
    assert renamed["details"] == {"previous_name": REPO, "change": "transferred"}
    await world.drain()
    assert any("is leased to you" in c.body for c in fake.bot_comments("octo-org/api", number))


async def test_a_rename_onto_another_pool_repo_fails_visibly(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    await pool.repo(NEW_NAME, max_open_prs=1)
    number = await world.ready_issue("Stays where it is")
    delivered = await fake.rename_repo(REPO, "Service")
    assert delivered is not None and delivered.status == 400, delivered.answer
    assert "already has a repo acme/service" in delivered.answer["detail"], delivered.answer
    assert (await world.task_of_issue(number))["repo"] == REPO
    assert await pool.events(type="repo.renamed") == []


async def test_a_rename_of_a_repo_outside_the_pool_is_ignored(world: GitHubWorld) -> None:
    fake = world.fake
    fake.add_repo("acme/elsewhere", INSTALLATION_ID)
    delivered = await fake.rename_repo("acme/elsewhere", "gone")
    assert delivered is not None and delivered.status == 202, delivered.answer
    assert "acme/elsewhere is not a pool repo" in delivered.answer["detail"]


def test_the_former_name_is_read_from_githubs_payloads() -> None:
    """GitHub's own examples: a rename says the old name; a transfer from a user says the old owner."""
    renamed, transferred = example("repository", "renamed"), example("repository", "transferred")
    assert (renamed["changes"]["repository"]["name"]["from"], renamed["repository"]["full_name"]) == (
        "Hello-World", "Octocoders/Hello-World")
    assert former_name(renamed) == "Octocoders/Hello-World"
    assert former_name(transferred) == "octocat/Hello-World"
    assert former_name(example("repository", "edited")) is None
    assert former_name({**transferred, "changes": {}}) is None
