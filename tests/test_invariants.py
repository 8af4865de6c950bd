"""Invariants of the scheduler under any sequence of actions (hypothesis state machine, real SQLite file).

After every step: no task offered or leased twice; task status, offers and leases agree; review budgets, area
locks, capacity, skills and trust hold (a lease as granted: a re-estimate does not take it away); nothing lapsed
survives a transaction; the counters kept for speed equal what they count; the event log is gap-free. Besides
workers and admins, GitHub acts too: repos are renamed or transferred, issue deliveries arrive out of order,
reported PRs are voided and then delivered, and the pool restarts on its file; requests also queue behind a slow
write while their deadlines pass, and are judged as of their arrival.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import tempfile
import threading
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from owp_bot.clock import ManualClock
from owp_bot.config import Settings
from owp_bot.errors import Problem
from owp_bot.events import EventHub, SequencedHub
from owp_bot.keys import SCHEDULER
from owp_bot.scheduler import github_operations as gh
from owp_bot.scheduler import operations as ops
from owp_bot.scheduler.models import Priority, TrustTier
from owp_bot.scheduler.service import NOW, Scheduler
from owp_bot.scheduler.sqlite_store import SQLiteStore
from owp_bot.scheduler.writer_link import WriterLink, WriterService

SKILLS = ["python", "sql", "docs", "typescript"]
AREAS = [None, "auth", "billing"]
REPOS = ["acme/api", "acme/web"]  # the names the pool starts with; renames move them (self.repos: the names now)
NAMES = ["acme/api", "acme/web", "acme/API", "acme-labs/api", "other/web"]  # what GitHub may rename them to
ISSUES = [1, 2]
IN_FLIGHT = "('offered', 'leased', 'in_progress', 'blocked', 'pr_opened')"  # SQL list literals
HELD = "('offered', 'leased', 'in_progress', 'blocked')"
ISSUE_VIEWS = 1_700_000_000.0  # GitHub's updated_at of the first view of an issue
TASKS = st.builds(
    ops.TaskSpec, repo=st.sampled_from(REPOS), title=st.just("t"), estimate_points=st.integers(1, 4),
    required_skills=st.sets(st.sampled_from(SKILLS), max_size=2).map(lambda s: tuple(sorted(s))),
    area=st.sampled_from(AREAS), priority=st.sampled_from(list(Priority)),
    min_trust=st.sampled_from([TrustTier.BASIC, TrustTier.BASIC, TrustTier.TRUSTED]),
)


class SchedulerMachine(RuleBasedStateMachine):
    workers = Bundle("workers")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="owp-sm-"))
        self.loop = asyncio.new_event_loop()
        self.clock = ManualClock()
        self.settings = Settings(admin_token="x" * 20, db_path=self.dir / "pool.db", lease_ttl=100, lease_max=250,
                                 offer_ttl=10, heartbeat_timeout=200, offline_grace=50, decline_cooldown=30)
        self._start()
        self.db = sqlite3.connect(self.settings.db_path)
        self.db.row_factory = sqlite3.Row
        self.in_flight_seen: dict[str, int] = {}
        self.area_seen: dict[tuple[str, str], set[str]] = {}  # (repo, area) -> its tasks in flight, last step
        self.grants_seen: set[str] = set()  # the pending offers and active leases, last step
        self.repos = list(REPOS)  # their names now
        self.github_time = ISSUE_VIEWS  # the newest updated_at GitHub has shown of any issue
        self.issue_seen: dict[tuple[int, int], tuple[float, bool]] = {}  # (repo index, issue) -> newest view applied

    def _start(self) -> None:
        """The pool's process: `scheduler` is what the rules call, `writer` where the writes are made."""
        self.store = SQLiteStore(self.settings.db_path)
        self.loop.run_until_complete(self.store.open())
        self.scheduler = self.writer = Scheduler(self.store, self.settings, self.clock, EventHub())

    def _stop(self) -> None:
        self.loop.run_until_complete(self.store.close())

    def teardown(self) -> None:
        self.db.close()
        self._stop()
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def run(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(self.scheduler.run(fn, *args, **kwargs))

    def attempt(self, fn, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        """An action a person may try; the pool may refuse it with a problem, never with a crash."""
        try:
            self.run(fn, *args, **kwargs)
        except Problem as problem:
            assert problem.status in (403, 404, 409, 422), problem.detail

    def _row(self, sql: str, *params: Any) -> dict[str, Any] | None:
        found = self.db.execute(sql, params).fetchone()
        return None if found is None else dict(found)

    # ---------------------------------------------------------------- set-up and actions

    @initialize(target=workers, budgets=st.lists(st.integers(1, 3), min_size=2, max_size=2),
                specs=st.lists(TASKS, min_size=4, max_size=12))
    def pool_with_tasks_and_a_generalist(self, budgets: list[int], specs: list[ops.TaskSpec]) -> str:
        for repo, budget in zip(REPOS, budgets, strict=True):
            self.run(ops.upsert_repo, ops.RepoSpec(repo, budget, area_locks=repo == "acme/api"), NOW)
        for spec in specs:
            self.run(ops.put_task, spec, NOW, "test")
        self.in_flight_seen = dict.fromkeys(REPOS, 0)
        worker_id, _ = self.loop.run_until_complete(
            self.scheduler.register("generalist", "generalist", SKILLS, 6, 3, TrustTier.TRUSTED))
        return worker_id

    @rule(spec=TASKS)
    def add_task(self, spec: ops.TaskSpec) -> None:
        spec = replace(spec, repo=self.repos[REPOS.index(spec.repo)])  # by the repo's name now
        self.run(ops.put_task, spec, NOW, "test")

    @rule(target=workers, skills=st.sets(st.sampled_from(SKILLS), min_size=1), capacity=st.integers(1, 6),
          concurrent=st.integers(1, 3), trust=st.sampled_from(list(TrustTier)))
    def register(self, skills: set[str], capacity: int, concurrent: int, trust: TrustTier) -> str:
        handle = f"dev{self.db.execute('SELECT count(*) FROM workers').fetchone()[0]}"
        worker_id, _ = self.loop.run_until_complete(
            self.scheduler.register("w", handle, sorted(skills), capacity, concurrent, trust))
        return worker_id

    @rule(worker=workers)
    def ask_for_offers(self, worker: str) -> None:
        self.run(ops.request_offers, worker, NOW, self.settings)

    @rule(worker=workers)
    def fetch_work(self, worker: str) -> None:
        self.run(ops.fetch_work, worker, NOW, self.settings)

    def _pending_offer(self, worker: str, index: int) -> str | None:
        found = self.db.execute("SELECT id FROM offers WHERE worker_id = ? AND state = 'pending' ORDER BY id",
                                (worker,)).fetchall()
        return found[index % len(found)]["id"] if found else None

    def _held_task(self, worker: str, index: int) -> str | None:
        found = self.db.execute("SELECT id FROM tasks WHERE worker_id = ? AND status IN "
                                "('leased','in_progress','blocked','pr_opened') ORDER BY id", (worker,)).fetchall()
        return found[index % len(found)]["id"] if found else None

    @rule(worker=workers, index=st.integers(0, 5))
    def accept(self, worker: str, index: int) -> None:
        offer = self._pending_offer(worker, index)
        if offer:
            self.attempt(ops.accept_offer, worker, offer, NOW, self.settings)

    @rule(worker=workers, index=st.integers(0, 5),
          reason=st.sampled_from(["insufficient_time", "unclear_requirements", "skill_mismatch", "other"]))
    def reject(self, worker: str, index: int, reason: str) -> None:
        offer = self._pending_offer(worker, index)
        if offer:
            self.attempt(ops.reject_offer, worker, offer, reason, None, NOW)

    @rule(worker=workers, index=st.integers(0, 5),
          status=st.sampled_from(["in_progress", "blocked", "pr_opened", "released"]))
    def report(self, worker: str, index: int, status: str) -> None:
        task = self._held_task(worker, index)
        if task:
            self.attempt(ops.report_status, task, status, NOW, worker_id=worker, pr_url="https://github.com/acme/api/pull/1")

    @rule(worker=workers, index=st.integers(0, 5))
    def renew(self, worker: str, index: int) -> None:
        lease = self.db.execute("SELECT * FROM leases WHERE worker_id = ? ORDER BY id", (worker,)).fetchall()
        if lease:
            before = dict(lease[index % len(lease)])
            self.attempt(ops.renew_lease, worker, before["id"], NOW, self.settings)
            after = self._row("SELECT * FROM leases WHERE id = ?", before["id"])
            assert after is not None and after["expires_at"] >= before["expires_at"], "a renewal took time away"

    @rule(index=st.integers(0, 50), status=st.sampled_from(["merged", "cancelled", "ready", "pr_opened"]))
    def admin_sets_status(self, index: int, status: str) -> None:
        found = self.db.execute("SELECT id FROM tasks ORDER BY id").fetchall()
        if found:
            task = found[index % len(found)]["id"]
            self.attempt(ops.report_status, task, status, NOW, worker_id=None, pr_url="https://github.com/acme/api/pull/2")

    @rule(worker=workers, status=st.sampled_from(["idle", "working", "paused"]))
    def heartbeat(self, worker: str, status: str) -> None:
        self.scheduler.heartbeat(worker, status, None)

    @rule(index=st.integers(0, 1), budget=st.integers(0, 4), area_locks=st.booleans(),
          lease_ttl=st.sampled_from([None, None, 5, 30, 100]),
          sensitive=st.sampled_from([(), (), ("auth",), ("auth", "billing")]))
    def admin_changes_repo(self, index: int, budget: int, area_locks: bool, lease_ttl: float | None,
                           sensitive: tuple[str, ...]) -> None:
        """While work is in flight: a budget lowered below it stops new grants and revokes nothing (budgets_hold),
        area locks toggled (area_locks_hold), a lease TTL shortened (renew: a renewal never takes time away), an
        area made sensitive (it takes offers from workers below trusted: workers_hold_only_what_fits, never leases)."""
        repo = self.repos[index]
        held = {r["id"] for r in self.db.execute("SELECT id FROM tasks WHERE repo = ? AND status IN " + IN_FLIGHT
                                                 + " AND status != 'offered'", (repo,))}
        self.run(ops.upsert_repo, ops.RepoSpec(repo, budget, area_locks, lease_ttl=lease_ttl,
                                                          sensitive_areas=sensitive), NOW)
        still = {r["id"] for r in self.db.execute("SELECT id FROM tasks WHERE repo = ? AND status IN " + IN_FLIGHT,
                                                  (repo,))}
        assert held <= still, f"changing {repo}'s settings took work back: {held - still}"

    @rule(worker=workers, tier=st.sampled_from(list(TrustTier)))
    def admin_sets_trust_tier(self, worker: str, tier: TrustTier) -> None:
        """A demoted worker loses the offers it no longer fits (workers_hold_only_what_fits) and keeps its leases."""
        leased = {r["id"] for r in self.db.execute("SELECT id FROM leases WHERE worker_id = ? AND state = 'active'",
                                                   (worker,))}
        self.attempt(ops.set_trust_tier, worker, tier, "test", ops.ADMIN, NOW)
        still = {r["id"] for r in self.db.execute("SELECT id FROM leases WHERE worker_id = ? AND state = 'active'",
                                                  (worker,))}
        assert leased <= still, f"a trust tier change took leases back: {leased - still}"

    @rule(index=st.integers(0, 1), to=st.sampled_from(NAMES), change=st.sampled_from(["renamed", "transferred"]))
    def github_moves_repo(self, index: int, to: str, change: str) -> None:
        """A rename or transfer takes the repo's tasks, settings, budget, locks and history to its new name."""
        former, other = self.repos[index], self.repos[1 - index]
        tasks = {r["id"] for r in self.db.execute("SELECT id FROM tasks WHERE repo = ?", (former,))}
        settings = self._row("SELECT max_open_prs, area_locks, lease_ttl, in_flight FROM repos WHERE id = ?", former)
        locks = {(r["area"], r["task_id"]) for r in self.db.execute("SELECT * FROM area_locks WHERE repo = ?",
                                                                    (former,))}
        events = self.db.execute("SELECT count(*) FROM events WHERE repo = ?", (former,)).fetchone()[0]
        try:
            self.run(gh.repo_renamed, former, to, change, "github:octocat", NOW)
        except Problem as problem:
            assert problem.status == 409 and to.lower() == other.lower(), problem.detail
            return
        assert to.lower() != other.lower() or to == former, f"{former} took the name of {other}"
        if to == former:
            return
        self.repos[index] = to
        for key in [k for k in self.area_seen if k[0] == former]:
            self.area_seen[(to, key[1])] = self.area_seen.pop(key)
        self.in_flight_seen[to] = self.in_flight_seen.pop(former)
        assert not self._row("SELECT 1 FROM repos WHERE id = ?", former)
        assert not self._row("SELECT 1 FROM tasks WHERE repo = ?", former)
        assert {r["id"] for r in self.db.execute("SELECT id FROM tasks WHERE repo = ?", (to,))} == tasks
        assert self._row("SELECT max_open_prs, area_locks, lease_ttl, in_flight FROM repos WHERE id = ?",
                         to) == settings
        assert {(r["area"], r["task_id"]) for r in self.db.execute("SELECT * FROM area_locks WHERE repo = ?",
                                                                   (to,))} == locks
        moved = self.db.execute("SELECT count(*) FROM events WHERE repo = ?", (to,)).fetchone()[0]
        assert moved == events + 1  # and repo.renamed
        assert not self._row("SELECT 1 FROM events WHERE repo = ?", former)

    @rule(index=st.integers(0, 1), number=st.sampled_from(ISSUES), labelled=st.sampled_from([True, True, False]),
          state=st.sampled_from(["open", "open", "open", "closed", "deleted"]), area=st.sampled_from(AREAS),
          points=st.integers(1, 3), lag=st.sampled_from([0, 0, 1, 3]), later=st.integers(0, 2),
          current=st.sampled_from([False, False, False, True]))
    def github_delivers_issue(self, index: int, number: int, labelled: bool, state: str, area: str | None,
                              points: int, lag: int, later: int, current: bool) -> None:
        """A delivery (or a read from GitHub's API, `current`) of an issue as it was at its updated_at: deliveries
        come late and out of order, and a view older than the newest one applied changes nothing."""
        self.github_time += later
        updated_at = self.github_time if current else self.github_time - lag
        repo = self.repos[index]
        labels = (("pool:ready",) if labelled else ()) + (f"points:{points}",) + ((f"area:{area}",) if area else ())
        issue = gh.IssueRef(repo, number, f"issue {number} as of {updated_at:.0f}",
                            f"https://github.com/{repo}/issues/{number}", labels, state, updated_at, current)
        in_pool = labelled and state == "open"
        seen = self.issue_seen.get((index, number))
        if seen is not None and state not in gh.GONE and (
                updated_at < seen[0] or (updated_at == seen[0] and seen[1] != in_pool and not current)):
            expected = "late"
        else:
            expected = "applied"
            self.issue_seen[(index, number)] = (max(updated_at, seen[0]) if seen else updated_at, in_pool)
        query = "SELECT * FROM tasks WHERE repo = ? AND issue_number = ? AND source = 'github'"
        before = self._row(query, repo, number)
        outcome, _ = self.run(gh.reconcile_issue, issue, "github:octocat", self.settings, NOW)
        after = self._row(query, repo, number)
        assert (outcome == "late") == (expected == "late"), (outcome, expected, seen, updated_at, in_pool)
        if outcome == "late":
            assert after == before, "a late delivery changed its task"
        elif in_pool and outcome != "rejected":
            assert after is not None and after["status"] != "cancelled", "an issue in the pool has no task"
        elif not in_pool and after is not None:
            assert after["status"] in ("cancelled", "pr_opened", "merged"), f"{after['status']} out of the pool"
        watermark = self._row("SELECT updated_at, in_pool FROM gh_issue_seen WHERE repo = ? AND issue_number = ?",
                              repo, number)
        assert watermark == {"updated_at": self.issue_seen[(index, number)][0],
                             "in_pool": int(self.issue_seen[(index, number)][1])}

    @rule(worker=workers, index=st.integers(0, 5), kind=st.sampled_from(["accept", "renew", "report"]),
          waited=st.sampled_from([0, 5, 11, 101, 101]))
    def requests_wait_for_a_slow_write(self, worker: str, index: int, kind: str, waited: int) -> None:
        """A request arrives `waited` seconds after another, and both wait for the writer behind a slow write (a
        bulk import), so share a group whose prelude lapsed what was due at the first one's arrival. A renewal is
        judged as of its own arrival: a lease that ran out before it arrived is not renewed. An accept or a status
        report in that position still counts (docs/protocol.md: nothing lapsed its offer or lease yet), and what it
        grants keeps every invariant."""
        make: tuple[Any, ...]  # an operation and its arguments
        if kind == "accept":
            offer = self._pending_offer(worker, index)
            if offer is None:
                return
            target = self._row("SELECT expires_at FROM offers WHERE id = ?", offer)
            make = (ops.accept_offer, worker, offer, NOW, self.settings)
        elif kind == "renew":
            leases = self.db.execute("SELECT * FROM leases WHERE worker_id = ? AND state = 'active' ORDER BY id",
                                     (worker,)).fetchall()
            if not leases:
                return
            lease_id = leases[index % len(leases)]["id"]
            target = self._row("SELECT expires_at FROM leases WHERE id = ?", lease_id)
            make = (ops.renew_lease, worker, lease_id, NOW, self.settings)
        else:
            task = self._held_task(worker, index)
            if task is None:
                return
            target = None
            make = (partial(ops.report_status, worker_id=worker), task, "in_progress", NOW)
        answer, arrived = self.loop.run_until_complete(self._behind_a_slow_write(make, waited))
        if kind == "renew" and target is not None and target["expires_at"] <= arrived:
            assert isinstance(answer, Problem) and answer.status == 409, (
                f"a lease that ran out at {target['expires_at']} was renewed by a request of {arrived}: {answer}")
        elif kind == "renew" and not isinstance(answer, Problem):
            assert answer[0] >= target["expires_at"], "a renewal took time away"
        elif isinstance(answer, Problem):
            assert answer.status in (403, 404, 409, 422), answer.detail

    async def _behind_a_slow_write(self, make: tuple[Any, ...], waited: int) -> tuple[Any, float]:
        started, done = threading.Event(), threading.Event()

        def bulk_import() -> ops.Op[None]:
            started.set()
            done.wait()  # on the slow-write thread, while the requests queue
            return None
            yield

        importing = asyncio.ensure_future(self.writer.run(bulk_import, slow=True))  # (a closure: not sent)
        await asyncio.to_thread(started.wait)
        try:
            early = asyncio.ensure_future(self.scheduler.flush())
            await asyncio.sleep(0)
            self.clock.advance(waited)
            arrived = self.clock.now()
            late = asyncio.ensure_future(self.scheduler.run(*make))
            await asyncio.sleep(0)
            for _ in range(5000):  # both in the writer's queue behind the slow write (from a front: sent first)
                if len(self.writer._arrivals) >= 3:
                    break
                await asyncio.sleep(0.001)
        finally:
            done.set()
            await importing
        await early
        try:
            return await late, arrived
        except Problem as problem:
            return problem, arrived

    @rule(index=st.integers(0, 50), number=st.integers(1, 3))
    def github_has_no_reported_pull(self, index: int, number: int) -> None:
        """A worker reports a PR that GitHub's API does not show (yet): the check voids the report (unless a delivery
        showed that PR open, as the task's or the worker's)."""
        found = self.db.execute("SELECT id, worker_id FROM tasks WHERE status IN ('leased', 'in_progress', 'blocked') "
                                "ORDER BY id").fetchall()
        if found:
            task_id, worker = found[index % len(found)]
            self.attempt(ops.report_status, task_id, "pr_opened", NOW, worker_id=worker, pr_url=f"https://github.com/acme/api/pull/{number}")
            task = self._row("SELECT * FROM tasks WHERE id = ?", task_id)
            if task is not None and task["status"] == "pr_opened":
                self.run(gh.report_checked, task_id, task["repo"], task["pr_number"], None, NOW)

    @rule(index=st.integers(0, 50), state=st.sampled_from(["open", "open", "closed", "merged"]))
    def github_delivers_a_voided_pull(self, index: int, state: str) -> None:
        """GitHub's API lagged: a delivery shows a PR whose report was voided, by its reporter (the void is taken
        back), open or already ended."""
        found = self.db.execute("SELECT l.id, t.repo, v.pr_number, w.github_handle FROM gh_voided_reports v JOIN "
                                "leases l ON l.id = v.lease_id JOIN tasks t ON t.id = l.task_id JOIN workers w ON "
                                "w.id = l.worker_id ORDER BY l.id").fetchall()
        if found:
            lease_id, repo, number, author = found[index % len(found)]
            pull = gh.PullRef(repo, number, f"https://github.com/{repo}/pull/{number}", author, "t", "", "patch-1",
                              "open" if state == "open" else "closed", state == "merged")
            self.run(gh.pull_changed, pull, f"github:{author}", NOW)
            assert self._row("SELECT state FROM leases WHERE id = ?", lease_id) == {"state": "completed"}
            # a PR on GitHub occupies the review budget and its task's area, whatever their limits: nothing granted
            self.in_flight_seen[repo] = self.db.execute("SELECT count(*) FROM tasks WHERE repo = ? AND status IN "
                                                        + IN_FLIGHT, (repo,)).fetchone()[0]
            for task in self.db.execute("SELECT area, id FROM tasks WHERE repo = ? AND area IS NOT NULL AND status IN "
                                        + IN_FLIGHT, (repo,)):
                self.area_seen.setdefault((repo, task["area"]), set()).add(task["id"])

    @rule()
    def restart(self) -> None:
        """The process stops (writing its buffered heartbeats) and starts again on the same file: nothing lost."""
        self.loop.run_until_complete(self.scheduler.flush())
        before = self._snapshot()
        self._stop()
        self._start()
        assert self._snapshot() == before

    def _snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        tables = ("repos", "tasks", "offers", "leases", "area_locks", "events", "workers", "gh_issue_seen")
        return {table: [tuple(r) for r in self.db.execute(f"SELECT * FROM {table} ORDER BY 1, 2")] for table in tables}

    @rule()
    def everyone_heartbeats(self) -> None:
        for row in self.db.execute("SELECT id FROM workers"):
            self.scheduler.heartbeat(row["id"], "working", None)

    @rule(seconds=st.sampled_from([1, 3, 11, 40, 101, 260]))
    def time_passes(self, seconds: int) -> None:
        self.clock.advance(seconds)

    # ---------------------------------------------------------------- invariants

    @invariant()
    def lapsed_work_never_survives_a_transaction(self) -> None:
        self.loop.run_until_complete(self.scheduler.flush())
        now = self.clock.now()
        assert not self.db.execute("SELECT 1 FROM offers WHERE state='pending' AND expires_at <= ?", (now,)).fetchone()
        assert not self.db.execute("SELECT 1 FROM leases WHERE state='active' AND expires_at <= ?", (now,)).fetchone()
        gone = now - self.settings.heartbeat_timeout - self.settings.offline_grace
        offline_holding = self.db.execute(
            "SELECT w.id, w.offline_holding, w.last_heartbeat FROM workers w JOIN leases l ON l.worker_id = w.id "
            "AND l.state = 'active' WHERE w.status = 'offline'").fetchall()
        # an offline worker holds leases only within its grace, and is marked (what anything_due looks among)
        assert all(w["offline_holding"] == 1 and w["last_heartbeat"] >= gone for w in offline_holding), \
            [dict(w) for w in offline_holding]

    @invariant()
    def status_offers_and_leases_agree(self) -> None:
        for task in self.db.execute("SELECT * FROM tasks"):
            offers = self.db.execute("SELECT worker_id FROM offers WHERE task_id=? AND state='pending'",
                                     (task["id"],)).fetchall()
            leases = self.db.execute("SELECT worker_id FROM leases WHERE task_id=? AND state='active'",
                                     (task["id"],)).fetchall()
            assert len(offers) + len(leases) <= 1, f"task {task['id']} held twice"
            if task["status"] == "offered":
                assert [o["worker_id"] for o in offers] == [task["worker_id"]] and not leases
            elif task["status"] in ("leased", "in_progress", "blocked"):
                assert [lease["worker_id"] for lease in leases] == [task["worker_id"]] and not offers
            else:
                assert not offers and not leases, f"{task['status']} task {task['id']} still held"
            if task["status"] in ("ready", "cancelled"):
                assert task["worker_id"] is None

    @invariant()
    def budgets_hold(self) -> None:
        for repo in self.db.execute("SELECT * FROM repos"):
            counted = self.db.execute(
                "SELECT count(*) FROM tasks WHERE repo=? AND status IN " + IN_FLIGHT, (repo["id"],)).fetchone()[0]
            assert repo["in_flight"] == counted, "in-flight counter drifted"
            # a budget may be lowered below the work in flight; then in-flight work must not grow
            if counted > repo["max_open_prs"]:
                assert counted <= self.in_flight_seen.get(repo["id"], 0), f"budget of {repo['id']} exceeded"
            self.in_flight_seen[repo["id"]] = counted

    @invariant()
    def area_locks_hold(self) -> None:
        """One task in flight per area of a repo with area locks; more only when they were granted while its locks
        were off (turning them on revokes nothing), and then no more join them. Each such area has one lock."""
        in_flight: dict[tuple[str, str], set[str]] = {}
        for task in self.db.execute("SELECT t.repo, t.area, t.id, r.area_locks FROM tasks t JOIN repos r ON "
                                    "r.id = t.repo WHERE t.area IS NOT NULL AND t.status IN " + IN_FLIGHT):
            in_flight.setdefault((task["repo"], task["area"]), set()).add(task["id"])
        locked = {r["id"] for r in self.db.execute("SELECT id FROM repos WHERE area_locks = 1")}
        for (repo, area), tasks in in_flight.items():
            if repo in locked and len(tasks) > 1:
                assert tasks <= self.area_seen.get((repo, area), set()), f"area lock of {repo}:{area} broken"
        self.area_seen = in_flight
        locks = {(r["repo"], r["area"]): r["task_id"] for r in self.db.execute("SELECT * FROM area_locks")}
        assert locks.keys() == {key for key in in_flight if key[0] in locked}
        assert all(task in in_flight[key] for key, task in locks.items())

    @invariant()
    def workers_hold_only_what_fits(self) -> None:
        """What a worker was granted (an offer or a lease new since the last step) fit it: its skills, trust (its
        tier, and trusted in a sensitive area), task slots and capacity; and a pending offer fits it still (a demotion
        or an area made sensitive revokes it). A lease is kept whatever its task is re-specified to
        (a re-estimate), so a worker may be over capacity, holding leases granted before, and is then granted
        nothing (a grant leaves the worker within its capacity) and holds no offer until it is below again."""
        grants: set[str] = set()
        sensitive = {r["id"]: set(json.loads(r["sensitive_areas"])) for r in self.db.execute("SELECT * FROM repos")}
        for worker in self.db.execute("SELECT * FROM workers"):
            held = self.db.execute(
                "SELECT t.*, coalesce(o.id, l.id) AS grant_id, o.id AS offer_id FROM tasks t LEFT JOIN offers o ON "
                "o.task_id = t.id AND o.state = 'pending' LEFT JOIN leases l ON l.task_id = t.id AND l.state = "
                "'active' WHERE t.worker_id = ? AND t.status IN " + HELD, (worker["id"],)).fetchall()
            assert len(held) <= worker["max_concurrent_tasks"]
            granted_now = {t["grant_id"] for t in held} - self.grants_seen
            if granted_now or any(t["offer_id"] for t in held):
                assert sum(t["estimate_points"] for t in held) <= worker["capacity_points"], (
                    f"{worker['id']} holds offers, or was granted {sorted(granted_now)}, over its capacity")
            skills = set(json.loads(worker["skills"]))
            for task in held:
                if task["offer_id"] or task["grant_id"] in granted_now:
                    assert set(json.loads(task["required_skills"])) <= skills
                    assert task["min_trust"] <= worker["trust_tier"]
                    assert worker["trust_tier"] >= TrustTier.TRUSTED or task["area"] not in sensitive[task["repo"]], (
                        f"{worker['id']} holds {task['id']} in a sensitive area below trusted")
            grants |= {t["grant_id"] for t in held}
        self.grants_seen = grants

    @invariant()
    def leases_agree_with_their_outcomes(self) -> None:
        """A lease is voided exactly while the pool remembers the PR it reported; a worker's completed and expired
        counts (the outcome trigger's) are its leases in those states, a voided one counted as expired."""
        for lease in self.db.execute("SELECT l.state, v.lease_id FROM leases l LEFT JOIN gh_voided_reports v "
                                     "ON v.lease_id = l.id"):
            assert (lease["state"] == "voided") == (lease["lease_id"] is not None)
        for worker in self.db.execute(
                "SELECT coalesce(o.completed, 0) AS completed, coalesce(o.expired, 0) AS expired,"
                " (SELECT count(*) FROM leases WHERE worker_id = w.id AND state = 'completed') AS leases_completed,"
                " (SELECT count(*) FROM leases WHERE worker_id = w.id AND state IN ('expired', 'voided'))"
                " AS leases_expired FROM workers w LEFT JOIN worker_outcomes o ON o.worker_id = w.id"):
            assert (worker["completed"], worker["expired"]) == (worker["leases_completed"], worker["leases_expired"])

    @invariant()
    def event_log_is_gap_free(self) -> None:
        seqs = [r[0] for r in self.db.execute("SELECT seq FROM events ORDER BY seq")]
        assert seqs == list(range(1, len(seqs) + 1))


class SplitSchedulerMachine(SchedulerMachine):
    """The same rules through a front process's scheduler (`owp serve --processes N`): every write, its arguments and
    its answer pickled over a real Unix socket to a writer, every heartbeat forwarded, reads on a read-only
    connection. The invariants are those of one process."""

    def _start(self) -> None:
        super()._start()
        app = web.Application()
        app[SCHEDULER] = self.writer
        self.service = WriterService(app)
        path = self.dir / "writer.sock"
        self.loop.run_until_complete(self.service.start(path))
        self.front_store = SQLiteStore(self.settings.db_path, writes=False)
        self.loop.run_until_complete(self.front_store.open())
        self.link = WriterLink(path, SequencedHub(), self.settings)
        self.loop.run_until_complete(self.link.open())
        self.scheduler = Scheduler(self.front_store, self.settings, self.clock, SequencedHub(), writer=self.link)

    def _stop(self) -> None:
        self.loop.run_until_complete(self.link.close())
        self.loop.run_until_complete(self.front_store.close())
        self.loop.run_until_complete(self.service.stop())
        (self.dir / "writer.sock").unlink(missing_ok=True)
        super()._stop()


MACHINE_SETTINGS = settings(max_examples=60, stateful_step_count=40, deadline=None,
                            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
SchedulerMachine.TestCase.settings = MACHINE_SETTINGS
TestScheduler = SchedulerMachine.TestCase
SplitSchedulerMachine.TestCase.settings = settings(MACHINE_SETTINGS, max_examples=25)
TestSplitScheduler = SplitSchedulerMachine.TestCase
