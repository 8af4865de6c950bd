"""Reputation: the formula (a Beta prior, bounded, monotone), the score kept on the worker row in step with
the log, the endpoint and who may read it, and reputation-aware assignment of urgent work."""

from __future__ import annotations

import random
import sqlite3
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from owp_bot.config import Settings
from owp_bot.keys import SCHEDULER
from owp_bot.scheduler import operations as ops
from owp_bot.scheduler import reputation
from owp_bot.scheduler.reputation import Outcomes, score
from owp_bot.scheduler.service import NOW
from owp_bot.scheduler.sqlite_store import SQLiteStore
from owp_bot.scheduler.store import Op, one
from tests.conftest import Pool

counts = st.integers(min_value=0, max_value=10_000)
outcomes = st.builds(Outcomes, **{f.name: counts for f in fields(Outcomes)})
GOOD = ("completed", "merged", "approved")
BAD = ("expired", "closed_unmerged", "released", "changes", "declined")


def test_a_new_worker_starts_mid_scale_and_one_task_does_not_decide() -> None:
    assert score(Outcomes()) == reputation.PRIOR_SCORE == 50.0
    assert score(Outcomes(completed=1, merged=1)) == 66.7
    assert score(Outcomes(expired=1)) == 40.0
    assert score(Outcomes(declined=1)) == 48.8  # a decline weighs lightly


@given(outcomes)
def test_the_score_stays_within_0_and_100(o: Outcomes) -> None:
    assert 0 <= score(o) <= 100


@given(outcomes, st.sampled_from(GOOD), st.sampled_from(BAD))
def test_good_outcomes_never_lower_it_and_bad_ones_never_raise_it(o: Outcomes, good: str, bad: str) -> None:
    assert score(replace(o, **{good: getattr(o, good) + 1})) >= score(o)
    assert score(replace(o, **{bad: getattr(o, bad) + 1})) <= score(o)


async def deliver(pool: Pool, token: str, title: str, merged: bool = True) -> str:
    task = await pool.task(title)
    offer = (await pool.offers(token))["offers"][0]
    await pool.accept(token, offer["offer_id"])
    await pool.status(task, "pr_opened", token=token, artifact={"pr_url": "https://github.com/acme/api/pull/9"})
    await pool.status(task, "merged" if merged else "ready", admin=True)
    return task


async def test_the_endpoint_reports_the_score_and_its_inputs(pool: Pool) -> None:
    await pool.repo(max_open_prs=10)
    worker_id, token = await pool.worker()
    await deliver(pool, token, "merged one")
    await deliver(pool, token, "closed one", merged=False)
    declined = await pool.task("declined one")
    await pool.reject(token, (await pool.offers(token))["offers"][0]["offer_id"])
    await pool.status(declined, "cancelled", admin=True)

    rep = await pool.call("GET", f"/v1/workers/{worker_id}/reputation", token=token)
    m = rep["metrics"]
    assert (m["completed"], m["merged"], m["closed_unmerged"], m["declined"], m["total_tasks"]) == (2, 1, 1, 1, 2)
    assert (m["completion_rate"], m["on_time_delivery"], m["pr_merge_rate"], m["avg_pr_quality"]) == (
        1.0, 1.0, 0.5, 0.5)
    assert rep["reputation_score"] == score(Outcomes(completed=2, merged=1, closed_unmerged=1, declined=1))
    assert (rep["trust_tier"], rep["prior_score"]) == ("basic", 50.0)
    # the same score is kept on the worker row, where assignment reads it
    assert (await pool.call("GET", f"/v1/workers/{worker_id}", admin=True))["reputation"] == rep["reputation_score"]


async def test_a_worker_reads_only_its_own_reputation(pool: Pool) -> None:
    ann, ann_token = await pool.worker("ann")
    bob, _ = await pool.worker("bob")
    await pool.call("GET", f"/v1/workers/{ann}/reputation", token=ann_token)
    denied = await pool.call("GET", f"/v1/workers/{bob}/reputation", token=ann_token, expect=403)
    assert "only its own" in denied["detail"]
    assert (await pool.call("GET", f"/v1/workers/{bob}/reputation", admin=True))["reputation_score"] == 50.0
    await pool.call("GET", f"/v1/workers/{bob}/reputation", expect=401)
    await pool.call("GET", "/v1/workers/w_nobody/reputation", admin=True, expect=404)


