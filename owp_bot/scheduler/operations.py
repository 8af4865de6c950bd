"""Domain operations of the scheduler, each one transaction.

Every function here is a generator (see store.py): it yields named statements and events and gets
their results back, so that the rules are written once and run unchanged on SQLite and PostgreSQL.
Each takes `now` as a parameter: time comes from the caller's clock.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from owp_bot.clock import iso
from owp_bot.config import Settings
from owp_bot.errors import Problem, not_found
from owp_bot.scheduler import reputation
from owp_bot.scheduler.ids import new_id
from owp_bot.scheduler.models import (
    HELD,
    IN_FLIGHT,
    LEASED,
    MAX_ISSUE_NUMBER,
    TRANSITIONS,
    Ineligible,
    LeaseState,
    OfferState,
    Priority,
    TaskStatus,
    TrustTier,
)
from owp_bot.scheduler.policy import (
    HEAD_START_PRIORITY,
    ReasonCount,
    RepoLoad,
    TaskView,
    WorkerView,
    describe,
    explain,
    held_for_reputation,
    ineligibility,
    is_online,
    unfit,
    untrusted,
)
from owp_bot.scheduler.store import Emit, Event, Op, Row, one, rows, run

SYSTEM = "system"
ADMIN = "admin"
EXPLAIN_WINDOW = 500  # ready tasks examined, in assignment order, when explaining why a worker gets none
URGENT = json.dumps([int(p) for p in Priority if p >= HEAD_START_PRIORITY])  # the priorities with a head start
BOTTOM = max(Priority) + 1  # ready_candidate walks the priorities below this one: all of them


# ------------------------------------------------------------------ plain data in and out


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A task as a maintainer describes it (API, YAML import or GitHub labels), already normalised."""

    repo: str
    title: str
    key: str | None = None
    url: str | None = None
    issue_number: int | None = None
    estimate_points: int = 1
    required_skills: tuple[str, ...] = ()
    area: str | None = None
    priority: Priority = Priority.NORMAL
    min_trust: TrustTier = TrustTier.BASIC


@dataclass(frozen=True, slots=True)
class RepoSpec:
    repo: str
    max_open_prs: int
    area_locks: bool = True
    lease_ttl: float | None = None
    offer_ttl: float | None = None
    sensitive_areas: tuple[str, ...] = ()  # areas that imply min_trust = trusted


@dataclass(frozen=True, slots=True)
class Explanation:
    summary: str
    reasons: list[ReasonCount]
    ready_tasks: int
    examined: int


@dataclass(frozen=True, slots=True)
class Budget:
    open_prs: int
    leases: int
    offers: int
    in_flight: int
    max_open_prs: int

    @property
    def available(self) -> int:
        return max(0, self.max_open_prs - self.in_flight)


def skills_of(row: Row, column: str = "required_skills") -> list[str]:
    return list(json.loads(row[column]))


@functools.lru_cache(maxsize=4096)
def _skill_set(stored: str) -> frozenset[str]:
    """A stored JSON list of skills as a set: a pool has few distinct ones, and an explanation reads 500 tasks."""
    return frozenset(json.loads(stored))


def task_view(task: Row) -> TaskView:
    return TaskView(
        task_id=task["id"], repo=task["repo"], status=TaskStatus(task["status"]),
        estimate_points=task["estimate_points"], required_skills=_skill_set(task["required_skills"]),
        area=task["area"], min_trust=TrustTier(task["min_trust"]),
    )


def emit(now: float, type_: str, actor: str, target: str | None, repo: str | None, **details: Any) -> Emit:
    return Emit(now, type_, actor, target, repo, {k: v for k, v in details.items() if v is not None})


# ------------------------------------------------------------------ building blocks


def worker_view(worker: Row, now: float, settings: Settings) -> Op[WorkerView]:
    load = yield one("worker_load", worker["id"])
    return view_of(worker, load["tasks"], load["points"], now, settings)


def view_of(worker: Row, tasks_in_use: int, points_in_use: int, now: float, settings: Settings) -> WorkerView:
    return WorkerView(
        worker_id=worker["id"], skills=frozenset(skills_of(worker, "skills")),
        capacity_points=worker["capacity_points"], max_concurrent_tasks=worker["max_concurrent_tasks"],
        points_in_use=points_in_use, tasks_in_use=tasks_in_use, trust_tier=TrustTier(worker["trust_tier"]),
        online=worker["status"] != "offline" and is_online(worker["last_heartbeat"], now, settings.heartbeat_timeout),
        paused=worker["status"] == "paused",
    )


def repo_load(repo: Row) -> RepoLoad:
    """A repo row of `repo_get` (which lists its locked areas) as the policy sees it."""
    return RepoLoad(
        repo=repo["id"], max_open_prs=repo["max_open_prs"],
        in_flight=repo["in_flight"] + repo["external_open_prs"], area_locks=bool(repo["area_locks"]),
        locked_areas=frozenset(json.loads(repo["locked_areas"])),
        sensitive_areas=frozenset(json.loads(repo["sensitive_areas"])),
    )


def repo_of(task: Row) -> Row:
    """The repo that `offer_next`, `lease_next` and `offer_to_answer` bring with a task (columns repo_*): what
    `repo_load` and `ttl` read."""
    columns = task.keys()  # database rows iterate over their values, not their keys
    return {"id": task["repo"], **{key[5:]: task[key] for key in columns if key.startswith("repo_")}}


