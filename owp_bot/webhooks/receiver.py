"""`POST /webhooks/github` and the admin side of GitHub: deliveries (list, retry), repo sync, repo settings.

A delivery is verified (X-Hub-Signature-256, constant time) before anything is read from it, dispatched
through the combined gidgethub router, and its changes are applied together with its delivery record:
one transaction, so a redelivery is acknowledged and never applied twice. Calls to GitHub never happen
here; they wait in the outbox.
"""

from __future__ import annotations

import hmac
import json
import logging
from datetime import datetime
from functools import partial
from typing import Any, Literal

from gidgethub import routing, sansio
from pydantic import BaseModel, Field

from owp_bot.clock import to_datetime
from owp_bot.devtools.github_payloads import sign
from owp_bot.errors import Problem
from owp_bot.keys import SCHEDULER
from owp_bot.protocol.routes import Api, Call
from owp_bot.scheduler import github_operations as gh
from owp_bot.scheduler import operations as ops
from owp_bot.scheduler.api import _repo_name  # the same owner/name check as PUT /v1/repos
from owp_bot.scheduler.service import NOW
from owp_bot.scheduler.store import Op
from owp_bot.webhooks import comments, installation, issues, pulls, repository, reviews
from owp_bot.webhooks.client import GitHubError, NotConfigured, repo_path
from owp_bot.webhooks.context import Changes
from owp_bot.webhooks.service import GITHUB, GitHubApp

log = logging.getLogger(__name__)
router = routing.Router(
    issues.router, comments.router, pulls.router, reviews.router, installation.router, repository.router
)
github_api = Api("github")
UNGATED_EVENTS = frozenset({"ping", "installation", "installation_repositories"})  # not about one repo
DELIVERY_ID_MAX = 100  # GitHub's X-GitHub-Delivery is a GUID (36); a page's last id must fit its next `cursor`


class WebhookAnswer(BaseModel):
    delivery_id: str
    event: str
    outcome: Literal["ok", "ignored", "duplicate", "failed"]
    detail: str


class DeliveryRecord(BaseModel):
    delivery_id: str
    event: str
    action: str | None
    repo: str | None
    outcome: Literal["ok", "ignored", "failed"]
    detail: str | None
    attempts: int
    received_at: datetime
    updated_at: datetime


class DeliveryList(BaseModel):
    deliveries: list[DeliveryRecord]
    next_cursor: str | None


class DeliveryQuery(BaseModel):
    model_config = {"extra": "forbid"}
    outcome: Literal["ok", "ignored", "failed"] | None = None
    limit: int = Field(100, ge=1, le=1000)
    cursor: str = Field("", max_length=DELIVERY_ID_MAX, description="next_cursor of the previous page")


class GitHubRepoSettings(BaseModel):
    model_config = {"extra": "forbid"}
    ready_label: str | None = Field(
        None,
        min_length=1,
        max_length=50,
        description="the label that puts an issue in the pool; null: the server default",
    )


class GitHubRepo(BaseModel):
    repo: str
    ready_label: str
    installation_id: int | None


class SyncReport(BaseModel):
    repo: str
    webhook_url: str
    installation_id: int | None
    permissions: dict[str, str]
    ready_label: str
    issues_seen: int
    created: int
    updated: int
    unchanged: int
    pulls_seen: int
    pulls_linked: int
    external_open_prs: int
    notes: list[str]


# ------------------------------------------------------------------ receiving


def signed(body: bytes, header: str | None, secret: str | None) -> bool:
    return bool(header and secret) and hmac.compare_digest(
        str(header).strip().encode(), sign(str(secret), body).encode()
    )


def verify_signature(body: bytes, header: str | None, secret: str) -> None:
    if not header:
        raise Problem(
            401, "X-Hub-Signature-256 is missing; set the app's webhook secret so GitHub signs deliveries"
        )
    if not signed(body, header, secret):
        raise Problem(
            401,
            "X-Hub-Signature-256 does not match the body; check that GITHUB_WEBHOOK_SECRET equals "
            "the app's webhook secret",
        )


@github_api.route(
    "POST",
    "/webhooks/github",
    summary="GitHub webhook deliveries",
    auth="none",
    responses={200: WebhookAnswer, 202: WebhookAnswer, 400: None, 401: None, 503: None},
)
async def receive(call: Call) -> tuple[int, BaseModel]:
    """Signed with X-Hub-Signature-256. Answers 202 when the delivery is ignored (for example a repo that is
    not in the pool) and 200 for a redelivery, which is acknowledged and not applied again."""
    request, github = call.request, call.request.app[GITHUB]
    body = await request.read()
    secret = github.auth.credentials.webhook_secret
    header = request.headers.get("X-Hub-Signature-256")
    if not github.scheduler.settings.github_webhook_secret and not signed(body, header, secret):
        await github.reload_credentials_now_and_then()  # the app may have been created (again) on another replica
        secret = github.auth.credentials.webhook_secret
    if not secret:
        raise Problem(
            503,
            "this pool has no webhook secret; set GITHUB_WEBHOOK_SECRET or create the app at /github/setup",
        )
    verify_signature(body, header, secret)
    event = request.headers.get("X-GitHub-Event", "")
    delivery_id = request.headers.get("X-GitHub-Delivery", "")
    if not event or not delivery_id:
        raise Problem(400, "X-GitHub-Event and X-GitHub-Delivery are required, as GitHub sends them")
    if len(delivery_id) > DELIVERY_ID_MAX:
        raise Problem(400, f"X-GitHub-Delivery is longer than {DELIVERY_ID_MAX} characters; GitHub sends a GUID")
    return await process(github, delivery_id, event, body)


