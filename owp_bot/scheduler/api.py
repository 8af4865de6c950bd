"""REST handlers of the worker protocol and the admin API: thin, they call the scheduler and shape answers."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, field_validator

from owp_bot.clock import to_datetime
from owp_bot.errors import Problem
from owp_bot.keys import SCHEDULER
from owp_bot.protocol import models as wire
from owp_bot.protocol.routes import Api, Call
from owp_bot.scheduler import operations as ops
from owp_bot.scheduler.importer import ParsedImport, parse_import, repo_spec, task_spec
from owp_bot.scheduler.models import Priority, TrustTier
from owp_bot.scheduler.policy import is_online
from owp_bot.scheduler.service import NOW, Scheduler
from owp_bot.scheduler.store import Event, Row, compact_json

# path parameters of ids carry their shape, so /v1/workers/register never matches /v1/workers/{worker_id}
WORKER_ID, OFFER_ID, LEASE_ID, TASK_ID = (f"{{{name}_id:{name[0]}_[0-9a-z]{{1,64}}}}"
                                          for name in ("worker", "offer", "lease", "task"))
workers_api = Api("workers")
work_api = Api("work")
admin_api = Api("admin")
NO_STORE = {"Cache-Control": "no-store"}


def _scheduler(call: Call) -> Scheduler:
    return call.request.app[SCHEDULER]


def _worker_id(call: Call) -> str:
    assert call.worker_id is not None  # the endpoint's auth guarantees it
    return call.worker_id


# ------------------------------------------------------------------ row -> wire


def task_model(row: Row) -> wire.Task:
    return wire.Task(
        task_id=row["id"], repo=row["repo"], key=row["external_key"], title=row["title"], url=row["url"],
        issue_number=row["issue_number"], estimate_points=row["estimate_points"],
        required_skills=ops.skills_of(row), area=row["area"], priority=Priority(row["priority"]).label,
        min_trust=TrustTier(row["min_trust"]).label, status=row["status"], worker_id=row["worker_id"],
        pr_url=row["pr_url"], pr_number=row["pr_number"], source=row["source"],
        created_at=to_datetime(row["created_at"]), updated_at=to_datetime(row["updated_at"]),
    )


def lease_model(row: Row) -> wire.Lease:
    return wire.Lease(
        lease_id=row["lease_id"], task_id=row["id"], repo=row["repo"], title=row["title"], url=row["url"],
        estimate_points=row["estimate_points"], priority=Priority(row["priority"]).label,
        required_skills=ops.skills_of(row), area=row["area"], status=row["status"],
        lease_expires_at=to_datetime(row["lease_expires_at"]), renewable_until=to_datetime(row["max_expires_at"]),
    )


def offer_model(row: Row) -> wire.Offer:
    return wire.Offer(
        offer_id=row["offer_id"], task_id=row["id"], repo=row["repo"], title=row["title"], url=row["url"],
        estimate_points=row["estimate_points"], priority=Priority(row["priority"]).label,
        required_skills=ops.skills_of(row), area=row["area"], expires_at=to_datetime(row["expires_at"]),
    )


def worker_model(row: Row, scheduler: Scheduler) -> wire.Worker:
    online = row["status"] != "offline" and is_online(
        row["last_heartbeat"], scheduler.now(), scheduler.settings.heartbeat_timeout)
    return wire.Worker(
        worker_id=row["id"], name=row["name"], github_handle=row["github_handle"], skills=ops.skills_of(row, "skills"),
        capacity_points=row["capacity_points"], max_concurrent_tasks=row["max_concurrent_tasks"],
        status=row["status"] if online else "offline", online=online, note=row["note"],
        trust_tier=TrustTier(row["trust_tier"]).label, last_heartbeat=to_datetime(row["last_heartbeat"]),
        points_in_use=row["points_in_use"], tasks_in_use=row["tasks_in_use"],
        registered_at=to_datetime(row["created_at"]), reputation=row["reputation"],
    )


def repo_model(row: Row, budget: ops.Budget) -> wire.Repo:
    return wire.Repo(
        repo=row["id"], max_open_prs=row["max_open_prs"], area_locks=bool(row["area_locks"]),
        lease_ttl_seconds=row["lease_ttl"], offer_ttl_seconds=row["offer_ttl"],
        sensitive_areas=json.loads(row["sensitive_areas"]),
        budget=wire.Budget(open_prs=budget.open_prs, leases=budget.leases, offers=budget.offers,
                           in_flight=budget.in_flight, max_open_prs=budget.max_open_prs, available=budget.available),
        created_at=to_datetime(row["created_at"]), updated_at=to_datetime(row["updated_at"]),
    )


def event_model(event: Event) -> wire.AuditEvent:
    return wire.AuditEvent(seq=event.seq, ts=to_datetime(event.ts), type=event.type, actor=event.actor,
                           target=event.target, repo=event.repo, details=event.details)


# ------------------------------------------------------------------ workers


@workers_api.route("POST", "/v1/workers/register", summary="Register as a worker", auth="none",
                   body=wire.RegisterWorker, responses={201: wire.Registered})
async def register_worker(call: Call) -> tuple[int, BaseModel]:
    """Returns the worker's bearer token once; only its hash is stored."""
    body: wire.RegisterWorker = call.body
    scheduler = _scheduler(call)
    worker_id, token = await scheduler.register(
        body.name, body.github_handle, body.skills, body.capacity_points, body.max_concurrent_tasks,
        TrustTier[scheduler.settings.default_trust_tier.upper()])
    call.headers.update(NO_STORE)
    return 201, wire.Registered(worker_id=worker_id, token=token)