def move_task(task: Row, new: TaskStatus, worker_id: str | None, now: float,
              pr_url: str | None = None, pr_number: int | None = None) -> Op[Row]:
    """Set a task's status (and link its pull request) and return the task as it is now; a trigger keeps the
    repo's in-flight count and the area lock in step with it (on SQLite tasks_into_flight and tasks_out_of_flight,
    migration 030: in flight are the statuses of models.IN_FLIGHT)."""
    moved: Row = yield one("task_set_status", task["id"], new.value, worker_id, now, pr_url, pr_number)
    return moved


def check_transition(task: Row, new: TaskStatus) -> None:
    current = TaskStatus(task["status"])
    allowed = TRANSITIONS[current]
    if new not in allowed:
        names = ", ".join(sorted(s.value for s in allowed)) or "none (it is final)"
        raise Problem(
            409, f"task {task['id']} is {current.value} and cannot become {new.value}; allowed next: {names}",
            current_status=current.value, allowed=sorted(s.value for s in allowed),
        )


def end_lease(task: Row, state: LeaseState, now: float, actor: str, **details: Any) -> Op[None]:
    lease = yield one("lease_end_of_task", task["id"], state.value, now)
    if lease is not None:
        yield emit(now, f"lease.{state.value}", actor, task["id"], task["repo"],
                    lease_id=lease["id"], worker_id=lease["worker_id"], **details)


def complete_lease(task: Row, new: TaskStatus, now: float, actor: str, pr_url: str | None = None,
                   pr_number: int | None = None) -> Op[Row]:
    """`end_lease(COMPLETED)` then `move_task` (the lease holder keeps the task), in one statement: the task as
    it is now, with the lease that ended, if one was active (columns lease_id, lease_worker_id)."""
    moved: Row = yield one("task_complete_lease", task["id"], new.value, task["worker_id"], now, pr_url, pr_number)
    yield from lease_completed(moved, now, actor)
    return moved


def lease_completed(moved: Row, now: float, actor: str) -> Op[None]:
    """The event of the lease that a statement returning the task's row with lease_id, lease_worker_id ended."""
    if moved["lease_id"] is not None:
        yield emit(now, f"lease.{LeaseState.COMPLETED.value}", actor, moved["id"], moved["repo"],
                   lease_id=moved["lease_id"], worker_id=moved["lease_worker_id"])


def end_offer(task: Row, state: OfferState, now: float, actor: str, reason: str | None = None) -> Op[None]:
    offer = yield one("offer_end_of_task", task["id"], state.value, reason, now)
    if offer is not None:
        yield emit(now, f"offer.{state.value}", actor, task["id"], task["repo"],
                    offer_id=offer["id"], worker_id=offer["worker_id"], reason=reason)


def lapse(task_id: str, now: float, reason: str) -> Op[None]:
    """An offer or lease ran out: end it and give the task back to the pool."""
    task = yield one("task_get", task_id)
    yield from end_offer(task, OfferState.EXPIRED, now, SYSTEM, reason)
    yield from end_lease(task, LeaseState.EXPIRED, now, SYSTEM, reason=reason)
    if TaskStatus(task["status"]) in LEASED | {TaskStatus.OFFERED}:
        yield from move_task(task, TaskStatus.READY, None, now)
        yield emit(now, "task.requeued", SYSTEM, task_id, task["repo"], reason=reason,
                    worker_id=task["worker_id"])


def ttl(repo: Row, column: str, default: float) -> float:
    value = repo[column]
    return float(value) if value is not None else default


def grant_event(row: Row, worker_id: str, now: float, actor: str) -> Emit:
    """The event of an offer or a lease granted: `row` is the task with it (as `offer_next` and `lease_next`
    return them)."""
    if row["status"] == TaskStatus.OFFERED:
        return emit(now, "offer.created", actor, row["id"], row["repo"], offer_id=row["offer_id"],
                    worker_id=worker_id, expires_at=iso(row["expires_at"]))
    return emit(now, "lease.granted", actor, row["id"], row["repo"], lease_id=row["lease_id"], worker_id=worker_id,
                expires_at=iso(row["lease_expires_at"]))


def grant_lease(task: Row, repo: Row, worker_id: str, now: float, settings: Settings,
                actor: str) -> Op[Row]:
    """Lease the task to the worker: the task leased, with its lease (as `leases_active_of_worker` lists it)."""
    lease_id = new_id("l", now)
    cap = now + settings.lease_max
    expires_at = min(now + ttl(repo, "lease_ttl", settings.lease_ttl), cap)
    leased: Row = yield one("lease_grant", lease_id, task["id"], worker_id, now, expires_at, cap)
    yield grant_event(leased, worker_id, now, actor)
    return leased


def load_worker(worker_id: str) -> Op[Row]:
    worker: Row | None = yield one("worker_get", worker_id)
    if worker is None:
        raise not_found("worker", worker_id)
    return worker


def load_task(task_id: str, statement: str = "task_get") -> Op[Row]:
    task: Row | None = yield one(statement, task_id)
    if task is None:
        raise not_found("task", task_id, "list tasks with GET /v1/tasks")
    return task


def load_repo(repo_id: str) -> Op[Row]:
    repo: Row | None = yield one("repo_get", repo_id)
    if repo is None:
        raise not_found("repo", repo_id, f"an admin adds it with PUT /v1/repos/{repo_id}")
    return repo


