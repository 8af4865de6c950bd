"""The webhook door: signatures, redeliveries, unknown repos, malformed payloads, failed deliveries."""

from __future__ import annotations

import json
from typing import Any

from owp_bot.devtools import github_payloads as gp
from tests.webhooks.conftest import INSTALLATION_ID, REPO, WEBHOOK_SECRET, GitHubWorld, example


def labelled_issue(number: int = 1, repo: str = REPO) -> gp.Payload:
    issue = gp.issue(repo, number, "Fix the README", labels=["pool:ready"])
    return gp.issues_event(
        "labeled",
        issue,
        repo,
        installation_id=INSTALLATION_ID,
        changed_label="pool:ready",
        base=example("issues", "labeled"),
    )


async def test_bad_or_missing_signature_is_401_and_applies_nothing(world: GitHubWorld) -> None:
    fake, pool = world.fake, world.pool
    wrong = await fake.deliver(None, "issues", labelled_issue(), secret="not-the-secret")
    assert wrong.status == 401
    assert wrong.answer["title"] == "Unauthorized" and "X-Hub-Signature-256" in wrong.answer["detail"]
    missing = await fake.deliver(None, "issues", labelled_issue(), signature="")
    assert missing.status == 401
    tampered_body = json.dumps(labelled_issue(2)).encode()
    tampered = await fake.deliver(
        None,
        "issues",
        {},
        raw=tampered_body,
        signature=gp.sign(WEBHOOK_SECRET, json.dumps(labelled_issue(1)).encode()),
    )
    assert tampered.status == 401
    assert await world.tasks() == []
    listed = await pool.call("GET", "/v1/github/deliveries", admin=True)
    assert listed["deliveries"] == []


