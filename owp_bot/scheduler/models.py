"""Domain vocabulary: task statuses and their transitions, priorities, trust tiers, reasons."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class TaskStatus(StrEnum):
    READY = "ready"
    OFFERED = "offered"
    LEASED = "leased"
    IN_PROGRESS = "in_progress"
    BLOCKED = "blocked"
    PR_OPENED = "pr_opened"
    MERGED = "merged"
    CANCELLED = "cancelled"


# Work in flight: counts against the repo's review budget and holds the area lock.
IN_FLIGHT = frozenset(
    {TaskStatus.OFFERED, TaskStatus.LEASED, TaskStatus.IN_PROGRESS, TaskStatus.BLOCKED, TaskStatus.PR_OPENED}
)
# Held by a worker's lease: counts against the worker's capacity and can expire.
LEASED = frozenset({TaskStatus.LEASED, TaskStatus.IN_PROGRESS, TaskStatus.BLOCKED})
HELD = LEASED | {TaskStatus.OFFERED}
# Issue and pull request numbers are 32-bit integers in the database, as on GitHub.
MAX_ISSUE_NUMBER = 2**31 - 1

TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.READY: frozenset({TaskStatus.OFFERED, TaskStatus.LEASED, TaskStatus.CANCELLED}),
    TaskStatus.OFFERED: frozenset({TaskStatus.LEASED, TaskStatus.READY, TaskStatus.CANCELLED}),
    TaskStatus.LEASED: frozenset(
        {TaskStatus.IN_PROGRESS, TaskStatus.BLOCKED, TaskStatus.PR_OPENED, TaskStatus.READY,
         TaskStatus.MERGED, TaskStatus.CANCELLED}
    ),
    TaskStatus.IN_PROGRESS: frozenset(
        {TaskStatus.IN_PROGRESS, TaskStatus.BLOCKED, TaskStatus.PR_OPENED, TaskStatus.READY,
         TaskStatus.MERGED, TaskStatus.CANCELLED}
    ),
    TaskStatus.BLOCKED: frozenset(
        {TaskStatus.IN_PROGRESS, TaskStatus.BLOCKED, TaskStatus.PR_OPENED, TaskStatus.READY,
         TaskStatus.MERGED, TaskStatus.CANCELLED}
    ),
    TaskStatus.PR_OPENED: frozenset(
        {TaskStatus.PR_OPENED, TaskStatus.MERGED, TaskStatus.READY, TaskStatus.CANCELLED}
    ),
    TaskStatus.MERGED: frozenset(),
    TaskStatus.CANCELLED: frozenset({TaskStatus.READY}),
}


class Priority(IntEnum):
    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3

    @property
    def label(self) -> str:
        return self.name.lower()


class TrustTier(IntEnum):
    UNTRUSTED = 0
    BASIC = 1
    TRUSTED = 2

    @property
    def label(self) -> str:
        return self.name.lower()


class WorkerStatus(StrEnum):
    IDLE = "idle"
    WORKING = "working"
    PAUSED = "paused"
    OFFLINE = "offline"


class OfferState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"
    REVOKED = "revoked"


class LeaseState(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"  # the task reached pr_opened (or merged) while held
    RELEASED = "released"
    EXPIRED = "expired"
    REVOKED = "revoked"  # an admin or GitHub took the task back
    VOIDED = "voided"  # completed, but GitHub does not show the reported PR as the worker's (github_operations)


class Ineligible(StrEnum):
    """Why a task cannot go to a worker; the order of the rules in policy.py."""

    NOT_READY = "not_ready"
    WORKER_OFFLINE = "worker_offline"
    WORKER_PAUSED = "worker_paused"
    MISSING_SKILLS = "missing_skills"
    TOO_MANY_TASKS = "too_many_tasks"
    INSUFFICIENT_CAPACITY = "insufficient_capacity"
    INSUFFICIENT_TRUST = "insufficient_trust"
    SENSITIVE_AREA = "sensitive_area"
    RECENTLY_DECLINED = "recently_declined"
    REVIEW_BUDGET_FULL = "review_budget_full"
    AREA_LOCKED = "area_locked"
    REPUTATION_HEAD_START = "reputation_head_start"  # eligible, but held briefly for a better-reputed worker


def normalise_skill(skill: str) -> str:
    return " ".join(skill.strip().lower().split())


def normalise_skills(skills: list[str] | tuple[str, ...]) -> list[str]:
    return sorted({normalise_skill(s) for s in skills if s.strip()})
