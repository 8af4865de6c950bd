"""The assignment query against the rules, in both stores: the task a worker is granted is the first ready task, in
priority, then age order, that policy.ineligibility lets it take; however many ready tasks nobody can take wait
ahead of it, above all those of repos whose review budget is full (ready_candidate in sql/*/core.sql finds it
among the first 512 ready tasks, or else repo by repo)."""

from __future__ import annotations

import asyncio
import itertools
import re
import sqlite3
from contextlib import closing
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from owp_bot.clock import ManualClock
from owp_bot.config import Settings
from owp_bot.events import EventHub
from owp_bot.scheduler import operations as ops
from owp_bot.scheduler.models import Priority, TrustTier
from owp_bot.scheduler.policy import ineligibility
from owp_bot.scheduler.postgres_store import PostgresStore
from owp_bot.scheduler.service import NOW, Scheduler
from owp_bot.scheduler.sqlite_store import QUERIES, SQLiteStore, statements_of
from owp_bot.scheduler.store import Op, Store, one, rows

SKILLS = ["python", "sql", "rust", "docs"]
PAUSED = "acme/paused"  # a review budget of 0: full, whatever it holds
BEYOND_THE_HEAD = 530  # ready tasks that fit nobody, ahead of every other: more than ready_candidate's first way walks
BEYOND_NEAR = 40  # and in a repo with room: more than its second way walks before it looks by tier and skill list


def make_store(settings: Settings) -> Store:
    return PostgresStore(settings.database_url) if settings.database_url else SQLiteStore(settings.db_path)


def first_that_fits(worker_id: str, now: float, settings: Settings) -> Op[str | None]:
    """The rules' answer, by walking every ready task in order (what ready_candidate must agree with)."""
    worker = yield one("worker_claimant", worker_id, now - settings.heartbeat_timeout, 0, ops.URGENT, now)
    view = ops.view_of(worker, worker["tasks_in_use"], worker["points_in_use"], now, settings)
    loads: dict[str, ops.RepoLoad] = {}
    for task in (yield rows("ready_window", 1_000_000)):
        if task["repo"] not in loads:
            loads[task["repo"]] = ops.repo_load((yield one("repo_get", task["repo"])))
        if ineligibility(ops.task_view(task), view, loads[task["repo"]], recently_declined=False) is None:
            return str(task["id"])
    return None


async def open_pool(settings: Settings) -> tuple[Scheduler, Store]:
    store = make_store(settings)
    await store.open()
    scheduler = Scheduler(store, settings.with_overrides(reputation_head_start=0.0), ManualClock(), EventHub())
    repos = [ops.RepoSpec(PAUSED, 0), ops.RepoSpec("acme/api", 3),
             ops.RepoSpec("acme/web", 2, sensitive_areas=("auth",)), ops.RepoSpec("acme/docs", 1)]
    for repo in repos:
        await scheduler.run(ops.upsert_repo, repo, NOW)
    return scheduler, store


async def add_tasks(scheduler: Scheduler, specs: list[ops.TaskSpec]) -> list[str]:
    """Import the tasks (in one transaction): their ids."""
    entries = await scheduler.run(ops.import_tasks, [], list(enumerate(specs)), NOW)
    return [str(task["id"]) for _, _, task, _ in entries]


def nobody_fits(priority: Priority = Priority.CRITICAL) -> list[ops.TaskSpec]:
    """More tasks in the paused repo than ready_candidate's first way walks, and in acme/api more tasks asking for a
    skill nobody has than the second way looks at before it looks by skill list: at CRITICAL, ahead of every other
    task (given again at LOW, the same tasks move behind the others)."""
    return [*(ops.TaskSpec(PAUSED, "waits", key=f"p{i}", priority=priority) for i in range(BEYOND_THE_HEAD)),
            *(ops.TaskSpec("acme/api", "needs cobol", key=f"c{i}", priority=priority, required_skills=("cobol",))
              for i in range(BEYOND_NEAR))]