# ------------------------------------------------------------------ housekeeping


def apply_heartbeats(beats: dict[str, tuple[float, str, str | None]]) -> Op[None]:
    """Write buffered heartbeats (worker id -> time, status, note), all in one statement; a status change is an
    event. A beat older than the one recorded is left out: replicas buffer apart, and a worker's later beat may
    have been written first by the replica it reached."""
    if not beats:
        return
    recorded = {r["id"]: r for r in (yield rows("workers_status_of", json.dumps(list(beats))))}
    newer = {worker_id: beat for worker_id, beat in beats.items()
             if worker_id in recorded and beat[0] >= recorded[worker_id]["last_heartbeat"]}
    if not newer:
        return
    yield run("workers_heartbeat", json.dumps([{"id": worker_id, "ts": ts, "status": status, "note": note}
                                               for worker_id, (ts, status, note) in newer.items()]))
    for worker_id, (ts, status, note) in newer.items():
        previous = recorded[worker_id]["status"]
        if previous != status:
            yield emit(ts, "worker.status", worker_id, worker_id, None, status=status, previous=previous, note=note)


def resume(now: float, threshold: float) -> Op[None]:
    """The first write of a process that just started: when no process of the pool noted it alive for longer than
    `threshold`, the whole pool was down, and nobody could call it. That time does not count against workers:
    their heartbeats, pending offers and active leases move on by it, before anything is judged due."""
    alive_at = (yield one("pool_alive_get"))["alive_at"]
    if alive_at is not None and now - alive_at > threshold:
        yield run("pool_resume", now - alive_at)
        yield emit(now, "pool.resumed", SYSTEM, None, None, down_seconds=now - alive_at)
    yield run("pool_alive_set", now)


def note_alive(now: float) -> Op[None]:
    yield run("pool_alive_set", now)


def expire_due(now: float, settings: Settings) -> Op[None]:
    """Lapse what ran out: offers and leases past their time, and the work of workers gone silent."""
    silent, gone = now - settings.heartbeat_timeout, now - settings.heartbeat_timeout - settings.offline_grace
    if (yield one("anything_due", now, silent, gone))["due"]:
        yield from _expire(now, silent, gone)
    for worker_id, tier in (yield from reputation.apply_tier_rules(now, settings)).items():
        yield from revoke_untrusted_offers(worker_id, tier, now, SYSTEM)


def _expire(now: float, silent: float, gone: float) -> Op[None]:
    for offer in (yield rows("offers_due", now)):
        yield from lapse(offer["task_id"], now, "offer_expired")
    for lease in (yield rows("leases_due", now)):
        yield from lapse(lease["task_id"], now, "lease_expired")
    for worker in (yield rows("workers_stale", silent)):
        yield run("worker_set_offline", worker["id"])
        yield emit(now, "worker.offline", SYSTEM, worker["id"], None, previous=worker["status"])
        for offered in (yield rows("offers_pending_of_worker", worker["id"])):  # rows of tasks
            yield from lapse(offered["id"], now, "worker_offline")
    for lease in (yield rows("leases_of_offline", gone)):
        yield from lapse(lease["task_id"], now, "worker_offline")
    yield run("workers_offline_released", gone)


# ------------------------------------------------------------------ workers


def register_worker(
    worker_id: str, token_hash: str, name: str, github_handle: str | None, skills: list[str],
    capacity_points: int, max_concurrent_tasks: int, trust_tier: TrustTier, now: float,
) -> Op[None]:
    yield run("worker_insert", worker_id, name, github_handle, json.dumps(skills), capacity_points,
              max_concurrent_tasks, int(trust_tier), token_hash, now)
    yield emit(now, "worker.registered", worker_id, worker_id, None, name=name, github_handle=github_handle,
                skills=skills, capacity_points=capacity_points, max_concurrent_tasks=max_concurrent_tasks,
                trust_tier=trust_tier.label)


def worker_by_token(token_hash: str) -> Op[str | None]:
    row = yield one("worker_by_token", token_hash)
    return None if row is None else str(row["id"])


def get_worker(worker_id: str) -> Op[Row]:
    worker = yield from load_worker(worker_id)
    load = yield one("worker_load", worker_id)
    return {**dict(worker), "tasks_in_use": load["tasks"], "points_in_use": load["points"]}


def list_workers(after: str, limit: int) -> Op[list[Row]]:
    return list((yield rows("workers_list", after, limit)))


def set_trust_tier(worker_id: str, tier: TrustTier, reason: str, actor: str, now: float) -> Op[Row]:
    """An admin sets a worker's tier (reputation.set_trust_tier): the worker as it is now. A demoted worker loses
    the offers it no longer fits (revoke_untrusted_offers)."""
    worker, demoted = yield from reputation.set_trust_tier(worker_id, tier, reason, actor, now)
    if demoted:
        yield from revoke_untrusted_offers(worker_id, tier, now, actor)
    return worker


