"""Reputation: the score formula (pure), the counters it reads, and trust-tier changes (operations).

The score is computed from the event log (docs/protocol.md "Reputation") and stored on the worker row by the
trigger that counts each outcome event, in the same statement as the event (migration 010, which repeats the
formula in SQL: `score` here is the reference, and tests/test_reputation.py checks that both backends store
exactly what it computes); so assignment reads one column, never the log, and no operation refreshes it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from owp_bot.config import Settings
from owp_bot.errors import Problem, not_found
from owp_bot.scheduler.models import TrustTier
from owp_bot.scheduler.store import Emit, Op, Row, one, rows, run

# A Beta(2, 2) prior: a new worker scores 50 and four outcomes' worth of evidence moves it halfway.
PRIOR_GOOD = 2.0
PRIOR_BAD = 2.0
# Evidence each outcome adds to the good or the bad side.
GOOD_WEIGHTS = {"completed": 1.0, "merged": 1.0, "approved": 0.5}
BAD_WEIGHTS = {"expired": 1.0, "closed_unmerged": 1.0, "released": 0.5, "changes": 0.25, "declined": 0.1}
# The event types counted (the trigger of migrations/sqlite/005_outcome_counters.sql); a GitHub review is
# reported as `review.approved` / `review.changes_requested` with the author's `worker_id` in its details, and
# taken back by `review.dismissed` (migration 017). `lease.voided` takes back a completion whose reported pull
# request GitHub does not show as the worker's, and counts that lease as expired (migration 022); `lease.unvoided`
# takes a void back when a delivery shows that pull request as the worker's after all (migration 023).
OUTCOME_EVENTS = frozenset({"lease.completed", "lease.expired", "lease.released", "offer.rejected",
                            "task.merged", "task.ready", "review.approved", "review.changes_requested",
                            "review.dismissed", "lease.voided", "lease.unvoided"})


@dataclass(frozen=True, slots=True)
class Outcomes:
    completed: int = 0  # leases that reached pr_opened before expiry (less those voided: no such PR of theirs)
    expired: int = 0  # and leases voided: they delivered nothing
    released: int = 0
    declined: int = 0  # offers rejected
    merged: int = 0
    closed_unmerged: int = 0  # PRs closed without merge (the task went back to ready from pr_opened)
    approved: int = 0  # review approvals reported by GitHub
    changes: int = 0  # reviews requesting changes

    @classmethod
    def from_row(cls, row: Row | None) -> Outcomes:
        if row is None:
            return cls()
        return cls(**{f.name: int(row[f.name] or 0) for f in fields(cls)})

    @property
    def leases_ended(self) -> int:
        return self.completed + self.expired + self.released


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def evidence(outcomes: Outcomes) -> tuple[float, float]:
    good = sum(w * getattr(outcomes, name) for name, w in GOOD_WEIGHTS.items())
    bad = sum(w * getattr(outcomes, name) for name, w in BAD_WEIGHTS.items())
    return good, bad


def score(outcomes: Outcomes) -> float:
    """0..100: the mean of the Beta posterior of "this worker delivers", times 100, to one decimal (halves up,
    computed as the SQL of migration 010 computes it, operation for operation in double precision)."""
    good, bad = evidence(outcomes)
    return math.floor(100 * (PRIOR_GOOD + good) / (PRIOR_GOOD + PRIOR_BAD + good + bad) * 10 + 0.5) / 10


PRIOR_SCORE = score(Outcomes())


def metrics(outcomes: Outcomes) -> dict[str, Any]:
    """The rates behind the score; a rate is None until there is something to divide by."""
    reviewed = outcomes.merged + outcomes.closed_unmerged + outcomes.approved + outcomes.changes
    return {
        "completion_rate": _ratio(outcomes.completed, outcomes.leases_ended),
        "on_time_delivery": _ratio(outcomes.completed, outcomes.completed + outcomes.expired),
        "avg_pr_quality": _ratio(outcomes.merged + outcomes.approved, reviewed),
        "pr_merge_rate": _ratio(outcomes.merged, outcomes.merged + outcomes.closed_unmerged),
        "total_tasks": outcomes.leases_ended,
        **{f"{name}": value for name, value in asdict(outcomes).items()},
    }


def tier_change(worker: Row, outcomes: Outcomes, settings: Settings) -> tuple[TrustTier, str] | None:
    """The automatic promotion/demotion rules (each off when its threshold is 0): the new tier and why. They count
    merged PRs and expired leases since an admin last set the worker's tier, if one did: the admin weighed the
    ones before."""
    tier, reputation = TrustTier(worker["trust_tier"]), worker["reputation"]
    demote, promote = settings.demote_after_expired, settings.promote_after_merged
    since = "" if worker["tier_merged_base"] is None else " since an admin set the tier"
    expired = outcomes.expired - (worker["tier_expired_base"] or 0)
    merged = outcomes.merged - (worker["tier_merged_base"] or 0)
    if demote and tier > TrustTier.UNTRUSTED and expired >= demote:
        return TrustTier.UNTRUSTED, f"automatic: {expired} expired leases{since} (limit {demote})"
    if promote and tier is TrustTier.BASIC and merged >= promote and reputation >= settings.promote_min_score:
        return TrustTier.TRUSTED, (f"automatic: {merged} merged PRs{since} and reputation {reputation:g} "
                                   f"(needs {promote} and {settings.promote_min_score})")
    return None


# ------------------------------------------------------------------ operations


def outcomes_of(worker_id: str) -> Op[Outcomes]:
    """The worker's counters, which a trigger keeps with every outcome event (retention leaves them alone)."""
    return Outcomes.from_row((yield one("rep_outcomes_get", worker_id)))


