"""Invariants of the scheduler under any sequence of actions (hypothesis state machine, real SQLite file).

After every step: no task offered or leased twice; task status, offers and leases agree; review budgets,
area locks, capacity, skills and trust hold; nothing lapsed survives a transaction; the counters kept for
speed equal what they count; the event log is gap-free.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from owp_bot.clock import ManualClock
from owp_bot.config import Settings
from owp_bot.errors import Problem
from owp_bot.events import EventHub
from owp_bot.scheduler import operations as ops
from owp_bot.scheduler.models import Priority, TrustTier
from owp_bot.scheduler.service import Scheduler
from owp_bot.scheduler.sqlite_store import SQLiteStore

SKILLS = ["python", "sql", "docs", "typescript"]
AREAS = [None, "auth", "billing"]
REPOS = ["acme/api", "acme/web"]
IN_FLIGHT = "('offered', 'leased', 'in_progress', 'blocked', 'pr_opened')"  # SQL list literals
HELD = "('offered', 'leased', 'in_progress', 'blocked')"
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
        self.store = SQLiteStore(self.settings.db_path)
        self.loop.run_until_complete(self.store.open())
        self.scheduler = Scheduler(self.store, self.settings, self.clock, EventHub())
        self.db = sqlite3.connect(self.settings.db_path)
        self.db.row_factory = sqlite3.Row
        self.in_flight_seen: dict[str, int] = {}

    def teardown(self) -> None:
        self.db.close()
        self.loop.run_until_complete(self.store.close())
        self.loop.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def run(self, make_op):  # type: ignore[no-untyped-def]
        return self.loop.run_until_complete(self.scheduler.run(make_op))

    def attempt(self, make_op) -> None:  # type: ignore[no-untyped-def]
        """An action a person may try; the pool may refuse it with a problem, never with a crash."""
        try:
            self.run(make_op)
        except Problem as problem:
            assert problem.status in (403, 404, 409, 422), problem.detail

    # ---------------------------------------------------------------- set-up and actions

    @initialize(target=workers, budgets=st.lists(st.integers(1, 3), min_size=2, max_size=2),
                specs=st.lists(TASKS, min_size=4, max_size=12))
    def pool_with_tasks_and_a_generalist(self, budgets: list[int], specs: list[ops.TaskSpec]) -> str:
        for repo, budget in zip(REPOS, budgets, strict=True):
            self.run(lambda now, r=repo, b=budget: ops.upsert_repo(ops.RepoSpec(r, b, area_locks=r == "acme/api"),
                                                                     now))
        for spec in specs:
            self.run(lambda now, spec=spec: ops.put_task(spec, now, "test"))
        worker_id, _ = self.loop.run_until_complete(
            self.scheduler.register("generalist", None, SKILLS, 6, 3, TrustTier.TRUSTED))
        return worker_id

    @rule(spec=TASKS)
    def add_task(self, spec: ops.TaskSpec) -> None:
        self.run(lambda now: ops.put_task(spec, now, "test"))

    @rule(target=workers, skills=st.sets(st.sampled_from(SKILLS), min_size=1), capacity=st.integers(1, 6),
          concurrent=st.integers(1, 3), trust=st.sampled_from(list(TrustTier)))
    def register(self, skills: set[str], capacity: int, concurrent: int, trust: TrustTier) -> str:
        worker_id, _ = self.loop.run_until_complete(
            self.scheduler.register("w", None, sorted(skills), capacity, concurrent, trust))
        return worker_id

    @rule(worker=workers)
    def ask_for_offers(self, worker: str) -> None:
        self.run(lambda now: ops.request_offers(worker, now, self.settings))

    @rule(worker=workers)
    def fetch_work(self, worker: str) -> None:
        self.run(lambda now: ops.fetch_work(worker, now, self.settings))

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
            self.attempt(lambda now: ops.accept_offer(worker, offer, now, self.settings))

    @rule(worker=workers, index=st.integers(0, 5),
          reason=st.sampled_from(["insufficient_time", "unclear_requirements", "skill_mismatch", "other"]))
    def reject(self, worker: str, index: int, reason: str) -> None:
        offer = self._pending_offer(worker, index)
        if offer:
            self.attempt(lambda now: ops.reject_offer(worker, offer, reason, None, now))

    @rule(worker=workers, index=st.integers(0, 5),
          status=st.sampled_from(["in_progress", "blocked", "pr_opened", "released"]))
    def report(self, worker: str, index: int, status: str) -> None:
        task = self._held_task(worker, index)
        if task:
            self.attempt(lambda now: ops.report_status(task, status, now, worker_id=worker,
                                                       pr_url="https://github.com/acme/api/pull/1"))

    @rule(worker=workers, index=st.integers(0, 5))
    def renew(self, worker: str, index: int) -> None:
        lease = self.db.execute("SELECT id FROM leases WHERE worker_id = ? ORDER BY id", (worker,)).fetchall()
        if lease:
            lease_id = lease[index % len(lease)]["id"]
            self.attempt(lambda now: ops.renew_lease(worker, lease_id, now, self.settings))

    @rule(index=st.integers(0, 50), status=st.sampled_from(["merged", "cancelled", "ready", "pr_opened"]))
    def admin_sets_status(self, index: int, status: str) -> None:
        found = self.db.execute("SELECT id FROM tasks ORDER BY id").fetchall()
        if found:
            task = found[index % len(found)]["id"]
            self.attempt(lambda now: ops.report_status(task, status, now, worker_id=None,
                                                       pr_url="https://github.com/acme/api/pull/2"))

    @rule(worker=workers, status=st.sampled_from(["idle", "working", "paused"]))
    def heartbeat(self, worker: str, status: str) -> None:
        self.scheduler.heartbeat(worker, status, None)

    @rule(repo=st.sampled_from(REPOS), budget=st.integers(0, 4))
    def change_budget(self, repo: str, budget: int) -> None:
        self.run(lambda now: ops.upsert_repo(ops.RepoSpec(repo, budget, area_locks=repo == "acme/api"), now))

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
        doubled = self.db.execute(
            "SELECT area, count(*) FROM tasks WHERE repo='acme/api' AND area IS NOT NULL AND status IN "
            + IN_FLIGHT + " GROUP BY area HAVING count(*) > 1").fetchall()
        assert not doubled, f"area lock broken: {[tuple(r) for r in doubled]}"
        locks = {(r["repo"], r["area"], r["task_id"]) for r in self.db.execute("SELECT * FROM area_locks")}
        expected = {(r["repo"], r["area"], r["id"]) for r in self.db.execute(
            "SELECT repo, area, id FROM tasks WHERE repo='acme/api' AND area IS NOT NULL AND status IN " + IN_FLIGHT)}
        assert locks == expected

    @invariant()
    def workers_hold_only_what_fits(self) -> None:
        for worker in self.db.execute("SELECT * FROM workers"):
            held = self.db.execute("SELECT * FROM tasks WHERE worker_id=? AND status IN " + HELD,
                                   (worker["id"],)).fetchall()
            assert len(held) <= worker["max_concurrent_tasks"]
            assert sum(t["estimate_points"] for t in held) <= worker["capacity_points"]
            skills = set(json.loads(worker["skills"]))
            for task in held:
                assert set(json.loads(task["required_skills"])) <= skills
                assert task["min_trust"] <= worker["trust_tier"]

    @invariant()
    def event_log_is_gap_free(self) -> None:
        seqs = [r[0] for r in self.db.execute("SELECT seq FROM events ORDER BY seq")]
        assert seqs == list(range(1, len(seqs) + 1))


SchedulerMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestScheduler = SchedulerMachine.TestCase
