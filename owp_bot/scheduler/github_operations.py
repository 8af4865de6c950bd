"""GitHub's side of the domain, each function one transaction (see store.py), built from operations.py.

Webhook deliveries (recorded in the same transaction as what they change, so a redelivery is never applied
twice), issues becoming tasks, `/owp` commands, pull requests linked to tasks, reviews, installations, and
the durable outbox of calls to GitHub with what the bot last wrote on each issue.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from owp_bot.clock import iso
from owp_bot.config import Settings
from owp_bot.errors import Problem
from owp_bot.protocol.models import NewTask
from owp_bot.scheduler import operations as ops
from owp_bot.scheduler.importer import task_spec
from owp_bot.scheduler.models import IN_FLIGHT, LEASED, MAX_ISSUE_NUMBER, Ineligible, OfferState, TaskStatus
from owp_bot.scheduler.policy import RepoLoad, WorkerView, describe, ineligibility
from owp_bot.scheduler.store import Op, Row, one, rows, run

Change = Callable[[float], Op[str | None]]
SIZES = {"s": 1, "m": 3, "l": 5, "xl": 8}
# A voided report's PR, opened later than this after the report, is not the PR it reported: a worker reports the PR
# it opened or is about to open, and GitHub gives an unused number to whichever PR comes next (void_taken_back).
REPORTED_PR_OPENED_WITHIN = 3600.0
WRITEBACK_EVENTS = (
    "lease.granted",
    "lease.expired",
    "lease.released",
    "lease.revoked",
    "task.requeued",
    "task.ready",
    "task.released",
    "task.pr_opened",
    "task.merged",
    "task.cancelled",
)
POOL_LABELS = ("pool:leased", "pool:pr-open")
_CLOSING = re.compile(r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?)\s*:?\s+([\w.-]+/[\w.-]+)?#(\d+)\b", re.I)
_BRANCH = re.compile(r"^owp/(t_[0-9a-z]+)$")


def actor_of(login: str) -> str:
    return f"github:{login}"


LEARNED_FROM_ID = "github:repository-id"  # the actor of a rename learned from GitHub by the repository id


# ------------------------------------------------------------------ plain data from payloads


GONE = ("deleted", "transferred")  # issue states: the issue is not in its repo any more


@dataclass(frozen=True, slots=True)
class IssueRef:
    repo: str
    number: int
    title: str
    url: str
    labels: tuple[str, ...]
    state: str  # open | closed; deleted | transferred (GONE)
    updated_at: float  # GitHub's `updated_at`: the moment this view of the issue is from (whole seconds)
    current: bool = False  # read from GitHub's API just now (a sync, a refresh), not carried by a delivery


@dataclass(frozen=True, slots=True)
class PullRef:
    repo: str
    number: int
    url: str
    author: str
    title: str
    body: str
    head_ref: str
    state: str  # open | closed
    merged: bool
    created_at: float | None = None  # when the PR was opened (None: the payload did not say)


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    event: str
    action: str | None
    repo: str | None
    installation_id: int | None
    payload: str
    github_id: int | None = None  # GitHub's repository id (`repository.id`): the same across renames and transfers


@dataclass(frozen=True, slots=True)
class Applied:
    outcome: str  # ok | ignored | duplicate
    detail: str


# ------------------------------------------------------------------ deliveries


def apply_delivery(
    delivery: Delivery, changes: list[Change], now: float, *, retry: bool = False
) -> Op[Applied]:
    """Apply a delivery's changes and record it, in one transaction (a redelivery is not reapplied).

    A delivery for a repo that is not in the pool is recorded as ignored; so is one no handler acts on. It is applied
    to, and recorded under, the pool repo it is for (delivery_repo), by the name that repo has when it is recorded.
    """
    seen = yield one("gh_delivery_get", delivery.id)
    if seen is not None and seen["outcome"] != "failed" and not retry:
        return Applied("duplicate", f"delivery {delivery.id} was already {seen['outcome']}: {seen['detail']}")
    notes: list[str] = []
    repo, unsure = None, False
    if delivery.repo is not None:
        repo, unsure = yield from delivery_repo(delivery.repo, delivery.github_id)
    if delivery.repo is not None and repo is None:
        detail = f"{delivery.repo} is not a pool repo; an admin adds it with PUT /v1/repos/{delivery.repo}"
    else:
        if repo is not None and delivery.installation_id is not None:
            yield run("gh_repo_set_installation", repo, delivery.installation_id, now)
        if repo is not None and delivery.github_id is not None:
            yield run("gh_repo_name_seen", delivery.github_id, repo)
            if unsure:
                yield run("gh_outbox_repo_name", repo, str(delivery.github_id), now)
                notes.append(f"{delivery.repo} is a name the pool has not seen for {repo} (repository id "
                             f"{delivery.github_id}): applied to {repo}; GitHub is asked which name the repo has now")
        for change in changes:
            note = yield from change(now)
            if note:
                notes.append(note)
        if delivery.event == "repository" and delivery.repo is not None:  # a move the pool followed renamed the repo
            repo, _ = yield from delivery_repo(delivery.repo, delivery.github_id)
        detail = "; ".join(notes) or f"nothing to do for {delivery.event}.{delivery.action or '-'}"
    outcome = "ok" if notes else "ignored"
    yield from record_delivery(replace(delivery, repo=repo or delivery.repo), outcome, detail, now)
    return Applied(outcome, detail)


def pool_repo_named(name: str) -> Op[str | None]:
    """The pool repo that GitHub's `name` means, in the letter case the pool knows it by."""
    found: Row | None = yield one("gh_repo_named", name)
    return None if found is None else str(found["id"])


def delivery_repo(name: str, github_id: int | None) -> Op[tuple[str | None, bool]]:
    """(the pool repo a delivery about GitHub's repo `name` is for, whether to ask GitHub which name it has now).

    GitHub's repository id (`github_id`), the same across renames and transfers, decides once the pool knows which
    pool repo it is: the delivery is for that repo under whatever name it came. A name the id went by before is a late
    delivery; a name another pool repo has now (a new repo created under the name this one left) is not that repo's.
    A name the pool never saw for the id is either the repo's new one (renamed on GitHub, its `repository` event not
    here yet) or one it had before the pool learned the id (a late delivery), and nothing the pool holds tells which:
    no payload field is documented to move with a rename, and the id may come from an `installation` event, which
    has no time at all. So the delivery is applied to the repo under the name it has, and the outbox asks GitHub for
    the repo's name now (`repo_name`: GET /repositories/{id}, then repo_name_read): a late delivery never renames a
    repo backwards, and a new name is followed once GitHub answers (or the `repository` event comes). Without a
    known id, the name decides (case-insensitively).
    """
    found: Row = yield one("gh_repo_route", name, github_id)
    if found["owned"] is None:
        return found["named"], False
    return str(found["owned"]), not found["went_by"] and found["named"] is None


