"""`owp worker …` against a real server: the one-shot commands, the 0600 credentials file, and `run` driven
through its standard input like a person at a terminal."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
import sys
from asyncio.subprocess import Process
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from owp_bot.app import create_app
from owp_bot.cli import build_parser
from owp_bot.config import Settings
from owp_bot.worker import cli as worker_cli
from owp_bot.worker.client import ProtocolError, WorkerClient, config_path, load_config
from tests.conftest import ADMIN_TOKEN, start_server

ADMIN = {"X-Admin-Token": ADMIN_TOKEN}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TestServer]:
    """A pool on the system clock: `run` compares offer expiry with the wall clock."""
    running = await start_server(Settings(admin_token=ADMIN_TOKEN, db_path=tmp_path / "pool.db"))
    yield running
    await running.close()


@pytest.fixture
def credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cfg" / "owp" / "worker.json"
    monkeypatch.setenv("OWP_WORKER_CONFIG", str(path))
    return path


def url_of(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


async def seed(server: TestServer, *titles: str) -> list[str]:
    async with ClientSession() as session:
        async with session.put(f"{url_of(server)}/v1/repos/acme/api", headers=ADMIN,
                               json={"max_open_prs": 5, "area_locks": False}) as response:
            assert response.status in (200, 201)
        ids = []
        for title in titles:
            async with session.post(f"{url_of(server)}/v1/tasks", headers=ADMIN,
                                    json={"repo": "acme/api", "title": title, "required_skills": ["python"],
                                          "estimate_points": 2}) as response:
                ids.append((await response.json())["task"]["task_id"])
        return ids


async def owp(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    """One `owp worker --json …` command in this process; its JSON answer."""
    args = build_parser().parse_args(["worker", "--json", *argv])
    assert await worker_cli._dispatch(args) == 0
    return json.loads(capsys.readouterr().out)


async def test_one_shot_commands_follow_the_protocol(server: TestServer, credentials: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    first, second = await seed(server, "Rate-limit /login", "Paginate /invoices")
    registered = await owp(capsys, "register", "--url", url_of(server), "--name", "ann", "--skills",
                           "Python, sql", "--capacity", "4", "--github", "ann-dev")  # as the README writes it
    assert registered["token"] == "(saved)"
    assert stat.S_IMODE(os.stat(credentials).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(credentials.parent).st_mode) == 0o700
    saved = load_config(credentials)
    assert saved.worker_id == registered["worker_id"] and saved.token.startswith("owp_")

    offers = (await owp(capsys, "offers"))["offers"]
    assert [o["task_id"] for o in offers] == [first]  # 2 + 2 points would fit, but one task at a time
    rejected = await owp(capsys, "reject", offers[0]["offer_id"], "--reason", "skill_mismatch", "--note", "?")
    assert rejected["task_id"] == first
    offers = (await owp(capsys, "offers"))["offers"]
    assert [o["task_id"] for o in offers] == [second]  # the declined task is not offered again
    lease = await owp(capsys, "accept", offers[0]["offer_id"])
    assert lease["task_id"] == second

    held = await owp(capsys, "leases")
    assert [(h["lease_id"], h["task_id"]) for h in held] == [(lease["lease_id"], second)]
    renewed = await owp(capsys, "renew", lease["lease_id"])
    assert renewed["lease_expires_at"] >= lease["lease_expires_at"]
    assert (await owp(capsys, "heartbeat", "--status", "working"))["ok"] is True
    assert (await owp(capsys, "status", second, "in_progress"))["status"] == "in_progress"
    done = await owp(capsys, "status", second, "pr_opened", "--pr-url", "https://github.com/acme/api/pull/9")
    assert (done["status"], done["pr_number"]) == ("pr_opened", 9)
    me = await owp(capsys, "status")
    assert (me["worker_id"], me["status"]) == (registered["worker_id"], "working")
    assert me["skills"] == ["python", "sql"]
    assert await owp(capsys, "leases") == []

    args = build_parser().parse_args(["worker", "accept", "o_nope"])
    with pytest.raises(ProtocolError) as failure:
        await worker_cli._dispatch(args)
    assert failure.value.status == 404 and "o_nope" in failure.value.detail


@pytest.mark.parametrize("argv", [
    ["--url", "http://pool:8787", "--json", "register", "--name", "ann", "--capacity", "5"],
    ["register", "--url", "http://pool:8787", "--json", "--name", "ann", "--capacity", "5"],  # README's order
    ["--json", "register", "--url", "http://pool:8787", "--name", "ann", "--capacity", "5"],
])
def test_url_and_json_go_before_or_after_the_command(argv: list[str]) -> None:
    args = build_parser().parse_args(["worker", *argv])
    assert (args.url, args.json, args.worker_command, args.name) == ("http://pool:8787", True, "register", "ann")
    args = build_parser().parse_args(["worker", "--url", "http://pool:8787", "offers"])
    assert (args.url, args.json) == ("http://pool:8787", False)  # not overwritten by the command's defaults


async def test_commands_explain_missing_credentials_and_an_unreachable_pool(tmp_path: Path) -> None:
    env = {**os.environ, "OWP_WORKER_CONFIG": str(tmp_path / "none.json")}
    async with owp_process("worker", "offers", env=env) as process:
        out, _ = await process.communicate()
    assert process.returncode == 1 and "owp worker register" in out.decode()
    async with WorkerClient("http://127.0.0.1:9", "owp_x") as client:  # nothing listens on port 9
        with pytest.raises(ProtocolError) as failure:
            await client.heartbeat()
    assert failure.value.status == 0 and "cannot reach the pool" in failure.value.detail


def test_config_path_defaults_to_the_user_config_dir() -> None:
    assert config_path({"HOME": "/home/ann"}).parts[-3:] == (".config", "owp", "worker.json")
    assert config_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/owp/worker.json")
    assert config_path({"OWP_WORKER_CONFIG": "/etc/w.json", "XDG_CONFIG_HOME": "/x"}) == Path("/etc/w.json")


@asynccontextmanager
async def owp_process(*argv: str, env: dict[str, str], stdin: bool = False) -> AsyncIterator[Process]:
    """`owp …` as a child process (stdout and stderr together), killed if the test leaves it running."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "owp_bot", *argv, env=env, stdin=asyncio.subprocess.PIPE if stdin else None,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def stop_with_ctrl_c(process: Process, seen: list[str]) -> None:
    """Ctrl-C: the command stops cleanly, says so and exits 0."""
    assert process.stdout is not None
    process.send_signal(signal.SIGINT)
    rest = (await asyncio.wait_for(process.stdout.read(), 30)).decode()
    assert await process.wait() == 0, "".join(seen) + rest
    assert "stopped" in rest and "Traceback" not in rest


