"""Two `owp serve` processes on one PostgreSQL schema, many workers split across them, one replica killed
mid-run: the other carries on, every task is merged once, and the event log proves the invariants.

Workers behave like clients behind a load balancer: each talks to its replica and fails over to the other
when its replica stops answering, retrying what it was doing (a retried report that already applied answers
409, which the worker reads as done).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

ADMIN = {"X-Admin-Token": "replica-test-admin-token-0123"}
OWP = Path(sys.executable).parent / "owp"
REPOS = {"acme/api": 3, "acme/web": 2, "acme/docs": 4}  # repo -> review budget
TASKS_PER_REPO = 12
WORKERS = 12
IN_FLIGHT = {"offered", "leased", "in_progress", "blocked", "pr_opened"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_replica(url: str, tmp_path: Path, name: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "OWP_DATABASE_URL": url, "OWP_ADMIN_TOKEN": ADMIN["X-Admin-Token"],
           "OWP_HOST": "127.0.0.1", "OWP_PORT": str(port), "OWP_DB_PATH": str(tmp_path / f"{name}.db"),
           "OWP_LOG_LEVEL": "WARNING", "OWP_RATE_LIMIT_WORKER": "off", "OWP_RATE_LIMIT_ADMIN": "off",
           "OWP_RATE_LIMIT_ADDRESS": "off", "OWP_RATE_LIMIT_REGISTER": "off"}
    with (tmp_path / f"{name}.log").open("wb") as log:
        process = subprocess.Popen([str(OWP), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}"


async def wait_ready(session: aiohttp.ClientSession, base: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        assert process.poll() is None, f"replica {base} exited with {process.returncode}"
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{base}/readyz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.05)
    raise AssertionError(f"replica {base} did not become ready")


class Cluster:
    """The replicas as a load balancer sees them: a request goes to the preferred replica while it answers."""

    def __init__(self, session: aiohttp.ClientSession, bases: list[str]) -> None:
        self.session = session
        self.bases = bases
        self.down: set[str] = set()

    async def call(self, prefer: int, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        order = self.bases[prefer:] + self.bases[:prefer]
        for base in order:
            if base in self.down:
                continue
            try:
                async with self.session.request(method, base + path, **kwargs) as response:
                    return response.status, await response.json(content_type=None)
            except aiohttp.ClientConnectionError:
                self.down.add(base)  # fail over; the request is retried on the next replica
        raise AssertionError("no replica answers")


async def worker_loop(cluster: Cluster, prefer: int, token: str, granted: set[str], merged: Counter[str],
                      total: int, a_third: asyncio.Event) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    idle_rounds = 0
    while sum(merged.values()) < total and idle_rounds < 400:
        status, body = await cluster.call(prefer, "GET", "/v1/work", headers=auth)
        assert status == 200, body
        leases = body["leases"]
        if not leases:
            idle_rounds += 1
            await asyncio.sleep(0.01)
            continue
        idle_rounds = 0
        for lease in leases:
            granted.add(lease["lease_id"])
            task_id = lease["task_id"]
            pr = {"status": "pr_opened", "artifact": {"pr_url": f"https://github.com/{lease['repo']}/pull/1"}}
            path = f"/v1/tasks/{task_id}/status"
            status, body = await cluster.call(prefer, "POST", path, headers=auth, json=pr)
            assert status in (200, 409), body  # 409: the report applied before a replica died
            status, body = await cluster.call(prefer, "POST", path, headers=ADMIN, json={"status": "merged"})
            if status == 409:  # the merge applied on a replica that died before it answered
                status, body = await cluster.call(prefer, "GET", f"/v1/tasks/{task_id}", headers=ADMIN)
                assert body["status"] == "merged", body  # GET /v1/tasks/{id}: the task, with its history
            assert status == 200, body
            merged[task_id] += 1
            if sum(merged.values()) >= total // 3:
                a_third.set()


async def read_log(cluster: Cluster) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        status, page = await cluster.call(0, "GET", "/v1/audit/events", headers=ADMIN,
                                          params={"after": after, "limit": 1000})
        assert status == 200, page
        found += page["events"]
        if page["next_cursor"] is None:
            return found
        after = page["next_cursor"]


def check_invariants(log: list[dict[str, Any]], tasks: dict[str, tuple[str, str | None]]) -> None:
    """Replay the log: numbering without gaps, and at every step budgets, area locks and single holders."""
    assert [e["seq"] for e in log] == list(range(1, len(log) + 1))
    status = dict.fromkeys(tasks, "ready")
    holder: dict[str, str | None] = dict.fromkeys(tasks)
    for event in log:
        task_id, kind = event["target"], event["type"]
        if task_id not in tasks:
            continue
        worker = event["details"].get("worker_id")
        if kind == "lease.granted":
            assert status[task_id] in ("ready", "offered"), f"{task_id} leased while {status[task_id]}"
            status[task_id], holder[task_id] = "leased", worker
        elif kind == "offer.created":
            assert status[task_id] == "ready"
            status[task_id], holder[task_id] = "offered", worker
        elif kind in ("task.pr_opened", "task.merged", "task.in_progress", "task.blocked"):
            status[task_id] = kind.removeprefix("task.")
        elif kind in ("task.requeued", "task.released", "task.ready"):
            status[task_id], holder[task_id] = "ready", None
        in_flight = Counter(tasks[t][0] for t, s in status.items() if s in IN_FLIGHT)
        assert all(in_flight[repo] <= budget for repo, budget in REPOS.items()), (event, in_flight)
        areas = Counter(tasks[t] for t, s in status.items() if s in IN_FLIGHT and tasks[t][1] is not None)
        assert max(areas.values(), default=0) <= 1, (event, areas)
    assert set(status.values()) == {"merged"}


async def test_two_replicas_share_one_pool_and_survive_losing_one(postgres_url: str, tmp_path: Path) -> None:
    replicas = [start_replica(postgres_url, tmp_path, name) for name in ("a", "b")]
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            for process, base in replicas:
                await wait_ready(session, base, process)
            cluster = Cluster(session, [base for _, base in replicas])
            tasks: dict[str, tuple[str, str | None]] = {}
            for repo, budget in REPOS.items():
                status, body = await cluster.call(0, "PUT", f"/v1/repos/{repo}", headers=ADMIN,
                                                  json={"max_open_prs": budget})
                assert status in (200, 201), body
                for i in range(TASKS_PER_REPO):
                    area = f"area{i % 4}" if i % 3 else None
                    task = {"repo": repo, "title": f"{repo} #{i}", "area": area}
                    status, body = await cluster.call(i % 2, "POST", "/v1/tasks", headers=ADMIN, json=task)
                    assert status == 201, body
                    tasks[body["task"]["task_id"]] = (repo, area)

            tokens = []
            for i in range(WORKERS):
                status, body = await cluster.call(i % 2, "POST", "/v1/workers/register", json={
                    "name": f"w{i}", "skills": [], "capacity_points": 3, "max_concurrent_tasks": 2})
                assert status == 201, body
                tokens.append(body["token"])

            # a dashboard on replica b sees a lease granted on replica a
            async with session.get(f"{cluster.bases[1]}/v1/events/stream", headers=ADMIN) as stream:
                first = {"Authorization": f"Bearer {tokens[0]}"}
                status, body = await cluster.call(0, "GET", "/v1/work", headers=first)
                assert status == 200 and body["leases"], body
                seen = await asyncio.wait_for(read_until(stream, "lease.granted"), timeout=1.0)
                assert seen["details"]["lease_id"] == body["leases"][0]["lease_id"]

            granted: set[str] = set()
            merged: Counter[str] = Counter()
            total = len(tasks)
            a_third = asyncio.Event()
            workers = [asyncio.create_task(worker_loop(cluster, i % 2, token, granted, merged, total,
                                                       a_third)) for i, token in enumerate(tokens)]
            await a_third.wait()
            replicas[0][0].send_signal(signal.SIGKILL)  # replica a dies mid-run, requests in flight
            await asyncio.gather(*workers)
            assert replicas[0][0].wait(5) == -signal.SIGKILL

            assert cluster.down == {cluster.bases[0]}
            assert sum(merged.values()) == total and set(merged.values()) == {1}, merged
            log = await read_log(cluster)
            check_invariants(log, tasks)
            logged = {e["details"]["lease_id"] for e in log if e["type"] == "lease.granted"}
            assert granted <= logged  # every lease a worker was told about is in the log: nothing lost
            merges = Counter(e["target"] for e in log if e["type"] == "task.merged")
            assert set(merges) == set(tasks) and set(merges.values()) == {1}  # each task merged exactly once
    finally:
        for process, _ in replicas:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process, _ in replicas:
            process.wait(15)


async def read_until(stream: aiohttp.ClientResponse, event_type: str) -> dict[str, Any]:
    current = None
    async for raw in stream.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("event:"):
            current = line.partition(":")[2].strip()
        elif line.startswith("data:") and current == event_type:
            return dict(json.loads(line.partition(":")[2]))
    raise AssertionError(f"the stream ended before {event_type}")


def test_invariant_replay_catches_a_budget_overrun() -> None:
    """The checker itself: a log with one lease too many in a repo fails it."""
    tasks = {f"t{i}": ("acme/web", None) for i in range(3)}
    log = [{"seq": i + 1, "type": "lease.granted", "target": f"t{i}", "details": {"worker_id": "w"}}
           for i in range(3)]
    with pytest.raises(AssertionError, match="acme/web"):
        check_invariants(log, tasks)