async def test_the_admin_reads_every_workers_reputation_in_pages(pool: Pool) -> None:
    """GET /v1/workers/reputation: what GET /v1/workers/{id}/reputation answers, for a page of workers at a time,
    in the order and with the cursor of GET /v1/workers."""
    await pool.repo(max_open_prs=10)
    ann, ann_token = await pool.worker("ann")
    bob, _ = await pool.worker("bob")
    cem, cem_token = await pool.worker("cem")
    await deliver(pool, ann_token, "ann's merged one")
    await deliver(pool, cem_token, "cem's closed one", merged=False)
    ids = sorted([ann, bob, cem])
    one_by_one = [await pool.call("GET", f"/v1/workers/{w}/reputation", admin=True) for w in ids]
    assert [r["reputation_score"] for r in one_by_one] != [50.0] * 3

    whole = await pool.call("GET", "/v1/workers/reputation", admin=True)
    assert whole == {"reputations": one_by_one, "next_cursor": None}
    first = await pool.call("GET", "/v1/workers/reputation", admin=True, params={"limit": 2})
    assert first == {"reputations": one_by_one[:2], "next_cursor": ids[1]}
    workers = await pool.call("GET", "/v1/workers", admin=True, params={"limit": 2})
    assert workers["next_cursor"] == first["next_cursor"]  # the same pages as the worker list
    rest = await pool.call("GET", "/v1/workers/reputation", admin=True, params={"limit": 2, "cursor": ids[1]})
    assert rest == {"reputations": one_by_one[2:], "next_cursor": None}
    # the score each carries is the one kept on the worker row
    listed = {w["worker_id"]: w["reputation"] for w in (await pool.call("GET", "/v1/workers"))["workers"]}
    assert {r["worker_id"]: r["reputation_score"] for r in whole["reputations"]} == listed


async def test_only_the_admin_reads_every_workers_reputation(pool: Pool) -> None:
    _, token = await pool.worker("ann")
    await pool.call("GET", "/v1/workers/reputation", expect=401)
    await pool.call("GET", "/v1/workers/reputation", token=token, expect=401)
    bad = await pool.call("GET", "/v1/workers/reputation", admin=True, params={"limit": 0}, expect=422)
    assert [e["field"] for e in bad["errors"]] == ["limit"]


async def let_a_lease_expire(pool: Pool) -> tuple[str, str]:
    """A new worker leases a task and lets the lease run out; the next write transaction lapses it."""
    await pool.repo()
    await pool.task()
    worker_id, token = await pool.worker()
    await pool.work(token)
    pool.clock.advance(5 * 3600)
    await pool.heartbeat(token)
    await pool.repo()  # lapses the lease in the same transaction as the score change
    return worker_id, token


async def test_an_expired_lease_lowers_the_stored_score(pool: Pool) -> None:
    worker_id, _ = await let_a_lease_expire(pool)
    assert (await pool.call("GET", f"/v1/workers/{worker_id}", admin=True))["reputation"] == 40.0


async def two_equal_workers(pool: Pool) -> tuple[tuple[str, str], tuple[str, str]]:
    """Same skills, capacity and tier; `ann` has a merged PR behind her, `bob` an expired lease."""
    await pool.repo(max_open_prs=10)
    ann, bob = await pool.worker("ann"), await pool.worker("bob")
    await deliver(pool, ann[1], "ann's past work")
    past = await pool.task("bob's past work")
    await pool.work(bob[1])
    pool.clock.advance(5 * 3600)
    for _, token in (ann, bob):
        await pool.heartbeat(token)
    await pool.status(past, "cancelled", admin=True)  # lapses bob's lease first, then takes the task away
    scores = [(await pool.call("GET", f"/v1/workers/{w}", admin=True))["reputation"] for w, _ in (ann, bob)]
    assert scores == [66.7, 40.0]
    return ann, bob


async def test_the_better_reputed_of_two_equal_workers_gets_the_critical_task(pool: Pool) -> None:
    ann, bob = await two_equal_workers(pool)
    critical = await pool.task("prod is down", priority="critical")

    first = await pool.offers(bob[1])  # bob asks first, but ann is online, eligible and better reputed
    assert first["offers"] == []
    assert [r["reason"] for r in first["why_none"]["reasons"]] == ["reputation_head_start"]
    assert [o["task_id"] for o in (await pool.offers(ann[1]))["offers"]] == [critical]


