"""Analytics: repo and pool metrics from the event log, bottlenecks by their stated rules, dense time series,
and the aggregates running on indexes."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import pytest

from owp_bot.config import Settings
from owp_bot.keys import SCHEDULER
from owp_bot.scheduler.analytics import housekeeping, sample_budgets
from owp_bot.scheduler.service import NOW
from owp_bot.scheduler.sqlite_store import QUERIES, statements_of
from tests.conftest import Pool

HOUR = 3600


async def sample(pool: Pool) -> None:
    scheduler = pool.app[SCHEDULER]
    await scheduler.run(sample_budgets, NOW, scheduler.settings.insights_interval)


async def wait(pool: Pool, token: str, seconds: float) -> None:
    """Let time pass while the worker keeps sending heartbeats (every 10 minutes)."""
    for _ in range(int(seconds // 600)):
        pool.clock.advance(600)
        await pool.heartbeat(token)


async def scenario(pool: Pool) -> dict[str, Any]:
    """One hour apart: a task merged after 2 h, one PR closed unmerged, one lease expired, one offer declined."""
    await pool.repo("acme/api", max_open_prs=2)
    await pool.repo("acme/web", max_open_prs=5)
    _, token = await pool.worker(capacity_points=10, max_concurrent_tasks=3)
    merged, closed = await pool.task("merged"), await pool.task("closed")
    await pool.task("on web", repo="acme/web")
    offers = (await pool.offers(token))["offers"]
    assert len(offers) == 3
    for offer in offers[:2]:
        await pool.accept(token, offer["offer_id"])
    await pool.reject(token, offers[2]["offer_id"])
    await wait(pool, token, HOUR)
    await sample(pool)  # acme/api: 2 leases in flight of 2 -> saturated
    for task in (merged, closed):
        await pool.status(task, "pr_opened", token=token, artifact={"pr_url": "https://github.com/acme/api/pull/3"})
    await wait(pool, token, HOUR)
    await pool.status(merged, "merged", admin=True)
    await pool.status(closed, "ready", admin=True)  # the PR was closed unmerged
    await sample(pool)
    await pool.status(closed, "cancelled", admin=True)
    expiring = await pool.task("expires", repo="acme/api")
    assert [lease["task_id"] for lease in (await pool.work(token))["leases"]] == [expiring]
    await wait(pool, token, 5 * HOUR)
    await pool.repo("acme/api", max_open_prs=2)  # a write transaction lapses what is due
    assert (await pool.get_task(expiring))["status"] == "ready"  # its lease expired
    return {"merged": merged}


async def test_repo_metrics(pool: Pool) -> None:
    await scenario(pool)
    body = await pool.call("GET", "/v1/analytics/repositories/acme/api", params={"period": "7d"})
    assert (body["repo"], body["period"]) == ("acme/api", "7d")
    m = body["metrics"]
    assert (m["tasks_completed"], m["prs_merged"], m["prs_closed"], m["prs_opened"]) == (1, 1, 1, 2)
    assert (m["leases_granted"], m["leases_expired"], m["offers_made"], m["offers_accepted"]) == (3, 1, 2, 2)
    assert m["pr_merge_rate"] == 0.5 and m["lease_expiry_rate"] == round(1 / 3, 4)
    assert m["avg_completion_time"] == HOUR  # lease granted -> PR opened
    assert m["avg_time_to_merge"] == 2 * HOUR
    assert (m["budget_samples"], m["review_budget_saturation"]) == (2, 0.5)
    assert "code_review" in m["bottlenecks"] and "50%" in m["bottleneck_reasons"]["code_review"]
    assert m["active_workers"] == 1 and 0 < m["worker_utilization"] <= 1


async def test_pool_metrics_cover_every_repo(pool: Pool) -> None:
    await scenario(pool)
    body = await pool.call("GET", "/v1/analytics/pool", params={"period": "30d"})
    m = body["metrics"]
    assert body["repos"] == 2
    assert (m["offers_made"], m["offers_accepted"], m["offers_rejected"]) == (3, 2, 1)
    assert m["offer_acceptance_rate"] == round(2 / 3, 4)
    assert m["budget_samples"] == 4


async def test_the_period_bounds_the_metrics(pool: Pool) -> None:
    await scenario(pool)
    pool.clock.advance(2 * 86400)
    m = (await pool.call("GET", "/v1/analytics/pool", params={"period": "1d"}))["metrics"]
    assert (m["tasks_completed"], m["leases_granted"], m["budget_samples"]) == (0, 0, 0)
    assert m["pr_merge_rate"] is None and m["bottlenecks"] == []


async def test_time_series_is_dense_and_counts_by_bucket(pool: Pool) -> None:
    await scenario(pool)
    body = await pool.call("GET", "/v1/analytics/timeseries",
                           params={"repo": "acme/api", "bucket": "hour", "period": "1d"})
    points = body["points"]
    assert body["bucket"] == "hour" and len(points) == 25
    assert all(p["ts"].endswith(":00:00Z") for p in points)
    totals = {k: sum(p[k] for p in points) for k in points[0] if k != "ts"}
    assert totals == {"tasks_completed": 1, "leases_granted": 3, "leases_expired": 1, "prs_merged": 1,
                      "prs_closed": 1, "offers_made": 2, "offers_accepted": 2}
    by_day = await pool.call("GET", "/v1/analytics/timeseries", params={"bucket": "day", "period": "7d"})
    assert len(by_day["points"]) == 8 and sum(p["offers_made"] for p in by_day["points"]) == 3


async def test_bottleneck_contributors_when_ready_work_waits(pool: Pool) -> None:
    await pool.repo("acme/api", max_open_prs=3)
    await pool.task("needs rust", required_skills=["rust"])
    for _ in range(3):
        await sample(pool)
        pool.clock.advance(HOUR)
    m = (await pool.call("GET", "/v1/analytics/repositories/acme/api"))["metrics"]
    assert m["ready_waiting_share"] == 1.0 and m["bottlenecks"] == ["contributors"]


async def test_budgets_are_sampled_once_per_interval_however_often_the_loop_runs(pool: Pool) -> None:
    """Every replica's insights loop, and every restart, samples on its own timer: a sample taken less than half
    an interval ago stands for the pool's, so each interval counts once in the analytics."""
    scheduler = pool.app[SCHEDULER]
    interval = scheduler.settings.insights_interval
    await pool.repo("acme/api")
    await pool.repo("acme/web")

    async def insights_round() -> None:  # what the loop of insights_ctx runs
        await scheduler.run(housekeeping, NOW, scheduler.settings, slow=True)

    await insights_round()
    pool.clock.advance(interval / 2 - 1)  # another replica's timer, or a restart
    await insights_round()
    assert (await pool.call("GET", "/v1/analytics/pool"))["metrics"]["budget_samples"] == 2  # one per repo
    pool.clock.advance(1)
    await insights_round()
    assert (await pool.call("GET", "/v1/analytics/pool"))["metrics"]["budget_samples"] == 4


