"""The workload: repos, ready tasks and workers with a realistic mix of skills, areas, sizes and budgets.

Deterministic for a given seed, so that runs are comparable. Tasks are shipped as import documents for
`POST /v1/tasks/import`; JSON is valid YAML, and much faster to emit.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass

SKILLS = ("python", "typescript", "go", "rust", "sql", "docs", "css", "security", "java", "devops")
SKILL_WEIGHTS = (30, 25, 10, 5, 12, 10, 8, 4, 6, 5)
AREAS = ("api", "auth", "billing", "ui", "search", "docs", "build", "db", "infra", "tests", "i18n", "perf")
PRIORITIES = (("low", 20), ("normal", 55), ("high", 20), ("critical", 5))


@dataclass(frozen=True, slots=True)
class RepoMix:
    name: str
    max_open_prs: int
    area_locks: bool


@dataclass(frozen=True, slots=True)
class TaskMix:
    key: str
    repo: str
    points: int
    skills: tuple[str, ...]
    area: str | None
    priority: str
    min_trust: str

    def entry(self) -> dict[str, object]:
        entry: dict[str, object] = {
            "key": self.key,
            "repo": self.repo,
            "title": f"Bench task {self.key}",
            "estimate_points": self.points,
            "required_skills": list(self.skills),
            "priority": self.priority,
        }
        if self.area is not None:
            entry["area"] = self.area
        if self.min_trust != "basic":
            entry["min_trust"] = self.min_trust
        return entry


@dataclass(frozen=True, slots=True)
class WorkerMix:
    name: str
    skills: tuple[str, ...]
    capacity_points: int
    max_concurrent_tasks: int

    def registration(self) -> dict[str, object]:
        return {
            "name": self.name,
            "skills": list(self.skills),
            "capacity_points": self.capacity_points,
            "max_concurrent_tasks": self.max_concurrent_tasks,
        }


def _skills(rng: random.Random, low: int, high: int) -> tuple[str, ...]:
    count = rng.randint(low, high)
    picked: set[str] = set()
    while len(picked) < count:
        picked.add(rng.choices(SKILLS, SKILL_WEIGHTS)[0])
    return tuple(sorted(picked))


def repos(count: int, seed: int, max_open_prs: int | None = None) -> list[RepoMix]:
    """Review budgets of 4 to 20 open PRs, or `max_open_prs` each."""
    rng = random.Random(seed)
    return [
        RepoMix(f"bench-org{i % 17}/repo{i}", rng.randint(4, 20) if max_open_prs is None else max_open_prs,
                rng.random() < 0.85)
        for i in range(count)
    ]


def claim_repos(count: int) -> list[RepoMix]:
    """For the claim mode: budgets (at the most the API allows) and area locks out of the way, as a job queue
    has neither."""
    return [RepoMix(f"bench-org{i % 17}/repo{i}", 1000, False) for i in range(count)]


def tasks(count: int, repo_list: list[RepoMix], seed: int) -> list[TaskMix]:
    rng = random.Random(seed + 1)
    found = []
    for i in range(count):
        repo = rng.choice(repo_list).name
        area = rng.choice(AREAS) if rng.random() < 0.7 else None
        found.append(
            TaskMix(
                key=f"b{i}",
                repo=repo,
                points=rng.choices((1, 2, 3, 5, 8), (30, 30, 20, 15, 5))[0],
                skills=_skills(rng, 0, 2),
                area=area,
                priority=rng.choices([p for p, _ in PRIORITIES], [w for _, w in PRIORITIES])[0],
                min_trust="trusted" if rng.random() < 0.02 else "basic",
            )
        )
    return found


def workers(count: int, seed: int) -> list[WorkerMix]:
    rng = random.Random(seed + 2)
    return [
        WorkerMix(f"bench-worker-{i}", _skills(rng, 2, 5), rng.randint(3, 13), rng.randint(1, 3))
        for i in range(count)
    ]


def claim_workers(count: int, per_request: int) -> list[WorkerMix]:
    """For the claim mode: every worker has every skill and room for `per_request` leases of any size."""
    return [WorkerMix(f"bench-claimer-{i}", SKILLS, 8 * per_request, per_request) for i in range(count)]


def import_document(repo_list: list[RepoMix], batch: list[TaskMix], *, with_repos: bool) -> str:
    document: dict[str, object] = {"tasks": [t.entry() for t in batch]}
    if with_repos:
        document["repos"] = {
            r.name: {"max_open_prs": r.max_open_prs, "area_locks": r.area_locks} for r in repo_list
        }
    return json.dumps(document, separators=(",", ":"))