def _worker(worker_id: str) -> Op[Row]:
    worker: Row | None = yield one("worker_get", worker_id)
    if worker is None:
        raise not_found("worker", worker_id, "list workers with GET /v1/workers")
    return worker


def reputation_of(worker_id: str) -> Op[tuple[Row, Outcomes]]:
    worker = yield from _worker(worker_id)
    return worker, (yield from outcomes_of(worker_id))


def reputation_page(after: str, limit: int) -> Op[list[tuple[Row, Outcomes]]]:
    """A page of workers with their counters, in the order and with the cursor of the worker list: one statement."""
    found = yield rows("rep_outcomes_page", after, limit)
    return [(worker, Outcomes.from_row(worker)) for worker in found]


def _change_tier(worker: Row, tier: TrustTier, reason: str, actor: str, now: float) -> Op[None]:
    yield run("rep_worker_set_tier", worker["id"], int(tier))
    yield Emit(now, "worker.trust_tier", actor, worker["id"], None,
               {"worker_id": worker["id"], "tier": tier.label,
                "previous": TrustTier(worker["trust_tier"]).label, "reason": reason})


def set_trust_tier(worker_id: str, tier: TrustTier, reason: str, actor: str, now: float) -> Op[tuple[Row, bool]]:
    """An admin sets a tier; the change is an audit event with the actor and the reason. Returns the worker as it is
    now and whether it was demoted: its caller revokes the offers it no longer fits (operations.set_trust_tier)."""
    worker = yield from _worker(worker_id)
    previous = TrustTier(worker["trust_tier"])
    if previous is tier:
        raise Problem(409, f"worker {worker_id} is already {tier.label}; nothing to change")
    yield from _change_tier(worker, tier, reason, actor, now)
    outcomes = yield from outcomes_of(worker_id)
    yield run("rep_worker_tier_bases", worker_id, outcomes.merged, outcomes.expired)
    return (yield from _worker(worker_id)), tier < previous


def apply_tier_rules(now: float, settings: Settings) -> Op[dict[str, TrustTier]]:
    """Review workers whose outcomes changed since the last review (a partial index of flagged rows): the workers
    demoted, with their new tier, whose offers the caller checks again (operations.expire_due)."""
    demoted: dict[str, TrustTier] = {}
    if not (settings.promote_after_merged or settings.demote_after_expired):
        return demoted
    for worker in (yield rows("rep_review_due")):
        yield run("rep_review_done", worker["id"])
        outcomes = yield from outcomes_of(worker["id"])
        change = tier_change(worker, outcomes, settings)
        if change is not None:
            yield from _change_tier(worker, change[0], change[1], "system", now)
            if change[0] < worker["trust_tier"]:
                demoted[worker["id"]] = change[0]
    return demoted