def repo_name_read(repo: str, current: str, now: float) -> Op[str | None]:
    """GitHub's answer to the outbox's `repo_name` (see delivery_repo): pool repo `repo` is called `current` on
    GitHub now. A new name is followed (repo_renamed); else the delivery that asked was a late one: nothing changes."""
    move = "renamed" if repo.split("/")[0].lower() == current.split("/")[0].lower() else "transferred"
    return (yield from repo_renamed(repo, current, move, LEARNED_FROM_ID, now))


def record_delivery(delivery: Delivery, outcome: str, detail: str, now: float) -> Op[None]:
    yield run(
        "gh_delivery_upsert",
        delivery.id,
        delivery.event,
        delivery.action,
        delivery.repo,
        outcome,
        detail[:2000],
        delivery.payload,
        now,
    )


def list_deliveries(outcome: str | None, after: str, limit: int) -> Op[list[Row]]:
    """Newest first (one instant in id order), after the delivery `after` (a page's last), or from the first."""
    received_at = None
    if after:
        found = yield one("gh_delivery_received_at", after)
        if found is None:
            raise Problem(400, f"cursor {after} is not a delivery this pool received; pass the next_cursor of the "
                               "previous page, or no cursor for the first page")
        received_at = found["received_at"]
    return list((yield rows("gh_deliveries_list", outcome, after or None, received_at, limit)))


def get_delivery(delivery_id: str) -> Op[Row | None]:
    row: Row | None = yield one("gh_delivery_get", delivery_id)
    return row


# ------------------------------------------------------------------ installations


def ready_label(repo: str, settings: Settings) -> Op[str]:
    row = yield one("gh_repo_get", repo)
    return str(row["ready_label"]) if row is not None and row["ready_label"] else settings.github_ready_label


def installation_of(repo: str) -> Op[int | None]:
    row = yield one("gh_repo_get", repo)
    return None if row is None else row["installation_id"]


def set_ready_label(repo: str, label: str | None, now: float) -> Op[Row]:
    yield from ops.load_repo(repo)
    yield run("gh_repo_set_label", repo, label, now)
    row: Row = yield one("gh_repo_get", repo)
    return row


def installation_changed(
    installation_id: int,
    account: str,
    action: str,
    added: Iterable[str],
    removed: Iterable[str],
    now: float,
    github_ids: Iterable[tuple[int, str]] = (),
) -> Op[str]:
    """`installation` and `installation_repositories`: remember which installation covers which repo, and each
    repo's GitHub repository id (`github_ids`: (id, name))."""
    for github_id, name in github_ids:
        yield run("gh_repo_name_seen", github_id, name)
    gone = action == "deleted"
    yield run("gh_installation_upsert", installation_id, account, int(action == "suspend"), int(gone), now)
    if gone:
        yield run("gh_repos_uninstall", installation_id, now)
    added, removed = list(added), list(removed)
    for repo in added:
        yield run("gh_repo_set_installation", repo, installation_id, now)
    for repo in removed:
        yield run("gh_repo_set_installation", repo, None, now)
    return f"installation {installation_id} ({account}) {action}: +{len(added)} -{len(removed)} repos"


def repo_renamed(former: str, current: str, change: str, actor: str, now: float) -> Op[str | None]:
    """GitHub renamed or transferred (`change`) a pool repo: the pool follows it from `former` to `current`.

    A repo's full name is its key: `repos.id`, which `tasks.repo` references, and the repo column of area locks,
    budget samples, the GitHub tables (the delivery records too) and the event log. Every lookup (`GET
    /v1/repos/{owner}/{name}`, a worker's task) goes by the name; only a delivery also by GitHub's repository id, in
    the same statement (`delivery_repo`). So the smallest correct design is to rename the key in place, everywhere,
    in one transaction (`gh_repo_rename`), rather than add a surrogate key that every lookup would go through: the
    repo keeps its settings, tasks, budget and locks, its history, analytics and deliveries read under the new name
    (only the repo column of its events changes, migration 019), `gh_repo_names` keeps the former name beside the
    new one (migration 021), and `repo.renamed` records the former name. Called again for a move already followed
    (the `repository` delivery after GitHub said the new name), it finds nothing to do.
    """
    repo = yield from pool_repo_named(former)
    if repo is None or repo == current:
        return None
    taken = yield from pool_repo_named(current)
    if taken is not None and taken != repo:
        raise Problem(
            409,
            f"GitHub {change} {repo} to {current}, but the pool already has a repo {taken}; the pool cannot merge "
            f"two repos, so {repo} keeps its name and tasks, and GitHub's deliveries for {current} reach {taken}",
        )
    yield run("gh_repo_forget", current)
    yield run("gh_repo_rename", repo, current)
    yield ops.emit(now, "repo.renamed", actor, current, current, previous_name=repo, change=change)
    return f"{repo} {change} to {current}: its tasks, budget, area locks and history follow"


# ------------------------------------------------------------------ issues -> tasks


def spec_from_issue(issue: IssueRef) -> tuple[ops.TaskSpec, list[str]]:
    """The task an issue describes: its labels fill the fields; a label that cannot be read is reported."""
    fields: dict[str, Any] = {}
    skills: list[str] = []
    for name in issue.labels:
        prefix, sep, value = name.partition(":")
        prefix, value = prefix.strip().lower(), value.strip()
        if not sep or not value:
            continue
        if prefix == "skills":
            skills += [s for s in value.split(",") if s.strip()]
        elif prefix == "area":
            fields["area"] = value.lower()
        elif prefix == "points":
            fields["estimate_points"] = value
        elif prefix == "size" and value.lower() in SIZES:
            fields.setdefault("estimate_points", SIZES[value.lower()])
        elif prefix == "priority":
            fields["priority"] = value.lower()
        elif prefix == "trust":
            fields["min_trust"] = value.lower()
    base = {
        "repo": issue.repo,
        "title": issue.title[:300] or f"issue #{issue.number}",
        "url": issue.url,
        "issue_number": issue.number,
        "required_skills": skills,
    }
    problems: list[str] = []
    try:
        return task_spec(NewTask.model_validate({**base, **fields})), problems
    except ValidationError as exc:
        bad = {str(e["loc"][0]) for e in exc.errors(include_url=False)}
        problems = [f"label for {name} ignored: {fields.get(name, skills)!r}" for name in sorted(bad)]
        kept = {k: v for k, v in fields.items() if k not in bad}
        if "required_skills" in bad:
            base["required_skills"] = []
        return task_spec(NewTask.model_validate({**base, **kept})), problems


