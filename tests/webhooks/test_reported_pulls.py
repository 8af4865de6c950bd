"""A worker's `pr_opened` on a repo the GitHub App is installed on is checked against GitHub (protocol.md): a URL
of another repo is refused at once, and the outbox reads the reported PR. A PR that does not exist, or someone
else's that does not name the issue, voids the report: the task goes back to the pool and the completion is
taken back. The worker's own PR, or one naming the issue, is followed as if its webhook had come. An imported
task (from a task file) is checked alike; it has no issue, so someone else's PR counts only from its branch
`owp/<task_id>`."""

from __future__ import annotations

import sqlite3
from typing import Any

import asyncpg
import pytest

from owp_bot.config import Settings
from owp_bot.devtools.fake_github import FakePull
from owp_bot.scheduler import github_operations as gh
from owp_bot.scheduler.postgres_store import PostgresStore
from owp_bot.scheduler.sqlite_store import SQLiteStore
from owp_bot.scheduler.store import Store
from tests.webhooks.conftest import INSTALLATION_ID, REPO, GitHubWorld


def url(number: int, repo: str = REPO) -> str:
    return f"https://github.com/{repo}/pull/{number}"


async def leased(world: GitHubWorld, handle: str = "mallory") -> tuple[int, str, str, str]:
    """An issue of the pool leased to a worker: (issue number, task id, worker id, token)."""
    number = await world.ready_issue("Something small")
    task = await world.task_of_issue(number)
    worker_id, token = await world.online_worker(handle)
    [lease] = (await world.pool.work(token))["leases"]
    assert lease["task_id"] == task["task_id"], lease
    return number, task["task_id"], worker_id, token


async def imported(world: GitHubWorld, handle: str = "mallory") -> tuple[str, str, str]:
    """A task of a task file, about issue #4 (which the bot never writes on), on a repo the app is installed on,
    leased to a worker: (task id, worker id, token)."""
    pool = world.pool
    await world.fake.install(INSTALLATION_ID, "acme", [REPO])
    text = f"tasks:\n  - {{key: guide, repo: {REPO}, title: Write the guide, issue_number: 4}}\n"
    report = await pool.call("POST", "/v1/tasks/import", admin=True, data=text.encode(),
                             headers={"Content-Type": "application/yaml"})
    [entry] = report["entries"]
    assert entry["outcome"] == "created", report
    worker_id, token = await world.online_worker(handle)
    [lease] = (await pool.work(token))["leases"]
    assert lease["task_id"] == entry["task_id"], lease
    return entry["task_id"], worker_id, token


async def outcomes(world: GitHubWorld, worker_id: str) -> dict[str, Any]:
    rep = await world.pool.call("GET", f"/v1/workers/{worker_id}/reputation", admin=True)
    return {key: rep["metrics"][key] for key in ("completed", "expired", "closed_unmerged")} | {
        "score": rep["reputation_score"]}


def replies(world: GitHubWorld, number: int) -> list[str]:
    return [c.body for c in world.fake.bot_comments(REPO, number) if not c.body.startswith(gh.STATUS_MARKER)]


async def in_flight(world: GitHubWorld) -> int:
    return int((await world.pool.call("GET", f"/v1/repos/{REPO}"))["budget"]["in_flight"])


async def test_a_url_of_another_repo_is_refused_with_the_url_to_send(world: GitHubWorld, backend: str) -> None:
    pool = world.pool
    _, task_id, worker_id, token = await leased(world)
    for wrong in (url(5, "evil/farm"), f"https://github.com/{REPO}/issues/5"):
        problem = await pool.status(task_id, "pr_opened", token=token, artifact={"pr_url": wrong}, expect=422)
        assert problem["detail"] == (
            f"artifact.pr_url {wrong} is not a pull request of {REPO}, the repo of task {task_id}; send your pull "
            f"request's URL there, https://github.com/{REPO}/pull/<number>"
        ), problem
    assert (await pool.get_task(task_id))["status"] == "leased"
    assert (await outcomes(world, worker_id))["completed"] == 0
    assert not await pool.events(type="task.pr_opened")


