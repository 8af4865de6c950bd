"""`/owp` commands from issue comments, and the outbox's behaviour when GitHub fails or rate-limits."""

from __future__ import annotations

import asyncio
import contextlib
from types import SimpleNamespace

import pytest

from owp_bot.events import EventHub
from owp_bot.scheduler import github_operations as gh
from owp_bot.scheduler.store import Event
from owp_bot.webhooks import outbox
from owp_bot.webhooks.outbox import outbox_loop
from owp_bot.webhooks.service import GITHUB
from tests.conftest import start_server
from tests.webhooks.conftest import REPO, GitHubWorld


def replies(world: GitHubWorld, number: int) -> list[str]:
    """The bot's answers to commands (not its one status comment)."""
    return [c.body for c in world.fake.bot_comments(REPO, number) if not c.body.startswith(gh.STATUS_MARKER)]


def last_reply(world: GitHubWorld, number: int) -> str:
    return replies(world, number)[-1]


async def test_claim_leases_the_task_and_replies_with_the_deadline(world: GitHubWorld) -> None:
    fake = world.fake
    number = await world.ready_issue("Claim me", "skills:python")
    worker_id, _ = await world.online_worker("ann", ["python"])
    delivered = await fake.comment(REPO, number, "Looks fun!\n/owp claim", author="ann")
    assert delivered is not None and delivered.status == 200, delivered.answer
    task = await world.task_of_issue(number)
    assert (task["status"], task["worker_id"]) == ("leased", worker_id)
    await world.drain()
    assert last_reply(world, number).startswith("@ann")
    assert "leased to you until 2026-01-01T04:00:00Z" in last_reply(world, number)
    assert "pool:leased" in fake.issue(REPO, number).labels

    await fake.comment(REPO, number, "/owp status", author="someone")
    await world.drain()
    assert "held by @ann until 2026-01-01T04:00:00Z" in last_reply(world, number)
    await fake.comment(REPO, number, "/owp release", author="ann")
    assert (await world.task_of_issue(number))["status"] == "ready"
    await world.drain()
    assert "pool:leased" not in fake.issue(REPO, number).labels


