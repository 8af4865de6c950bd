"""`owp serve --processes 2` on one SQLite file, or on PostgreSQL: two front processes and a writer behind one port.

Many workers loop through the one address while a dashboard's stream follows the log; one front is killed
mid-run. The writer starts it again, the workers carry on (a request cut off with its front is sent again, as
a client behind a proxy would), the stream (reconnecting with Last-Event-ID, on whichever front it lands) shows
every lease granted on either front, and the event log proves the invariants. SIGTERM then stops everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.test_postgres_replicas import (
    ADMIN,
    OWP,
    REPOS,
    TASKS_PER_REPO,
    WORKERS,
    check_invariants,
    free_port,
    read_log,
    wait_ready,
    worker_loop,
)


class OneAddress:
    """The pool's one address, with two processes behind it: a request whose connection is cut is sent again."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.bases = [base]
        self.cut = 0

    async def call(self, prefer: int, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        for _ in range(50):
            try:
                async with self.session.request(method, self.bases[0] + path, **kwargs) as response:
                    return response.status, await response.json(content_type=None)
            except aiohttp.ClientConnectionError:
                self.cut += 1
                await asyncio.sleep(0.05)
        raise AssertionError(f"{method} {path}: no process answers")


async def metrics(session: aiohttp.ClientSession, base: str) -> dict[str, float]:
    async with session.get(f"{base}/metrics", headers={"Connection": "close"}) as response:
        text = await response.text()
    found = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == "owp_leases_granted_total":
            found[name] = float(value)
        elif name.startswith('owp_http_requests_total{method="GET",route="/v1/work",status="200"}'):
            found["works"] = float(value)
    return found


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                    found.add(int(entry.name))
    return found


async def follow(session: aiohttp.ClientSession, base: str, seen: list[int], stop: asyncio.Event,
                 connected: asyncio.Event) -> None:
    """A dashboard: the admin stream, resumed with Last-Event-ID whenever its connection ends."""
    while not stop.is_set():
        headers = {**ADMIN, **({"Last-Event-ID": str(seen[-1])} if seen else {})}
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{base}/v1/events/stream", headers=headers,
                                   timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as stream:
                connected.set()
                fields: dict[str, str] = {}
                async for raw in stream.content:
                    name, _, value = raw.decode().rstrip("\r\n").partition(":")
                    if name:
                        fields[name] = value.strip()
                        continue
                    if "id" in fields and fields.get("event") != "ready":  # `ready` repeats where it resumes
                        seen.append(int(fields["id"]))
                    fields = {}
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_fronts_share_one_pool_survive_losing_one_and_stop_together(store: str, tmp_path: Path,
                                                                          request: pytest.FixtureRequest) -> None:
    port = free_port()
    env = {**os.environ, "OWP_ADMIN_TOKEN": ADMIN["X-Admin-Token"], "OWP_HOST": "127.0.0.1", "OWP_PORT": str(port),
           "OWP_DB_PATH": str(tmp_path / "pool.db"), "OWP_PROCESSES": "2", "OWP_LOG_LEVEL": "WARNING",
           "OWP_RATE_LIMIT_WORKER": "off", "OWP_RATE_LIMIT_ADMIN": "off", "OWP_RATE_LIMIT_ADDRESS": "off",
           "OWP_RATE_LIMIT_REGISTER": "off"}
    env.pop("OWP_DATABASE_URL", None)
    if store == "postgres":
        env["OWP_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    with (tmp_path / "pool.log").open("wb") as log:
        writer = subprocess.Popen([str(OWP), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: ASYNC220
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            await wait_ready(session, base, writer)
            fronts = children(writer.pid)
            assert len(fronts) == 2, fronts
            pool = OneAddress(session, base)
            tasks: dict[str, tuple[str, str | None]] = {}
            for repo, budget in REPOS.items():
                status, body = await pool.call(0, "PUT", f"/v1/repos/{repo}", headers=ADMIN,
                                               json={"max_open_prs": budget})
                assert status == 201, body
                for i in range(TASKS_PER_REPO):
                    area = f"area{i % 4}" if i % 3 else None
                    status, body = await pool.call(0, "POST", "/v1/tasks", headers=ADMIN,
                                                   json={"repo": repo, "title": f"{repo} #{i}", "area": area})
                    assert status == 201, body
                    tasks[body["task"]["task_id"]] = (repo, area)
            tokens = []
            for i in range(WORKERS):
                status, body = await pool.call(0, "POST", "/v1/workers/register", json={
                    "name": f"w{i}", "skills": [], "capacity_points": 3, "max_concurrent_tasks": 2})
                assert status == 201, body
                tokens.append(body["token"])

            seen: list[int] = []
            stop = asyncio.Event()
            connected = asyncio.Event()
            dashboard = asyncio.create_task(follow(session, base, seen, stop, connected))
            await connected.wait()
            granted: set[str] = set()
            merged: Counter[str] = Counter()
            a_third = asyncio.Event()
            workers = [asyncio.create_task(worker_loop(pool, 0, token, granted, merged, len(tasks), a_third))
                       for token in tokens]
            await a_third.wait()
            killed = min(fronts)
            os.kill(killed, signal.SIGKILL)  # a front dies mid-run, requests in flight
            await asyncio.gather(*workers)
            for _ in range(100):  # the writer starts it again within a second or two
                if len(children(writer.pid) - {killed}) == 2:
                    break
                await asyncio.sleep(0.1)
            assert len(children(writer.pid) - {killed}) == 2, "the killed front was not started again"

            assert sum(merged.values()) == len(tasks) and set(merged.values()) == {1}, merged
            log = await read_log(pool)
            check_invariants(log, tasks)
            logged = {e["details"]["lease_id"] for e in log if e["type"] == "lease.granted"}
            assert granted <= logged  # every lease a worker was told about is in the log: nothing lost
            for _ in range(100):  # the stream shows the whole log, whichever front wrote each event
                if seen and seen[-1] == log[-1]["seq"]:
                    break
                await asyncio.sleep(0.05)
            stop.set()
            dashboard.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dashboard
            leases = [e["seq"] for e in log if e["type"] == "lease.granted"]
            scraped = [await metrics(session, base) for _ in range(6)]  # a connection each: either front
            assert {m["owp_leases_granted_total"] for m in scraped} == {len(leases)}, scraped
            works = [m["works"] for m in scraped]  # each scrape's front counts afresh, the other as it last sent
            assert works == sorted(works) and works[0] > 0, works  # never down, whichever front answers
            assert seen == list(range(seen[0], log[-1]["seq"] + 1)), "the stream missed or repeated events"
            assert seen[0] <= leases[0]
        fronts = children(writer.pid)
        writer.send_signal(signal.SIGTERM)
        assert writer.wait(30) == 0
        assert not any(os.path.exists(f"/proc/{pid}") for pid in fronts), "a front outlived the writer"  # noqa: ASYNC240
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(10)
    output = (tmp_path / "pool.log").read_text()
    assert "exited with status -9; starting it again" in output, output