async def test_a_pr_that_does_not_exist_voids_the_report(world: GitHubWorld, backend: str) -> None:
    pool, fake = world.pool, world.fake
    number, task_id, worker_id, token = await leased(world)
    before = await outcomes(world, worker_id)
    await pool.status(task_id, "pr_opened", token=token, artifact={"pr_url": url(99)})
    # the report itself answers at once: the lease completed, the check waits in the outbox
    assert (await pool.get_task(task_id))["status"] == "pr_opened"
    assert (await outcomes(world, worker_id))["completed"] == 1
    await world.drain()
    # GitHub's API may lag behind a pull request created a moment ago: the first 404 is asked again later
    assert (await pool.get_task(task_id))["status"] == "pr_opened"
    pool.clock.advance(31)
    await world.drain()
    assert [c.path for c in fake.calls_to("GET", "/pulls/")] == [f"/repos/{REPO}/pulls/99"] * 2
    task = await pool.get_task(task_id)
    assert (task["status"], task["worker_id"]) == ("ready", None), task
    assert await in_flight(world) == 0  # no slot of the review budget held by a PR nobody will ever close
    after = await outcomes(world, worker_id)
    assert (after["completed"], after["expired"], after["closed_unmerged"]) == (0, 1, 0), after
    assert after["score"] < before["score"]
    [voided] = await pool.events(type="lease.voided")
    await world.drain()  # the reply the check queued (the outbox's next round, woken by the check's commit)
    [granted] = await pool.events(type="lease.granted")
    assert voided["details"] == {"worker_id": worker_id, "lease_id": granted["details"]["lease_id"], "pr_number": 99,
                                 "pr_url": url(99), "reason": "not_found",
                                 "message": f"GitHub has no pull request #99 in {REPO}"}, voided
    assert replies(world, number) == [
        f"@mallory reported pull request #99 for this issue, but GitHub has no pull request #99 in {REPO}. "
        "The report does not count: the task is back in the pool. Report the URL of a pull request you opened, "
        f"or one that says `Closes #{number}`."
    ]
    _, other = await world.online_worker("ann")
    [lease] = (await pool.work(other))["leases"]  # back in the pool: someone else can take it
    assert lease["task_id"] == task_id