def issue_changed(issue: IssueRef, actor: str, settings: Settings, now: float) -> Op[str | None]:
    """Reconcile a task with its issue: open with the ready label → a ready task with the labels' fields;
    closed or unlabelled → cancelled, unless a PR is open for it."""
    _, note = yield from reconcile_issue(issue, actor, settings, now)
    return note


def reconcile_issue(
    issue: IssueRef, actor: str, settings: Settings, now: float
) -> Op[tuple[str, str | None]]:
    """(outcome, note): outcome is created | updated | unchanged | ready | cancelled | rejected | late | none."""
    label = (yield from ready_label(issue.repo, settings)).lower()
    in_pool = issue.state == "open" and label in {n.lower() for n in issue.labels}
    late = yield from out_of_order(issue, in_pool, now)
    if late is not None:
        return "late", late
    task = yield one("task_of_issue", issue.repo, issue.number)
    if in_pool:
        spec, problems = spec_from_issue(issue)
        try:
            row, outcome = yield from ops.put_task(spec, now, "github", actor)
        except Problem as problem:
            return "rejected", f"issue #{issue.number}: {problem.detail}"
        if TaskStatus(row["status"]) is TaskStatus.CANCELLED:
            yield from ops.move_task(row, TaskStatus.READY, None, now)
            yield ops.emit(
                now,
                "task.ready",
                actor,
                row["id"],
                issue.repo,
                previous="cancelled",
                message=f"issue #{issue.number} reopened with {label}",
            )
            outcome = "ready"
        return outcome, f"issue #{issue.number} -> task {row['id']} {outcome}" + "".join(
            f"; {p}" for p in problems
        )
    if task is None:
        return "none", None
    if TaskStatus(task["status"]) in (TaskStatus.PR_OPENED, TaskStatus.MERGED, TaskStatus.CANCELLED):
        return "none", None
    why = issue.state if issue.state != "open" else f"{label} removed"  # closed, deleted, transferred
    yield from ops.report_status(
        task["id"], "cancelled", now, worker_id=None, actor=actor, message=f"issue #{issue.number} {why}"
    )
    return "cancelled", f"issue #{issue.number} {why} -> task {task['id']} cancelled"


def out_of_order(issue: IssueRef, in_pool: bool, now: float) -> Op[str | None]:
    """Why this view of an issue is not applied (None: it is, and it becomes the newest one applied).

    GitHub does not deliver in order, and each delivery carries the issue as it was (its labels, its state) at
    its `updated_at`. So a view older than the newest one applied is ignored: a late `labeled` cannot bring back
    a task whose label was removed since. `updated_at` has whole seconds, and two deliveries of one second
    cannot be ordered from their payloads: while they agree on whether the issue is in the pool (labels picked
    together, a title edit), the one applied last is kept; when they disagree, either may be the newer one, so
    neither wins over the other: nothing changes, and the outbox reads the issue from GitHub (`refresh_issue`),
    whose answer is current and so wins a tie. A deleted or transferred issue is gone whatever time its view
    shows.
    """
    seen = yield one("gh_issue_seen_get", issue.repo, issue.number)
    if seen is not None and issue.state not in GONE:
        if issue.updated_at < seen["updated_at"]:
            return (
                f"issue #{issue.number} as of {iso(issue.updated_at)} is older than its state the pool applied "
                f"({iso(seen['updated_at'])}); ignored"
            )
        if issue.updated_at == seen["updated_at"] and bool(seen["in_pool"]) != in_pool and not issue.current:
            yield run("gh_outbox_insert", "refresh_issue", issue.repo, issue.number, None, now)
            return (
                f"issue #{issue.number}: two deliveries of {iso(issue.updated_at)} disagree on whether it is in "
                "the pool; reading it from GitHub"
            )
    yield run("gh_issue_seen_set", issue.repo, issue.number, issue.updated_at, int(in_pool))
    return None


@dataclass(frozen=True, slots=True)
class SyncResult:
    created: int
    updated: int
    unchanged: int
    pulls_linked: int
    notes: list[str]


def sync_repo(
    repo: str,
    issues: list[IssueRef],
    pulls: list[PullRef],
    settings: Settings,
    now: float,
    github_id: int | None = None,
) -> Op[SyncResult]:
    """The initial sync: each open ready issue becomes (or updates) a task; open PRs are linked or counted; the
    repo's GitHub repository id is remembered."""
    if github_id is not None:
        yield run("gh_repo_name_seen", github_id, repo)
    outcomes: dict[str, int] = {}
    notes: list[str] = []
    for issue in issues:
        outcome, note = yield from reconcile_issue(issue, "github:sync", settings, now)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if note and outcome not in ("created", "updated", "unchanged"):
            notes.append(note)
    linked = 0
    for pull in pulls:
        yield from pull_changed(pull, "github:sync", now)
        row = yield one("gh_pull_get", repo, pull.number)
        linked += row is not None and row["task_id"] is not None
    return SyncResult(
        outcomes.get("created", 0),
        outcomes.get("updated", 0) + outcomes.get("ready", 0),
        outcomes.get("unchanged", 0),
        linked,
        notes,
    )


def set_installation(repo: str, installation_id: int | None, now: float) -> Op[None]:
    yield run("gh_repo_set_installation", repo, installation_id, now)


# ------------------------------------------------------------------ pull requests


def linked_tasks(pull: PullRef) -> Op[list[Row]]:
    """Tasks a PR names: `Closes #12` / `Fixes owner/repo#12` in title or body, or branch `owp/<task_id>`."""
    found: dict[str, Row] = {}
    for other_repo, number in _CLOSING.findall(f"{pull.title}\n{pull.body}"):
        if (other_repo and other_repo.lower() != pull.repo.lower()) or int(number) > MAX_ISSUE_NUMBER:
            continue  # another repo's issue, or no issue at all
        task = yield one("task_of_issue", pull.repo, int(number))
        if task is not None:
            found[task["id"]] = task
    branch = _BRANCH.match(pull.head_ref)
    if branch:
        task = yield one("task_get", branch.group(1))
        if task is not None and task["repo"] == pull.repo:
            found[task["id"]] = task
    return list(found.values())