@pytest.mark.parametrize("crowd", [None, "critical", "normal"])
async def test_the_head_start_is_short_and_only_for_urgent_work(pool: Pool, crowd: str | None) -> None:
    ann, bob = await two_equal_workers(pool)
    if crowd:
        await pool.crowd(crowd)
    critical = await pool.task("prod is down", priority="critical")
    normal = await pool.task("tidy up", priority="normal")
    assert [o["task_id"] for o in (await pool.offers(bob[1]))["offers"]] == [normal]  # not held back
    pool.clock.advance(pool.app[SCHEDULER].settings.reputation_head_start)
    await pool.heartbeat(ann[1])
    assert [o["task_id"] for o in (await pool.offers(bob[1]))["offers"]] == [critical, normal]


@pytest.mark.parametrize("crowd", [None, "normal"])
async def test_settled_urgent_work_still_goes_first_past_fresh_urgent_work(pool: Pool, crowd: str | None) -> None:
    """Assignment starts below the urgent priorities only while every urgent task is in its head start
    (a bulk import); an urgent task past it is still offered before normal work, fresh ones after it held."""
    ann, bob = await two_equal_workers(pool)
    if crowd:
        await pool.crowd(crowd)
    settled = await pool.task("waiting a while", priority="high")
    pool.clock.advance(pool.app[SCHEDULER].settings.reputation_head_start)
    await pool.heartbeat(ann[1])
    fresh = await pool.task("just came in", priority="critical")
    normal = await pool.task("tidy up", priority="normal")
    offered = [o["task_id"] for o in (await pool.offers(bob[1]))["offers"]]
    assert offered == [settled, normal] and fresh not in offered


def rival_of(worker_id: str, now: float, settings: Settings) -> Op[bool]:
    """Whether worker_claimant finds a better-reputed rival with room for `worker_id`, as `_fill` asks it."""
    row = yield one("worker_claimant", worker_id, now - settings.heartbeat_timeout, 1, ops.URGENT,
                    now - settings.reputation_head_start)
    return bool(row["rival"])


async def test_the_rival_is_looked_for_only_while_urgent_work_is_in_its_head_start(pool: Pool) -> None:
    """Else no task is held back, and the walk past every better-reputed worker who is busy is saved."""
    ann, bob = await two_equal_workers(pool)
    scheduler = pool.app[SCHEDULER]

    async def rival() -> bool:
        return await scheduler.run(rival_of, bob[0], NOW, scheduler.settings, write=False)

    await pool.task("tidy up", priority="normal")
    assert not await rival()
    await pool.task("prod is down", priority="critical")
    assert await rival()  # ann: better reputed, online, with room
    pool.clock.advance(scheduler.settings.reputation_head_start)
    await pool.heartbeat(ann[1])
    assert not await rival()


async def test_no_head_start_when_the_better_worker_cannot_take_it(pool: Pool) -> None:
    ann, bob = await two_equal_workers(pool)
    await pool.task("ann's big job", estimate_points=5)
    assert len((await pool.work(ann[1]))["leases"]) == 1  # ann's capacity is now full
    busy = await pool.task("urgent, ann is full", priority="high")
    assert [o["task_id"] for o in (await pool.offers(bob[1]))["offers"]] == [busy]
    await pool.call("POST", "/v1/workers/heartbeat", token=ann[1], json={"status": "paused"})
    await pool.status((await pool.work(ann[1]))["leases"][0]["task_id"], "released", token=ann[1])
    paused = await pool.task("urgent, ann is paused", priority="critical")
    assert [o["task_id"] for o in (await pool.offers(bob[1]))["offers"]] == [paused, busy]


RECOUNT = """
SELECT json_extract(details, '$.worker_id') AS worker_id,
       sum(type = 'lease.completed') AS completed, sum(type = 'lease.expired') AS expired,
       sum(type = 'lease.released') AS released, sum(type = 'offer.rejected') AS declined,
       sum(type = 'task.merged') AS merged,
       sum(type = 'task.ready' AND json_extract(details, '$.previous') = 'pr_opened') AS closed_unmerged,
       sum(type = 'review.approved') AS approved, sum(type = 'review.changes_requested') AS changes
FROM events WHERE json_extract(details, '$.worker_id') IS NOT NULL
GROUP BY 1 HAVING completed + expired + released + declined + merged + closed_unmerged + approved + changes > 0
ORDER BY 1"""


