"""Nothing is lost on restart: stop the server mid-run, start it again on the same file."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from datetime import datetime
from pathlib import Path

from aiohttp import ClientSession

from owp_bot.clock import ManualClock
from owp_bot.config import Settings
from tests.conftest import ADMIN_TOKEN, start_server

ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


async def test_leases_offers_and_events_survive_a_restart(settings: Settings, clock: ManualClock) -> None:
    server = await start_server(settings, clock)
    base = f"http://127.0.0.1:{server.port}"
    async with ClientSession() as http:
        await http.put(f"{base}/v1/repos/acme/api", json={"max_open_prs": 5}, headers=ADMIN)
        for i in range(4):
            await http.post(f"{base}/v1/tasks", json={"repo": "acme/api", "title": f"t{i}"}, headers=ADMIN)
        register = {"name": "ann", "skills": [], "capacity_points": 2, "max_concurrent_tasks": 2}
        token = (await (await http.post(f"{base}/v1/workers/register", json=register)).json())["token"]
        auth = {"Authorization": f"Bearer {token}"}
        await http.post(f"{base}/v1/workers/heartbeat", json={"status": "working"}, headers=auth)  # buffered
        lease = (await (await http.get(f"{base}/v1/work", headers=auth)).json())["leases"]
        before = await (await http.get(f"{base}/v1/audit/events", params={"limit": 1000}, headers=ADMIN)).json()
    await server.close()

    server = await start_server(settings, clock)
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with ClientSession() as http:
            after = await (await http.get(f"{base}/v1/audit/events", params={"limit": 1000}, headers=ADMIN)).json()
            assert after["events"][: len(before["events"])] == before["events"]
            again = (await (await http.get(f"{base}/v1/work", headers=auth)).json())["leases"]
            assert again == lease  # the same leases, nothing new: capacity was already full
            worker = (await (await http.get(f"{base}/v1/workers", headers=ADMIN)).json())["workers"][0]
            assert worker["status"] == "working"  # the buffered heartbeat was written at shutdown
    finally:
        await server.close()


async def test_the_time_the_pool_was_down_does_not_count_against_workers(settings: Settings,
                                                                          clock: ManualClock) -> None:
    """Workers cannot call a pool that is down: its downtime moves their heartbeats, offers and leases on, instead
    of making them offline and their leases expire (with the reputation cost) the moment it is back."""
    server = await start_server(settings, clock)
    base = f"http://127.0.0.1:{server.port}"
    async with ClientSession() as http:
        await http.put(f"{base}/v1/repos/acme/api", json={"max_open_prs": 5}, headers=ADMIN)
        await http.post(f"{base}/v1/tasks", json={"repo": "acme/api", "title": "t"}, headers=ADMIN)
        register = {"name": "ann", "skills": [], "capacity_points": 2}
        token = (await (await http.post(f"{base}/v1/workers/register", json=register)).json())["token"]
        auth = {"Authorization": f"Bearer {token}"}
        [lease] = (await (await http.get(f"{base}/v1/work", headers=auth)).json())["leases"]
    await server.close()

    down = 6 * 3600.0  # past the lease's TTL (4 h), the heartbeat timeout and the offline grace
    clock.advance(down)
    server = await start_server(settings, clock)
    base = f"http://127.0.0.1:{server.port}"
    try:
        async with ClientSession() as http:
            await http.put(f"{base}/v1/repos/acme/api", json={"max_open_prs": 5}, headers=ADMIN)  # a write
            [kept] = (await (await http.get(f"{base}/v1/work/leases", headers=auth)).json())["leases"]
            assert kept["lease_id"] == lease["lease_id"]
            moved = {key: (datetime.fromisoformat(kept[key]) - datetime.fromisoformat(lease[key])).total_seconds()
                     for key in ("lease_expires_at", "renewable_until")}
            assert moved == {"lease_expires_at": down, "renewable_until": down}
            worker = (await (await http.get(f"{base}/v1/workers", headers=ADMIN)).json())["workers"][0]
            assert worker["status"] != "offline"
            events = (await (await http.get(f"{base}/v1/audit/events", params={"limit": 1000},
                                            headers=ADMIN)).json())["events"]
            assert not [e for e in events if e["type"] in ("lease.expired", "worker.offline")]
            [resumed] = [e for e in events if e["type"] == "pool.resumed"]
            assert resumed["details"]["down_seconds"] == down
    finally:
        await server.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_sigterm_finishes_in_flight_requests_and_closes_the_database(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "OWP_ADMIN_TOKEN": ADMIN_TOKEN, "OWP_DB_PATH": str(tmp_path / "pool.db")}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "owp_bot", "serve", "--port", str(port),
                                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    async with ClientSession() as http:
        for _ in range(600):  # the machine may be busy: up to a minute to start
            try:
                async with http.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        break
            except OSError:
                await asyncio.sleep(0.1)
        async with http.put(f"{base}/v1/repos/acme/api", json={"max_open_prs": 2}, headers=ADMIN) as response:
            assert response.status == 201
    process.send_signal(signal.SIGTERM)
    _, raw = await asyncio.wait_for(process.communicate(), timeout=30)
    stderr = raw.decode()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "pool.db-wal").exists() or (tmp_path / "pool.db-wal").stat().st_size == 0