def revoke_untrusted_offers(worker_id: str, tier: TrustTier, now: float, actor: str) -> Op[None]:
    """A worker demoted to `tier` (by an admin or the automatic rules) keeps its leases, work in progress, and loses
    each pending offer whose task now asks for more trust (policy.untrusted: its min_trust, or a sensitive area)."""
    repos: dict[str, RepoLoad] = {}
    for offered in (yield rows("offers_pending_of_worker", worker_id)):  # rows of tasks
        if offered["repo"] not in repos:
            repos[offered["repo"]] = repo_load((yield from load_repo(offered["repo"])))
        reason = untrusted(task_view(offered), tier, repos[offered["repo"]])
        if reason is not None:
            yield from _revoke_offer(offered, reason, now, actor, f"its worker was demoted to {tier.label}")


# ------------------------------------------------------------------ getting work


def _fill(worker_id: str, now: float, settings: Settings, as_offers: bool) -> Op[tuple[WorkerView, int, list[Row]]]:
    """Fill the worker's free capacity with the best eligible tasks, as offers or as leases: the worker's view
    after, how many of those (pending offers, or active leases) it held before, and the ones granted now."""
    # fresh high-priority tasks wait a short while for a better-reputed worker (docs: "Reputation")
    head_start_on = int(settings.reputation_head_start > 0)
    settled = now - settings.reputation_head_start
    worker = yield one("worker_claimant", worker_id, now - settings.heartbeat_timeout, head_start_on, URGENT, settled)
    if worker is None:
        raise not_found("worker", worker_id)
    view = view_of(worker, worker["tasks_in_use"], worker["points_in_use"], now, settings)
    skills = json.dumps(sorted(view.skills))
    rival = bool(worker["rival"])
    # when every urgent task is still in its head start (a bulk import), walk from below them, not past them
    below = HEAD_START_PRIORITY if rival and not worker["urgent_settled"] else BOTTOM
    head_start = (int(HEAD_START_PRIORITY), settled, int(rival), int(below))
    statement, prefix, terms = (("offer_next", "o", (settings.offer_ttl,)) if as_offers else
                                ("lease_next", "l", (settings.lease_ttl, now + settings.lease_max)))
    grants: list[Row] = []
    while view.online and not view.paused and view.tasks_in_use < view.max_concurrent_tasks:
        free = view.capacity_points - view.points_in_use
        if free <= 0:
            break
        task = yield one(statement, free, int(view.trust_tier), skills, worker_id, now - settings.decline_cooldown,
                         *head_start, new_id(prefix, now), now, *terms)
        if task is None:
            break
        # the statement chose a ready task and granted it; the policy must agree, or the operation is undone
        chosen = replace(task_view(task), status=TaskStatus.READY)
        reason = ineligibility(chosen, view, repo_load(repo_of(task)), recently_declined=False)
        if reason is not None:
            raise RuntimeError(f"task {task['id']} passed the query but not the policy: {reason}")
        yield grant_event(task, worker_id, now, worker_id)
        grants.append(task)
        view = replace(view, tasks_in_use=view.tasks_in_use + 1,
                       points_in_use=view.points_in_use + task["estimate_points"])
    return view, worker["offers_pending" if as_offers else "leases_active"], grants


def fetch_work(worker_id: str, now: float, settings: Settings) -> Op[list[Row]]:
    """`GET /v1/work`: lease the best eligible tasks into free capacity, return all active leases (in the order
    of `leases_active_of_worker`: granted, then id; when the worker held none before, they are the ones granted
    now, and the query is not needed)."""
    _, held_before, granted = yield from _fill(worker_id, now, settings, as_offers=False)
    if held_before:
        return list((yield rows("leases_active_of_worker", worker_id)))
    return sorted(granted, key=lambda lease: lease["lease_id"])


def active_leases(worker_id: str) -> Op[list[Row]]:
    """The worker's active leases, taking nothing new (`GET /v1/work/leases`)."""
    yield from load_worker(worker_id)
    return list((yield rows("leases_active_of_worker", worker_id)))


def request_offers(worker_id: str, now: float, settings: Settings) -> Op[tuple[list[Row], WorkerView]]:
    """`POST /v1/work/offers`: reserve the best eligible tasks as offers; the worker as the rules saw it, for
    `explain_no_offers` when there are none (a read of its own: it walks up to EXPLAIN_WINDOW ready tasks and counts
    them all, milliseconds the one writer would otherwise spend on each empty answer while every review budget is
    full)."""
    view, held_before, granted = yield from _fill(worker_id, now, settings, as_offers=True)
    if held_before:
        offers = list((yield rows("offers_pending_of_worker", worker_id)))
    else:  # the ones granted now, in the order of offers_pending_of_worker
        offers = sorted(granted, key=lambda task: (-task["priority"], task["created_at"], task["id"]))
    return offers, view