def pull_changed(pull: PullRef, actor: str, now: float) -> Op[str | None]:
    """opened/reopened/edited: link → `pr_opened`; merged → `merged`; closed unmerged → back to `ready`.
    PRs that name no pool task count against the repo's review budget as external PRs."""
    tasks = yield from linked_tasks(pull)
    state = "open" if pull.state == "open" else ("merged" if pull.merged else "closed")
    known = yield one("gh_pull_get", pull.repo, pull.number)
    dropped: list[Row] = []
    if known is not None and known["task_id"] and all(t["id"] != known["task_id"] for t in tasks):
        task = yield one("task_get", known["task_id"])
        if tasks and state == "open":
            dropped.append(task)  # edited to name other tasks: the one it named before goes back to the pool
        else:
            tasks.append(task)  # the reference was removed, or the PR ended: it stays the task's PR
    # a task its worker reported pr_opened with this PR's URL is followed too, whatever the PR says, when the
    # worker wrote the PR: a URL alone does not make someone else's PR (its merge, its reviews) the worker's
    reported: list[str] = []
    for task in (yield rows("gh_tasks_of_pr", pull.repo, pull.number)):
        if task["voided_lease_id"] is not None:  # a report of this PR was voided: wrongly, when the worker wrote it
            if pull.created_at is not None and pull.created_at > task["reported_at"] + REPORTED_PR_OPENED_WITHIN:
                reported.append(f"PR #{pull.number} was opened well after task {task['id']}'s report of that number "
                                "was voided: another pull request, which does not take the void back")
                continue  # a report that named a number before it existed (a typo): GitHub gave it to a later PR
            if (yield from _reporter_wrote(task["reporter_id"], pull.author)):
                named = any(t["id"] == task["id"] for t in tasks)
                followed, note = yield from void_taken_back(task, pull, named, actor, now)
                reported.append(note)
                if followed is not None:
                    tasks = [t for t in tasks if t["id"] != task["id"]] + [followed]
            continue
        if any(t["id"] == task["id"] for t in tasks + dropped):
            continue
        if (yield from _reporter_wrote(task["reporter_id"], pull.author)):
            tasks.append(task)
        elif state == "open":
            reported.append(f"task {task['id']} reported PR #{pull.number}, which @{pull.author} opened, not its "
                            "worker; not followed")
        else:  # the PR it reported ended: the task goes back to the pool, with no credit for someone else's work
            reported.append((yield from close_pull(
                task, pull, actor, now, f"{state}, but @{pull.author} opened it, not the worker who reported it "
                                        "(a worker's PR is followed by its github_handle, or by `Closes #N`)")))
    yield run(
        "gh_pull_upsert",
        pull.repo,
        pull.number,
        tasks[0]["id"] if tasks else None,
        pull.author,
        pull.url,
        state,
        now,
    )
    yield run("gh_repo_recount_external", pull.repo)
    notes: list[str] = []
    for task in dropped:
        notes.append((yield from close_pull(task, pull, actor, now, "no longer names this issue")))
    for task in tasks:
        if state == "open":
            notes.append((yield from link_pull(task, pull, actor, now)))
        elif state == "merged":
            notes.append((yield from merge_pull(task, pull, actor, now)))
        else:
            notes.append((yield from close_pull(task, pull, actor, now)))
    if not tasks:
        external = (
            f"PR #{pull.number} names no pool task; counted as an external PR"
            if state == "open" or known is not None
            else None
        )
        return "; ".join(n for n in (external, *reported) if n) or None
    return "; ".join(n for n in (*notes, *reported) if n)


CHECK_ACTOR = "github:check"


def report_checked(task_id: str, repo: str, number: int, pull: PullRef | None, now: float) -> Op[str]:
    """GitHub's answer to a worker's `pr_opened` (the outbox's `check_pull`, queued by ops.check_reported_pull):
    `pull` as GitHub shows PR #`number` of `repo` now, or None when GitHub has no such PR (404/410).

    The worker's own PR (by its github_handle), or one linked to the task (linked_tasks: it names the task's issue,
    or comes from its branch `owp/<task_id>`, an imported task's only link), is applied as its webhook would be
    (pull_changed). A PR that does not exist, or someone else's that is not linked, is not followed (the rule of
    pull_changed), so no webhook would ever end the task: the report is voided at once.

    A repo renamed while GitHub was asked under its former name (a waiting job follows the rename, one in flight
    cannot) has the PR read again under its new name: GitHub redirects the former name only until another repo takes
    it, and then its answer would be about that repo's PR.
    """
    task = yield one("task_get", task_id)
    if task is None or task["status"] != TaskStatus.PR_OPENED or task["pr_number"] != number:
        return f"PR #{number} of {repo} checked; task {task_id} moved on since it was reported"
    if task["repo"] != repo:  # only a rename moves a task to another repo name
        yield run("gh_outbox_insert", "check_pull", task["repo"], number, task_id, now)
        return f"PR #{number} of {repo} checked, but {repo} is {task['repo']} now: PR #{number} is read again there"
    if pull is None:
        # GitHub's REST API may lag behind its webhooks: an open PR a delivery showed exists; it is the worker's
        # when that delivery linked it to this task, or its author is the worker
        known = yield one("gh_pull_get", repo, number)
        if known is not None and known["state"] == "open" and (
            known["task_id"] == task_id
            or (known["task_id"] is None and (yield from _reporter_wrote(task["worker_id"], known["author"])))
        ):
            yield run("gh_pull_upsert", repo, number, task_id, known["author"], known["url"], "open", now)
            yield run("gh_repo_recount_external", repo)
            return f"PR #{number} checked: its webhook showed it, GitHub's API not yet; task {task_id} follows it"
        return (yield from void_report(task, "not_found", f"GitHub has no pull request #{number} in {repo}", now))
    named = any(t["id"] == task_id for t in (yield from linked_tasks(pull)))
    if named or (yield from _reporter_wrote(task["worker_id"], pull.author)):
        return (yield from pull_changed(pull, CHECK_ACTOR, now)) or f"PR #{number} checked: task {task_id} follows it"
    issue = issue_of(task)
    unlinked = f"does not say `Closes #{issue}`" if issue is not None else f"its branch is not `owp/{task_id}`"
    why = f"#{number} was opened by @{pull.author}, not by the worker who reported it, and {unlinked}"
    return (yield from void_report(task, "not_theirs", why, now))


def issue_of(task: Row) -> int | None:
    """The GitHub issue the task is, which the bot writes on; None for an imported task, whose issue_number only
    says what it is about (the write-back leaves it alone too, gh_writeback_candidates)."""
    return task["issue_number"] if task["source"] == "github" else None


