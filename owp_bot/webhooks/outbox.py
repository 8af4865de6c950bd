"""The durable outbox: calls to GitHub wait in the database and are made by one background worker.

Webhook handlers answer GitHub within its 10 seconds because they only write rows; this worker tails the
event log for state changes of GitHub tasks (each queues one coalesced `sync_issue`), then makes the due
calls: it edits the issue's one status comment, keeps the `pool:*` labels in step, posts `/owp` replies, and
reads an issue whose deliveries could not be ordered (`refresh_issue`, see github_operations.out_of_order),
reads a pull request a worker reported (`check_pull`, see github_operations.report_checked), and reads a repo's
name by its repository id when a delivery came under a name the pool never saw for it (`repo_name`, see
github_operations.delivery_repo).
A rate limit postpones a job until GitHub's reset, a 5xx retries with exponential backoff, a 404 marks it
gone; a job survives a restart because it is a row, not a coroutine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

from owp_bot.scheduler import github_operations as gh
from owp_bot.scheduler.service import NOW, Scheduler
from owp_bot.scheduler.store import Row
from owp_bot.webhooks import issues, pulls
from owp_bot.webhooks.auth import AppAuth, credentials_from
from owp_bot.webhooks.client import GitHubClient, GitHubError, repo_path

log = logging.getLogger(__name__)
BACKOFF_BASE = 30.0
BACKOFF_MAX = 3600.0
MAX_ATTEMPTS = 8  # transient failures; rate limits wait as long as GitHub says
BATCH = 10
# A replica claims BATCH due jobs for this long (the other replicas skip them): longer than a batch takes even
# when GitHub times out, short enough that the jobs of a replica that died are made soon after by another.
CLAIM_HOLD = 600.0
# After a wake-up, the worker waits this long for more commits before its round. Planning write-backs is a
# write transaction, and woken by every commit it was half of all transactions under load (bench/RESULTS.md);
# a second more before GitHub shows a change is nothing beside GitHub's own delays.
SETTLE = 1.0


def backoff(attempts: int) -> float:
    """Seconds before retry number `attempts + 1` after a transient failure: 30 s, 60 s, … up to 1 h."""
    return float(min(BACKOFF_BASE * 2**attempts, BACKOFF_MAX))


class Outbox:
    def __init__(self, scheduler: Scheduler, client: GitHubClient, auth: AppAuth) -> None:
        self.scheduler = scheduler
        self.client = client
        self.auth = auth
        self._lock = asyncio.Lock()

    async def run_due(self) -> int:
        """Plan write-backs from new events, then make every call that is due; returns how many jobs ran."""
        async with self._lock:
            if not self.auth.credentials.can_sign:  # the manifest flow may have stored some since, on any replica
                stored = await self.scheduler.run(gh.stored_credentials, write=False)
                if stored is not None:
                    self.auth.use(credentials_from(self.scheduler.settings, stored))
            jobs = await self.scheduler.run(gh.claim_jobs, NOW, BATCH, CLAIM_HOLD, plan=True)
            done = 0
            while True:
                for job in jobs:
                    await self._run(job)
                done += len(jobs)
                if len(jobs) < BATCH:
                    return done
                jobs = await self.scheduler.run(gh.claim_jobs, NOW, BATCH, CLAIM_HOLD)

    async def _run(self, job: Row) -> None:
        job_id, attempts = job["id"], job["attempts"]
        try:
            if job["kind"] == "sync_issue":
                await self._sync_issue(job_id, job["repo"], job["issue_number"])
            elif job["kind"] == "refresh_issue":
                await self._refresh_issue(job_id, job["repo"], job["issue_number"])
            elif job["kind"] == "check_pull":  # issue_number: the PR's number; body: the task that reported it
                await self._check_pull(job["repo"], job["issue_number"], job["body"], attempts)
            elif job["kind"] == "repo_name":  # body: GitHub's repository id of the repo
                await self._repo_name(job["repo"], int(job["body"]))
            else:
                await self._comment(job["repo"], job["issue_number"], job["body"])
        except GitHubError as error:
            await self._failed(job_id, attempts, error)
        except Exception as crash:  # a bug must not stop the worker; the job shows up as failed
            log.exception("outbox job %s crashed", job_id)
            reason = repr(crash)
            await self.scheduler.run(gh.finish_job, job_id, "failed", reason, NOW)
        else:
            await self.scheduler.run(gh.finish_job, job_id, "done", None, NOW)

    async def _failed(self, job_id: int, attempts: int, error: GitHubError) -> None:
        """Rate limited: wait for GitHub's reset. Transient: back off. 404: gone. Anything else: failed."""
        message, retry_at = str(error), error.retry_at
        if retry_at is not None:
            log.warning("outbox job %s rate limited until %s: %s", job_id, retry_at, message)
            await self.scheduler.run(gh.retry_job, job_id, retry_at, message, NOW)
        elif error.transient and attempts + 1 < MAX_ATTEMPTS:
            log.warning("outbox job %s failed (attempt %d), retrying: %s", job_id, attempts + 1, message)
            await self.scheduler.run(gh.retry_job, job_id, self.scheduler.now() + backoff(attempts), message, NOW)
        else:
            state = "gone" if error.gone else "failed"
            log.error("outbox job %s %s: %s", job_id, state, message)
            await self.scheduler.run(gh.finish_job, job_id, state, message, NOW)

    async def _token(self, repo: str) -> str:
        gh_repo = await self.scheduler.run(gh.installation_of, repo, write=False)
        return await self.auth.token_for(gh_repo)

    async def _comment(self, repo: str, issue_number: int, body: str) -> None:
        token = await self._token(repo)
        await self.client.call(
            "POST", repo_path(repo, "issues", issue_number, "comments"), token=token, json={"body": body}
        )

    async def _refresh_issue(self, job_id: int, repo: str, issue_number: int) -> None:
        """Apply the issue as GitHub shows it now. A deleted one answers 410 (the job is gone); a transferred one
        redirects to the issue in its new repo, another repo's issue that is not applied as this one (its
        `issues.transferred` delivery takes the task out of the pool)."""
        found, _ = await self.client.call(
            "GET", repo_path(repo, "issues", issue_number), token=await self._token(repo)
        )
        here = str(found.get("repository_url", "")).lower().endswith("/repos/" + repo.lower())
        if found.get("number") != issue_number or not here:
            raise GitHubError(404, f"issue #{issue_number} of {repo} moved to {found.get('html_url')}")
        issue = issues.issue_ref({"issue": found, "repository": {"full_name": repo}}, current=True)
        settings = self.scheduler.settings
        await self.scheduler.run(gh.issue_refreshed, job_id, issue, settings, NOW)

    async def _check_pull(self, repo: str, number: int, task_id: str, attempts: int) -> None:
        """Read the PR a worker reported for `task_id`; a 404 or 410 is an answer too: no such PR. The first 404
        is asked again after the backoff: GitHub's API may not show a pull request created a moment ago yet."""
        pull: gh.PullRef | None = None
        try:
            found, _ = await self.client.call("GET", repo_path(repo, "pulls", number), token=await self._token(repo))
        except GitHubError as error:
            if error.status == 404 and attempts == 0:
                raise replace(error, transient=True) from None
            if not error.gone:
                raise
        else:
            pull = pulls.pull_ref({"pull_request": found, "repository": {"full_name": repo}})
        await self.scheduler.run(gh.report_checked, task_id, repo, number, pull, NOW)

    async def _repo_name(self, repo: str, github_id: int) -> None:
        """Read the name GitHub's repository `github_id`, the pool's `repo`, has now; the pool follows a new one."""
        found, _ = await self.client.call("GET", f"/repositories/{github_id}", token=await self._token(repo))
        current = str(found["full_name"])
        await self.scheduler.run(gh.repo_name_read, repo, current, NOW)

    async def _sync_issue(self, job_id: int, repo: str, issue_number: int) -> None:
        """Make the issue show the task as it is now: labels first, then the one status comment."""
        want = await self.scheduler.run(gh.issue_writeback, repo, issue_number, NOW, write=False)
        if want is None:
            return
        token = await self.auth.token_for(want.installation_id)
        labels = set(want.labels_set)
        for name in sorted(set(gh.POOL_LABELS) - set(want.want_labels)):
            if name in labels:
                with contextlib.suppress(GitHubError):  # already removed by someone: fine
                    await self.client.call(
                        "DELETE", repo_path(repo, "issues", issue_number, "labels", name), token=token
                    )
                labels.discard(name)
        missing = sorted(set(want.want_labels) - labels)
        if missing:
            await self.client.call(
                "POST",
                repo_path(repo, "issues", issue_number, "labels"),
                token=token,
                json={"labels": missing},
            )
            labels |= set(missing)
        comment_id, body = want.comment_id, want.comment_body
        if want.want_body is not None and want.want_body != body:
            comment_id = await self._write_status(repo, issue_number, comment_id, want.want_body, token)
            body = want.want_body
        await self.scheduler.run(
            gh.record_issue_write, job_id, issue_number, comment_id, body, labels
        )

    async def _write_status(
        self, repo: str, issue_number: int, comment_id: int | None, body: str, token: str
    ) -> int:
        if comment_id is not None:
            try:
                await self.client.call(
                    "PATCH",
                    repo_path(repo, "issues", "comments", comment_id),
                    token=token,
                    json={"body": body},
                )
                return comment_id
            except GitHubError as error:
                if not error.gone:
                    raise
                # someone deleted our status comment: post a fresh one
        created, _ = await self.client.call(
            "POST", repo_path(repo, "issues", issue_number, "comments"), token=token, json={"body": body}
        )
        return int(created["id"])


async def outbox_loop(outbox: Outbox, poll: float) -> None:
    """Run due jobs SETTLE seconds after events are committed (the hub wakes it), and at least every `poll`
    seconds."""
    hub = outbox.scheduler.hub
    subscription = hub.subscribe()
    try:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(poll):  # not wait_for, which can lose a cancellation on 3.11
                    await subscription.queue.get()
                await asyncio.sleep(SETTLE)  # the commits of the next moment share this round
            while not subscription.queue.empty():
                subscription.queue.get_nowait()
            if subscription.overflowed:
                subscription = hub.subscribe()
            try:
                await outbox.run_due()
            except Exception:
                log.exception("outbox round failed; retrying in %ss", poll)
    finally:
        subscription.close()
