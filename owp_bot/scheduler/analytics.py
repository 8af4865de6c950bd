"""Analytics and trust endpoints: pool and repo metrics, time series, reputation, trust tiers, retention.

Every aggregate is one indexed SQL statement over the event log (or the budget samples); nothing here loads
the log into Python. The `insights_ctx` background task samples review budgets and prunes old events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from owp_bot.background import running
from owp_bot.clock import iso, to_datetime
from owp_bot.config import Settings
from owp_bot.errors import Problem
from owp_bot.keys import SCHEDULER
from owp_bot.protocol import models as wire
from owp_bot.protocol.routes import Api, Call
from owp_bot.scheduler import operations as ops
from owp_bot.scheduler import reputation
from owp_bot.scheduler.api import Page, _repo_name
from owp_bot.scheduler.models import TrustTier
from owp_bot.scheduler.service import NOW
from owp_bot.scheduler.store import Op, Row, one, rows, run

log = logging.getLogger(__name__)
analytics_api = Api("analytics")
trust_api = Api("trust")

PERIODS = {"1d": 86400, "7d": 7 * 86400, "30d": 30 * 86400, "90d": 90 * 86400}
BUCKETS = {"hour": 3600, "day": 86400}
# Bottleneck rules: a share of budget samples (or of outcomes) at or above this names the bottleneck.
SATURATED_SHARE = 0.5
WAITING_SHARE = 0.5
EXPIRY_RATE = 0.25
ACCEPTANCE_RATE = 0.5
MIN_EVIDENCE = 4  # outcomes needed before a rate may name a bottleneck


def _rate(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass(frozen=True, slots=True)
class Aggregates:
    """What the SQL aggregates return for one scope (a repo or the pool) and period."""

    counts: dict[str, int]
    prs_closed: int
    lease_to_pr: float | None
    time_to_merge: float | None
    busy_seconds: float
    active_workers: int
    samples: int
    saturated: int
    waiting: int
    period_seconds: float


def bottlenecks(m: dict[str, Any]) -> dict[str, str]:
    """The stated rules (docs/protocol.md, Analytics): each bottleneck with the numbers that name it."""
    found: dict[str, str] = {}
    if m["review_budget_saturation"] is not None and m["review_budget_saturation"] >= SATURATED_SHARE:
        found["code_review"] = (f"the review budget was full in {m['review_budget_saturation']:.0%} of "
                                "samples; merge or close open PRs, or raise max_open_prs")
    if m["ready_waiting_share"] is not None and m["ready_waiting_share"] >= WAITING_SHARE:
        found["contributors"] = (f"ready tasks waited with budget to spare in {m['ready_waiting_share']:.0%} "
                                 "of samples; nobody eligible took them (skills, capacity or trust)")
    if m["leases_granted"] >= MIN_EVIDENCE and (m["lease_expiry_rate"] or 0) >= EXPIRY_RATE:
        found["stale_leases"] = f"{m['lease_expiry_rate']:.0%} of leases expired; consider a longer lease TTL"
    resolved = m["offers_accepted"] + m["offers_rejected"] + m["offers_expired"]
    if resolved >= MIN_EVIDENCE and (m["offer_acceptance_rate"] or 0) < ACCEPTANCE_RATE:
        found["offer_declines"] = (f"only {m['offer_acceptance_rate']:.0%} of offers were accepted; "
                                   "tasks may be unclear or mis-sized")
    return found


def summarise(a: Aggregates) -> wire.AnalyticsMetrics:
    c = a.counts.get
    m: dict[str, Any] = {
        "tasks_completed": c("task.merged", 0),
        "avg_completion_time": None if a.lease_to_pr is None else round(a.lease_to_pr, 1),
        "avg_time_to_merge": None if a.time_to_merge is None else round(a.time_to_merge, 1),
        "worker_utilization": _rate(a.busy_seconds, a.active_workers * a.period_seconds),
        "pr_merge_rate": _rate(c("task.merged", 0), c("task.merged", 0) + a.prs_closed),
        "lease_expiry_rate": _rate(c("lease.expired", 0), c("lease.granted", 0)),
        "offer_acceptance_rate": _rate(
            c("offer.accepted", 0), c("offer.accepted", 0) + c("offer.rejected", 0) + c("offer.expired", 0)),
        "review_budget_saturation": _rate(a.saturated, a.samples),
        "ready_waiting_share": _rate(a.waiting, a.samples),
        "leases_granted": c("lease.granted", 0), "leases_expired": c("lease.expired", 0),
        "offers_made": c("offer.created", 0), "offers_accepted": c("offer.accepted", 0),
        "offers_rejected": c("offer.rejected", 0), "offers_expired": c("offer.expired", 0),
        # a voided report opened no PR; one taken back is opened again, as the task follows it (task.pr_opened)
        "prs_opened": max(0, c("task.pr_opened", 0) - c("lease.voided", 0)),
        "prs_merged": c("task.merged", 0), "prs_closed": a.prs_closed,
        "active_workers": a.active_workers, "budget_samples": a.samples,
    }
    found = bottlenecks(m)
    return wire.AnalyticsMetrics(**m, bottlenecks=list(found), bottleneck_reasons=found)


# ------------------------------------------------------------------ operations


def aggregates(repo: str | None, start: float, end: float, lease_max: float) -> Op[Aggregates]:
    by_type = rows("an_type_counts_pool", start, end) if repo is None else rows("an_type_counts_repo", repo, start, end)
    counts = {r["type"]: r["n"] for r in (yield by_type)}
    closed = yield one("an_closed_unmerged", repo, start, end)
    to_pr = yield one("an_lease_to_pr", repo, start, end)
    to_merge = yield one("an_time_to_merge", repo, start, end)
    busy = yield one("an_busy", repo, start, end, start - lease_max)
    budget = yield one("an_budget_summary", repo, start, end)
    return Aggregates(counts, closed["n"], to_pr["seconds"], to_merge["seconds"], busy["busy_seconds"],
                      busy["workers"], budget["samples"], budget["saturated"], budget["waiting"], end - start)


def repo_analytics(repo: str, start: float, end: float, lease_max: float) -> Op[Aggregates]:
    yield from ops.load_repo(repo)
    return (yield from aggregates(repo, start, end, lease_max))


def pool_analytics(start: float, end: float, lease_max: float) -> Op[tuple[int, Aggregates]]:
    repos = len((yield rows("repos_list")))
    return repos, (yield from aggregates(None, start, end, lease_max))


def series(repo: str | None, start: float, end: float, width: int) -> Op[list[Row]]:
    if repo is not None:
        yield from ops.load_repo(repo)  # an unknown repo is a 404, not a chart of zeros
    return list((yield rows("an_series", repo, start, end, width)))


def sample_budgets(now: float, interval: float) -> Op[int]:
    """One row per repo: in-flight work against the budget and ready tasks (for saturation analytics). None when
    the pool took a sample less than half an `interval` ago: every replica's loop (and a restarted one at once)
    samples on its own timer, and an interval sampled twice would count twice in every share."""
    return int((yield run("an_budget_sample", now, now - interval / 2)))


def prune_events(now: float, retention: float) -> Op[int]:
    """Delete events older than the retention (reputation counters stay); the pruning is an event."""
    cutoff = now - retention
    removed = int((yield run("ret_delete_events", cutoff)))
    yield run("ret_delete_samples", cutoff)
    if removed:
        yield ops.emit(now, "audit.pruned", ops.SYSTEM, None, None, before=iso(cutoff),
                       events_removed=removed, retention_seconds=retention)
    return removed


def housekeeping(now: float, settings: Settings) -> Op[None]:
    yield from sample_budgets(now, settings.insights_interval)
    if settings.event_retention:
        yield from prune_events(now, settings.event_retention)


async def _insights_loop(app: web.Application) -> None:
    scheduler = app[SCHEDULER]
    while True:
        try:
            await scheduler.run(housekeeping, NOW, scheduler.settings, slow=True)
        except Exception:
            log.exception("insights housekeeping failed; retrying at the next interval")
        await asyncio.sleep(scheduler.settings.insights_interval)


async def insights_ctx(app: web.Application) -> AsyncIterator[None]:
    """Samples review budgets and applies event retention every OWP_INSIGHTS_INTERVAL."""
    async with running(_insights_loop(app), "owp-insights"):
        yield


# ------------------------------------------------------------------ analytics endpoints


class PeriodQuery(BaseModel):
    model_config = {"extra": "forbid"}
    period: wire.Period = "7d"


class TimeSeriesQuery(PeriodQuery):
    repo: wire.RepoName | None = Field(None, description="owner/name; the whole pool without it")
    bucket: Literal["hour", "day"] = "day"


def _window(call: Call, period: str) -> tuple[float, float]:
    now = call.request.app[SCHEDULER].now()
    return now - PERIODS[period], now


@analytics_api.route("GET", "/v1/analytics/repositories/{owner}/{name}",
                     summary="One repo's metrics over a period", auth="reader", query=PeriodQuery,
                     responses={200: wire.RepoAnalytics})
async def repo_metrics(call: Call) -> BaseModel:
    """Bottlenecks follow stated rules: see docs/protocol.md, Analytics."""
    repo, period = _repo_name(call), call.query.period
    start, end = _window(call, period)
    scheduler = call.request.app[SCHEDULER]
    found = await scheduler.run(repo_analytics, repo, start, end, scheduler.settings.lease_max,
                                write=False)
    return wire.RepoAnalytics(repo=repo, period=period, since=to_datetime(start), until=to_datetime(end),
                              metrics=summarise(found))


@analytics_api.route("GET", "/v1/analytics/pool", summary="The whole pool's metrics over a period",
                     auth="reader", query=PeriodQuery, responses={200: wire.PoolAnalytics})
async def pool_metrics(call: Call) -> BaseModel:
    period = call.query.period
    start, end = _window(call, period)
    scheduler = call.request.app[SCHEDULER]
    repos, found = await scheduler.run(pool_analytics, start, end, scheduler.settings.lease_max,
                                       write=False)
    return wire.PoolAnalytics(period=period, since=to_datetime(start), until=to_datetime(end), repos=repos,
                              metrics=summarise(found))


@analytics_api.route("GET", "/v1/analytics/timeseries", summary="Counts per hour or day, for charts",
                     auth="reader", query=TimeSeriesQuery, responses={200: wire.TimeSeries})
async def timeseries(call: Call) -> BaseModel:
    """Every bucket of the period is present (zeros included); buckets are aligned to UTC hours or days."""
    q: TimeSeriesQuery = call.query
    width = BUCKETS[q.bucket]
    _, end = _window(call, q.period)
    start = (end - PERIODS[q.period]) // width * width
    found = {r["bucket"]: r for r in await call.request.app[SCHEDULER].run(
        series, q.repo, start, end, width, write=False)}
    names = [n for n in wire.SeriesPoint.model_fields if n != "ts"]
    points = []
    for index in range(int((end - start) // width) + 1):
        row = found.get(index)
        points.append(wire.SeriesPoint(ts=to_datetime(start + index * width),
                                       **{n: int(row[n]) if row else 0 for n in names}))
    return wire.TimeSeries(bucket=q.bucket, repo=q.repo, period=q.period, points=points)


# ------------------------------------------------------------------ trust endpoints


def reputation_model(worker: Row, outcomes: reputation.Outcomes) -> wire.Reputation:
    good, bad = reputation.evidence(outcomes)
    return wire.Reputation(
        worker_id=worker["id"], reputation_score=reputation.score(outcomes),
        trust_tier=TrustTier(worker["trust_tier"]).label, evidence_good=good, evidence_bad=bad,
        prior_score=reputation.PRIOR_SCORE, metrics=wire.ReputationMetrics(**reputation.metrics(outcomes)))


@trust_api.route("GET", "/v1/workers/reputation", summary="Every worker's reputation, a page at a time",
                 auth="admin", query=Page, responses={200: wire.ReputationList})
async def list_reputations(call: Call) -> BaseModel:
    """What GET /v1/workers/{worker_id}/reputation answers, for many workers in one call; pages and cursors are
    those of GET /v1/workers."""
    page: Page = call.query
    found = await call.request.app[SCHEDULER].run(
        reputation.reputation_page, page.cursor, page.limit + 1, write=False)
    more = len(found) > page.limit
    found = found[: page.limit]
    return wire.ReputationList(reputations=[reputation_model(worker, outcomes) for worker, outcomes in found],
                               next_cursor=found[-1][0]["id"] if more else None)


@trust_api.route("GET", "/v1/workers/{worker_id}/reputation", summary="A worker's reputation and its inputs",
                 auth="worker_or_admin", responses={200: wire.Reputation})
async def get_reputation(call: Call) -> BaseModel:
    """The admin reads any worker's; a worker reads its own."""
    worker_id = call.path("worker_id")
    if not call.admin and call.worker_id != worker_id:
        raise Problem(403, "a worker may read only its own reputation; use your own worker id "
                           "or the admin token")
    worker, outcomes = await call.request.app[SCHEDULER].run(reputation.reputation_of, worker_id,
                                                             write=False)
    return reputation_model(worker, outcomes)


@trust_api.route("POST", "/v1/workers/{worker_id}/trust-tier", summary="Set a worker's trust tier",
                 auth="admin", body=wire.TrustTierChange, responses={200: wire.Reputation})
async def set_trust_tier(call: Call) -> BaseModel:
    """Every change is an audit event (`worker.trust_tier`) with the actor and the reason."""
    worker_id, body = call.path("worker_id"), call.body
    tier = TrustTier[body.tier.value.upper()]
    worker, outcomes = await call.request.app[SCHEDULER].run(_change_tier, worker_id, tier, body.reason, NOW)
    return reputation_model(worker, outcomes)


def _change_tier(worker_id: str, tier: TrustTier, reason: str, now: float) -> Op[tuple[Row, reputation.Outcomes]]:
    yield from ops.set_trust_tier(worker_id, tier, reason, ops.ADMIN, now)
    return (yield from reputation.reputation_of(worker_id))
