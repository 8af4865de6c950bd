"""Assignment rules, expiry and liveness through the real HTTP API, with time moved by a manual clock."""

from __future__ import annotations

from typing import Any

import pytest

from owp_bot.keys import SCHEDULER, SETTINGS, STORE
from owp_bot.scheduler import operations as ops
from owp_bot.scheduler import postgres_store, sqlite_store
from owp_bot.scheduler.policy import Ineligible
from owp_bot.scheduler.service import NOW
from tests.conftest import Pool

PR = {"artifact": {"pr_url": "https://github.com/acme/api/pull/9"}}


async def stay_alive(pool: Pool, token: str, seconds: int) -> None:
    """Let time pass while the worker heartbeats every ten minutes, as a live client does."""
    for _ in range(seconds // 600):
        pool.clock.advance(600)
        await pool.heartbeat(token)
    pool.clock.advance(seconds % 600)
    await pool.heartbeat(token)


async def test_priority_then_age_decides(pool: Pool) -> None:
    await pool.repo(max_open_prs=10)
    old_normal = await pool.task("old normal")
    pool.clock.advance(1)
    await pool.task("new normal")
    pool.clock.advance(1)
    new_high = await pool.task("new high", priority="high")
    _, token = await pool.worker(capacity_points=2, max_concurrent_tasks=2)
    offers = (await pool.offers(token))["offers"]
    assert [o["task_id"] for o in offers] == [new_high, old_normal]


async def test_review_budget_counts_offers_leases_and_open_prs(pool: Pool) -> None:
    await pool.repo("acme/api", max_open_prs=2)
    tasks = [await pool.task(f"t{i}") for i in range(4)]
    _, ann = await pool.worker("ann", capacity_points=1, max_concurrent_tasks=1)
    _, bob = await pool.worker("bob", capacity_points=1, max_concurrent_tasks=1)
    _, cid = await pool.worker("cid", capacity_points=1, max_concurrent_tasks=1)
    ann_offer = (await pool.offers(ann))["offers"][0]
    bob_lease = (await pool.work(bob))["leases"][0]
    assert {ann_offer["task_id"], bob_lease["task_id"]} <= set(tasks)

    refused = await pool.offers(cid)
    assert refused["offers"] == []
    reasons = refused["why_none"]["reasons"]
    assert reasons[0]["reason"] == "review_budget_full" and reasons[0]["repo"] == "acme/api"
    assert reasons[0]["count"] == 2
    assert "review budget of acme/api (2/2)" in refused["why_none"]["summary"]

    # a PR opened still counts: the budget is about the maintainers' review queue
    await pool.status(bob_lease["task_id"], "pr_opened", token=bob, **PR)
    assert (await pool.offers(cid))["offers"] == []
    repo = await pool.call("GET", "/v1/repos/acme/api", admin=True)
    assert repo["budget"] == {"open_prs": 1, "leases": 0, "offers": 1, "in_flight": 2, "max_open_prs": 2,
                              "available": 0}
    # merging frees the slot
    await pool.status(bob_lease["task_id"], "merged", admin=True)
    assert len((await pool.offers(cid))["offers"]) == 1


async def test_area_lock_and_its_reason(pool: Pool) -> None:
    await pool.repo(max_open_prs=5)
    await pool.task("auth one", area="auth")
    await pool.task("auth two", area="Auth")  # areas are normalised
    _, ann = await pool.worker("ann", capacity_points=1, max_concurrent_tasks=1)
    _, bob = await pool.worker("bob", capacity_points=1, max_concurrent_tasks=1)
    assert len((await pool.offers(ann))["offers"]) == 1
    refused = await pool.offers(bob)
    assert [r["reason"] for r in refused["why_none"]["reasons"]] == ["area_locked"]
    # with area locks off the second task can go
    await pool.repo(max_open_prs=5, area_locks=False)
    assert len((await pool.offers(bob))["offers"]) == 1


async def test_skills_capacity_and_concurrency(pool: Pool) -> None:
    await pool.repo(max_open_prs=10)
    await pool.task("needs rust", required_skills=["rust"])
    big = await pool.task("big", estimate_points=3)
    small = [await pool.task(f"small {i}", estimate_points=1) for i in range(3)]
    _, token = await pool.worker(skills=["PYTHON"], capacity_points=3, max_concurrent_tasks=2)
    offers = (await pool.offers(token))["offers"]
    assert [o["task_id"] for o in offers] == [big] or [o["task_id"] for o in offers] == small[:2]
    # big (3 points) is older than the small ones but was created first: it fills all capacity
    assert [o["task_id"] for o in offers] == [big]
    why = await pool.offers(token)
    assert why["offers"][0]["task_id"] == big and why["why_none"] is None
    await pool.reject(token, offers[0]["offer_id"])
    offers = (await pool.offers(token))["offers"]
    assert [o["task_id"] for o in offers] == small[:2]  # two tasks at most
    for offer in offers:
        await pool.accept(token, offer["offer_id"])
    refused = await pool.offers(token)
    counts = {r["reason"]: r["count"] for r in refused["why_none"]["reasons"]}
    assert counts == {"too_many_tasks": 2, "missing_skills": 1}  # rules are checked in DESIGN.md's order
    assert "hold 2/2 tasks" in refused["why_none"]["summary"]


@pytest.mark.parametrize("crowded", [False, True])
async def test_declined_task_is_not_offered_again_until_the_cooldown_ends(pool: Pool, crowded: bool) -> None:
    await pool.repo()
    if crowded:
        await pool.crowd()
    task = await pool.task("only task")
    _, token = await pool.worker()
    offer = (await pool.offers(token))["offers"][0]
    await pool.reject(token, offer["offer_id"], reason="unclear_requirements")
    refused = await pool.offers(token)
    assert refused["offers"] == []
    if not crowded:  # else the first 500 ready tasks, which the explanation looks at, are the crowd's
        assert [r["reason"] for r in refused["why_none"]["reasons"]] == ["recently_declined"]
    await stay_alive(pool, token, 23 * 3600)
    assert (await pool.offers(token))["offers"] == []
    await stay_alive(pool, token, 3600 + 1)
    assert [o["task_id"] for o in (await pool.offers(token))["offers"]] == [task]


async def test_an_expired_offer_returns_its_task_without_the_sweeper(pool: Pool) -> None:
    await pool.repo()
    task = await pool.task()
    _, ann = await pool.worker("ann")
    _, bob = await pool.worker("bob")
    offer = (await pool.offers(ann))["offers"][0]
    pool.clock.advance(5 * 60 + 1)
    assert (await pool.get_task(task))["status"] == "ready"
    await pool.heartbeat(bob)
    assert [o["task_id"] for o in (await pool.offers(bob))["offers"]] == [task]
    late = await pool.accept(ann, offer["offer_id"], expect=409)
    assert "expired" in late["detail"]


async def test_lease_expiry_renewal_and_cap(pool: Pool) -> None:
    await pool.repo()
    task = await pool.task()
    _, token = await pool.worker()
    lease = (await pool.work(token))["leases"][0]
    renew = f"/v1/leases/{lease['lease_id']}/renew"
    renewals = 0
    while lease["lease_expires_at"] != lease["renewable_until"]:  # 4 h leases, renewed before they end
        await stay_alive(pool, token, 4 * 3600 - 60)
        lease = await pool.call("POST", renew, token=token)
        renewals += 1
    assert renewals == 18 and lease["renewable_until"] == "2026-01-04T00:00:00Z"  # 72 h after the grant
    capped = await pool.call("POST", renew, token=token, expect=409)
    assert "cap" in capped["detail"]
    pool.clock.advance(3600)
    assert (await pool.get_task(task))["status"] == "ready"
    history = [e["type"] for e in (await pool.get_task(task))["history"]]
    assert history[-2:] == ["lease.expired", "task.requeued"]
    gone = await pool.call("POST", renew, token=token, expect=409)
    assert "expired" in gone["detail"]


async def test_a_renewal_after_the_repo_lease_ttl_was_shortened_keeps_the_later_deadline(pool: Pool) -> None:
    """A renewal never takes time away: while the repo's new, shorter TTL from now ends before the lease's
    deadline, renewing answers that deadline unchanged; once it reaches past it, the lease gets the new TTL."""
    await pool.repo()
    task = await pool.task()
    _, token = await pool.worker()
    lease = (await pool.work(token))["leases"][0]  # 4 h, the default TTL
    await pool.repo(lease_ttl="1h")
    renew = f"/v1/leases/{lease['lease_id']}/renew"
    await stay_alive(pool, token, 600)
    kept = await pool.call("POST", renew, token=token)
    assert (kept["lease_expires_at"], kept["renewable_until"]) == (lease["lease_expires_at"],
                                                                   lease["renewable_until"])
    await stay_alive(pool, token, 3 * 3600 + 600)  # 20 minutes before the 4 h deadline
    renewed = await pool.call("POST", renew, token=token)
    assert renewed["lease_expires_at"] == "2026-01-01T04:20:00Z"  # 1 h from now
    history = [e["type"] for e in (await pool.get_task(task))["history"]]
    assert history.count("lease.renewed") == 1  # the renewal that changed nothing is no event


async def test_silent_worker_goes_offline_then_loses_its_lease(pool: Pool) -> None:
    await pool.repo()
    leased, offered = await pool.task("leased"), await pool.task("offered")
    worker_id, token = await pool.worker(capacity_points=2)
    await pool.work(token)  # leases both
    await pool.status(offered, "released", token=token)
    await pool.offers(token)  # re-offers the released one
    assert (await pool.get_task(offered))["status"] == "offered"
    pool.clock.advance(15 * 60 + 1)  # past the heartbeat timeout: offline, offers lapse
    assert (await pool.get_task(offered))["status"] == "ready"
    assert (await pool.get_task(leased))["status"] == "leased"
    worker = await pool.call("GET", f"/v1/workers/{worker_id}", admin=True)
    assert (worker["status"], worker["online"]) == ("offline", False)
    pool.clock.advance(15 * 60)  # and after the grace period, its leases return too
    assert (await pool.get_task(leased))["status"] == "ready"


async def test_paused_worker_gets_no_offers_and_is_told_why(pool: Pool) -> None:
    await pool.repo()
    await pool.task()
    _, token = await pool.worker()
    await pool.heartbeat(token, "paused")
    refused = await pool.offers(token)
    assert refused["offers"] == [] and refused["why_none"]["reasons"][0]["reason"] == "worker_paused"
    await pool.heartbeat(token, "idle")
    assert len((await pool.offers(token))["offers"]) == 1


async def test_release_and_status_rules(pool: Pool) -> None:
    await pool.repo()
    task = await pool.task()
    _, ann = await pool.worker("ann")
    _, bob = await pool.worker("bob")
    await pool.work(ann)
    not_yours = await pool.status(task, "in_progress", token=bob, expect=403)
    assert "only the lease holder" in not_yours["detail"]
    admin_only = await pool.status(task, "merged", token=ann, expect=403)
    assert "admin token" in admin_only["detail"]
    no_url = await pool.status(task, "pr_opened", token=ann, expect=422)
    assert "pr_url" in no_url["detail"]
    await pool.status(task, "released", token=ann)
    back = await pool.get_task(task)
    assert (back["status"], back["worker_id"]) == ("ready", None)
    not_allowed = await pool.status(task, "merged", admin=True, expect=409)
    assert not_allowed["allowed"] == ["cancelled", "leased", "offered"]
    assert "allowed next: cancelled, leased, offered" in not_allowed["detail"]
    await pool.status(task, "cancelled", admin=True)
    final = await pool.status(task, "ready", admin=True)
    assert final["status"] == "ready"


async def test_a_task_whose_pr_is_open_is_not_released_by_its_worker(pool: Pool) -> None:
    """Once its PR is open the task is in review: a worker's release would put it back in the pool with the PR
    still open, uncounted by the budget and unpenalised; the PR's close (from GitHub) or a maintainer does it."""
    await pool.repo()
    task = await pool.task()
    _, ann = await pool.worker("ann")
    await pool.work(ann)
    await pool.status(task, "pr_opened", token=ann, **PR)
    refused = await pool.status(task, "released", token=ann, expect=409)
    assert refused["current_status"] == "pr_opened" and refused["allowed"] == ["pr_opened"]
    assert "close the pull request" in refused["detail"]
    assert (await pool.get_task(task))["status"] == "pr_opened"
    assert (await pool.call("GET", "/v1/repos/acme/api"))["budget"]["in_flight"] == 1
    moved = await pool.status(task, "pr_opened", token=ann,  # a new URL for its PR is still the holder's to give
                              artifact={"pr_url": "https://github.com/acme/api/pull/10"})
    assert moved["pr_url"].endswith("/pull/10")
    await pool.status(task, "ready", admin=True)  # a maintainer requeues it


@pytest.mark.one_process
async def test_an_empty_answer_is_explained_in_a_read_of_its_own(pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Explaining walks up to 500 ready tasks and counts them all: milliseconds that the one writer does not spend
    on each empty answer (while every review budget is full, most answers are)."""
    await pool.repo(max_open_prs=0)
    await pool.task()
    _, ann = await pool.worker("ann")
    store = pool.app[STORE]
    runs: list[tuple[str, bool]] = []

    async def run(make_op: Any, *, write: bool = True, **options: Any) -> Any:
        runs.append((make_op.func.__name__, write))
        return await run_in_store(make_op, write=write, **options)

    run_in_store = store.run
    monkeypatch.setattr(store, "run", run)
    refused = await pool.offers(ann)
    assert [r["reason"] for r in refused["why_none"]["reasons"]] == ["review_budget_full"]
    assert [r for r in runs if r[0] != "worker_by_token"] == [("request_offers", True), ("explain_no_offers", False)]


async def test_an_explanation_reads_the_repos_of_its_window_at_once(
        pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    """A small pool of many repos, every budget full (or an area locked): the explanation judges each task by its own
    repo, and reads those repos in one statement, not one each (112 a time in the benchmark's dry pool)."""
    for i in range(6):
        await pool.repo(f"acme/r{i}", max_open_prs=0 if i % 2 else 5, area_locks=True)
        await pool.task(f"r{i} busy", repo=f"acme/r{i}", area="core")
        await pool.task(f"r{i} more", repo=f"acme/r{i}", area="core")
    _, holder = await pool.worker("holder", capacity_points=10, max_concurrent_tasks=10)
    assert len((await pool.work(holder))["leases"]) == 3  # one per open repo: its area "core" is then locked
    _, ann = await pool.worker("ann")
    statements = record_statements(monkeypatch)
    refused = await pool.offers(ann)
    counts = {(r["reason"], r["repo"]): r["count"] for r in refused["why_none"]["reasons"]}
    assert counts == {**{("review_budget_full", f"acme/r{i}"): 2 for i in (1, 3, 5)},
                      **{("area_locked", f"acme/r{i}"): 1 for i in (0, 2, 4)}}, refused["why_none"]
    assert statements.count("repos_get") == 1 and "repo_get" not in statements, statements


async def test_tasks_alike_but_one_declined_are_explained_apart(pool: Pool) -> None:
    """The explanation judges tasks the rules cannot tell apart once (operations.explain_no_offers); a decline is
    the worker's own, task by task, so it sets a task apart from its like."""
    await pool.repo(max_open_prs=2)
    for i in range(4):
        await pool.task(f"alike {i}")
    _, bob = await pool.worker("bob", max_concurrent_tasks=1)
    _, ann = await pool.worker("ann", max_concurrent_tasks=2)
    assert len((await pool.offers(bob))["offers"]) == 1
    [declined] = (await pool.offers(ann))["offers"]  # the budget's last slot
    await pool.reject(ann, declined["offer_id"], reason="unclear_requirements")
    [kept] = (await pool.offers(ann))["offers"]
    assert kept["task_id"] != declined["task_id"]
    await pool.accept(ann, kept["offer_id"])
    refused = await pool.offers(ann)
    assert refused["offers"] == []
    counts = {r["reason"]: r["count"] for r in refused["why_none"]["reasons"]}
    assert counts == {"recently_declined": 1, "review_budget_full": 1}, refused["why_none"]


async def test_a_task_that_fits_after_the_offers_were_made_is_said_to_be_waiting(pool: Pool) -> None:
    await pool.repo()
    ann_id, ann = await pool.worker("ann")
    assert (await pool.offers(ann))["why_none"]["summary"].startswith("no tasks are ready")
    scheduler = pool.app[SCHEDULER]
    offers, seen = await scheduler.run(ops.request_offers, ann_id, NOW, scheduler.settings)
    assert offers == []
    await pool.task()  # between the offers and their explanation
    why = await scheduler.run(ops.explain_no_offers, seen, NOW, scheduler.settings, write=False)
    assert why.summary == "a task you can take is waiting now; ask for offers again" and why.reasons == []


def record_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the statements the stores run from now on (both backends)."""
    names: list[str] = []

    def sqlite_execute(conn: Any, stmt: Any, execute: Any = sqlite_store._execute) -> Any:
        names.append(stmt.name)
        return execute(conn, stmt)

    async def postgres_execute(self: Any, stmt: Any, execute: Any = postgres_store._Transaction._execute) -> Any:
        names.append(stmt.name)
        return await execute(self, stmt)

    monkeypatch.setattr(sqlite_store, "_execute", sqlite_execute)
    monkeypatch.setattr(postgres_store._Transaction, "_execute", postgres_execute)
    return names


async def test_the_holders_reports_move_the_task_and_say_where_it_came_from(
        pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    await pool.repo()
    task = await pool.task()
    ann_id, ann = await pool.worker("ann")
    _, bob = await pool.worker("bob")
    lease = (await pool.work(ann))["leases"][0]
    statements = record_statements(monkeypatch)
    for status in ("in_progress", "blocked", "in_progress"):
        assert (await pool.status(task, status, token=ann))["status"] == status
    no_url = await pool.status(task, "pr_opened", token=bob, expect=403)  # the holder's check comes first
    assert "only the lease holder" in no_url["detail"]
    assert "only the lease holder" in (await pool.status(task, "pr_opened", token=bob, expect=403, **PR))["detail"]
    opened = await pool.status(task, "pr_opened", token=ann, **PR)
    assert (opened["status"], opened["worker_id"], opened["pr_number"]) == ("pr_opened", ann_id, 9)
    # the holder's reports read nothing first; the others' are read to say why not
    assert [name for name in statements if name.startswith("task_")] == ["task_report_held"] * 3 + [
        "task_of_report", "task_report_held", "task_of_report", "task_report_held"]
    # the statement that moves the task says whether the repo has the GitHub App: without it, nothing more is read
    assert not [name for name in statements if name.startswith("gh_")], statements
    again = await pool.status(task, "pr_opened", token=ann,
                              artifact={"pr_url": "https://github.com/acme/api/pull/10"})
    assert (again["status"], again["pr_number"]) == ("pr_opened", 10)
    retried = await pool.status(task, "pr_opened", token=ann,  # a client's retry: the same answer, no new event
                                artifact={"pr_url": "https://github.com/acme/api/pull/10"})
    assert retried == again
    late = await pool.status(task, "in_progress", token=ann, expect=409)
    assert late["allowed"] == ["cancelled", "merged", "pr_opened", "ready"]
    events = [(e["type"], e["details"].get("previous"), e["details"].get("lease_id"))
              for e in await pool.events(target=task) if e["type"].startswith(("task.", "lease."))]
    assert events[2:] == [
        ("task.in_progress", "leased", None), ("task.blocked", "in_progress", None),
        ("task.in_progress", "blocked", None), ("lease.completed", None, lease["lease_id"]),
        ("task.pr_opened", "in_progress", None), ("task.pr_opened", "pr_opened", None),
    ]
    assert (await pool.call("GET", "/v1/work", token=ann))["leases"] == []
    repo = await pool.call("GET", "/v1/repos/acme/api", admin=True)
    assert (repo["budget"]["open_prs"], repo["budget"]["leases"]) == (1, 0)


async def test_a_grant_the_policy_refuses_is_undone(pool: Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The statement that picks a task grants it at once; the policy checks the grant after, and if the two ever
    disagree the operation is rolled back: no offer, no lease, no event."""
    await pool.repo()
    task = await pool.task()
    _, ann = await pool.worker("ann")
    monkeypatch.setattr(ops, "ineligibility", lambda *args, **kwargs: Ineligible.REVIEW_BUDGET_FULL)
    for path, method in (("/v1/work", "GET"), ("/v1/work/offers", "POST")):
        failed = await pool.call(method, path, token=ann, expect=500)
        assert failed["status"] == 500
    assert (await pool.get_task(task))["status"] == "ready"
    assert [e["type"] for e in await pool.events(target=task)] == ["task.created"]
    monkeypatch.undo()
    assert [lease["task_id"] for lease in (await pool.work(ann))["leases"]] == [task]


async def test_work_answers_are_not_cached(pool: Pool) -> None:
    await pool.repo()
    _, token = await pool.worker()
    response = await pool.http.get("/v1/work", headers={"Authorization": f"Bearer {token}"})
    assert response.headers["Cache-Control"] == "no-store"


async def test_audit_log_filters_and_pages(pool: Pool) -> None:
    await pool.repo(max_open_prs=10)
    tasks = [await pool.task(f"t{i}") for i in range(5)]
    worker_id, token = await pool.worker(capacity_points=5, max_concurrent_tasks=5)
    await pool.work(token)
    grants = await pool.events(type="lease.granted")
    assert [e["target"] for e in grants] == tasks and all(e["actor"] == worker_id for e in grants)
    assert len(await pool.events(type="lease.*")) == 5
    assert {e["type"] for e in await pool.events(target=tasks[0])} == {"task.created", "lease.granted"}
    page = await pool.call("GET", "/v1/audit/events", admin=True, params={"limit": 2})
    assert len(page["events"]) == 2 and page["next_cursor"] == page["events"][-1]["seq"]
    rest = await pool.call("GET", "/v1/audit/events", admin=True, params={"after": page["next_cursor"]})
    assert rest["events"][0]["seq"] == page["next_cursor"] + 1
    assert await pool.call("GET", "/v1/audit/events", token=token, expect=401)


async def test_the_token_is_shown_once_and_never_again(pool: Pool) -> None:
    await pool.repo()
    worker_id, token = await pool.worker()
    await pool.work(token)
    assert token.startswith("owp_") and len(token) > 40
    seen = [await pool.call("GET", "/v1/workers", admin=True), await pool.call("GET", f"/v1/workers/{worker_id}"),
            await pool.events()]
    assert token not in str(seen)
    settings = pool.app[SETTINGS]
    if not settings.database_url:  # the SQLite file on disk holds only the token's hash
        stored = b"".join(p.read_bytes() for p in settings.db_path.parent.glob(settings.db_path.name + "*"))
        assert token.encode() not in stored and b"worker.registered" in stored


async def test_tasks_list_filters(pool: Pool) -> None:
    await pool.repo("acme/api")
    await pool.repo("acme/web")
    a = await pool.task("api auth", repo="acme/api", area="auth", required_skills=["python"])
    b = await pool.task("web css", repo="acme/web", required_skills=["css"])
    listed = lambda **q: pool.call("GET", "/v1/tasks", params=q)  # noqa: E731
    assert [t["task_id"] for t in (await listed(repo="acme/api"))["tasks"]] == [a]
    assert [t["task_id"] for t in (await listed(skill="CSS"))["tasks"]] == [b]
    assert [t["task_id"] for t in (await listed(area="auth", status="ready"))["tasks"]] == [a]
    assert (await listed(status="merged"))["tasks"] == []
    page = await listed(limit=1)
    assert len(page["tasks"]) == 1 and page["next_cursor"] == a
    assert [t["task_id"] for t in (await listed(cursor=page["next_cursor"]))["tasks"]] == [b]


async def test_get_work_answers_what_listing_the_leases_answers(pool: Pool) -> None:
    """`GET /v1/work` builds its answer from the leases it granted when the worker held none before (no query),
    and lists them otherwise: either way, exactly what `GET /v1/work/leases` then lists."""
    await pool.repo(max_open_prs=10)
    for i in range(5):
        await pool.task(f"t{i}", estimate_points=1)
    _, token = await pool.worker(capacity_points=5, max_concurrent_tasks=3)
    granted = (await pool.work(token))["leases"]  # held none: three granted at once
    assert len(granted) == 3 and granted == (await pool.call("GET", "/v1/work/leases", token=token))["leases"]
    await pool.status(granted[0]["task_id"], "released", token=token)
    pool.clock.advance(1)
    again = (await pool.work(token))["leases"]  # held two: one more, and the list comes from the query
    assert len(again) == 3 and again[:2] == granted[1:]
    assert again == (await pool.call("GET", "/v1/work/leases", token=token))["leases"]


async def test_asking_for_offers_answers_what_the_pending_offers_are(pool: Pool) -> None:
    """The same for offers: built from the ones made when none were pending, listed by the query otherwise."""
    await pool.repo(max_open_prs=10)
    for i, priority in enumerate(["low", "high", "normal", "critical", "normal"]):
        await pool.task(f"t{i}", estimate_points=1, priority=priority)
        pool.clock.advance(1)
    _, token = await pool.worker(capacity_points=5, max_concurrent_tasks=3)
    made = (await pool.offers(token))["offers"]  # none pending: three made at once
    listed = (await pool.offers(token))["offers"]  # three pending, no room: nothing new, the query lists them
    assert [o["priority"] for o in made] == ["critical", "high", "normal"] and made == listed


async def test_an_area_lock_outlives_the_first_of_two_tasks_in_flight_in_its_area(pool: Pool) -> None:
    """Turning area locks on while two tasks of one area are in flight locks the area by the older; when that
    one ends, the lock passes to the other, and a third task in the area waits (rule 9)."""
    await pool.repo(max_open_prs=5, area_locks=False)
    first = await pool.task("one", area="auth")
    second = await pool.task("two", area="auth")
    _, ann = await pool.worker("ann", max_concurrent_tasks=1)
    _, bob = await pool.worker("bob", max_concurrent_tasks=1)
    assert [lease["task_id"] for lease in (await pool.work(ann))["leases"]] == [first]
    assert [lease["task_id"] for lease in (await pool.work(bob))["leases"]] == [second]
    await pool.repo(max_open_prs=5, area_locks=True)
    await pool.task("three", area="auth")
    await pool.status(first, "pr_opened", token=ann, **PR)
    await pool.status(first, "merged", admin=True)
    _, cy = await pool.worker("cy", max_concurrent_tasks=1)
    none = await pool.offers(cy)
    assert none["offers"] == [], "a third task offered while the second of its area is still leased"
    assert [r["reason"] for r in none["why_none"]["reasons"]] == ["area_locked"]
    await pool.status(second, "released", token=bob)  # the area is free once the last one leaves flight
    assert len((await pool.offers(cy))["offers"]) == 1


async def test_an_offer_whose_task_is_re_specified_beyond_the_worker_is_revoked(pool: Pool) -> None:
    """An offer is a reservation the worker has not accepted: re-specified so that it no longer fits the worker
    (points beyond its free capacity, a skill it lacks, a trust tier above its own), it is revoked, and the task is
    back in the pool; one that still fits stays offered."""
    await pool.repo(max_open_prs=10)
    big = await pool.task("big", key="big", estimate_points=2)
    small = await pool.task("small", key="small", estimate_points=1)
    _, ann = await pool.worker("ann", capacity_points=4, max_concurrent_tasks=2)
    offers = {o["task_id"]: o["offer_id"] for o in (await pool.offers(ann))["offers"]}
    assert offers.keys() == {big, small}  # 3 of 4 points

    await pool.task("big", key="big", estimate_points=3)  # 4 of 4: it still fits
    assert (await pool.get_task(big))["status"] == "offered"
    await pool.task("big", key="big", estimate_points=4)  # 5 of 4
    assert (await pool.get_task(big))["status"] == "ready"
    [revoked] = await pool.events(type="offer.revoked", target=big)
    assert revoked["details"]["offer_id"] == offers[big] and revoked["details"]["reason"] == "insufficient_capacity"
    [requeued] = await pool.events(type="task.requeued", target=big)
    assert requeued["details"]["reason"] == "insufficient_capacity"
    late = await pool.accept(ann, offers[big], expect=409)
    assert "revoked" in late["detail"]

    await pool.task("small", key="small", required_skills=["rust"])
    assert (await pool.get_task(small))["status"] == "ready"
    assert [e["details"]["reason"] for e in await pool.events(type="offer.revoked", target=small)] == [
        "missing_skills"]
    assert (await pool.offers(ann))["offers"][0]["task_id"] == big  # 4 points, all free again


async def test_an_offer_re_specified_to_a_higher_trust_tier_is_revoked(pool: Pool) -> None:
    await pool.repo()
    task = await pool.task("t", key="t")
    _, ann = await pool.worker("ann")
    [offer] = (await pool.offers(ann))["offers"]
    await pool.task("renamed", key="t")  # asks no more of the worker
    assert (await pool.get_task(task))["status"] == "offered"
    await pool.task("renamed", key="t", min_trust="trusted")
    assert (await pool.get_task(task))["status"] == "ready"
    assert [e["details"]["reason"] for e in await pool.events(type="offer.revoked", target=task)] == [
        "insufficient_trust"]
    await pool.accept(ann, offer["offer_id"], expect=409)


async def test_a_leased_task_re_estimated_beyond_capacity_stays_leased_and_nothing_new_is_granted(
    pool: Pool,
) -> None:
    """A lease is work in progress: a maintainer's re-estimate does not take it away. Its worker is over capacity
    then: its pending offer, which accepting would commit it beyond its capacity, is revoked, and it gets no lease
    or offer until it is below again, and is told why."""
    await pool.repo(max_open_prs=10)
    task = await pool.task("grows", key="grows", estimate_points=2)
    _, ann = await pool.worker("ann", capacity_points=3, max_concurrent_tasks=3)
    [lease] = (await pool.work(ann))["leases"]
    small = await pool.task("small", estimate_points=1)
    [offer] = (await pool.offers(ann))["offers"]  # 3 of 3 points
    await pool.task("grows", key="grows", estimate_points=4)  # 5 of 3 points

    assert (await pool.get_task(task))["status"] == "leased"
    assert not await pool.events(type="lease.revoked")
    assert (await pool.get_task(small))["status"] == "ready"
    [revoked] = await pool.events(type="offer.revoked")
    assert (revoked["target"], revoked["details"]["offer_id"], revoked["details"]["reason"]) == (
        small, offer["offer_id"], "insufficient_capacity")
    assert [held["lease_id"] for held in (await pool.work(ann))["leases"]] == [lease["lease_id"]]
    refused = await pool.offers(ann)
    assert refused["offers"] == []
    assert [r["reason"] for r in refused["why_none"]["reasons"]] == ["insufficient_capacity"]
    assert "you hold 4 points, more than your capacity of 3" in refused["why_none"]["summary"]

    await pool.task("grows", key="grows", estimate_points=3)  # at capacity: still no room
    assert (await pool.offers(ann))["offers"] == []
    await pool.status(task, "pr_opened", token=ann, **PR)  # the lease is fulfilled: capacity frees up
    assert [held["task_id"] for held in (await pool.work(ann))["leases"]] == [small]