@workers_api.route("POST", "/v1/workers/heartbeat", summary="Tell the pool you are alive", auth="worker",
                   body=wire.Heartbeat, responses={200: wire.HeartbeatAck})
async def heartbeat(call: Call) -> BaseModel:
    """A worker silent past the heartbeat timeout goes offline: its offers lapse, then its leases."""
    body: wire.Heartbeat = call.body
    now = _scheduler(call).heartbeat(_worker_id(call), body.status.value, body.note)
    return wire.HeartbeatAck(ok=True, server_time=to_datetime(now))


class Page(BaseModel):
    model_config = {"extra": "forbid"}
    limit: int = Field(100, ge=1, le=1000)
    cursor: str = Field("", max_length=64, description="next_cursor of the previous page")


@workers_api.route("GET", "/v1/workers", summary="List workers", auth="reader", query=Page,
                   responses={200: wire.WorkerList})
async def list_workers(call: Call) -> BaseModel:
    scheduler = _scheduler(call)
    page: Page = call.query
    found = await scheduler.run(ops.list_workers, page.cursor, page.limit + 1)
    more = len(found) > page.limit
    found = found[: page.limit]
    return wire.WorkerList(workers=[worker_model(r, scheduler) for r in found],
                           next_cursor=found[-1]["id"] if more else None)


@workers_api.route("GET", "/v1/workers/me", summary="The worker this token belongs to", auth="worker",
                   responses={200: wire.Worker})
async def who_am_i(call: Call) -> BaseModel:
    """For a tool that was given a token and needs its worker id, skills and capacity in use."""
    scheduler, worker_id = _scheduler(call), _worker_id(call)
    return worker_model(await scheduler.run(ops.get_worker, worker_id), scheduler)


@workers_api.route("GET", f"/v1/workers/{WORKER_ID}", summary="One worker", auth="reader",
                   responses={200: wire.Worker})
async def get_worker(call: Call) -> BaseModel:
    scheduler = _scheduler(call)
    worker_id = call.path("worker_id")
    return worker_model(await scheduler.run(ops.get_worker, worker_id), scheduler)


# ------------------------------------------------------------------ work


@work_api.route("GET", "/v1/work", summary="Lease work into free capacity and list your leases", auth="worker",
                responses={200: wire.Work})
async def fetch_work(call: Call) -> BaseModel:
    """Fills the worker's free capacity with leases of the best eligible tasks, then returns all its
    active leases."""
    scheduler, worker_id = _scheduler(call), _worker_id(call)
    leases = await scheduler.run(ops.fetch_work, worker_id, NOW, scheduler.settings)
    call.headers.update(NO_STORE)
    return wire.Work(worker_id=worker_id, leases=[lease_model(r) for r in leases])


@work_api.route("GET", "/v1/work/leases", summary="Your active leases, taking no new work", auth="worker",
                responses={200: wire.Work})
async def list_leases(call: Call) -> BaseModel:
    """Read-only: unlike GET /v1/work it never leases anything."""
    scheduler, worker_id = _scheduler(call), _worker_id(call)
    leases = await scheduler.run(ops.active_leases, worker_id)
    call.headers.update(NO_STORE)
    return wire.Work(worker_id=worker_id, leases=[lease_model(r) for r in leases])