def explain_no_offers(worker: WorkerView, now: float, settings: Settings) -> Op[Explanation]:
    """Why `request_offers` found nothing for `worker`. It reads just after: a task that fits by then (it became
    ready, its head start or a decline's cooldown ended, a rival went away) is said to be waiting."""
    if not worker.online or worker.paused:
        ready_total = (yield one("ready_count"))["n"]
        absent = Ineligible.WORKER_OFFLINE if not worker.online else Ineligible.WORKER_PAUSED
        message = describe(absent, ready_total, None, worker)
        return Explanation(message, [ReasonCount(absent, ready_total, None, message)], ready_total, 0)
    window = yield rows("ready_window", EXPLAIN_WINDOW)
    # on the window's snapshot: where it holds them all, they need not be counted again
    ready_total = len(window) if len(window) < EXPLAIN_WINDOW else (yield one("ready_count"))["n"]
    if ready_total == 0:
        return Explanation("no tasks are ready in the pool right now; ask again later", [], 0, 0)
    declined = {r["task_id"] for r in (yield rows("declined_since", worker.worker_id, now - settings.decline_cooldown))}
    in_window = json.dumps(sorted({task["repo"] for task in window}))
    loads = {repo["id"]: repo_load(repo) for repo in (yield rows("repos_get", in_window))}
    verdicts: list[tuple[str, Ineligible]] = []
    alike: dict[tuple[Any, ...], Ineligible | None] = {}  # tasks the rules cannot tell apart get one verdict
    for task in window:
        kind = (task["repo"], task["estimate_points"], task["required_skills"], task["area"], task["min_trust"],
                task["id"] in declined)
        if kind not in alike:
            alike[kind] = ineligibility(task_view(task), worker, loads[task["repo"]], recently_declined=kind[-1])
        reason = alike[kind]
        if reason is None and held_for_reputation(task["priority"], task["updated_at"], now,
                                                  settings.reputation_head_start):
            reason = Ineligible.REPUTATION_HEAD_START  # eligible, yet ready_candidate kept it for a rival
        if reason is None:
            return Explanation("a task you can take is waiting now; ask for offers again", [],
                               ready_total, len(verdicts) + 1)
        verdicts.append((task["repo"], reason))
    reasons = explain(verdicts, loads, worker)
    summary = "no offers for you: " + "; ".join(r.message for r in reasons[:4])
    return Explanation(summary, reasons, ready_total, len(window))


def own_offer(worker_id: str, offer_id: str, now: float) -> Op[Row]:
    """The worker's pending offer: its task's row, with the offer's columns (offer_*) and the repo's (repo_*).
    An answer is judged by its own arrival (`now`): one that came after the offer ran out is refused though its
    transaction's prelude, run for an earlier request, has not lapsed the offer yet."""
    task: Row | None = yield one("offer_to_answer", offer_id)
    if task is None or task["offer_worker_id"] != worker_id:
        raise not_found("offer", offer_id, "list your offers with POST /v1/work/offers")
    state = task["offer_state"]
    if state == OfferState.PENDING and task["offer_expires_at"] <= now:
        state = OfferState.EXPIRED
    if state != OfferState.PENDING:
        raise Problem(409, f"offer {offer_id} is {state} and can no longer be answered; "
                           "ask for new offers with POST /v1/work/offers", offer_state=state)
    return task


def accept_offer(worker_id: str, offer_id: str, now: float, settings: Settings) -> Op[tuple[str, float, str]]:
    task = yield from own_offer(worker_id, offer_id, now)
    yield run("offer_resolve", offer_id, OfferState.ACCEPTED.value, None, None, now)
    yield emit(now, "offer.accepted", worker_id, task["id"], task["repo"], offer_id=offer_id, worker_id=worker_id)
    leased = yield from grant_lease(task, repo_of(task), worker_id, now, settings, worker_id)
    lease_id, expires_at = leased["lease_id"], leased["lease_expires_at"]
    return lease_id, expires_at, task["id"]


def reject_offer(worker_id: str, offer_id: str, reason: str, note: str | None, now: float) -> Op[str]:
    task = yield from own_offer(worker_id, offer_id, now)
    yield run("offer_resolve", offer_id, OfferState.REJECTED.value, reason, note, now)
    yield emit(now, "offer.rejected", worker_id, task["id"], task["repo"], offer_id=offer_id, worker_id=worker_id,
                reason=reason, note=note)
    yield from move_task(task, TaskStatus.READY, None, now)
    return str(task["id"])


def renew_lease(worker_id: str, lease_id: str, now: float, settings: Settings) -> Op[tuple[float, float]]:
    lease = yield one("lease_get", lease_id)
    if lease is None or lease["worker_id"] != worker_id:
        raise not_found("lease", lease_id, "list your leases with GET /v1/work")
    if lease["state"] != LeaseState.ACTIVE:
        raise Problem(409, f"lease {lease_id} is {lease['state']}; it can no longer be renewed",
                      lease_state=lease["state"])
    if lease["expires_at"] <= now:  # ran out before this renewal arrived, though its group's prelude ran earlier
        raise Problem(409, f"lease {lease_id} expired at {iso(lease['expires_at'])}; it can no longer be renewed",
                      lease_state=LeaseState.EXPIRED)
    if lease["expires_at"] >= lease["max_expires_at"]:
        raise Problem(409, f"lease {lease_id} is at its cap ({iso(lease['max_expires_at'])}); "
                           "open the PR or release the task")
    task = yield from load_task(lease["task_id"])
    repo = yield from load_repo(task["repo"])
    expires_at = min(now + ttl(repo, "lease_ttl", settings.lease_ttl), lease["max_expires_at"])
    if expires_at <= lease["expires_at"]:  # the repo's TTL was shortened since: a renewal never takes time away
        return lease["expires_at"], lease["max_expires_at"]
    yield run("lease_extend", lease_id, expires_at)
    yield emit(now, "lease.renewed", worker_id, task["id"], task["repo"], lease_id=lease_id, worker_id=worker_id,
                expires_at=iso(expires_at))
    return expires_at, lease["max_expires_at"]


# ------------------------------------------------------------------ task status

