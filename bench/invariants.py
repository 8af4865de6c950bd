"""Replay the event log of a run and check the rules the speed must not come from breaking.

Checked at every event: no task is offered or leased while someone holds it; a repo's work in flight
(offers, leases, open PRs) stays within its review budget; one task in flight per area of a repo with area
locks; a worker's tasks and points stay within its limits; it has every skill the task requires and the
trust the task needs. At the end, each repo's budget as the API reports it must equal the replay's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bench.mix import RepoMix, TaskMix, WorkerMix

LEAVES_FLIGHT = frozenset(
    {"offer.rejected", "task.requeued", "task.released", "task.merged", "task.cancelled", "task.ready"}
)


@dataclass
class Replay:
    repos: dict[str, RepoMix]
    tasks: dict[str, TaskMix]  # task id -> what was seeded
    workers: dict[str, WorkerMix]  # worker id -> what was registered
    status: dict[str, str] = field(default_factory=dict)  # task id -> ready|offered|leased|pr_opened
    holder: dict[str, str] = field(default_factory=dict)
    in_flight: Counter[str] = field(default_factory=Counter)
    areas: dict[tuple[str, str], str] = field(default_factory=dict)
    load: dict[str, list[int]] = field(default_factory=dict)  # worker id -> [tasks, points]
    counts: Counter[str] = field(default_factory=Counter)
    broken: list[str] = field(default_factory=list)

    def fail(self, event: dict[str, Any], message: str) -> None:
        if len(self.broken) < 50:
            self.broken.append(f"event {event['seq']} {event['type']} {event['target']}: {message}")

    def apply(self, event: dict[str, Any]) -> None:
        kind, task_id = event["type"], event["target"]
        self.counts[kind] += 1
        if task_id not in self.tasks:
            return
        worker_id = event["details"].get("worker_id")
        current = self.status.get(task_id, "ready")
        if kind == "offer.created":
            if current != "ready":
                self.fail(event, f"offered while {current} by {self.holder.get(task_id)}")
            self._take(event, task_id, worker_id, "offered")
        elif kind == "lease.granted":
            if current == "offered" and self.holder.get(task_id) == worker_id:
                self.status[task_id] = "leased"
            elif current == "ready":
                self._take(event, task_id, worker_id, "leased")
            else:
                self.fail(event, f"leased to {worker_id} while {current} by {self.holder.get(task_id)}")
        elif kind == "task.pr_opened":
            self._worker_load(task_id, -1)
            self.status[task_id] = "pr_opened"
        elif kind in LEAVES_FLIGHT and current != "ready":
            self._leave(task_id)

    def _take(self, event: dict[str, Any], task_id: str, worker_id: str, status: str) -> None:
        task, worker = self.tasks[task_id], self.workers.get(worker_id)
        repo = self.repos[task.repo]
        self.in_flight[task.repo] += 1
        if self.in_flight[task.repo] > repo.max_open_prs:
            self.fail(
                event, f"{task.repo} has {self.in_flight[task.repo]} in flight, budget {repo.max_open_prs}"
            )
        if repo.area_locks and task.area is not None:
            other = self.areas.setdefault((task.repo, task.area), task_id)
            if other != task_id:
                self.fail(event, f"area {task.repo}:{task.area} already held by {other}")
        self.status[task_id], self.holder[task_id] = status, worker_id
        if worker is None:
            self.fail(event, f"unknown worker {worker_id}")
            return
        if not set(task.skills) <= set(worker.skills):
            self.fail(event, f"worker skills {worker.skills} lack some of {task.skills}")
        if task.min_trust != "basic":
            self.fail(event, f"needs trust {task.min_trust}; bench workers are basic")
        self._worker_load(task_id, +1)
        tasks, points = self.load[worker_id]
        if tasks > worker.max_concurrent_tasks or points > worker.capacity_points:
            self.fail(
                event,
                f"worker {worker_id} holds {tasks} tasks / {points} points, limits "
                f"{worker.max_concurrent_tasks} / {worker.capacity_points}",
            )

    def _worker_load(self, task_id: str, sign: int) -> None:
        load = self.load.setdefault(self.holder[task_id], [0, 0])
        load[0] += sign
        load[1] += sign * self.tasks[task_id].points

    def _leave(self, task_id: str) -> None:
        task = self.tasks[task_id]
        if self.status[task_id] != "pr_opened":
            self._worker_load(task_id, -1)
        self.in_flight[task.repo] -= 1
        if task.area is not None and self.areas.get((task.repo, task.area)) == task_id:
            del self.areas[(task.repo, task.area)]
        self.status[task_id] = "ready"
        self.holder.pop(task_id, None)

    def check_budgets(self, reported: dict[str, int]) -> None:
        """`reported`: repo -> in-flight count from GET /v1/repos, after the run."""
        for repo, count in reported.items():
            if count != self.in_flight[repo]:
                self.broken.append(
                    f"{repo}: the API reports {count} in flight, the event log {self.in_flight[repo]}"
                )
            if count > self.repos[repo].max_open_prs:
                self.broken.append(
                    f"{repo}: {count} in flight over its budget {self.repos[repo].max_open_prs}"
                )