def void_report(task: Row, reason: str, why: str, now: float) -> Op[str]:
    """A worker's pr_opened that GitHub does not confirm: the task goes back to the pool, the lease's completion
    is taken back and the lease counts as expired (`lease.voided`, migration 022: it delivered nothing; a PR closed
    unmerged would count a review the maintainers never made), and the bot tells the worker on the issue (an
    imported task has none: the worker reads why in the task's history, `lease.voided` and `task.requeued`). The
    lease is `voided`, and the PR it reported is remembered (migration 023): should a delivery show it as the
    worker's after all, the void is taken back (void_taken_back)."""
    number, worker_id, issue = task["pr_number"], task["worker_id"], issue_of(task)
    voided = yield one("gh_lease_void", task["id"], worker_id, number)
    yield ops.emit(now, "lease.voided", CHECK_ACTOR, task["id"], task["repo"], worker_id=worker_id,
                   lease_id=None if voided is None else voided["lease_id"], pr_number=number, pr_url=task["pr_url"],
                   reason=reason, message=why)
    yield from ops.move_task(task, TaskStatus.READY, None, now)
    yield ops.emit(now, "task.requeued", CHECK_ACTOR, task["id"], task["repo"], previous=TaskStatus.PR_OPENED.value,
                   reason=f"reported PR #{number} not confirmed: {why}", worker_id=worker_id)
    worker = None if worker_id is None else (yield one("worker_get", worker_id))
    yield from enqueue_comment(
        task["repo"],
        issue,
        now,
        (
            f"{_mention(worker)} reported pull request #{number} for this issue, but {why}. The report does not "
            "count: the task is back in the pool. Report the URL of a pull request you opened, or one that says "
            f"`Closes #{issue}`."
        ),
    )
    return f"task {task['id']} reported PR #{number}, but {why}: report voided, task ready again"


def void_taken_back(task: Row, pull: PullRef, named: bool, actor: str, now: float) -> Op[tuple[Row | None, str]]:
    """A delivery shows the PR a voided report named (`task`, a row of gh_tasks_of_pr with the voided lease) as its
    reporter's: GitHub's API had not shown it yet when the report was checked. The void was wrong and is taken back
    (`lease.unvoided`: the lease completed after all, migration 023). A task still in the pool (ready, or offered to
    someone: the offer is revoked, as link_pull does) follows the PR again as the reporter's: the task as it is now.
    A task that moved on (leased to another worker, another PR, merged, cancelled) keeps its course (None): unless
    the PR names it, a URL alone does not make the PR the new holder's, and taking the task from its holder would
    discard that worker's work; the bot tells the maintainers on the issue, as link_pull does for a leased task."""
    lease_id, worker_id, number = task["voided_lease_id"], task["reporter_id"], pull.number
    yield run("gh_lease_unvoid", lease_id)
    yield ops.emit(now, "lease.unvoided", actor, task["id"], task["repo"], lease_id=lease_id, worker_id=worker_id,
                   pr_number=number, pr_url=pull.url)
    reporter = yield one("worker_get", worker_id)
    status = TaskStatus(task["status"])
    said = (f"{_mention(reporter)}'s pull request #{number}, whose report the pool voided, exists after all: GitHub "
            "had not shown it yet when the pool checked it. The report counts again")
    followed: Row | None = None
    if status in (TaskStatus.READY, TaskStatus.OFFERED):
        yield from ops.end_offer(task, OfferState.REVOKED, now, actor, "pr_opened")
        followed = yield from ops.move_task(task, TaskStatus.PR_OPENED, worker_id, now, pull.url, number)
        yield ops.emit(now, "task.pr_opened", actor, task["id"], task["repo"], previous=status.value, pr_url=pull.url,
                       message=f"PR #{number} by @{pull.author}, whose report was voided", worker_id=worker_id)
        said += f", and the task follows #{number}."
        note = f"PR #{number} by @{pull.author}, whose report was voided: task {task['id']} follows it again"
    elif named:  # the PR names the task: linked or not by the usual rules (link_pull), which say so
        said += "."
        note = f"PR #{number} by @{pull.author}, whose report was voided: the void of task {task['id']} taken back"
    else:
        holder = None if task["worker_id"] is None else (yield one("worker_get", task["worker_id"]))
        held = "" if holder is None else f", held by {_mention(holder)}"
        said += (f". Meanwhile the task is {status.value.replace('_', ' ')}{held}, so #{number} is not linked to it"
                 + ("; maintainers, please decide who carries it on." if status in IN_FLIGHT else "."))
        note = (f"PR #{number} by @{pull.author}, whose report was voided: the void taken back; task {task['id']} "
                f"is {status.value}, not linked")
    yield from enqueue_comment(task["repo"], issue_of(task), now, said)
    return followed, note


def _reporter_wrote(worker_id: str | None, author: str) -> Op[bool]:
    """Whether the worker `worker_id` (one that reported a PR) is the GitHub user `author` (by its github_handle)."""
    worker = None if worker_id is None else (yield one("worker_get", worker_id))
    handle = worker["github_handle"] if worker is not None else None
    return handle is not None and handle.lower() == author.lower()


def link_pull(task: Row, pull: PullRef, actor: str, now: float) -> Op[str]:
    status = TaskStatus(task["status"])
    if status is TaskStatus.PR_OPENED:
        if task["pr_number"] == pull.number:
            return f"PR #{pull.number} already linked to {task['id']}"
        return f"task {task['id']} already has PR #{task['pr_number']}; PR #{pull.number} recorded"
    if status in (TaskStatus.MERGED, TaskStatus.CANCELLED):
        return f"task {task['id']} is {status.value}; PR #{pull.number} not linked"
    holder = None if task["worker_id"] is None else (yield one("worker_get", task["worker_id"]))
    message = f"PR #{pull.number} by @{pull.author}"
    if status in LEASED:
        yield from ops.report_status(
            task["id"], "pr_opened", now, worker_id=None, pr_url=pull.url, actor=actor, message=message
        )
        holder_handle = holder["github_handle"] if holder is not None else None
        if holder_handle is None or holder_handle.lower() != pull.author.lower():
            yield from enqueue_comment(
                pull.repo,
                issue_of(task),
                now,
                (
                    f"@{pull.author} opened #{pull.number} for this issue, which is leased to "
                    f"{_mention(holder)}. The PR is linked; maintainers, please decide who carries it on."
                ),
            )
        return f"PR #{pull.number} linked: task {task['id']} pr_opened"
    # ready or offered: nobody holds a lease, yet the PR exists and now occupies the review budget
    author = yield one("worker_by_handle", pull.author)
    yield from ops.end_offer(task, OfferState.REVOKED, now, actor, "pr_opened")
    yield from ops.move_task(task, TaskStatus.PR_OPENED, author["id"] if author else None, now, pull.url,
                            pull.number)
    yield ops.emit(
        now,
        "task.pr_opened",
        actor,
        task["id"],
        task["repo"],
        previous=status.value,
        pr_url=pull.url,
        message=message,
        without_lease=True,
        worker_id=author["id"] if author else None,
    )
    yield from enqueue_comment(
        pull.repo,
        issue_of(task),
        now,
        (
            f"@{pull.author} opened #{pull.number} for this issue without holding a lease. It is linked and "
            "counts against the review budget; next time, `/owp claim` first so nobody duplicates the work."
        ),
    )
    return f"PR #{pull.number} linked without a lease: task {task['id']} pr_opened"