def _delivery(delivery_id: str, event: str, body: bytes, data: Any) -> gh.Delivery:
    repo = installation_id = action = github_id = None
    if isinstance(data, dict):
        action = data.get("action") if isinstance(data.get("action"), str) else None
        if event not in UNGATED_EVENTS and isinstance(data.get("repository"), dict):
            # a rename names the repo by its new name; the pool knows it by its former one
            repo = (event == "repository" and repository.former_name(data)) or data["repository"].get("full_name")
            found = data["repository"].get("id")
            github_id = found if isinstance(found, int) and not isinstance(found, bool) else None
        if isinstance(data.get("installation"), dict):
            installation_id = data["installation"].get("id")
    return gh.Delivery(
        delivery_id, event, action, repo, installation_id, body.decode("utf-8", "replace"), github_id
    )


async def process(
    github: GitHubApp, delivery_id: str, event: str, body: bytes, *, retry: bool = False
) -> tuple[int, WebhookAnswer]:
    """Apply one verified delivery; a failure is recorded with its reason (visible, retryable)."""
    scheduler = github.scheduler
    error: str | None = None
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        data, error = None, f"the body is not JSON: {exc}"
    else:
        error = None if isinstance(data, dict) else "the body is not a JSON object"
    delivery = _delivery(delivery_id, event, body, data)
    if error is None and delivery.repo is not None:
        # the handlers read the pool repo's name: GitHub's names are case-insensitive, the pool's ids are not, and a
        # delivery is for the pool repo of its repository id under any name (apply_delivery routes it again, in its
        # transaction)
        named, _ = await scheduler.run(
            gh.delivery_repo, str(delivery.repo), delivery.github_id, write=False
        )
        if named is not None and data["repository"].get("full_name") == delivery.repo:  # not a move's new name
            data["repository"]["full_name"] = named
    if error is None:
        try:
            if event == "ping":
                applied = await scheduler.run(
                    gh.apply_delivery, delivery, [partial(_pong, data)], NOW, retry=retry
                )
            else:
                changes = Changes(scheduler.settings)
                await router.dispatch(sansio.Event(data, event=event, delivery_id=delivery_id), changes)
                applied = await scheduler.run(
                    gh.apply_delivery, delivery, changes.items, NOW, retry=retry
                )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            error = f"the {event} payload is malformed ({type(exc).__name__}: {exc}); nothing was applied"
        except Problem as problem:
            error = f"{problem.detail}; nothing was applied"
        except Exception as exc:
            log.exception("webhook delivery %s (%s) failed", delivery_id, event)
            error = f"the delivery failed ({type(exc).__name__}); nothing was applied; an admin can retry it"
        else:
            log.info(
                "delivery %s %s.%s: %s %s",
                delivery_id,
                event,
                delivery.action,
                applied.outcome,
                applied.detail,
            )
            status = 202 if applied.outcome == "ignored" else 200
            return status, WebhookAnswer(
                delivery_id=delivery_id,
                event=event,
                outcome=applied.outcome,
                detail=applied.detail,
            )
    log.warning("delivery %s (%s) failed: %s", delivery_id, event, error)
    await scheduler.run(gh.record_delivery, delivery, "failed", error or "", NOW)
    raise Problem(400, error or "", delivery_id=delivery_id, outcome="failed")


def _pong(data: dict[str, Any], now: float) -> Op[str]:
    return f"ping: {data.get('zen', 'pong')}"
    yield  # a generator that needs no statement


# ------------------------------------------------------------------ deliveries (admin)


@github_api.route(
    "GET",
    "/v1/github/deliveries",
    summary="Webhook deliveries and their outcome",
    auth="admin",
    query=DeliveryQuery,
    responses={200: DeliveryList},
)
async def list_deliveries(call: Call) -> BaseModel:
    """Newest first; `outcome=failed` lists the ones an admin may retry. Paged like GET /v1/tasks: `cursor` is
    the `next_cursor` of the previous page."""
    q: DeliveryQuery = call.query
    found = await call.request.app[SCHEDULER].run(
        gh.list_deliveries, q.outcome, q.cursor, q.limit + 1, write=False
    )
    more = len(found) > q.limit
    found = found[: q.limit]
    return DeliveryList(
        deliveries=[
            DeliveryRecord(
                delivery_id=r["id"],
                event=r["event"],
                action=r["action"],
                repo=r["repo"],
                outcome=r["outcome"],
                detail=r["detail"],
                attempts=r["attempts"],
                received_at=to_datetime(r["received_at"]),
                updated_at=to_datetime(r["updated_at"]),
            )
            for r in found
        ],
        next_cursor=found[-1]["id"] if more else None,
    )