async def _line_with(stream: asyncio.StreamReader, text: str, seen: list[str]) -> str:
    while True:
        line = (await asyncio.wait_for(stream.readline(), 20)).decode()
        assert line, f"`owp worker run` ended before printing {text!r}:\n{''.join(seen)}"
        seen.append(line)
        if text in line:
            return line


async def test_run_heartbeats_shows_offers_and_takes_answers_from_stdin(server: TestServer,
                                                                        tmp_path: Path) -> None:
    first, second = await seed(server, "Rate-limit /login", "Paginate /invoices")
    env = {**os.environ, "OWP_WORKER_CONFIG": str(tmp_path / "worker.json")}
    async with owp_process("worker", "--url", url_of(server), "register", "--name", "bo",
                           "--skills", "python", "--capacity", "4", env=env) as register:
        out, _ = await register.communicate()
    assert register.returncode == 0 and b"mode 0600" in out
    worker_id = load_config(tmp_path / "worker.json").worker_id

    seen: list[str] = []
    async with owp_process("worker", "run", "--interval", "0.2", "--heartbeat-every", "0.2", env=env,
                           stdin=True) as run:
        assert run.stdin is not None and run.stdout is not None
        assert first in await _line_with(run.stdout, "Rate-limit /login", seen)
        await _line_with(run.stdout, "[a]ccept", seen)
        run.stdin.write(b"d unclear which endpoints?\n")
        await run.stdin.drain()
        await _line_with(run.stdout, "declined (unclear_requirements)", seen)
        offer_line = await _line_with(run.stdout, "Paginate /invoices", seen)
        await _line_with(run.stdout, "[a]ccept", seen)
        run.stdin.write(b"a\n")
        await run.stdin.drain()
        accepted = await _line_with(run.stdout, "accepted: lease", seen)
        assert second in accepted and offer_line.startswith("offer o_")
        await asyncio.sleep(0.5)  # a couple of heartbeats as "working"
        async with ClientSession() as session:
            async with session.get(f"{url_of(server)}/v1/tasks/{second}", headers=ADMIN) as response:
                task = await response.json()
            async with session.get(f"{url_of(server)}/v1/tasks/{first}", headers=ADMIN) as response:
                declined = await response.json()
            async with session.get(f"{url_of(server)}/v1/workers/{worker_id}", headers=ADMIN) as response:
                worker = await response.json()
        assert (task["status"], task["worker_id"]) == ("leased", worker_id)
        rejection = next(e for e in declined["history"] if e["type"] == "offer.rejected")
        assert rejection["details"]["reason"] == "unclear_requirements"
        assert worker["online"] and worker["status"] == "working"
        await stop_with_ctrl_c(run, seen)