def counters_and_recount(db_path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with sqlite3.connect(db_path) as db:
        kept = db.execute("SELECT worker_id, completed, expired, released, declined, merged, closed_unmerged, "
                          "approved, changes FROM worker_outcomes ORDER BY worker_id").fetchall()
        return kept, db.execute(RECOUNT).fetchall()


async def every_outcome(pool: Pool) -> None:
    await pool.repo(max_open_prs=10)
    _, ann = await pool.worker("ann")
    _, bob = await pool.worker("bob")
    await deliver(pool, ann, "merged")
    await deliver(pool, bob, "closed unmerged", merged=False)
    await pool.reject(ann, (await pool.offers(ann))["offers"][0]["offer_id"])
    released = (await pool.work(bob))["leases"][0]["task_id"]
    await pool.status(released, "released", token=bob)
    await pool.task("expires")
    assert len((await pool.work(ann))["leases"]) == 1
    pool.clock.advance(5 * 3600)
    await pool.repo(max_open_prs=10)  # ann's lease lapses (and both go silent)


@pytest.mark.sqlite_only
async def test_the_outcome_counters_equal_a_recount_of_the_log(pool: Pool, settings: Settings) -> None:
    """Reputation reads counters a trigger keeps with each outcome event; they must say what the log says."""
    await every_outcome(pool)
    kept, recounted = counters_and_recount(settings.db_path)
    assert kept == recounted and len(kept) == 2
    assert sum(row[2] for row in kept) == 1  # the expired lease was counted


@pytest.mark.sqlite_only
async def test_migration_005_counts_the_existing_log(pool: Pool, settings: Settings) -> None:
    """A pool made before the counters existed gets them from its log, plus what retention had folded away."""
    await every_outcome(pool)
    _, recounted = counters_and_recount(settings.db_path)
    with sqlite3.connect(settings.db_path) as db:  # back to version 4: the counters held only pruned events
        db.executescript(
            "DROP TRIGGER events_count_outcomes; DELETE FROM worker_outcomes;"
            "INSERT INTO worker_outcomes (worker_id, merged) VALUES ('w_pruned', 3);"
            "ALTER TABLE worker_outcomes RENAME TO rep_carry;"
            "CREATE INDEX rep_events_worker ON events (json_extract(details, '$.worker_id'), type);"
            "CREATE INDEX events_ts ON events (ts); DELETE FROM schema_migrations WHERE version = 5;")
    store = SQLiteStore(settings.db_path)
    await store.open()
    await store.close()
    kept, _ = counters_and_recount(settings.db_path)
    assert kept == sorted([*recounted, ("w_pruned", 0, 0, 0, 0, 3, 0, 0, 0)])


# Scores whose third decimal is a 5, exactly or nearly: where two ways of rounding part (6.25: 28 expired leases).
TIES = [Outcomes(expired=28), Outcomes(completed=1, expired=7), Outcomes(declined=3, released=5, changes=7),
        Outcomes(approved=1, changes=3), Outcomes(completed=10_000, declined=9_999)]


async def test_both_backends_store_the_score_python_computes(pool: Pool, settings: Settings) -> None:
    """Migration 010 repeats `score` in SQL (the trigger sets it with each outcome event): for any counters, the
    view the trigger reads must give exactly the float `score` gives, on either backend."""
    await pool.repo()
    samples = [*TIES, *(Outcomes(**{f.name: random.Random(i * 9 + j).choice([0, 1, 2, 3, 7, 40, 999])
                                    for j, f in enumerate(fields(Outcomes))}) for i in range(150))]
    names = [f.name for f in fields(Outcomes)]
    rows = [(f"w_{i}", *(getattr(o, n) for n in names)) for i, o in enumerate(samples)]
    insert = f"INSERT INTO worker_outcomes (worker_id, {', '.join(names)}) VALUES ({', '.join(['?'] * 9)})"
    if settings.database_url:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.executemany(insert.replace("?", "$%d") % tuple(range(1, 10)), rows)
            stored = dict(await conn.fetch("SELECT worker_id, score FROM worker_scores"))
        finally:
            await conn.close()
    else:
        with sqlite3.connect(settings.db_path) as db:
            db.executemany(insert, rows)
            stored = dict(db.execute("SELECT worker_id, score FROM worker_scores").fetchall())
    assert {f"w_{i}": score(o) for i, o in enumerate(samples)} == stored
    assert score(Outcomes(expired=28)) == 6.3  # halves up, as SQL rounds