WORKER_REPORTS = frozenset({"in_progress", "blocked", "pr_opened", "released"})
HOLDER_MOVES = frozenset({"in_progress", "blocked", "pr_opened"})  # allowed from leased, in_progress, blocked
ADMIN_REPORTS = WORKER_REPORTS | {"merged", "cancelled", "ready"}
_PR_NUMBER = re.compile(r"/pull/(\d+)(?:[/?#].*)?$")
_PR_URL = re.compile(r"^(https?://[^/?#]+)/([\w.-]+/[\w.-]+)/pull/\d+(?:[/?#].*)?$")


def report_status(
    task_id: str, status: str, now: float, *, worker_id: str | None, message: str | None = None,
    pr_url: str | None = None, actor: str | None = None,
) -> Op[Row]:
    """A status report from the lease holder (`worker_id`) or, with `worker_id=None`, from an admin/GitHub."""
    actor = actor or worker_id or ADMIN
    match = _PR_NUMBER.search(pr_url) if pr_url else None
    pr_number = int(match.group(1)) if match else None
    if pr_number is not None and pr_number > MAX_ISSUE_NUMBER:
        raise Problem(422, f"artifact.pr_url {pr_url} names pull request {pr_number}, which cannot exist; "
                           "send the pull request's URL as GitHub shows it")
    if worker_id is not None and status in HOLDER_MOVES and (pr_url or status != "pr_opened"):
        # the common case, one statement: the holder moving its task along (the rules below, in its WHERE)
        link = (pr_url, pr_number) if status == "pr_opened" else (None, None)
        moved: Row | None = yield one("task_report_held", task_id, worker_id, status, now, *link)
        if moved is not None:
            if status == "pr_opened":
                yield from check_reported_pull(moved, pr_url or "", pr_number, now)
            yield from lease_completed(moved, now, actor)
            yield emit(now, f"task.{status}", actor, task_id, moved["repo"], message=message, worker_id=worker_id,
                       previous=moved["previous"], **({"pr_url": link[0]} if link[0] else {}))
            return moved
    task = yield from load_task(task_id, "task_of_report")
    if worker_id is not None:
        if status not in WORKER_REPORTS:
            raise Problem(403, f"a worker may report {', '.join(sorted(WORKER_REPORTS))}; "
                               f"{status} needs the admin token")
        holds = task["worker_id"] == worker_id and TaskStatus(task["status"]) in LEASED | {TaskStatus.PR_OPENED}
        if not holds:
            raise Problem(403, f"you do not hold task {task_id}; only the lease holder may report its status")
        if status == "released" and task["status"] == TaskStatus.PR_OPENED:
            raise Problem(  # its PR is in review: back in the pool it would be open and uncounted by the budget
                409, f"task {task_id} is in review: its pull request {task['pr_url']} is open; close the pull request "
                     "(the pool puts the task back when GitHub says it closed) or ask a maintainer to requeue the task",
                current_status=task["status"], allowed=[TaskStatus.PR_OPENED.value],
            )
    new = TaskStatus.READY if status == "released" else TaskStatus(status)
    check_transition(task, new)
    if new is TaskStatus.PR_OPENED and not pr_url:
        raise Problem(422, "pr_opened needs artifact.pr_url, the pull request's URL")
    if new is TaskStatus.PR_OPENED and task["status"] == new and task["pr_url"] == pr_url:
        return task  # the same report again (a client's retry): nothing new, and no second event to count
    details: dict[str, Any] = {"message": message, "worker_id": task["worker_id"], "previous": task["status"]}
    if new is TaskStatus.READY:
        lease_state = LeaseState.RELEASED if status == "released" else LeaseState.REVOKED
        yield from end_lease(task, lease_state, now, actor)
        yield from end_offer(task, OfferState.REVOKED, now, actor)
        moved = yield from move_task(task, new, None, now)
    elif new in (TaskStatus.PR_OPENED, TaskStatus.MERGED):
        if worker_id is not None and pr_url:  # a worker's pr_opened (GitHub's own links are not checked again)
            yield from check_reported_pull(task, pr_url, pr_number, now)
        moved = yield from complete_lease(task, new, now, actor, pr_url, pr_number)
        if pr_url:
            details["pr_url"] = pr_url
    elif new is TaskStatus.CANCELLED:
        yield from end_lease(task, LeaseState.REVOKED, now, actor)
        yield from end_offer(task, OfferState.REVOKED, now, actor)
        moved = yield from move_task(task, new, None, now)
    else:  # in_progress, blocked: the lease goes on
        moved = yield from move_task(task, new, task["worker_id"], now)
    yield emit(now, f"task.{status}", actor, task_id, task["repo"], **details)
    return moved


def check_reported_pull(task: Row, pr_url: str, pr_number: int | None, now: float) -> Op[None]:
    """A worker's pr_opened on a repo the GitHub App is installed on, an issue's task or an imported one: the URL
    must be a pull request of the task's repo (422 otherwise), and one outbox job reads it from GitHub
    (github_operations.report_checked): the report completes the lease at once, and GitHub's answer confirms it or
    takes it back. Elsewhere (a repo or pool without the app) the URL is taken on trust: nothing could confirm it.
    `task` brings its repo's installation_id (task_report_held, task_of_report): a lookup of its own would cost
    every report a statement, also where there is nothing to check."""
    if task["installation_id"] is None:
        return
    match = _PR_URL.match(pr_url)
    if match is None or pr_number is None or match.group(2).lower() != task["repo"].lower():
        base = match.group(1) if match else "https://github.com"
        raise Problem(422, f"artifact.pr_url {pr_url} is not a pull request of {task['repo']}, the repo of task "
                           f"{task['id']}; send your pull request's URL there, {base}/{task['repo']}/pull/<number>")
    # the outbox's issue_number column holds the PR's number (pulls are issues on GitHub), its body the task
    yield run("gh_outbox_insert", "check_pull", task["repo"], pr_number, task["id"], now)