async def test_claim_refused_with_the_exact_reason(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    await pool.repo(REPO, max_open_prs=1)
    first = await world.ready_issue("One", "skills:python")
    second = await world.ready_issue("Two", "skills:rust")
    await world.online_worker("ann", ["python"])
    await world.online_worker("bob", ["python"])
    await fake.comment(REPO, second, "/owp claim", author="bob")
    await world.drain()
    assert "needs skills you have not registered: rust" in last_reply(world, second)
    await fake.comment(REPO, first, "/owp claim", author="ann")
    await fake.comment(REPO, first, "/owp claim", author="bob")
    await world.drain()
    assert "it is leased, not ready" in last_reply(world, first)
    third = await world.ready_issue("Three", "skills:python")
    await fake.comment(REPO, third, "/owp claim", author="bob")
    await world.drain()
    assert "review budget of acme/api is full (1/1" in last_reply(world, third)
    [refused] = await pool.events(
        type="github.claim_refused", target=(await world.task_of_issue(third))["task_id"]
    )
    assert refused["details"]["reason"] == "review_budget_full"


async def test_a_points_label_raised_revokes_an_offer_and_keeps_a_lease(world: GitHubWorld) -> None:
    """A maintainer re-estimates issues with their `points:` label: the offer that no longer fits its worker is
    revoked; the lease stays, and its worker, over capacity now, is refused a claim with the reason."""
    pool, fake = world.pool, world.fake
    await pool.repo(REPO, max_open_prs=5)
    leased = await world.ready_issue("Leased", "points:1")
    _, token = await world.online_worker("ann", capacity_points=3, max_concurrent_tasks=3)
    await fake.comment(REPO, leased, "/owp claim", author="ann")
    offered = await world.ready_issue("Offered", "points:1")
    [offer] = (await pool.offers(token))["offers"]
    assert offer["task_id"] == (await world.task_of_issue(offered))["task_id"]

    await fake.unlabel_issue(REPO, offered, "points:1")
    delivered = await fake.label_issue(REPO, offered, "points:3")  # 1 + 3 of 3 points
    assert delivered is not None and delivered.status == 200, delivered.answer
    task = await world.task_of_issue(offered)
    assert (task["status"], task["estimate_points"], task["worker_id"]) == ("ready", 3, None)
    [revoked] = await pool.events(type="offer.revoked", target=task["task_id"])
    assert revoked["details"]["reason"] == "insufficient_capacity"
    assert revoked["actor"] == "github:maintainer"

    await fake.unlabel_issue(REPO, leased, "points:1")
    await fake.label_issue(REPO, leased, "points:5")  # 5 of 3 points: the work goes on
    assert (await world.task_of_issue(leased))["status"] == "leased"
    assert not await pool.events(type="lease.revoked")
    third = await world.ready_issue("Third", "points:1")
    await fake.comment(REPO, third, "/owp claim", author="ann")
    await world.drain()
    assert "you hold 5 points, more than your capacity of 3" in last_reply(world, third)
    assert (await world.task_of_issue(third))["status"] == "ready"


async def test_bots_never_drive_the_pool(world: GitHubWorld) -> None:
    fake = world.fake
    number = await world.ready_issue("Bots keep out")
    await world.online_worker("renovate")  # even a bot account registered as a worker
    delivered = await fake.comment(REPO, number, "/owp claim", author="renovate", kind="Bot")
    assert delivered is not None and delivered.status == 202
    delivered = await fake.comment(REPO, number, "/owp claim", author=fake.bot_login, kind="Bot")
    assert delivered is not None and delivered.status == 202
    assert (await world.task_of_issue(number))["status"] == "ready"
    await world.drain()
    assert fake.calls_to("POST", "/comments") == []  # no reply either


async def test_unregistered_commenter_is_told_how_to_register(world: GitHubWorld) -> None:
    fake = world.fake
    number = await world.ready_issue("Who are you")
    await fake.comment(REPO, number, "/owp claim", author="stranger")
    await world.drain()
    reply = last_reply(world, number)
    assert reply.startswith("@stranger") and "not a registered worker" in reply and '"stranger"' in reply
    assert (await world.task_of_issue(number))["status"] == "ready"


async def test_unknown_subcommand_gets_help_and_plain_comments_are_ignored(world: GitHubWorld) -> None:
    fake = world.fake
    number = await world.ready_issue("Help")
    ignored = await fake.comment(REPO, number, "I think /owp claim is neat, mid-sentence", author="ann")
    assert ignored is not None and ignored.status == 202
    await fake.comment(REPO, number, "/owp dance", author="ann")
    await world.drain()
    assert "`/owp dance` is not a command I know" in last_reply(world, number)


async def test_github_500_is_retried_with_backoff(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Flaky GitHub")
    fake.fail("POST", r"/issues/\d+/comments$", 500, times=2)
    await fake.comment(REPO, number, "/owp status", author="ann")
    await world.drain()
    assert fake.bot_comments(REPO, number) == []
    pool.clock.advance(29)
    await world.drain()
    assert len(fake.calls_to("POST", "/comments")) == 1  # still waiting for the 30 s backoff
    pool.clock.advance(2)
    await world.drain()
    assert fake.bot_comments(REPO, number) == []  # second failure: next try after 60 s
    pool.clock.advance(61)
    await world.drain()
    assert "is **ready**" in last_reply(world, number)


async def test_rate_limit_waits_for_the_reset(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Rate limited")
    reset = int(pool.clock.now()) + 600
    fake.fail(
        "POST", r"/labels$", 403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
    )
    fake.fail("POST", r"/comments$", 429, headers={"Retry-After": "120"})
    _, token = await world.online_worker("ann")
    await pool.work(token)
    await fake.comment(REPO, number, "/owp status", author="ann")
    await world.drain()
    assert "pool:leased" not in fake.issue(REPO, number).labels and fake.bot_comments(REPO, number) == []
    pool.clock.advance(121)
    await world.drain()
    assert len(fake.bot_comments(REPO, number)) == 1  # the reply; the labels wait for the reset
    assert "pool:leased" not in fake.issue(REPO, number).labels
    pool.clock.advance(480)
    await world.drain()
    assert "pool:leased" in fake.issue(REPO, number).labels
    assert len(fake.bot_comments(REPO, number)) == 2


async def test_issue_gone_is_handled(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Deleted soon")
    del fake.repos[REPO].issues[number]
    _, token = await world.online_worker("ann")
    await pool.work(token)
    await world.drain()  # 404 on the labels: the job ends as gone, nothing raises
    counts = await pool.app[GITHUB].scheduler.run(gh.outbox_counts, write=False)
    assert counts.get("gone") == 1 and "pending" not in counts


async def test_outbox_survives_a_restart(world: GitHubWorld) -> None:
    pool, fake = world.pool, world.fake
    number = await world.ready_issue("Durable")
    fake.fail("POST", r"/comments$", 503)
    await fake.comment(REPO, number, "/owp status", author="ann")
    await world.drain()
    assert fake.bot_comments(REPO, number) == []
    await pool.http.server.app.shutdown()  # the pending job is a row, not a coroutine
    await pool.http.server.app.cleanup()
    settings = pool.app[GITHUB].scheduler.settings
    server = await start_server(settings, pool.clock)
    try:
        pool.clock.advance(31)
        await server.app[GITHUB].outbox.run_due()
        assert "is **ready**" in last_reply(world, number)
    finally:
        await server.close()



async def test_the_outbox_worker_writes_back_by_itself(world: GitHubWorld) -> None:
    number = await world.ready_issue("Settle")  # each commit wakes the worker; nobody drains here
    _, token = await world.online_worker("ann")
    await world.pool.work(token)
    for _ in range(50):
        if world.fake.bot_comments(REPO, number):
            break
        await asyncio.sleep(0.1)
    [status] = world.fake.bot_comments(REPO, number)
    assert "Leased" in status.body and "pool:leased" in world.fake.issue(REPO, number).labels


async def test_the_outbox_worker_waits_for_commits_to_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of commits costs one round (planning write-backs is a write), not one per commit."""
    monkeypatch.setattr(outbox, "SETTLE", 0.3)
    hub, rounds = EventHub(), []

    class Counting:  # what outbox_loop uses of an Outbox
        scheduler = SimpleNamespace(hub=hub)

        async def run_due(self) -> int:
            rounds.append(asyncio.get_running_loop().time())
            return 0

    worker = asyncio.create_task(outbox_loop(Counting(), poll=3600))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    for seq in range(1, 11):  # a commit every 20 ms, for 0.2 s
        hub.publish([Event(seq, 0.0, "worker.registered", "w", "w", None, {})])
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.4)
    worker.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await worker
    assert 1 <= len(rounds) <= 2, rounds  # woken by the first, settled past the last; with SETTLE = 0: ten
