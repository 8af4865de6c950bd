"""The demo scenario at high speed on a real server: tasks reach merged, budgets hold, lapsed leases requeue.

The scenario is started the way the Obsidian plugin starts it (POST /v1/demo/start) and the claims are
checked from the audit log, not from the scenario's own counters.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from owp_bot.app import create_app
from owp_bot.config import ConfigError, Settings
from owp_bot.demo import fresh_demo_data
from owp_bot.demo.api import DEMO_GITHUB, DemoStatus
from owp_bot.demo.pulls import demo_github
from owp_bot.demo.scenario import demo_settings, profiles
from owp_bot.demo.view import render, summary
from owp_bot.devtools.fake_github import FakeGitHub
from tests.conftest import ADMIN_TOKEN
from tests.test_worker_cli import owp_process, stop_with_ctrl_c

SPEED = 1200.0  # a simulated hour in three seconds
ADMIN = {"X-Admin-Token": ADMIN_TOKEN}
# how each task event changes whether the task counts against its repo's review budget
IN_FLIGHT_AFTER = {"offer.created": True, "lease.granted": True, "task.pr_opened": True,
                   "offer.rejected": False, "task.requeued": False, "task.merged": False, "task.ready": False,
                   "task.released": False, "task.cancelled": False}


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    """The demo is the embedded SQLite pool."""
    return Settings(admin_token=ADMIN_TOKEN, db_path=tmp_path / "pool.db")


async def _json(session: ClientSession, method: str, url: str, expect: int = 200, **kwargs: Any) -> Any:
    async with session.request(method, url, **kwargs) as response:
        body = await response.json(content_type=None)
        assert response.status == expect, (method, url, response.status, body)
        return body


async def _events(session: ClientSession, base: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await _json(session, "GET", f"{base}/v1/audit/events", headers=ADMIN,
                           params={"after": after, "limit": 1000})
        events += page["events"]
        if page["next_cursor"] is None:
            return events
        after = page["next_cursor"]


def replay_budgets(events: list[dict[str, Any]], limits: dict[str, int]) -> dict[str, int]:
    """Replay the log: after every event, no repo has more tasks in flight than its review budget."""
    in_flight: dict[str, set[str]] = defaultdict(set)
    for event in events:
        change = IN_FLIGHT_AFTER.get(event["type"])
        if change is None or event["repo"] is None:
            continue
        (in_flight[event["repo"]].add if change else in_flight[event["repo"]].discard)(event["target"])
        repo = event["repo"]
        assert len(in_flight[repo]) <= limits[repo], f"{repo} over budget after event {event['seq']}: {event}"
    return {repo: len(tasks) for repo, tasks in in_flight.items()}


async def test_demo_scenario_flows_to_merged_within_budgets(sqlite_settings: Settings) -> None:
    async with demo_github(demo_settings(sqlite_settings, SPEED)) as (github, settings):
        limits = await _run_demo(github, settings)
    assert not [d for d in github.deliveries if d.status >= 400]  # every signed delivery was accepted
    pulls = [d.payload for d in github.deliveries if d.event == "pull_request"]
    assert {p["action"] for p in pulls} == {"opened", "closed"}
    assert any(p["pull_request"]["merged"] for p in pulls)
    assert all(p["pull_request"]["head"]["ref"].startswith("owp/t_") for p in pulls)

    server = TestServer(create_app(sqlite_settings), host="127.0.0.1")  # the same database, demo mode off
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        async with ClientSession() as session:
            events = await _events(session, base)
            listed = await _json(session, "GET", f"{base}/v1/repos")
            await _json(session, "GET", f"{base}/v1/demo/status", 404)
    finally:
        await server.close()
    check_log(events, limits, listed["repos"])


async def _run_demo(github: FakeGitHub, settings: Settings) -> dict[str, int]:
    """Start the demo as the Obsidian plugin does, until enough happened; the repos' review budgets."""
    app = create_app(settings)
    app[DEMO_GITHUB] = github
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    base = str(server.make_url("")).rstrip("/")
    try:
        async with ClientSession() as session:
            started = await _json(session, "POST", f"{base}/v1/demo/start", 202, headers=ADMIN,
                                  json={"workers": 6, "seed": 7})
            assert started["state"] in ("starting", "running")
            await _json(session, "POST", f"{base}/v1/demo/start", 409, headers=ADMIN, json={})
            deadline = time.monotonic() + 60
            while True:
                events = await _events(session, base)
                types = [e["type"] for e in events]
                if types.count("task.merged") >= 5 and "lease.expired" in types and "offer.rejected" in types:
                    break
                if time.monotonic() > deadline:  # say what the scenario did, to tell a slow box from a bug
                    seen = await _json(session, "GET", f"{base}/v1/demo/status")
                    raise AssertionError(f"the demo did not get far enough: {sorted(set(types))}; "
                                         f"{seen['simulated_seconds']:.0f} simulated s; {seen['counts']}; "
                                         f"{seen['tasks']}; {seen['workers']}")
                await asyncio.sleep(0.5)
            status = DemoStatus.model_validate(await _json(session, "GET", f"{base}/v1/demo/status"))
            assert status.state == "running" and status.error is None
            assert "merged" in status.tasks and status.counts["merged"] >= 5
            assert "demo running" in summary(status) and render(status) is not None
    finally:
        await server.close()  # stops the scenario, then the store: the log is complete
    return {r.repo: r.budget.max_open_prs for r in status.repos}