@github_api.route(
    "POST",
    "/v1/github/deliveries/{delivery_id}/retry",
    summary="Apply a failed delivery again",
    auth="admin",
    responses={200: WebhookAnswer, 202: WebhookAnswer, 409: None},
)
async def retry_delivery(call: Call) -> tuple[int, BaseModel]:
    github, delivery_id = call.request.app[GITHUB], call.path("delivery_id")
    row = await github.scheduler.run(gh.get_delivery, delivery_id, write=False)
    if row is None:
        raise Problem(404, f"delivery {delivery_id} not found; list them with GET /v1/github/deliveries")
    if row["outcome"] != "failed":
        raise Problem(409, f"delivery {delivery_id} was {row['outcome']}; only failed deliveries are retried")
    return await process(github, delivery_id, row["event"], row["payload"].encode(), retry=True)


# ------------------------------------------------------------------ repos (admin)


@github_api.route(
    "PUT",
    "/v1/github/repos/{owner}/{name}",
    summary="A pool repo's GitHub settings",
    auth="admin",
    body=GitHubRepoSettings,
    responses={200: GitHubRepo},
)
async def put_github_repo(call: Call) -> BaseModel:
    scheduler, repo = call.request.app[SCHEDULER], _repo_name(call)
    body: GitHubRepoSettings = call.body
    row = await scheduler.run(gh.set_ready_label, repo, body.ready_label, NOW)
    return GitHubRepo(
        repo=repo,
        ready_label=row["ready_label"] or scheduler.settings.github_ready_label,
        installation_id=row["installation_id"],
    )


@github_api.route(
    "POST",
    "/v1/github/repos/{owner}/{name}/sync",
    summary="Import a repo's ready issues and open PRs",
    auth="admin",
    responses={200: SyncReport, 404: None, 409: None, 502: None},
)
async def sync_repo(call: Call) -> BaseModel:
    """Imports every open issue with the ready label (paginated) and reconciles open PRs, so that the review
    budget counts them; reports the webhook URL and the permissions the installation granted."""
    github, repo = call.request.app[GITHUB], _repo_name(call)
    scheduler = github.scheduler
    await scheduler.run(ops.load_repo, repo, write=False)
    installation_id = await scheduler.run(gh.installation_of, repo, write=False)
    permissions: dict[str, str] = {}
    try:
        if github.auth.credentials.can_sign:
            found, _ = await github.client.call(
                "GET", repo_path(repo, "installation"), jwt=github.auth.app_jwt()
            )
            installation_id, permissions = int(found["id"]), dict(found.get("permissions") or {})
            await scheduler.run(gh.set_installation, repo, int(found["id"]), NOW)
        label = await scheduler.run(gh.ready_label, repo, scheduler.settings, write=False)
        token = await github.auth.token_for(installation_id)
        found_issues = await github.client.paginate(
            repo_path(repo, "issues"), token=token, params={"state": "open", "labels": label}
        )
        found_pulls = await github.client.paginate(
            repo_path(repo, "pulls"), token=token, params={"state": "open"}
        )
        found_repo, _ = await github.client.call("GET", repo_path(repo), token=token)
    except NotConfigured as error:
        raise Problem(409, f"cannot sync {repo}: {error}") from None
    except GitHubError as error:
        if error.gone:
            raise Problem(404, f"GitHub does not show {repo} to this app; check the name and that the app "
                               "is installed on it") from None
        headers = (
            {"Retry-After": str(max(1, int(error.retry_at - scheduler.now())))} if error.retry_at else {}
        )
        raise Problem(502, f"GitHub refused the sync: {error}", headers=headers) from None
    issue_refs = [
        issues.issue_ref({"issue": i, "repository": {"full_name": repo}}, current=True)
        for i in found_issues
        if "pull_request" not in i
    ]
    pull_refs = [pulls.pull_ref({"pull_request": p, "repository": {"full_name": repo}}) for p in found_pulls]
    github_id = found_repo.get("id") if isinstance(found_repo, dict) else None
    result = await scheduler.run(
        gh.sync_repo, repo, issue_refs, pull_refs, scheduler.settings, NOW,
        github_id if isinstance(github_id, int) else None,
    )
    row, _ = await scheduler.run(ops.get_repo, repo, write=False)
    origin = f"{call.request.scheme}://{call.request.host}"
    return SyncReport(
        repo=repo,
        webhook_url=f"{origin}/webhooks/github",
        installation_id=installation_id,
        permissions=permissions,
        ready_label=label,
        issues_seen=len(issue_refs),
        created=result.created,
        updated=result.updated,
        unchanged=result.unchanged,
        pulls_seen=len(pull_refs),
        pulls_linked=result.pulls_linked,
        external_open_prs=row["external_open_prs"],
        notes=result.notes,
    )