# ------------------------------------------------------------------ repos


def upsert_repo(spec: RepoSpec, now: float, actor: str = ADMIN) -> Op[tuple[Row, bool]]:
    """Create or update a repo: the repo as it is now, and whether it was created. An area that becomes sensitive
    takes its pending offers from workers below trusted (leases are kept: work in progress)."""
    existing = yield one("repo_get", spec.repo)
    if existing is None:
        # a repository id the pool has under another name left this one behind: its late deliveries are not for it
        yield run("gh_repo_names_release", spec.repo)
        yield run("repo_insert", spec.repo, spec.max_open_prs, int(spec.area_locks), spec.lease_ttl,
                  spec.offer_ttl, now)
    else:
        yield run("repo_update", spec.repo, spec.max_open_prs, int(spec.area_locks), spec.lease_ttl,
                  spec.offer_ttl, now)
        if bool(existing["area_locks"]) != spec.area_locks:
            yield run("area_locks_clear_repo", spec.repo)
            if spec.area_locks:
                yield run("area_locks_rebuild_repo", spec.repo)
    yield run("rep_repo_set_sensitive", spec.repo, json.dumps(sorted(spec.sensitive_areas)))
    yield emit(now, "repo.created" if existing is None else "repo.updated", actor, spec.repo, spec.repo,
                max_open_prs=spec.max_open_prs, area_locks=spec.area_locks, lease_ttl=spec.lease_ttl,
                offer_ttl=spec.offer_ttl, sensitive_areas=sorted(spec.sensitive_areas) or None)
    repo = yield one("repo_get", spec.repo)
    newly_sensitive = set() if existing is None else (
        set(spec.sensitive_areas) - set(json.loads(existing["sensitive_areas"])))
    if newly_sensitive:
        load = repo_load(repo)
        for offered in (yield rows("offers_pending_in_repo", spec.repo)):  # rows of tasks, with their worker's tier
            reason = untrusted(task_view(offered), TrustTier(offered["worker_trust_tier"]), load)
            if reason is not None and offered["area"] in newly_sensitive:
                yield from _revoke_offer(offered, reason, now, actor, f"its area {offered['area']} became sensitive")
    return repo, existing is None


def get_repo(repo_id: str) -> Op[tuple[Row, Budget]]:
    repo = yield from load_repo(repo_id)
    return repo, (yield from budget(repo))


def budget(repo: Row) -> Op[Budget]:
    counts = {r["status"]: r["n"] for r in (yield rows("repo_counts", repo["id"]))}
    return Budget(
        open_prs=counts.get("pr_opened", 0) + repo["external_open_prs"],
        leases=sum(counts.get(s.value, 0) for s in LEASED), offers=counts.get("offered", 0),
        in_flight=repo["in_flight"] + repo["external_open_prs"], max_open_prs=repo["max_open_prs"],
    )


def list_repos() -> Op[list[tuple[Row, Budget]]]:
    found = []
    for repo in (yield rows("repos_list")):
        found.append((repo, (yield from budget(repo))))
    return found


# ------------------------------------------------------------------ tasks


def _spec_differs(task: Row, spec: TaskSpec) -> bool:
    return (task["title"], task["url"], task["issue_number"], task["estimate_points"], skills_of(task),
            task["area"], task["priority"], task["min_trust"]) != (
        spec.title, spec.url, spec.issue_number, spec.estimate_points, list(spec.required_skills), spec.area,
        int(spec.priority), int(spec.min_trust))


def _asks_more(task: Row, spec: TaskSpec) -> bool:
    """Whether `spec` asks more of a worker than `task` did: more points, another skill or a higher trust tier."""
    return (spec.estimate_points > task["estimate_points"] or not set(spec.required_skills) <= set(skills_of(task))
            or spec.min_trust > task["min_trust"])