async def lease_one(scheduler: Scheduler, worker_id: str) -> str | None:
    leases = await scheduler.run(ops.fetch_work, worker_id, NOW, scheduler.settings)
    return str(leases[0]["id"]) if leases else None


async def test_a_task_behind_a_full_repos_queue_is_found(settings: Settings) -> None:
    scheduler, store = await open_pool(settings)
    try:
        await add_tasks(scheduler, nobody_fits())
        normal, _, high, newer = await add_tasks(scheduler, [
            ops.TaskSpec("acme/api", "normal, older", key="a1"),
            ops.TaskSpec("acme/web", "high, needs rust", key="w1", priority=Priority.HIGH, required_skills=("rust",)),
            ops.TaskSpec("acme/docs", "high", key="d1", priority=Priority.HIGH),
            ops.TaskSpec("acme/api", "high, newer", key="a2", priority=Priority.HIGH),
        ])
        first, _ = await scheduler.register("ann", None, ["python"], 5, 1)
        second, _ = await scheduler.register("bob", None, ["python"], 5, 1)
        third, _ = await scheduler.register("cyd", None, ["python"], 5, 1)
        assert [await lease_one(scheduler, w) for w in (first, second, third)] == [high, newer, normal]
    finally:
        await store.close()


@pytest.mark.parametrize("ahead", [510, 511, 512, 513, 520])
async def test_the_second_way_is_asked_exactly_when_the_first_cannot_have_seen_all(
        settings: Settings, ahead: int) -> None:
    """The second way runs only where more ready tasks wait than the first way walks (512): around that number, the
    one task that fits, last in order, is found either way (a review's boundary test)."""
    scheduler, store = await open_pool(settings)
    try:
        await add_tasks(scheduler, [ops.TaskSpec(PAUSED, "waits", key=f"p{i}", priority=Priority.CRITICAL)
                                    for i in range(ahead)])
        [last] = await add_tasks(scheduler, [ops.TaskSpec("acme/api", "it", key="it", priority=Priority.LOW)])
        worker_id, _ = await scheduler.register("ann", None, ["python"], 5, 1)
        assert await lease_one(scheduler, worker_id) == last
    finally:
        await store.close()


@pytest.mark.parametrize("case", ["a-long-list", "many-lists"])
async def test_a_repo_is_walked_whole_where_its_lists_are_not_enough(settings: Settings, case: str) -> None:
    """The second way looks at a repo's tasks by tier and skill list only while that is cheap: where a list the
    worker fits begins with more than 32 tasks it cannot take, or the repo has more than 64 lists, it walks the
    repo's tasks in order as before, and finds the answer behind them."""
    scheduler, store = await open_pool(settings)
    try:
        await add_tasks(scheduler, nobody_fits())
        if case == "a-long-list":  # 40 too big for the worker, in the answer's own list
            ahead = [ops.TaskSpec("acme/api", "too big", key=f"big{i}", estimate_points=8, required_skills=("zz",))
                     for i in range(40)]
        else:  # 70 lists the worker has not the skills for, each sorting before the answer's
            ahead = [ops.TaskSpec("acme/api", "other skills", key=f"s{i}", required_skills=(f"s{i:02d}",))
                     for i in range(70)]
        await add_tasks(scheduler, ahead)
        [answer] = await add_tasks(scheduler, [ops.TaskSpec("acme/api", "it", key="a", required_skills=("zz",))])
        worker_id, _ = await scheduler.register("ann", None, ["zz"], 5, 1)
        assert await lease_one(scheduler, worker_id) == answer
    finally:
        await store.close()