async def test_run_rides_out_a_server_restart_and_keeps_offering(tmp_path: Path) -> None:
    """`run` stays up: the pool restarting (unreachable for a while) is reported and waited out, and the
    offers come again once it is back, instead of the command exiting with an error."""
    settings = Settings(admin_token=ADMIN_TOKEN, db_path=tmp_path / "pool.db")
    server = await start_server(settings)
    port = server.port
    env = {**os.environ, "OWP_WORKER_CONFIG": str(tmp_path / "worker.json")}
    async with owp_process("worker", "--url", url_of(server), "register", "--name", "cy",
                           "--skills", "python", "--capacity", "4", env=env) as register:
        out, _ = await register.communicate()
    assert register.returncode == 0, out.decode()
    seen: list[str] = []
    try:
        async with owp_process("worker", "run", "--interval", "0.2", "--heartbeat-every", "0.2", env=env,
                               stdin=True) as run:
            assert run.stdout is not None
            await _line_with(run.stdout, "no offers", seen)
            await server.close()
            await _line_with(run.stdout, "cannot reach the pool", seen)
            server = TestServer(create_app(settings), host="127.0.0.1", port=port)
            await server.start_server()
            await seed(server, "Back after the restart")
            await _line_with(run.stdout, "Back after the restart", seen)
            await stop_with_ctrl_c(run, seen)
    finally:
        await server.close()


async def test_run_waits_out_a_rate_limit_as_retry_after_says(tmp_path: Path) -> None:
    settings = Settings(admin_token=ADMIN_TOKEN, db_path=tmp_path / "pool.db", rate_limit_worker=(3, 3.0))
    server = await start_server(settings)
    env = {**os.environ, "OWP_WORKER_CONFIG": str(tmp_path / "worker.json")}
    try:
        async with owp_process("worker", "--url", url_of(server), "register", "--name", "di",
                               "--skills", "python", "--capacity", "4", env=env) as register:
            out, _ = await register.communicate()
        assert register.returncode == 0, out.decode()
        seen: list[str] = []
        async with owp_process("worker", "run", "--interval", "0.05", "--heartbeat-every", "60", env=env,
                               stdin=True) as run:
            assert run.stdout is not None
            throttled = await _line_with(run.stdout, "too many requests with this worker token", seen)
            assert "asking again every 1s" in throttled  # Retry-After, not the 0.05 s interval
            await seed(server, "Offered once the bucket refills")
            await _line_with(run.stdout, "Offered once the bucket refills", seen)
            await stop_with_ctrl_c(run, seen)
    finally:
        await server.close()
