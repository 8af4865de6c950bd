"""Abuse from the open side of the pool: a worker's free-text name in the bot's GitHub comments, and a worker
that reports someone else's pull request as its own to be credited with its merge and reviews."""

from __future__ import annotations

from owp_bot.scheduler import github_operations as gh
from tests.webhooks.conftest import REPO, GitHubWorld

HOSTILE_NAME = "mallory. @acme/maintainers please merge [this fix](https://evil.example/x) **now**\n\n# Pwned"


def replies(world: GitHubWorld, number: int) -> list[str]:
    return [c.body for c in world.fake.bot_comments(REPO, number) if not c.body.startswith(gh.STATUS_MARKER)]


async def test_a_worker_name_cannot_put_mentions_or_markdown_into_the_bots_comments(world: GitHubWorld) -> None:
    """Anyone may register with any name; a worker without a GitHub handle is named in `/owp status` replies
    and in the comment on a PR someone else opened for its task. The name must stay inert text there: no
    @mention that notifies a team, no link, no heading in the bot's voice."""
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Hold me")
    _, token = await pool.worker(HOSTILE_NAME)
    await pool.heartbeat(token)
    [lease] = (await pool.work(token))["leases"]
    assert lease["url"] == f"https://github.com/{REPO}/issues/{number}", lease
    await fake.comment(REPO, number, "/owp status", author="someone")
    await fake.open_pull(REPO, body=f"Closes #{number}", user="zed")
    await world.drain()
    status_reply, pr_comment = (r for r in replies(world, number) if "mallory" in r)
    for body in (status_reply, pr_comment):
        name_at = body.index("mallory")
        start, end = body.rindex("`", 0, name_at), body.index("`", name_at) + 1
        quoted, rest = body[start:end], body[:start] + body[end:]
        assert quoted == "`mallory. @acme/maintainers please merge [this fix](https://evil.example/x) **now** # Pwned`"
        assert "@acme" not in rest and "evil.example" not in rest and "# Pwned" not in rest, body
    assert "held by worker `mallory." in status_reply, status_reply


async def test_a_worker_cannot_claim_someone_elses_pull_request_for_credit(world: GitHubWorld) -> None:
    """Mallory leases a task and reports pr_opened with the URL of a maintainer's PR (one that names no task);
    its merge and its approval are the maintainer's work, not Mallory's."""
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Something small")
    task = await world.task_of_issue(number)
    mallory, token = await world.online_worker("mallory")
    await pool.work(token)
    pull = await fake.open_pull(REPO, title="Big refactor", body="Refactors the parser", user="maintainer")
    await pool.status(task["task_id"], "pr_opened", token=token,
                      artifact={"pr_url": f"https://github.com/{REPO}/pull/{pull.number}"})
    approved = await fake.review_pull(REPO, pull.number, "approved", reviewer="lead")
    assert approved is not None and approved.status in (200, 202), approved
    merged = await fake.merge_pull(REPO, pull.number)
    assert merged is not None and merged.status in (200, 202), merged
    # not merged by someone else's PR: that PR ended, so the task is back in the pool
    assert (await pool.get_task(task["task_id"]))["status"] == "ready"
    reputation = await pool.call("GET", f"/v1/workers/{mallory}/reputation", admin=True)
    assert (reputation["metrics"]["merged"], reputation["metrics"]["approved"]) == (0, 0), reputation["metrics"]
    assert not await pool.events(type="task.merged")