@work_api.route("POST", "/v1/work/offers", summary="Get offers for your free capacity", auth="worker",
                responses={200: wire.Offers})
async def request_offers(call: Call) -> BaseModel:
    """Each offer reserves its task for you until it expires; with none, `why_none` counts the reasons."""
    scheduler, worker_id = _scheduler(call), _worker_id(call)
    offers, worker = await scheduler.run(ops.request_offers, worker_id, NOW, scheduler.settings)
    call.headers.update(NO_STORE)
    explanation = None
    if not offers:
        why = await scheduler.run(ops.explain_no_offers, worker, NOW, scheduler.settings, write=False)
        explanation = wire.NoWorkExplanation(
            summary=why.summary, ready_tasks=why.ready_tasks, examined=why.examined,
            reasons=[wire.NoWorkReason(reason=r.reason.value, count=r.count, repo=r.repo, message=r.message)
                     for r in why.reasons])
    return wire.Offers(offers=[offer_model(r) for r in offers], why_none=explanation)


@work_api.route("POST", f"/v1/work/offers/{OFFER_ID}/accept", summary="Accept an offer: it becomes a lease",
                auth="worker", responses={201: wire.OfferAccepted})
async def accept_offer(call: Call) -> tuple[int, BaseModel]:
    scheduler, worker_id, offer_id = _scheduler(call), _worker_id(call), call.path("offer_id")
    lease_id, expires_at, task_id = await scheduler.run(
        ops.accept_offer, worker_id, offer_id, NOW, scheduler.settings)
    return 201, wire.OfferAccepted(lease_id=lease_id, task_id=task_id, lease_expires_at=to_datetime(expires_at))


@work_api.route("POST", f"/v1/work/offers/{OFFER_ID}/reject", summary="Decline an offer, with a reason",
                auth="worker", body=wire.RejectOffer, responses={200: wire.OfferRejected})
async def reject_offer(call: Call) -> BaseModel:
    """The task goes back to the pool and is not offered to you again for the decline cool-down."""
    scheduler, worker_id, offer_id = _scheduler(call), _worker_id(call), call.path("offer_id")
    body: wire.RejectOffer = call.body
    task_id = await scheduler.run(ops.reject_offer, worker_id, offer_id, body.reason.value, body.note, NOW)
    return wire.OfferRejected(ok=True, offer_id=offer_id, task_id=task_id)


@work_api.route("POST", f"/v1/leases/{LEASE_ID}/renew", summary="Extend a lease by the lease TTL, up to its cap",
                auth="worker", responses={200: wire.LeaseRenewed})
async def renew_lease(call: Call) -> BaseModel:
    """The repo's lease TTL as it is now, from now; never earlier than the lease's deadline: after the repo's TTL
    was shortened, the answer keeps that deadline until the new TTL from now reaches past it."""
    scheduler, worker_id, lease_id = _scheduler(call), _worker_id(call), call.path("lease_id")
    expires_at, cap = await scheduler.run(ops.renew_lease, worker_id, lease_id, NOW, scheduler.settings)
    return wire.LeaseRenewed(lease_id=lease_id, lease_expires_at=to_datetime(expires_at),
                             renewable_until=to_datetime(cap))


@work_api.route("POST", f"/v1/tasks/{TASK_ID}/status", summary="Report a task's status", auth="worker_or_admin",
                body=wire.StatusReport, responses={200: wire.Task})
async def report_status(call: Call) -> BaseModel:
    """The lease holder reports in_progress, blocked, pr_opened (with artifact.pr_url) or released; with the
    admin token also merged, cancelled and ready."""
    scheduler, task_id = _scheduler(call), call.path("task_id")
    body: wire.StatusReport = call.body
    as_worker = None if call.admin else call.worker_id
    pr_url = body.artifact.pr_url if body.artifact else None
    row = await scheduler.run(ops.report_status, task_id, body.status.value, NOW, worker_id=as_worker,
                              message=body.message, pr_url=pr_url)
    return task_model(row)


# ------------------------------------------------------------------ repos


@admin_api.route("PUT", "/v1/repos/{owner}/{name}", summary="Create or update a repo's settings", auth="admin",
                 body=wire.RepoSettings, responses={200: wire.Repo, 201: wire.Repo})
