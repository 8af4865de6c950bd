"""A pool repo renamed or transferred on GitHub: the pool follows it to its new name, with everything it holds."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest

from owp_bot.config import Settings
from owp_bot.devtools import github_payloads as gp
from owp_bot.devtools.fake_github import Delivered, FakeRepo
from owp_bot.keys import SCHEDULER, SETTINGS
from owp_bot.scheduler import github_operations as gh
from owp_bot.scheduler.analytics import sample_budgets
from owp_bot.scheduler.postgres_store import PostgresStore
from owp_bot.scheduler.service import NOW
from owp_bot.scheduler.sqlite_store import SQLiteStore
from owp_bot.scheduler.store import Store
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
    await pool.app[SCHEDULER].run(sample_budgets, NOW, pool.app[SETTINGS].insights_interval)
    await world.drain()

    delivered = await fake.rename_repo(REPO, "service")
    assert delivered is not None and delivered.status == 200, delivered.answer
    assert f"{REPO} renamed to {NEW_NAME}" in delivered.answer["detail"]

    await pool.call("GET", f"/v1/repos/{REPO}", expect=404)
    listed = (await pool.call("GET", "/v1/github/deliveries", admin=True))["deliveries"]
    assert {d["repo"] for d in listed} == {NEW_NAME}, listed  # the deliveries before the rename and the rename's own
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


async def held(world: GitHubWorld, *changes: str) -> list[tuple[str, gp.Payload]]:
    """Make changes on GitHub whose deliveries have not reached the pool yet (GitHub sends them late)."""
    fake, url = world.fake, world.fake.pool_url
    fake.pool_url = None
    for change in changes:
        if change == "rename":
            await fake.rename_repo(REPO, "service")
        else:  # a title edit of issue `change`, under the repo's name at the time
            number = int(change)
            await fake.edit_issue(next(r for r in fake.repos.values() if number in r.issues).full_name, number,
                                  title="Split the router, gently")
    fake.pool_url = url
    late, fake.held = fake.held, []
    return late


async def deliver(world: GitHubWorld, late: tuple[str, gp.Payload]) -> Delivered:
    return await world.fake.deliver(None, *late)


@pytest.mark.parametrize("order", ["rename first", "new name first"])
async def test_a_delivery_under_the_new_name_may_come_before_the_rename(
    world: GitHubWorld, backend: str, order: str
) -> None:
    """GitHub does not deliver in order: a change made right after a rename may arrive under the new name before the
    `repository` event. Its repository id is the pool repo's, so it is applied to that repo, and as the pool cannot
    tell a new name from one the repo had before the pool knew it, GitHub is asked for the repo's name (by its id):
    the pool follows the rename then, and the `repository` delivery finds nothing to do. Either way nothing is lost."""
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Split the router")
    task = await world.task_of_issue(number)
    _, token = await world.online_worker("ann")
    assert len((await pool.work(token))["leases"]) == 1
    [rename] = await held(world, "rename")
    if order == "rename first":
        assert (await deliver(world, rename)).status == 200
    pull = await fake.open_pull(NEW_NAME, body=f"Closes #{number}", user="ann")
    opened = fake.deliveries[-1]
    assert opened.status == 200, opened.answer
    if order == "new name first":
        assert (f"{NEW_NAME} is a name the pool has not seen for {REPO} (repository id {fake.repos[NEW_NAME].id}): "
                f"applied to {REPO}; GitHub is asked which name the repo has now") in opened.answer["detail"], opened
        assert (await pool.get_task(task["task_id"]))["status"] == "pr_opened"
        await world.drain()
        assert [c.path for c in fake.calls_to("GET", "/repositories/")] == [f"/repositories/{fake.repos[NEW_NAME].id}"]
        late = await deliver(world, rename)
        assert (late.status, late.answer["outcome"]) == (202, "ignored"), late.answer
        assert late.answer["detail"] == "nothing to do for repository.renamed"
        again = await fake.deliver(None, "repository", rename[1], delivery_id=late.delivery_id)
        assert again.answer["outcome"] == "duplicate", again.answer
    await fake.merge_pull(NEW_NAME, pull.number)
    merged = await pool.get_task(task["task_id"])
    assert (merged["repo"], merged["status"]) == (NEW_NAME, "merged")
    second = await world.ready_issue("Route by header", repo=NEW_NAME)
    assert (await world.task_of_issue(second, repo=NEW_NAME))["status"] == "ready"
    await pool.call("GET", f"/v1/repos/{REPO}", expect=404)
    await pool.call("GET", f"/v1/repos/{NEW_NAME}")
    [renamed] = await pool.events(type="repo.renamed")
    assert renamed["details"] == {"previous_name": REPO, "change": "renamed"}
    assert renamed["actor"] == ("github:maintainer" if order == "rename first" else "github:repository-id")
    assert await pool.events(repo=REPO) == []
    await world.drain()
    assert "Merged" in fake.bot_comments(NEW_NAME, number)[-1].body


@pytest.mark.parametrize("order", ["rename first", "new name first"])
async def test_a_late_delivery_under_the_former_name_reaches_the_repo(
    world: GitHubWorld, backend: str, order: str
) -> None:
    """A change made before the rename, delivered after the pool followed it: its repository id finds the repo under
    its new name; the pool does not rename it back, and the delivery is not ignored."""
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Split the router")
    task = await world.task_of_issue(number)
    edit, rename = await held(world, str(number), "rename")
    if order == "rename first":
        assert (await deliver(world, rename)).status == 200
    else:
        assert (await world.fake.open_issue(NEW_NAME, "Follows the rename")).number == number + 1
        followed = fake.deliveries[-1]  # opened without the ready label: only the name to ask GitHub about
        assert followed.status == 200 and "GitHub is asked" in followed.answer["detail"], followed.answer
        await world.drain()
        assert (await deliver(world, rename)).status == 202
    late = await deliver(world, edit)
    assert late.payload["repository"]["full_name"] == REPO
    assert late.status == 200 and f"issue #{number} -> task {task['task_id']} updated" in late.answer["detail"]
    moved = await pool.get_task(task["task_id"])
    assert (moved["repo"], moved["title"]) == (NEW_NAME, "Split the router, gently")
    assert len(await pool.events(type="repo.renamed")) == 1
    await pool.call("GET", f"/v1/repos/{REPO}", expect=404)
    [listed] = [d for d in (await pool.call("GET", "/v1/github/deliveries", admin=True))["deliveries"]
                if d["delivery_id"] == late.delivery_id]
    assert listed["repo"] == NEW_NAME


@pytest.mark.parametrize("known", ["by name only", "synced", "installed"])
async def test_a_repo_is_known_by_its_id_once_github_showed_it(world: GitHubWorld, backend: str, known: str) -> None:
    """A repo added with PUT /v1/repos has no repository id until GitHub shows one (a delivery, the sync, the
    installation): until then it goes by its name, and a delivery under its new name waits for the rename; after,
    such a delivery is applied, and GitHub's answer to the pool's question (the repo's name, by its id) renames it."""
    pool, fake = world.pool, world.fake
    fake.pool_url, url = None, fake.pool_url
    fake.add_repo("acme/docs", INSTALLATION_ID)
    number = (await fake.open_issue("acme/docs", "Explain budgets", labels=["pool:ready"])).number
    await fake.rename_repo("acme/docs", "handbook")
    fake.pool_url, fake.held = url, []
    await pool.repo("acme/docs", max_open_prs=1)
    if known == "synced":
        fake.repos["acme/docs"] = fake.repos["acme/handbook"]  # GitHub answered to the old name when it synced
        assert (await pool.call("POST", "/v1/github/repos/acme/docs/sync", admin=True))["created"] == 1
        del fake.repos["acme/docs"]
    elif known == "installed":
        fake.repos["acme/docs"] = fake.repos.pop("acme/handbook")
        installed = await fake.install(INSTALLATION_ID, "acme", ["acme/docs"])
        assert installed is not None and installed.status == 200, installed
        fake.repos["acme/handbook"] = fake.repos.pop("acme/docs")
    labelled = await fake.label_issue("acme/handbook", number, "area:docs")
    assert labelled is not None
    if known == "by name only":
        assert labelled.status == 202 and "acme/handbook is not a pool repo" in labelled.answer["detail"]
        await pool.call("GET", "/v1/repos/acme/docs")
        renamed = gp.repository_event("renamed", "acme/handbook", {"repository": {"name": {"from": "docs"}}},
                                      installation_id=INSTALLATION_ID, base=example("repository", "renamed"))
        renamed["repository"]["id"] = fake.repos["acme/handbook"].id
        assert (await fake.deliver(None, "repository", renamed)).status == 200
        labelled = await fake.label_issue("acme/handbook", number, "skills:writing")
    assert labelled is not None and labelled.status == 200, labelled.answer
    await world.drain()
    await pool.call("GET", "/v1/repos/acme/docs", expect=404)
    [task] = await world.tasks(repo="acme/handbook")
    assert task["issue_number"] == number and task["status"] == "ready"


async def test_an_upgraded_pool_knows_its_repos_ids_from_the_deliveries_it_applied(
    world: GitHubWorld, settings: Settings, backend: str
) -> None:
    """Migration 021 reads the repository ids of the deliveries applied before it: no delivery has to come first."""
    fake = world.fake
    number = await world.ready_issue("Split the router")
    undo = ["DROP TABLE gh_repo_names", "DELETE FROM schema_migrations WHERE name = 'repository_ids'"]
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
    await held(world, "rename")
    labelled = await fake.label_issue(NEW_NAME, number, "area:routing")
    assert labelled is not None and labelled.status == 200, labelled.answer
    await world.drain()
    assert (await world.task_of_issue(number, repo=NEW_NAME))["area"] == "routing"


async def test_a_new_repo_under_a_former_name_is_not_renamed_for_the_old_one(world: GitHubWorld, backend: str) -> None:
    """acme/api was renamed acme/service, and a new acme/api (a new repository id) joined the pool. When acme/service
    is renamed again and a delivery under its newest name comes first, the pool follows acme/service (once GitHub
    says the name), not the new repo that now holds the name the old id once went by."""
    pool, fake = world.pool, world.fake
    first = await world.ready_issue("Split the router")
    old_id = fake.repos[REPO].id
    assert (await fake.rename_repo(REPO, "service")) is not None
    fake.repos[REPO] = FakeRepo(REPO, INSTALLATION_ID, id=old_id + 1)
    await pool.repo(REPO, max_open_prs=1)
    fresh = await world.ready_issue("A fresh start")
    fake.pool_url, url = None, fake.pool_url
    await fake.rename_repo(NEW_NAME, "platform")
    fake.pool_url = url
    await fake.open_issue("acme/platform", "Follows the second rename")
    followed = fake.deliveries[-1]
    assert followed.status == 200, followed.answer
    assert f"applied to {NEW_NAME}; GitHub is asked" in followed.answer["detail"], followed.answer
    await world.drain()
    [renamed] = await pool.events(type="repo.renamed", target="acme/platform")
    assert renamed["details"] == {"previous_name": NEW_NAME, "change": "renamed"}
    assert (await world.task_of_issue(first, repo="acme/platform"))["title"] == "Split the router"
    assert (await world.task_of_issue(fresh, repo=REPO))["title"] == "A fresh start"
    await pool.call("GET", f"/v1/repos/{NEW_NAME}", expect=404)


async def test_a_reported_pr_checked_while_the_repo_is_renamed_is_checked_under_the_new_name(
    world: GitHubWorld, backend: str
) -> None:
    """The outbox asked GitHub for a worker's reported PR under the repo's name, and the repo was renamed before the
    answer came (GitHub answers the old name with a redirect). The answer is not dropped: the PR is read again under
    the new name, and the report is confirmed or voided as ever (here someone else's PR: voided)."""
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Split the router")
    task = await world.task_of_issue(number)
    worker_id, token = await world.online_worker("mallory")
    assert len((await pool.work(token))["leases"]) == 1
    pull = await fake.open_pull(REPO, title="Big refactor", body="Refactors the parser", user="maintainer")
    artifact = {"pr_url": f"https://github.com/{REPO}/pull/{pull.number}"}
    await pool.status(task["task_id"], "pr_opened", token=token, artifact=artifact)
    fake.meanwhile("GET", rf"^/repos/{REPO}/pulls/{pull.number}$", lambda: fake.rename_repo(REPO, "service"))
    await world.drain()
    await world.drain()
    assert [c.path for c in fake.calls_to("GET", "/pulls/")] == [
        f"/repos/{REPO}/pulls/{pull.number}", *[f"/repos/{NEW_NAME}/pulls/{pull.number}"] * 2]
    checked = await pool.get_task(task["task_id"])
    assert (checked["repo"], checked["status"]) == (NEW_NAME, "ready"), checked
    [voided] = await pool.events(type="lease.voided")
    assert (voided["repo"], voided["details"]["reason"], voided["details"]["worker_id"]) == (
        NEW_NAME, "not_theirs", worker_id), voided


@pytest.mark.parametrize("seen", ["new repo seen", "new repo not seen yet"])
async def test_a_late_delivery_under_a_former_name_is_not_for_the_new_repo_under_that_name(
    world: GitHubWorld, backend: str, seen: str
) -> None:
    """acme/api was renamed acme/service, and a new acme/api (another repository id) joined the pool. A change made
    on the old repo before the rename, delivered late under acme/api, is for acme/service, the pool repo of its id;
    the new acme/api, whose issue #1 is another issue, keeps its own and gets every delivery of its id."""
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Split the router")
    task = await world.task_of_issue(number)
    old_id = fake.repos[REPO].id
    edit, rename = await held(world, str(number), "rename")
    assert (await deliver(world, rename)).status == 200
    fake.repos[REPO] = FakeRepo(REPO, INSTALLATION_ID, id=old_id + 1)
    await pool.repo(REPO, max_open_prs=1)
    if seen == "new repo seen":
        assert await world.ready_issue("A fresh start") == number
    late = await deliver(world, edit)
    assert late.payload["repository"] == {**late.payload["repository"], "full_name": REPO, "id": old_id}
    assert late.status == 200 and f"issue #{number} -> task {task['task_id']} updated" in late.answer["detail"], late
    moved = await pool.get_task(task["task_id"])
    assert (moved["repo"], moved["title"]) == (NEW_NAME, "Split the router, gently")
    if seen == "new repo not seen yet":
        assert await world.tasks(repo=REPO) == []
        assert await world.ready_issue("A fresh start") == number
    assert (await world.task_of_issue(number, repo=REPO))["title"] == "A fresh start"
    assert len(await pool.events(type="repo.renamed")) == 1


async def test_a_late_delivery_under_a_name_the_pool_never_saw_does_not_rename_the_repo_back(
    world: GitHubWorld, backend: str
) -> None:
    """acme/docs was renamed acme/handbook before it joined the pool as acme/handbook. A change made before the rename,
    delivered late under acme/docs, carries the repo's id and a name the pool never saw for it, which may be a former
    name or a new one: the pool applies it to acme/handbook and asks GitHub which name is current (by the id), and
    GitHub says acme/handbook: the repo keeps its name."""
    pool, fake = world.pool, world.fake
    fake.pool_url, url = None, fake.pool_url
    docs = fake.add_repo("acme/docs", INSTALLATION_ID)
    number = (await fake.open_issue("acme/docs", "Explain budgets", labels=["pool:ready"])).number
    await fake.edit_issue("acme/docs", number, title="Explain review budgets")
    await fake.rename_repo("acme/docs", "handbook")
    fake.pool_url, late_edit, fake.held = url, fake.held[1], []
    await pool.repo("acme/handbook", max_open_prs=1)
    labelled = await fake.label_issue("acme/handbook", number, "area:docs")  # the pool learns the repo's id
    assert labelled is not None and labelled.status == 200, labelled.answer
    late = await deliver(world, late_edit)
    assert late.payload["repository"]["full_name"] == "acme/docs"
    assert late.status == 200, late.answer
    assert (f"acme/docs is a name the pool has not seen for acme/handbook (repository id {docs.id}): applied to "
            "acme/handbook; GitHub is asked which name the repo has now") in late.answer["detail"], late.answer
    await world.drain()
    assert [c.path for c in fake.calls_to("GET", "/repositories/")] == [f"/repositories/{docs.id}"]
    await pool.call("GET", "/v1/repos/acme/handbook")
    await pool.call("GET", "/v1/repos/acme/docs", expect=404)
    assert await pool.events(type="repo.renamed") == []
    [task] = await world.tasks(repo="acme/handbook")
    assert (task["issue_number"], task["area"]) == (number, "docs")


async def test_a_repo_renamed_to_a_name_another_repository_left_gets_none_of_its_deliveries(
    world: GitHubWorld, backend: str
) -> None:
    """acme/docs, outside the pool but listed by the installation, was renamed acme/manual; then the pool's acme/api
    was renamed acme/docs. That name is the pool repo's now: the other repository's deliveries are not for it."""
    fake = world.fake
    fake.add_repo("acme/docs", INSTALLATION_ID)
    installed = await fake.install(INSTALLATION_ID, "acme", [REPO, "acme/docs"])
    assert installed is not None and installed.status == 200, installed.answer
    ignored = await fake.rename_repo("acme/docs", "manual")
    assert ignored is not None and ignored.status == 202, ignored.answer
    renamed = await fake.rename_repo(REPO, "docs")
    assert renamed is not None and renamed.status == 200, renamed.answer
    await fake.open_issue("acme/manual", "Not the pool's", labels=["pool:ready"])
    other = fake.deliveries[-1]
    assert (other.status, other.answer["detail"]) == (
        202, "acme/manual is not a pool repo; an admin adds it with PUT /v1/repos/acme/manual"), other.answer
    assert await world.tasks(repo="acme/docs") == []


async def test_an_issue_synced_while_the_repo_is_renamed_keeps_one_status_comment(
    world: GitHubWorld, backend: str
) -> None:
    """The outbox wrote the issue's status comment under the repo's name, and the repo was renamed before the write
    was recorded (GitHub answers the old name with a redirect). The record follows the repo to its new name, so the
    next sync edits that comment instead of posting a second one."""
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Split the router")
    task = await world.task_of_issue(number)
    _, token = await world.online_worker("mallory")
    assert len((await pool.work(token))["leases"]) == 1
    fake.meanwhile("POST", rf"^/repos/{REPO}/issues/{number}/comments$", lambda: fake.rename_repo(REPO, "service"))
    await world.drain()
    await pool.status(task["task_id"], "released", token=token)
    await world.drain()
    status = [c for c in fake.bot_comments(NEW_NAME, number) if c.body.startswith(gh.STATUS_MARKER)]
    assert len(status) == 1, [c.body for c in status]
    assert "Leased" not in status[0].body, status[0].body