def merge_pull(task: Row, pull: PullRef, actor: str, now: float) -> Op[str]:
    status = TaskStatus(task["status"])
    if status in (TaskStatus.READY, TaskStatus.OFFERED):
        yield from link_pull(task, pull, actor, now)
        task = yield one("task_get", task["id"])
        status = TaskStatus(task["status"])
    if status is TaskStatus.PR_OPENED and task["pr_number"] not in (None, pull.number):
        return f"PR #{pull.number} merged, but task {task['id']} follows PR #{task['pr_number']}"
    if status in LEASED | {TaskStatus.PR_OPENED}:
        yield from ops.report_status(
            task["id"],
            "merged",
            now,
            worker_id=None,
            pr_url=pull.url,
            actor=actor,
            message=f"PR #{pull.number} merged",
        )
        return f"PR #{pull.number} merged: task {task['id']} merged"
    return f"PR #{pull.number} merged; task {task['id']} is {status.value}, unchanged"


def close_pull(task: Row, pull: PullRef, actor: str, now: float, why: str = "closed without merging") -> Op[str]:
    if TaskStatus(task["status"]) is not TaskStatus.PR_OPENED or task["pr_number"] != pull.number:
        return f"PR #{pull.number} {why}; task {task['id']} is {task['status']}, unchanged"
    yield ops.emit(
        now,
        "github.pr_closed",
        actor,
        task["id"],
        task["repo"],
        pr_number=pull.number,
        pr_url=pull.url,
        worker_id=task["worker_id"],
    )
    yield from ops.report_status(
        task["id"],
        "ready",
        now,
        worker_id=None,
        actor=actor,
        message=f"PR #{pull.number} {why}",
    )
    return f"PR #{pull.number} {why}: task {task['id']} ready again"


def _task_of_pull(repo: str, pull_number: int, author: str) -> Op[tuple[Row | None, bool]]:
    """The task a PR is for, and whether its worker may be credited with the PR: a PR the pool linked, or one
    only the worker's report names (by URL) that the worker itself opened."""
    pull = yield one("gh_pull_get", repo, pull_number)
    task: Row | None = None
    if pull is not None and pull["task_id"]:
        task = yield one("task_get", pull["task_id"])
        if task is not None:
            return task, True
    task = yield one("gh_task_by_pr", repo, pull_number)
    return task, task is not None and (yield from _reporter_wrote(task["worker_id"], author))


def review_submitted(
    repo: str, pull_number: int, author: str, state: str, reviewer: str, review_id: int, now: float
) -> Op[str | None]:
    """Approvals and change requests on a linked PR (opened by `author`): the PR-quality input of reputation."""
    task, creditable = yield from _task_of_pull(repo, pull_number, author)
    if task is None:
        return None
    # approvals and change requests are what reputation counts (its PR-quality input); comments are kept too
    counted = state.lower() in ("approved", "changes_requested")
    # the author is the task's worker only while this PR is the task's: an old PR of a task that went back to the
    # pool (and maybe to another worker) is recorded, and counted for nobody
    current = task["pr_number"] == pull_number and task["status"] in (TaskStatus.PR_OPENED, TaskStatus.MERGED)
    worker_id = task["worker_id"] if current and creditable else None
    if counted:  # kept apart from the log, which retention prunes: its dismissal takes back exactly this
        yield run("gh_review_count", review_id, task["id"], worker_id, state.lower())
    yield ops.emit(
        now,
        f"review.{state.lower()}" if counted else "github.review",
        actor_of(reviewer),
        task["id"],
        repo,
        state=state.lower(),
        pr_number=pull_number,
        review_id=review_id,
        reviewer=reviewer,
        worker_id=worker_id,
    )
    return f"review {state.lower()} on PR #{pull_number} recorded for task {task['id']}"


def review_dismissed(repo: str, pull_number: int, review_id: int, dismisser: str, now: float) -> Op[str | None]:
    """A dismissed approval or change request is taken back: `review.dismissed` takes its weight out of the
    author's reputation (the outcome trigger), once, for the worker it was counted for (gh_reviews: the review's
    own event may be pruned by now)."""
    counted = yield one("gh_review_dismiss", review_id)
    if counted is None:
        return None  # never counted, or already taken back
    task_id, dismissed = counted["task_id"], counted["state"]
    yield ops.emit(now, "review.dismissed", actor_of(dismisser), task_id, repo, dismissed=dismissed,
                   pr_number=pull_number, review_id=review_id, worker_id=counted["worker_id"])
    return f"review {review_id} ({dismissed}) on PR #{pull_number} dismissed: it no longer counts for task {task_id}"


# ------------------------------------------------------------------ /owp commands


def parse_commands(body: str) -> list[tuple[str, list[str]]]:
    """Each line that starts with `/owp`: (subcommand, arguments); a quoted `> /owp` is not a command."""
    found = []
    for line in body.splitlines():
        words = line.strip().split()
        if words and words[0].lower() == "/owp":
            found.append(((words[1].lower() if len(words) > 1 else ""), words[2:]))
    return found


HELP = (
    "I understand `/owp claim` (lease this issue to you), `/owp release` (give it back) and "
    "`/owp status` (who holds it, until when, and the review budget)."
)