def check_log(events: list[dict[str, Any]], limits: dict[str, int], repos: list[dict[str, Any]]) -> None:
    final = replay_budgets(events, limits)  # and the replay agrees with the server's own count
    assert {repo: n for repo, n in final.items() if n} == {
        r["repo"]: r["budget"]["in_flight"] for r in repos if r["budget"]["in_flight"]}

    by_seq = sorted(events, key=lambda e: e["seq"])
    for i, event in enumerate(by_seq):  # every lapsed lease gave its task back to the pool
        if event["type"] == "lease.expired":
            following = by_seq[i:i + 4]
            assert any(e["type"] == "task.requeued" and e["target"] == event["target"] for e in following)
    requeued = {e["target"] for e in by_seq if e["type"] == "task.requeued" and e["details"].get("reason")
                in ("worker_offline", "lease_expired")}
    assert requeued, "no lease lapsed"
    merged = {e["target"] for e in by_seq if e["type"] == "task.merged"}
    task = next(iter(merged))
    chain = [e["type"] for e in by_seq if e["target"] == task and e["type"] in
             ("offer.created", "lease.granted", "task.in_progress", "task.pr_opened", "task.merged")]
    assert chain[-4:] == ["lease.granted", "task.in_progress", "task.pr_opened", "task.merged"]
    through_github = [e for e in by_seq if e["type"] in ("task.pr_opened", "task.merged")]
    assert all(e["details"]["message"].startswith("PR #") and e["actor"] != "admin" for e in through_github)
    declined = [e for e in by_seq if e["type"] == "offer.rejected"]
    assert all(e["details"].get("reason") for e in declined)


async def test_demo_start_needs_demo_mode_and_the_github_stand_in(sqlite_settings: Settings,
                                                                  aiohttp_client: Any) -> None:
    plain = await aiohttp_client(create_app(sqlite_settings))
    assert (await plain.post("/v1/demo/start", headers=ADMIN, json={})).status == 404
    bare = await aiohttp_client(create_app(demo_settings(sqlite_settings, 60)))
    answer = await bare.post("/v1/demo/start", headers=ADMIN, json={})
    assert answer.status == 409 and "owp demo" in (await answer.json())["detail"]
    assert (await bare.post("/v1/demo/start", json={})).status == 401
    assert (await (await bare.get("/v1/demo/status")).json())["state"] == "not_started"