async def put_repo(call: Call) -> tuple[int, BaseModel]:
    scheduler = _scheduler(call)
    repo_id = _repo_name(call)
    spec = repo_spec(repo_id, call.body)
    (row, created) = await scheduler.run(ops.upsert_repo, spec, NOW)
    repo, budget = await scheduler.run(ops.get_repo, row["id"])
    return (201 if created else 200), repo_model(repo, budget)


_REPO_NAME: TypeAdapter[str] = TypeAdapter(wire.RepoName)


def _repo_name(call: Call) -> str:
    name = f"{call.path('owner')}/{call.path('name')}"
    try:
        return _REPO_NAME.validate_python(name)
    except ValidationError:
        raise Problem(422, f"{name!r} is not a GitHub repository name (owner/name)") from None


@admin_api.route("GET", "/v1/repos", summary="List repos with their review budget use", auth="reader",
                 responses={200: wire.RepoList})
async def list_repos(call: Call) -> BaseModel:
    found = await _scheduler(call).run(ops.list_repos)
    return wire.RepoList(repos=[repo_model(row, budget) for row, budget in found])


@admin_api.route("GET", "/v1/repos/{owner}/{name}", summary="One repo with its review budget use", auth="reader",
                 responses={200: wire.Repo})
async def get_repo(call: Call) -> BaseModel:
    repo_id = _repo_name(call)
    row, budget = await _scheduler(call).run(ops.get_repo, repo_id)
    return repo_model(row, budget)


# ------------------------------------------------------------------ tasks


@admin_api.route("POST", "/v1/tasks", summary="Create one task (or update it by key)", auth="admin",
                 body=wire.NewTask, responses={201: wire.TaskCreated, 200: wire.TaskCreated})
async def create_task(call: Call) -> tuple[int, BaseModel]:
    spec = task_spec(call.body)
    row, outcome = await _scheduler(call).run(ops.put_task, spec, NOW, "api")
    return (201 if outcome == "created" else 200), wire.TaskCreated(outcome=outcome, task=task_model(row))


@admin_api.route("POST", "/v1/tasks/import", summary="Import tasks from a YAML document", auth="admin",
                 body="yaml", responses={200: wire.ImportReport})
async def import_tasks(call: Call) -> BaseModel:
    """Idempotent by each task's `key` (or `id`); reports created, updated, unchanged and rejected entries."""
    parsed = parse_import(call.body)
    results = await _scheduler(call).run(ops.import_tasks, parsed.repos, parsed.tasks, NOW, slow=True)
    return import_report(parsed, results)


def import_report(parsed: ParsedImport, results: list[tuple[int, str, Row | None, str | None]]) -> wire.ImportReport:
    entries = [wire.ImportEntry(index=i, key=key, outcome="rejected", task_id=None, errors=errors)
               for i, (key, errors) in parsed.rejected.items()]
    entries += [wire.ImportEntry(index=i, key=parsed.keys.get(i), outcome=outcome,
                                 task_id=row["id"] if row else None, errors=[error] if error else [])
                for i, outcome, row, error in results]
    entries.sort(key=lambda e: e.index)
    count = {o: sum(1 for e in entries if e.outcome == o) for o in ("created", "updated", "unchanged", "rejected")}
    return wire.ImportReport(repos=[r.repo for r in parsed.repos], entries=entries, **count)


class TaskQuery(Page):
    repo: str | None = Field(None, max_length=201)
    status: wire.TaskStatusName | None = None
    skill: str | None = Field(None, max_length=50)
    area: str | None = Field(None, max_length=64)
    worker_id: str | None = Field(None, max_length=64)


@admin_api.route("GET", "/v1/tasks", summary="List tasks, filtered", auth="reader", query=TaskQuery,
                 responses={200: wire.TaskList})
async def list_tasks(call: Call) -> BaseModel:
    q: TaskQuery = call.query
    skill = q.skill.strip().lower() if q.skill else None
    area = q.area.strip().lower() if q.area else None
    status = q.status.value if q.status else None
    found = await _scheduler(call).run(
        ops.list_tasks, q.cursor, q.repo, status, area, skill, q.worker_id, q.limit + 1)
    more = len(found) > q.limit
    found = found[: q.limit]
    return wire.TaskList(tasks=[task_model(r) for r in found], next_cursor=found[-1]["id"] if more else None)


@admin_api.route("GET", f"/v1/tasks/{TASK_ID}", summary="One task with its history", auth="reader",
                 responses={200: wire.TaskDetail})