def put_task(spec: TaskSpec, now: float, source: str, actor: str = ADMIN) -> Op[tuple[Row, str]]:
    """Create a task, or update the one with the same key (a GitHub issue's task: the same issue): returns it and
    `created|updated|unchanged`. Keys and issues never meet: key `12` and issue #12 are two tasks.

    A held task re-specified to ask more of its worker keeps its lease, and loses its offer when it no longer fits
    (revoke_unfit_offers)."""
    repo = yield from load_repo(spec.repo)
    skills = json.dumps(list(spec.required_skills))
    if source == "github":
        existing = yield one("task_of_issue", spec.repo, spec.issue_number)
    else:
        existing = None if spec.key is None else (yield one("task_by_key", spec.repo, spec.key))
    if existing is None:
        task_id = new_id("t", now)
        yield run("task_insert", task_id, spec.repo, spec.key, spec.title, spec.url, spec.issue_number,
                  spec.estimate_points, skills, spec.area, int(spec.priority), int(spec.min_trust), source, now)
        outcome = "created"
    elif _spec_differs(existing, spec):
        task_id = existing["id"]
        if existing["area"] != spec.area and TaskStatus(existing["status"]) in IN_FLIGHT:
            raise Problem(409, f"task {task_id} is {existing['status']}; its area can change only while it is "
                               "ready (release or requeue it first)")
        yield run("task_update_fields", task_id, spec.title, spec.url, spec.issue_number, spec.estimate_points,
                  skills, spec.area, int(spec.priority), int(spec.min_trust), now)
        yield run("task_skills_clear", task_id)
        outcome = "updated"
    else:
        return existing, "unchanged"
    for skill in spec.required_skills:
        yield run("task_skill_insert", task_id, skill)
    yield emit(now, f"task.{outcome}", actor, task_id, spec.repo, title=spec.title, key=spec.key, source=source,
                estimate_points=spec.estimate_points, required_skills=list(spec.required_skills), area=spec.area,
                priority=spec.priority.label, min_trust=spec.min_trust.label)
    task = yield one("task_get", task_id)
    if existing is not None and TaskStatus(existing["status"]) in HELD and _asks_more(existing, spec):
        task = yield from revoke_unfit_offers(task, repo, now, actor)
    return task, outcome


def revoke_unfit_offers(task: Row, repo: Row, now: float, actor: str) -> Op[Row]:
    """A task a worker holds, re-specified to ask more of it (put_task): the task as it is now.

    A lease is kept: it is work in progress, and its worker, over capacity now, is granted nothing until it is below
    again (policy.ineligibility). An offer is a reservation the worker has not accepted, and accepting it must not
    commit the worker beyond what it registered: the task's offer is revoked when the task no longer fits the worker
    beside what else it holds (policy.unfit), and while the worker's points are still over its capacity, so are its
    other offers, the last in assignment order first."""
    worker = yield from load_worker(task["worker_id"])
    load = yield one("worker_load", worker["id"])  # with the task as it is now
    points, offered = load["points"], task["status"] == TaskStatus.OFFERED
    if not offered and points <= worker["capacity_points"]:
        return task
    if offered:
        besides = WorkerView(
            worker_id=worker["id"], skills=frozenset(skills_of(worker, "skills")),
            capacity_points=worker["capacity_points"], max_concurrent_tasks=worker["max_concurrent_tasks"],
            points_in_use=points - task["estimate_points"], tasks_in_use=load["tasks"] - 1,
            trust_tier=TrustTier(worker["trust_tier"]), online=True, paused=False,  # unfit asks neither
        )
        reason = unfit(task_view(task), besides, repo_load(repo))
        if reason is not None:
            task = yield from _revoke_offer(task, reason, now, actor, "it was re-specified")
            points -= task["estimate_points"]
    if points > worker["capacity_points"]:
        for other in reversed(list((yield rows("offers_pending_of_worker", worker["id"])))):
            if points <= worker["capacity_points"]:
                break
            if other["id"] != task["id"]:
                yield from _revoke_offer(other, Ineligible.INSUFFICIENT_CAPACITY, now, actor,
                                         f"task {task['id']}, which its worker holds, was re-estimated")
                points -= other["estimate_points"]
    return task


def _revoke_offer(task: Row, reason: Ineligible, now: float, actor: str, why: str) -> Op[Row]:
    """Revoke the offer of `task` (offered) and put it back in the pool: the task as it is now."""
    yield from end_offer(task, OfferState.REVOKED, now, actor, reason.value)
    moved = yield from move_task(task, TaskStatus.READY, None, now)
    yield emit(now, "task.requeued", actor, task["id"], task["repo"], reason=reason.value, worker_id=task["worker_id"],
               message=f"offer revoked: {why}, and it no longer fits its worker ({reason.value})")
    return moved


def import_tasks(repos: list[RepoSpec], specs: Iterable[tuple[int, TaskSpec]], now: float,
                 source: str = "yaml") -> Op[list[tuple[int, str, Row | None, str | None]]]:
    """Apply an import in one transaction: (entry index, outcome, task, error) per entry."""
    for repo in repos:
        yield from upsert_repo(repo, now)
    results: list[tuple[int, str, Row | None, str | None]] = []
    for index, spec in specs:
        try:
            task, outcome = yield from put_task(spec, now, source)
        except Problem as problem:
            results.append((index, "rejected", None, problem.detail))
        else:
            results.append((index, outcome, task, None))
    return results


def get_task(task_id: str, history_limit: int = 200) -> Op[tuple[Row, list[Event]]]:
    task = yield from load_task(task_id)
    history = [Event.from_row(r) for r in (yield rows("events_for_target", task_id, history_limit))]
    return task, history


def list_tasks(after: str, repo: str | None, status: str | None, area: str | None, skill: str | None,
               worker_id: str | None, limit: int) -> Op[list[Row]]:
    return list((yield rows("tasks_list", after, repo, status, area, skill, worker_id, limit)))


# ------------------------------------------------------------------ events


def list_events(after: int, type_: str | None, actor: str | None, target: str | None, repo: str | None,
                since: float | None, until: float | None, limit: int) -> Op[list[Event]]:
    found = yield rows("events_page", after, type_, actor, target, repo, since, until, limit)
    return [Event.from_row(r) for r in found]


def last_event_seq() -> Op[int]:
    return int((yield one("events_last_seq"))["seq"])