def test_each_demo_starts_fresh_but_never_wipes_a_real_pool(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo-data"
    fresh_demo_data(demo_dir)
    (demo_dir / "pool.db").write_text("last run")
    fresh_demo_data(demo_dir)
    assert not (demo_dir / "pool.db").exists()
    real = tmp_path / "data"
    real.mkdir()
    (real / "pool.db").write_text("production")
    with pytest.raises(ConfigError, match="did not create"):
        fresh_demo_data(real)
    assert (real / "pool.db").read_text() == "production"


def test_profiles_cover_the_sample_tasks_and_scale() -> None:
    names = [p.name for p in profiles(20)]
    assert len(set(names)) == 20
    skills = set().union(*(p.skills for p in profiles(8)))
    tasks_yaml = (Path(__file__).parents[1] / "owp_bot" / "demo" / "tasks.yaml").read_text()
    needed = set()
    for found in re.findall(r"required_skills: \[([^\]]*)\]", tasks_yaml):
        needed |= {s.strip() for s in found.split(",")}
    assert needed <= skills


def test_demo_settings_scale_every_ttl(sqlite_settings: Settings) -> None:
    fast = demo_settings(sqlite_settings, 60)
    assert fast.demo_mode and fast.demo_speed == 60
    assert (fast.lease_ttl, fast.offer_ttl, fast.heartbeat_timeout) == (4 * 60, 5, 15)
    assert (fast.decline_cooldown, fast.reputation_head_start) == (24 * 60, 2)


async def test_owp_demo_command_serves_prints_token_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, "OWP_ADMIN_TOKEN": ADMIN_TOKEN, "OWP_LOG_LEVEL": "WARNING"}
    output: list[str] = []
    async with owp_process("demo", "--port", "0", "--data", str(tmp_path / "demo"), "--speed", "1200",
                           "--workers", "3", "--seed", "3", env=env) as process:
        assert process.stdout is not None
        while not any("admin token" in line for line in output):
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            assert line, "".join(output)
            output.append(line)
        url = re.search(r"(http://\S+)/", "".join(output))
        assert url and ADMIN_TOKEN in "".join(output)
        async with ClientSession() as session:
            deadline = time.monotonic() + 30
            while True:
                status = await _json(session, "GET", f"{url.group(1)}/v1/demo/status")
                if status["tasks"].get("pr_opened", 0) + status["tasks"].get("merged", 0) >= 1:
                    break
                assert time.monotonic() < deadline, status
                await asyncio.sleep(0.3)
        await stop_with_ctrl_c(process, output)
    assert (tmp_path / "demo" / "pool.db").exists()


@pytest.mark.parametrize(("speed_env", "argv", "speed"), [("2.5", [], 2.5), ("2.5", ["--speed", "0.5"], 0.5)])
async def test_owp_demo_runs_at_a_decimal_speed_from_the_environment_or_speed(
        speed_env: str, argv: list[str], speed: float, tmp_path: Path) -> None:
    env = {**os.environ, "OWP_ADMIN_TOKEN": ADMIN_TOKEN, "OWP_LOG_LEVEL": "WARNING", "OWP_DEMO_SPEED": speed_env}
    output: list[str] = []
    async with owp_process("demo", "--port", "0", "--data", str(tmp_path / "demo"), "--no-start", *argv,
                           env=env) as process:
        assert process.stdout is not None
        while not any("stop with Ctrl-C" in line for line in output):
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            assert line, "".join(output)
            output.append(line)
        assert f"speed:             x{speed:g} " in "".join(output)
        url = re.search(r"(http://\S+)/", "".join(output))
        assert url
        async with ClientSession() as session:
            status = await _json(session, "GET", f"{url.group(1)}/v1/demo/status", headers=ADMIN)
        assert (status["state"], status["speed"]) == ("not_started", speed)
        await stop_with_ctrl_c(process, output)


@pytest.mark.parametrize(("speed_env", "argv", "expected"), [
    ("0", [], "OWP_DEMO_SPEED='0' is not a speed; use a number of simulated seconds per real second above 0"),
    ("60", ["--speed", "-1"], "--speed='-1' is not a speed; use a number"),
])
def test_owp_demo_refuses_a_speed_not_above_zero(speed_env: str, argv: list[str], expected: str,
                                                 tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "owp_bot", "demo", "--data", str(tmp_path / "demo"), *argv],
                            capture_output=True, text=True, timeout=60, check=False,
                            env={"PATH": "/usr/bin:/bin", "OWP_ADMIN_TOKEN": ADMIN_TOKEN, "OWP_DEMO_SPEED": speed_env})
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr
