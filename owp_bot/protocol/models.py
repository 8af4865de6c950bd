"""Wire models of the Open Work Protocol: request bodies, answers and problems.

They are the source of the schemas in the committed OpenAPI spec (`owp openapi` regenerates it; a test
fails when the two disagree). Requests forbid unknown fields, so a typo is an error, not a silent no-op.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from owp_bot.config import MAX_TTL, ConfigError, parse_duration
from owp_bot.scheduler.models import MAX_ISSUE_NUMBER, normalise_skills

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Skill = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50,
                                         pattern=r"^[A-Za-z0-9][A-Za-z0-9 .+#_/-]*$")]
GitHubHandle = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?$")]
RepoName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")]
Area = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=64,
                                        pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")]
Note = Annotated[str, StringConstraints(max_length=2000)]
# printable ASCII, as URLs are sent (percent-encoded); `\S` would differ between ECMA and Rust regex
Url = Annotated[str, StringConstraints(pattern=r"^https?://[!-~]+$", max_length=2000)]
Duration = Annotated[
    Annotated[int, Field(ge=1, le=MAX_TTL)]
    | Annotated[str, StringConstraints(pattern=r"^\s*[1-9][0-9]*(\.[0-9]+)?\s*[smhd]?\s*$")],
    Field(description="seconds, or a number with s/m/h/d: 300, 5m, 4h, 1d; at most 365d"),
]
OWNER_OR_NAME = r"^[A-Za-z0-9_.-]{1,100}$"


def _types_taken(annotation: Any) -> set[type]:
    """The types a field's annotation names, however nested (`Annotated[str, …] | None` -> str, NoneType)."""
    found, pending = set(), [annotation]
    while pending:
        item = pending.pop()
        pending.extend(get_args(item))
        if isinstance(origin := get_origin(item) or item, type):
            found.add(origin)
    return found


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_others(cls, value: Any, info: ValidationInfo) -> Any:
        """JSON's `true` is not the number 1, and YAML's not the word: refuse a boolean where the field takes none."""
        if isinstance(value, bool) and info.field_name is not None:
            taken = _types_taken(cls.model_fields[info.field_name].annotation)
            if bool not in taken:
                word = str(value).lower()
                text = any(issubclass(t, str) for t in taken) and list not in taken
                raise PydanticCustomError("bool_refused", "{word} is a boolean, and {field} takes none{hint}", {
                    "word": word, "field": info.field_name,
                    "hint": f'; to mean the word, quote it: "{word}"' if text else ""})
        return value


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PriorityName(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    critical = "critical"


class TrustName(StrEnum):
    untrusted = "untrusted"
    basic = "basic"
    trusted = "trusted"


def _skills(value: list[str]) -> list[str]:
    return normalise_skills(value)


# ------------------------------------------------------------------ problems


class Problem(Answer):
    """An error (RFC 9457): `detail` says what happened and what to do next."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None


# ------------------------------------------------------------------ workers


class RegisterWorker(Request):
    name: Name
    github_handle: GitHubHandle | None = None
    skills: list[Skill] = Field(default_factory=list, max_length=50)
    capacity_points: int = Field(ge=1, le=1000, description="how many estimate points you take on at once")
    max_concurrent_tasks: int = Field(1, ge=1, le=50)

    _normalise = field_validator("skills")(_skills)


class Registered(Answer):
    worker_id: str
    token: str = Field(description="the bearer token: shown once, stored only as a hash")


class WorkerState(StrEnum):
    idle = "idle"
    working = "working"
    paused = "paused"


class Heartbeat(Request):
    status: WorkerState = WorkerState.idle
    note: Note | None = None


class HeartbeatAck(Answer):
    ok: bool
    server_time: datetime


class Worker(Answer):
    worker_id: str
    name: str
    github_handle: str | None
    skills: list[str]
    capacity_points: int
    max_concurrent_tasks: int
    status: Literal["idle", "working", "paused", "offline"]
    online: bool
    note: str | None
    trust_tier: TrustName
    last_heartbeat: datetime
    points_in_use: int
    tasks_in_use: int
    registered_at: datetime
    reputation: float = Field(description="0-100; new workers start at 50 (docs/protocol.md, Reputation)")


class WorkerList(Answer):
    workers: list[Worker]
    next_cursor: str | None


# ------------------------------------------------------------------ work


class Lease(Answer):
    lease_id: str
    task_id: str
    repo: str
    title: str
    url: str | None
    estimate_points: int
    priority: PriorityName
    required_skills: list[str]
    area: str | None
    status: str
    lease_expires_at: datetime
    renewable_until: datetime


class Work(Answer):
    worker_id: str
    leases: list[Lease]


class Offer(Answer):
    offer_id: str
    task_id: str
    repo: str
    title: str
    url: str | None
    estimate_points: int
    priority: PriorityName
    required_skills: list[str]
    area: str | None
    expires_at: datetime


class NoWorkReason(Answer):
    reason: str
    count: int
    repo: str | None
    message: str


class NoWorkExplanation(Answer):
    summary: str
    reasons: list[NoWorkReason]
    ready_tasks: int
    examined: int = Field(description="ready tasks examined, in assignment order")


class Offers(Answer):
    offers: list[Offer]
    why_none: NoWorkExplanation | None = Field(None, description="present when there are no offers")


class OfferAccepted(Answer):
    lease_id: str
    task_id: str
    lease_expires_at: datetime


class RejectReason(StrEnum):
    insufficient_time = "insufficient_time"
    unclear_requirements = "unclear_requirements"
    skill_mismatch = "skill_mismatch"
    other = "other"


class RejectOffer(Request):
    reason: RejectReason
    note: Note | None = None


class OfferRejected(Answer):
    ok: bool
    offer_id: str
    task_id: str


class LeaseRenewed(Answer):
    lease_id: str
    lease_expires_at: datetime
    renewable_until: datetime


# ------------------------------------------------------------------ tasks


class TaskStatusName(StrEnum):
    ready = "ready"
    offered = "offered"
    leased = "leased"
    in_progress = "in_progress"
    blocked = "blocked"
    pr_opened = "pr_opened"
    merged = "merged"
    cancelled = "cancelled"


class ReportedStatus(StrEnum):
    in_progress = "in_progress"
    blocked = "blocked"
    pr_opened = "pr_opened"
    released = "released"
    merged = "merged"
    cancelled = "cancelled"
    ready = "ready"


class Artifact(Request):
    pr_url: Url | None = None


class StatusReport(Request):
    model_config = ConfigDict(json_schema_extra={  # pr_opened carries the pull request's URL
        "if": {"properties": {"status": {"const": "pr_opened"}}, "required": ["status"]},
        "then": {"required": ["artifact"],
                 "properties": {"artifact": {"type": "object", "required": ["pr_url"],
                                             "properties": {"pr_url": {"type": "string"}}}}},
    })
    status: ReportedStatus
    message: Note | None = None
    artifact: Artifact | None = None


class NewTask(Request):
    repo: RepoName
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    key: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = Field(
        None, description="your id for the task, unique per repo; creating it again with the same key updates "
                          "it. Never an issue: key `12` and the task made from issue #12 are two tasks")
    url: Url | None = None
    issue_number: int | None = Field(None, ge=1, le=MAX_ISSUE_NUMBER)
    estimate_points: int = Field(1, ge=1, le=100)
    required_skills: list[Skill] = Field(default_factory=list, max_length=20)
    area: Area | None = None
    priority: PriorityName = PriorityName.normal
    min_trust: TrustName = TrustName.basic

    _normalise = field_validator("required_skills")(_skills)


class Task(Answer):
    task_id: str
    repo: str
    key: str | None = Field(description="the key it was created with; none for a task made from a GitHub issue")
    title: str
    url: str | None
    issue_number: int | None
    estimate_points: int
    required_skills: list[str]
    area: str | None
    priority: PriorityName
    min_trust: TrustName
    status: TaskStatusName
    worker_id: str | None
    pr_url: str | None
    pr_number: int | None
    source: str
    created_at: datetime
    updated_at: datetime


class AuditEvent(Answer):
    seq: int
    ts: datetime
    type: str
    actor: str
    target: str | None
    repo: str | None
    details: dict[str, Any]


class TaskDetail(Task):
    history: list[AuditEvent]


class TaskCreated(Answer):
    outcome: Literal["created", "updated", "unchanged"]
    task: Task


class TaskList(Answer):
    tasks: list[Task]
    next_cursor: str | None


class ImportEntry(Answer):
    index: int
    key: str | None
    outcome: Literal["created", "updated", "unchanged", "rejected"]
    task_id: str | None
    errors: list[str]


class ImportReport(Answer):
    created: int
    updated: int
    unchanged: int
    rejected: int
    repos: list[str]
    entries: list[ImportEntry]


# ------------------------------------------------------------------ repos


class RepoSettings(Request):
    max_open_prs: int = Field(ge=0, le=1000, description="the review budget: open PRs + leases + offers")
    area_locks: StrictBool = True
    lease_ttl: Duration | None = None
    offer_ttl: Duration | None = None
    sensitive_areas: list[Area] = Field(default_factory=list, max_length=100,
                                        description="areas whose tasks need a trusted worker")

    @field_validator("lease_ttl", "offer_ttl")
    @classmethod
    def _duration(cls, value: int | str | None) -> int | str | None:
        if value is not None:
            try:
                parse_duration(value, most=MAX_TTL)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return value


class Budget(Answer):
    open_prs: int
    leases: int
    offers: int
    in_flight: int
    max_open_prs: int
    available: int


class Repo(Answer):
    repo: str
    max_open_prs: int
    area_locks: bool
    lease_ttl_seconds: float | None
    offer_ttl_seconds: float | None
    sensitive_areas: list[str]
    budget: Budget
    created_at: datetime
    updated_at: datetime


class RepoList(Answer):
    repos: list[Repo]


# ------------------------------------------------------------------ audit and health


class EventPage(Answer):
    events: list[AuditEvent]
    next_cursor: int | None


class Health(Answer):
    status: Literal["ok", "unavailable"]
    version: str
    checks: dict[str, bool] = Field(default_factory=dict)


# ------------------------------------------------------------------ trust and reputation


class TrustTierChange(Request):
    tier: TrustName
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)] = Field(
        description="why; recorded in the audit event with the actor")


class ReputationMetrics(Answer):
    completion_rate: float | None = Field(description="leases that reached a PR / leases ended")
    on_time_delivery: float | None = Field(description="leases that reached a PR / (those + expired)")
    avg_pr_quality: float | None = Field(description="(merged + approvals) / (merged + closed + reviews)")
    pr_merge_rate: float | None
    total_tasks: int = Field(description="leases ended: completed, expired or released")
    completed: int
    expired: int
    released: int
    declined: int
    merged: int
    closed_unmerged: int
    approved: int
    changes: int


class Reputation(Answer):
    worker_id: str
    reputation_score: float = Field(description="0-100, the Beta posterior mean; see docs/protocol.md")
    trust_tier: TrustName
    evidence_good: float
    evidence_bad: float
    prior_score: float
    metrics: ReputationMetrics


class ReputationList(Answer):
    reputations: list[Reputation]
    next_cursor: str | None


# ------------------------------------------------------------------ analytics

Period = Literal["1d", "7d", "30d", "90d"]


class AnalyticsMetrics(Answer):
    tasks_completed: int = Field(description="tasks merged in the period")
    avg_completion_time: float | None = Field(
        description="seconds from lease granted to PR opened (voided leases left out: they opened none)")
    avg_time_to_merge: float | None = Field(description="seconds from task created to merged")
    worker_utilization: float | None = Field(
        description="lease time in the period / (workers who held a lease x period length)")
    pr_merge_rate: float | None
    lease_expiry_rate: float | None
    offer_acceptance_rate: float | None
    review_budget_saturation: float | None = Field(description="share of budget samples with the budget full")
    ready_waiting_share: float | None = Field(
        description="share of budget samples with ready tasks waiting while the budget had room")
    leases_granted: int
    leases_expired: int
    offers_made: int
    offers_accepted: int
    offers_rejected: int
    offers_expired: int
    prs_opened: int = Field(description="pull requests reported or linked, less the reports voided")
    prs_merged: int
    prs_closed: int
    active_workers: int
    budget_samples: int
    bottlenecks: list[str] = Field(description="code_review, contributors, stale_leases, offer_declines")
    bottleneck_reasons: dict[str, str]


class RepoAnalytics(Answer):
    repo: str
    period: Period
    since: datetime
    until: datetime
    metrics: AnalyticsMetrics


class PoolAnalytics(Answer):
    period: Period
    since: datetime
    until: datetime
    repos: int
    metrics: AnalyticsMetrics


class SeriesPoint(Answer):
    ts: datetime
    tasks_completed: int
    leases_granted: int
    leases_expired: int
    prs_merged: int
    prs_closed: int
    offers_made: int
    offers_accepted: int


class TimeSeries(Answer):
    bucket: Literal["hour", "day"]
    repo: str | None
    period: Period
    points: list[SeriesPoint]


# ------------------------------------------------------------------ rate limits


class RateLimitRule(Answer):
    credential: Literal["worker", "admin", "address", "register", "failed_auth"]
    requests: int
    per_seconds: float


class RateLimitCount(Answer):
    route: str
    credential: str
    rejected: int


class RateLimitRejection(Answer):
    ts: datetime
    route: str
    credential: str


class RateLimits(Answer):
    limits: list[RateLimitRule]
    exempt: list[str]
    rejections: list[RateLimitCount]
    recent: list[RateLimitRejection]