async def test_a_deleted_pr_410_voids_the_report_too(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    _, task_id, _, token = await leased(world)
    fake.fail("GET", r"/pulls/7$", 410)
    await pool.status(task_id, "pr_opened", token=token, artifact={"pr_url": url(7)})
    await world.drain()
    assert (await pool.get_task(task_id))["status"] == "ready"
    [voided] = await pool.events(type="lease.voided")
    assert voided["details"]["reason"] == "not_found", voided


async def test_someone_elses_pr_that_names_no_task_voids_the_report(world: GitHubWorld, backend: str) -> None:
    pool, fake = world.pool, world.fake
    number, task_id, worker_id, token = await leased(world)
    pull = await fake.open_pull(REPO, title="Big refactor", body="Refactors the parser", user="maintainer")
    await pool.status(task_id, "pr_opened", token=token, artifact={"pr_url": url(pull.number)})
    assert await in_flight(world) == 2  # the maintainer's PR as an external one, and the task
    await world.drain()
    assert (await pool.get_task(task_id))["status"] == "ready"
    assert await in_flight(world) == 1  # the maintainer's PR, still open, counted once
    after = await outcomes(world, worker_id)
    assert (after["completed"], after["expired"], after["closed_unmerged"]) == (0, 1, 0), after
    [voided] = await pool.events(type="lease.voided")
    assert voided["details"]["reason"] == "not_theirs", voided
    await world.drain()
    assert (
        f"but #{pull.number} was opened by @maintainer, not by the worker who reported it, and does not say "
        f"`Closes #{number}`." in replies(world, number)[0]
    )


async def test_the_workers_own_pr_is_followed_when_its_webhook_never_came(world: GitHubWorld, backend: str) -> None:
    """GitHub's `opened` delivery was lost; the check reads the PR and links it as that delivery would have."""
    pool, fake = world.pool, world.fake
    number, task_id, worker_id, token = await leased(world)
    repo = fake.repos[REPO]
    pr_number = repo.next_number
    repo.pulls[pr_number] = FakePull(pr_number, "README fix", "Part of the README work", "mallory", "readme")
    repo.next_number += 1
    await pool.status(task_id, "pr_opened", token=token, artifact={"pr_url": url(pr_number)})
    await world.drain()
    assert (await pool.get_task(task_id))["status"] == "pr_opened"
    assert not await pool.events(type="lease.voided")
    assert not replies(world, number)
    assert await in_flight(world) == 1  # the task's PR, not also an external one
    assert (await outcomes(world, worker_id))["completed"] == 1
    await fake.merge_pull(REPO, pr_number)
    assert (await pool.get_task(task_id))["status"] == "merged"


async def test_a_pr_naming_the_issue_is_followed_whoever_opened_it(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    number, task_id, _, token = await leased(world)
    repo = fake.repos[REPO]
    pr_number = repo.next_number
    repo.pulls[pr_number] = FakePull(pr_number, "Pairing", f"Closes #{number}", "pair-partner", "pairing")
    repo.next_number += 1
    await pool.status(task_id, "pr_opened", token=token, artifact={"pr_url": url(pr_number)})
    await world.drain()
    assert (await pool.get_task(task_id))["status"] == "pr_opened"
    assert not await pool.events(type="lease.voided")
    await fake.close_pull(REPO, pr_number)
    assert (await pool.get_task(task_id))["status"] == "ready"  # the linked PR ended: the usual rule


async def test_github_failing_retries_the_check_later(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    _, task_id, _, token = await leased(world)
    fake.fail("GET", r"/pulls/42$", 502)
    await pool.status(task_id, "pr_opened", token=token, artifact={"pr_url": url(42)})
    await world.drain()
    assert (await pool.get_task(task_id))["status"] == "pr_opened"  # a 502 says nothing about the PR
    pool.clock.advance(31)
    await world.drain()
    assert (await pool.get_task(task_id))["status"] == "ready"
    assert len(fake.calls_to("GET", "/pulls/42")) == 2


async def test_a_repo_without_the_app_takes_the_url_on_trust(world: GitHubWorld, backend: str) -> None:
    pool, fake = world.pool, world.fake
    await pool.repo("acme/imported", max_open_prs=3)
    task_id = await pool.task("Imported from YAML", repo="acme/imported")
    _, token = await world.online_worker("ann")
    [lease] = (await pool.work(token))["leases"]
    assert lease["task_id"] == task_id
    await pool.status(task_id, "pr_opened", token=token, artifact={"pr_url": url(3, "elsewhere/fork")})
    await world.drain()
    assert (await pool.get_task(task_id))["status"] == "pr_opened"
    assert not fake.calls_to("GET", "/pulls/")
    assert not await pool.events(type="lease.voided")


@pytest.mark.parametrize("webhook", ["before the report", "after the report"])
async def test_a_pr_its_webhook_showed_is_not_voided_while_the_api_lags(
    world: GitHubWorld, backend: str, webhook: str
) -> None:
    """GitHub's API may answer 404 for a PR created a moment ago, past the check's one retry; the `opened` delivery
    already showed the PR, by the worker: it is the worker's PR, not a report of one that does not exist."""
    pool, fake = world.pool, world.fake
    number, task_id, worker_id, token = await leased(world)
    pr_number = fake.repos[REPO].next_number
    if webhook == "before the report":
        await fake.open_pull(REPO, title="README fix", body="Part of the README work", user="mallory")
    await pool.status(task_id, "pr_opened", token=token, artifact={"pr_url": url(pr_number)})
    if webhook == "after the report":
        await fake.open_pull(REPO, title="README fix", body="Part of the README work", user="mallory")
    fake.fail("GET", rf"/pulls/{pr_number}$", 404, times=2)
    await world.drain()
    pool.clock.advance(31)
    await world.drain()
    assert len(fake.calls_to("GET", f"/pulls/{pr_number}")) == 2
    assert (await pool.get_task(task_id))["status"] == "pr_opened"
    assert not await pool.events(type="lease.voided")
    assert await in_flight(world) == 1  # the task's PR, not also an external one
    after = await outcomes(world, worker_id)
    assert (after["completed"], after["expired"]) == (1, 0), after
    await world.drain()
    assert not replies(world, number)
    await fake.merge_pull(REPO, pr_number)
    assert (await pool.get_task(task_id))["status"] == "merged"


async def test_an_imported_tasks_url_of_another_repo_is_refused(world: GitHubWorld, backend: str) -> None:
    pool = world.pool
    task_id, worker_id, token = await imported(world)
    wrong = url(5, "evil/farm")
    problem = await pool.status(task_id, "pr_opened", token=token, artifact={"pr_url": wrong}, expect=422)
    assert problem["detail"] == (
        f"artifact.pr_url {wrong} is not a pull request of {REPO}, the repo of task {task_id}; send your pull "
        f"request's URL there, https://github.com/{REPO}/pull/<number>"
    ), problem
    assert (await pool.get_task(task_id))["status"] == "leased"
    assert (await outcomes(world, worker_id))["completed"] == 0
    # a corrected report on a task already in review is checked too (the report that reads the task first)
    pull = await world.fake.open_pull(REPO, title="The guide", body="Writes the guide", user="mallory")
    await pool.status(task_id, "pr_opened", token=token, artifact={"pr_url": url(pull.number)})
    problem = await pool.status(task_id, "pr_opened", token=token, artifact={"pr_url": wrong}, expect=422)
    assert problem["detail"].startswith(f"artifact.pr_url {wrong} is not a pull request of {REPO}"), problem
    assert (await pool.get_task(task_id))["pr_url"] == url(pull.number)


@pytest.mark.parametrize("reported", ["someone else's", "none"])
async def test_an_imported_tasks_report_that_github_does_not_confirm_is_voided(
    world: GitHubWorld, backend: str, reported: str
) -> None:
    """It has no issue to say why on: the worker reads why in the task's history."""
    pool, fake = world.pool, world.fake
    task_id, worker_id, token = await imported(world)
    if reported == "none":
        number, reason, why = 99, "not_found", f"GitHub has no pull request #99 in {REPO}"
        fake.fail("GET", r"/pulls/99$", 410)
    else:
        number = (await fake.open_pull(REPO, title="Big refactor", body="Closes #4", user="maintainer")).number
        reason = "not_theirs"
        why = (f"#{number} was opened by @maintainer, not by the worker who reported it, and its branch is not "
               f"`owp/{task_id}`")
    await pool.status(task_id, "pr_opened", token=token, artifact={"pr_url": url(number)})
    assert (await outcomes(world, worker_id))["completed"] == 1
    await world.drain()
    assert [c.path for c in fake.calls_to("GET", "/pulls/")] == [f"/repos/{REPO}/pulls/{number}"]
    task = await pool.call("GET", f"/v1/tasks/{task_id}", token=token)
    assert (task["status"], task["worker_id"]) == ("ready", None), task
    after = await outcomes(world, worker_id)
    assert (after["completed"], after["expired"]) == (0, 1), after
    history = {e["type"]: e["details"] for e in task["history"]}
    assert history["lease.voided"] == {"worker_id": worker_id, "lease_id": history["lease.granted"]["lease_id"],
                                       "pr_number": number, "pr_url": url(number), "reason": reason,
                                       "message": why}, history
    assert history["task.requeued"]["reason"] == f"reported PR #{number} not confirmed: {why}", history
    await world.drain()
    assert not fake.calls_to("POST", "/comments"), fake.calls  # no issue of its own to answer on


@pytest.mark.parametrize("pull", ["the worker's own", "on the task's branch"])
async def test_an_imported_tasks_confirmed_pr_is_followed_to_its_merge(
    world: GitHubWorld, backend: str, pull: str
) -> None:
    pool, fake = world.pool, world.fake
    task_id, worker_id, token = await imported(world)
    repo = fake.repos[REPO]
    number = repo.next_number
    author, branch = ("mallory", "guide") if pull == "the worker's own" else ("pair-partner", f"owp/{task_id}")
    repo.pulls[number] = FakePull(number, "The guide", "Writes the guide", author, branch)
    repo.next_number += 1
    await pool.status(task_id, "pr_opened", token=token, artifact={"pr_url": url(number)})
    await world.drain()
    assert fake.calls_to("GET", f"/pulls/{number}")
    assert (await pool.get_task(task_id))["status"] == "pr_opened"
    assert not await pool.events(type="lease.voided")
    assert await in_flight(world) == 1  # the task's PR, not also an external one
    await fake.merge_pull(REPO, number)
    assert (await pool.get_task(task_id))["status"] == "merged"
    assert (await outcomes(world, worker_id))["completed"] == 1


@pytest.mark.parametrize("leased", [True, False])
async def test_a_pr_on_an_imported_tasks_branch_is_linked_without_a_comment(
    world: GitHubWorld, backend: str, leased: bool
) -> None:
    """An imported task's issue_number only says what it is about: the bot writes on no issue for it, also when
    someone else's PR from its branch `owp/<task_id>` is linked (to the holder's lease, or without one)."""
    pool, fake = world.pool, world.fake
    task_id, _, _ = await imported(world)
    if not leased:
        await pool.status(task_id, "ready", admin=True)
    pr = await fake.open_pull(REPO, title="The guide", body="Writes the guide", head_ref=f"owp/{task_id}",
                              user="pair-partner")
    await world.drain()
    task = await pool.get_task(task_id)
    assert (task["status"], task["pr_url"]) == ("pr_opened", url(pr.number)), task
    assert not fake.calls_to("POST", "/comments"), fake.calls


async def voided_while_the_api_lags(world: GitHubWorld) -> tuple[int, str, str, str, int]:
    """A worker reports the PR it is about to open, and GitHub's API answers 404 to both checks (its `opened`
    delivery is still on its way): the report is voided. (issue number, task id, worker id, token, PR number)"""
    pool = world.pool
    number, task_id, worker_id, token = await leased(world)
    pr_number = world.fake.repos[REPO].next_number
    await pool.status(task_id, "pr_opened", token=token, artifact={"pr_url": url(pr_number)})
    await world.drain()
    pool.clock.advance(31)
    await world.drain()
    assert (await pool.get_task(task_id))["status"] == "ready"
    assert [e["details"]["reason"] for e in await pool.events(type="lease.voided")] == ["not_found"]
    return number, task_id, worker_id, token, pr_number


async def renewal_refused(world: GitHubWorld, token: str) -> str:
    """What renewing the worker's lease answers once it ended: it names the lease's state."""
    [granted] = await world.pool.events(type="lease.granted")
    lease_id = granted["details"]["lease_id"]
    problem = await world.pool.call("POST", f"/v1/leases/{lease_id}/renew", token=token, expect=409)
    assert problem["detail"] == f"lease {lease_id} is {problem['lease_state']}; it can no longer be renewed", problem
    return str(problem["lease_state"])


async def lease_to_pr(world: GitHubWorld) -> tuple[float | None, int]:
    metrics = (await world.pool.call("GET", f"/v1/analytics/repositories/{REPO}", admin=True))["metrics"]
    return metrics["avg_completion_time"], metrics["prs_opened"]


async def test_a_voided_lease_is_voided_in_its_row_and_in_analytics(world: GitHubWorld, backend: str) -> None:
    """The lease of a voided report did not lead to a pull request: its state says so (a renewal's 409 shows it),
    and analytics count neither its PR nor its time to a PR."""
    _, _, _, token, _ = await voided_while_the_api_lags(world)
    assert await renewal_refused(world, token) == "voided"
    assert await lease_to_pr(world) == (None, 0)


@pytest.mark.parametrize("meanwhile", ["ready", "offered"])
async def test_the_workers_pr_whose_webhook_comes_after_a_void_is_followed(
    world: GitHubWorld, backend: str, meanwhile: str
) -> None:
    """GitHub's API answered 404 twice, then the `opened` delivery shows the very PR the worker reported, opened by
    the worker: the void was wrong. The task still in the pool follows the PR as the worker's, and the void is
    taken back (`lease.unvoided`): the lease completed, as reported."""
    pool, fake = world.pool, world.fake
    number, task_id, worker_id, token, pr_number = await voided_while_the_api_lags(world)
    assert (await outcomes(world, worker_id))["expired"] == 1
    if meanwhile == "offered":
        _, other = await world.online_worker("ann")
        [offer] = (await pool.offers(other))["offers"]
        assert offer["task_id"] == task_id
    await fake.open_pull(REPO, title="README fix", body="Part of the README work", user="mallory")
    task = await pool.get_task(task_id)
    assert (task["status"], task["worker_id"], task["pr_url"]) == ("pr_opened", worker_id, url(pr_number)), task
    assert await in_flight(world) == 1  # the task's PR, not also an external one
    after = await outcomes(world, worker_id)
    assert (after["completed"], after["expired"], after["closed_unmerged"]) == (1, 0, 0), after
    [voided] = await pool.events(type="lease.voided")
    [unvoided] = await pool.events(type="lease.unvoided")
    assert unvoided["details"] == {"worker_id": worker_id, "lease_id": voided["details"]["lease_id"],
                                   "pr_number": pr_number, "pr_url": url(pr_number)}, unvoided
    assert [e["details"]["previous"] for e in await pool.events(type="task.pr_opened")] == ["leased", meanwhile]
    assert len(await pool.events(type="offer.revoked")) == (meanwhile == "offered")
    assert await renewal_refused(world, token) == "completed"
    assert (await lease_to_pr(world))[1] == 1
    await world.drain()
    assert replies(world, number)[1] == (
        f"@mallory's pull request #{pr_number}, whose report the pool voided, exists after all: GitHub had not "
        f"shown it yet when the pool checked it. The report counts again, and the task follows #{pr_number}.")
    await fake.merge_pull(REPO, pr_number)
    assert (await pool.get_task(task_id))["status"] == "merged"
    assert len(await pool.events(type="lease.unvoided")) == 1  # taken back once


async def test_a_voided_report_whose_task_moved_on_counts_again_but_the_task_keeps_its_course(
    world: GitHubWorld, backend: str
) -> None:
    """Another worker leased the task after the void: the late PR does not take the task from it (the PR names no
    task, and a URL alone does not make it the new holder's). The void is taken back all the same, the PR counts
    as an external one, and the bot tells the maintainers on the issue."""
    pool, fake = world.pool, world.fake
    number, task_id, worker_id, _, pr_number = await voided_while_the_api_lags(world)
    ann, other = await world.online_worker("ann")
    [lease] = (await pool.work(other))["leases"]
    assert lease["task_id"] == task_id
    await fake.open_pull(REPO, title="README fix", body="Part of the README work", user="mallory")
    task = await pool.get_task(task_id)
    assert (task["status"], task["worker_id"]) == ("leased", ann), task
    assert await in_flight(world) == 2  # ann's lease and mallory's PR
    after = await outcomes(world, worker_id)
    assert (after["completed"], after["expired"]) == (1, 0), after
    assert len(await pool.events(type="lease.unvoided")) == 1
    await world.drain()
    assert replies(world, number)[1] == (
        f"@mallory's pull request #{pr_number}, whose report the pool voided, exists after all: GitHub had not "
        f"shown it yet when the pool checked it. The report counts again. Meanwhile the task is leased, held by "
        f"@ann, so #{pr_number} is not linked to it; maintainers, please decide who carries it on.")
    await fake.merge_pull(REPO, pr_number)
    assert (await pool.get_task(task_id))["status"] == "leased"


async def test_someone_elses_pr_under_a_voided_number_takes_nothing_back(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    _, task_id, worker_id, _, _ = await voided_while_the_api_lags(world)
    await fake.open_pull(REPO, title="Big refactor", body="Refactors the parser", user="maintainer")
    assert (await pool.get_task(task_id))["status"] == "ready"
    assert await in_flight(world) == 1  # the maintainer's PR, external
    assert (await outcomes(world, worker_id))["expired"] == 1
    assert not await pool.events(type="lease.unvoided")


async def test_an_upgraded_pool_knows_the_reports_it_voided_before(
    world: GitHubWorld, settings: Settings, backend: str
) -> None:
    """Migration 023 finds the leases voided before it from their `lease.voided` events: their state, and the PR
    each reported, so that a late delivery of that PR is still recognised."""
    pool, fake = world.pool, world.fake
    _, task_id, worker_id, token, _ = await voided_while_the_api_lags(world)
    undo = ["UPDATE leases SET state = 'completed' WHERE state = 'voided'", "DROP TABLE gh_voided_reports",
            "DELETE FROM schema_migrations WHERE version = 23"]
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
    assert await renewal_refused(world, token) == "voided"
    await fake.open_pull(REPO, title="README fix", body="Part of the README work", user="mallory")
    assert (await pool.get_task(task_id))["worker_id"] == worker_id
    assert (await outcomes(world, worker_id))["expired"] == 0


async def test_a_pr_opened_long_after_a_voided_report_is_another_pr(world: GitHubWorld, backend: str) -> None:
    """The report named a number no PR had yet (a typo, say); GitHub gives that number to the worker's next PR, a
    day later. That PR is not the one reported: the void stands, and the task stays in the pool."""
    pool, fake = world.pool, world.fake
    _, task_id, worker_id, _, pr_number = await voided_while_the_api_lags(world)
    pool.clock.advance(86400)
    pr = await fake.open_pull(REPO, title="Another change", body="Something else", user="mallory")
    assert pr.number == pr_number
    assert (await pool.get_task(task_id))["status"] == "ready"
    assert (await outcomes(world, worker_id))["expired"] == 1
    assert not await pool.events(type="lease.unvoided")