async def get_task(call: Call) -> BaseModel:
    task_id = call.path("task_id")
    row, history = await _scheduler(call).run(ops.get_task, task_id)
    return wire.TaskDetail(**task_model(row).model_dump(), history=[event_model(e) for e in history])


# ------------------------------------------------------------------ audit


class EventQuery(BaseModel):
    model_config = {"extra": "forbid"}
    after: int = Field(0, ge=0, le=2**62, description="return events with a sequence number above this")
    limit: int = Field(100, ge=1, le=1000)
    type: str | None = Field(None, max_length=64, description="an event type, or a prefix such as `lease.*`")
    actor: str | None = Field(None, max_length=100)
    target: str | None = Field(None, max_length=201)
    repo: str | None = Field(None, max_length=201)
    since: datetime | None = Field(
        None, description="ISO 8601 date-time, e.g. 2026-11-01T00:00:00Z (UTC without a zone)")
    until: datetime | None = Field(None, description="ISO 8601 date-time; events before it")
    format: Literal["json", "csv", "jsonl"] | None = Field(
        None, description="csv or jsonl streams every matching event after `after` (no limit); "
                          "or ask with Accept: text/csv / application/x-ndjson")

    @field_validator("since", "until", mode="before")
    @classmethod
    def _iso_only(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().replace(".", "", 1).lstrip("-").isdigit():
            raise ValueError("use an ISO 8601 date-time such as 2026-11-01T00:00:00Z, not a number")
        return value

    @field_validator("since", "until")
    @classmethod
    def _utc_unless_said(cls, value: datetime | None) -> datetime | None:
        """A time without a zone is UTC, as every time the pool answers with, not the server's local time."""
        return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


EXPORT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
EXPORT_PAGE = 1000
EXPORT_COLUMNS = ("seq", "ts", "type", "actor", "target", "repo", "details")


def _export_rows(events: list[Event], fmt: str) -> str:
    records = [event_model(e).model_dump(mode="json") for e in events]
    if fmt == "jsonl":
        return "".join(compact_json(r) + "\n" for r in records)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([*(r[c] for c in EXPORT_COLUMNS[:-1]), compact_json(r["details"])]
                     for r in records)
    return out.getvalue()


async def _export_events(call: Call, q: EventQuery, fmt: str, since: float | None, until: float | None
                         ) -> web.StreamResponse:
    """Stream the matching events page by page (cursor = seq), up to the log's end when the export began."""
    scheduler = _scheduler(call)
    end = await scheduler.run(ops.last_event_seq, write=False)
    response = web.StreamResponse(headers={
        "Content-Type": f"{EXPORT_TYPES[fmt]}; charset=utf-8", "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="owp-audit-{q.after}-{end}.{fmt}"'})
    await response.prepare(call.request)
    if fmt == "csv":
        await response.write((",".join(EXPORT_COLUMNS) + "\n").encode())
    after = q.after
    while after < end:
        page = await scheduler.run(ops.list_events, after, q.type, q.actor, q.target, q.repo, since, until,
                                   EXPORT_PAGE, write=False)
        page = [e for e in page if e.seq <= end]
        if page:
            await response.write(_export_rows(page, fmt).encode())
        if len(page) < EXPORT_PAGE:
            break
        after = page[-1].seq
    await response.write_eof()
    return response


@admin_api.route("GET", "/v1/audit/events", summary="The audit log, filtered, by sequence", auth="admin",
                 query=EventQuery, responses={200: wire.EventPage}, streams=tuple(EXPORT_TYPES.values()))
async def list_events(call: Call) -> BaseModel | web.StreamResponse:
    """JSON pages by default; CSV or JSON Lines (`?format=` or Accept) stream the whole filtered log."""
    q: EventQuery = call.query
    since = q.since.timestamp() if q.since else None
    until = q.until.timestamp() if q.until else None
    accept = call.request.headers.get("Accept", "")
    fmt: str = q.format or next((f for f, mime in EXPORT_TYPES.items() if mime in accept), "json")
    if fmt != "json":
        return await _export_events(call, q, fmt, since, until)
    found = await _scheduler(call).run(
        ops.list_events, q.after, q.type, q.actor, q.target, q.repo, since, until, q.limit + 1,
        write=False)
    more = len(found) > q.limit
    found = found[: q.limit]
    return wire.EventPage(events=[event_model(e) for e in found], next_cursor=found[-1].seq if more else None)