async def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    # GitHub's documented example: secret "It's a Secret to Everybody", payload "Hello, World!"
    assert gp.sign("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


async def test_ping_is_answered(world: GitHubWorld) -> None:
    pong = await world.fake.deliver(None, "ping", gp.ping_event(7, app_id=1, base=example("ping", None)))
    assert pong.status == 200 and pong.answer["outcome"] == "ok"


async def test_a_redelivery_is_acknowledged_and_not_applied_twice(world: GitHubWorld) -> None:
    fake, pool = world.fake, world.pool
    first = await fake.deliver(None, "issues", labelled_issue(), delivery_id="d-1")
    again = await fake.deliver(None, "issues", labelled_issue(), delivery_id="d-1")
    assert first.status == 200 and first.answer["outcome"] == "ok"
    assert again.status == 200 and again.answer["outcome"] == "duplicate"
    assert len(await pool.events(type="task.created")) == 1
    [record] = (await pool.call("GET", "/v1/github/deliveries", admin=True))["deliveries"]
    assert (record["delivery_id"], record["event"], record["action"], record["outcome"]) == (
        "d-1",
        "issues",
        "labeled",
        "ok",
    )


async def test_unknown_repo_is_202_and_ignored(world: GitHubWorld) -> None:
    answer = await world.fake.deliver(None, "issues", labelled_issue(repo="stranger/repo"))
    assert answer.status == 202
    assert answer.answer["outcome"] == "ignored" and "not a pool repo" in answer.answer["detail"]
    assert await world.tasks() == []


async def test_malformed_payload_fails_visibly_and_can_be_retried(world: GitHubWorld) -> None:
    fake, pool = world.fake, world.pool
    broken = labelled_issue()
    del broken["issue"]["number"]
    answer = await fake.deliver(None, "issues", broken, delivery_id="d-broken")
    assert answer.status == 400 and answer.answer["outcome"] == "failed"
    assert "malformed" in answer.answer["detail"]
    not_json = await fake.deliver(None, "issues", {}, raw=b"{not json", delivery_id="d-garbage")
    assert not_json.status == 400 and "not JSON" in not_json.answer["detail"]
    assert await world.tasks() == []
    failed = (await pool.call("GET", "/v1/github/deliveries", admin=True, params={"outcome": "failed"}))[
        "deliveries"
    ]
    assert {d["delivery_id"] for d in failed} == {"d-broken", "d-garbage"}
    retried = await pool.call("POST", "/v1/github/deliveries/d-broken/retry", admin=True, expect=400)
    assert retried["outcome"] == "failed"
    # a failed delivery that GitHub redelivers (fixed) is applied, not treated as a duplicate
    fixed = await fake.deliver(None, "issues", labelled_issue(), delivery_id="d-broken")
    assert fixed.status == 200 and fixed.answer["outcome"] == "ok"
    await pool.call("POST", "/v1/github/deliveries/d-broken/retry", admin=True, expect=409)
    await pool.call("POST", "/v1/github/deliveries/nope/retry", admin=True, expect=404)
    await pool.call("GET", "/v1/github/deliveries", expect=401)


async def test_installation_events_record_which_installation_covers_a_repo(world: GitHubWorld) -> None:
    fake = world.fake
    delivered = await fake.install(91, "acme", [REPO])
    assert delivered is not None and delivered.status == 200, delivered.answer
    payload = gp.installation_repositories_event(
        "removed", 91, "acme", [], [REPO], base=example("installation_repositories", "removed")
    )
    removed = await fake.deliver(None, "installation_repositories", payload)
    assert removed.status == 200 and "-1 repos" in removed.answer["detail"]


async def test_deliveries_are_listed_newest_first_page_by_page(world: GitHubWorld, backend: str) -> None:
    """`limit` and `cursor` as on GET /v1/tasks: a page's `next_cursor` (its last delivery's id) asks for the
    next; deliveries of one instant come in id order; the first page is what a call without a cursor gives."""
    fake, pool, clock = world.fake, world.pool, world.pool.clock
    broken = labelled_issue()
    del broken["issue"]["number"]
    received: list[tuple[float, str]] = []
    for step, names in enumerate([["d-c", "d-a"], ["d-e", "d-b", "d-d"], ["d-f"]]):
        clock.advance(0.1 + step)
        for name in names:
            assert (await fake.deliver(None, "issues", broken, delivery_id=name)).status == 400
            received.append((clock.now(), name))
        assert (await fake.deliver(None, "issues", labelled_issue(10 + step), delivery_id=f"ok-{step}")).status == 200
    failed = [name for _, name in sorted(received, key=lambda r: (-r[0], r[1]))]
    assert failed == ["d-f", "d-b", "d-d", "d-e", "d-a", "d-c"]

    async def listed(**query: object) -> Any:
        return await pool.call("GET", "/v1/github/deliveries", admin=True, params=query)

    async def every_page(limit: int, **query: object) -> tuple[list[str], list[str | None]]:
        seen: list[str] = []
        cursors: list[str | None] = []
        page = await listed(limit=limit, **query)
        while True:
            seen += [d["delivery_id"] for d in page["deliveries"]]
            cursors.append(page["next_cursor"])
            if page["next_cursor"] is None:
                return seen, cursors
            assert page["next_cursor"] == page["deliveries"][-1]["delivery_id"]
            page = await listed(limit=limit, cursor=page["next_cursor"], **query)

    whole = await listed(outcome="failed")
    assert [d["delivery_id"] for d in whole["deliveries"]] == failed and whole["next_cursor"] is None
    assert await every_page(2, outcome="failed") == (failed, ["d-b", "d-e", None])
    assert (await every_page(4, outcome="failed"))[0] == failed
    everything = [d["delivery_id"] for d in (await listed())["deliveries"]]
    assert len(everything) == 9 and (await every_page(2))[0] == everything
    assert (await listed(limit=6, outcome="failed"))["next_cursor"] is None  # exactly one full page

    # the last delivery of a page is fixed (GitHub redelivers it) before the next page is asked for
    first = await listed(limit=2, outcome="failed")
    assert (await fake.deliver(None, "issues", labelled_issue(20), delivery_id="d-b")).status == 200
    rest = await listed(limit=10, outcome="failed", cursor=first["next_cursor"])
    assert [d["delivery_id"] for d in rest["deliveries"]] == failed[2:]


async def test_an_unknown_delivery_cursor_is_a_400_that_says_what_to_pass(world: GitHubWorld) -> None:
    pool = world.pool
    # every delivery id fits in a cursor: a longer X-GitHub-Delivery (GitHub sends a GUID) is refused at the door
    long_id = await world.fake.deliver(None, "issues", labelled_issue(), delivery_id="d" * 101)
    assert long_id.status == 400 and long_id.answer["detail"] == (
        "X-GitHub-Delivery is longer than 100 characters; GitHub sends a GUID")
    assert await world.tasks() == []
    assert (await world.fake.deliver(None, "issues", labelled_issue(), delivery_id="d-1")).status == 200
    bad = await pool.call("GET", "/v1/github/deliveries", admin=True, params={"cursor": "d-nope"}, expect=400)
    assert bad["detail"] == (
        "cursor d-nope is not a delivery this pool received; pass the next_cursor of the previous page, "
        "or no cursor for the first page"
    )
    too_long = await pool.call("GET", "/v1/github/deliveries", admin=True, params={"cursor": "x" * 101}, expect=422)
    assert [e["field"] for e in too_long["errors"]] == ["cursor"]