def vm_steps(store: Store) -> tuple[list[int], sqlite3.Connection]:
    """A counter of the SQLite virtual machine's steps on the store's writer (by the hundred): a measure of how
    much a statement walks that, unlike time, does not vary from run to run."""
    counted = [0]

    def count() -> int:
        counted[0] += 100
        return 0

    writer = store._writer  # type: ignore[attr-defined]
    writer.set_progress_handler(count, 100)
    return counted, writer


@pytest.mark.sqlite_only
@pytest.mark.parametrize("asks", [{"required_skills": ("rust",)}, {"min_trust": TrustTier.TRUSTED}],
                         ids=["other-skills", "a-higher-tier"])
async def test_tasks_the_worker_is_not_made_for_are_not_walked(settings: Settings, asks: dict[str, Any]) -> None:
    """A worker without the skills or the trust tier the tasks of the repos with room ask for: its request skips
    them by their skill list and tier, however many there are, and finds the one task it can take behind them."""
    scheduler, store = await open_pool(settings)
    try:
        await add_tasks(scheduler, nobody_fits())  # the first way gives up: the second finds the answer
        worker_id, _ = await scheduler.register("ann", None, ["python"], 5, 1)
        counted, writer = vm_steps(store)
        steps = []
        for start, end in ((0, 200), (200, 4000)):
            await add_tasks(scheduler, [ops.TaskSpec("acme/api", "not for ann", key=f"r{i}", **asks)
                                        for i in range(start, end)])
            counted[0] = 0
            assert await lease_one(scheduler, worker_id) is None
            steps.append(counted[0])
        [mine] = await add_tasks(scheduler, [ops.TaskSpec("acme/web", "python", key="p", priority=Priority.LOW,
                                                          required_skills=("python",))])
        counted[0] = 0
        assert await lease_one(scheduler, worker_id) == mine
        steps.append(counted[0])
        writer.set_progress_handler(None, 0)
        assert steps[1] < steps[0] * 1.2 and steps[2] < steps[0] * 1.2, steps  # 200 → 4,000 such tasks
    finally:
        await store.close()


@pytest.mark.sqlite_only
async def test_a_small_pool_is_not_searched_repo_by_repo(settings: Settings) -> None:
    """Fewer ready tasks than the first way walks, none of which fits: the first way has seen them all, so the
    answer is empty without a probe of each repo with room (a small pool's usual empty answer; ~4 µs a repo)."""
    scheduler, store = await open_pool(settings)
    try:
        worker_id, _ = await scheduler.register("ann", None, ["python"], 5, 1)
        await add_tasks(scheduler, [ops.TaskSpec("acme/api", "needs cobol", key=f"c{i}", required_skills=("cobol",))
                                    for i in range(20)])
        counted, writer = vm_steps(store)
        steps = []
        for start, end in ((0, 10), (10, 400)):  # more repos with room, none with a ready task
            for i in range(start, end):
                await scheduler.run(ops.upsert_repo, ops.RepoSpec(f"acme/r{i:03d}", 3), NOW)
            counted[0] = 0
            assert await lease_one(scheduler, worker_id) is None
            steps.append(counted[0])
        writer.set_progress_handler(None, 0)
        assert steps[1] - steps[0] < 2 * 390, steps  # 390 more repos with room: a probe of each took ~60 steps
    finally:
        await store.close()


@pytest.mark.sqlite_only
async def test_tasks_behind_the_answer_are_not_walked(settings: Settings) -> None:
    """Tasks of a skill list the worker has but too big for its free points, behind its answer, in a repo with room
    whose first ready tasks it cannot take: the request stops at the answer, however many there are."""
    scheduler, store = await open_pool(settings)
    try:
        await add_tasks(scheduler, nobody_fits())  # the first way gives up, and acme/api's first 40 ask for cobol
        counted, writer = vm_steps(store)
        steps = []
        for start, end in ((0, 200), (200, 4000)):
            [mine] = await add_tasks(scheduler, [ops.TaskSpec("acme/api", "python", key=f"ans{start}",
                                                              required_skills=("python",))])
            await add_tasks(scheduler, [ops.TaskSpec("acme/api", "too big", key=f"b{i}", estimate_points=3,
                                                     priority=Priority.LOW, required_skills=("python", "sql"))
                                        for i in range(start, end)])
            worker_id, _ = await scheduler.register(f"w{start}", None, ["python", "sql"], 2, 1)
            counted[0] = 0
            assert await lease_one(scheduler, worker_id) == mine
            steps.append(counted[0])
        writer.set_progress_handler(None, 0)
        assert steps[1] < steps[0] * 1.2, steps  # 200 → 4,000 such tasks behind the answer
    finally:
        await store.close()