def commands(
    repo: str, issue_number: int, login: str, body: str, settings: Settings, now: float
) -> Op[str | None]:
    """Run the `/owp` lines of a comment and queue one reply with every answer."""
    parsed = parse_commands(body)
    if not parsed:
        return None
    answers = []
    for sub, _ in parsed:
        if sub == "claim":
            answers.append((yield from claim(repo, issue_number, login, settings, now)))
        elif sub == "release":
            answers.append((yield from release(repo, issue_number, login, now)))
        elif sub == "status":
            answers.append((yield from status_text(repo, issue_number, now)))
        else:
            answers.append(f"`/owp {sub}` is not a command I know. {HELP}")
    yield from enqueue_comment(repo, issue_number, now, f"@{login} " + "\n\n".join(answers))
    return f"/owp {', '.join(s or '(none)' for s, _ in parsed)} from @{login} on #{issue_number}"


def _commander(repo: str, issue_number: int, login: str) -> Op[tuple[Row | None, Row | None, str | None]]:
    worker = yield one("worker_by_handle", login)
    task = yield one("task_of_issue", repo, issue_number)
    if worker is None:
        return (
            None,
            task,
            (
                f"you are not a registered worker of this pool. Register with "
                f'`POST /v1/workers/register` and `"github_handle": "{login}"`, then try again.'
            ),
        )
    if task is None:
        return worker, None, "this issue is not in the pool; a maintainer adds it with the ready label."
    return worker, task, None


def claim(repo: str, issue_number: int, login: str, settings: Settings, now: float) -> Op[str]:
    """`/owp claim`: the same eligibility rules as `GET /v1/work`, for this task: a lease or the reason."""
    worker, task, refusal = yield from _commander(repo, issue_number, login)
    if refusal is not None or worker is None or task is None:
        return refusal or ""
    if task["worker_id"] == worker["id"] and TaskStatus(task["status"]) in LEASED:
        lease = yield one("lease_active_of_task", task["id"])
        return f"you already hold this task (`{task['id']}`) until {iso(lease['expires_at'])}."
    repo_row = yield from ops.load_repo(repo)
    view = yield from ops.worker_view(worker, now, settings)
    load = ops.repo_load(repo_row)
    declined = {
        r["task_id"] for r in (yield rows("declined_since", worker["id"], now - settings.decline_cooldown))
    }
    reason = ineligibility(ops.task_view(task), view, load, task["id"] in declined)
    if reason is not None:
        yield ops.emit(
            now,
            "github.claim_refused",
            actor_of(login),
            task["id"],
            repo,
            worker_id=worker["id"],
            reason=reason.value,
        )
        return "I cannot lease this to you: " + refusal_text(reason, task, view, load)
    leased = yield from ops.grant_lease(task, repo_row, worker["id"], now, settings, actor_of(login))
    return (
        f"this task (`{task['id']}`) is leased to you until {iso(leased['lease_expires_at'])} "
        f"(lease `{leased['lease_id']}`). "
        f"Open a PR that says `Closes #{issue_number}` or push branch `owp/{task['id']}`; "
        "renew the lease from your worker if you need longer, or `/owp release` to give it back."
    )


def refusal_text(reason: Ineligible, task: Row, worker: WorkerView, repo: RepoLoad) -> str:
    """The exact reason a claim is refused, with what to do about it."""
    match reason:
        case Ineligible.NOT_READY:
            return f"it is {task['status']}, not ready; `/owp status` shows who holds it."
        case Ineligible.MISSING_SKILLS:
            missing = sorted(set(ops.skills_of(task)) - worker.skills)
            return f"it needs skills you have not registered: {', '.join(missing)}."
        case Ineligible.INSUFFICIENT_CAPACITY if worker.points_in_use > worker.capacity_points:
            return (
                f"you hold {worker.points_in_use} points, more than your capacity of {worker.capacity_points} "
                "(a task you hold was re-estimated); finish or release a task first."
            )
        case Ineligible.INSUFFICIENT_CAPACITY:
            free = worker.capacity_points - worker.points_in_use
            return (
                f"it is {task['estimate_points']} points and you have {free} of {worker.capacity_points} "
                "free; finish or release a task first."
            )
        case Ineligible.REVIEW_BUDGET_FULL:
            return (
                f"the review budget of {repo.repo} is full ({repo.in_flight}/{repo.max_open_prs} PRs and "
                "leases in flight); try again when a PR merges."
            )
        case Ineligible.AREA_LOCKED:
            return (
                f"someone already works in area `{task['area']}` of {repo.repo}; try again when that lands."
            )
        case _:
            return describe(reason, 1, repo, worker)


def release(repo: str, issue_number: int, login: str, now: float) -> Op[str]:
    worker, task, refusal = yield from _commander(repo, issue_number, login)
    if refusal is not None or worker is None or task is None:
        return refusal or ""
    if task["worker_id"] != worker["id"] or TaskStatus(task["status"]) not in LEASED:
        return "you do not hold a lease on this task, so there is nothing to release."
    yield from ops.report_status(
        task["id"],
        "released",
        now,
        worker_id=worker["id"],
        actor=actor_of(login),
        message="released with /owp release",
    )
    return "released: the task is back in the pool. Thank you for saying so."


def status_text(repo: str, issue_number: int, now: float) -> Op[str]:
    task = yield one("task_of_issue", repo, issue_number)
    if task is None:
        return "this issue is not in the pool."
    repo_row = yield from ops.load_repo(repo)
    budget = yield from ops.budget(repo_row)
    held = ""
    if task["worker_id"] is not None:
        worker = yield one("worker_get", task["worker_id"])
        lease = yield one("lease_active_of_task", task["id"])
        held = f", held by {_mention(worker)}" + (f" until {iso(lease['expires_at'])}" if lease else "")
    pr = f", PR #{task['pr_number']}" if task["pr_number"] else ""
    return (
        f"task `{task['id']}` is **{task['status']}**{held}{pr}. Review budget of {repo}: "
        f"{budget.in_flight}/{budget.max_open_prs} in flight ({budget.open_prs} open PRs, {budget.leases} "
        f"leases, {budget.offers} offers)."
    )


def _mention(worker: Row | None) -> str:
    if worker is None:
        return "nobody"
    return f"@{worker['github_handle']}" if worker["github_handle"] else f"worker {_inert(worker['name'])}"


def _inert(text: str) -> str:
    """Free text anyone may choose (a worker's name) as one code span: GitHub renders no @mention, link or
    heading from it in the bot's comment."""
    return "`" + " ".join(text.replace("`", "'").split()) + "`"


# ------------------------------------------------------------------ the outbox


def enqueue_comment(repo: str, issue_number: int | None, now: float, body: str) -> Op[None]:
    if issue_number is not None:
        yield run("gh_outbox_insert", "comment", repo, issue_number, body, now)