async def test_errors(pool: Pool) -> None:
    await pool.call("GET", "/v1/analytics/repositories/acme/nope", expect=404)
    bad = await pool.call("GET", "/v1/analytics/pool", params={"period": "2y"}, expect=422)
    assert "period" in bad["detail"]
    await pool.call("GET", "/v1/analytics/timeseries", params={"bucket": "minute"}, expect=422)
    unknown = await pool.call("GET", "/v1/analytics/timeseries", params={"repo": "acme/nope"}, expect=404)
    assert "acme/nope" in unknown["detail"]  # as the repo's own metrics say, not a chart of zeros
    await pool.call("GET", "/v1/analytics/timeseries", params={"repo": "not a repo"}, expect=422)


class TestPrivatePool:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.with_overrides(public_dashboard=False)

    async def test_analytics_need_a_credential(self, pool: Pool) -> None:
        await pool.call("GET", "/v1/analytics/pool", expect=401)
        _, token = await pool.worker()
        await pool.call("GET", "/v1/analytics/pool", token=token)


@pytest.mark.sqlite_only
async def test_aggregates_run_on_indexes(pool: Pool, settings: Settings) -> None:
    await pool.repo()
    plans: dict[str, str] = {}
    with sqlite3.connect(settings.db_path) as db:
        for name, params in {"an_type_counts_repo": ("acme/api", 0, 1), "an_type_counts_pool": (0, 1),
                             "an_series": ("acme/api", 0, 1, 3600),
                             "an_closed_unmerged": (None, 0, 1), "an_lease_to_pr": (None, 0, 1),
                             "an_busy": (None, 0, 1, 0), "an_budget_summary": ("acme/api", 0, 1)}.items():
            plans[name] = " | ".join(r[3] for r in db.execute("EXPLAIN QUERY PLAN " + QUERIES[name], params))
    for name, plan in plans.items():
        assert "SCAN events" not in plan and "SCAN leases" not in plan, (name, plan)
    assert "COVERING INDEX an_events_ts_type" in plans["an_type_counts_pool"]
    assert "COVERING INDEX an_events_repo_ts_type" in plans["an_type_counts_repo"]


@pytest.mark.sqlite_only
async def test_every_index_of_the_event_log_is_read_by_some_statement(pool: Pool, settings: Settings) -> None:
    """Each event insert pays for every index of `events` (the largest single cost of a lease, bench/RESULTS.md):
    an index no statement's plan uses is only cost (migration 009 dropped two)."""
    used: set[str] = set()
    with sqlite3.connect(settings.db_path) as db:
        indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                            "AND tbl_name = 'events' AND sql IS NOT NULL")}
        for name, sql in QUERIES.items():
            code = re.sub(r"--[^\n]*", "", sql)
            if name == "event_insert" or not re.search(r"\bevents\b", code):
                continue
            for part, arity, named in statements_of(sql):  # a named statement may be several here
                params = dict.fromkeys(re.findall(r"(?<![:\w]):(\w+)", part), "x") if named else ["x"] * arity
                for plan in db.execute("EXPLAIN QUERY PLAN " + part, params):
                    used.update(re.findall(r"INDEX (\w+)", plan[3]))
    assert indexes and indexes <= used, f"no statement reads through {sorted(indexes - used)}"