@pytest.mark.sqlite_only
async def test_the_walks_read_their_indexes_alone(settings: Settings) -> None:
    """Each entry a walk passes costs a read of the task's row unless the index holds every column it reads."""
    _, store = await open_pool(settings)
    await store.close()
    with closing(sqlite3.connect(settings.db_path)) as db:
        for name, least in (("offer_next", 7), ("lease_next", 7), ("ready_count", 1), ("worker_claimant", 2)):
            [(part, arity, _)] = [p for p in statements_of(QUERIES[name]) if "INDEXED BY tasks_ready" in p[0]]
            plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + part, [0] * arity)]
            walks = [step for step in plan if re.search(r"INDEX tasks_(ready\w*|by_repo)\b", step)]
            assert len(walks) >= least and all("COVERING INDEX" in step for step in walks), (name, plan)


TASK = st.builds(
    ops.TaskSpec,
    repo=st.sampled_from([PAUSED, "acme/api", "acme/web", "acme/docs"]),
    title=st.just("a task"),
    estimate_points=st.sampled_from([1, 2, 3, 5, 8]),
    required_skills=st.lists(st.sampled_from(SKILLS), max_size=2, unique=True).map(tuple),
    area=st.sampled_from([None, "auth", "ui"]),
    priority=st.sampled_from(list(Priority)),
    min_trust=st.sampled_from(list(TrustTier)),
)


def test_the_grant_is_the_first_task_the_rules_allow(settings: Settings) -> None:
    """Random pools, some with more tasks nobody may take at the head of the queue than the first way walks: the task
    granted is always the one the rules pick from every ready task, or none when the rules find none."""
    loop = asyncio.new_event_loop()
    scheduler, store = loop.run_until_complete(open_pool(settings))
    examples = itertools.count()
    ahead = False  # where the paused repo's tasks are: ahead of all others, or behind them

    @given(tasks=st.lists(TASK, max_size=25), beyond=st.booleans(),
           skills=st.lists(st.sampled_from(SKILLS), min_size=1, unique=True),
           capacity=st.sampled_from([1, 2, 3, 5, 8]), trust=st.sampled_from(list(TrustTier)))
    @hypothesis_settings(max_examples=12 if settings.database_url else 40, deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture])
    def check(tasks: list[ops.TaskSpec], beyond: bool, skills: list[str], capacity: int, trust: TrustTier) -> None:
        nonlocal ahead
        example = next(examples)
        if beyond != ahead:  # the grant is found the second way, or (mostly) the first
            loop.run_until_complete(add_tasks(scheduler, nobody_fits(Priority.CRITICAL if beyond else Priority.LOW)))
            ahead = beyond
        loop.run_until_complete(add_tasks(scheduler, [replace(t, key=f"e{example}.{i}") for i, t in enumerate(tasks)]))
        worker_id, _ = loop.run_until_complete(scheduler.register("w", None, skills, capacity, 1, trust))
        expected, _ = loop.run_until_complete(store.run(
            lambda: first_that_fits(worker_id, scheduler.clock.now(), scheduler.settings), write=False))
        assert loop.run_until_complete(lease_one(scheduler, worker_id)) == expected

    try:
        check()
    finally:
        loop.run_until_complete(store.close())
        loop.close()