def plan_writebacks(now: float, limit: int = 1000) -> Op[int]:
    """Tail the event log: every state change of an issue's task queues one sync of that issue (coalesced)."""
    cursor = (yield one("gh_cursor_get", "writeback"))["seq"]
    found = yield rows("gh_writeback_candidates", cursor, limit)
    if not found:
        return 0
    for row in found:
        if row["type"] in WRITEBACK_EVENTS and row["issue_number"] is not None:
            yield run("gh_outbox_sync_issue", row["repo"], row["issue_number"], now)
    yield run("gh_cursor_set", "writeback", found[-1]["seq"])
    return len(found)


def claim_jobs(now: float, limit: int, hold: float, plan: bool = False) -> Op[list[Row]]:
    """The due jobs, each claimed for `hold` seconds (after planning write-backs, with `plan`): a job is made
    by the replica that claimed it, not by every replica whose outbox woke; one whose replica died while
    making it is due again when the hold ends."""
    if plan:
        yield from plan_writebacks(now)
    claimed = yield rows("gh_outbox_claim", now, limit, now + hold)
    return sorted(claimed, key=lambda r: r["id"])


def finish_job(job_id: int, state: str, error: str | None, now: float) -> Op[None]:
    yield run("gh_outbox_finish", job_id, state, error, now)


def retry_job(job_id: int, not_before: float, error: str, now: float) -> Op[None]:
    yield run("gh_outbox_retry", job_id, not_before, error, now)


def outbox_counts() -> Op[dict[str, int]]:
    return {r["state"]: r["n"] for r in (yield rows("gh_outbox_counts"))}


@dataclass(frozen=True, slots=True)
class IssueWriteback:
    """What the bot should show on an issue now: one status comment (or none yet) and its pool:* labels."""

    installation_id: int | None
    comment_id: int | None
    comment_body: str | None
    labels_set: tuple[str, ...]
    want_body: str | None
    want_labels: tuple[str, ...]


def issue_writeback(repo: str, issue_number: int, now: float) -> Op[IssueWriteback | None]:
    task = yield one("task_of_issue", repo, issue_number)
    if task is None:
        return None
    written = yield one("gh_issue_writes_get", repo, issue_number)
    gh_repo = yield one("gh_repo_get", repo)
    status = TaskStatus(task["status"])
    worker = None if task["worker_id"] is None else (yield one("worker_get", task["worker_id"]))
    lease = yield one("lease_active_of_task", task["id"])
    labels: tuple[str, ...] = ()
    if status in LEASED:
        labels = ("pool:leased",)
    elif status is TaskStatus.PR_OPENED:
        labels = ("pool:pr-open",)
    body: str | None = status_comment(task, status, worker, lease)
    had_comment = written is not None and written["comment_id"] is not None
    if status is TaskStatus.READY and not had_comment:
        body = None  # a freshly imported task needs no comment; one appears once someone claims it
    return IssueWriteback(
        installation_id=gh_repo["installation_id"] if gh_repo else None,
        comment_id=written["comment_id"] if written else None,
        comment_body=written["comment_body"] if written else None,
        labels_set=tuple(json.loads(written["labels"])) if written else (),
        want_body=body,
        want_labels=labels,
    )


STATUS_MARKER = "<!-- owp-pool:status -->"


def status_comment(task: Row, status: TaskStatus, worker: Row | None, lease: Row | None) -> str:
    who = _mention(worker)
    lines = {
        TaskStatus.READY: "🟢 **Open for the pool** — the last lease ended. A registered worker can take it "
        "with `/owp claim`.",
        TaskStatus.OFFERED: f"⏳ **Offered** to {who}; it returns to the pool if they decline.",
        TaskStatus.PR_OPENED: f"🔍 **PR open**: #{task['pr_number']} by {who} — waiting for review.",
        TaskStatus.MERGED: f"✅ **Merged** in #{task['pr_number']}. Thank you, {who}!",
        TaskStatus.CANCELLED: "⚪ **Removed from the pool** (issue closed or ready label removed).",
    }
    if status in LEASED:
        until = f" until {iso(lease['expires_at'])}" if lease else ""
        text = (
            f"🔒 **Leased** to {who}{until} ({status.value.replace('_', ' ')}). Others: please pick "
            "another issue so that nobody duplicates the work."
        )
    else:
        text = lines[status]
    return f"{STATUS_MARKER}\n{text}\n\n<sub>OWP Pool · task `{task['id']}` · `/owp status` for details</sub>"


def job_repo(job_id: int) -> Op[str]:
    """The repo of an outbox job as it is now: a rename while GitHub was asked under the former name (GitHub
    redirects it) moved the job's row with the repo (gh_repo_rename), so its answer is applied under the new name."""
    found: Row = yield one("gh_outbox_repo", job_id)
    return str(found["repo"])


def issue_refreshed(job_id: int, issue: IssueRef, settings: Settings, now: float) -> Op[str | None]:
    """The outbox's `refresh_issue`: the issue as GitHub shows it now, applied under its repo's current name."""
    return (yield from issue_changed(replace(issue, repo=(yield from job_repo(job_id))), "github:refresh", settings,
                                     now))


def record_issue_write(
    job_id: int, issue_number: int, comment_id: int | None, body: str | None, labels: Iterable[str]
) -> Op[None]:
    """What the outbox's `sync_issue` wrote on the issue, under its repo's current name: the next sync edits the
    same status comment."""
    repo = yield from job_repo(job_id)
    yield run("gh_issue_writes_upsert", repo, issue_number, comment_id, body, json.dumps(sorted(labels)))


# ------------------------------------------------------------------ manifest flow


def remember_setup_state(state: str, expires_at: float) -> Op[None]:
    yield run("gh_setup_state_insert", state, expires_at)


def take_setup_state(state: str, now: float) -> Op[bool]:
    """A manifest-flow `state` an admin started and that has not expired; it works once."""
    return bool((yield run("gh_setup_state_take", state, now)))


def store_credentials(
    app_id: int,
    slug: str,
    html_url: str | None,
    private_key: str,
    webhook_secret: str,
    client_id: str | None,
    client_secret: str | None,
    now: float,
) -> Op[None]:
    yield run(
        "gh_credentials_upsert",
        app_id,
        slug,
        html_url,
        private_key,
        webhook_secret,
        client_id,
        client_secret,
        now,
    )
    yield ops.emit(now, "github.app_created", ops.ADMIN, str(app_id), None, slug=slug)


def stored_credentials() -> Op[Row | None]:
    row: Row | None = yield one("gh_credentials_get")
    return row
