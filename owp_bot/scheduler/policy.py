"""Pure assignment policy: may this task go to this worker, and if not, why.

Plain data in, a reason out. The store pre-filters candidates in SQL for speed; these functions are the
rules themselves, used to confirm every grant and to answer "why do I get no work?".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from owp_bot.scheduler.models import Ineligible, Priority, TaskStatus, TrustTier

# Fresh tasks of at least this priority are held briefly for a better-reputed eligible worker.
HEAD_START_PRIORITY = Priority.HIGH


@dataclass(frozen=True, slots=True)
class WorkerView:
    worker_id: str
    skills: frozenset[str]
    capacity_points: int
    max_concurrent_tasks: int
    points_in_use: int
    tasks_in_use: int
    trust_tier: TrustTier
    online: bool
    paused: bool


@dataclass(frozen=True, slots=True)
class TaskView:
    task_id: str
    repo: str
    status: TaskStatus
    estimate_points: int
    required_skills: frozenset[str]
    area: str | None
    min_trust: TrustTier


@dataclass(frozen=True, slots=True)
class RepoLoad:
    repo: str
    max_open_prs: int
    in_flight: int  # open PRs + leases + pending offers
    area_locks: bool
    locked_areas: frozenset[str]
    sensitive_areas: frozenset[str] = frozenset()  # areas that imply min_trust = trusted

    @property
    def budget_full(self) -> bool:
        return self.in_flight >= self.max_open_prs


def held_for_reputation(priority: int, ready_since: float, now: float, head_start: float) -> bool:
    """A task this fresh and this urgent goes first to the best-reputed eligible worker (ready_candidate in sql/)."""
    return priority >= HEAD_START_PRIORITY and now - ready_since < head_start


def is_online(last_heartbeat: float | None, now: float, heartbeat_timeout: float) -> bool:
    return last_heartbeat is not None and now - last_heartbeat <= heartbeat_timeout


def ineligibility(task: TaskView, worker: WorkerView, repo: RepoLoad, recently_declined: bool) -> Ineligible | None:
    """The first rule (DESIGN.md "Assignment") that keeps `task` from `worker`, or None if it may go."""
    if task.status is not TaskStatus.READY:
        return Ineligible.NOT_READY
    if not worker.online:
        return Ineligible.WORKER_OFFLINE
    if worker.paused:
        return Ineligible.WORKER_PAUSED
    misfit = unfit(task, worker, repo)
    if misfit is not None:
        return misfit
    if recently_declined:
        return Ineligible.RECENTLY_DECLINED
    if repo.budget_full:
        return Ineligible.REVIEW_BUDGET_FULL
    if repo.area_locks and task.area is not None and task.area in repo.locked_areas:
        return Ineligible.AREA_LOCKED
    return None


def unfit(task: TaskView, worker: WorkerView, repo: RepoLoad) -> Ineligible | None:
    """The first rule about the worker itself (skills, task slots, capacity, trust) that `task` breaks, or None: also
    what an offer is checked against again when its task is re-specified (operations.revoke_unfit_offers), `worker`
    then holding what it holds besides `task`."""
    if not task.required_skills <= worker.skills:
        return Ineligible.MISSING_SKILLS
    if worker.tasks_in_use >= worker.max_concurrent_tasks:
        return Ineligible.TOO_MANY_TASKS
    if task.estimate_points > worker.capacity_points - worker.points_in_use:
        return Ineligible.INSUFFICIENT_CAPACITY
    return untrusted(task, worker.trust_tier, repo)


def untrusted(task: TaskView, trust_tier: TrustTier, repo: RepoLoad) -> Ineligible | None:
    """The trust rule that `task` breaks for a worker of `trust_tier` (its min_trust, or a sensitive area of `repo`
    while the worker is below trusted), or None: also what a worker's offers are checked against again when its
    tier is lowered or an area of their repo becomes sensitive (operations.revoke_untrusted_offers)."""
    if trust_tier < task.min_trust:
        return Ineligible.INSUFFICIENT_TRUST
    if task.area in repo.sensitive_areas and trust_tier < TrustTier.TRUSTED:
        return Ineligible.SENSITIVE_AREA
    return None


@dataclass(frozen=True, slots=True)
class ReasonCount:
    reason: Ineligible
    count: int
    repo: str | None
    message: str


def explain(
    verdicts: Iterable[tuple[str, Ineligible]], repos: dict[str, RepoLoad], worker: WorkerView
) -> list[ReasonCount]:
    """Turn per-task verdicts (each task's repo, and the rule that keeps it) into counts a person can act on, most
    common first.

    Budget and area-lock reasons are counted per repo, because the remedy is per repo.
    """
    counts: Counter[tuple[Ineligible, str | None]] = Counter()
    for repo, reason in verdicts:
        per_repo = reason in (Ineligible.REVIEW_BUDGET_FULL, Ineligible.AREA_LOCKED)
        counts[(reason, repo if per_repo else None)] += 1
    return [
        ReasonCount(reason, n, repo, describe(reason, n, repos.get(repo) if repo else None, worker))
        for (reason, repo), n in counts.most_common()
    ]


def describe(reason: Ineligible, n: int, repo: RepoLoad | None, worker: WorkerView) -> str:
    """One sentence a worker can act on, for `n` tasks kept from them by `reason`."""
    tasks = f"{n} task{'s' if n != 1 else ''}"
    free = worker.capacity_points - worker.points_in_use
    match reason:
        case Ineligible.MISSING_SKILLS:
            return f"{tasks} need skills you lack; register more skills if you have them"
        case Ineligible.INSUFFICIENT_CAPACITY if free < 0:  # a task it holds was re-estimated since it was granted
            return (f"{tasks} wait while you hold {worker.points_in_use} points, more than your capacity of "
                    f"{worker.capacity_points}; finish or release a task")
        case Ineligible.INSUFFICIENT_CAPACITY:
            return f"{tasks} need more points than your free capacity ({free} of {worker.capacity_points})"
        case Ineligible.TOO_MANY_TASKS:
            return (
                f"{tasks} wait while you hold {worker.tasks_in_use}/{worker.max_concurrent_tasks} tasks; "
                "finish or release one"
            )
        case Ineligible.INSUFFICIENT_TRUST:
            return f"{tasks} need a higher trust tier than {worker.trust_tier.label}"
        case Ineligible.SENSITIVE_AREA:
            return (f"{tasks} in sensitive areas need the trusted tier (you are {worker.trust_tier.label}); "
                    "an admin grants it with POST /v1/workers/{id}/trust-tier")
        case Ineligible.REPUTATION_HEAD_START:
            return (f"{tasks} of high priority are briefly held for a better-reputed worker; "
                    "ask again in a minute or two")
        case Ineligible.RECENTLY_DECLINED:
            return f"{tasks} you declined recently"
        case Ineligible.REVIEW_BUDGET_FULL:
            assert repo is not None
            return (
                f"{tasks} held back by the review budget of {repo.repo} ({repo.in_flight}/{repo.max_open_prs}); "
                "try again when a PR merges"
            )
        case Ineligible.AREA_LOCKED:
            assert repo is not None
            return f"{tasks} behind an area lock in {repo.repo}; someone is already working in that area"
        case Ineligible.WORKER_OFFLINE:
            return "you are offline; send a heartbeat"
        case Ineligible.WORKER_PAUSED:
            return "you are paused; send a heartbeat with status idle or working"
        case Ineligible.NOT_READY:
            return f"{tasks} not ready"
