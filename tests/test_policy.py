"""The assignment rules as pure functions: each rule, its order, and the sentence it gives a worker."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from owp_bot.scheduler.models import Ineligible, TaskStatus, TrustTier, normalise_skills
from owp_bot.scheduler.policy import RepoLoad, TaskView, WorkerView, describe, explain, ineligibility, is_online

WORKER = WorkerView("w_1", frozenset({"python", "sql"}), capacity_points=5, max_concurrent_tasks=2,
                    points_in_use=0, tasks_in_use=0, trust_tier=TrustTier.BASIC, online=True, paused=False)
TASK = TaskView("t_1", "acme/api", TaskStatus.READY, 2, frozenset({"python"}), "auth", TrustTier.BASIC)
REPO = RepoLoad("acme/api", max_open_prs=3, in_flight=0, area_locks=True, locked_areas=frozenset())


def test_an_eligible_task_has_no_reason() -> None:
    assert ineligibility(TASK, WORKER, REPO, recently_declined=False) is None


@pytest.mark.parametrize(("task", "worker", "repo", "declined", "reason"), [
    (replace(TASK, status=TaskStatus.LEASED), WORKER, REPO, False, Ineligible.NOT_READY),
    (TASK, replace(WORKER, online=False), REPO, False, Ineligible.WORKER_OFFLINE),
    (TASK, replace(WORKER, paused=True), REPO, False, Ineligible.WORKER_PAUSED),
    (replace(TASK, required_skills=frozenset({"python", "rust"})), WORKER, REPO, False, Ineligible.MISSING_SKILLS),
    (TASK, replace(WORKER, tasks_in_use=2), REPO, False, Ineligible.TOO_MANY_TASKS),
    (TASK, replace(WORKER, points_in_use=4), REPO, False, Ineligible.INSUFFICIENT_CAPACITY),
    (replace(TASK, min_trust=TrustTier.TRUSTED), WORKER, REPO, False, Ineligible.INSUFFICIENT_TRUST),
    (TASK, WORKER, REPO, True, Ineligible.RECENTLY_DECLINED),
    (TASK, WORKER, replace(REPO, in_flight=3), False, Ineligible.REVIEW_BUDGET_FULL),
    (TASK, WORKER, replace(REPO, locked_areas=frozenset({"auth"})), False, Ineligible.AREA_LOCKED),
])
def test_each_rule(task: TaskView, worker: WorkerView, repo: RepoLoad, declined: bool, reason: Ineligible) -> None:
    assert ineligibility(task, worker, repo, declined) is reason


def test_area_locks_can_be_turned_off_and_tasks_without_an_area_are_never_locked() -> None:
    locked = replace(REPO, locked_areas=frozenset({"auth"}))
    assert ineligibility(TASK, WORKER, replace(locked, area_locks=False), False) is None
    assert ineligibility(replace(TASK, area=None), WORKER, locked, False) is None


def test_a_budget_of_zero_pauses_a_repo() -> None:
    assert ineligibility(TASK, WORKER, replace(REPO, max_open_prs=0), False) is Ineligible.REVIEW_BUDGET_FULL


def test_online_means_a_heartbeat_within_the_timeout() -> None:
    assert is_online(100.0, 100.0 + 900, 900)
    assert not is_online(100.0, 100.0 + 900.5, 900)
    assert not is_online(None, 100.0, 900)


def test_explanations_count_per_reason_and_per_repo_for_budgets() -> None:
    other = replace(REPO, repo="acme/web", in_flight=2, max_open_prs=2)
    verdicts = [(TASK.repo, Ineligible.MISSING_SKILLS)] * 3 + [
        (TASK.repo, Ineligible.REVIEW_BUDGET_FULL), ("acme/web", Ineligible.REVIEW_BUDGET_FULL)]
    reasons = explain(verdicts, {"acme/api": replace(REPO, in_flight=3), "acme/web": other}, WORKER)
    assert [(r.reason, r.count, r.repo) for r in reasons] == [
        (Ineligible.MISSING_SKILLS, 3, None), (Ineligible.REVIEW_BUDGET_FULL, 1, "acme/api"),
        (Ineligible.REVIEW_BUDGET_FULL, 1, "acme/web")]
    assert reasons[0].message == "3 tasks need skills you lack; register more skills if you have them"
    assert reasons[2].message == ("1 task held back by the review budget of acme/web (2/2); "
                                  "try again when a PR merges")


@given(st.sampled_from(list(Ineligible)), st.integers(1, 1000))
def test_every_reason_has_a_sentence(reason: Ineligible, n: int) -> None:
    assert describe(reason, n, REPO, WORKER)


@given(st.lists(st.text(min_size=1, max_size=12)))
def test_skills_are_normalised_case_and_space_insensitively(skills: list[str]) -> None:
    once = normalise_skills(skills)
    assert normalise_skills(once) == once
    assert normalise_skills([s.upper() for s in skills]) == normalise_skills([s.lower() for s in skills]) or any(
        s.upper().lower() != s.lower() for s in skills)  # a few Unicode letters do not round-trip
